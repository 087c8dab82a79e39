//! The weight control law: turns agent load reports (or latency probes) into real-server weights
//! that track each server's capacity without oscillating. Pure: no I/O, time is passed in.
//!
//! Per member, a report gives a capacity sample (`Input::Load`: throughput / max(busy, floor);
//! `Input::Latency`: 1 / (latency + fuzz)): capacity rather than load, so the estimate hardly
//! depends on the member's own weight and the loop stays open. Its numerator and denominator are
//! averaged by two EWMAs, a fast one and a slow one, and the estimate is the smaller ratio (drops
//! show quickly, rises slowly, with little bias from noise). Weights are `scale · ĉ / ĉ_ref`,
//! clamped to `[min_fraction·scale, scale]`, where `ĉ_ref` follows the largest estimate with a
//! hysteresis. Output changes smaller than the deadband are skipped and larger ones are slew
//! limited. Members whose reports stop keep their weight for a while and then decay toward their
//! configured weight mapped onto the same scale; they never reach 0 (quiescing is the health
//! checks' job). A member that starts (or resumes) reporting goes through a blackout (weight
//! kept) and a slow start (linear ramp) before its estimate is trusted in full.

use std::collections::BTreeMap;

use crate::model::WeightPolicy;

/// What a capacity sample is derived from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// Agent load reports: capacity = throughput / busy fraction.
    Load,
    /// Response latency ("fastest response"): capacity = 1 / (latency + fuzz).
    Latency,
}

impl Input {
    /// The controller input of a weight policy; `None` for `Static` (no controller).
    pub fn from_policy(policy: WeightPolicy) -> Option<Input> {
        match policy {
            WeightPolicy::Static => None,
            WeightPolicy::Load => Some(Input::Load),
            WeightPolicy::Latency => Some(Input::Latency),
        }
    }
}

/// Tunables of the control law. The defaults were tuned with `cluster_core::sim` (see
/// `lvsctl simulate`): they meet the degraded-server goal with reports every second.
#[derive(Clone, Debug)]
pub struct Params {
    /// Weight of the member with the reference (largest) estimated capacity (W).
    pub scale: u32,
    /// Lowest computed weight as a fraction of `scale`: a server never starves completely,
    /// which keeps it producing the reports that let its weight recover.
    pub min_fraction: f64,
    /// Busy fractions below this count as this (Load input): a nearly idle server's ratio is
    /// dominated by noise.
    pub busy_floor: f64,
    /// Throughput (per second) below which a Load report carries no information and the
    /// previous estimate is kept.
    pub min_throughput: f64,
    /// Added to latencies before taking ratios (Latency input), so that 10 ms vs 80 ms does not
    /// become 1:8 (lvs-kiss' fuzz).
    pub latency_fuzz_ms: f64,
    /// Time constant of the slow EWMA, which governs rises of the estimate (capacity is
    /// believed gradually, and a few lucky periods do not pull traffic in).
    pub tau_up_ms: f64,
    /// Time constant of the fast EWMA, which governs drops (an overloaded server's queue grows
    /// without bound, an underloaded one only idles).
    pub tau_down_ms: f64,
    /// Load input: both EWMAs span at least this many completed requests (their time
    /// constant is at least this / throughput). A capacity estimate's noise falls with the
    /// square root of the requests it is made of, so a server with little traffic is averaged
    /// over a longer time rather than reacting to noise.
    pub min_span_requests: f64,
    /// Relative change of the output below which the weight is left alone.
    pub deadband: f64,
    /// The reference capacity (the one that maps to `scale`) follows the largest trusted
    /// estimate only when that moves by more than this fraction: with equal servers the
    /// largest of several noisy estimates would otherwise move every weight at once.
    pub norm_band: f64,
    /// Largest relative increase per step.
    pub slew_up: f64,
    /// Largest relative decrease per step (larger than `slew_up`, for the same asymmetry as the
    /// EWMA time constants; the deadband and the slow rise keep it from ping-ponging).
    pub slew_down: f64,
    /// Expected interval between reports of one member.
    pub report_period_ms: u64,
    /// A member whose newest report is at most this many periods old is fresh.
    pub fresh_periods: f64,
    /// After the fresh window, the weight is held unchanged for this many more periods.
    pub hold_periods: f64,
    /// Then it decays toward the static-scaled weight with this time constant: slowly, since a
    /// silent agent is more often a dead agent than a changed server, and the last estimate is
    /// better evidence than the configured weight (the silent-agent scenario shows the cost).
    pub decay_tau_ms: f64,
    /// A new (or returning) reporter keeps its static-scaled weight this long after its first
    /// usable report, while its estimate settles (gRPC WRR's blackout).
    pub blackout_ms: u64,
    /// Then its weight ramps from where it was to the estimate over this long (Envoy's slow
    /// start); decreases are not ramped.
    pub slow_start_ms: u64,
    /// Ramp shape: progress^(1/aggression); 1 is linear, larger front-loads the ramp.
    pub slow_start_aggression: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            scale: 1000,
            min_fraction: 0.1,
            busy_floor: 0.02,
            min_throughput: 0.5,
            latency_fuzz_ms: 20.0,
            tau_up_ms: 30_000.0,
            tau_down_ms: 4_000.0,
            min_span_requests: 800.0,
            deadband: 0.1,
            norm_band: 0.05,
            slew_up: 0.25,
            slew_down: 0.5,
            report_period_ms: 1000,
            fresh_periods: 2.0,
            hold_periods: 3.0,
            decay_tau_ms: 60_000.0,
            blackout_ms: 10_000,
            slow_start_ms: 30_000,
            slow_start_aggression: 1.0,
        }
    }
}

