//! Checks an agent report before it may change anything, and turns an accepted one into the
//! controller's sample for one real server. Pure.

use std::net::IpAddr;

use cluster_core::weights::Sample;
use lvs_proto::v1 as pb;

/// Most addresses one agent may speak for.
pub const MAX_ADDRESSES: usize = 64;
/// Most application metrics per report.
pub const MAX_APP_METRICS: usize = 64;

/// Why a report was rejected: the field and the reason (`field: reason`, as the agent's ack and
/// the log show it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Rejected {
    pub field: String,
    pub reason: String,
}

impl Rejected {
    fn new(field: impl Into<String>, reason: String) -> Rejected {
        Rejected {
            field: field.into(),
            reason,
        }
    }
}

/// A report's fields checked.
pub fn check(r: &pb::AgentReport) -> Result<Vec<IpAddr>, Rejected> {
    if r.agent.is_empty() || r.agent.len() > 64 {
        return Err(Rejected::new(
            "agent",
            format!(
                "{:?} must be 1..=64 characters",
                r.agent.chars().take(80).collect::<String>()
            ),
        ));
    }
    if !r
        .agent
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(Rejected::new(
            "agent",
            format!(
                "{:?} may only hold letters, digits, '.', '-' and '_'",
                r.agent
            ),
        ));
    }
    if r.addresses.is_empty() || r.addresses.len() > MAX_ADDRESSES {
        return Err(Rejected::new(
            "addresses",
            format!("{} given, expected 1..={MAX_ADDRESSES}", r.addresses.len()),
        ));
    }
    let mut addrs = Vec::with_capacity(r.addresses.len());
    for a in &r.addresses {
        let ip: IpAddr = a
            .parse()
            .map_err(|_| Rejected::new("addresses", format!("{a:?} is not an IP address")))?;
        if !addrs.contains(&ip) {
            addrs.push(ip);
        }
    }
    if !(100..=60_000).contains(&r.interval_ms) {
        return Err(Rejected::new(
            "interval_ms",
            format!("{} is out of range 100..=60000", r.interval_ms),
        ));
    }
    fraction("cpu_busy", r.cpu_busy)?;
    fraction("cpu_steal", r.cpu_steal)?;
    if r.cpus == 0 || r.cpus > 65_536 {
        return Err(Rejected::new(
            "cpus",
            format!("{} is out of range 1..=65536", r.cpus),
        ));
    }
    for (name, v) in [("load1", r.load1), ("load5", r.load5), ("load15", r.load15)] {
        if !v.is_finite() || !(0.0..=1e6).contains(&v) {
            return Err(Rejected::new(name, format!("{v} is not a load average")));
        }
    }
    if r.mem_available_bytes > r.mem_total_bytes {
        return Err(Rejected::new(
            "mem_available_bytes",
            format!(
                "{} exceeds mem_total_bytes {}",
                r.mem_available_bytes, r.mem_total_bytes
            ),
        ));
    }
    for p in &r.probes {
        if p.port == 0 || p.port > 65535 {
            return Err(Rejected::new(
                "probes.port",
                format!("{} is not a port", p.port),
            ));
        }
        if p.latency_us > 3_600_000_000 {
            return Err(Rejected::new(
                "probes.latency_us",
                format!("{} is over an hour", p.latency_us),
            ));
        }
    }
    for c in &r.conns {
        if c.port == 0 || c.port > 65535 {
            return Err(Rejected::new(
                "conns.port",
                format!("{} is not a port", c.port),
            ));
        }
    }
    if r.app.len() > MAX_APP_METRICS {
        return Err(Rejected::new(
            "app",
            format!("{} metrics, at most {MAX_APP_METRICS}", r.app.len()),
        ));
    }
    for (k, v) in &r.app {
        if k.is_empty() || k.len() > 64 {
            return Err(Rejected::new(
                "app",
                format!("metric name {k:?} must be 1..=64 characters"),
            ));
        }
        if !v.is_finite() {
            return Err(Rejected::new(
                format!("app.{k}"),
                format!("{v} is not a finite number"),
            ));
        }
        match k.as_str() {
            "busy" => fraction("app.busy", *v)?,
            "rps" | "inflight" if *v < 0.0 => {
                return Err(Rejected::new(
                    format!("app.{k}"),
                    format!("{v} is negative"),
                ));
            }
            _ => {}
        }
    }
    Ok(addrs)
}

fn fraction(name: &str, v: f64) -> Result<(), Rejected> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(Rejected::new(
            name,
            format!("{v} is not a fraction in 0..=1"),
        ));
    }
    Ok(())
}

