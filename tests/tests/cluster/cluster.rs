//! Cluster-level acceptance tests: real `director` processes on 127.0.0.1, driven through the
//! admin and cluster gRPC APIs. Every wait polls with a deadline and prints the directors' logs
//! before failing; any other failed assertion prints them too (`logs_on_panic`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_core::model::Config;
use lvs_ops::clock::unix_ms;
use lvs_proto::convert;
use lvs_proto::v1 as pb;
use lvs_tests::{real, service, with_principal, Cluster, Timing, RICH_CONFIG};
use tonic::{Code, Status};

/// Deadline for an election or for replication to reach a node.
const SETTLE: Duration = Duration::from_secs(20);
/// `request_timeout_ms` in the harness configs.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(3000);
/// A request without quorum must answer within about twice the request timeout.
const UNAVAILABLE_BOUND: Duration = Duration::from_millis(7000);

fn others(c: &Cluster, id: u64) -> Vec<u64> {
    c.ids().into_iter().filter(|x| *x != id).collect()
}

/// Expects a rejection with `code` whose message is `FIELD: ...` naming every value in `values`.
fn rejected<T: std::fmt::Debug>(
    c: &Cluster,
    what: &str,
    r: Result<tonic::Response<T>, Status>,
    code: Code,
    field: &str,
    values: &[&str],
) -> Status {
    let s = match r {
        Ok(v) => c.fail(format!(
            "{what}: expected {code:?}, but it succeeded: {:?}",
            v.into_inner()
        )),
        Err(s) => s,
    };
    if s.code() != code {
        c.fail(format!(
            "{what}: expected {code:?}, got {:?}: {}",
            s.code(),
            s.message()
        ));
    }
    if !s.message().starts_with(&format!("{field}: ")) {
        c.fail(format!(
            "{what}: message should start with the field path {field:?}: {:?}",
            s.message()
        ));
    }
    for v in values {
        if !s.message().contains(v) {
            c.fail(format!(
                "{what}: message should name {v:?}: {:?}",
                s.message()
            ));
        }
    }
    s
}

/// One admin write of a rejection table.
enum Write {
    AddService(pb::ServiceRequest),
    EditService(pb::ServiceRequest),
    DeleteService(pb::ServiceRef),
    AddReal(pb::RealRequest),
    EditReal(pb::RealRequest),
    DeleteReal(pb::RealRef),
    Apply(pb::ApplyRequest),
    PutVipGroup(pb::VipGroupRequest),
    SetSync(pb::SyncRequest),
}

/// The answer to a write that should have been rejected, printed as it came.
struct Succeeded(String);

impl std::fmt::Debug for Succeeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn succeeded<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, Status>,
) -> Result<tonic::Response<Succeeded>, Status> {
    r.map(|ok| ok.map(|m| Succeeded(format!("{m:?}"))))
}

impl Write {
    /// Sends the write to director `id`.
    async fn send(self, c: &Cluster, id: u64) -> Result<tonic::Response<Succeeded>, Status> {
        let mut a = c.admin(id).await;
        match self {
            Write::AddService(r) => succeeded(a.add_service(r).await),
            Write::EditService(r) => succeeded(a.edit_service(r).await),
            Write::DeleteService(r) => succeeded(a.delete_service(r).await),
            Write::AddReal(r) => succeeded(a.add_real(r).await),
            Write::EditReal(r) => succeeded(a.edit_real(r).await),
            Write::DeleteReal(r) => succeeded(a.delete_real(r).await),
            Write::Apply(r) => succeeded(a.apply(r).await),
            Write::PutVipGroup(r) => succeeded(a.put_vip_group(r).await),
            Write::SetSync(r) => succeeded(a.set_sync(r).await),
        }
    }
}

/// A row of a rejection table: `write` must fail with `code`, its message starting with the
/// field path `field` and naming every one of `values`; `what` names the row in failures.
struct Rejection {
    what: &'static str,
    write: Write,
    code: Code,
    field: &'static str,
    values: Vec<String>,
}

fn row(
    what: &'static str,
    write: Write,
    code: Code,
    field: &'static str,
    values: &[&str],
) -> Rejection {
    Rejection {
        what,
        write,
        code,
        field,
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

/// Sends each row's write to the director `next()` picks, expects its rejection, then checks
/// on the director `next()` picks after it that the revision is still `revision`.
async fn expect_rejections(
    c: &Cluster,
    rows: impl IntoIterator<Item = Rejection>,
    next: &mut impl FnMut() -> u64,
    revision: u64,
) {
    for r in rows {
        let answer = r.write.send(c, next()).await;
        let values: Vec<&str> = r.values.iter().map(String::as_str).collect();
        rejected(c, r.what, answer, r.code, r.field, &values);
        assert_revision(c, next(), revision, r.what).await;
    }
}

/// Linearizable read on `id` must show exactly `revision`.
async fn assert_revision(c: &Cluster, id: u64, revision: u64, what: &str) -> pb::GetConfigResponse {
    let r = c.read(id).await;
    if r.revision != revision {
        c.fail(format!(
            "{what}: director {id} is at revision {}, expected {revision}",
            r.revision
        ));
    }
    r
}

fn find_service<'a>(cfg: &'a pb::Config, key: &str) -> Option<&'a pb::Service> {
    cfg.services.iter().find(|s| s.key == key)
}

fn find_real<'a>(cfg: &'a pb::Config, key: &str, addr: &str) -> Option<&'a pb::RealServer> {
    find_service(cfg, key)?
        .reals
        .iter()
        .find(|r| r.address == addr)
}

async fn add_service(c: &Cluster, via: u64, key: &str, sched: &str) -> pb::WriteResponse {
    let r = c
        .admin(via)
        .await
        .add_service(pb::ServiceRequest {
            service: Some(service(key, sched)),
            expected_revision: None,
        })
        .await;
    c.ok(r, &format!("add service {key} through director {via}"))
        .into_inner()
}

async fn add_real(c: &Cluster, via: u64, key: &str, addr: &str, weight: u32) -> pb::WriteResponse {
    let port = key.rsplit(':').next().unwrap().parse().unwrap();
    let r = c
        .admin(via)
        .await
        .add_real(pb::RealRequest {
            service: key.into(),
            real: Some(real(addr, port, weight)),
            expected_revision: None,
        })
        .await;
    c.ok(
        r,
        &format!("add real {addr} to {key} through director {via}"),
    )
    .into_inner()
}

async fn set_weight(
    c: &Cluster,
    via: u64,
    key: &str,
    addr: &str,
    weight: u32,
) -> pb::WriteResponse {
    let port = key.rsplit(':').next().unwrap().parse().unwrap();
    let r = c
        .admin(via)
        .await
        .edit_real(pb::RealRequest {
            service: key.into(),
            real: Some(real(addr, port, weight)),
            expected_revision: None,
        })
        .await;
    c.ok(
        r,
        &format!("set weight {weight} on {addr} in {key} through director {via}"),
    )
    .into_inner()
}

/// Waits until each director in `on` lists exactly the members `want`, all voters (or all not).
async fn wait_members(c: &Cluster, on: &[u64], want: &[u64], voters: bool) {
    for id in on {
        c.wait_for(
            &format!("director {id} to list members {want:?} (voters: {voters})"),
            SETTLE,
            async || {
                let s = c.status(*id).await.map_err(|e| format!("{e:?}"))?;
                let mut got: Vec<(u64, bool)> = s.members.iter().map(|m| (m.id, m.voter)).collect();
                got.sort();
                let expect: Vec<(u64, bool)> = want.iter().map(|m| (*m, voters)).collect();
                if got == expect {
                    Ok(())
                } else {
                    Err(format!("members {got:?}"))
                }
            },
        )
        .await;
    }
}