impl Params {
    /// The lowest weight the estimate maps to.
    pub fn min_weight(&self) -> u32 {
        ((self.scale as f64 * self.min_fraction).round() as u32).clamp(1, self.scale.max(1))
    }

    fn fresh_ms(&self) -> f64 {
        self.fresh_periods * self.report_period_ms as f64
    }

    /// Age of the newest report beyond which the weight decays.
    fn decay_after_ms(&self) -> f64 {
        (self.fresh_periods + self.hold_periods) * self.report_period_ms as f64
    }
}

/// One agent report (or probe result).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// When the report was taken (monotonic ms, same clock as `step`).
    pub at_ms: u64,
    /// Requests (or connections) completed per second over the period.
    pub throughput: Option<f64>,
    /// Busy fraction 0..=1 (CPU including steal, or the application's own).
    pub busy: Option<f64>,
    /// Response latency of a local probe or of requests.
    pub latency_ms: Option<f64>,
}

crate::named_enum! {
    /// Why a member has the weight it has.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Phase {
        /// No usable report yet: the static-scaled weight.
        NoReports => "no-reports",
        /// Reports are current: the weight follows the estimate.
        Fresh => "fresh",
        /// Reports are late: the last weight is kept.
        Held => "held",
        /// Reports stopped: decaying toward the static-scaled weight.
        Decaying => "decaying",
        /// Reports (re)started recently: the estimate settles, the weight is not yet moved by it.
        Blackout => "blackout",
        /// After the blackout: the weight ramps toward the estimate.
        SlowStart => "slow-start",
    }
    unknown = "weight phase", case_insensitive = false, listing = Or;
}

/// The weight of one member after a step.
#[derive(Clone, Copy, Debug)]
pub struct Decision {
    pub weight: u32,
    pub phase: Phase,
    /// Smoothed capacity estimate (requests per busy second, or 1/ms for Latency).
    pub capacity: Option<f64>,
    /// The weight differs from the previous step's.
    pub changed: bool,
}

#[derive(Clone, Debug)]
struct Member {
    static_weight: u32,
    /// Smoothed capacity; reset when reports resume after going stale.
    est: Option<f64>,
    /// EWMAs of the samples' numerators and denominators (throughput and busy, or 1 and
    /// latency + fuzz) with `tau_down_ms` and with `tau_up_ms`. `est` is the smaller of the two
    /// ratios: a drop shows within the fast time constant, a rise only in the slow one. A ratio
    /// of averages lets a period with little traffic (a noisy ratio) move the estimate little,
    /// and taking the minimum of two smoothed ratios (rather than switching one EWMA's gain by
    /// the sign of each noisy sample) keeps the estimate nearly unbiased under noise.
    fast: (f64, f64),
    slow: (f64, f64),
    /// `at_ms` of the newest report accepted (usable or not).
    last_at: Option<u64>,
    /// `at_ms` of the newest usable sample folded into `est` (EWMA time step).
    last_sample_at: Option<u64>,
    /// Reports (re)started: the next usable sample starts the blackout.
    resume_pending: bool,
    /// Start of the blackout (first usable sample after (re)starting).
    resume_at: Option<u64>,
    /// Decay toward static: (weight, time) it started from.
    decay_from: Option<(u32, u64)>,
    /// Slow start ramp origin.
    ramp_from: Option<u32>,
    weight: u32,
    last_sign: i8,
    reversals: u64,
}

