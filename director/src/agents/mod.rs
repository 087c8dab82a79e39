//! Real-server agents on the leader: the registry of agents and their last reports, the gRPC
//! stream they report on, and the weight engine that turns reports and health checks into the
//! overlay the IPVS reconciler programs (`engine`).

pub mod engine;
pub mod report;
pub mod service;

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use tokio::sync::Notify;

/// Reports whose arrival-to-decision time is kept for the percentiles.
const LATENCY_WINDOW: usize = 10_000;

/// Reports from one agent closer together than this are a flood and are rejected.
pub const MIN_REPORT_SPACING: Duration = Duration::from_millis(100);

/// One agent as the leader knows it.
#[derive(Clone, Debug)]
pub struct AgentEntry {
    pub addresses: Vec<IpAddr>,
    pub peer: String,
    /// Open report streams of this agent (more than one only while it reconnects).
    pub streams: u32,
    pub last_report_ms: u64,
    pub last_at: Option<Instant>,
    pub reports: u64,
    pub rejected: u64,
    pub last_error: String,
    pub last: Option<pb::AgentReport>,
    /// When the last reject was logged, so a flood logs once a minute.
    pub last_reject_log: Option<Instant>,
}

#[derive(Default)]
pub struct Inner {
    pub agents: HashMap<String, AgentEntry>,
    /// Which agent speaks for an address.
    pub by_addr: HashMap<IpAddr, String>,
    /// Agents with a report not yet used by a control step, with the first such report's arrival.
    pub pending: HashMap<String, Instant>,
    pub latencies_ms: VecDeque<f64>,
    pub reports_total: u64,
    pub reports_rejected: u64,
}

/// The registry: written by report streams, read by the engine and the API.
#[derive(Default)]
pub struct Registry {
    pub inner: Mutex<Inner>,
    /// Wakes the engine early (a drain or ready must not wait for the next period).
    pub wake: Notify,
}

/// Outcome of offering a report to the registry.
pub enum Offer {
    Accepted,
    Rejected(String),
}