// -------------------------------------------------------------------------------------------
// 1. Replication through a follower.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_follower_is_visible_on_all_three() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader);

    // Every director sees the same three voters and the same leader, and says what it is.
    wait_members(&c, &c.ids(), &[1, 2, 3], true).await;
    for id in c.ids() {
        let s = c.ok(c.status(id).await, "status");
        assert_eq!(s.node_id, id);
        assert_eq!(s.leader_id, Some(leader), "director {id}");
        assert_eq!(s.leader_api_addr, c.api_addr(leader), "director {id}");
        let want = if id == leader { "leader" } else { "follower" };
        assert_eq!(s.state, want, "director {id}");
    }

    let w = add_service(&c, f[0], "tcp/10.0.0.1:80", "rr").await;
    assert_eq!(w.revision, 1);
    assert_eq!(w.changes.len(), 1, "{:?}", w.changes);
    assert_eq!(w.changes[0].op, "add");
    assert_eq!(w.changes[0].object, "service tcp/10.0.0.1:80");
    let w = add_real(&c, f[1], "tcp/10.0.0.1:80", "10.0.1.1", 5).await;
    assert_eq!(w.revision, 2);

    // Linearizable reads right after the write: every director must already show it.
    let mut configs = Vec::new();
    for id in c.ids() {
        let r = assert_revision(&c, id, 2, "linearizable read after write").await;
        assert_eq!(r.node_id, id, "the director asked answers");
        let cfg = r.config.unwrap();
        let s = find_service(&cfg, "tcp/10.0.0.1:80").expect("service replicated");
        assert_eq!(s.scheduler, "rr");
        let rs = find_real(&cfg, "tcp/10.0.0.1:80", "10.0.1.1").expect("real replicated");
        assert_eq!(
            (rs.port, rs.weight, rs.forward.as_str()),
            (80, Some(5), "dr")
        );
        configs.push(cfg);
    }
    assert!(configs.windows(2).all(|w| w[0] == w[1]), "{configs:?}");

    // Stale reads converge on every director too.
    for id in c.ids() {
        let r = c.wait_stale_revision(id, 2, SETTLE).await;
        assert_eq!(r.revision, 2);
        assert_eq!(r.config.as_ref(), Some(&configs[0]), "stale read on {id}");
    }
}

// -------------------------------------------------------------------------------------------
// 2. kill -9 the leader.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_leader_is_replaced_and_catches_up_after_restart() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let old = c.wait_running_leader(SETTLE).await;
    add_service(&c, old, "tcp/10.0.0.1:80", "wlc").await;
    add_real(&c, old, "tcp/10.0.0.1:80", "10.0.1.1", 1).await;

    c.kill(old);
    let t = Instant::now();
    let new = c.wait_running_leader(SETTLE).await;
    assert_ne!(new, old);
    eprintln!("new leader {new} after {:?}", t.elapsed());

    // Writes continue through either survivor.
    let s = others(&c, old);
    let w1 = set_weight(&c, s[0], "tcp/10.0.0.1:80", "10.0.1.1", 7).await;
    assert_eq!(w1.revision, 3);
    let w2 = add_real(&c, s[1], "tcp/10.0.0.1:80", "10.0.1.2", 9).await;
    assert_eq!(w2.revision, 4);
    let w3 = add_service(&c, new, "udp/10.0.0.2:53", "rr").await;
    assert_eq!(w3.revision, 5);
    let want = assert_revision(&c, s[0], 5, "survivor")
        .await
        .config
        .unwrap();
    let got = assert_revision(&c, s[1], 5, "survivor")
        .await
        .config
        .unwrap();
    assert_eq!(want, got);

    // The killed director restarts and catches up: its own (stale) copy shows the new state.
    c.start_node(old);
    let r = c.wait_stale_revision(old, 5, SETTLE).await;
    assert_eq!(r.revision, 5);
    assert_eq!(r.node_id, old);
    assert_eq!(r.config.as_ref(), Some(&want));
    let rs = find_real(&want, "tcp/10.0.0.1:80", "10.0.1.1").unwrap();
    assert_eq!(rs.weight, Some(7));
    // It rejoins as a follower of the agreed leader and serves linearizable reads.
    let leader = c.wait_running_leader(SETTLE).await;
    assert_ne!(leader, 0);
    assert_revision(&c, old, 5, "restarted director").await;
    let w = add_real(&c, old, "udp/10.0.0.2:53", "10.0.2.1", 1).await;
    assert_eq!(w.revision, 6);
}

// -------------------------------------------------------------------------------------------
// 3. Stop everything, start again.

async fn snapshot_of_state(c: &Cluster, id: u64) -> (pb::GetConfigResponse, pb::HistoryResponse) {
    let cfg = c.read(id).await;
    let h = c.history(id, false).await;
    (cfg, c.ok(h, "history"))
}

fn same_state(
    c: &Cluster,
    id: u64,
    a: &(pb::GetConfigResponse, pb::HistoryResponse),
    b: &(pb::GetConfigResponse, pb::HistoryResponse),
) {
    if a.0.revision != b.0.revision || a.0.config != b.0.config {
        c.fail(format!(
            "director {id}: config differs after restart: revision {} vs {}\n{:?}\nvs\n{:?}",
            a.0.revision, b.0.revision, a.0.config, b.0.config
        ));
    }
    if a.1.entries != b.1.entries || a.1.revision != b.1.revision {
        c.fail(format!(
            "director {id}: history differs after restart: {} entries (revision {}) vs {} entries (revision {})",
            a.1.entries.len(),
            a.1.revision,
            b.1.entries.len(),
            b.1.revision
        ));
    }
}