impl Member {
    fn new(static_weight: u32, weight: u32) -> Self {
        Member {
            static_weight,
            est: None,
            fast: (0.0, 0.0),
            slow: (0.0, 0.0),
            last_at: None,
            last_sample_at: None,
            resume_pending: true,
            resume_at: None,
            decay_from: None,
            ramp_from: None,
            weight,
            last_sign: 0,
            reversals: 0,
        }
    }
}

/// Weight controller for the members of one service.
pub struct Controller<K: Ord + Clone> {
    input: Input,
    params: Params,
    members: BTreeMap<K, Member>,
    /// Reference capacity (maps to `scale`), see `Params::norm_band`.
    norm: Option<f64>,
}

impl<K: Ord + Clone> Controller<K> {
    pub fn new(input: Input, params: Params) -> Self {
        Controller {
            input,
            params,
            members: BTreeMap::new(),
            norm: None,
        }
    }

    pub fn input(&self) -> Input {
        self.input
    }

    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Members and their configured (static) weights; keeps state of members that stay, drops
    /// the rest.
    pub fn set_members(&mut self, members: &[(K, u32)]) {
        let max_static = members.iter().map(|(_, w)| *w).max().unwrap_or(0);
        let mut next = BTreeMap::new();
        for (key, w) in members {
            let scaled = self.static_scaled(*w, max_static);
            let m = match self.members.remove(key) {
                Some(mut m) => {
                    m.static_weight = *w;
                    m
                }
                None => Member::new(*w, scaled),
            };
            next.insert(key.clone(), m);
        }
        self.members = next;
    }

    /// Folds one report in (ignored for unknown keys, for reports older than the newest one
    /// seen, and for NaN/infinite/negative values).
    pub fn report(&mut self, key: &K, sample: Sample) {
        let params = &self.params;
        let input = self.input;
        let Some(m) = self.members.get_mut(key) else {
            return;
        };
        if m.last_at.is_some_and(|last| sample.at_ms <= last) {
            return;
        }
        if m.last_at
            .is_some_and(|last| (sample.at_ms - last) as f64 > params.decay_after_ms())
        {
            // Back after going stale: the old estimate may describe another server.
            m.est = None;
            m.last_sample_at = None;
            m.resume_pending = true;
            m.resume_at = None;
            m.ramp_from = None;
        }
        m.last_at = Some(sample.at_ms);
        let Some((num, den)) = capacity_sample(input, params, &sample) else {
            return;
        };
        if m.resume_pending {
            m.resume_pending = false;
            m.resume_at = Some(sample.at_ms);
        }
        match (m.est, m.last_sample_at) {
            (Some(_), Some(prev)) => {
                let dt = sample.at_ms.saturating_sub(prev) as f64;
                let ewma = |acc: &mut (f64, f64), tau: f64| {
                    let alpha = if tau > 0.0 {
                        1.0 - (-dt / tau).exp()
                    } else {
                        1.0
                    };
                    acc.0 += alpha * (num - acc.0);
                    acc.1 += alpha * (den - acc.1);
                };
                // Load: the numerator is the throughput (per second).
                let span_ms = match input {
                    Input::Load if m.slow.0 > 0.0 => {
                        params.min_span_requests / m.slow.0.min(m.fast.0) * 1000.0
                    }
                    _ => 0.0,
                };
                ewma(&mut m.fast, params.tau_down_ms.max(span_ms));
                ewma(&mut m.slow, params.tau_up_ms.max(span_ms));
            }
            _ => {
                m.fast = (num, den);
                m.slow = (num, den);
            }
        }
        m.est = Some((m.fast.0 / m.fast.1).min(m.slow.0 / m.slow.1))
            .filter(|c| c.is_finite() && *c > 0.0);
        m.last_sample_at = Some(sample.at_ms);
    }

