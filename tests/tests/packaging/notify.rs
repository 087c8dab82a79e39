//! systemd's notification protocol as a `Type=notify` unit with `WatchdogSec=` sees it: the
//! director and the agent, started with `NOTIFY_SOCKET` and `WATCHDOG_USEC` pointing at a socket
//! of this test, send READY=1 only once they serve, then WATCHDOG=1 at half the period, and
//! STOPPING=1 on SIGTERM. No root needed.

use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lvs_tests::{bin, free_port, spawn_director, Cluster, Timing};

/// The watchdog period systemd would pass (WatchdogSec=400ms): pings every 200 ms.
const WATCHDOG_USEC: &str = "400000";

/// A socket standing in for systemd's notification socket.
struct Notify {
    sock: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Notify {
    fn new() -> Notify {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        Notify {
            sock,
            _dir: dir,
            path,
        }
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("NOTIFY_SOCKET", &self.path)
            .env("WATCHDOG_USEC", WATCHDOG_USEC)
            .env_remove("WATCHDOG_PID");
    }

    /// The next message, or None after `timeout`.
    fn recv(&self, timeout: Duration) -> Option<String> {
        self.sock.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        match self.sock.recv(&mut buf) {
            Ok(n) => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(_) => None,
        }
    }

    /// Messages until one contains `what` (returned), or a panic after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, seen: &mut Vec<String>) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {what:?} within {timeout:?}; got {seen:?}"
            );
            if let Some(m) = self.recv(left) {
                seen.push(m.clone());
                if m.lines().any(|l| l == what || l.starts_with(what)) {
                    return m;
                }
            }
        }
    }

    /// After READY: pings arrive about every 200 ms.
    fn check_watchdog(&self, seen: &mut Vec<String>) {
        let t = Instant::now();
        for _ in 0..3 {
            self.wait_for("WATCHDOG=1", Duration::from_secs(2), seen);
        }
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "3 watchdog pings took {took:?} with WATCHDOG_USEC={WATCHDOG_USEC}"
        );
    }
}

fn stop(mut child: Child, notify: &Notify, seen: &mut Vec<String>) -> Option<i32> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let m = notify.wait_for("STOPPING=1", Duration::from_secs(10), seen);
    assert!(m.contains("STATUS="), "STOPPING=1 without a status: {m:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not exit within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn director_notifies_ready_watchdog_and_stopping() {
    let _turn = lvs_tests::serial::group("notify");
    let c = Cluster::new_stopped(1, Timing::default());
    let d = &c.nodes[0];
    let notify = Notify::new();
    let mut cmd = Command::new(bin("director"));
    notify.env(&mut cmd);
    let child = spawn_director(cmd, &d.config, &d.log, true);
    let _logs = c.logs_on_panic();
    let mut seen = Vec::new();
    let ready = notify.wait_for("READY=1", Duration::from_secs(20), &mut seen);
    assert!(
        ready.contains("STATUS=node 1: raft "),
        "READY=1 without the status: {ready:?}"
    );
    // READY means serving: both listeners accept at that moment.
    for addr in [d.api_addr(), d.raft_addr()] {
        let addr = addr.as_str();
        std::net::TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("READY=1 but {addr} does not accept: {e}"));
    }
    notify.check_watchdog(&mut seen);
    // The role shows up in `systemctl status` once the single node has elected itself.
    if !seen
        .iter()
        .any(|m| m.contains("STATUS=raft Leader, leader 1"))
    {
        notify.wait_for(
            "STATUS=raft Leader, leader 1",
            Duration::from_secs(10),
            &mut seen,
        );
    }
    assert_eq!(stop(child, &notify, &mut seen), Some(0));
}

#[test]
fn agent_notifies_ready_watchdog_and_stopping() {
    let _turn = lvs_tests::serial::group("notify");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let cfg = dir.path().join("agent.toml");
    // Nobody listens at the director address: readiness does not wait for a director.
    std::fs::write(
        &cfg,
        format!(
            "name = \"notify-test\"\ndirectors = [\"127.0.0.1:{}\"]\ncontrol_socket = \"{}\"\nstate_dir = \"{}\"\n",
            free_port(),
            socket.display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let notify = Notify::new();
    let mut cmd = Command::new(bin("realserver-agent"));
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg)
        .arg("--insecure")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    notify.env(&mut cmd);
    let child = cmd.spawn().expect("spawning realserver-agent");
    let mut seen = Vec::new();
    let ready = notify.wait_for("READY=1", Duration::from_secs(20), &mut seen);
    assert!(
        ready.contains("STATUS=agent notify-test reporting to 127.0.0.1:"),
        "READY=1 without the status: {ready:?}"
    );
    // READY means the control socket answers.
    assert!(Path::new(&socket).exists(), "READY=1 before the socket");
    UnixStream::connect(&socket).expect("READY=1 but the control socket does not accept");
    notify.check_watchdog(&mut seen);
    assert_eq!(stop(child, &notify, &mut seen), Some(0));
}
