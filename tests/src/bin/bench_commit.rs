//! Commit-latency benchmark: starts a local three-director cluster (sled flushes, i.e. fsync,
//! before every append and vote is acknowledged), then drives it through the gRPC admin API with
//! 1 and 16 concurrent writers. Each write edits one real server's weight, so every write is a
//! real change that bumps the config revision. Prints latency percentiles and throughput per
//! phase; the last line is `RESULT writers=16 p50_ms=… p99_ms=… writes_per_s=…`.

use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use lvs_tests::{Cluster, Timing};

struct Phase {
    writers: usize,
    latencies_us: Vec<u64>,
    elapsed: Duration,
    errors: usize,
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn run_phase(c: &Cluster, leader: u64, writers: usize, duration: Duration) -> Phase {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let mut admin = c.admin(leader).await;
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut weight = 1u32;
            while Instant::now() < deadline {
                weight = weight % 1000 + 1;
                let t = Instant::now();
                let r = admin
                    .edit_real(pb::RealRequest {
                        service: "tcp/10.0.0.1:80".into(),
                        real: Some(pb::RealServer {
                            address: format!("10.1.{}.{}", w / 250, w % 250 + 1),
                            port: 80,
                            weight: Some(weight),
                            ..Default::default()
                        }),
                        expected_revision: None,
                    })
                    .await;
                match r {
                    Ok(_) => lat.push(t.elapsed().as_micros() as u64),
                    Err(e) => {
                        errors += 1;
                        if errors < 5 {
                            eprintln!("writer {w}: {e}");
                        }
                    }
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("writer task");
        latencies_us.extend(l);
        errors += e;
    }
    latencies_us.sort_unstable();
    Phase {
        writers,
        latencies_us,
        elapsed: start.elapsed(),
        errors,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let duration = Duration::from_secs(secs);
    // The director's default profile, snapshots on.
    let timing = Timing {
        heartbeat_ms: 50,
        election_min_ms: 200,
        election_max_ms: 400,
        snapshot_every: 5000,
        keep_logs: 1000,
    };
    let mut c = Cluster::start_with(3, timing);
    let leader = c.wait_leader(Duration::from_secs(30)).await;
    println!(
        "cluster up: leader is director {leader}, data in {}",
        c.dir.path().display()
    );

    // One service with a real server per writer.
    let reals = (0..16)
        .map(|w| pb::RealServer {
            address: format!("10.1.{}.{}", w / 250, w % 250 + 1),
            port: 80,
            weight: Some(1),
            ..Default::default()
        })
        .collect();
    c.admin(leader)
        .await
        .add_service(pb::ServiceRequest {
            service: Some(pb::Service {
                key: "tcp/10.0.0.1:80".into(),
                scheduler: "wlc".into(),
                reals,
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await
        .expect("creating the benchmark service");

    // Warm up connections and the page cache.
    run_phase(&c, leader, 4, Duration::from_secs(1)).await;

    let mut last = None;
    println!(
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>6}",
        "writers", "writes", "p50_ms", "p90_ms", "p99_ms", "max_ms", "writes/s", "errors"
    );
    for writers in [1usize, 16] {
        let p = run_phase(&c, leader, writers, duration).await;
        let l = &p.latencies_us;
        let wps = l.len() as f64 / p.elapsed.as_secs_f64();
        println!(
            "{:>7} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0} {:>6}",
            p.writers,
            l.len(),
            pct(l, 0.50),
            pct(l, 0.90),
            pct(l, 0.99),
            pct(l, 1.0),
            wps,
            p.errors
        );
        last = Some((p.writers, pct(l, 0.50), pct(l, 0.99), wps));
    }
    let revision = c
        .admin(leader)
        .await
        .get_config(pb::GetConfigRequest {
            stale: false,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().revision)
        .unwrap_or(0);
    println!("final config revision {revision}");
    let (w, p50, p99, wps) = last.expect("phases ran");
    println!("RESULT writers={w} p50_ms={p50:.2} p99_ms={p99:.2} writes_per_s={wps:.0}");
}
