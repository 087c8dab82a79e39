//! The unit files in deploy/systemd/: `systemd-analyze verify --root` accepts them with nothing
//! to say (ExecStart binaries, man: references and dependencies resolved in a throwaway root
//! holding this build's binaries and man pages), and the binaries accept the units' command
//! lines. `make deb-check` does the same for the packaged files.

use std::path::{Path, PathBuf};
use std::process::Command;

use lvs_tests::bin;

const UNITS: [&str; 3] = [
    "lvs-director.service",
    "realserver-agent.service",
    "realserver-agent-setup.service",
];

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd")
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(units_dir().join(name)).unwrap()
}

/// The values of `key=` in a unit, in order.
fn values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let dest = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_symlink() {
            let _ = std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest);
        } else if ft.is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    let _turn = lvs_tests::serial::group("systemd_units");
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "systemd-analyze not found: install systemd (apt-get install systemd) to check the units"
    );
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    // The host's units, so dependencies like network-online.target resolve; then ours.
    let sys = r.join("usr/lib/systemd/system");
    copy_dir(Path::new("/usr/lib/systemd/system"), &sys);
    for u in UNITS {
        std::fs::copy(units_dir().join(u), sys.join(u)).unwrap();
    }
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    for b in ["director", "realserver-agent"] {
        std::fs::copy(bin(b), r.join("usr/bin").join(b)).unwrap();
        let docs = r.join("docs").join(b);
        let out = Command::new(bin(b))
            .arg("__generate-docs")
            .arg(&docs)
            .output()
            .unwrap();
        assert!(out.status.success(), "{b} __generate-docs: {out:?}");
        copy_dir(&docs.join("man"), &r.join("usr/share/man/man1"));
    }
    // lvsctl(1) is referenced too.
    let out = Command::new(bin("lvsctl"))
        .arg("__generate-docs")
        .arg(r.join("docs/lvsctl"))
        .output()
        .unwrap();
    assert!(out.status.success());
    copy_dir(&r.join("docs/lvsctl/man"), &r.join("usr/share/man/man1"));

    let out = Command::new("systemd-analyze")
        .current_dir(&sys)
        .env("MANPATH", r.join("usr/share/man"))
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .args(UNITS)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify: {:?}\n{said}",
        out.status
    );

    // It does complain about a bad unit (so the silence above means something).
    let bad = unit("lvs-director.service").replace("NotifyAccess=main", "NotifyAcces=main");
    std::fs::write(sys.join("lvs-director.service"), bad).unwrap();
    let out = Command::new("systemd-analyze")
        .current_dir(&sys)
        .env("MANPATH", r.join("usr/share/man"))
        .arg("verify")
        .arg(format!("--root={}", r.display()))
        .arg("lvs-director.service")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotifyAcces"));
}

#[test]
fn units_have_the_promised_settings() {
    let _turn = lvs_tests::serial::group("systemd_units");
    let d = unit("lvs-director.service");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=10s",
        "Restart=on-failure",
        "User=lvs",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "StateDirectory=lvs-director",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX AF_PACKET",
        "KillSignal=SIGTERM",
        "ExecStopPost=/usr/bin/director --config ${DIRECTOR_CONFIG} --release-vips",
    ] {
        assert!(
            d.lines().any(|l| l == line),
            "lvs-director.service: no {line}"
        );
    }
    let a = unit("realserver-agent.service");
    for line in [
        "Type=notify",
        "User=lvs-agent",
        "CapabilityBoundingSet=",
        "RuntimeDirectory=realserver-agent",
        "StateDirectory=realserver-agent",
    ] {
        assert!(
            a.lines().any(|l| l == line),
            "realserver-agent.service: no {line}"
        );
    }
    let s = unit("realserver-agent-setup.service");
    assert!(
        !s.lines().any(|l| l.starts_with("User=")),
        "setup runs as root"
    );
    assert_eq!(values(&s, "Type"), ["oneshot"]);
    assert_eq!(values(&s, "RemainAfterExit"), ["yes"]);
}

/// Runs a unit's command line (`${VAR}` replaced) with `extra` arguments appended.
fn run_line(line: &str, vars: &[(&str, &Path)], extra: &[&str]) -> std::process::Output {
    let mut words: Vec<String> = line.split_whitespace().map(str::to_string).collect();
    for w in &mut words {
        for (k, v) in vars {
            *w = w.replace(&format!("${{{k}}}"), &v.to_string_lossy());
        }
    }
    let program = Path::new(&words[0]).file_name().unwrap().to_str().unwrap();
    let out = Command::new(bin(program))
        .args(&words[1..])
        .args(extra)
        .output()
        .unwrap();
    eprintln!(
        "{words:?} {extra:?}: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn the_binaries_accept_the_units_command_lines() {
    let _turn = lvs_tests::serial::group("systemd_units");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.path().join("director.toml");
    std::fs::write(
        &cfg,
        format!(
            "node_id = 1\nraft_addr = \"127.0.0.1:7100\"\napi_addr = \"127.0.0.1:7000\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let d = unit("lvs-director.service");
    let vars = [("DIRECTOR_CONFIG", cfg.as_path())];
    // ExecStart: the same arguments pass the config check.
    let start = &values(&d, "ExecStart")[0];
    assert!(run_line(start, &vars, &["--check"]).status.success());
    // ExecStopPost: with nothing recorded it succeeds without touching anything, TLS or not.
    let post = &values(&d, "ExecStopPost")[0];
    let out = run_line(post, &vars, &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no VIPs listed"));

    let agent_cfg = dir.path().join("agent.toml");
    std::fs::write(
        &agent_cfg,
        format!(
            "name = \"web-1\"\ndirectors = [\"127.0.0.1:7000\"]\nstate_dir = \"{}\"\n\n[setup]\nmode = \"dr\"\nvips = [\"192.0.2.100\"]\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let vars = [("REALSERVER_AGENT_CONFIG", agent_cfg.as_path())];
    let a = unit("realserver-agent.service");
    let start = &values(&a, "ExecStart")[0];
    assert!(run_line(start, &vars, &["--check", "--insecure"])
        .status
        .success());
    // The setup unit's lines, as a dry run: it plans against this host and changes nothing.
    let s = unit("realserver-agent-setup.service");
    for key in ["ExecStart", "ExecStop"] {
        let line = values(&s, key)[0].replace(
            "/var/lib/realserver-agent-setup/setup.json",
            &dir.path().join("setup.json").to_string_lossy(),
        );
        let out = run_line(&line, &vars, &["--dry-run"]);
        assert!(out.status.success(), "{key}");
    }
    assert!(
        !dir.path().join("setup.json").exists(),
        "a dry run wrote state"
    );
}
