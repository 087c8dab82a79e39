//! lvsctl end to end against real directors: ipvsadm-style writes, JSON views, endpoint failover,
//! apply/export round trips and file errors. The gRPC API is the judge of what was written.

use std::time::Duration;

use cluster_core::model::Config;
use lvs_proto::v1 as pb;
use lvs_tests::{Cluster, CmdOutput, Timing, RICH_CONFIG};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(20);

/// Expects exit 0; returns stdout.
fn success(c: &Cluster, what: &str, out: &CmdOutput) -> String {
    if !out.ok() {
        c.fail(format!(
            "{what}: lvsctl exited with {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        ));
    }
    out.stdout.clone()
}

/// Expects exit 1 with exactly one line `lvsctl: error: ...` on stderr naming each of `parts`.
fn failure(c: &Cluster, what: &str, out: &CmdOutput, parts: &[&str]) -> String {
    if out.code != Some(1) {
        c.fail(format!(
            "{what}: expected exit code 1, got {:?}\nstdout: {}\nstderr: {}",
            out.code, out.stdout, out.stderr
        ));
    }
    let err = out.stderr.trim_end();
    if err.lines().count() != 1 || !err.starts_with("lvsctl: error: ") {
        c.fail(format!(
            "{what}: stderr should be one line `lvsctl: error: ...`, got:\n{}",
            out.stderr
        ));
    }
    for p in parts {
        if !err.contains(p) {
            c.fail(format!("{what}: error should name {p:?}: {err}"));
        }
    }
    err.to_string()
}

fn json(c: &Cluster, what: &str, out: &CmdOutput) -> Value {
    let text = success(c, what, out);
    match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => c.fail(format!("{what}: stdout is not JSON ({e}):\n{text}")),
    }
}

async fn revision(c: &Cluster, id: u64) -> u64 {
    c.read(id).await.revision
}

fn write_file(c: &Cluster, name: &str, text: &str) -> String {
    let p = c.dir.path().join(name);
    std::fs::write(&p, text).expect("write file");
    p.display().to_string()
}

fn model(c: &Cluster, r: &pb::GetConfigResponse) -> Config {
    c.ok(
        lvs_proto::convert::config_from_pb(r.config.as_ref().unwrap()),
        "config from the API",
    )
}

// -------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lvsctl_writes_lists_reports_status_and_survives_a_dead_first_endpoint() {
    let _turn = lvs_tests::serial::group("lvsctl_cli");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let p = ["--principal", "alice"];

    let out = c
        .lvsctl(&[&p[..], &["service", "add", "-t", "10.0.0.1:80", "-s", "rr"]].concat())
        .await;
    success(&c, "service add", &out);
    let out = c
        .lvsctl(
            &[
                &p[..],
                &[
                    "real",
                    "add",
                    "-t",
                    "10.0.0.1:80",
                    "-r",
                    "10.0.1.1",
                    "-w",
                    "5",
                ],
            ]
            .concat(),
        )
        .await;
    success(&c, "real add", &out);

    // What the API sees.
    let r = c.read(leader).await;
    assert_eq!(r.revision, 2);
    let cfg = r.config.unwrap();
    assert_eq!(cfg.services.len(), 1);
    let s = &cfg.services[0];
    assert_eq!(
        (s.key.as_str(), s.scheduler.as_str()),
        ("tcp/10.0.0.1:80", "rr")
    );
    assert_eq!(s.reals.len(), 1);
    let rs = &s.reals[0];
    assert_eq!(
        (rs.address.as_str(), rs.port, rs.weight, rs.forward.as_str()),
        ("10.0.1.1", 80, Some(5), "dr")
    );

    // list --output json shows them.
    let v = json(
        &c,
        "list --output json",
        &c.lvsctl(&["list", "--output", "json"]).await,
    );
    assert_eq!(v["revision"], 2, "{v}");
    let svc = &v["config"]["service"][0];
    assert_eq!(svc["key"], "tcp/10.0.0.1:80", "{v}");
    assert_eq!(svc["scheduler"], "rr", "{v}");
    assert_eq!(svc["reals"][0]["address"], "10.0.1.1", "{v}");
    assert_eq!(svc["reals"][0]["port"], 80, "{v}");
    assert_eq!(svc["reals"][0]["weight"], 5, "{v}");
    // ... and the table looks like `ipvsadm -Ln`.
    let table = success(&c, "list", &c.lvsctl(&["list"]).await);
    assert!(table.contains("TCP  10.0.0.1:80 rr"), "{table}");
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("-> 10.0.1.1:80"))
        .unwrap_or_else(|| c.fail(format!("no real server line in:\n{table}")));
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols[..4], ["->", "10.0.1.1:80", "Route", "5"], "{line}");

    // cluster status --output json names the leader and the members.
    let v = json(
        &c,
        "cluster status --output json",
        &c.lvsctl(&["cluster", "status", "--output", "json"]).await,
    );
    assert_eq!(v["leader_id"], leader, "{v}");
    assert_eq!(v["leader_api_addr"], c.api_addr(leader), "{v}");
    let mut ids: Vec<u64> = v["members"]
        .as_array()
        .unwrap_or_else(|| c.fail(format!("no members in {v}")))
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3], "{v}");

    // History names who did it.
    let v = json(
        &c,
        "history --output json",
        &c.lvsctl(&["history", "--output", "json"]).await,
    );
    let entries = v["entries"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 2, "{v}");
    assert_eq!(entries[0]["principal"], "alice", "{v}");
    assert_eq!(entries[0]["command"], "add-service", "{v}");
    assert_eq!(entries[1]["command"], "add-real", "{v}");

    // Errors: exit 1, one line naming the problem; nothing written.
    let rejected: [(&str, &[&str], &[&str]); 4] = [
        (
            "duplicate real",
            &[
                "real",
                "add",
                "-t",
                "10.0.0.1:80",
                "-r",
                "10.0.1.1",
                "-w",
                "1",
            ],
            &["10.0.1.1:80", "already exists"],
        ),
        (
            "weight 70000",
            &[
                "real",
                "add",
                "-t",
                "10.0.0.1:80",
                "-r",
                "10.0.1.2",
                "-w",
                "70000",
            ],
            &["weight", "70000"],
        ),
        (
            "unknown scheduler",
            &["service", "add", "-t", "10.0.0.2:80", "-s", "fastest"],
            &["fastest"],
        ),
        (
            "unknown service",
            &["service", "del", "-t", "10.9.9.9:80"],
            &["10.9.9.9:80"],
        ),
    ];
    for (what, args, parts) in rejected {
        failure(&c, what, &c.lvsctl(args).await, parts);
    }
    assert_eq!(revision(&c, leader).await, 2);

    // Kill the leader and name it first: lvsctl moves on to the others and the write lands.
    let dead = leader;
    let rest: Vec<String> = c
        .ids()
        .into_iter()
        .filter(|id| *id != dead)
        .map(|id| c.api_addr(id))
        .collect();
    let endpoints = format!("{},{}", c.api_addr(dead), rest.join(","));
    c.kill(dead);
    let out = c
        .lvsctl_at(
            &endpoints,
            &[
                "real",
                "add",
                "-t",
                "10.0.0.1:80",
                "-r",
                "10.0.1.2",
                "-w",
                "3",
            ],
        )
        .await;
    success(&c, "real add with the first endpoint dead", &out);
    let out = c
        .lvsctl_at(
            &endpoints,
            &[
                "real",
                "edit",
                "-t",
                "10.0.0.1:80",
                "-r",
                "10.0.1.1",
                "-w",
                "7",
            ],
        )
        .await;
    success(&c, "real edit with the first endpoint dead", &out);
    let out = c
        .lvsctl_at(
            &endpoints,
            &["service", "edit", "-t", "10.0.0.1:80", "-s", "wlc"],
        )
        .await;
    success(&c, "service edit with the first endpoint dead", &out);
    let survivor = c.ids().into_iter().find(|id| *id != dead).unwrap();
    let r = c.read(survivor).await;
    assert_eq!(r.revision, 5);
    let cfg = r.config.unwrap();
    let s = &cfg.services[0];
    assert_eq!(s.scheduler, "wlc");
    let weights: Vec<(&str, Option<u32>)> = s
        .reals
        .iter()
        .map(|r| (r.address.as_str(), r.weight))
        .collect();
    assert_eq!(weights, [("10.0.1.1", Some(7)), ("10.0.1.2", Some(3))]);
    let v = json(
        &c,
        "list with the first endpoint dead",
        &c.lvsctl_at(&endpoints, &["list", "--output", "json"]).await,
    );
    assert_eq!(v["revision"], 5, "{v}");
    let out = c
        .lvsctl_at(
            &endpoints,
            &["real", "del", "-t", "10.0.0.1:80", "-r", "10.0.1.2"],
        )
        .await;
    success(&c, "real del", &out);
    let out = c
        .lvsctl_at(&endpoints, &["service", "del", "-t", "10.0.0.1:80"])
        .await;
    success(&c, "service del", &out);
    let r = c.read(survivor).await;
    assert_eq!(r.revision, 7);
    assert!(r.config.unwrap().services.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lvsctl_apply_rejects_bad_files_naming_line_column_and_field() {
    let _turn = lvs_tests::serial::group("lvsctl_cli");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let ok = write_file(
        &c,
        "ok.toml",
        "[[service]]\nkey = \"tcp/10.0.0.1:80\"\nscheduler = \"rr\"\n",
    );
    success(&c, "apply ok.toml", &c.lvsctl(&["apply", "-f", &ok]).await);
    let before = c.read(leader).await;
    assert_eq!(before.revision, 1);

    // Malformed TOML: an unquoted string on line 3.
    let bad = write_file(
        &c,
        "malformed.toml",
        "[[service]]\nkey = \"tcp/10.0.0.2:80\"\nscheduler = rr\n",
    );
    for dry in [false, true] {
        let mut args = vec!["apply", "-f", &bad];
        if dry {
            args.push("--dry-run");
        }
        let out = c.lvsctl(&args).await;
        failure(
            &c,
            "malformed TOML",
            &out,
            &["malformed.toml", "line 3", "column"],
        );
    }
    // An unknown field, named with its position; well-formed but invalid: the server's field
    // path and value come through.
    let bad_files: [(&str, &str, &str, &[&str]); 3] = [
        (
            "unknown field",
            "unknown.toml",
            "[[service]]\nkey = \"tcp/10.0.0.2:80\"\nschedulr = \"rr\"\n",
            &["schedulr", "line 3"],
        ),
        (
            "unknown real field",
            "unknown-real.toml",
            "[[service]]\nkey = \"tcp/10.0.0.2:80\"\n\n[[service.reals]]\naddress = \"10.0.1.1\"\nport = 80\nwieght = 5\n",
            &["wieght", "line 7"],
        ),
        (
            "invalid weight",
            "invalid.toml",
            "[[service]]\nkey = \"tcp/10.0.0.2:80\"\n\n[[service.reals]]\naddress = \"10.0.1.1\"\nport = 80\nweight = 70000\n",
            &[
                "service[tcp/10.0.0.2:80].reals[10.0.1.1:80].weight",
                "70000",
            ],
        ),
    ];
    for (what, name, text, parts) in bad_files {
        let file = write_file(&c, name, text);
        failure(&c, what, &c.lvsctl(&["apply", "-f", &file]).await, parts);
    }
    let missing = c
        .dir
        .path()
        .join("does-not-exist.toml")
        .display()
        .to_string();
    let out = c.lvsctl(&["apply", "-f", &missing]).await;
    failure(&c, "missing file", &out, &["does-not-exist.toml"]);

    // Nothing was written anywhere.
    for id in c.ids() {
        let r = c.read(id).await;
        assert_eq!(r.revision, 1, "director {id}");
        assert_eq!(r.config, before.config, "director {id}");
    }
    let h = c.ok(c.history(leader, false).await, "history");
    assert_eq!(h.entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lvsctl_dry_run_apply_export_and_reapply_round_trip() {
    let _turn = lvs_tests::serial::group("lvsctl_cli");
    let mut c = Cluster::start_with(3, Timing::default());
    let _logs = c.logs_on_panic();
    let leader = c.wait_running_leader(SETTLE).await;
    let rich = write_file(&c, "rich.toml", RICH_CONFIG);
    let desired = Config::from_toml(RICH_CONFIG).unwrap();
    let expected = cluster_core::validate::config(&desired).unwrap();

    // Dry run: the diff, nothing written.
    let dry = json(
        &c,
        "apply --dry-run",
        &c.lvsctl(&["apply", "-f", &rich, "--dry-run", "--output", "json"])
            .await,
    );
    assert_eq!(dry["applied"], false, "{dry}");
    assert_eq!(dry["dry_run"], true, "{dry}");
    assert_eq!(dry["revision"], 0, "{dry}");
    let changes = dry["changes"].as_array().cloned().unwrap_or_default();
    assert!(changes.len() > 20, "{dry}");
    assert!(
        changes
            .iter()
            .any(|ch| ch["op"] == "add" && ch["object"] == "service fwmark6/7"),
        "{dry}"
    );
    let table = success(
        &c,
        "apply --dry-run (table)",
        &c.lvsctl(&["apply", "-f", &rich, "--dry-run"]).await,
    );
    assert!(table.contains("+ service tcp/10.0.0.1:80"), "{table}");
    for id in c.ids() {
        let r = c.read(id).await;
        assert_eq!(r.revision, 0, "dry run wrote to director {id}");
        assert_eq!(model(&c, &r), Config::default());
    }

    // The real thing: one revision, the same changes.
    let done = json(
        &c,
        "apply",
        &c.lvsctl(&["apply", "-f", &rich, "--output", "json"]).await,
    );
    assert_eq!(done["applied"], true, "{done}");
    assert_eq!(done["revision"], 1, "{done}");
    assert_eq!(done["changes"], dry["changes"]);
    for id in c.ids() {
        let r = c.read(id).await;
        assert_eq!(r.revision, 1);
        assert_eq!(model(&c, &r), expected, "director {id}");
    }

    // export, then apply the export: a no-op.
    let exported = success(&c, "export", &c.lvsctl(&["export"]).await);
    match Config::from_toml(&exported) {
        Ok(cfg) => assert_eq!(cfg, expected, "export:\n{exported}"),
        Err(e) => c.fail(format!("export is not a config file: {e}\n{exported}")),
    }
    let file = write_file(&c, "exported.toml", &exported);
    let again = json(
        &c,
        "apply exported",
        &c.lvsctl(&["apply", "-f", &file, "--output", "json"]).await,
    );
    assert_eq!(again["changes"], serde_json::json!([]), "{again}");
    assert_eq!(again["revision"], 1, "{again}");
    let dry = json(
        &c,
        "dry-run exported",
        &c.lvsctl(&["apply", "-f", &file, "--dry-run", "--output", "json"])
            .await,
    );
    assert_eq!(dry["changes"], serde_json::json!([]), "{dry}");
    assert_eq!(revision(&c, leader).await, 1);

    // --expect-revision guards the apply.
    let empty = write_file(&c, "empty.toml", "");
    let out = c
        .lvsctl(&["apply", "-f", &empty, "--expect-revision", "0"])
        .await;
    failure(
        &c,
        "stale --expect-revision",
        &out,
        &["expected_revision", "0", "1"],
    );
    assert_eq!(revision(&c, leader).await, 1);
    let out = c
        .lvsctl(&[
            "apply",
            "-f",
            &empty,
            "--expect-revision",
            "1",
            "--output",
            "json",
        ])
        .await;
    let v = json(&c, "apply empty at revision 1", &out);
    assert_eq!(v["revision"], 2, "{v}");
    let r = c.read(leader).await;
    assert_eq!(model(&c, &r), Config::default());
}
