//! The named scenarios, running them over several schedulers and seeds (in parallel), and their
//! report as a table or as serialisable rows.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use super::engine::{run, RunMetrics};
use super::sched::Kind;
use super::{Arrivals, Change, Config, Silence};

/// Seeds a scenario runs with unless told otherwise.
pub const DEFAULT_SEEDS: usize = 3;

/// Base service rate of a speed-1 server (requests per second: 10 ms per request).
const BASE: f64 = 100.0;
/// Long connections: mean requests per connection and gap between them.
const LONG_REQUESTS: f64 = 100.0;
const LONG_GAP_S: f64 = 0.5;

/// A named workload.
pub struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    pub default_duration_s: f64,
    build: fn(f64) -> Config,
}

impl Scenario {
    /// The configuration for a run of `duration_s` seconds (events scale with the window).
    pub fn config(&self, duration_s: f64) -> Config {
        (self.build)(duration_s)
    }
}

/// Warm-up and the time at `frac` of the measured window.
fn window(duration_s: f64) -> (f64, impl Fn(f64) -> f64) {
    let warm = (duration_s * 0.25).min(150.0);
    (warm, move |frac: f64| warm + frac * (duration_s - warm))
}

fn base(speeds: &[f64], rho: f64, long: bool, duration_s: f64) -> Config {
    let speeds: Vec<f64> = speeds.iter().map(|s| s * BASE).collect();
    let per_conn = if long { LONG_REQUESTS } else { 1.0 };
    let rate = rho * speeds.iter().sum::<f64>() / per_conn;
    let mut c = Config::new(speeds, rate);
    c.requests_per_conn = per_conn;
    c.request_gap_s = LONG_GAP_S;
    c.duration_s = duration_s;
    c.warmup_s = window(duration_s).0;
    c
}

const HETEROGENEOUS: [f64; 8] = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0];
const EQUAL: [f64; 8] = [1.0; 8];

fn heterogeneous(d: f64) -> Config {
    base(&HETEROGENEOUS, 0.6, true, d)
}

fn short_conns(d: f64) -> Config {
    base(&HETEROGENEOUS, 0.6, false, d)
}

fn degraded(d: f64) -> Config {
    let mut c = base(&EQUAL, 0.6, true, d);
    c.changes.push(Change {
        at_s: window(d).1(0.2),
        server: 0,
        speed_factor: 0.5,
    });
    c
}

fn slow_server(d: f64) -> Config {
    let mut speeds = EQUAL;
    speeds[0] = 0.25;
    base(&speeds, 0.6, true, d)
}

fn silent_agent(d: f64) -> Config {
    let mut speeds = EQUAL;
    speeds[0] = 0.5;
    let mut c = base(&speeds, 0.6, true, d);
    let from_s = window(d).1(0.3);
    c.silences.push(Silence {
        server: 0,
        from_s,
        to_s: from_s + 60.0,
    });
    c
}

fn bursty(d: f64) -> Config {
    let mut c = base(&HETEROGENEOUS, 0.6, false, d);
    let mean = c.arrivals.mean_rate();
    c.arrivals = Arrivals::Mmpp {
        rates: [1.5 * mean, 0.5 * mean],
        mean_dwell_s: [10.0, 10.0],
    };
    c
}

/// Every scenario, in report order.
pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "degraded",
            description: "8 equal servers, long connections, load 0.6; server 0's capacity \
                          halves at 40% of the run (noisy neighbour)",
            default_duration_s: 600.0,
            build: degraded,
        },
        Scenario {
            name: "heterogeneous",
            description: "speeds 1,1,1,1,2,2,4,4 with equal configured weights, long \
                          connections, load 0.6",
            default_duration_s: 600.0,
            build: heterogeneous,
        },
        Scenario {
            name: "short-conns",
            description: "as heterogeneous but one request per connection (connection counts \
                          show the work)",
            default_duration_s: 600.0,
            build: short_conns,
        },
        Scenario {
            name: "slow-server",
            description: "8 servers, server 0 healthy but at a quarter speed from the start, \
                          long connections, load 0.6",
            default_duration_s: 600.0,
            build: slow_server,
        },
        Scenario {
            name: "silent-agent",
            description: "8 servers, server 0 at half speed; its agent is silent for 60 s \
                          (hold, decay toward static, blackout, slow start)",
            default_duration_s: 600.0,
            build: silent_agent,
        },
        Scenario {
            name: "bursty",
            description: "heterogeneous speeds, short connections, MMPP arrivals alternating \
                          load 0.9 and 0.3 (10 s mean stays)",
            default_duration_s: 600.0,
            build: bursty,
        },
    ]
}