/// The controller's view of a report for a real server listening on `port`: busy from the
/// application when it says, else the CPU; throughput from the application's `rps`, else
/// `kernel_cps` (the connections per second this director's kernel sent it); latency from the
/// agent's probe of that port, else its fastest successful probe.
pub fn sample(r: &pb::AgentReport, port: u16, at_ms: u64, kernel_cps: Option<f64>) -> Sample {
    let app = |k: &str| r.app.get(k).copied();
    let ok: Vec<&pb::Probe> = r.probes.iter().filter(|p| p.ok).collect();
    let latency_us = ok
        .iter()
        .find(|p| p.port == port as u32)
        .map(|p| p.latency_us)
        .or_else(|| ok.iter().map(|p| p.latency_us).min());
    Sample {
        at_ms,
        throughput: app("rps").or(kernel_cps),
        busy: Some(app("busy").unwrap_or(r.cpu_busy)),
        latency_ms: latency_us.map(|us| us as f64 / 1000.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn good() -> pb::AgentReport {
        pb::AgentReport {
            agent: "rs1".into(),
            addresses: vec!["10.0.1.1".into()],
            seq: 1,
            sent_unix_ms: 1,
            interval_ms: 1000,
            cpu_busy: 0.3,
            cpu_steal: 0.0,
            cpus: 2,
            load1: 0.5,
            load5: 0.4,
            load15: 0.3,
            mem_total_bytes: 100,
            mem_available_bytes: 50,
            conns: vec![pb::PortConns {
                port: 80,
                established: 3,
            }],
            probes: vec![
                pb::Probe {
                    port: 80,
                    kind: "http".into(),
                    ok: true,
                    latency_us: 2500,
                    error: String::new(),
                },
                pb::Probe {
                    port: 81,
                    kind: "tcp".into(),
                    ok: true,
                    latency_us: 100,
                    error: String::new(),
                },
            ],
            app: Default::default(),
            draining: false,
        }
    }

    #[test]
    fn accepts_a_sane_report() {
        assert_eq!(
            check(&good()).unwrap(),
            vec!["10.0.1.1".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn names_the_field_and_value() {
        type Case = (Box<dyn Fn(&mut pb::AgentReport)>, &'static str);
        let cases: Vec<Case> = vec![
            (Box::new(|r| r.agent = String::new()), "agent: "),
            (Box::new(|r| r.agent = "a b".into()), "agent: \"a b\""),
            (
                Box::new(|r| r.addresses = vec!["x".into()]),
                "addresses: \"x\"",
            ),
            (Box::new(|r| r.addresses.clear()), "addresses: 0 given"),
            (Box::new(|r| r.cpu_busy = f64::NAN), "cpu_busy: NaN"),
            (Box::new(|r| r.cpu_busy = 1.5), "cpu_busy: 1.5"),
            (Box::new(|r| r.cpu_steal = -0.1), "cpu_steal: -0.1"),
            (Box::new(|r| r.load1 = f64::INFINITY), "load1: inf"),
            (Box::new(|r| r.interval_ms = 5), "interval_ms: 5"),
            (Box::new(|r| r.cpus = 0), "cpus: 0"),
            (
                Box::new(|r| r.mem_available_bytes = 500),
                "mem_available_bytes: 500",
            ),
            (Box::new(|r| r.probes[0].port = 70000), "probes.port: 70000"),
            (
                Box::new(|r| {
                    r.app.insert("busy".into(), 2.0);
                }),
                "app.busy: 2",
            ),
            (
                Box::new(|r| {
                    r.app.insert("rps".into(), f64::NAN);
                }),
                "app.rps: NaN",
            ),
        ];
        for (f, want) in cases {
            let mut r = good();
            f(&mut r);
            let e = check(&r).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e:?} should start with {want:?}");
        }
    }

    #[test]
    fn sample_prefers_the_application_and_the_port_probe() {
        let mut r = good();
        let s = sample(&r, 80, 7, Some(12.0));
        assert_eq!(s.busy, Some(0.3));
        assert_eq!(s.throughput, Some(12.0));
        assert_eq!(s.latency_ms, Some(2.5));
        assert_eq!(s.at_ms, 7);
        r.app.insert("busy".into(), 0.9);
        r.app.insert("rps".into(), 40.0);
        let s = sample(&r, 8080, 7, Some(12.0));
        assert_eq!(s.busy, Some(0.9));
        assert_eq!(s.throughput, Some(40.0));
        assert_eq!(
            s.latency_ms,
            Some(0.1),
            "fastest probe when none on the port"
        );
        r.probes.iter_mut().for_each(|p| p.ok = false);
        assert_eq!(sample(&r, 80, 7, None).latency_ms, None);
    }
}
