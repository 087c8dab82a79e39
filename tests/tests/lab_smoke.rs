//! The real-kernel lab works: `tests/lab/run.sh` boots the lab VM (or uses the host when its
//! kernel has IPVS) with the release binaries and runs `tests/lab/smoke.sh` there (IPVS with every
//! scheduler, IPVS per network namespace, veth + bridge between three namespaces, nftables, the
//! project's binaries). Never skipped: run.sh prepares the lab (packages, kernel, initramfs) when
//! the cache is missing. Needs root and the release binaries (`cargo build --release`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Lines of the log printed when the check fails.
const LOG_TAIL: usize = 150;

#[test]
fn lab_smoke_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let bin_dir = target.join("release");
    for b in ["director", "lvsctl", "realserver-agent"] {
        assert!(
            bin_dir.join(b).exists(),
            "{} is missing: build the release binaries first: cargo build --release",
            bin_dir.join(b).display()
        );
    }
    let log = target.join("lab").join("lab-smoke.log");
    fs::create_dir_all(log.parent().unwrap()).expect("creating target/lab");

    let out = Command::new("bash")
        .arg(root.join("tests/lab/run.sh"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--log")
        .arg(&log)
        .arg("--timeout")
        .arg("600")
        .arg("--file")
        .arg(root.join("tests/lab/smoke.sh"))
        .args(["--", "smoke.sh"])
        .stdin(Stdio::null())
        .output()
        .expect("running tests/lab/run.sh (bash)");

    if out.status.success() {
        let text = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("SMOKE OK"),
            "run.sh exited 0 but the log {} has no SMOKE OK",
            log.display()
        );
        return;
    }
    // The log has the console of the VM (or the host run); run.sh's own messages, including the
    // preparation, are on its stderr.
    let text = fs::read_to_string(&log).unwrap_or_default();
    let stderr = String::from_utf8_lossy(&out.stderr);
    panic!(
        "the lab smoke check failed ({}).\n----- run.sh stderr (end) -----\n{}\n----- last {} lines of {} -----\n{}",
        out.status,
        tail(&stderr, 60),
        LOG_TAIL,
        log.display(),
        tail(&text, LOG_TAIL)
    );
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