fn stop_all_cleanly(c: &mut Cluster) {
    for id in c.ids() {
        let t = Instant::now();
        let code = c.terminate(id);
        if code != Some(0) {
            c.fail(format!("director {id} exited with {code:?} after SIGTERM"));
        }
        eprintln!("director {id} stopped in {:?}", t.elapsed());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_all_and_restart_keeps_config_revision_and_history() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader);
    let mut a = c.admin(f[0]).await;
    c.ok(
        a.add_service(with_principal(
            pb::ServiceRequest {
                service: Some(pb::Service {
                    persistence: Some(pb::Persistence {
                        timeout: 300,
                        netmask: "255.255.255.0".into(),
                    }),
                    ..service("tcp/10.0.0.1:443", "sh")
                }),
                expected_revision: None,
            },
            "alice",
        ))
        .await,
        "add service",
    );
    add_real(&c, leader, "tcp/10.0.0.1:443", "10.0.1.1", 3).await;
    add_real(&c, f[1], "tcp/10.0.0.1:443", "10.0.1.2", 4).await;
    c.ok(
        a.put_vip_group(pb::VipGroupRequest {
            group: Some(pb::VipGroup {
                name: "web".into(),
                interface: "eth0".into(),
                addresses: vec!["10.0.0.1/24".into()],
            }),
            expected_revision: None,
        })
        .await,
        "put vip group",
    );
    c.ok(
        a.set_sync(pb::SyncRequest {
            sync: Some(pb::SyncSettings {
                interface: "eth1".into(),
                syncid: 3,
                ..Default::default()
            }),
            expected_revision: None,
        })
        .await,
        "set sync",
    );
    c.ok(
        a.delete_real(pb::RealRef {
            service: "tcp/10.0.0.1:443".into(),
            address: "10.0.1.2".into(),
            port: 443,
            expected_revision: None,
        })
        .await,
        "delete real",
    );
    let mut before = Vec::new();
    for id in c.ids() {
        before.push(snapshot_of_state(&c, id).await);
    }
    assert_eq!(before[0].0.revision, 6);
    assert_eq!(before[0].1.entries.len(), 6);
    assert_eq!(before[0].1.entries[0].principal, "alice");

    stop_all_cleanly(&mut c);
    for id in c.ids() {
        c.start_node(id);
    }
    c.wait_running_leader(SETTLE).await;
    for (i, id) in c.ids().into_iter().enumerate() {
        let after = snapshot_of_state(&c, id).await;
        same_state(&c, id, &before[i], &after);
        // The director's own copy (stale read) survived too, not only what Raft replays to it.
        let stale = c.ok(c.get_config(id, true).await, "stale read");
        assert_eq!(stale.revision, 6, "director {id}");
        assert_eq!(stale.config, before[i].0.config, "director {id}");
    }
    // And the cluster keeps counting from there.
    let w = add_real(&c, f[0], "tcp/10.0.0.1:443", "10.0.1.3", 1).await;
    assert_eq!(w.revision, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_purged_logs_restart_and_lagging_follower_install() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::snapshotting());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let lagging = others(&c, leader)[0];
    let key = "tcp/10.0.0.1:80";
    add_service(&c, leader, key, "wrr").await;
    add_real(&c, leader, key, "10.0.1.1", 1).await;

    // One follower misses 200 writes: with snapshots every 50 entries and 10 kept, the leader's
    // log no longer holds what it lacks, so it can only catch up from a snapshot.
    c.kill(lagging);
    let mut rev = 2;
    for i in 0..200u32 {
        let w = if i % 20 == 0 {
            add_real(&c, leader, key, &format!("10.0.2.{}", i / 20 + 1), 1).await
        } else {
            set_weight(&c, leader, key, "10.0.1.1", i + 2).await
        };
        rev += 1;
        if w.revision != rev {
            c.fail(format!("write {i}: revision {} expected {rev}", w.revision));
        }
    }
    let want = c.read(leader).await;
    assert_eq!(want.revision, 202);
    let want_hist = c.ok(c.history(leader, false).await, "history");
    assert_eq!(want_hist.entries.len(), 202);

    c.start_node(lagging);
    let got = c.wait_stale_revision(lagging, 202, SETTLE).await;
    assert_eq!(got.config, want.config, "lagging follower's config");
    let got_hist = c.ok(c.history(lagging, true).await, "stale history");
    assert_eq!(
        got_hist.entries, want_hist.entries,
        "history installed with the snapshot"
    );
    c.wait_running_leader(SETTLE).await;

    // More writes after the install reach it through the log again.
    for i in 0..5u32 {
        set_weight(&c, lagging, key, "10.0.1.1", 1000 + i).await;
    }
    c.wait_stale_revision(lagging, 207, SETTLE).await;

    // Restart everything: recovery from snapshot + remaining log on every director.
    let mut before = Vec::new();
    for id in c.ids() {
        before.push(snapshot_of_state(&c, id).await);
    }
    stop_all_cleanly(&mut c);
    for id in c.ids() {
        c.start_node(id);
    }
    c.wait_running_leader(SETTLE).await;
    for (i, id) in c.ids().into_iter().enumerate() {
        let stale = c.wait_stale_revision(id, 207, SETTLE).await;
        assert_eq!(stale.config, before[i].0.config, "director {id} stale");
        let after = snapshot_of_state(&c, id).await;
        same_state(&c, id, &before[i], &after);
    }
    let w = set_weight(&c, lagging, key, "10.0.1.1", 5).await;
    assert_eq!(w.revision, 208);
}

