//! Checks of the simulator against queueing theory (Poisson arrivals, exp(1) work, speed 1,
//! so times are in mean service times) and the acceptance goal of the degraded scenario.

use super::*;

fn mean_sojourn(cfg: &Config, kind: Kind, seed: u64) -> f64 {
    run(cfg, kind, seed).mean_ms / 1000.0
}

#[test]
fn sim_scratch_speed() {
    let n = 1000;
    let mut cfg = Config::new(vec![1.0; n], 0.9 * n as f64);
    cfg.prefill_rho = Some(0.9);
    cfg.warmup_s = 0.0;
    cfg.duration_s = 200.0;
    let t = std::time::Instant::now();
    let m = mean_sojourn(&cfg, Kind::Random, 1);
    eprintln!("T={m} in {:?}", t.elapsed());
}

#[test]
#[ignore]
fn sim_scratch_spread() {
    let setups: Vec<(&str, Config, Kind)> = {
        let mut v = Vec::new();
        let n = 1000;
        let mut c = Config::new(vec![1.0; n], 0.9 * n as f64);
        c.prefill_rho = Some(0.9);
        c.warmup_s = 0.0;
        c.duration_s = 1000.0;
        v.push(("random n1000 d1000", c, Kind::Random));
        let mut c = Config::new(vec![1.0; n], 0.9 * n as f64);
        c.warmup_s = 50.0;
        c.duration_s = 250.0;
        v.push(("jsq2 n1000 200", c, Kind::JsqD(2)));
        let mut c = Config::new(vec![1.0; 10], 9.0);
        c.warmup_s = 500.0;
        c.duration_s = 50500.0;
        v.push(("rr n10 50000", c, Kind::Rr));
        let sp = vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0];
        let reps = 16;
        let speeds: Vec<f64> = (0..reps).flat_map(|_| sp.clone()).collect();
        let mut c = Config::new(speeds.clone(), 0.9 * 16.0 * reps as f64);
        c.static_weights = speeds.iter().map(|s| *s as u32).collect();
        c.prefill_rho = Some(0.9);
        c.warmup_s = 0.0;
        c.duration_s = 8000.0;
        v.push(("wrandom x16 8000", c, Kind::Random));
        v
    };
    for (name, c, k) in setups {
        let t = std::time::Instant::now();
        let xs: Vec<f64> = (1..=8).map(|s| mean_sojourn(&c, k, s)).collect();
        let m = xs.iter().sum::<f64>() / 8.0;
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 7.0).sqrt();
        eprintln!("{name}: mean {m:.4} sd {sd:.4} ({:.2}%) {:?} per run; {xs:.3?}", 100.0 * sd / m, t.elapsed() / 8);
    }
}

#[test]
#[ignore]
fn sim_scratch_table() {
    let which = std::env::var("SCN").unwrap_or_else(|_| "degraded".into());
    let seeds: Vec<u64> = (1..=3).collect();
    for s in scenarios() {
        if which != "all" && s.name != which {
            continue;
        }
        let t = std::time::Instant::now();
        let r = run_scenario(&s, &Kind::all(), &seeds, None);
        eprintln!("{}{:?}", r.table(), t.elapsed());
        if let Some(p) = r.row(Kind::Policy) {
            for m in &p.runs {
                eprintln!("  policy seed {} weights {:?}", m.seed, m.final_weights);
            }
        }
    }
}

#[test]
#[ignore]
fn sim_scratch_tune() {
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    let which = std::env::var("SCN").unwrap_or_else(|_| "degraded".into());
    let s = scenario(&which).unwrap();
    let mut cfg = s.config(env("DUR", 600.0));
    let p = &mut cfg.params;
    p.deadband = env("DEADBAND", p.deadband);
    p.tau_up_ms = env("TAU_UP", p.tau_up_ms);
    p.tau_down_ms = env("TAU_DOWN", p.tau_down_ms);
    p.slew_down = env("SLEW_DOWN", p.slew_down);
    p.slew_up = env("SLEW_UP", p.slew_up);
    for k in [Kind::Jsq, Kind::Policy] {
        let ms: Vec<RunMetrics> = (1..=6).map(|seed| run(&cfg, k, seed)).collect();
        let p99: Vec<f64> = ms.iter().map(|m| m.p99_ms.round()).collect();
        let rev: Vec<f64> = ms.iter().map(|m| m.reversals_per_server_min).collect();
        let w: Vec<f64> = ms.iter().map(|m| m.weight_writes_per_min).collect();
        eprintln!("{k}: p99 {p99:?} rev {rev:.2?} writes {w:.1?}");
    }
}
