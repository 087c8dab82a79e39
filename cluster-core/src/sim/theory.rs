//! Checks of the simulator against queueing theory (Poisson arrivals, exp(1) work at speed 1,
//! so times are in mean service times) and the acceptance goal of the degraded scenario.
//!
//! The checks at ρ = 0.9 of independent M/M/1-like queues (random, weighted random, round
//! robin) mix slowly: a mean within 3% needs ~1–2 M requests (standard error ≈ 1.3% across
//! seeds), about 1.5 s each in a debug build. The same formulas are also checked at ρ = 0.5.

use super::*;

/// Mean sojourn in mean service times.
fn mean_sojourn(cfg: &Config, kind: Kind, seed: u64) -> f64 {
    run(cfg, kind, seed).mean_ms / 1000.0
}

fn close(got: f64, want: f64, tol: f64, what: &str) {
    let err = (got - want).abs() / want;
    eprintln!("{what}: simulated {got:.4}, theory {want:.4}");
    assert!(
        err <= tol,
        "{what}: simulated {got:.4}, theory {want:.4} ({:.1}% off)",
        err * 100.0
    );
}

/// `n` unit-speed servers at per-server load `rho`.
fn homogeneous(n: usize, rho: f64) -> Config {
    let mut c = Config::new(vec![1.0; n], rho * n as f64);
    c.warmup_s = 0.0;
    c
}

/// Random routing: independent M/M/1 queues, T = 1/(1 − ρ). Started from the stationary queue
/// length, so no warm-up is needed.
fn check_random(rho: f64, duration_s: f64) {
    let mut c = homogeneous(1000, rho);
    c.prefill_rho = Some(rho);
    c.duration_s = duration_s;
    close(
        mean_sojourn(&c, Kind::Random, 1),
        1.0 / (1.0 - rho),
        0.03,
        "random M/M/1",
    );
}

/// Round robin over n: each queue is E_n/M/1; σ = (nρ/(nρ + 1 − σ))ⁿ, T = 1/(1 − σ).
fn rr_theory(n: usize, rho: f64) -> f64 {
    let nr = n as f64 * rho;
    let mut sigma: f64 = 0.5;
    for _ in 0..10_000 {
        sigma = (nr / (nr + 1.0 - sigma)).powi(n as i32);
    }
    1.0 / (1.0 - sigma)
}

fn check_rr(rho: f64, duration_s: f64) {
    let mut c = homogeneous(10, rho);
    c.warmup_s = 200.0;
    c.duration_s = duration_s + c.warmup_s;
    close(
        mean_sojourn(&c, Kind::Rr, 1),
        rr_theory(10, rho),
        0.03,
        "round robin n=10",
    );
}

/// Weighted random with λ_i = ρμ_i over μ = [1,1,1,1,2,2,4,4] (16 copies, so that the mean
/// is over more queues): T = N/((1 − ρ)Σμ).
fn check_weighted_random(rho: f64, duration_s: f64) {
    let base = [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0];
    let speeds: Vec<f64> = (0..16).flat_map(|_| base).collect();
    let total: f64 = speeds.iter().sum();
    let mut c = Config::new(speeds.clone(), rho * total);
    c.static_weights = speeds.iter().map(|s| *s as u32).collect();
    c.prefill_rho = Some(rho);
    c.warmup_s = 0.0;
    c.duration_s = duration_s;
    close(
        mean_sojourn(&c, Kind::Random, 1),
        speeds.len() as f64 / ((1.0 - rho) * total),
        0.03,
        "weighted random",
    );
}

/// Mitzenmacher's limit for JSQ(d): Σ_{i≥1} ρ^((dⁱ − d)/(d − 1)).
fn jsq_d_theory(d: u32, rho: f64) -> f64 {
    let d = d as f64;
    (1..40)
        .map(|i| rho.powf((d.powi(i) - d) / (d - 1.0)))
        .take_while(|t| *t > 1e-12)
        .sum()
}

/// M/M/n central queue (Erlang C): the lower bound for any dispatcher.
fn mmn_theory(n: usize, rho: f64) -> f64 {
    let a = rho * n as f64;
    let mut term = 1.0;
    let mut sum = 0.0;
    for k in 0..n {
        if k > 0 {
            term *= a / k as f64;
        }
        sum += term;
    }
    let last = term * a / n as f64 * (n as f64 / (n as f64 - a));
    let wait_p = last / (sum + last);
    1.0 + wait_p / (n as f64 - a)
}

