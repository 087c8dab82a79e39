//! The discrete-event engine: connection arrivals, per-connection scheduling, FCFS servers,
//! agent reports and controller steps, and the metrics of one run.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use serde::Serialize;

use super::rng::Rng;
use super::sched::{Kind, Scheduler, View};
use super::{Arrivals, Config};
use crate::weights::{Controller, Input, Sample};

/// Metrics of one run (one scheduler, one seed).
#[derive(Clone, Debug, Serialize)]
pub struct RunMetrics {
    pub scheduler: Kind,
    pub seed: u64,
    /// Requests that arrived in the measured window.
    pub requests: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    /// Busy fraction of the busiest and the idlest server over the window.
    pub util_max: f64,
    pub util_min: f64,
    /// Weight changes written (all servers) per minute of the window.
    pub weight_writes_per_min: f64,
    /// Sign reversals of weight changes per minute, for the server with the most.
    pub reversals_per_server_min: f64,
    /// Weights at the end of the run.
    pub final_weights: Vec<u32>,
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Arrival,
    Request(u32),
    Done(u32),
    Report(u32),
    Deliver(u32, Sample),
    Step,
    Speed(u32, f64),
    InactiveExpire(u32),
}

struct Entry {
    at: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .at
            .total_cmp(&self.at)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

#[derive(Clone, Copy)]
struct Req {
    conn: u32,
    arrived: f64,
    /// Work in units of one request at speed 1 (exp(1)), fixed at issue so that every
    /// scheduler sees the same workload.
    work: f64,
}

#[derive(Clone, Copy, Default)]
struct Conn {
    server: u32,
    to_issue: u32,
    outstanding: u32,
    prefilled: bool,
}

/// Queue and counters of a server; what schedulers see is in `Sim::views`.
struct Server {
    queue: VecDeque<Req>,
    serving_since: f64,
    busy_done: f64,
    busy_window: f64,
    completions: u64,
    latency_sum: f64,
    rep_busy: f64,
    rep_completions: u64,
    rep_latency_sum: f64,
}

impl Server {
    fn busy_until(&self, t: f64) -> f64 {
        if self.queue.is_empty() {
            self.busy_done
        } else {
            self.busy_done + (t - self.serving_since)
        }
    }
}

struct Sim<'a> {
    cfg: &'a Config,
    now: f64,
    seq: u64,
    heap: BinaryHeap<Entry>,
    servers: Vec<Server>,
    /// Weight, connection counts, queue length and speed of each server, kept current so that
    /// a scheduling decision costs no copy.
    views: Vec<View>,
    /// Bumped whenever a weight changes (schedulers rebuild their tables).
    epoch: u64,
    conns: Vec<Conn>,
    free: Vec<u32>,
    sched: Scheduler,
    ctl: Option<Controller<usize>>,
    work: Rng,
    pick: Rng,
    agent: Rng,
    mmpp_state: usize,
    mmpp_switch: f64,
    latencies: Vec<f64>,
    writes: u64,
    reversals_at_warmup: Vec<u64>,
}

/// Runs one scheduler over `cfg` with `seed`. The workload (arrivals, request counts, gaps and
/// work) is drawn from its own stream, so every scheduler sees the same one for a seed.
pub fn run(cfg: &Config, kind: Kind, seed: u64) -> RunMetrics {
    let n = cfg.speeds.len();
    assert!(
        n > 0 && cfg.static_weights.len() == n,
        "one static weight per server"
    );
    let mut sim = Sim {
        cfg,
        now: 0.0,
        seq: 0,
        heap: BinaryHeap::new(),
        servers: (0..n)
            .map(|_| Server {
                queue: VecDeque::new(),
                serving_since: 0.0,
                busy_done: 0.0,
                busy_window: 0.0,
                completions: 0,
                latency_sum: 0.0,
                rep_busy: 0.0,
                rep_completions: 0,
                rep_latency_sum: 0.0,
            })
            .collect(),
        views: cfg
            .speeds
            .iter()
            .zip(&cfg.static_weights)
            .map(|(&speed, &weight)| View {
                weight,
                active: 0,
                inactive: 0,
                queue: 0,
                speed,
            })
            .collect(),
        epoch: 0,
        conns: Vec::new(),
        free: Vec::new(),
        sched: Scheduler::new(kind),
        ctl: None,
        work: Rng::stream(seed, 1),
        pick: Rng::stream(seed, 2),
        agent: Rng::stream(seed, 3),
        mmpp_state: 0,
        mmpp_switch: f64::INFINITY,
        latencies: Vec::new(),
        writes: 0,
        reversals_at_warmup: vec![0; n],
    };
    sim.start(kind);
    sim.run_events();
    sim.metrics(kind, seed)
}

