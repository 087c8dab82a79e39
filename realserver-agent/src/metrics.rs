//! `GET /metrics` of `realserver-agent run` (`[metrics] listen`): the agent's report stream and
//! its last sample in the OpenMetrics text format, prefix `lvs_agent_`. Read from the shared
//! state at scrape time into a plain [`Snapshot`]; [`encode`] turns that into text.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use lvs_ops::openmetrics::{counter, gauge, gauges};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::shared::{Counts, ProbeView, ReportView, Shared, StatusView};

/// Everything one scrape shows.
pub struct Snapshot {
    pub version: &'static str,
    pub counts: Counts,
    pub status: StatusView,
}

/// Every family of one scrape: the report stream's, then the last sample's.
fn families(e: &mut DescriptorEncoder, snap: &Snapshot) -> fmt::Result {
    let Snapshot {
        version,
        counts: c,
        status: s,
    } = snap;
    gauges(
        e,
        "build_info",
        "The agent's version and name",
        None,
        vec![(
            vec![("version", version.to_string()), ("agent", s.agent.clone())],
            1i64,
        )],
    )?;
    counter(
        e,
        "reports_sent",
        "Reports handed to a director stream",
        c.sent,
    )?;
    counter(
        e,
        "reports_acked",
        "Reports a director acknowledged as accepted",
        c.acked,
    )?;
    counter(
        e,
        "reports_rejected",
        "Reports a director acknowledged with an error",
        c.rejected,
    )?;
    counter(
        e,
        "reconnects",
        "Report streams opened after the first one",
        c.connects.saturating_sub(1),
    )?;
    gauge(
        e,
        "connected",
        "1 while a report stream to a director is open",
        None,
        i64::from(s.connected.is_some()),
    )?;
    if let Some(a) = &s.last_ack {
        gauge(
            e,
            "last_ack_age",
            "Time since the last acknowledgement",
            Some(&Unit::Seconds),
            a.age_ms as f64 / 1000.0,
        )?;
    }
    gauge(
        e,
        "draining",
        "1 while the agent reports draining (no new connections)",
        None,
        i64::from(s.draining),
    )?;
    match &s.last_report {
        Some(r) => sample_families(e, r),
        None => Ok(()),
    }
}

/// The families of the last report's sample: CPU, load, memory, connections, probes, app metrics.
fn sample_families(e: &mut DescriptorEncoder, r: &ReportView) -> fmt::Result {
    // Unit::Ratios would name them `_ratios`; the convention is `_ratio`.
    let ratio = Unit::Other("ratio".into());
    gauge(
        e,
        "cpu_busy",
        "Busy CPU fraction over the last interval (steal excluded)",
        Some(&ratio),
        r.cpu_busy,
    )?;
    gauge(
        e,
        "cpu_steal",
        "CPU time stolen by the hypervisor over the last interval",
        Some(&ratio),
        r.cpu_steal,
    )?;
    gauge(e, "cpus", "CPUs of the host", None, r.cpus as i64)?;
    for (i, name) in ["load1", "load5", "load15"].into_iter().enumerate() {
        gauge(
            e,
            name,
            "Load average from the last sample",
            None,
            r.load[i],
        )?;
    }
    gauge(
        e,
        "memory_total",
        "Memory of the host",
        Some(&Unit::Bytes),
        r.mem_total_bytes as i64,
    )?;
    gauge(
        e,
        "memory_available",
        "Available memory (MemAvailable) from the last sample",
        Some(&Unit::Bytes),
        r.mem_available_bytes as i64,
    )?;
    gauges(
        e,
        "established_connections",
        "Established TCP connections on each configured port, from the last sample",
        None,
        r.conns
            .iter()
            .map(|c| (vec![("port", c.port.to_string())], c.established as i64))
            .collect(),
    )?;
    let probe = |p: &ProbeView| vec![("kind", p.kind.clone()), ("port", p.port.to_string())];
    gauges(
        e,
        "probe_up",
        "1 when the last probe of the local application succeeded",
        None,
        r.probes
            .iter()
            .map(|p| (probe(p), i64::from(p.ok)))
            .collect(),
    )?;
    gauges(
        e,
        "probe_latency",
        "Latency of the last successful probe",
        Some(&Unit::Seconds),
        r.probes
            .iter()
            .filter(|p| p.ok)
            .map(|p| (probe(p), p.latency_us as f64 / 1e6))
            .collect(),
    )?;
    gauges(
        e,
        "app_metric",
        "Application metrics posted with `realserver-agent metric`",
        None,
        r.app
            .iter()
            .map(|(k, v)| (vec![("name", k.clone())], *v))
            .collect(),
    )?;
    Ok(())
}

/// The OpenMetrics text of `s`.
pub fn encode(s: Snapshot) -> String {
    lvs_ops::openmetrics::encode("lvs_agent", move |e| families(e, &s))
}