    /// One control step at `now_ms`: the weight of every member.
    pub fn step(&mut self, now_ms: u64) -> BTreeMap<K, Decision> {
        let p = &self.params;
        let max_static = self
            .members
            .values()
            .map(|m| m.static_weight)
            .max()
            .unwrap_or(0);
        let phases: Vec<Phase> = self
            .members
            .values()
            .map(|m| phase_of(p, m, now_ms))
            .collect();
        // Normalise by the members whose estimates are trusted right now.
        let top = self
            .members
            .values()
            .zip(&phases)
            .filter(|(_, ph)| matches!(ph, Phase::Fresh | Phase::Held | Phase::SlowStart))
            .filter_map(|(m, _)| m.est)
            .fold(0.0_f64, f64::max);
        let norm = match self.norm {
            _ if top <= 0.0 => 0.0,
            Some(n) if (top - n).abs() <= p.norm_band * n => n,
            _ => top,
        };
        self.norm = (norm > 0.0).then_some(norm);
        let w_min = p.min_weight();
        let scale = p.scale.max(1);
        let mut out = BTreeMap::new();
        for ((key, m), phase) in self.members.iter_mut().zip(phases) {
            let stat = static_scaled(scale, m.static_weight, max_static);
            let prev = m.weight;
            let estimate_weight = |m: &Member| -> u32 {
                match m.est {
                    Some(est) if norm > 0.0 => {
                        ((scale as f64 * est / norm).round() as u32).clamp(w_min, scale)
                    }
                    _ => prev,
                }
            };
            let next = match phase {
                Phase::NoReports if m.last_at.is_none() => {
                    m.decay_from = None;
                    stat
                }
                Phase::NoReports | Phase::Decaying | Phase::Blackout => {
                    m.ramp_from = None;
                    let (w0, t0) = *m.decay_from.get_or_insert((prev, now_ms));
                    let k = (-(now_ms.saturating_sub(t0) as f64) / p.decay_tau_ms.max(1.0)).exp();
                    let target = stat as f64 + (w0 as f64 - stat as f64) * k;
                    let target = (target.round() as u32).max(1);
                    // The last step lands on the static-scaled weight even inside the deadband.
                    if within(prev, stat, p.deadband) {
                        stat
                    } else {
                        limit(p, prev, target)
                    }
                }
                Phase::Held => prev,
                Phase::SlowStart => {
                    m.decay_from = None;
                    let from = *m.ramp_from.get_or_insert(prev);
                    let full = estimate_weight(m);
                    let target = if full > from {
                        let start = m.resume_at.unwrap_or(now_ms) + p.blackout_ms;
                        let progress = (now_ms.saturating_sub(start) as f64
                            / p.slow_start_ms.max(1) as f64)
                            .clamp(0.0, 1.0);
                        let f = progress.powf(1.0 / p.slow_start_aggression.max(1e-3));
                        (from as f64 + (full - from) as f64 * f).round() as u32
                    } else {
                        full
                    };
                    limit(p, prev, target)
                }
                Phase::Fresh => {
                    m.decay_from = None;
                    m.ramp_from = None;
                    limit(p, prev, estimate_weight(m))
                }
            };
            let sign = (next as i64 - prev as i64).signum() as i8;
            if sign != 0 {
                if m.last_sign != 0 && m.last_sign != sign {
                    m.reversals += 1;
                }
                m.last_sign = sign;
            }
            m.weight = next;
            out.insert(
                key.clone(),
                Decision {
                    weight: next,
                    phase,
                    capacity: m.est,
                    changed: next != prev,
                },
            );
        }
        out
    }

    /// Sign reversals of weight changes beyond the deadband, per member, since creation.
    pub fn reversals(&self, key: &K) -> u64 {
        self.members.get(key).map_or(0, |m| m.reversals)
    }

    /// The weight the last step gave `key` (the static-scaled one before any step).
    pub fn weight(&self, key: &K) -> Option<u32> {
        self.members.get(key).map(|m| m.weight)
    }

    fn static_scaled(&self, w: u32, max_static: u32) -> u32 {
        static_scaled(self.params.scale.max(1), w, max_static)
    }
}

