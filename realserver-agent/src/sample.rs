//! One system sample for a report: reads the /proc files (through the pure parsers of
//! [`procfs`]) under a root that tests can point at a fixture tree.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lvs_proto::v1 as pb;

use crate::procfs::{self, ProcError};

/// Why no sample could be taken this interval.
/// The cause is part of each message (callers and tests compare the text), so it is kept as a
/// plain field rather than a `source`: error-chain printers would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A /proc file could not be read; `path` is as the message names it.
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error(transparent)]
    Parse(#[from] ProcError),
}

/// One system sample, the part of a report the collector reads from /proc.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    pub cpu_busy: f64,
    pub cpu_steal: f64,
    pub cpus: u32,
    pub load: [f64; 3],
    pub mem_total: u64,
    pub mem_available: u64,
    pub conns: Vec<pb::PortConns>,
}

/// Reads /proc into samples; keeps the previous CPU counters for the interval's fractions.
pub struct Sampler {
    proc_root: PathBuf,
    ports: Vec<u16>,
    prev: Option<procfs::CpuTimes>,
    last: (f64, f64),
}

impl Sampler {
    pub fn new(proc_root: PathBuf, ports: Vec<u16>) -> Sampler {
        Sampler {
            proc_root,
            ports,
            prev: None,
            last: (0.0, 0.0),
        }
    }

    fn read(&self, rel: &str) -> Result<String, SampleError> {
        let p = self.proc_root.join(rel);
        std::fs::read_to_string(&p).map_err(|error| SampleError::Read {
            path: p.display().to_string(),
            error,
        })
    }

    /// One sample. The CPU fractions cover the time since the previous sample (0 on the first).
    pub fn sample(&mut self) -> Result<Sample, SampleError> {
        let (cpu, cpus) = procfs::parse_stat(&self.read("stat")?)?;
        if let Some(prev) = &self.prev {
            if let Some(f) = procfs::cpu_fractions(prev, &cpu) {
                self.last = f;
            }
        }
        self.prev = Some(cpu);
        let load = procfs::parse_loadavg(&self.read("loadavg")?)?;
        let (mem_total, mem_available) = procfs::parse_meminfo(&self.read("meminfo")?)?;
        let mut counts: BTreeMap<u16, u32> = self.ports.iter().map(|p| (*p, 0)).collect();
        if !counts.is_empty() {
            for f in ["net/tcp", "net/tcp6"] {
                match std::fs::read_to_string(self.proc_root.join(f)) {
                    Ok(t) => procfs::count_established(&t, &mut counts)?,
                    // No tcp6 when IPv6 is disabled.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(SampleError::Read {
                            path: format!("/proc/{f}"),
                            error,
                        })
                    }
                }
            }
        }
        Ok(Sample {
            cpu_busy: self.last.0,
            cpu_steal: self.last.1,
            cpus,
            load,
            mem_total,
            mem_available,
            conns: counts
                .into_iter()
                .map(|(port, established)| pb::PortConns {
                    port: port as u32,
                    established,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_reads_a_proc_tree() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| {
            std::fs::create_dir_all(d.path().join(f).parent().unwrap()).unwrap();
            std::fs::write(d.path().join(f), t).unwrap();
        };
        w("stat", "cpu 10 0 10 80 0 0 0 0\ncpu0 10 0 10 80 0 0 0 0\n");
        w("loadavg", "1.00 0.50 0.25 1/100 42\n");
        w("meminfo", "MemTotal: 100 kB\nMemAvailable: 50 kB\n");
        w(
            "net/tcp",
            "hdr\n 0: 0100007F:0050 0100007F:D431 01 0:0 0:0 0 0 0 1\n",
        );
        let mut s = Sampler::new(d.path().to_path_buf(), vec![80, 443]);
        let a = s.sample().unwrap();
        assert_eq!((a.cpu_busy, a.cpus, a.load[0]), (0.0, 1, 1.0));
        assert_eq!((a.mem_total, a.mem_available), (102_400, 51_200));
        assert_eq!(a.conns[0].established, 1);
        assert_eq!(a.conns[1].established, 0);
        w("stat", "cpu 60 0 10 130 0 0 0 0\n");
        let b = s.sample().unwrap();
        assert!((b.cpu_busy - 0.5).abs() < 1e-9);
    }
}