fn snapshot(shared: &Shared) -> Snapshot {
    Snapshot {
        version: env!("CARGO_PKG_VERSION"),
        counts: shared.counts(),
        status: shared.status(),
    }
}

/// Binds the metrics address (the error names `metrics.listen`).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    lvs_ops::metrics_http::bind(addr)
        .await
        .map_err(anyhow::Error::msg)
}

/// Serves `/metrics` on `listener` for the agent's lifetime.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let render = move || {
        let text = encode(snapshot(&shared));
        async move { text }
    };
    lvs_ops::metrics_http::serve(listener, render, std::future::pending()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::{AckView, ConnsView, ProbeView, ReportView};

    fn status() -> StatusView {
        StatusView {
            agent: "web-1".into(),
            interval_ms: 1000,
            addresses: vec!["10.0.1.1".into()],
            directors: vec!["10.0.0.1:7000".into()],
            connected: Some("10.0.0.1:7000".into()),
            connected_for_ms: Some(5000),
            last_error: None,
            last_ack: Some(AckView {
                seq: 9,
                age_ms: 250,
                director: "10.0.0.1:7000".into(),
                matched: vec![],
                error: String::new(),
            }),
            draining: true,
            last_report: Some(ReportView {
                seq: 9,
                sent_unix_ms: 1,
                cpu_busy: 0.25,
                cpu_steal: 0.5,
                cpus: 4,
                load: [1.5, 0.75, 0.25],
                mem_total_bytes: 8 << 30,
                mem_available_bytes: 3 << 30,
                conns: vec![ConnsView {
                    port: 80,
                    established: 12,
                }],
                probes: vec![
                    ProbeView {
                        kind: "http".into(),
                        port: 80,
                        ok: true,
                        latency_us: 1500,
                        error: String::new(),
                    },
                    ProbeView {
                        kind: "tcp".into(),
                        port: 443,
                        ok: false,
                        latency_us: 0,
                        error: "refused".into(),
                    },
                ],
                app: [("busy".to_string(), 0.5)].into_iter().collect(),
                draining: true,
            }),
        }
    }

    fn has(text: &str, line: &str) {
        assert!(
            text.lines().any(|l| l == line),
            "missing line {line:?} in:\n{text}"
        );
    }

    #[test]
    fn every_family_from_a_snapshot() {
        let t = encode(Snapshot {
            version: "1.2.3",
            counts: Counts {
                sent: 10,
                acked: 8,
                rejected: 1,
                connects: 3,
            },
            status: status(),
        });
        assert!(t.ends_with("# EOF\n"), "{t}");
        has(
            &t,
            "lvs_agent_build_info{version=\"1.2.3\",agent=\"web-1\"} 1",
        );
        has(&t, "# TYPE lvs_agent_reports_sent counter");
        has(&t, "lvs_agent_reports_sent_total 10");
        has(&t, "lvs_agent_reports_acked_total 8");
        has(&t, "lvs_agent_reports_rejected_total 1");
        has(&t, "lvs_agent_reconnects_total 2");
        has(&t, "lvs_agent_connected 1");
        has(&t, "lvs_agent_last_ack_age_seconds 0.25");
        has(&t, "lvs_agent_draining 1");
        has(&t, "lvs_agent_cpu_busy_ratio 0.25");
        has(&t, "lvs_agent_cpu_steal_ratio 0.5");
        has(&t, "lvs_agent_cpus 4");
        has(&t, "lvs_agent_load1 1.5");
        has(&t, "lvs_agent_load15 0.25");
        has(&t, "lvs_agent_memory_total_bytes 8589934592");
        has(&t, "lvs_agent_memory_available_bytes 3221225472");
        has(&t, "lvs_agent_established_connections{port=\"80\"} 12");
        has(&t, "lvs_agent_probe_up{kind=\"http\",port=\"80\"} 1");
        has(&t, "lvs_agent_probe_up{kind=\"tcp\",port=\"443\"} 0");
        has(
            &t,
            "lvs_agent_probe_latency_seconds{kind=\"http\",port=\"80\"} 0.0015",
        );
        assert!(!t.contains("probe_latency_seconds{kind=\"tcp\""), "{t}");
        has(&t, "lvs_agent_app_metric{name=\"busy\"} 0.5");
    }

    #[test]
    fn before_the_first_report_and_ack() {
        let mut s = status();
        s.connected = None;
        s.last_ack = None;
        s.last_report = None;
        s.draining = false;
        let t = encode(Snapshot {
            version: "1.2.3",
            counts: Counts::default(),
            status: s,
        });
        has(&t, "lvs_agent_connected 0");
        has(&t, "lvs_agent_reconnects_total 0");
        has(&t, "lvs_agent_draining 0");
        assert!(!t.contains("last_ack_age"), "{t}");
        assert!(!t.contains("cpu_busy"), "{t}");
    }
}
