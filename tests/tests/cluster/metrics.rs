//! The directors' `/metrics` endpoint on a three-director loopback cluster: Raft values agree
//! across nodes and move with writes and a failover, the replicated config shows up as weights,
//! other paths are 404, and a bad `[metrics] listen` fails `director --check` naming the key.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use lvs_proto::v1 as pb;
use lvs_tests::metrics::{http_request, scrape, Metrics};
use lvs_tests::{bin, real, service, Cluster};

const SERVICE: &str = "tcp/10.0.0.1:80";

fn addr(c: &Cluster, id: u64) -> SocketAddr {
    let d = c.node(id);
    d.metrics_addr
        .as_deref()
        .expect("loopback directors serve /metrics")
        .parse()
        .unwrap()
}

/// Scrapes director `id` (off the runtime: the client blocks).
async fn scrape_node(c: &Cluster, id: u64) -> Result<Metrics, String> {
    let a = addr(c, id);
    tokio::task::spawn_blocking(move || scrape(a))
        .await
        .map_err(|e| e.to_string())?
}

fn val(m: &Metrics, name: &str) -> Result<f64, String> {
    m.get(name, &[]).ok_or_else(|| format!("{name} missing"))
}

/// Scrapes of every director in `ids` once they agree on a leader in `ids` with exactly one
/// `is_leader 1`; returns the leader and the scrapes.
async fn agreed(c: &Cluster, ids: &[u64], min_term: f64) -> (u64, Vec<(u64, Metrics)>) {
    c.wait_for(
        "the directors' /metrics to agree on one leader",
        Duration::from_secs(20),
        async || {
            let mut all = Vec::new();
            for id in ids {
                all.push((*id, scrape_node(c, *id).await?));
            }
            let leaders: Vec<u64> = all
                .iter()
                .filter(|(_, m)| m.get("lvs_director_raft_is_leader", &[]) == Some(1.0))
                .map(|(id, _)| *id)
                .collect();
            let [l] = leaders[..] else {
                return Err(format!("is_leader 1 on {leaders:?}"));
            };
            for (id, m) in &all {
                let seen = val(m, "lvs_director_raft_leader_id")?;
                let term = val(m, "lvs_director_raft_term")?;
                if seen != l as f64 || term < min_term {
                    return Err(format!(
                        "director {id} names leader {seen} in term {term}; is_leader on {l}"
                    ));
                }
            }
            Ok((l, all))
        },
    )
    .await
}

