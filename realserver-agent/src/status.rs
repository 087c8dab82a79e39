//! The readable form of the `status` reply.

use std::fmt::Write;

use crate::shared::StatusView;

fn ago(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        humantime::format_duration(std::time::Duration::from_secs(ms / 1000)).to_string()
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// One "label  value" line per topic.
pub fn render(s: &StatusView) -> String {
    let mut o = String::new();
    let mut line = |k: &str, v: String| {
        let _ = writeln!(o, "{k:<12} {v}");
    };
    line("agent", format!("{} (every {} ms)", s.agent, s.interval_ms));
    line(
        "addresses",
        if s.addresses.is_empty() {
            "none".into()
        } else {
            s.addresses.join(", ")
        },
    );
    line("directors", s.directors.join(", "));
    line(
        "connected",
        match (&s.connected, s.connected_for_ms, &s.last_error) {
            (Some(d), Some(ms), _) => format!("{d} for {}", ago(ms)),
            (Some(d), None, _) => d.clone(),
            (None, _, Some(e)) => format!("no ({e})"),
            (None, _, None) => "not yet".into(),
        },
    );
    line(
        "last ack",
        match &s.last_ack {
            None => "none".into(),
            Some(a) => {
                let mut v = format!("seq {} from {}, {} ago", a.seq, a.director, ago(a.age_ms));
                if !a.error.is_empty() {
                    let _ = write!(v, ", REJECTED: {}", a.error);
                } else if a.matched.is_empty() {
                    v.push_str(", matched no real server");
                } else {
                    let _ = write!(v, ", matched {}", a.matched.join("; "));
                }
                v
            }
        },
    );
    line("draining", if s.draining { "yes" } else { "no" }.into());
    if let Some(r) = &s.last_report {
        line(
            "last report",
            format!(
                "seq {}: cpu {:.1}% (steal {:.1}%) of {} cpus, load {:.2} {:.2} {:.2}, \
                 memory {} of {} available",
                r.seq,
                r.cpu_busy * 100.0,
                r.cpu_steal * 100.0,
                r.cpus,
                r.load[0],
                r.load[1],
                r.load[2],
                gib(r.mem_available_bytes),
                gib(r.mem_total_bytes)
            ),
        );
        if !r.conns.is_empty() {
            let v: Vec<String> = r
                .conns
                .iter()
                .map(|c| format!("port {}: {}", c.port, c.established))
                .collect();
            line("connections", v.join(", "));
        }
        for p in &r.probes {
            line(
                "probe",
                if p.ok {
                    format!(
                        "{} {} ok in {:.1} ms",
                        p.kind,
                        p.port,
                        p.latency_us as f64 / 1000.0
                    )
                } else {
                    format!("{} {} FAILED: {}", p.kind, p.port, p.error)
                },
            );
        }
        if !r.app.is_empty() {
            let v: Vec<String> = r.app.iter().map(|(k, v)| format!("{k}={v}")).collect();
            line("app metrics", v.join(" "));
        }
    } else {
        line("last report", "none yet".into());
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{AckView, ConnsView, ProbeView, ReportView};

    #[test]
    fn renders_every_part() {
        let mut s = StatusView {
            agent: "web-1".into(),
            interval_ms: 1000,
            addresses: vec!["10.0.1.1".into()],
            directors: vec!["10.0.0.1:7000".into(), "10.0.0.2:7000".into()],
            connected: Some("10.0.0.2:7000".into()),
            connected_for_ms: Some(12_000),
            last_error: None,
            last_ack: Some(AckView {
                seq: 41,
                age_ms: 300,
                director: "10.0.0.2:7000".into(),
                matched: vec!["tcp/10.0.0.10:80 10.0.1.1:80".into()],
                error: String::new(),
            }),
            draining: true,
            last_report: Some(ReportView {
                seq: 42,
                sent_unix_ms: 0,
                cpu_busy: 0.123,
                cpu_steal: 0.001,
                cpus: 4,
                load: [0.1, 0.2, 0.3],
                mem_total_bytes: 8 << 30,
                mem_available_bytes: 2 << 30,
                conns: vec![ConnsView {
                    port: 80,
                    established: 12,
                }],
                probes: vec![ProbeView {
                    kind: "http".into(),
                    port: 80,
                    ok: false,
                    latency_us: 0,
                    error: "status 503".into(),
                }],
                app: [("busy".to_string(), 0.42)].into_iter().collect(),
                draining: true,
            }),
        };
        let t = render(&s);
        for want in [
            "web-1 (every 1000 ms)",
            "10.0.0.2:7000 for 12s",
            "seq 41 from 10.0.0.2:7000, 0.3 s ago, matched tcp/10.0.0.10:80 10.0.1.1:80",
            "draining     yes",
            "cpu 12.3% (steal 0.1%) of 4 cpus, load 0.10 0.20 0.30",
            "memory 2.0 GiB of 8.0 GiB available",
            "port 80: 12",
            "http 80 FAILED: status 503",
            "busy=0.42",
        ] {
            assert!(t.contains(want), "missing {want:?} in\n{t}");
        }
        s.connected = None;
        s.last_error = Some("10.0.0.1:7000: connection refused".into());
        s.last_report = None;
        let t = render(&s);
        assert!(t.contains("no (10.0.0.1:7000: connection refused)"), "{t}");
        assert!(t.contains("none yet"), "{t}");
    }
}