// -------------------------------------------------------------------------------------------
// 4. Membership changes.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourth_director_joins_as_learner_then_voter_and_is_removed() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader);
    let key = "tcp/10.0.0.1:80";
    add_service(&c, leader, key, "rr").await;
    add_real(&c, leader, key, "10.0.1.1", 1).await;

    // Writes keep flowing through a follower during the whole membership dance.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut admin = c.admin(f[0]).await;
        tokio::spawn(async move {
            let (mut n, mut errors) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let weight = if n % 2 == 0 { 2 } else { 1 };
                let t = Instant::now();
                match admin
                    .edit_real(pb::RealRequest {
                        service: "tcp/10.0.0.1:80".into(),
                        real: Some(real("10.0.1.1", 80, weight)),
                        expected_revision: None,
                    })
                    .await
                {
                    Ok(r) if r.get_ref().changes.len() == 1 => n += 1,
                    Ok(r) => errors.push(format!("write {n}: unexpected result {r:?}")),
                    Err(e) => {
                        errors.push(format!("write {n} after {:?}: {e:?}", t.elapsed()));
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (n, errors)
        })
    };

    let new_idx = c.spawn_extra();
    let new = c.nodes[new_idx].id;
    assert_eq!(new, 4);
    let add = |learner_only| pb::AddMemberRequest {
        id: new,
        raft_addr: c.raft_addr(new),
        api_addr: c.api_addr(new),
        learner_only,
    };

    // Learner first, through a follower (passed on to the leader).
    let mut cl = c.cluster(f[1]).await;
    let r = c
        .ok(cl.add_member(add(true)).await, "add learner")
        .into_inner();
    let m4 = r
        .members
        .iter()
        .find(|m| m.id == new)
        .expect("learner listed");
    assert!(!m4.voter, "{r:?}");
    assert_eq!(m4.raft_addr, c.raft_addr(new));
    assert_eq!(m4.api_addr, c.api_addr(new));
    for id in [1, 2, 3] {
        c.wait_for(
            &format!("director {id} to list director {new} as a learner"),
            SETTLE,
            async || {
                let s = c.status(id).await.map_err(|e| format!("{e:?}"))?;
                match s.members.iter().find(|m| m.id == new) {
                    Some(m) if !m.voter => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }
    c.wait_for("director 4 to call itself a learner", SETTLE, async || {
        let s = c.status(new).await.map_err(|e| format!("{e:?}"))?;
        if s.state == "learner" {
            Ok(())
        } else {
            Err(s.state)
        }
    })
    .await;

    // Then a voter.
    let r = c
        .ok(cl.add_member(add(false)).await, "promote to voter")
        .into_inner();
    let m4 = r
        .members
        .iter()
        .find(|m| m.id == new)
        .expect("voter listed");
    assert!(m4.voter, "{r:?}");
    wait_members(&c, &[1, 2, 3, 4], &[1, 2, 3, 4], true).await;
    let now_leader = c.wait_running_leader(SETTLE).await;
    let leader_status = c.ok(c.status(now_leader).await, "status");
    let m4 = leader_status.members.iter().find(|m| m.id == new).unwrap();
    assert!(m4.reachable, "{leader_status:?}");

    // The new director has the data and serves linearizable reads and writes.
    let rev = c.read(leader).await.revision;
    let r = c.wait_stale_revision(new, rev, SETTLE).await;
    assert!(find_service(r.config.as_ref().unwrap(), key).is_some());
    c.read(new).await;
    add_real(&c, new, key, "10.0.1.9", 1).await;

    // Re-adding an id at another address is refused.
    let r = c
        .cluster(leader)
        .await
        .add_member(pb::AddMemberRequest {
            id: 1,
            raft_addr: "127.0.0.1:1".into(),
            api_addr: "127.0.0.1:2".into(),
            learner_only: false,
        })
        .await;
    rejected(
        &c,
        "re-add director 1",
        r,
        Code::AlreadyExists,
        "id",
        &["1"],
    );

    // Removal, through a follower again.
    let r = c
        .ok(
            cl.remove_member(pb::RemoveMemberRequest { id: new }).await,
            "remove member",
        )
        .into_inner();
    assert!(r.members.iter().all(|m| m.id != new), "{r:?}");
    wait_members(&c, &[1, 2, 3], &[1, 2, 3], true).await;

    let r = c
        .cluster(f[0])
        .await
        .remove_member(pb::RemoveMemberRequest { id: 99 })
        .await;
    rejected(&c, "remove unknown id", r, Code::NotFound, "id", &["99"]);

    // Writes keep working after the removal too, and the removed director (which may not even
    // learn that it was removed) does not depose the leader.
    let leader = c.wait_leader_among(&[1, 2, 3], SETTLE).await;
    let term = c.ok(c.status(leader).await, "status").term;
    tokio::time::sleep(Duration::from_millis(2000)).await;
    stop.store(true, Ordering::Relaxed);
    let (n, errors) = writer.await.unwrap();
    if !errors.is_empty() {
        c.fail(format!(
            "writes failed during membership changes: {errors:?}"
        ));
    }
    assert!(n > 10, "only {n} writes made it");
    let s = c.ok(c.status(leader).await, "status");
    if s.leader_id != Some(leader) || s.term != term {
        c.fail(format!(
            "the removed director disturbed the cluster: leader {leader} term {term} became leader {:?} term {}",
            s.leader_id, s.term
        ));
    }
    let w = add_real(&c, f[1], key, "10.0.1.10", 1).await;
    for id in [1, 2, 3] {
        assert_revision(&c, id, w.revision, "after removal").await;
    }
}

// -------------------------------------------------------------------------------------------
// 5. Validation.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_rejected_with_code_field_and_value() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader);
    let key = "tcp/10.0.0.1:80";
    add_service(&c, leader, key, "rr").await;
    add_real(&c, leader, key, "10.0.1.1", 1).await;
    let mut rev = 2;
    // Alternate between the leader and followers: errors must survive forwarding unchanged.
    let via = [f[0], leader, f[1]];
    let mut n = 0usize;
    let mut next = || {
        n += 1;
        via[n % 3]
    };

    let real_req = |r: pb::RealServer| pb::RealRequest {
        service: key.into(),
        real: Some(r),
        expected_revision: None,
    };
    let svc_req = |s: pb::Service| pb::ServiceRequest {
        service: Some(s),
        expected_revision: None,
    };

    use Write::*;
    let bad_reals = [
        row(
            "unknown scheduler",
            AddService(svc_req(service("tcp/10.0.0.2:80", "fastest"))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.2:80].scheduler",
            &["fastest"],
        ),
        row(
            "unknown scheduler on edit",
            EditService(svc_req(service(key, "roundrobin"))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].scheduler",
            &["roundrobin"],
        ),
        row(
            "weight 70000",
            AddReal(real_req(real("10.0.1.2", 80, 70000))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].reals[10.0.1.2:80].weight",
            &["70000", "65535"],
        ),
        row(
            "weight 70000 on edit",
            EditReal(real_req(real("10.0.1.1", 80, 70000))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].reals[10.0.1.1:80].weight",
            &["70000"],
        ),
        row(
            "lower threshold above upper",
            AddReal(real_req(pb::RealServer {
                upper_threshold: 10,
                lower_threshold: 100,
                ..real("10.0.1.2", 80, 1)
            })),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].reals[10.0.1.2:80].lower_threshold",
            &["100", "10"],
        ),
        row(
            "IPv6 real under IPv4 service with DR",
            AddReal(real_req(real("2001:db8::5", 80, 1))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].reals[[2001:db8::5]:80].address",
            &["2001:db8::5", "tunnel"],
        ),
    ];
    expect_rejections(&c, bad_reals, &mut next, rev).await;
    // ... but accepted with tunnel forwarding.
    let w = c.ok(
        c.admin(next())
            .await
            .add_real(real_req(pb::RealServer {
                forward: "tunnel".into(),
                ..real("2001:db8::5", 80, 1)
            }))
            .await,
        "IPv6 real with tunnel",
    );
    rev += 1;
    assert_eq!(w.get_ref().revision, rev);

    let mut dup = service("tcp/10.0.0.7:80", "rr");
    dup.reals = vec![real("10.0.7.1", 80, 1), real("10.0.7.1", 80, 2)];
    let persistent = |k: &str, mask: &str| pb::Service {
        persistence: Some(pb::Persistence {
            timeout: 300,
            netmask: mask.into(),
        }),
        ..service(k, "rr")
    };
    let long_if = "averyverylongif0"; // 16 bytes
    let bad_objects = [
        row(
            "port 0 on a non-persistent service",
            AddService(svc_req(service("tcp/10.0.0.2:0", "rr"))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.2:0].port",
            &["port 0"],
        ),
        row(
            "DR real port differs from service port",
            AddReal(real_req(real("10.0.1.2", 8080, 1))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].reals[10.0.1.2:8080].port",
            &["8080", "80"],
        ),
        row(
            "duplicate real server",
            AddReal(real_req(real("10.0.1.1", 80, 3))),
            Code::AlreadyExists,
            "service[tcp/10.0.0.1:80].reals[10.0.1.1:80]",
            &["10.0.1.1:80"],
        ),
        row(
            "duplicate real server inside one apply",
            Apply(pb::ApplyRequest {
                config: Some(pb::Config {
                    services: vec![dup.clone()],
                    ..Default::default()
                }),
                dry_run: false,
                expected_revision: None,
            }),
            Code::InvalidArgument,
            "service[tcp/10.0.0.7:80].reals",
            &["10.0.7.1:80"],
        ),
        row(
            "duplicate real server inside one added service",
            AddService(svc_req(dup)),
            Code::InvalidArgument,
            "service[tcp/10.0.0.7:80].reals",
            &["10.0.7.1:80"],
        ),
        row(
            "IPv4 netmask not contiguous",
            AddService(svc_req(persistent("tcp/10.0.0.3:443", "255.0.255.0"))),
            Code::InvalidArgument,
            "service[tcp/10.0.0.3:443].persistence.netmask",
            &["255.0.255.0"],
        ),
        row(
            "IPv6 prefix 129",
            AddService(svc_req(persistent("tcp/[2001:db8::1]:443", "129"))),
            Code::InvalidArgument,
            "service[tcp/[2001:db8::1]:443].persistence.netmask",
            &["129"],
        ),
        row(
            "VIP group interface longer than 15 bytes",
            PutVipGroup(pb::VipGroupRequest {
                group: Some(pb::VipGroup {
                    name: "web".into(),
                    interface: long_if.into(),
                    addresses: vec!["10.0.0.1/24".into()],
                }),
                expected_revision: None,
            }),
            Code::InvalidArgument,
            "vip_group[web].interface",
            &[long_if],
        ),
        row(
            "sync interface longer than 15 bytes",
            SetSync(pb::SyncRequest {
                sync: Some(pb::SyncSettings {
                    interface: long_if.into(),
                    syncid: 1,
                    ..Default::default()
                }),
                expected_revision: None,
            }),
            Code::InvalidArgument,
            "sync.interface",
            &[long_if],
        ),
    ];
    expect_rejections(&c, bad_objects, &mut next, rev).await;
    // A 15-byte name is fine.
    c.ok(
        c.admin(next())
            .await
            .set_sync(pb::SyncRequest {
                sync: Some(pb::SyncSettings {
                    interface: "averyverylongif".into(),
                    syncid: 1,
                    ..Default::default()
                }),
                expected_revision: None,
            })
            .await,
        "15-byte interface",
    );
    rev += 1;

    let bad_refs = [
        row(
            "malformed service key on add",
            AddService(svc_req(service("tcp/10.0.0.1", "rr"))),
            Code::InvalidArgument,
            "service.key",
            &["tcp/10.0.0.1", "PORT"],
        ),
        row(
            "malformed service key on delete",
            DeleteService(pb::ServiceRef {
                service: "tcp/10.0.0.1".into(),
                expected_revision: None,
            }),
            Code::InvalidArgument,
            "service",
            &["tcp/10.0.0.1"],
        ),
        row(
            "malformed service key on add real",
            AddReal(pb::RealRequest {
                service: "tcp/10.0.0.1".into(),
                real: Some(real("10.0.1.5", 80, 1)),
                expected_revision: None,
            }),
            Code::InvalidArgument,
            "service",
            &["tcp/10.0.0.1"],
        ),
        row(
            "unknown service on edit",
            EditService(svc_req(service("tcp/10.9.9.9:80", "rr"))),
            Code::NotFound,
            "service[tcp/10.9.9.9:80]",
            &["tcp/10.9.9.9:80"],
        ),
        row(
            "unknown service on delete",
            DeleteService(pb::ServiceRef {
                service: "tcp/10.9.9.9:80".into(),
                expected_revision: None,
            }),
            Code::NotFound,
            "service[tcp/10.9.9.9:80]",
            &["tcp/10.9.9.9:80"],
        ),
        row(
            "unknown real on delete",
            DeleteReal(pb::RealRef {
                service: key.into(),
                address: "10.0.1.99".into(),
                port: 80,
                expected_revision: None,
            }),
            Code::NotFound,
            "service[tcp/10.0.0.1:80].reals[10.0.1.99:80]",
            &["10.0.1.99:80"],
        ),
        row(
            "expected_revision mismatch",
            AddService(pb::ServiceRequest {
                service: Some(service("tcp/10.0.0.5:80", "rr")),
                expected_revision: Some(rev - 1),
            }),
            Code::FailedPrecondition,
            "expected_revision",
            &[&(rev - 1).to_string(), &rev.to_string()],
        ),
        row(
            "expected_revision mismatch on dry-run apply",
            Apply(pb::ApplyRequest {
                config: Some(pb::Config::default()),
                dry_run: true,
                expected_revision: Some(rev + 5),
            }),
            Code::FailedPrecondition,
            "expected_revision",
            &[&(rev + 5).to_string()],
        ),
        row(
            "gue tunnel without port",
            AddReal(real_req(pb::RealServer {
                forward: "tunnel".into(),
                tunnel_type: "gue".into(),
                ..real("10.0.1.3", 80, 1)
            })),
            Code::InvalidArgument,
            "service[tcp/10.0.0.1:80].reals[10.0.1.3:80].tunnel_port",
            &["gue"],
        ),
        row(
            "sched flags on rr",
            AddService(svc_req(pb::Service {
                sched_flags: vec!["port".into()],
                ..service("tcp/10.0.0.6:80", "rr")
            })),
            Code::InvalidArgument,
            "service[tcp/10.0.0.6:80].sched_flags",
            &["port", "rr"],
        ),
    ];
    expect_rejections(&c, bad_refs, &mut next, rev).await;
    // The matching expected_revision is accepted.
    let w = c.ok(
        c.admin(next())
            .await
            .add_service(pb::ServiceRequest {
                service: Some(service("tcp/10.0.0.5:80", "rr")),
                expected_revision: Some(rev),
            })
            .await,
        "expected_revision match",
    );
    rev += 1;
    assert_eq!(w.get_ref().revision, rev);

    // Nothing rejected left a trace: one history entry per accepted write, same config everywhere.
    let h = c.ok(c.history(leader, false).await, "history");
    assert_eq!(h.entries.len() as u64, rev);
    let mut cfgs = Vec::new();
    for id in c.ids() {
        cfgs.push(assert_revision(&c, id, rev, "end").await.config);
    }
    assert!(cfgs.windows(2).all(|w| w[0] == w[1]));
    let cfg = cfgs[0].as_ref().unwrap();
    let mut keys: Vec<&str> = cfg.services.iter().map(|s| s.key.as_str()).collect();
    keys.sort();
    assert_eq!(keys, ["tcp/10.0.0.1:80", "tcp/10.0.0.5:80"]);
    assert!(cfg.vip_groups.is_empty());
    let rs: Vec<&str> = find_service(cfg, key)
        .unwrap()
        .reals
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rs, ["10.0.1.1", "2001:db8::5"]);
}

