//! `BIN __generate-docs OUTDIR`, what `make deb` packages: every binary writes its man pages
//! (one per visible subcommand for lvsctl and the agent) and bash/zsh/fish completions from its
//! clap definition, without a config file and without starting anything.

use std::path::Path;
use std::process::Command;

use lvs_tests::bin;

/// Runs `binary __generate-docs DIR` and returns the files it says it wrote (relative to DIR).
fn generate(binary: &str, dir: &Path) -> Vec<String> {
    let out = Command::new(bin(binary))
        .arg("__generate-docs")
        .arg(dir)
        .env_remove("DIRECTOR_CONFIG")
        .env_remove("REALSERVER_AGENT_CONFIG")
        .output()
        .unwrap_or_else(|e| panic!("running {binary}: {e}"));
    assert!(
        out.status.success(),
        "{binary} __generate-docs: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            Path::new(l)
                .strip_prefix(dir)
                .unwrap_or_else(|_| panic!("{l} is outside {}", dir.display()))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    for f in &listed {
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert!(len > 200, "{binary}: {f} is only {len} bytes");
    }
    listed
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A long flag as roff writes it (`\-\-config`).
fn roff_flag(flag: &str) -> String {
    flag.replace('-', "\\-")
}

fn check(binary: &str, pages: &[(&str, &[&str])], completion_flags: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let files = generate(binary, dir.path());
    for (page, flags) in pages {
        let name = format!("man/{page}.1");
        assert!(files.contains(&name), "{binary}: no {name} in {files:?}");
        let text = read(dir.path(), &name);
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{name}: not roff"
        );
        assert!(text.contains(&format!(".TH {page} 1")), "{name}: no title");
        for f in *flags {
            assert!(text.contains(&roff_flag(f)), "{name} does not document {f}");
        }
    }
    for c in [
        format!("completions/{binary}.bash"),
        format!("completions/_{binary}"),
        format!("completions/{binary}.fish"),
    ] {
        assert!(files.contains(&c), "{binary}: no {c} in {files:?}");
        let text = read(dir.path(), &c);
        for f in completion_flags {
            let bare = f.trim_start_matches('-');
            assert!(text.contains(bare), "{c} does not complete {f}");
        }
        // The hidden arguments stay hidden.
        assert!(
            !text.contains("__generate-docs"),
            "{c} offers __generate-docs"
        );
    }
    assert!(
        !files.iter().any(|f| f.contains("-help.1")),
        "{binary}: a page for the help subcommand: {files:?}"
    );
}

#[test]
fn director_docs() {
    let _turn = lvs_tests::serial::group("docs");
    check(
        "director",
        &[(
            "director",
            &[
                "--config",
                "--bootstrap",
                "--check",
                "--release-vips",
                "--log-format",
            ],
        )],
        &["--config", "--release-vips"],
    );
    // The man page names the config's environment variable too.
    let dir = tempfile::tempdir().unwrap();
    generate("director", dir.path());
    assert!(read(dir.path(), "man/director.1").contains("DIRECTOR_CONFIG"));
}

#[test]
fn agent_docs() {
    let _turn = lvs_tests::serial::group("docs");
    check(
        "realserver-agent",
        &[
            ("realserver-agent", &[]),
            ("realserver-agent-run", &["--config", "--check"]),
            (
                "realserver-agent-setup",
                &["--config", "--mode", "--vip", "--dry-run"],
            ),
            ("realserver-agent-teardown", &["--state-file"]),
            ("realserver-agent-drain", &["--socket", "--timeout"]),
            ("realserver-agent-check", &[]),
        ],
        &["--config", "--socket"],
    );
}

#[test]
fn lvsctl_docs() {
    let _turn = lvs_tests::serial::group("docs");
    check(
        "lvsctl",
        &[
            ("lvsctl", &["--endpoints", "--output"]),
            ("lvsctl-service", &[]),
            ("lvsctl-service-add", &["--tcp-service", "--scheduler"]),
            ("lvsctl-real-add", &["--real-server", "--weight"]),
            ("lvsctl-apply", &["--dry-run"]),
            ("lvsctl-cluster-status", &[]),
            ("lvsctl-completions", &[]),
        ],
        &["--endpoints", "--scheduler"],
    );
}

#[test]
fn usage_errors() {
    let _turn = lvs_tests::serial::group("docs");
    for b in ["director", "realserver-agent", "lvsctl"] {
        let out = Command::new(bin(b))
            .arg("__generate-docs")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{b} without OUTDIR");
        // An unwritable place fails instead of pretending.
        let out = Command::new(bin(b))
            .args(["__generate-docs", "/proc/version/docs"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{b} into /proc/version");
    }
}
