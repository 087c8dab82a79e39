//! Health-check state per real server: the rise/fall state machine that turns probe results into
//! Up/Down transitions, and the view of those states that the weight and IPVS logic consume.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{FailureAction, ServiceKey};

/// The outcome of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    pub ok: bool,
    /// Short and human: "connected", "status 503", "timed out after 1000 ms".
    pub detail: String,
    pub latency_us: u64,
}

impl ProbeResult {
    pub fn ok(detail: impl Into<String>, latency_us: u64) -> Self {
        ProbeResult {
            ok: true,
            detail: detail.into(),
            latency_us,
        }
    }

    pub fn fail(detail: impl Into<String>, latency_us: u64) -> Self {
        ProbeResult {
            ok: false,
            detail: detail.into(),
            latency_us,
        }
    }
}

/// A change of a real server's Up/Down state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub up: bool,
    /// The consecutive results that caused it (`rise` successes or `fall` failures).
    pub after: u32,
    pub detail: String,
}

/// Rise/fall tracking for one real server.
///
/// It starts Up, like keepalived without `alpha`: a new leader must not quiesce every real server
/// while it collects its first results. `fall` consecutive failures take it Down, `rise`
/// consecutive successes bring it back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiseFall {
    rise: u32,
    fall: u32,
    up: bool,
    /// Consecutive results that disagree with `up`.
    streak: u32,
    since_ms: u64,
    detail: String,
    last_latency_us: u64,
    checks: u64,
    failures: u64,
}

impl RiseFall {
    /// `rise` and `fall` below 1 are treated as 1.
    pub fn new(rise: u32, fall: u32, now_ms: u64) -> Self {
        RiseFall {
            rise: rise.max(1),
            fall: fall.max(1),
            up: true,
            streak: 0,
            since_ms: now_ms,
            detail: "not checked yet".into(),
            last_latency_us: 0,
            checks: 0,
            failures: 0,
        }
    }

    /// Records a probe result; returns the transition if the state changed.
    pub fn record(&mut self, r: &ProbeResult, now_ms: u64) -> Option<Transition> {
        self.checks += 1;
        if !r.ok {
            self.failures += 1;
        }
        self.detail.clone_from(&r.detail);
        self.last_latency_us = r.latency_us;
        if r.ok == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let need = if self.up { self.fall } else { self.rise };
        if self.streak < need {
            return None;
        }
        self.up = r.ok;
        self.streak = 0;
        self.since_ms = now_ms;
        Some(Transition {
            up: self.up,
            after: need,
            detail: r.detail.clone(),
        })
    }

    pub fn up(&self) -> bool {
        self.up
    }

    /// Unix milliseconds of the last transition (or of the start).
    pub fn since_ms(&self) -> u64 {
        self.since_ms
    }

    /// The detail of the last result.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    pub fn last_latency_us(&self) -> u64 {
        self.last_latency_us
    }

    /// Probes recorded.
    pub fn checks(&self) -> u64 {
        self.checks
    }

    /// Failed probes recorded.
    pub fn failures(&self) -> u64 {
        self.failures
    }

    /// Consecutive results pointing towards the other state.
    pub fn streak(&self) -> u32 {
        self.streak
    }

    /// A snapshot for the view.
    pub fn health(&self, action: FailureAction) -> RealHealth {
        RealHealth {
            up: self.up,
            since_ms: self.since_ms,
            detail: self.detail.clone(),
            last_latency_us: self.last_latency_us,
            checks: self.checks,
            failures: self.failures,
            action,
        }
    }
}

/// Health of one checked real server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealHealth {
    pub up: bool,
    /// Unix milliseconds of the last Up/Down change (or of when checking started).
    pub since_ms: u64,
    pub detail: String,
    pub last_latency_us: u64,
    pub checks: u64,
    pub failures: u64,
    /// What to do with the real server while it is Down.
    pub action: FailureAction,
}

/// Health of every real server that has a health check, keyed by (service, address, port).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthView {
    pub reals: BTreeMap<(ServiceKey, IpAddr, u16), RealHealth>,
}

