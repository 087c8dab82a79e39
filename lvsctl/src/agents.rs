//! `lvsctl agents` and `lvsctl weights`: the leader's derived state — agents with their last
//! report and its age, and each real server's configured weight beside the weight in force, with
//! its health and drain state.

use anyhow::Result;
use lvs_proto::v1 as pb;
use serde::Serialize;

use crate::client::{admin, Call};
use crate::ctx::Ctx;
use crate::output::json;
use crate::output::table;

async fn get(ctx: &mut Ctx) -> Result<pb::AgentsState> {
    ctx.client
        .call(Call::Read, pb::GetAgentsRequest {}, |ch, r| async move {
            admin(ch).get_agents(r).await
        })
        .await
}

#[derive(Serialize)]
struct AgentDoc<'a> {
    agent: &'a str,
    addresses: &'a [String],
    peer: &'a str,
    connected: bool,
    /// Milliseconds since the last accepted report; null before the first.
    age_ms: Option<u64>,
    reports: u64,
    rejected: u64,
    last_error: Option<&'a str>,
    draining: bool,
    cpu_busy: Option<f64>,
    cpu_steal: Option<f64>,
    load1: Option<f64>,
    mem_available_bytes: Option<u64>,
    /// Probe latency by port, milliseconds (null when the probe failed).
    probes: Vec<ProbeDoc<'a>>,
    app: std::collections::BTreeMap<&'a str, f64>,
}

#[derive(Serialize)]
struct ProbeDoc<'a> {
    port: u32,
    kind: &'a str,
    ok: bool,
    latency_ms: Option<f64>,
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct AgentsDoc<'a> {
    leader: u64,
    agents: Vec<AgentDoc<'a>>,
    stats: Option<StatsDoc>,
}

/// The leader's weight-engine counters.
#[derive(Serialize)]
struct StatsDoc {
    period_ms: u64,
    reports_total: u64,
    reports_rejected: u64,
    steps: u64,
    weight_writes: u64,
    report_to_weight_p50_ms: f64,
    report_to_weight_p99_ms: f64,
    report_to_weight_max_ms: f64,
}

impl StatsDoc {
    fn from_pb(s: &pb::WeightEngineStats) -> StatsDoc {
        StatsDoc {
            period_ms: s.period_ms,
            reports_total: s.reports_total,
            reports_rejected: s.reports_rejected,
            steps: s.steps,
            weight_writes: s.weight_writes,
            report_to_weight_p50_ms: s.report_to_weight_p50_ms,
            report_to_weight_p99_ms: s.report_to_weight_p99_ms,
            report_to_weight_max_ms: s.report_to_weight_max_ms,
        }
    }
}

