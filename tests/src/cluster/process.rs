//! The processes a test cluster runs: where the workspace binaries are, how a director is
//! spawned (and killed or stopped), the ports and certificates it is given, and the environment
//! that points lvsctl at it.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary. Looks in `LVS_BIN_DIR`, then the workspace's target/debug and
/// target/release; panics with the command to build it when missing.
pub fn bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("LVS_BIN_DIR") {
        let p = Path::new(&dir).join(name);
        assert!(p.exists(), "{} not found (LVS_BIN_DIR={dir})", p.display());
        return p;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let p = target.join(profile).join(name);
    assert!(
        p.exists(),
        "{} not found: build it first with `cargo build --bins{}`",
        p.display(),
        if profile == "release" {
            " --release"
        } else {
            ""
        }
    );
    p
}

/// A `[[peers]]` entry of a director config.
pub fn peer_section(id: u64, raft_addr: &str, api_addr: &str) -> String {
    format!("\n[[peers]]\nid = {id}\nraft_addr = \"{raft_addr}\"\napi_addr = \"{api_addr}\"\n")
}

/// Starts `cmd` (the director binary, possibly behind `ip netns exec`) with `--config`, and
/// `--bootstrap` when asked, appending its output to `log`.
pub fn spawn_director(mut cmd: Command, config: &Path, log: &Path, bootstrap: bool) -> Child {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    cmd.arg("--config").arg(config);
    // Test clusters speak plaintext unless their config has a [tls] section (Cluster::start_tls).
    let text = fs::read_to_string(config).expect("read director config");
    if !text.lines().any(|l| l.trim() == "[tls]") {
        cmd.arg("--insecure");
    }
    if bootstrap {
        cmd.arg("--bootstrap");
    }
    cmd.env(
        "RUST_LOG",
        std::env::var("DIRECTOR_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
    )
    .stdin(Stdio::null())
    .stdout(out.try_clone().expect("log fd"))
    .stderr(out);
    cmd.spawn().expect("spawn director")
}

/// Runs `lvsctl pki ARGS --dir DIR`, panicking with its output when it fails.
pub fn pki_run(dir: &Path, args: &[&str]) {
    let out = Command::new(bin("lvsctl"))
        .arg("pki")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run lvsctl pki");
    assert!(
        out.status.success(),
        "lvsctl pki {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The environment that makes lvsctl talk to a cluster: the operator `who`'s certificate
/// under `pki`, or plaintext without one.
pub fn lvsctl_env_for(pki: Option<&Path>, who: &str) -> Vec<(&'static str, String)> {
    match pki {
        Some(p) => vec![
            ("LVSCTL_CA", p.join("ca.pem").display().to_string()),
            (
                "LVSCTL_CERT",
                p.join(format!("{who}.pem")).display().to_string(),
            ),
            (
                "LVSCTL_KEY",
                p.join(format!("{who}.key")).display().to_string(),
            ),
        ],
        None => vec![("LVSCTL_INSECURE", "1".to_string())],
    }
}

/// SIGKILL a child and reap it.
pub fn kill_child(mut c: Child) {
    let _ = c.kill();
    let _ = c.wait();
}

/// SIGTERM a child and wait up to 10 s: `Some(exit code)` (None inside: killed by a signal), or
/// `None` when it did not exit in time (it is then killed).
pub fn terminate_child(mut c: Child) -> Option<Option<i32>> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(c.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            return Some(st.code());
        }
        if Instant::now() > deadline {
            kill_child(c);
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A free TCP port on 127.0.0.1 *below* the kernel's ephemeral range, handed out at most once
/// per process. An ephemeral port (bind to :0) can be taken by any outgoing connection (tests run
/// in parallel and open many) before the director binds it, or while it is stopped for a
/// restart; these cannot, and a per-process counter keeps concurrent tests apart.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000; // 20000..32000, under Linux's default 32768..60999
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Start where the process id says, so test binaries run side by side rarely meet.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id() * 97) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {LOW}..{}", LOW + SPAN);
}