// -------------------------------------------------------------------------------------------
// 6. Apply.

fn model_of(c: &Cluster, cfg: &pb::Config) -> Config {
    c.ok(convert::config_from_pb(cfg), "config from the API parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_dry_run_then_atomic_apply_of_rich_config() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader);
    // Something apply has to remove and something it has to modify.
    add_service(&c, leader, "tcp/10.9.9.9:80", "rr").await;
    add_service(&c, leader, "tcp/10.0.0.1:80", "rr").await;
    add_real(&c, leader, "tcp/10.0.0.1:80", "10.0.1.1", 1).await;
    let before = c.read(leader).await;
    assert_eq!(before.revision, 3);

    let desired = Config::from_toml(RICH_CONFIG).expect("RICH_CONFIG parses");
    let expected = cluster_core::validate::config(&desired).expect("RICH_CONFIG is valid");
    let req = |dry_run, expected_revision| pb::ApplyRequest {
        config: Some(convert::config_to_pb(&desired)),
        dry_run,
        expected_revision,
    };

    // Dry run (through a follower): the diff, nothing written.
    let dry = c
        .ok(
            c.admin(f[0]).await.apply(req(true, Some(3))).await,
            "dry-run apply",
        )
        .into_inner();
    assert!(!dry.applied);
    assert_eq!(dry.revision, 3);
    let has = |changes: &[pb::Change], op: &str, object: &str| {
        changes.iter().any(|ch| ch.op == op && ch.object == object)
    };
    assert!(
        has(&dry.changes, "remove", "service tcp/10.9.9.9:80"),
        "{:?}",
        dry.changes
    );
    assert!(
        has(&dry.changes, "add", "service fwmark6/7"),
        "{:?}",
        dry.changes
    );
    assert!(
        has(&dry.changes, "add", "vip_group web"),
        "{:?}",
        dry.changes
    );
    assert!(has(&dry.changes, "add", "sync"), "{:?}", dry.changes);
    assert!(
        dry.changes
            .iter()
            .any(|ch| ch.op == "modify" && ch.object.contains("tcp/10.0.0.1:80")),
        "{:?}",
        dry.changes
    );
    for id in c.ids() {
        let r = assert_revision(&c, id, 3, "after dry run").await;
        assert_eq!(r.config, before.config, "dry run changed director {id}");
    }

    // The real apply, through the other follower: one revision, the same changes.
    let applied = c
        .ok(
            c.admin(f[1])
                .await
                .apply(with_principal(req(false, Some(3)), "carol"))
                .await,
            "apply",
        )
        .into_inner();
    assert!(applied.applied);
    assert_eq!(applied.revision, 4);
    assert_eq!(
        applied.changes, dry.changes,
        "apply did what the dry run said"
    );
    for id in c.ids() {
        let r = assert_revision(&c, id, 4, "after apply").await;
        let got = model_of(&c, r.config.as_ref().unwrap());
        if got != expected {
            c.fail(format!(
                "director {id} config after apply:\n{}\nexpected:\n{}",
                got.to_toml(),
                expected.to_toml()
            ));
        }
    }
    let h = c.ok(c.history(f[0], false).await, "history").entries;
    assert_eq!(h.len(), 4, "apply is one history entry");
    let last = h.last().unwrap();
    assert_eq!((last.revision, last.command.as_str()), (4, "apply"));
    assert_eq!(last.principal, "carol");
    assert_eq!(last.changes, applied.changes);

    // Applying the same config again changes nothing.
    let again = c
        .ok(
            c.admin(leader).await.apply(req(false, None)).await,
            "re-apply",
        )
        .into_inner();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.revision, 4);
    let dry = c
        .ok(c.admin(f[0]).await.apply(req(true, None)).await, "dry run")
        .into_inner();
    assert!(dry.changes.is_empty(), "{:?}", dry.changes);

    // One bad object anywhere rejects the whole apply: nothing of the rest is written.
    let mut bad = convert::config_to_pb(&desired);
    bad.services.retain(|s| s.key != "fwmark/5");
    bad.vip_groups.clear();
    let bad_svc = bad
        .services
        .iter_mut()
        .find(|s| s.key == "tcp/10.0.0.4:0")
        .unwrap();
    bad_svc.reals[0].weight = Some(70000);
    let r = c
        .admin(f[1])
        .await
        .apply(pb::ApplyRequest {
            config: Some(bad),
            dry_run: false,
            expected_revision: None,
        })
        .await;
    rejected(
        &c,
        "apply with one bad weight",
        r,
        Code::InvalidArgument,
        "service[tcp/10.0.0.4:0].reals[10.0.4.1:0].weight",
        &["70000"],
    );
    for id in c.ids() {
        let r = assert_revision(&c, id, 4, "after rejected apply").await;
        assert_eq!(model_of(&c, r.config.as_ref().unwrap()), expected);
    }

    // A stale expected_revision is refused; the right one goes through.
    let mut smaller = desired.clone();
    smaller.services.retain(|k, _| k.to_string() != "fwmark/5");
    let small_req = |rev| pb::ApplyRequest {
        config: Some(convert::config_to_pb(&smaller)),
        dry_run: false,
        expected_revision: Some(rev),
    };
    let r = c.admin(leader).await.apply(small_req(3)).await;
    rejected(
        &c,
        "stale apply",
        r,
        Code::FailedPrecondition,
        "expected_revision",
        &["3", "4"],
    );
    let w = c
        .ok(
            c.admin(leader).await.apply(small_req(4)).await,
            "apply at 4",
        )
        .into_inner();
    assert_eq!(w.revision, 5);
    // The service goes with its real servers and health check, nothing else changes.
    let objects: Vec<(&str, &str)> = w
        .changes
        .iter()
        .map(|ch| (ch.op.as_str(), ch.object.as_str()))
        .collect();
    assert_eq!(
        objects,
        [
            ("remove", "real fwmark/5 10.0.5.2:8080"),
            ("remove", "real fwmark/5 10.0.5.1:0"),
            ("remove", "health_check fwmark/5"),
            ("remove", "service fwmark/5"),
        ]
    );
}