/// The scenario called `name`.
pub fn scenario(name: &str) -> Option<Scenario> {
    scenarios().into_iter().find(|s| s.name == name)
}

/// One scheduler's results over the seeds: means of the per-seed metrics, the spread of p99,
/// and the worst reversal rate.
#[derive(Clone, Debug, Serialize)]
pub struct ReportRow {
    pub scheduler: Kind,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p99_min_ms: f64,
    pub p99_max_ms: f64,
    pub p999_ms: f64,
    pub util_max: f64,
    pub util_min: f64,
    pub weight_writes_per_min: f64,
    pub reversals_per_server_min: f64,
    pub runs: Vec<RunMetrics>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub description: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub offered_load: f64,
    pub seeds: Vec<u64>,
    pub rows: Vec<ReportRow>,
}

impl ScenarioReport {
    pub fn row(&self, kind: Kind) -> Option<&ReportRow> {
        self.rows.iter().find(|r| r.scheduler == kind)
    }

    /// The report as an aligned text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let seeds: Vec<String> = self.seeds.iter().map(u64::to_string).collect();
        let _ = writeln!(
            out,
            "{}: {}\n  {} s ({} s warm-up), load {:.2}, seeds {}",
            self.scenario,
            self.description,
            self.duration_s,
            self.warmup_s,
            self.offered_load,
            seeds.join(",")
        );
        let _ = writeln!(
            out,
            "  {:<9} {:>9} {:>8} {:>9} {:>19} {:>10} {:>8} {:>8} {:>10} {:>11}",
            "scheduler",
            "mean ms",
            "p50 ms",
            "p99 ms",
            "(min-max)",
            "p99.9 ms",
            "util max",
            "util min",
            "writes/min",
            "rev/srv/min"
        );
        for r in &self.rows {
            let spread = format!("({}-{})", num(r.p99_min_ms), num(r.p99_max_ms));
            let _ = writeln!(
                out,
                "  {:<9} {:>9} {:>8} {:>9} {:>19} {:>10} {:>8.3} {:>8.3} {:>10.1} {:>11.2}",
                r.scheduler.to_string(),
                num(r.mean_ms),
                num(r.p50_ms),
                num(r.p99_ms),
                spread,
                num(r.p999_ms),
                r.util_max,
                r.util_min,
                r.weight_writes_per_min,
                r.reversals_per_server_min
            );
        }
        out
    }
}

/// Three significant digits without switching to exponents.
fn num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Runs `kinds` × `seeds` of a scenario (in parallel threads; each run is deterministic).
pub fn run_scenario(
    s: &Scenario,
    kinds: &[Kind],
    seeds: &[u64],
    duration_s: Option<f64>,
) -> ScenarioReport {
    let cfg = s.config(duration_s.unwrap_or(s.default_duration_s));
    let jobs: Vec<(usize, Kind, u64)> = kinds
        .iter()
        .enumerate()
        .flat_map(|(i, k)| seeds.iter().map(move |seed| (i, *k, *seed)))
        .collect();
    let results = Mutex::new(Vec::with_capacity(jobs.len()));
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some(&(i, kind, seed)) = jobs.get(j) else {
                    break;
                };
                let m = run(&cfg, kind, seed);
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((i, seed, m));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|(i, seed, _)| (*i, *seed));
    let rows = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let runs: Vec<RunMetrics> = results
                .iter()
                .filter(|(j, _, _)| *j == i)
                .map(|(_, _, m)| m.clone())
                .collect();
            let avg = |f: fn(&RunMetrics) -> f64| -> f64 {
                runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64
            };
            ReportRow {
                scheduler: *kind,
                mean_ms: avg(|m| m.mean_ms),
                p50_ms: avg(|m| m.p50_ms),
                p99_ms: avg(|m| m.p99_ms),
                p99_min_ms: runs.iter().map(|m| m.p99_ms).fold(f64::INFINITY, f64::min),
                p99_max_ms: runs.iter().map(|m| m.p99_ms).fold(0.0, f64::max),
                p999_ms: avg(|m| m.p999_ms),
                util_max: avg(|m| m.util_max),
                util_min: avg(|m| m.util_min),
                weight_writes_per_min: avg(|m| m.weight_writes_per_min),
                reversals_per_server_min: runs
                    .iter()
                    .map(|m| m.reversals_per_server_min)
                    .fold(0.0, f64::max),
                runs,
            }
        })
        .collect();
    ScenarioReport {
        scenario: s.name.to_string(),
        description: s.description.to_string(),
        duration_s: cfg.duration_s,
        warmup_s: cfg.warmup_s,
        offered_load: cfg.offered_load(),
        seeds: seeds.to_vec(),
        rows,
    }
}