/// A configured weight mapped onto the controller's scale (the largest one becomes `scale`);
/// never 0, since the controller does not quiesce.
fn static_scaled(scale: u32, w: u32, max_static: u32) -> u32 {
    if max_static == 0 {
        return scale;
    }
    ((scale as f64 * w as f64 / max_static as f64).round() as u32).clamp(1, scale)
}

/// A report as the numerator and denominator of a capacity sample, `None` when it carries no
/// information.
fn capacity_sample(input: Input, p: &Params, s: &Sample) -> Option<(f64, f64)> {
    let (num, den) = match input {
        Input::Load => {
            let thr = s.throughput.filter(|t| t.is_finite() && *t >= 0.0)?;
            let busy = s.busy.filter(|b| b.is_finite() && *b >= 0.0)?.min(1.0);
            if thr < p.min_throughput.max(f64::MIN_POSITIVE) {
                return None;
            }
            (thr, busy.max(p.busy_floor).max(1e-9))
        }
        Input::Latency => {
            let lat = s.latency_ms.filter(|l| l.is_finite() && *l >= 0.0)?;
            (1.0, lat + p.latency_fuzz_ms.max(1e-9))
        }
    };
    let c = num / den;
    (num.is_finite() && den.is_finite() && c.is_finite() && c > 0.0).then_some((num, den))
}

fn phase_of(p: &Params, m: &Member, now: u64) -> Phase {
    let Some(last) = m.last_at else {
        return Phase::NoReports;
    };
    let age = now.saturating_sub(last) as f64;
    if age > p.decay_after_ms() {
        return Phase::Decaying;
    }
    if age > p.fresh_ms() {
        return Phase::Held;
    }
    let Some(resume) = m.resume_at else {
        return Phase::NoReports;
    };
    let since = now.saturating_sub(resume);
    if since < p.blackout_ms {
        Phase::Blackout
    } else if since < p.blackout_ms + p.slow_start_ms {
        Phase::SlowStart
    } else {
        Phase::Fresh
    }
}

/// `a` and `b` differ by less than `band` relative to `a`.
fn within(a: u32, b: u32, band: f64) -> bool {
    (b as f64 - a as f64).abs() < band * a.max(1) as f64
}

