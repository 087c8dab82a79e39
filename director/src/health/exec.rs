//! Exec checks: run a command (argv, no shell) in its own process group, exit status 0 = healthy;
//! on timeout the whole group is killed.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_core::health::ProbeResult;
use cluster_core::model::HealthCheck;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;
use tokio::sync::Semaphore;

use super::checker::{Checker, Target};
use super::common::{elapsed_us, CheckError};

/// Output kept per stream; the rest is read and dropped so the command never blocks on a pipe.
const MAX_OUTPUT: usize = 4096;
/// Longest output line quoted in a detail.
const MAX_LINE: usize = 200;
/// How long output may still arrive after the command exited.
const OUTPUT_GRACE: Duration = Duration::from_millis(100);

/// Runs exec checks, at most as many at once as it has slots.
#[derive(Clone)]
pub struct Exec {
    slots: Arc<Semaphore>,
}

impl Exec {
    pub fn new(slots: usize) -> Exec {
        Exec {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }
}

impl Checker for Exec {
    /// Waits for a free slot first; the timeout starts once the command does.
    async fn check(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        let Ok(_slot) = self.slots.acquire().await else {
            return ProbeResult::fail(CheckError::SlotsClosed.to_string(), 0);
        };
        run(hc, t, Duration::from_millis(u64::from(hc.timeout_ms))).await
    }
}

/// `{address}` and `{port}` (the probe port) in each argument.
pub fn substitute(arg: &str, t: &Target) -> String {
    arg.replace("{address}", &t.address.to_string())
        .replace("{port}", &t.probe_port.to_string())
}

/// Kills the command's process group unless disarmed, also when the check is cancelled.
struct Group(Option<i32>);

impl Group {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            // SAFETY: killpg has no memory effects; the group id is the child's pid, which
            // stays reserved while the group has members or the child is unreaped.
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn read_bounded<R: AsyncRead + Unpin>(mut r: R) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}

fn first_line(out: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(MAX_LINE).collect())
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// Runs the check's command against `t`, bounded by `limit`.
async fn run(hc: &HealthCheck, t: &Target, limit: Duration) -> ProbeResult {
    let start = Instant::now();
    let fail = |e: CheckError| ProbeResult::fail(e.to_string(), elapsed_us(start));
    let Some((program, args)) = hc.command.split_first() else {
        return fail(CheckError::NoCommand);
    };
    let mut cmd = Command::new(substitute(program, t));
    cmd.args(args.iter().map(|a| substitute(a, t)))
        .env("LVS_SERVICE", t.service.to_string())
        .env("LVS_REAL_ADDRESS", t.address.to_string())
        .env("LVS_REAL_PORT", t.port.to_string())
        .env("LVS_CHECK_PORT", t.probe_port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(source) => {
            return fail(CheckError::Start {
                program: program.clone(),
                source,
            })
        }
    };
    // Declared after `child`, so dropped (and the group killed) before the child is reaped.
    let mut group = Group(child.id().and_then(|p| i32::try_from(p).ok()));
    let stdout = child.stdout.take().map(|s| tokio::spawn(read_bounded(s)));
    let stderr = child.stderr.take().map(|s| tokio::spawn(read_bounded(s)));

    let status = match tokio::time::timeout(limit, child.wait()).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return fail(CheckError::io("wait")(e)),
        Err(_) => {
            group.kill();
            // Reap it; SIGKILL is immediate unless the process is stuck in the kernel.
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            return fail(CheckError::TimedOut(hc.timeout_ms));
        }
    };
    let us = elapsed_us(start);
    // Whatever it left running in its group goes too, so checks cannot pile up processes.
    group.kill();
    let collect = |h: Option<tokio::task::JoinHandle<Vec<u8>>>| async move {
        match h {
            Some(h) => match tokio::time::timeout(OUTPUT_GRACE, h).await {
                Ok(Ok(v)) => v,
                _ => Vec::new(),
            },
            None => Vec::new(),
        }
    };
    let (out, err) = (collect(stdout).await, collect(stderr).await);
    let what = describe(status);
    // Failures quote stderr first; successes (and plugins that report on stdout) quote stdout.
    let line = if status.success() {
        first_line(&out)
    } else {
        first_line(&err).or_else(|| first_line(&out))
    };
    let detail = match line {
        Some(l) => format!("{what}: {l}"),
        None => what,
    };
    ProbeResult {
        ok: status.success(),
        detail,
        latency_us: us,
    }
}