// -------------------------------------------------------------------------------------------
// 7. No quorum.

/// Runs `call`, expecting Unavailable within the bound; returns how long it took.
async fn unavailable_in_time<T: std::fmt::Debug>(
    c: &Cluster,
    what: &str,
    call: impl std::future::Future<Output = Result<tonic::Response<T>, Status>>,
) -> (Duration, Status) {
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), call).await;
    let took = t.elapsed();
    match r {
        Err(_) => c.fail(format!("{what}: no answer within 30 s")),
        Ok(Ok(v)) => c.fail(format!(
            "{what}: succeeded without quorum: {:?}",
            v.into_inner()
        )),
        Ok(Err(s)) if s.code() != Code::Unavailable => c.fail(format!(
            "{what}: expected Unavailable, got {:?}: {}",
            s.code(),
            s.message()
        )),
        Ok(Err(s)) => {
            eprintln!("{what}: {took:?}: {}", s.message());
            if took >= UNAVAILABLE_BOUND {
                c.fail(format!(
                    "{what}: Unavailable took {took:?}, more than {UNAVAILABLE_BOUND:?}"
                ));
            }
            if s.message().is_empty() {
                c.fail(format!("{what}: Unavailable without an explanation"));
            }
            (took, s)
        }
    }
}

async fn check_no_quorum(c: &Cluster, survivor: u64, rev: u64) {
    let mut a = c.admin(survivor).await;
    let (took, _) = unavailable_in_time(
        c,
        "write without quorum",
        a.add_real(pb::RealRequest {
            service: "tcp/10.0.0.1:80".into(),
            real: Some(real("10.0.1.50", 80, 1)),
            expected_revision: None,
        }),
    )
    .await;
    assert!(
        took >= REQUEST_TIMEOUT / 2,
        "a write without quorum gave up after only {took:?}, well before the request timeout"
    );
    unavailable_in_time(
        c,
        "linearizable read without quorum",
        a.get_config(pb::GetConfigRequest {
            stale: false,
            ..Default::default()
        }),
    )
    .await;
    unavailable_in_time(
        c,
        "linearizable history without quorum",
        a.history(pb::HistoryRequest {
            limit: 0,
            stale: false,
        }),
    )
    .await;
    // The director's own copy is still readable.
    let t = Instant::now();
    let stale = c.ok(
        c.get_config(survivor, true).await,
        "stale read without quorum",
    );
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "stale read took {:?}",
        t.elapsed()
    );
    assert_eq!(stale.revision, rev);
    assert!(find_real(
        stale.config.as_ref().unwrap(),
        "tcp/10.0.0.1:80",
        "10.0.1.1"
    )
    .is_some());
    let h = c.ok(c.history(survivor, true).await, "stale history");
    assert_eq!(h.entries.len() as u64, rev);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_on_surviving_leader_answers_unavailable_then_recovers() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    add_service(&c, leader, "tcp/10.0.0.1:80", "rr").await;
    add_real(&c, leader, "tcp/10.0.0.1:80", "10.0.1.1", 1).await;
    let f = others(&c, leader);
    for id in &f {
        c.wait_stale_revision(*id, 2, SETTLE).await;
        c.kill(*id);
    }
    check_no_quorum(&c, leader, 2).await;

    // One follower back: a majority again, and writes succeed.
    c.start_node(f[0]);
    c.wait_running_leader(SETTLE).await;
    let w = add_real(&c, leader, "tcp/10.0.0.1:80", "10.0.1.2", 1).await;
    // The write refused above may or may not have been committed since (its message says so).
    assert!(w.revision == 3 || w.revision == 4, "{w:?}");
    let r = assert_revision(&c, f[0], w.revision, "after recovery").await;
    assert!(find_real(r.config.as_ref().unwrap(), "tcp/10.0.0.1:80", "10.0.1.2").is_some());
    let w2 = add_real(&c, f[0], "tcp/10.0.0.1:80", "10.0.1.3", 1).await;
    assert_eq!(w2.revision, w.revision + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_on_surviving_follower_answers_unavailable_then_recovers() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    add_service(&c, leader, "tcp/10.0.0.1:80", "rr").await;
    add_real(&c, leader, "tcp/10.0.0.1:80", "10.0.1.1", 1).await;
    let f = others(&c, leader);
    let survivor = f[0];
    c.wait_stale_revision(survivor, 2, SETTLE).await;
    c.kill(leader);
    c.kill(f[1]);
    check_no_quorum(&c, survivor, 2).await;
    // Still no quorum a while later (the survivor is campaigning by now): still bounded.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    unavailable_in_time(
        &c,
        "second write without quorum",
        c.admin(survivor).await.add_service(pb::ServiceRequest {
            service: Some(service("tcp/10.0.0.9:80", "rr")),
            expected_revision: None,
        }),
    )
    .await;

    // The old leader comes back: writes through the survivor succeed again.
    c.start_node(leader);
    c.wait_running_leader(SETTLE).await;
    let w = add_real(&c, survivor, "tcp/10.0.0.1:80", "10.0.1.2", 1).await;
    assert!(w.revision >= 3, "{w:?}");
    let r = assert_revision(&c, leader, w.revision, "after recovery").await;
    assert!(find_real(r.config.as_ref().unwrap(), "tcp/10.0.0.1:80", "10.0.1.2").is_some());
}