/// Deadband, then slew limit, from `prev` toward `target`.
fn limit(p: &Params, prev: u32, target: u32) -> u32 {
    if target == prev || within(prev, target, p.deadband) {
        return prev;
    }
    let prev_f = prev as f64;
    let hi = (prev_f * (1.0 + p.slew_up)).floor().max(prev_f + 1.0);
    let lo = (prev_f * (1.0 - p.slew_down))
        .ceil()
        .min(prev_f - 1.0)
        .max(1.0);
    (target as f64).clamp(lo, hi) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 1000;

    fn load(at_ms: u64, thr: f64, busy: f64) -> Sample {
        Sample {
            at_ms,
            throughput: Some(thr),
            busy: Some(busy),
            latency_ms: None,
        }
    }

    /// Reports from `from_s` for `secs` seconds (capacity per member and second, `None` =
    /// silent), each at half load with plenty of traffic (so the time constants are the
    /// configured ones, not `min_span_requests`), and a step half a second after each.
    fn run(
        ctl: &mut Controller<&'static str>,
        from_s: u64,
        secs: u64,
        cap: impl Fn(&str, u64) -> Option<f64>,
    ) -> Vec<BTreeMap<&'static str, Decision>> {
        let keys: Vec<&'static str> = ctl.members.keys().copied().collect();
        let mut out = Vec::new();
        for s in from_s..from_s + secs {
            for k in &keys {
                if let Some(c) = cap(k, s) {
                    ctl.report(k, load(s * P, c * 50.0, 0.5));
                }
            }
            out.push(ctl.step(s * P + 500));
        }
        out
    }

    fn pair() -> Controller<&'static str> {
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 1), ("b", 1)]);
        c
    }

    fn settled() -> Controller<&'static str> {
        let mut c = pair();
        run(&mut c, 0, 60, |_, _| Some(100.0));
        c
    }

    #[test]
    fn weights_unreported_members_get_static_scaled_weights() {
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 2), ("b", 4), ("c", 0)]);
        let d = c.step(0);
        assert_eq!(d["a"].weight, 500);
        assert_eq!(d["b"].weight, 1000);
        assert_eq!(
            d["c"].weight, 1,
            "a configured 0 is not the controller's to apply"
        );
        assert!(d
            .values()
            .all(|d| d.phase == Phase::NoReports && !d.changed));
    }

    #[test]
    fn weights_step_response_decreases_fast_increases_slowly() {
        let mut c = settled();
        assert_eq!(c.weight(&"a"), Some(1000));
        assert_eq!(c.weight(&"b"), Some(1000));
        // b's capacity halves.
        let d = run(&mut c, 60, 30, |k, _| {
            Some(if k == "b" { 50.0 } else { 100.0 })
        });
        // The fast EWMA (4 s) and the deadband make a staircase: within 20% after 8 s.
        let down = d.iter().position(|d| d["b"].weight <= 600).unwrap();
        assert!(down <= 8, "reached ~half after {down} s");
        assert_eq!(d.last().unwrap()["b"].phase, Phase::Fresh);
        assert!((480..=560).contains(&d.last().unwrap()["b"].weight));
        assert_eq!(d.last().unwrap()["a"].weight, 1000);
        // and recovers, more slowly.
        let u = run(&mut c, 90, 120, |_, _| Some(100.0));
        let up = u.iter().position(|d| d["b"].weight >= 920).unwrap();
        assert!(up > down, "rise {up} s vs fall {down} s");
        assert!(up <= 80, "recovered after {up} s");
    }

    #[test]
    fn weights_map_to_scale_with_floor() {
        let mut c = pair();
        let d = run(&mut c, 0, 120, |k, _| {
            Some(if k == "b" { 2.0 } else { 100.0 })
        });
        let last = d.last().unwrap();
        assert_eq!(last["a"].weight, 1000);
        assert_eq!(last["b"].weight, Params::default().min_weight());
        assert_eq!(Params::default().min_weight(), 100);
    }

    #[test]
    fn weights_deadband_skips_small_changes() {
        let mut c = settled();
        let d = run(&mut c, 60, 60, |k, _| {
            Some(if k == "b" { 95.0 } else { 100.0 })
        });
        assert!(d.iter().all(|d| d["b"].weight == 1000 && !d["b"].changed));
        let d = run(&mut c, 120, 60, |k, _| {
            Some(if k == "b" { 85.0 } else { 100.0 })
        });
        assert!(d.iter().any(|d| d["b"].changed));
        // The weight stops within the deadband of the estimate (850).
        assert!((850..=924).contains(&d.last().unwrap()["b"].weight));
    }

    #[test]
    fn weights_slew_limits_each_step() {
        let mut c = settled();
        let p = Params::default();
        let d = run(&mut c, 60, 40, |k, _| {
            Some(if k == "b" { 1.0 } else { 100.0 })
        });
        let mut prev = 1000.0;
        for d in &d {
            let w = d["b"].weight as f64;
            assert!(w >= (prev * (1.0 - p.slew_down)).floor(), "{prev} -> {w}");
            prev = w;
        }
        assert_eq!(prev as u32, p.min_weight());
        let u = run(&mut c, 100, 120, |_, _| Some(100.0));
        for d in &u {
            let w = d["b"].weight as f64;
            assert!(w <= (prev * (1.0 + p.slew_up)).ceil(), "{prev} -> {w}");
            prev = w;
        }
        assert!(prev >= 920.0);
    }

    #[test]
    fn weights_stale_member_holds_then_decays_to_static_never_zero() {
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 1), ("b", 1)]);
        run(&mut c, 0, 80, |k, _| {
            Some(if k == "b" { 20.0 } else { 100.0 })
        });
        assert_eq!(c.weight(&"b"), Some(200));
        // b goes silent at t = 80 s.
        let d = run(&mut c, 80, 200, |k, _| (k == "a").then_some(100.0));
        // Last report at 79 s; steps at 80.5 s, 81.5 s, ..: fresh until 81 s, held until 84 s.
        assert_eq!(d[0]["b"].phase, Phase::Fresh);
        for d in &d[1..4] {
            assert_eq!(d["b"].phase, Phase::Held);
            assert_eq!(d["b"].weight, 200);
        }
        assert_eq!(d[4]["b"].phase, Phase::Decaying);
        let mut prev = 200;
        for d in &d[4..] {
            assert!(d["b"].weight >= prev && d["b"].weight > 0);
            prev = d["b"].weight;
        }
        assert_eq!(prev, 1000, "decays to the static-scaled weight");
        assert_eq!(d.last().unwrap()["a"].weight, 1000);
    }

    #[test]
    fn weights_decay_of_a_strong_member_stops_at_static_not_zero() {
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 1), ("b", 10)]);
        run(&mut c, 0, 80, |_, _| Some(100.0));
        // Slow start brought a from 100 to within the deadband of 1000.
        assert!(c.weight(&"a").unwrap() >= 920);
        let d = run(&mut c, 80, 300, |k, _| (k == "b").then_some(100.0));
        assert_eq!(d.last().unwrap()["a"].weight, 100);
        assert!(d.iter().all(|d| d["a"].weight >= 100));
        assert_eq!(d.last().unwrap()["a"].phase, Phase::Decaying);
    }

    #[test]
    fn weights_new_reporter_blackout_then_slow_start() {
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 1), ("b", 1)]);
        // a is much faster than b from the start.
        let d = run(&mut c, 0, 80, |k, _| {
            Some(if k == "b" { 25.0 } else { 100.0 })
        });
        for (s, d) in d.iter().enumerate() {
            let ph = d["b"].phase;
            if s < 10 {
                assert_eq!(ph, Phase::Blackout, "t={s}");
                assert_eq!(d["b"].weight, 1000);
            } else if s < 40 {
                assert_eq!(ph, Phase::SlowStart, "t={s}");
            } else {
                assert_eq!(ph, Phase::Fresh, "t={s}");
            }
        }
        // Decreases are not ramped: b drops right after the blackout.
        assert!(d[13]["b"].weight <= 300);
        assert_eq!(d[79]["b"].weight, 250);
    }

    #[test]
    fn weights_slow_start_ramps_increases() {
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 1), ("b", 4)]);
        // Configured 1:4, reported 1:1: a must ramp from 250 to 1000 over the slow start.
        let d = run(&mut c, 0, 80, |_, _| Some(100.0));
        assert_eq!(d[9]["a"].weight, 250);
        let mid = d[25]["a"].weight;
        assert!((500..=750).contains(&mid), "mid-ramp {mid}");
        assert!(d[45]["a"].weight >= 920);
        let mut prev = 0;
        for d in &d {
            assert!(d["a"].weight >= prev);
            prev = d["a"].weight;
        }
    }

    #[test]
    fn weights_resume_after_staleness_goes_through_blackout() {
        let mut c = settled();
        run(&mut c, 60, 30, |k, _| {
            Some(if k == "b" { 50.0 } else { 100.0 })
        });
        let before = c.weight(&"b").unwrap();
        assert!(before < 600);
        run(&mut c, 90, 20, |k, _| (k == "a").then_some(100.0));
        let d = run(&mut c, 110, 60, |k, _| {
            Some(if k == "b" { 50.0 } else { 100.0 })
        });
        assert_eq!(d[0]["b"].phase, Phase::Blackout);
        assert_eq!(d[9]["b"].phase, Phase::Blackout);
        assert_eq!(d[10]["b"].phase, Phase::SlowStart);
        assert!((480..=560).contains(&d[59]["b"].weight));
    }

    #[test]
    fn weights_ignore_nan_inf_negative_and_old_reports() {
        let mut c = settled();
        let before = c.step(60 * P + 500);
        for s in [
            load(61 * P, f64::NAN, 0.5),
            load(61 * P, 50.0, f64::INFINITY),
            load(61 * P, -5.0, 0.5),
            load(61 * P, f64::INFINITY, 0.5),
            Sample {
                at_ms: 61 * P,
                ..Default::default()
            },
            load(10 * P, 1.0, 1.0),
        ] {
            c.report(&"b", s);
        }
        let after = c.step(61 * P + 500);
        assert_eq!(before["b"].capacity, after["b"].capacity);
        assert_eq!(after["b"].weight, 1000);
        // Unknown members are ignored.
        c.report(&"zz", load(62 * P, 1.0, 1.0));
        assert!(!c.step(62 * P).contains_key("zz"));
    }

    #[test]
    fn weights_no_traffic_keeps_estimate() {
        let mut c = settled();
        let cap = c.step(60 * P + 500)["b"].capacity;
        for s in 61..70 {
            c.report(&"b", load(s * P, 0.0, 0.0));
            c.report(&"a", load(s * P, 50.0, 0.5));
            let d = c.step(s * P + 500);
            assert_eq!(d["b"].capacity, cap);
            assert_eq!(d["b"].phase, Phase::Fresh);
            assert_eq!(d["b"].weight, 1000);
        }
    }

    #[test]
    fn weights_no_oscillation_under_noisy_constant_input() {
        // Deterministic multiplicative noise of ±20% (uniform) on every member.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut noise = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            0.8 + 0.4 * (x >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut c = Controller::new(Input::Load, Params::default());
        c.set_members(&[("a", 1), ("b", 1), ("c", 1)]);
        let mut writes = 0;
        for s in 0..600 {
            for (k, cap) in [("a", 100.0), ("b", 100.0), ("c", 50.0)] {
                c.report(&k, load(s * P, cap * 0.5 * noise(), 0.5));
            }
            let d = c.step(s * P + 500);
            if s >= 60 {
                writes += d.values().filter(|d| d.changed).count();
                assert!((400..=600).contains(&d["c"].weight), "{:?}", d["c"]);
            }
        }
        for k in ["a", "b", "c"] {
            assert!(c.reversals(&k) <= 9, "{k}: {} reversals", c.reversals(&k));
        }
        assert!(writes <= 30, "{writes} weight writes in 9 minutes");
    }

    #[test]
    fn weights_low_traffic_is_averaged_over_more_time() {
        // Same capacities (100 per busy second) and the same halving; "a" serves 5000 req/s,
        // "b" 10 req/s, so b's averages span min_span_requests / 10 = 80 s instead of 4 s.
        let mut c = pair();
        let mut last = BTreeMap::new();
        for s in 0..600u64 {
            let cap = if s < 200 { 100.0 } else { 50.0 };
            c.report(&"a", load(s * P, cap * 50.0, 0.5));
            c.report(&"b", load(s * P, cap * 0.1, 0.1));
            last = c.step(s * P + 500);
            if s == 210 {
                let (a, b) = (last["a"].capacity.unwrap(), last["b"].capacity.unwrap());
                assert!(a < 0.6 * 5000.0 / 0.5, "a already near half: {a}");
                assert!(b > 0.85 * 100.0, "b still near its old capacity: {b}");
            }
        }
        // It gets there all the same (at 5 req/s the span is 160 s).
        assert!(last["b"].capacity.unwrap() < 60.0);
    }

    #[test]
    fn weights_latency_input_uses_fuzz() {
        let mut c = Controller::new(Input::Latency, Params::default());
        c.set_members(&[("fast", 1), ("slow", 1)]);
        let mut d = BTreeMap::new();
        for s in 0..120 {
            for (k, lat) in [("fast", 10.0), ("slow", 80.0)] {
                c.report(
                    &k,
                    Sample {
                        at_ms: s * P,
                        latency_ms: Some(lat),
                        ..Default::default()
                    },
                );
            }
            d = c.step(s * P + 500);
        }
        assert_eq!(d["fast"].weight, 1000);
        // (10 + 20) / (80 + 20) = 0.3, not 1/8.
        assert_eq!(d["slow"].weight, 300);
        assert_eq!(
            Input::from_policy(WeightPolicy::Latency),
            Some(Input::Latency)
        );
        assert_eq!(Input::from_policy(WeightPolicy::Static), None);
    }

    #[test]
    fn weights_set_members_keeps_state_of_remaining() {
        let mut c = settled();
        run(&mut c, 60, 30, |k, _| {
            Some(if k == "b" { 50.0 } else { 100.0 })
        });
        let wb = c.weight(&"b").unwrap();
        c.set_members(&[("b", 1), ("c", 1)]);
        assert_eq!(c.weight(&"b"), Some(wb));
        assert_eq!(c.weight(&"a"), None);
        let d = c.step(90 * P + 500);
        assert_eq!(d["c"].phase, Phase::NoReports);
        assert_eq!(d["c"].weight, 1000);
        assert_eq!(d["b"].phase, Phase::Fresh);
        assert_eq!(Phase::SlowStart.as_str(), "slow-start");
    }
}
