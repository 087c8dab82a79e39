//! A deterministic discrete-event simulator of one director in front of N real servers, used to
//! check the scheduling theory and to tune `weights::Controller` (see `lvsctl simulate`).
//!
//! Model: connections arrive (Poisson, or a 2-state MMPP for bursts) and are scheduled once, per
//! connection, as IPVS does. A connection carries one request (short) or a geometric number of
//! requests issued open-loop with exponential gaps (long: keepalive or multiplexed gRPC), so
//! its requests keep going to the server it was given. Servers are FCFS queues; a request's work
//! is exp(1) and takes work/speed seconds. IPVS counts a connection as active while it is open;
//! inactive (TIME_WAIT) entries are modelled only when `time_wait_s` > 0. Latency is the
//! request's sojourn (queueing + service). The `policy` scheduler is wlc with weights from
//! `weights::Controller` (`Input::Load`, the director's defaults) fed by agent reports every
//! second (throughput and busy fraction with Gaussian noise, delivered 0–200 ms late).
//!
//! Every run is a pure function of (config, scheduler, seed): the workload has its own random
//! stream, so every scheduler sees the same connections and requests. Requests arriving in
//! the warm-up are not measured; after the end no new requests start and the queues drain, so
//! every measured request is counted with its full latency.
//!
//! The degraded scenario, which is the acceptance case: 8 equal servers (100 req/s each), long
//! connections (~100 requests, 0.5 s apart, ~50 s lifetime, 30 per server), offered load 0.6;
//! at 40 % of the run server 0's capacity halves (noisy neighbour). Its connections keep
//! sending: under static weights its load becomes 1.2 and its queue grows for the rest of the
//! run, while active-connection counts (what lc/wlc see) stay equal. The oracle JSQ sees queue
//! lengths when placing a connection; `policy` sees only the agents' reports.

pub mod engine;
pub mod rng;
pub mod scenario;
pub mod sched;

pub use engine::{run, RunMetrics};
pub use scenario::{
    run_scenario, scenario, scenarios, ReportRow, Scenario, ScenarioReport, DEFAULT_SEEDS,
};
pub use sched::Kind;

use crate::weights::Params;

/// How connections arrive.
#[derive(Clone, Debug)]
pub enum Arrivals {
    /// Poisson with `rate` connections per second.
    Poisson { rate: f64 },
    /// Two-state Markov-modulated Poisson: rate `rates[k]` while in state k, exponential stays
    /// with means `mean_dwell_s`.
    Mmpp {
        rates: [f64; 2],
        mean_dwell_s: [f64; 2],
    },
}

impl Arrivals {
    /// Long-run mean connection rate.
    pub fn mean_rate(&self) -> f64 {
        match self {
            Arrivals::Poisson { rate } => *rate,
            Arrivals::Mmpp {
                rates,
                mean_dwell_s,
            } => {
                (rates[0] * mean_dwell_s[0] + rates[1] * mean_dwell_s[1])
                    / (mean_dwell_s[0] + mean_dwell_s[1])
            }
        }
    }
}

/// At `at_s` server `server`'s speed is multiplied by `speed_factor`.
#[derive(Clone, Debug)]
pub struct Change {
    pub at_s: f64,
    pub server: usize,
    pub speed_factor: f64,
}

/// Server `server`'s agent sends nothing in [from_s, to_s).
#[derive(Clone, Debug)]
pub struct Silence {
    pub server: usize,
    pub from_s: f64,
    pub to_s: f64,
}

/// One simulated system.
#[derive(Clone, Debug)]
pub struct Config {
    /// Service rate of each server (requests per second).
    pub speeds: Vec<f64>,
    /// Configured weights (what static schedulers use and what the controller starts from).
    pub static_weights: Vec<u32>,
    pub arrivals: Arrivals,
    /// Mean requests per connection (geometric; 1 = short connections).
    pub requests_per_conn: f64,
    /// Mean gap between the requests of a connection (exponential, open loop).
    pub request_gap_s: f64,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub changes: Vec<Change>,
    pub silences: Vec<Silence>,
    pub report_period_s: f64,
    pub report_delay_max_s: f64,
    /// Relative standard deviation of the noise on reported throughput and busy fraction.
    pub report_noise: f64,
    pub step_period_s: f64,
    /// First controller step (later ones every `step_period_s`).
    pub step_offset_s: f64,
    /// How long a closed connection counts as inactive (0: not modelled).
    pub time_wait_s: f64,
    pub params: Params,
    /// Start every server with a stationary M/M/1 queue at this load, to skip the warm-up of
    /// slowly mixing systems (theory checks of independent queues).
    pub prefill_rho: Option<f64>,
}

impl Config {
    /// `n` servers of the given speeds, Poisson arrivals of short connections at `rate`, all
    /// other settings at the scenarios' defaults.
    pub fn new(speeds: Vec<f64>, rate: f64) -> Self {
        let n = speeds.len();
        Config {
            speeds,
            static_weights: vec![1; n],
            arrivals: Arrivals::Poisson { rate },
            requests_per_conn: 1.0,
            request_gap_s: 1.0,
            duration_s: 600.0,
            warmup_s: 150.0,
            changes: Vec::new(),
            silences: Vec::new(),
            report_period_s: 1.0,
            report_delay_max_s: 0.2,
            report_noise: 0.05,
            step_period_s: 1.0,
            step_offset_s: 0.5,
            time_wait_s: 0.0,
            params: Params::default(),
            prefill_rho: None,
        }
    }

    /// Offered load: mean request rate over total capacity (at the start).
    pub fn offered_load(&self) -> f64 {
        self.arrivals.mean_rate() * self.requests_per_conn / self.speeds.iter().sum::<f64>()
    }
}

#[cfg(test)]
mod theory;
