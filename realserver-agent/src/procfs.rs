//! Pure parsers of the /proc files a report is built from (/proc/stat, /proc/loadavg,
//! /proc/meminfo, /proc/net/tcp{,6}).

use std::collections::BTreeMap;

/// A /proc file whose content is not what the kernel writes; the message names the file and
/// quotes the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcError {
    #[error("/proc/stat: bad cpu line {0:?}")]
    BadCpuLine(String),
    #[error("/proc/stat: short cpu line {0:?}")]
    ShortCpuLine(String),
    #[error("/proc/stat: no aggregate cpu line")]
    NoCpuLine,
    #[error("/proc/loadavg: unexpected content {0:?}")]
    Loadavg(String),
    #[error("/proc/meminfo: no MemTotal")]
    NoMemTotal,
    #[error("/proc/net/tcp: bad local address {0:?}")]
    BadLocalAddress(String),
}

/// Aggregate CPU time counters (the "cpu" line of /proc/stat), in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// guest and guest_nice are already part of user and nice, so they are not added.
    pub fn total(&self) -> u64 {
        self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
    }
}

/// The aggregate CPU times and the number of CPUs ("cpuN" lines).
pub fn parse_stat(text: &str) -> Result<(CpuTimes, u32), ProcError> {
    let mut agg = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        match f.next() {
            Some("cpu") => {
                let v: Vec<u64> = f
                    .map(|x| x.parse::<u64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| ProcError::BadCpuLine(line.to_string()))?;
                if v.len() < 4 {
                    return Err(ProcError::ShortCpuLine(line.to_string()));
                }
                let g = |i: usize| v.get(i).copied().unwrap_or(0);
                agg = Some(CpuTimes {
                    user: g(0),
                    nice: g(1),
                    system: g(2),
                    idle: g(3),
                    iowait: g(4),
                    irq: g(5),
                    softirq: g(6),
                    steal: g(7),
                });
            }
            Some(name) if name.starts_with("cpu") && name[3..].parse::<u32>().is_ok() => cpus += 1,
            _ => {}
        }
    }
    let agg = agg.ok_or(ProcError::NoCpuLine)?;
    Ok((agg, cpus.max(1)))
}

/// Busy and steal fractions between two samples: busy = 1 − (idle + iowait) / total, so steal
/// counts as busy (the guest could not run). `None` when no time passed.
pub fn cpu_fractions(prev: &CpuTimes, cur: &CpuTimes) -> Option<(f64, f64)> {
    let total = cur.total().saturating_sub(prev.total());
    if total == 0 {
        return None;
    }
    // iowait may go backwards on some kernels; saturate rather than wrap.
    let idle = cur.idle.saturating_sub(prev.idle) + cur.iowait.saturating_sub(prev.iowait);
    let steal = cur.steal.saturating_sub(prev.steal);
    let t = total as f64;
    let busy = (1.0 - idle as f64 / t).clamp(0.0, 1.0);
    Some((busy, (steal as f64 / t).clamp(0.0, 1.0)))
}

/// The 1, 5 and 15 minute load averages.
pub fn parse_loadavg(text: &str) -> Result<[f64; 3], ProcError> {
    let mut f = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for o in &mut out {
        *o = f
            .next()
            .and_then(|x| x.parse::<f64>().ok())
            .filter(|x| x.is_finite() && *x >= 0.0)
            .ok_or_else(|| ProcError::Loadavg(text.trim().to_string()))?;
    }
    Ok(out)
}

/// MemTotal and MemAvailable in bytes (MemFree + Buffers + Cached on kernels before 3.14, which
/// have no MemAvailable).
pub fn parse_meminfo(text: &str) -> Result<(u64, u64), ProcError> {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let mut parts = v.split_ascii_whitespace();
        let (Some(n), unit) = (
            parts.next().and_then(|n| n.parse::<u64>().ok()),
            parts.next(),
        ) else {
            continue;
        };
        let mult = if unit == Some("kB") { 1024 } else { 1 };
        fields.insert(k.trim(), n.saturating_mul(mult));
    }
    let total = *fields.get("MemTotal").ok_or(ProcError::NoMemTotal)?;
    let available = match fields.get("MemAvailable") {
        Some(a) => *a,
        None => ["MemFree", "Buffers", "Cached"]
            .iter()
            .filter_map(|k| fields.get(k))
            .sum(),
    };
    Ok((total, available.min(total)))
}