// -------------------------------------------------------------------------------------------
// 8. History and Watch.

async fn next_event(
    c: &Cluster,
    what: &str,
    s: &mut tonic::Streaming<pb::HistoryEntry>,
) -> pb::HistoryEntry {
    match tokio::time::timeout(Duration::from_secs(10), s.message()).await {
        Err(_) => c.fail(format!("{what}: no watch event within 10 s")),
        Ok(Err(e)) => c.fail(format!("{what}: watch stream failed: {e:?}")),
        Ok(Ok(None)) => c.fail(format!("{what}: watch stream ended")),
        Ok(Ok(Some(e))) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_watch_record_who_did_what() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader)[0];
    let key = "tcp/10.0.0.1:80";

    // Watch on a follower from "now", before anything happened.
    let mut live = c
        .ok(
            c.admin(f)
                .await
                .watch(pb::WatchRequest { from_revision: 0 })
                .await,
            "watch from 0",
        )
        .into_inner();

    let t0 = unix_ms();
    let mut la = c.admin(leader).await;
    let mut fa = c.admin(f).await;
    c.ok(
        la.add_service(with_principal(
            pb::ServiceRequest {
                service: Some(service(key, "rr")),
                expected_revision: None,
            },
            "alice",
        ))
        .await,
        "add service",
    );
    // Through the follower: the principal travels with the forwarded write.
    c.ok(
        fa.add_real(with_principal(
            pb::RealRequest {
                service: key.into(),
                real: Some(real("10.0.1.1", 80, 5)),
                expected_revision: None,
            },
            "alice",
        ))
        .await,
        "add real",
    );
    // Rejected and no-op writes leave no trace.
    assert!(fa
        .add_real(pb::RealRequest {
            service: key.into(),
            real: Some(real("10.0.1.1", 80, 5)),
            expected_revision: None,
        })
        .await
        .is_err());
    let noop = c
        .ok(
            fa.edit_real(pb::RealRequest {
                service: key.into(),
                real: Some(real("10.0.1.1", 80, 5)),
                expected_revision: None,
            })
            .await,
            "no-op edit",
        )
        .into_inner();
    assert_eq!(noop.revision, 2);
    assert!(noop.changes.is_empty(), "{:?}", noop.changes);
    // Without a principal, the client address is recorded.
    c.ok(
        la.edit_real(pb::RealRequest {
            service: key.into(),
            real: Some(real("10.0.1.1", 80, 9)),
            expected_revision: None,
        })
        .await,
        "edit real",
    );
    let t1 = unix_ms();

    let h = c.ok(c.history(f, false).await, "history").entries;
    assert_eq!(h.len(), 3, "{h:?}");
    let expect = [
        (1, "alice", "add-service", "add", "service tcp/10.0.0.1:80"),
        (
            2,
            "alice",
            "add-real",
            "add",
            "real tcp/10.0.0.1:80 10.0.1.1:80",
        ),
        (
            3,
            "anonymous@127.0.0.1",
            "edit-real",
            "modify",
            "real tcp/10.0.0.1:80 10.0.1.1:80",
        ),
    ];
    for (e, (rev, who, cmd, op, obj)) in h.iter().zip(expect) {
        assert_eq!(e.revision, rev, "{e:?}");
        assert_eq!(e.principal, who, "{e:?}");
        assert_eq!(e.command, cmd, "{e:?}");
        assert!(
            (t0..=t1).contains(&e.time_ms),
            "time {} not within {t0}..={t1}",
            e.time_ms
        );
        assert_eq!(e.changes.len(), 1, "{e:?}");
        assert_eq!(
            (e.changes[0].op.as_str(), e.changes[0].object.as_str()),
            (op, obj)
        );
    }
    assert!(
        h[1].changes[0].detail.contains("weight=5"),
        "{:?}",
        h[1].changes
    );
    assert!(
        h[2].changes[0].detail.contains("weight: 5 -> 9"),
        "{:?}",
        h[2].changes
    );
    let last = c
        .ok(
            fa.history(pb::HistoryRequest {
                limit: 1,
                stale: false,
            })
            .await,
            "history limit 1",
        )
        .into_inner();
    assert_eq!(last.revision, 3);
    assert_eq!(last.entries, h[2..]);

    // The live watch on the follower saw exactly the three changes, in order.
    for want in &h {
        let got = next_event(&c, "live watch", &mut live).await;
        assert_eq!(&got, want);
    }

    // A watch from revision 1 replays what came after it, then goes on live.
    let mut replay = c
        .ok(
            fa.watch(pb::WatchRequest { from_revision: 1 }).await,
            "watch from 1",
        )
        .into_inner();
    assert_eq!(next_event(&c, "replay", &mut replay).await, h[1]);
    assert_eq!(next_event(&c, "replay", &mut replay).await, h[2]);
    // A new watch from 0 does not replay anything.
    let mut fresh = c
        .ok(
            c.admin(f)
                .await
                .watch(pb::WatchRequest { from_revision: 0 })
                .await,
            "watch from 0 again",
        )
        .into_inner();
    c.ok(
        la.delete_real(with_principal(
            pb::RealRef {
                service: key.into(),
                address: "10.0.1.1".into(),
                port: 80,
                expected_revision: None,
            },
            "bob",
        ))
        .await,
        "delete real",
    );
    for (name, s) in [
        ("live", &mut live),
        ("replay", &mut replay),
        ("fresh", &mut fresh),
    ] {
        let e = next_event(&c, name, s).await;
        assert_eq!(e.revision, 4, "{name}: {e:?}");
        assert_eq!(e.principal, "bob", "{name}");
        assert_eq!(e.command, "delete-real", "{name}");
        assert_eq!(e.changes[0].op, "remove", "{name}");
    }
    // A watch on the leader, while writes go through another follower.
    let mut on_leader = c
        .ok(
            la.watch(pb::WatchRequest { from_revision: 3 }).await,
            "watch on leader",
        )
        .into_inner();
    assert_eq!(
        next_event(&c, "leader replay", &mut on_leader)
            .await
            .revision,
        4
    );
    let other_f = others(&c, leader)[1];
    add_service(&c, other_f, "udp/10.0.0.2:53", "rr").await;
    for (name, s) in [("leader", &mut on_leader), ("follower", &mut live)] {
        let e = next_event(&c, name, s).await;
        assert_eq!(
            (e.revision, e.command.as_str()),
            (5, "add-service"),
            "{name}"
        );
    }
}

