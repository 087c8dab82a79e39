//! Host side of the lab: runs a command through `tests/lab/run.sh` (the lab VM, or the host when
//! its kernel has IPVS) with the release binaries, and gives back the exit status and the log.
//! Never skips: run.sh prepares the lab (packages, kernel, initramfs) when the cache is missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Lines of the log shown when a lab run fails.
const LOG_TAIL: usize = 200;

pub struct LabRun {
    pub status: ExitStatus,
    /// The console of the VM (or the host run).
    pub log: String,
    pub log_path: PathBuf,
    /// run.sh's own messages, including the preparation.
    pub stderr: String,
}

impl LabRun {
    /// Panics with the ends of run.sh's stderr and of the log unless the run succeeded.
    pub fn assert_success(&self, what: &str) {
        if !self.status.success() {
            panic!("{what} failed.\n{}", self.failure_report());
        }
    }

    /// The exit status and the ends of run.sh's stderr and of the log, for a failure message.
    pub fn failure_report(&self) -> String {
        format!(
            "run.sh: {}\n----- run.sh stderr (end) -----\n{}\n----- last {} lines of {} -----\n{}",
            self.status,
            tail(&self.stderr, 60),
            LOG_TAIL,
            self.log_path.display(),
            tail(&self.log, LOG_TAIL)
        )
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn target() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
}

/// Where `cargo build --release` puts binaries (examples are in `examples/` below it).
pub fn release_dir() -> PathBuf {
    target().join("release")
}

/// Runs `command` in the lab with `files` (relative to the workspace, or absolute) added to its
/// binaries folder; the log goes to `target/lab/<name>.log`. Panics when the release binaries are
/// missing.
pub fn run(name: &str, files: &[PathBuf], command: &[&str], timeout_s: u64) -> LabRun {
    let root = root();
    let target = target();
    let bin_dir = release_dir();
    for b in [
        "director",
        "lvsctl",
        "realserver-agent",
        "lab-scenario",
        "lab-tool",
    ] {
        assert!(
            bin_dir.join(b).exists(),
            "{} is missing: build the release binaries first: cargo build --release",
            bin_dir.join(b).display()
        );
    }
    let log_path = target.join("lab").join(format!("{name}.log"));
    fs::create_dir_all(log_path.parent().expect("log folder")).expect("creating target/lab");
    let mut cmd = Command::new("bash");
    cmd.arg(root.join("tests/lab/run.sh"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--log")
        .arg(&log_path)
        .arg("--timeout")
        .arg(timeout_s.to_string());
    for f in files {
        assert!(
            root.join(f).exists(),
            "{} is missing: build it first (make release)",
            root.join(f).display()
        );
        cmd.arg("--file").arg(root.join(f));
    }
    let out = cmd
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .expect("running tests/lab/run.sh (bash)");
    LabRun {
        status: out.status,
        log: fs::read_to_string(&log_path).unwrap_or_default(),
        log_path,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
