//! Scheduling simulator benchmark: the degraded scenario (8 equal servers, long connections,
//! load 0.6, server 0's capacity halves at 40% of the run) over every scheduler and several
//! seeds (`BENCH_SEEDS`, default 5), full length (600 s simulated). Prints the table and, last,
//! `RESULT scenario=degraded policy_p99=.. jsq_p99=.. static_wlc_p99=.. ...` (milliseconds,
//! means over the seeds). Exits non-zero when the goal is missed: policy p99 ≤ 1.5× the JSQ
//! oracle's, ≥ 3× better than static wlc, ≤ 1 weight reversal per server per minute.

use std::process::ExitCode;
use std::time::Instant;

use cluster_core::sim::{run_scenario, scenario, Kind};

fn main() -> ExitCode {
    let seeds: u64 = std::env::var("BENCH_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(5);
    let s = scenario("degraded").expect("the degraded scenario exists");
    let started = Instant::now();
    let seeds: Vec<u64> = (1..=seeds).collect();
    let r = run_scenario(&s, &Kind::all(), &seeds, None);
    let elapsed = started.elapsed();
    print!("{}", r.table());
    println!("simulated in {:.2} s", elapsed.as_secs_f64());
    let row = |k| r.row(k).expect("every scheduler has a row");
    let (policy, jsq, wlc) = (row(Kind::Policy), row(Kind::Jsq), row(Kind::Wlc));
    let ratio_jsq = policy.p99_ms / jsq.p99_ms;
    let gain_wlc = wlc.p99_ms / policy.p99_ms;
    let rev = policy.reversals_per_server_min;
    let ok = ratio_jsq <= 1.5 && gain_wlc >= 3.0 && rev <= 1.0;
    println!(
        "RESULT scenario=degraded policy_p99={:.1} jsq_p99={:.1} static_wlc_p99={:.1} \
         policy_vs_jsq={ratio_jsq:.2} wlc_vs_policy={gain_wlc:.1} reversals_per_server_min={rev:.2} \
         weight_writes_per_min={:.1} seeds={} goal={}",
        policy.p99_ms,
        jsq.p99_ms,
        wlc.p99_ms,
        policy.weight_writes_per_min,
        seeds.len(),
        if ok { "met" } else { "missed" }
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
