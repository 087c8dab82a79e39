//! The periodic work of `run`: samples /proc and publishes one report per interval (the
//! newest replaces an unsent one), runs the probes, and refreshes discovered addresses.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use crate::config::ProbeSpec;
use crate::shared::Shared;
use crate::{host, probe, procfs};

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

    fn read(&self, rel: &str) -> Result<String, String> {
        let p = self.proc_root.join(rel);
        std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))
    }

    /// One sample. The CPU fractions cover the time since the previous sample (0 on the first).
    pub fn sample(&mut self) -> Result<Sample, String> {
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
                    Err(e) => return Err(format!("reading /proc/{f}: {e}")),
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

/// Directors reject reports arriving less than 100 ms apart; the margin absorbs network jitter.
pub const MIN_REPORT_GAP: Duration = Duration::from_millis(150);

/// Publishes a report every interval, or at once when `report_now` is notified. Publishing
/// replaces any report the connection has not taken yet, so a backed-up stream never holds up
/// collection.
pub async fn reports(
    shared: Arc<Shared>,
    mut sampler: Sampler,
    tx: watch::Sender<Option<pb::AgentReport>>,
) {
    let mut tick = tokio::time::interval(shared.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut last_built: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.report_now.notified() => {}
        }
        // An immediate report (drain, ready, a new stream) right after a regular one would be
        // rejected by the director as a flood.
        if let Some(t) = last_built {
            let wait = MIN_REPORT_GAP.saturating_sub(t.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        // The next regular report comes one interval after this one.
        tick.reset();
        last_built = Some(Instant::now());
        // /proc/net/tcp of a busy server is large: read it off the runtime's threads.
        let (s, result) = match tokio::task::spawn_blocking(move || {
            let r = sampler.sample();
            (sampler, r)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => {
                warn!("sampler task failed: {e}");
                return;
            }
        };
        sampler = s;
        match result {
            Ok(sample) => {
                if last_error.take().is_some() {
                    info!("reading /proc works again");
                }
                tx.send_replace(Some(shared.build_report(sample)));
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    warn!(error = %e, "cannot sample the system; no report this interval");
                    last_error = Some(e);
                }
            }
        }
    }
}

/// Runs all probes every interval, concurrently; each finishes within its timeout, which the
/// config keeps within the interval.
pub async fn probes(shared: Arc<Shared>, specs: Vec<ProbeSpec>) {
    if specs.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(shared.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let results = futures::future::join_all(specs.iter().map(probe::run)).await;
        shared.set_probes(results);
    }
}

/// How often discovered addresses are refreshed.
const ADDRESS_REFRESH: Duration = Duration::from_secs(30);

/// Keeps the reported addresses equal to the host's global addresses (without `vips`).
pub async fn discover_addresses(shared: Arc<Shared>, vips: Vec<IpAddr>) {
    let mut last: Option<Vec<IpAddr>> = None;
    loop {
        match host::global_addresses(&vips).await {
            Ok(found) => {
                if last.as_ref() != Some(&found) {
                    if found.is_empty() {
                        warn!("the host has no global addresses to report; set `addresses` in the config");
                    } else {
                        info!(addresses = ?found, "reporting the host's global addresses");
                    }
                    shared.set_addresses(found.iter().map(|a| a.to_string()).collect());
                    last = Some(found);
                }
            }
            Err(e) => warn!(error = format!("{e:#}"), "cannot list the host's addresses"),
        }
        tokio::time::sleep(ADDRESS_REFRESH).await;
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