impl Registry {
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("agent registry")
    }

    /// Records a checked report. `known` says whether an address is a configured real server.
    pub fn offer(
        &self,
        r: pb::AgentReport,
        addrs: Vec<IpAddr>,
        peer: &str,
        known: impl Fn(&IpAddr) -> bool,
    ) -> Offer {
        let now = Instant::now();
        let mut g = self.lock();
        g.reports_total += 1;
        let reject = |g: &mut Inner, why: String| {
            g.reports_rejected += 1;
            if let Some(a) = g.agents.get_mut(&r.agent) {
                a.rejected += 1;
                a.last_error = why.clone();
            }
            Offer::Rejected(why)
        };
        let unknown: Vec<String> = addrs
            .iter()
            .filter(|a| !known(a))
            .map(|a| a.to_string())
            .collect();
        if unknown.len() == addrs.len() {
            return reject(
                &mut g,
                format!(
                    "addresses: {} is not a real server of any service",
                    unknown.join(", ")
                ),
            );
        }
        for a in &addrs {
            if let Some(owner) = g.by_addr.get(a) {
                if *owner != r.agent && g.agents.get(owner).is_some_and(|o| o.streams > 0) {
                    let why = format!(
                        "addresses: {a} is already reported by agent {owner:?} (agent names must be unique)"
                    );
                    return reject(&mut g, why);
                }
            }
        }
        if let Some(prev) = g.agents.get(&r.agent).and_then(|e| e.last_at) {
            if now.duration_since(prev) < MIN_REPORT_SPACING {
                let why = format!(
                    "report rate: reports {} ms apart, at least {} ms expected",
                    now.duration_since(prev).as_millis(),
                    MIN_REPORT_SPACING.as_millis()
                );
                return reject(&mut g, why);
            }
        }
        let drain_flip = g
            .agents
            .get(&r.agent)
            .and_then(|e| e.last.as_ref())
            .map_or(r.draining, |l| l.draining != r.draining);
        // Addresses this agent no longer reports are free again.
        if let Some(old) = g.agents.get(&r.agent).map(|e| e.addresses.clone()) {
            for a in old.iter().filter(|a| !addrs.contains(a)) {
                if g.by_addr.get(a) == Some(&r.agent) {
                    g.by_addr.remove(a);
                }
            }
        }
        for a in &addrs {
            g.by_addr.insert(*a, r.agent.clone());
        }
        let name = r.agent.clone();
        let e = g.agents.entry(name.clone()).or_insert_with(|| AgentEntry {
            addresses: Vec::new(),
            peer: String::new(),
            streams: 0,
            last_report_ms: 0,
            last_at: None,
            reports: 0,
            rejected: 0,
            last_error: String::new(),
            last: None,
            last_reject_log: None,
        });
        e.addresses = addrs;
        e.peer = peer.to_string();
        e.last_report_ms = lvs_ops::clock::unix_ms();
        e.last_at = Some(now);
        e.reports += 1;
        e.last = Some(r);
        g.pending.entry(name).or_insert(now);
        drop(g);
        if drain_flip {
            self.wake.notify_one();
        }
        Offer::Accepted
    }

    /// Counts a report that failed its checks (it never reached `offer`).
    pub fn invalid(&self, agent: &str, why: &str) {
        let mut g = self.lock();
        g.reports_total += 1;
        g.reports_rejected += 1;
        if let Some(e) = g.agents.get_mut(agent) {
            e.rejected += 1;
            e.last_error = why.to_string();
        }
    }

    /// A stream of `agent` opened (+1) or closed (-1).
    pub fn stream(&self, agent: &str, delta: i32) {
        let mut g = self.lock();
        if let Some(e) = g.agents.get_mut(agent) {
            e.streams = e.streams.saturating_add_signed(delta);
        }
    }

    /// Whether a reject for `agent` should be logged now (at most once a minute per agent).
    pub fn should_log_reject(&self, agent: &str) -> bool {
        let mut g = self.lock();
        let Some(e) = g.agents.get_mut(agent) else {
            return true;
        };
        let due = e
            .last_reject_log
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(60));
        if due {
            e.last_reject_log = Some(Instant::now());
        }
        due
    }

    /// Takes the agents with unused reports, recording how long their reports waited.
    pub fn take_pending(&self, now: Instant) -> Vec<String> {
        let mut g = self.lock();
        let pending: Vec<(String, Instant)> = g.pending.drain().collect();
        for (_, at) in &pending {
            if g.latencies_ms.len() == LATENCY_WINDOW {
                g.latencies_ms.pop_front();
            }
            g.latencies_ms
                .push_back(now.saturating_duration_since(*at).as_secs_f64() * 1000.0);
        }
        pending.into_iter().map(|(a, _)| a).collect()
    }

    /// p50, p99 and max of the report-to-decision times kept.
    pub fn latency_summary(&self) -> (f64, f64, f64) {
        let g = self.lock();
        let mut v: Vec<f64> = g.latencies_ms.iter().copied().collect();
        drop(g);
        if v.is_empty() {
            return (0.0, 0.0, 0.0);
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let q = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
        (q(0.50), q(0.99), v[v.len() - 1])
    }

    /// Forgets everything (leadership lost: a new leader starts from fresh reports).
    pub fn clear(&self) {
        let mut g = self.lock();
        g.agents.retain(|_, e| e.streams > 0);
        for e in g.agents.values_mut() {
            e.last = None;
            e.last_at = None;
        }
        g.by_addr.clear();
        g.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(agent: &str, addr: &str) -> pb::AgentReport {
        pb::AgentReport {
            agent: agent.into(),
            addresses: vec![addr.into()],
            interval_ms: 1000,
            cpus: 1,
            ..Default::default()
        }
    }

    fn offer(reg: &Registry, r: pb::AgentReport) -> Result<(), String> {
        let addrs = report::check(&r).map_err(|e| e.to_string())?;
        match reg.offer(r, addrs, "peer", |a| a.to_string().starts_with("10.0.1.")) {
            Offer::Accepted => Ok(()),
            Offer::Rejected(e) => Err(e),
        }
    }

    #[test]
    fn unknown_addresses_floods_and_conflicts_are_rejected() {
        let reg = Registry::new();
        let e = offer(&reg, rep("a", "10.9.9.9")).unwrap_err();
        assert_eq!(e, "addresses: 10.9.9.9 is not a real server of any service");
        offer(&reg, rep("a", "10.0.1.1")).unwrap();
        reg.stream("a", 1);
        let e = offer(&reg, rep("a", "10.0.1.1")).unwrap_err();
        assert!(e.starts_with("report rate: "), "{e}");
        let e = offer(&reg, rep("b", "10.0.1.1")).unwrap_err();
        assert!(e.contains("already reported by agent \"a\""), "{e}");
        // Once a's stream is gone, b may take the address over.
        reg.stream("a", -1);
        offer(&reg, rep("b", "10.0.1.1")).unwrap();
        let g = reg.lock();
        assert_eq!(g.by_addr[&"10.0.1.1".parse::<IpAddr>().unwrap()], "b");
        assert_eq!(g.reports_total, 5);
        assert_eq!(g.reports_rejected, 3);
        // Only the flood counts against "a": the ghost report never registered it.
        assert_eq!(g.agents["a"].rejected, 1);
    }

    #[test]
    fn pending_reports_feed_the_latency_window() {
        let reg = Registry::new();
        offer(&reg, rep("a", "10.0.1.1")).unwrap();
        offer(&reg, rep("b", "10.0.1.2")).unwrap();
        let later = Instant::now() + Duration::from_millis(250);
        let mut got = reg.take_pending(later);
        got.sort();
        assert_eq!(got, vec!["a".to_string(), "b".to_string()]);
        assert!(reg.take_pending(later).is_empty());
        let (p50, p99, max) = reg.latency_summary();
        assert!((240.0..400.0).contains(&p50), "{p50}");
        assert!(p99 >= p50 && max >= p99);
    }
}