#[test]
fn sim_theory_formulas() {
    close(rr_theory(10, 0.9), 5.660, 0.001, "E10/M/1 formula");
    close(jsq_d_theory(2, 0.9), 2.614, 0.001, "JSQ(2) formula");
    close(jsq_d_theory(2, 0.99), 5.432, 0.001, "JSQ(2) formula");
    close(mmn_theory(10, 0.9), 1.6687, 0.001, "M/M/10 formula");
}

#[test]
fn sim_theory_random_rho05() {
    check_random(0.5, 250.0);
}

#[test]
fn sim_theory_rr_rho05() {
    check_rr(0.5, 20_000.0);
}

#[test]
fn sim_theory_weighted_random_rho05() {
    check_weighted_random(0.5, 600.0);
}

#[test]
fn sim_theory_random_rho09() {
    check_random(0.9, 1000.0);
}

#[test]
fn sim_theory_rr_rho09() {
    check_rr(0.9, 200_000.0);
}

#[test]
fn sim_theory_weighted_random_rho09() {
    check_weighted_random(0.9, 8000.0);
}

/// JSQ(2) over 1000 servers at ρ = 0.9 against the n → ∞ limit 2.614 (at n = 1000 the finite-n
/// excess is well below the 3% tolerance).
#[test]
fn sim_theory_jsq2_rho09() {
    let mut c = homogeneous(1000, 0.9);
    c.warmup_s = 50.0;
    c.duration_s = 250.0;
    close(
        mean_sojourn(&c, Kind::JsqD(2), 1),
        jsq_d_theory(2, 0.9),
        0.03,
        "JSQ(2) n=1000",
    );
}

/// M/M/n ≤ JSQ ≤ JSQ(2) ≤ random over 10 servers at ρ = 0.9.
#[test]
fn sim_theory_ordering() {
    let mut c = homogeneous(10, 0.9);
    c.warmup_s = 200.0;
    c.duration_s = 10_200.0;
    let jsq = mean_sojourn(&c, Kind::Jsq, 1);
    let jsq2 = mean_sojourn(&c, Kind::JsqD(2), 1);
    let random = mean_sojourn(&c, Kind::Random, 1);
    let bound = mmn_theory(10, 0.9);
    eprintln!("M/M/10 {bound:.3}, JSQ {jsq:.3}, JSQ(2) {jsq2:.3}, random {random:.3}");
    assert!(
        bound < jsq && jsq < jsq2 && jsq2 < random,
        "M/M/10 {bound:.3}, JSQ {jsq:.3}, JSQ(2) {jsq2:.3}, random {random:.3}"
    );
    // And the oracle is close to the bound at this size.
    assert!(jsq < 1.3 * bound, "JSQ {jsq:.3} vs M/M/10 {bound:.3}");
}

/// The acceptance goal on the degraded scenario, shortened to 300 s (75 s warm-up, the
/// capacity halves at 120 s) and two seeds so that it stays fast in debug builds: the policy's
/// p99 within 1.5× the JSQ oracle's, at least 3× better than static wlc, and at most one weight
/// reversal per server per minute. `bench-sim` runs the full-length version.
#[test]
fn sim_goal_degraded() {
    let s = scenario("degraded").expect("degraded scenario");
    let r = run_scenario(
        &s,
        &[Kind::Policy, Kind::Jsq, Kind::Wlc],
        &[1, 2],
        Some(300.0),
    );
    eprintln!("{}", r.table());
    let p99 = |k| r.row(k).expect("row").p99_ms;
    let (policy, jsq, wlc) = (p99(Kind::Policy), p99(Kind::Jsq), p99(Kind::Wlc));
    assert!(
        policy <= 1.5 * jsq,
        "policy p99 {policy:.0} ms vs JSQ {jsq:.0} ms"
    );
    assert!(
        wlc >= 3.0 * policy,
        "static wlc p99 {wlc:.0} ms vs policy {policy:.0} ms"
    );
    let rev = r.row(Kind::Policy).expect("row").reversals_per_server_min;
    assert!(rev <= 1.0, "{rev:.2} reversals per server per minute");
}