#[cfg(test)]
mod tests {
    use super::super::probe::Prober;
    use super::*;
    use cluster_core::model::CheckKind;
    use std::sync::Arc;

    fn target() -> Target {
        Target {
            service: "tcp/10.0.0.10:80".parse().unwrap(),
            address: "127.0.0.1".parse().unwrap(),
            port: 80,
            probe_port: 8080,
        }
    }

    fn exec(argv: &[&str], timeout_ms: u32) -> HealthCheck {
        let mut hc = HealthCheck::new(CheckKind::Exec);
        hc.command = argv.iter().map(|s| s.to_string()).collect();
        hc.timeout_ms = timeout_ms;
        hc
    }

    /// Gone, or a zombie nobody reaps (killed either way).
    fn process_gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(s) => s
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[tokio::test]
    async fn exit_status_decides() {
        let p = Prober::default();
        let r = p.probe(&exec(&["true"], 2000), &target()).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, "exit status 0");

        let r = p
            .probe(&exec(&["sh", "-c", "exit 2"], 2000), &target())
            .await;
        assert!(!r.ok);
        assert_eq!(r.detail, "exit status 2");

        let hc = exec(
            &[
                "sh",
                "-c",
                "echo 'all good'; echo 'disk full' >&2; echo more >&2; exit 2",
            ],
            2000,
        );
        assert_eq!(
            p.probe(&hc, &target()).await.detail,
            "exit status 2: disk full"
        );
        let hc = exec(&["sh", "-c", "echo 'OK - 3 ms'"], 2000);
        assert_eq!(
            p.probe(&hc, &target()).await.detail,
            "exit status 0: OK - 3 ms"
        );

        let hc = exec(&["sh", "-c", "kill -9 $$"], 2000);
        assert_eq!(p.probe(&hc, &target()).await.detail, "killed by signal 9");

        let r = p
            .probe(&exec(&["/nonexistent/check"], 2000), &target())
            .await;
        assert!(!r.ok);
        assert!(r.detail.starts_with("start /nonexistent/check: "), "{r:?}");

        // Lots of output is drained without blocking the command.
        let hc = exec(&["sh", "-c", "head -c 1000000 /dev/zero; exit 0"], 2000);
        assert!(p.probe(&hc, &target()).await.ok);
    }

    #[tokio::test]
    async fn placeholders_and_environment() {
        assert_eq!(
            substitute("{address}:{port}/x", &target()),
            "127.0.0.1:8080/x"
        );
        let script = r#"test "$1" = 127.0.0.1 && test "$2" = 8080 &&
            test "$LVS_REAL_ADDRESS" = 127.0.0.1 && test "$LVS_REAL_PORT" = 80 &&
            test "$LVS_CHECK_PORT" = 8080 && test "$LVS_SERVICE" = tcp/10.0.0.10:80"#;
        let hc = exec(&["sh", "-c", script, "sh", "{address}", "{port}"], 2000);
        let r = Prober::default().probe(&hc, &target()).await;
        assert!(r.ok, "{r:?}");
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let hc = exec(&["sh", "-c", &script], 300);
        let start = Instant::now();
        let r = Prober::default().probe(&hc, &target()).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "timed out after 300 ms");
        assert!(start.elapsed() < Duration::from_secs(2));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while !process_gone(pid) {
            assert!(
                Instant::now() < deadline,
                "sleep {pid} survived the timeout"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn exec_slots_bound_concurrency() {
        let p = Prober::new(1);
        let hc = Arc::new(exec(&["sleep", "0.3"], 2000));
        let start = Instant::now();
        let runs = (0..2).map(|_| {
            let (p, hc) = (p.clone(), hc.clone());
            tokio::spawn(async move { p.probe(&hc, &target()).await })
        });
        for r in futures::future::join_all(runs).await {
            assert!(r.unwrap().ok);
        }
        assert!(start.elapsed() >= Duration::from_millis(600));
    }
}