impl HealthView {
    /// The health of one real server, `None` if it is not checked.
    pub fn get(&self, service: &ServiceKey, address: &IpAddr, port: u16) -> Option<&RealHealth> {
        self.reals.get(&(*service, *address, port))
    }

    /// Whether a real server counts as Down (unchecked ones are Up).
    pub fn is_down(&self, service: &ServiceKey, address: &IpAddr, port: u16) -> bool {
        self.get(service, address, port).is_some_and(|h| !h.up)
    }
}

/// A real server went Up or Down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthEvent {
    pub service: ServiceKey,
    pub address: IpAddr,
    pub port: u16,
    pub up: bool,
    pub detail: String,
    pub at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> ProbeResult {
        ProbeResult::ok("status 200", 120)
    }

    fn fail() -> ProbeResult {
        ProbeResult::fail("status 503", 80)
    }

    #[test]
    fn starts_up_and_falls_after_fall_consecutive_failures() {
        let mut s = RiseFall::new(2, 3, 1000);
        assert!(s.up());
        assert_eq!(s.detail(), "not checked yet");
        assert_eq!(s.record(&fail(), 1001), None);
        assert_eq!(s.record(&fail(), 1002), None);
        assert!(s.up());
        assert_eq!(s.streak(), 2);
        let t = s.record(&fail(), 1003).expect("down");
        assert_eq!(
            t,
            Transition {
                up: false,
                after: 3,
                detail: "status 503".into()
            }
        );
        assert!(!s.up());
        assert_eq!(s.since_ms(), 1003);
        // Further failures are no transition.
        assert_eq!(s.record(&fail(), 1004), None);
        assert_eq!((s.checks(), s.failures()), (4, 4));
    }

    #[test]
    fn a_success_resets_the_failure_streak() {
        let mut s = RiseFall::new(2, 3, 0);
        for now in 1..=10 {
            assert_eq!(s.record(&fail(), now * 10), None);
            assert_eq!(s.record(&fail(), now * 10 + 1), None);
            assert_eq!(s.record(&ok(), now * 10 + 2), None);
        }
        assert!(s.up());
        assert_eq!(s.since_ms(), 0);
        assert_eq!((s.checks(), s.failures()), (30, 20));
        assert_eq!(s.detail(), "status 200");
        assert_eq!(s.last_latency_us(), 120);
    }

    #[test]
    fn rises_after_rise_consecutive_successes() {
        let mut s = RiseFall::new(2, 1, 0);
        assert!(s.record(&fail(), 5).is_some_and(|t| !t.up && t.after == 1));
        assert_eq!(s.record(&ok(), 6), None);
        assert_eq!(s.record(&fail(), 7), None);
        assert_eq!(s.record(&ok(), 8), None);
        assert!(!s.up());
        let t = s.record(&ok(), 9).expect("up");
        assert!(t.up);
        assert_eq!(t.after, 2);
        assert_eq!(t.detail, "status 200");
        assert_eq!(s.since_ms(), 9);
        let h = s.health(FailureAction::Remove);
        assert!(h.up);
        assert_eq!(h.since_ms, 9);
        assert_eq!(h.checks, 5);
        assert_eq!(h.failures, 2);
        assert_eq!(h.action, FailureAction::Remove);
    }

    #[test]
    fn zero_rise_and_fall_act_as_one() {
        let mut s = RiseFall::new(0, 0, 0);
        assert!(s.record(&fail(), 1).is_some());
        assert!(s.record(&ok(), 2).is_some());
    }

    #[test]
    fn view_lookups() {
        let key: ServiceKey = "tcp/10.0.0.10:80".parse().unwrap();
        let a: IpAddr = "10.0.1.1".parse().unwrap();
        let mut v = HealthView::default();
        assert!(!v.is_down(&key, &a, 80));
        let mut s = RiseFall::new(1, 1, 0);
        s.record(&fail(), 1);
        v.reals
            .insert((key, a, 80), s.health(FailureAction::Quiesce));
        assert!(v.is_down(&key, &a, 80));
        assert!(!v.is_down(&key, &a, 81));
        assert_eq!(v.get(&key, &a, 80).unwrap().detail, "status 503");
    }
}