impl Sim<'_> {
    fn push(&mut self, at: f64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            ev,
        });
    }

    fn start(&mut self, kind: Kind) {
        let cfg = self.cfg;
        if let Arrivals::Mmpp { mean_dwell_s, .. } = cfg.arrivals {
            self.mmpp_switch = self.work.exp(1.0 / mean_dwell_s[0]);
        }
        let first = self.next_arrival_gap();
        self.push(first, Ev::Arrival);
        if let Some(rho) = cfg.prefill_rho {
            for s in 0..self.servers.len() {
                // Stationary M/M/1 queue length: P(n) = (1 − ρ)ρⁿ.
                let mut k = 0;
                while self.work.f64() < rho {
                    k += 1;
                }
                for _ in 0..k {
                    let c = self.new_conn(Conn {
                        server: s as u32,
                        to_issue: 0,
                        outstanding: 0,
                        prefilled: true,
                    });
                    self.views[s].active += 1;
                    self.issue(c);
                }
            }
        }
        for ch in &cfg.changes {
            self.push(ch.at_s, Ev::Speed(ch.server as u32, ch.speed_factor));
        }
        if kind == Kind::Policy {
            let mut ctl = Controller::new(Input::Load, cfg.params.clone());
            let members: Vec<(usize, u32)> =
                cfg.static_weights.iter().copied().enumerate().collect();
            ctl.set_members(&members);
            for (s, v) in self.views.iter_mut().enumerate() {
                v.weight = ctl.weight(&s).unwrap_or(v.weight);
            }
            self.epoch += 1;
            self.ctl = Some(ctl);
            for s in 0..self.servers.len() {
                let phase = self.agent.f64() * cfg.report_period_s;
                self.push(phase, Ev::Report(s as u32));
            }
            self.push(cfg.step_offset_s, Ev::Step);
        }
    }

    fn next_arrival_gap(&mut self) -> f64 {
        match self.cfg.arrivals {
            Arrivals::Poisson { rate } => self.work.exp(rate),
            Arrivals::Mmpp {
                rates,
                mean_dwell_s,
            } => {
                // Memoryless: draw in the current state, and redraw from the switch if it comes
                // first.
                let mut t = self.now;
                loop {
                    let a = t + self.work.exp(rates[self.mmpp_state]);
                    if a <= self.mmpp_switch {
                        return a - self.now;
                    }
                    t = self.mmpp_switch;
                    self.mmpp_state ^= 1;
                    self.mmpp_switch = t + self.work.exp(1.0 / mean_dwell_s[self.mmpp_state]);
                }
            }
        }
    }

    fn new_conn(&mut self, c: Conn) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.conns[i as usize] = c;
                i
            }
            None => {
                self.conns.push(c);
                (self.conns.len() - 1) as u32
            }
        }
    }

    /// The connection's next request joins its server's queue.
    fn issue(&mut self, c: u32) {
        let work = self.work.exp(1.0);
        let conn = &mut self.conns[c as usize];
        conn.outstanding += 1;
        let s = conn.server as usize;
        let now = self.now;
        self.servers[s].queue.push_back(Req {
            conn: c,
            arrived: now,
            work,
        });
        self.views[s].queue += 1;
        if self.servers[s].queue.len() == 1 {
            self.begin_service(s);
        }
    }

    fn begin_service(&mut self, s: usize) {
        let (warm, end) = (self.cfg.warmup_s, self.cfg.duration_s);
        let now = self.now;
        let server = &mut self.servers[s];
        let dur = server.queue[0].work / self.views[s].speed;
        server.serving_since = now;
        let overlap = (now + dur).min(end) - now.max(warm);
        if overlap > 0.0 {
            server.busy_window += overlap;
        }
        self.push(now + dur, Ev::Done(s as u32));
    }

    fn run_events(&mut self) {
        let end = self.cfg.duration_s;
        while let Some(Entry { at, ev, .. }) = self.heap.pop() {
            // After the end only the queues drain, so that every measured request completes.
            if at > end && !matches!(ev, Ev::Done(_)) {
                continue;
            }
            self.now = at;
            match ev {
                Ev::Arrival => self.arrival(),
                Ev::Request(c) => {
                    let conn = &mut self.conns[c as usize];
                    conn.to_issue -= 1;
                    if conn.to_issue > 0 {
                        let gap = self.work.exp(1.0 / self.cfg.request_gap_s);
                        self.push(at + gap, Ev::Request(c));
                    }
                    self.issue(c);
                }
                Ev::Done(s) => self.done(s as usize),
                Ev::Report(s) => self.report(s as usize),
                Ev::Deliver(s, sample) => {
                    if let Some(ctl) = self.ctl.as_mut() {
                        ctl.report(&(s as usize), sample);
                    }
                }
                Ev::Step => self.step(),
                Ev::Speed(s, factor) => self.views[s as usize].speed *= factor,
                Ev::InactiveExpire(s) => self.views[s as usize].inactive -= 1,
            }
        }
    }

    fn arrival(&mut self) {
        let gap = self.next_arrival_gap();
        self.push(self.now + gap, Ev::Arrival);
        let requests = self.work.geometric(self.cfg.requests_per_conn);
        let source = self.work.next_u64();
        let Some(s) = self
            .sched
            .pick(&self.views, self.epoch, &mut self.pick, source)
        else {
            return;
        };
        self.views[s].active += 1;
        let c = self.new_conn(Conn {
            server: s as u32,
            to_issue: requests - 1,
            outstanding: 0,
            prefilled: false,
        });
        if requests > 1 {
            let gap = self.work.exp(1.0 / self.cfg.request_gap_s);
            self.push(self.now + gap, Ev::Request(c));
        }
        self.issue(c);
    }

    fn done(&mut self, s: usize) {
        let now = self.now;
        let server = &mut self.servers[s];
        let Some(req) = server.queue.pop_front() else {
            return;
        };
        self.views[s].queue -= 1;
        server.busy_done += now - server.serving_since;
        server.completions += 1;
        let sojourn = now - req.arrived;
        server.latency_sum += sojourn;
        let conn = &mut self.conns[req.conn as usize];
        conn.outstanding -= 1;
        let measured = !conn.prefilled
            && req.arrived >= self.cfg.warmup_s
            && req.arrived < self.cfg.duration_s;
        if measured {
            self.latencies.push(sojourn * 1000.0);
        }
        if conn.to_issue == 0 && conn.outstanding == 0 {
            let view = &mut self.views[s];
            view.active -= 1;
            self.free.push(req.conn);
            if self.cfg.time_wait_s > 0.0 {
                view.inactive += 1;
                self.push(now + self.cfg.time_wait_s, Ev::InactiveExpire(s as u32));
            }
        }
        if !self.servers[s].queue.is_empty() {
            self.begin_service(s);
        }
    }

    fn report(&mut self, s: usize) {
        let cfg = self.cfg;
        let now = self.now;
        self.push(now + cfg.report_period_s, Ev::Report(s as u32));
        let server = &mut self.servers[s];
        let busy_now = server.busy_until(now);
        let busy = (busy_now - server.rep_busy) / cfg.report_period_s;
        let done = server.completions - server.rep_completions;
        let lat = server.latency_sum - server.rep_latency_sum;
        server.rep_busy = busy_now;
        server.rep_completions = server.completions;
        server.rep_latency_sum = server.latency_sum;
        let silent = cfg
            .silences
            .iter()
            .any(|q| q.server == s && now >= q.from_s && now < q.to_s);
        if silent {
            return;
        }
        let noise = cfg.report_noise;
        let thr = done as f64 / cfg.report_period_s * (1.0 + noise * self.agent.normal()).max(0.0);
        let busy = (busy * (1.0 + noise * self.agent.normal())).clamp(0.0, 1.0);
        let sample = Sample {
            at_ms: (now * 1000.0) as u64,
            throughput: Some(thr),
            busy: Some(busy),
            latency_ms: (done > 0).then(|| lat / done as f64 * 1000.0),
        };
        let delay = self.agent.f64() * cfg.report_delay_max_s;
        self.push(now + delay, Ev::Deliver(s as u32, sample));
    }

    fn step(&mut self) {
        let cfg = self.cfg;
        let now = self.now;
        self.push(now + cfg.step_period_s, Ev::Step);
        let Some(ctl) = self.ctl.as_mut() else {
            return;
        };
        let in_window = now >= cfg.warmup_s;
        if !in_window && now + cfg.step_period_s >= cfg.warmup_s {
            // The last step before the window: reversals are counted from here.
            for (s, r) in self.reversals_at_warmup.iter_mut().enumerate() {
                *r = ctl.reversals(&s);
            }
        }
        for (s, d) in ctl.step((now * 1000.0) as u64) {
            if d.changed && in_window {
                self.writes += 1;
            }
            if self.views[s].weight != d.weight {
                self.views[s].weight = d.weight;
                self.epoch += 1;
            }
        }
    }

    fn metrics(mut self, kind: Kind, seed: u64) -> RunMetrics {
        let cfg = self.cfg;
        let window = (cfg.duration_s - cfg.warmup_s).max(1e-9);
        let minutes = window / 60.0;
        self.latencies.sort_unstable_by(f64::total_cmp);
        let lat = &self.latencies;
        let q = |p: f64| -> f64 {
            if lat.is_empty() {
                return 0.0;
            }
            let i = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
            lat[i]
        };
        let util = self.servers.iter().map(|s| s.busy_window / window);
        let reversals_max = match &self.ctl {
            Some(ctl) => (0..self.servers.len())
                .map(|s| ctl.reversals(&s) - self.reversals_at_warmup[s])
                .max()
                .unwrap_or(0),
            None => 0,
        };
        RunMetrics {
            scheduler: kind,
            seed,
            requests: lat.len() as u64,
            mean_ms: if lat.is_empty() {
                0.0
            } else {
                lat.iter().sum::<f64>() / lat.len() as f64
            },
            p50_ms: q(0.5),
            p99_ms: q(0.99),
            p999_ms: q(0.999),
            util_max: util.clone().fold(0.0, f64::max),
            util_min: util.fold(f64::INFINITY, f64::min),
            weight_writes_per_min: self.writes as f64 / minutes,
            reversals_per_server_min: reversals_max as f64 / minutes,
            final_weights: self.views.iter().map(|v| v.weight).collect(),
        }
    }
}