// -------------------------------------------------------------------------------------------
// 9. SIGTERM on the leader.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_on_leader_exits_zero_and_others_elect() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    add_service(&c, leader, "tcp/10.0.0.1:80", "rr").await;
    // An open watch stream must not hold up shutdown.
    let _watch = c
        .ok(
            c.admin(leader)
                .await
                .watch(pb::WatchRequest { from_revision: 0 })
                .await,
            "watch",
        )
        .into_inner();

    let t = Instant::now();
    let code = c.terminate(leader);
    let took = t.elapsed();
    if code != Some(0) {
        c.fail(format!("leader exited with {code:?} after SIGTERM"));
    }
    if took > Duration::from_secs(5) {
        c.fail(format!("leader took {took:?} to exit after SIGTERM"));
    }
    let new = c.wait_running_leader(SETTLE).await;
    assert_ne!(new, leader);
    let w = add_real(&c, others(&c, leader)[1], "tcp/10.0.0.1:80", "10.0.1.1", 1).await;
    assert_eq!(w.revision, 2);
    assert!(c.log_text(leader).contains("shutting down"));
}

/// Five directors, three of them down: the leader is alive and known to the surviving follower
/// but cannot commit. Both a write and a linearizable read on that follower must answer
/// Unavailable in bounded time *with* `x-lvs-leader` naming the leader's API address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_quorum_with_a_known_leader_answers_unavailable_with_leader_hint() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(5, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    add_service(&c, leader, "tcp/10.0.0.1:80", "rr").await;
    add_real(&c, leader, "tcp/10.0.0.1:80", "10.0.1.1", 1).await;
    let f = others(&c, leader);
    let asked = f[0];
    c.wait_stale_revision(asked, 2, SETTLE).await;
    for id in &f[1..] {
        c.kill(*id);
    }
    // The leader keeps heartbeating the survivor, which keeps knowing it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let s = c.ok(c.status(asked).await, "status");
    assert_eq!(s.leader_id, Some(leader), "{s:?}");
    assert_eq!(s.leader_api_addr, c.api_addr(leader));

    let hint = |s: &Status| {
        s.metadata()
            .get(lvs_proto::LEADER_HINT_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut a = c.admin(asked).await;
    let (_, read) = unavailable_in_time(
        &c,
        "linearizable read on a follower of a leader without quorum",
        a.get_config(pb::GetConfigRequest {
            stale: false,
            ..Default::default()
        }),
    )
    .await;
    let (_, write) = unavailable_in_time(
        &c,
        "write on a follower of a leader without quorum",
        a.add_real(pb::RealRequest {
            service: "tcp/10.0.0.1:80".into(),
            real: Some(real("10.0.1.50", 80, 1)),
            expected_revision: None,
        }),
    )
    .await;
    let want = Some(c.api_addr(leader));
    if hint(&read) != want || hint(&write) != want {
        c.fail(format!(
            "Unavailable should carry x-lvs-leader={want:?} (the leader is known): read hint {:?} ({}), write hint {:?} ({})",
            hint(&read),
            read.message(),
            hint(&write),
            write.message()
        ));
    }

    // A third voter back: a majority of five, writes succeed again.
    c.start_node(f[1]);
    c.wait_running_leader(SETTLE).await;
    let w = add_real(&c, asked, "tcp/10.0.0.1:80", "10.0.1.2", 1).await;
    assert!(w.revision >= 3, "{w:?}");
}

/// Every acknowledged write survives kill -9 of all three directors at once, also when the
/// logs were compacted into snapshots in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_every_director_loses_no_acknowledged_write() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::snapshotting());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let f = others(&c, leader);
    let key = "tcp/10.0.0.1:80";
    add_service(&c, leader, key, "rr").await;
    add_real(&c, f[0], key, "10.0.1.1", 1).await;
    let mut last = 2;
    for i in 0..123u32 {
        let via = [leader, f[0], f[1]][i as usize % 3];
        last = set_weight(&c, via, key, "10.0.1.1", i + 2).await.revision;
    }
    assert_eq!(last, 125);
    let want = c.read(leader).await;
    for id in c.ids() {
        c.kill(id);
    }
    for id in c.ids() {
        c.start_node(id);
    }
    c.wait_running_leader(SETTLE).await;
    for id in c.ids() {
        let got = assert_revision(&c, id, 125, "after kill -9 of every director").await;
        assert_eq!(got.config, want.config, "director {id}");
        let h = c.ok(c.history(id, false).await, "history");
        let revs: Vec<u64> = h.entries.iter().map(|e| e.revision).collect();
        assert_eq!(revs, (1..=125).collect::<Vec<_>>(), "director {id}");
        c.wait_stale_revision(id, 125, SETTLE).await;
    }
    let w = set_weight(&c, f[1], key, "10.0.1.1", 1).await;
    assert_eq!(w.revision, 126);
}

/// A watch opened on a follower that is catching up from a snapshot sees every revision once,
/// in order, whether they arrive as replay or with the snapshot install.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_on_a_follower_is_contiguous_across_snapshot_install() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::snapshotting());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let lagging = others(&c, leader)[0];
    let key = "tcp/10.0.0.1:80";
    add_service(&c, leader, key, "rr").await;
    add_real(&c, leader, key, "10.0.1.1", 1).await;
    c.wait_stale_revision(lagging, 2, SETTLE).await;
    c.kill(lagging);
    for i in 0..150u32 {
        set_weight(&c, leader, key, "10.0.1.1", i + 2).await;
    }
    c.start_node(lagging);
    let mut w = c
        .wait_for(
            "a watch on the restarted director",
            SETTLE,
            async || match c
                .admin(lagging)
                .await
                .watch(pb::WatchRequest { from_revision: 2 })
                .await
            {
                Ok(r) => Ok(r.into_inner()),
                Err(e) => Err(format!("{e:?}")),
            },
        )
        .await;
    for want in 3..=152u64 {
        let e = next_event(&c, "watch across snapshot install", &mut w).await;
        if e.revision != want {
            c.fail(format!(
                "watch gave revision {} where {want} was due",
                e.revision
            ));
        }
    }
    // And it goes on live.
    set_weight(&c, leader, key, "10.0.1.1", 1).await;
    assert_eq!(
        next_event(&c, "live after install", &mut w).await.revision,
        153
    );
}

/// Removing the current leader hands leadership over; writes continue through the others, and
/// the removed director does not go on calling itself the leader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_leader_hands_over_and_the_removed_director_says_so() {
    let _turn = lvs_tests::serial::group("cluster");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let old = c.wait_running_leader(SETTLE).await;
    let f = others(&c, old);
    add_service(&c, old, "tcp/10.0.0.1:80", "rr").await;
    let r = c
        .ok(
            c.cluster(f[0])
                .await
                .remove_member(pb::RemoveMemberRequest { id: old })
                .await,
            "remove the leader",
        )
        .into_inner();
    let ids: Vec<u64> = r.members.iter().map(|m| m.id).collect();
    assert_eq!(ids, f, "{r:?}");
    let new = c.wait_leader_among(&f, SETTLE).await;
    assert_ne!(new, old);
    wait_members(&c, &f, &f, true).await;
    let w = add_real(&c, f[1], "tcp/10.0.0.1:80", "10.0.1.1", 1).await;
    assert_eq!(w.revision, 2);
    for id in &f {
        assert_revision(&c, *id, 2, "after removing the leader").await;
    }
    // The removed director's own status must be consistent: not a leader, so not its own leader.
    c.wait_for(
        "the removed director to stop naming itself leader",
        Duration::from_secs(5),
        async || {
            let s = c.status(old).await.map_err(|e| format!("{e:?}"))?;
            if s.state != "leader" && s.leader_id == Some(old) {
                Err(format!(
                    "state {:?} but leader_id {:?}, term {}, members {:?}",
                    s.state,
                    s.leader_id,
                    s.term,
                    s.members.iter().map(|m| m.id).collect::<Vec<_>>()
                ))
            } else {
                Ok(())
            }
        },
    )
    .await;
}