/// Invariants every director's Raft metrics hold once writes have settled.
fn check_raft(id: u64, m: &Metrics, leader: u64, term: f64) {
    let g = |n: &str| val(m, n).unwrap_or_else(|e| panic!("director {id}: {e}"));
    assert_eq!(g("lvs_director_raft_node_id"), id as f64);
    assert_eq!(g("lvs_director_raft_term"), term, "director {id}: term");
    assert_eq!(
        m.get("lvs_director_raft_members", &[("role", "voter")]),
        Some(3.0),
        "director {id}"
    );
    let (last, commit, applied) = (
        g("lvs_director_raft_last_log_index"),
        g("lvs_director_raft_commit_index"),
        g("lvs_director_raft_applied_index"),
    );
    assert!(
        last >= commit && commit >= applied && applied > 0.0,
        "director {id}: last {last}, commit {commit}, applied {applied}"
    );
    let is_leader = id == leader;
    assert_eq!(
        m.get("lvs_director_raft_state", &[("state", "leader")]),
        Some(if is_leader { 1.0 } else { 0.0 }),
        "director {id}"
    );
    match m.get("lvs_director_raft_quorum_ack_age_seconds", &[]) {
        Some(age) => assert!(
            is_leader && (0.0..5.0).contains(&age),
            "director {id}: quorum ack age {age} (leader {leader})"
        ),
        None => assert!(!is_leader, "the leader {id} shows no quorum ack age"),
    }
    assert_eq!(
        m.types
            .get("lvs_director_reconcile_runs")
            .map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        m.types
            .get("lvs_director_reconcile_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    // Loopback directors do not program IPVS: no kernel families.
    assert_eq!(g("lvs_director_reconcile_enabled"), 0.0);
    assert!(m.all("lvs_director_ipvs_kernel_read_ok").is_empty());
    assert!(m.all("lvs_director_ipvs_real_connections_total").is_empty());
    assert_eq!(
        m.all("lvs_director_build_info")[0].labels["version"],
        env!("CARGO_PKG_VERSION")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_config_and_failover_in_metrics() {
    let _turn = lvs_tests::serial::group("metrics");
    let mut c = Cluster::start(3);
    let _logs = c.logs_on_panic();
    c.wait_leader(Duration::from_secs(20)).await;
    let (leader, before) = agreed(&c, &[1, 2, 3], 1.0).await;
    let term = val(&before[0].1, "lvs_director_raft_term").unwrap();
    let commit0 = before
        .iter()
        .find(|(id, _)| *id == leader)
        .map(|(_, m)| val(m, "lvs_director_raft_commit_index").unwrap())
        .unwrap();

    // Writes through a follower: a service with two real servers.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let r = c
        .admin(follower)
        .await
        .add_service(pb::ServiceRequest {
            service: Some(service(SERVICE, "wrr")),
            expected_revision: None,
        })
        .await;
    c.ok(r, "add service");
    let mut revision = 0;
    for (a, w) in [("10.0.1.1", 5), ("10.0.1.2", 3)] {
        let r = c
            .admin(follower)
            .await
            .add_real(pb::RealRequest {
                service: SERVICE.into(),
                real: Some(real(a, 80, w)),
                expected_revision: None,
            })
            .await;
        revision = c.ok(r, "add real").into_inner().revision;
    }

    // Every director applies the writes; the commit index moved past where it was.
    let after = c
        .wait_for(
            "every director's /metrics to show the writes applied",
            Duration::from_secs(20),
            async || {
                let mut all = Vec::new();
                for id in 1..=3u64 {
                    let m = scrape_node(&c, id).await?;
                    let rev = val(&m, "lvs_director_config_revision")?;
                    if rev < revision as f64 {
                        return Err(format!("director {id} at revision {rev}"));
                    }
                    all.push((id, m));
                }
                let lm = &all[(leader - 1) as usize].1;
                let commit = val(lm, "lvs_director_raft_commit_index")?;
                // Three writes, three entries.
                if commit < commit0 + 3.0 {
                    return Err(format!("leader commit index {commit}, was {commit0}"));
                }
                for (id, m) in &all {
                    let applied = val(m, "lvs_director_raft_applied_index")?;
                    if applied < commit {
                        return Err(format!(
                            "director {id} applied {applied} < leader commit {commit}"
                        ));
                    }
                }
                Ok(all)
            },
        )
        .await;
    for (id, m) in &after {
        check_raft(*id, m, leader, term);
        for (a, w) in [("10.0.1.1:80", 5.0), ("10.0.1.2:80", 3.0)] {
            let l = [("service", SERVICE), ("real", a)];
            assert_eq!(
                m.get("lvs_director_real_configured_weight", &l),
                Some(w),
                "director {id} {a}"
            );
            // No overlay (no agents, no checks): the effective weight is the configured one.
            assert_eq!(
                m.get("lvs_director_real_effective_weight", &l),
                Some(w),
                "director {id} {a}"
            );
        }
        // No health check configured: no verdicts.
        assert!(m.all("lvs_director_real_health_up").is_empty());
        assert_eq!(val(m, "lvs_director_agents_connected").unwrap(), 0.0);
    }

    // Other paths are 404, other methods 405.
    let a = addr(&c, leader);
    let (root, sub, post) = tokio::task::spawn_blocking(move || {
        (
            http_request(a, "GET", "/").unwrap(),
            http_request(a, "GET", "/metrics/x").unwrap(),
            http_request(a, "POST", "/metrics").unwrap(),
        )
    })
    .await
    .unwrap();
    assert_eq!(root.status, 404, "{root:?}");
    assert_eq!(sub.status, 404, "{sub:?}");
    assert_eq!(post.status, 405, "{post:?}");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    // Failover: the survivors agree on a new leader in a later term.
    c.kill(leader);
    let rest: Vec<u64> = (1..=3).filter(|id| *id != leader).collect();
    let (new_leader, now) = agreed(&c, &rest, term + 1.0).await;
    assert_ne!(new_leader, leader);
    for (id, m) in &now {
        assert!(
            val(m, "lvs_director_raft_term").unwrap() > term,
            "director {id}"
        );
    }
}

/// Runs `director --check --config FILE`.
fn check(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("director.toml");
    std::fs::write(&path, config).unwrap();
    Command::new(bin("director"))
        .arg("--check")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap()
}

#[test]
fn bad_metrics_listen_fails_check_naming_key_and_value() {
    let _turn = lvs_tests::serial::group("metrics");
    let base = "node_id = 1\nraft_addr = \"127.0.0.1:7101\"\napi_addr = \"127.0.0.1:7001\"\ndata_dir = \"/tmp/lvs-metrics-check\"\n";
    let ok = check(&format!("{base}[metrics]\nlisten = \"127.0.0.1:9100\"\n"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (value, why) in [
        ("localhost:9100", "numeric IP"),
        ("127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:0", "port 0"),
        ("127.0.0.1:7001", "api_addr"),
    ] {
        let out = check(&format!("{base}[metrics]\nlisten = \"{value}\"\n"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(
            err.contains("metrics.listen")
                && err.contains(&format!("\"{value}\""))
                && err.contains(why),
            "{value}: {err}"
        );
    }
    let out = check(&format!(
        "{base}[metrics]\nlisten = \"127.0.0.1:9100\"\npath = \"/m\"\n"
    ));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("path"), "{err}");
}
