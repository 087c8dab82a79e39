//! The example site in deploy/site/ (and the packaged examples) must be usable as written: every
//! director file passes `director --check`, the agent file `realserver-agent run --check`, and
//! services.toml `lvsctl apply --dry-run` against a running director. Only the `/etc/lvs/pki/`
//! paths are pointed at certificates this test issues with `lvsctl pki`. A file that does not
//! parse fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lvs_tests::{bin, Cluster};

fn site() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/site")
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    eprintln!(
        "{cmd:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A CA and certificates for director-1..3 and web-1 under `dir/pki`, as the examples expect.
fn issue_pki(dir: &Path) -> PathBuf {
    let pki = dir.join("pki");
    let lvsctl = bin("lvsctl");
    ok(Command::new(&lvsctl)
        .args(["pki", "init", "--dir"])
        .arg(&pki));
    for n in 1..=3 {
        ok(Command::new(&lvsctl)
            .args(["pki", "issue", "director", &format!("director-{n}")])
            .args(["--ip", &format!("10.0.0.{n}"), "--dir"])
            .arg(&pki));
    }
    ok(Command::new(&lvsctl)
        .args(["pki", "issue", "agent", "web-1", "--ip", "10.0.0.11"])
        .args(["--ip", "2001:db8:10::11", "--dir"])
        .arg(&pki));
    pki
}

/// `name` from deploy/site with its `/etc/lvs/pki/` paths moved to `pki`, written to `dir`.
fn localised(name: &str, dir: &Path, pki: &Path) -> PathBuf {
    let text = std::fs::read_to_string(site().join(name)).unwrap();
    assert!(
        text.contains("\"/etc/lvs/pki/"),
        "{name}: no [tls] files under /etc/lvs/pki/"
    );
    let out = dir.join(name);
    std::fs::write(
        &out,
        text.replace("\"/etc/lvs/pki/", &format!("\"{}/", pki.display())),
    )
    .unwrap();
    out
}

#[test]
fn director_examples_pass_check() {
    let _turn = lvs_tests::serial::group("site_configs");
    let dir = tempfile::tempdir().unwrap();
    let pki = issue_pki(dir.path());
    let mut ids = Vec::new();
    for n in 1..=3 {
        let name = format!("director-{n}.toml");
        let text = std::fs::read_to_string(site().join(&name)).unwrap();
        for section in ["[tls]", "[metrics]", "[[peers]]"] {
            assert!(text.contains(section), "{name}: no {section}");
        }
        let cfg = localised(&name, dir.path(), &pki);
        let stdout = ok(Command::new(bin("director"))
            .arg("--check")
            .arg("-c")
            .arg(&cfg));
        assert!(stdout.contains("ok"), "{stdout}");
        ids.push(
            text.lines()
                .find(|l| l.starts_with("node_id"))
                .map(str::to_string),
        );
    }
    ids.dedup();
    assert_eq!(ids.len(), 3, "node ids must differ: {ids:?}");

    // A broken file fails the same check (the check above cannot pass vacuously).
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(dir.path().join("director-1.toml")).unwrap();
    std::fs::write(&bad, text.replace("[metrics]", "[metrics]\nbogus = 1")).unwrap();
    let out = run(Command::new(bin("director"))
        .arg("--check")
        .arg("-c")
        .arg(&bad));
    assert!(!out.status.success());
    // And the examples really use the files: a missing key file fails.
    std::fs::remove_file(pki.join("director-2.key")).unwrap();
    let cfg = dir.path().join("director-2.toml");
    let out = run(Command::new(bin("director"))
        .arg("--check")
        .arg("-c")
        .arg(&cfg));
    assert!(!out.status.success(), "--check passed without the key file");
}

#[test]
fn agent_examples_pass_check() {
    let _turn = lvs_tests::serial::group("site_configs");
    let dir = tempfile::tempdir().unwrap();
    let pki = issue_pki(dir.path());
    let cfg = localised("agent.toml", dir.path(), &pki);
    let stdout = ok(Command::new(bin("realserver-agent"))
        .args(["run", "--check", "--config"])
        .arg(&cfg));
    assert!(stdout.contains("valid"), "{stdout}");
    // [setup] is what the setup unit uses: the dry run reads mode and VIPs from it (and plans
    // against this host without changing it).
    let text = std::fs::read_to_string(&cfg).unwrap();
    assert!(text.contains("[setup]") && text.contains("[tls]") && text.contains("[metrics]"));

    // The example shipped next to the binary parses too (it has no [tls]: plaintext with
    // --insecure only).
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../realserver-agent/agent.example.toml");
    ok(Command::new(bin("realserver-agent"))
        .args(["run", "--check", "--insecure", "--config"])
        .arg(&example));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text.replace("interval_ms = 1000", "interval_ms = 5")).unwrap();
    let out = run(Command::new(bin("realserver-agent"))
        .args(["run", "--check", "--config"])
        .arg(&bad));
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_example_applies() {
    let _turn = lvs_tests::serial::group("site_configs");
    let mut c = Cluster::start(1);
    let _logs = c.logs_on_panic();
    c.wait_leader(Duration::from_secs(20)).await;
    let file = site().join("services.toml");
    let out = c
        .lvsctl(&[
            "--output",
            "json",
            "apply",
            "--dry-run",
            "-f",
            file.to_str().unwrap(),
        ])
        .await;
    if !out.ok() {
        c.fail(format!(
            "lvsctl apply --dry-run -f {}: {:?}\n{}",
            file.display(),
            out.code,
            out.stderr
        ));
    }
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true, "{v}");
    let changes = v["changes"].as_array().unwrap();
    // The three services, the VIP group and the sync settings are all new.
    let all = serde_json::to_string(changes).unwrap();
    for object in [
        "tcp/10.0.0.100:80",
        "tcp/10.0.0.100:443",
        "tcp/[2001:db8:10::100]:80",
        "web",
        "eth1",
    ] {
        assert!(all.contains(object), "no change for {object}: {all}");
    }
}