fn some(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

fn agent_doc(a: &pb::AgentInfo) -> AgentDoc<'_> {
    let l = a.last.as_ref();
    AgentDoc {
        agent: &a.agent,
        addresses: &a.addresses,
        peer: &a.peer,
        connected: a.connected,
        age_ms: (a.last_report_ms > 0).then_some(a.age_ms),
        reports: a.reports,
        rejected: a.rejected,
        last_error: some(&a.last_error),
        draining: l.is_some_and(|l| l.draining),
        cpu_busy: l.map(|l| l.cpu_busy),
        cpu_steal: l.map(|l| l.cpu_steal),
        load1: l.map(|l| l.load1),
        mem_available_bytes: l.map(|l| l.mem_available_bytes),
        probes: l
            .map(|l| {
                l.probes
                    .iter()
                    .map(|p| ProbeDoc {
                        port: p.port,
                        kind: &p.kind,
                        ok: p.ok,
                        latency_ms: p.ok.then_some(p.latency_us as f64 / 1000.0),
                        error: some(&p.error),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        app: l
            .map(|l| l.app.iter().map(|(k, v)| (k.as_str(), *v)).collect())
            .unwrap_or_default(),
    }
}

fn age(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        format!("{}s", ms / 1000)
    }
}

const AGENT_COLUMNS: [&str; 9] = [
    "AGENT",
    "ADDRESSES",
    "STATE",
    "AGE",
    "CPU",
    "LOAD1",
    "PROBES",
    "REPORTS",
    "REJECTED",
];

const WEIGHT_COLUMNS: [&str; 8] = [
    "SERVICE",
    "REAL",
    "POLICY",
    "CONFIGURED",
    "EFFECTIVE",
    "PHASE",
    "HEALTH",
    "AGENT",
];

/// The agents table.
fn agents_text(s: &pb::AgentsState) -> String {
    let mut rows = Vec::new();
    for a in &s.agents {
        let d = agent_doc(a);
        let state = match (d.connected, d.draining) {
            (true, true) => "draining",
            (true, false) => "reporting",
            (false, true) => "gone,draining",
            (false, false) => "gone",
        };
        let probes: Vec<String> = d
            .probes
            .iter()
            .map(|p| match p.latency_ms {
                Some(ms) => format!("{}:{:.1}ms", p.port, ms),
                None => format!("{}:fail", p.port),
            })
            .collect();
        rows.push(vec![
            a.agent.clone(),
            a.addresses.join(","),
            state.into(),
            d.age_ms.map(age).unwrap_or_else(|| "-".into()),
            d.cpu_busy
                .map(|c| format!("{:.0}%", c * 100.0))
                .unwrap_or_else(|| "-".into()),
            d.load1
                .map(|l| format!("{l:.2}"))
                .unwrap_or_else(|| "-".into()),
            if probes.is_empty() {
                "-".into()
            } else {
                probes.join(",")
            },
            a.reports.to_string(),
            a.rejected.to_string(),
        ]);
    }
    let mut out = table(&AGENT_COLUMNS, &rows);
    for a in s.agents.iter().filter(|a| !a.last_error.is_empty()) {
        out.push_str(&format!(
            "{}: last rejected report: {}\n",
            a.agent, a.last_error
        ));
    }
    if let Some(st) = &s.stats {
        out.push_str(&format!("{st}\n"));
    }
    out
}

pub async fn agents(ctx: &mut Ctx) -> Result<()> {
    let s = get(ctx).await?;
    if ctx.json() {
        ctx.print(&json::pretty(&AgentsDoc {
            leader: s.node_id,
            agents: s.agents.iter().map(agent_doc).collect(),
            stats: s.stats.as_ref().map(StatsDoc::from_pb),
        }))
    } else {
        ctx.print(&agents_text(&s))
    }
}

#[derive(Serialize)]
struct RealDoc<'a> {
    service: &'a str,
    real: String,
    policy: &'a str,
    configured_weight: u32,
    effective_weight: u32,
    in_kernel: bool,
    phase: &'a str,
    capacity: Option<f64>,
    health: &'a str,
    health_detail: Option<&'a str>,
    health_since_ms: Option<u64>,
    draining: bool,
    agent: Option<&'a str>,
}

#[derive(Serialize)]
struct WeightsDoc<'a> {
    leader: u64,
    reals: Vec<RealDoc<'a>>,
    /// Services whose sorry server is in the kernel table now, with it.
    sorry: Vec<(&'a str, &'a str)>,
}

fn endpoint(address: &str, port: u32) -> String {
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

fn real_doc(r: &pb::RealState) -> RealDoc<'_> {
    RealDoc {
        service: &r.service,
        real: endpoint(&r.address, r.port),
        policy: &r.policy,
        configured_weight: r.configured_weight,
        effective_weight: r.effective_weight,
        in_kernel: r.in_kernel,
        phase: &r.phase,
        capacity: r.capacity,
        health: &r.health,
        health_detail: some(&r.health_detail),
        health_since_ms: (r.health_since_ms > 0).then_some(r.health_since_ms),
        draining: r.draining,
        agent: some(&r.agent),
    }
}

/// The weights table, one row per real server, grouped by service.
fn weights_text(s: &pb::AgentsState, only: Option<&str>) -> String {
    let mut rows = Vec::new();
    for r in s
        .reals
        .iter()
        .filter(|r| only.is_none_or(|o| o == r.service))
    {
        let mut eff = r.effective_weight.to_string();
        if !r.in_kernel {
            eff = "removed".into();
        } else if r.draining {
            eff.push_str(" (drained)");
        }
        let mut health = r.health.clone();
        if !r.health_detail.is_empty() && r.health == "down" {
            health = format!("down: {}", r.health_detail);
        }
        rows.push(vec![
            r.service.clone(),
            endpoint(&r.address, r.port),
            r.policy.clone(),
            r.configured_weight.to_string(),
            eff,
            r.phase.clone(),
            health,
            if r.agent.is_empty() {
                "-".into()
            } else {
                r.agent.clone()
            },
        ]);
    }
    let mut out = table(&WEIGHT_COLUMNS, &rows);
    for sorry in s
        .sorry
        .iter()
        .filter(|x| only.is_none_or(|o| o == x.service))
    {
        out.push_str(&format!(
            "{}: no real server available, sorry server {} in use\n",
            sorry.service, sorry.sorry
        ));
    }
    out
}

pub async fn weights(ctx: &mut Ctx, service: Option<String>) -> Result<()> {
    let only = match service {
        Some(s) => Some(
            s.parse::<cluster_core::model::ServiceKey>()
                .map_err(|e| anyhow::anyhow!("SERVICE: {e}"))?
                .to_string(),
        ),
        None => None,
    };
    let s = get(ctx).await?;
    if let Some(o) = &only {
        if !s.reals.iter().any(|r| &r.service == o) {
            anyhow::bail!("SERVICE: {o} has no real servers on the leader (or does not exist)");
        }
    }
    if ctx.json() {
        ctx.print(&json::pretty(&WeightsDoc {
            leader: s.node_id,
            reals: s
                .reals
                .iter()
                .filter(|r| only.as_ref().is_none_or(|o| o == &r.service))
                .map(real_doc)
                .collect(),
            sorry: s
                .sorry
                .iter()
                .map(|x| (x.service.as_str(), x.sorry.as_str()))
                .collect(),
        }))
    } else {
        ctx.print(&weights_text(&s, only.as_deref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> pb::AgentsState {
        pb::AgentsState {
            node_id: 1,
            agents: vec![pb::AgentInfo {
                agent: "rs1".into(),
                addresses: vec!["10.0.1.1".into()],
                connected: true,
                last_report_ms: 5,
                age_ms: 400,
                reports: 12,
                last: Some(pb::AgentReport {
                    cpu_busy: 0.25,
                    load1: 0.5,
                    probes: vec![pb::Probe {
                        port: 80,
                        kind: "http".into(),
                        ok: true,
                        latency_us: 1500,
                        error: String::new(),
                    }],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            reals: vec![
                pb::RealState {
                    service: "tcp/10.0.0.10:80".into(),
                    address: "10.0.1.1".into(),
                    port: 80,
                    policy: "latency".into(),
                    configured_weight: 1,
                    effective_weight: 640,
                    in_kernel: true,
                    phase: "fresh".into(),
                    health: "up".into(),
                    agent: "rs1".into(),
                    ..Default::default()
                },
                pb::RealState {
                    service: "tcp/10.0.0.10:80".into(),
                    address: "10.0.1.2".into(),
                    port: 80,
                    policy: "latency".into(),
                    configured_weight: 1,
                    effective_weight: 0,
                    in_kernel: true,
                    phase: "no-reports".into(),
                    health: "down".into(),
                    health_detail: "status 503".into(),
                    ..Default::default()
                },
            ],
            sorry: vec![],
            stats: Some(pb::WeightEngineStats {
                period_ms: 1000,
                ..Default::default()
            }),
        }
    }

    #[test]
    fn tables_show_state_beside_config() {
        let s = state();
        let a = agents_text(&s);
        assert!(
            a.contains("rs1    10.0.1.1   reporting  0.4s  25%  0.50   80:1.5ms  12"),
            "{a}"
        );
        assert_eq!(a.matches("AGENT  ").count(), 1, "one header line: {a}");
        let w = weights_text(&s, None);
        assert_eq!(w.matches("SERVICE").count(), 1, "one header line: {w}");
        assert!(
            w.contains("10.0.1.1:80  latency  1           640        fresh"),
            "{w}"
        );
        assert!(w.contains("down: status 503"), "{w}");
        let v: serde_json::Value =
            serde_json::from_str(&json::pretty(&real_doc(&s.reals[1]))).unwrap();
        assert_eq!(v["health_detail"], "status 503");
        assert_eq!(v["agent"], serde_json::Value::Null);
        assert_eq!(v["real"], "10.0.1.2:80");
    }
}