/// Adds the established connections (state 01) of /proc/net/tcp or tcp6 whose local port is a
/// key of `counts`.
pub fn count_established(text: &str, counts: &mut BTreeMap<u16, u32>) -> Result<(), ProcError> {
    for line in text.lines().skip(1) {
        let mut f = line.split_ascii_whitespace();
        let (Some(_sl), Some(local), Some(_remote), Some(state)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        if state != "01" {
            continue;
        }
        let port = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
            .ok_or_else(|| ProcError::BadLocalAddress(local.to_string()))?;
        if let Some(c) = counts.get_mut(&port) {
            *c += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT_A: &str = "cpu  100 0 50 800 50 0 0 0 0 0\n\
cpu0 50 0 25 400 25 0 0 0 0 0\n\
cpu1 50 0 25 400 25 0 0 0 0 0\n\
intr 12345 0 0\nctxt 999\nbtime 1700000000\nprocesses 10\nprocs_running 1\n";
    // +100 user, +100 steal, +150 idle, +50 iowait over 400 ticks.
    const STAT_B: &str = "cpu  200 0 50 950 100 0 0 100 0 0\n\
cpu0 100 0 25 475 50 0 0 50 0 0\n\
cpu1 100 0 25 475 50 0 0 50 0 0\n";

    #[test]
    fn stat_and_fractions() {
        let (a, n) = parse_stat(STAT_A).unwrap();
        assert_eq!(n, 2);
        assert_eq!(a.user, 100);
        assert_eq!(a.total(), 1000);
        let (b, _) = parse_stat(STAT_B).unwrap();
        let (busy, steal) = cpu_fractions(&a, &b).unwrap();
        assert!((busy - 0.5).abs() < 1e-9, "{busy}");
        assert!((steal - 0.25).abs() < 1e-9, "{steal}");
        assert_eq!(cpu_fractions(&b, &b), None);
        // Old kernels: 4 fields only.
        let (c, n) = parse_stat("cpu 1 2 3 4\n").unwrap();
        assert_eq!((c.total(), n), (10, 1));
        assert!(parse_stat("intr 1\n").is_err());
        assert!(parse_stat("cpu 1 x 3 4\n").is_err());
        // A counter going backwards does not produce a negative or >1 fraction.
        let mut back = b;
        back.iowait = 0;
        let (busy, _) = cpu_fractions(&a, &back).unwrap();
        assert!((0.0..=1.0).contains(&busy));
    }

    #[test]
    fn loadavg() {
        assert_eq!(
            parse_loadavg("0.52 1.03 2.50 3/412 12345\n").unwrap(),
            [0.52, 1.03, 2.5]
        );
        assert!(parse_loadavg("0.5 x").is_err());
        assert!(parse_loadavg("").is_err());
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:        8000000 kB\nMemFree:          100000 kB\n\
MemAvailable:    4000000 kB\nBuffers:           10000 kB\nHugePages_Total:       0\n";
        assert_eq!(
            parse_meminfo(text).unwrap(),
            (8_000_000 * 1024, 4_000_000 * 1024)
        );
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 10 kB\nCached: 200 kB\n";
        assert_eq!(parse_meminfo(old).unwrap(), (1000 * 1024, 310 * 1024));
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1000 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0050 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:0050 0100007F:D432 01 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:01BB 0100007F:D433 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
   4: 0100007F:D431 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:01BB 00000000000000000000000001000000:E001 01 00000000:00000000 00:00000000 00000000     0        0 2000 1 0000000000000000 20 4 30 10 -1
";

    #[test]
    fn established_per_port() {
        let mut counts: BTreeMap<u16, u32> = [(80, 0), (443, 0)].into_iter().collect();
        count_established(TCP, &mut counts).unwrap();
        count_established(TCP6, &mut counts).unwrap();
        // Listening (0A), time-wait (06) and the client side (local port 0xD431) do not count.
        assert_eq!(counts[&80], 2);
        assert_eq!(counts[&443], 1);
        assert!(count_established("hdr\n 0: zz 00:00 01\n", &mut counts).is_err());
    }
}
