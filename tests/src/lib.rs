//! Harness for cluster-level tests and benchmarks: starts real `director` processes on 127.0.0.1
//! with free ports and temporary data directories, and kills them when dropped (also when a test
//! fails).

pub mod lab;
pub mod lab_run;
pub mod metrics;
pub mod netns;
pub mod traffic;
pub mod vip_cluster;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lvs_proto::v1::admin_client::AdminClient;
use lvs_proto::v1::cluster_client::ClusterClient;
use lvs_proto::v1::StatusRequest;
use tonic::transport::Channel;

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

pub struct Director {
    pub id: u64,
    pub raft_addr: String,
    pub api_addr: String,
    /// Where the director serves `/metrics` (`[metrics] listen`).
    pub metrics_addr: String,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl Director {
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }
}

/// Raft timing for tests: fast elections so failover tests finish quickly.
#[derive(Clone, Debug)]
pub struct Timing {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    pub snapshot_every: u64,
    pub keep_logs: u64,
}

impl Timing {
    /// Snapshots every 50 entries with 10 kept behind, so a follower that misses a few hundred
    /// writes can only catch up by snapshot install.
    pub fn snapshotting() -> Timing {
        Timing {
            snapshot_every: 50,
            keep_logs: 10,
            ..Default::default()
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: 50,
            election_min_ms: 300,
            election_max_ms: 600,
            snapshot_every: 5000,
            keep_logs: 1000,
        }
    }
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Director>,
    pub timing: Timing,
    /// The PKI directory (`lvsctl pki`) when the cluster runs mTLS: `director-ID`, `admin`
    /// (admin operator) and `reader` (read-only operator) certificates under one CA.
    pub pki: Option<PathBuf>,
}

impl Cluster {
    /// Writes configs for `n` directors (ids 1..=n) and starts them; director 1 bootstraps.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, Timing::default())
    }

    pub fn start_with(n: usize, timing: Timing) -> Cluster {
        let mut c = Cluster::new_stopped(n, timing);
        for i in 0..n {
            c.start_node_idx(i, i == 0);
        }
        c
    }

    /// Like `start`, with mTLS: a fresh CA and certificates made by `lvsctl pki`, and lvsctl
    /// calls made as the admin operator.
    pub fn start_tls(n: usize) -> Cluster {
        let mut c = Cluster::new_stopped_with(n, Timing::default(), true);
        for i in 0..n {
            c.start_node_idx(i, i == 0);
        }
        c
    }

    /// Writes configs only; start nodes with `start_node`.
    pub fn new_stopped(n: usize, timing: Timing) -> Cluster {
        Self::new_stopped_with(n, timing, false)
    }

    fn new_stopped_with(n: usize, timing: Timing, tls: bool) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("lvs-cluster-")
            .tempdir()
            .expect("tempdir");
        let pki = tls.then(|| {
            let pki = dir.path().join("pki");
            pki_run(&pki, &["init"]);
            for id in 1..=n {
                pki_run(
                    &pki,
                    &[
                        "issue",
                        "director",
                        &format!("director-{id}"),
                        "--ip",
                        "127.0.0.1",
                    ],
                );
            }
            pki_run(&pki, &["issue", "operator", "admin", "--role", "admin"]);
            pki_run(&pki, &["issue", "operator", "reader", "--role", "read"]);
            pki
        });
        let mut c = Cluster {
            dir,
            nodes: Vec::new(),
            timing,
            pki,
        };
        for id in 1..=n as u64 {
            c.add_config(id);
        }
        for i in 0..n {
            c.write_config(i, n);
        }
        c
    }

    fn add_config(&mut self, id: u64) -> usize {
        let raft_addr = format!("127.0.0.1:{}", free_port());
        let api_addr = format!("127.0.0.1:{}", free_port());
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        let base = self.dir.path().join(format!("director-{id}"));
        fs::create_dir_all(&base).expect("node dir");
        self.nodes.push(Director {
            id,
            raft_addr,
            api_addr,
            metrics_addr,
            config: base.join("director.toml"),
            log: base.join("director.log"),
            child: None,
        });
        self.nodes.len() - 1
    }

    /// Writes node `idx`'s config with the first `initial` nodes as bootstrap peers.
    fn write_config(&self, idx: usize, initial: usize) {
        let d = &self.nodes[idx];
        let t = &self.timing;
        let mut text = format!(
            "node_id = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\ndata_dir = \"{}\"\nrequest_timeout_ms = 3000\n\n# Loopback clusters share the host namespace: never touch its interfaces.\n[vip]\nenabled = false\n\n[ipvs]\nenabled = false\n\n[raft]\nheartbeat_ms = {}\nelection_min_ms = {}\nelection_max_ms = {}\nsnapshot_every = {}\nkeep_logs = {}\n",
            d.id,
            d.raft_addr,
            d.api_addr,
            self.dir.path().join(format!("director-{}/data", d.id)).display(),
            t.heartbeat_ms,
            t.election_min_ms,
            t.election_max_ms,
            t.snapshot_every,
            t.keep_logs,
        );
        text.push_str(&format!("\n[metrics]\nlisten = \"{}\"\n", d.metrics_addr));
        if let Some(pki) = &self.pki {
            let f = |n: &str| pki.join(n).display().to_string();
            text.push_str(&format!(
                "\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
                f("ca.pem"),
                f(&format!("director-{}.pem", d.id)),
                f(&format!("director-{}.key", d.id)),
            ));
        }
        for p in self.nodes.iter().take(initial) {
            if p.id != d.id {
                text.push_str(&peer_section(p.id, &p.raft_addr, &p.api_addr));
            }
        }
        fs::write(&d.config, text).expect("write config");
    }

    /// Adds the config of a further director (not a member yet) and starts it.
    pub fn spawn_extra(&mut self) -> usize {
        let id = self.nodes.len() as u64 + 1;
        let idx = self.add_config(id);
        self.write_config(idx, 0);
        self.start_node_idx(idx, false);
        idx
    }

    fn start_node_idx(&mut self, idx: usize, bootstrap: bool) {
        let d = &mut self.nodes[idx];
        assert!(d.child.is_none(), "director {} already running", d.id);
        d.child = Some(spawn_director(
            Command::new(bin("director")),
            &d.config,
            &d.log,
            bootstrap,
        ));
    }

    pub fn idx(&self, id: u64) -> usize {
        self.nodes
            .iter()
            .position(|d| d.id == id)
            .unwrap_or_else(|| panic!("no director {id}"))
    }

    /// Starts (or restarts) director `id` without bootstrapping.
    pub fn start_node(&mut self, id: u64) {
        let i = self.idx(id);
        self.start_node_idx(i, false);
    }

    /// Starts (or restarts) director `id` with `--bootstrap` (a no-op once its store belongs to a
    /// cluster).
    pub fn start_node_bootstrap(&mut self, id: u64) {
        let i = self.idx(id);
        self.start_node_idx(i, true);
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self, id: u64) {
        let i = self.idx(id);
        if let Some(c) = self.nodes[i].child.take() {
            kill_child(c);
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        let i = self.idx(id);
        let c = self.nodes[i].child.take()?;
        terminate_child(c)
            .unwrap_or_else(|| panic!("director {id} did not exit within 10 s of SIGTERM"))
    }

    pub fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .map(|d| d.api_addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn log_text(&self, id: u64) -> String {
        fs::read_to_string(&self.nodes[self.idx(id)].log).unwrap_or_default()
    }

    /// Prints every director's log (call on failure paths).
    pub fn dump_logs(&self) {
        for d in &self.nodes {
            eprintln!("===== director {} log =====", d.id);
            eprintln!("{}", fs::read_to_string(&d.log).unwrap_or_default());
        }
    }

    pub async fn admin(&self, id: u64) -> AdminClient<Channel> {
        AdminClient::new(self.channel(id))
    }

    pub async fn cluster(&self, id: u64) -> ClusterClient<Channel> {
        ClusterClient::new(self.channel(id))
    }

    /// The key material of operator `who` (`admin`, `reader`, or any name issued under `pki`).
    pub fn operator_tls(&self, who: &str) -> Option<lvs_proto::tls::Tls> {
        self.pki.as_ref().map(|p| {
            lvs_proto::tls::TlsFiles {
                ca: p.join("ca.pem"),
                cert: p.join(format!("{who}.pem")),
                key: p.join(format!("{who}.key")),
            }
            .load()
            .expect("operator certificate")
        })
    }

    /// A channel to director `id`'s API, as the admin operator when the cluster runs mTLS.
    fn channel(&self, id: u64) -> Channel {
        let addr = &self.nodes[self.idx(id)].api_addr;
        let tls = self.operator_tls("admin");
        lvs_proto::tls::endpoint(addr, tls.as_ref())
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(15))
            .connect_lazy()
    }

    /// Waits until a running director reports a leader that every running director agrees on.
    pub async fn wait_leader(&mut self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let running: Vec<u64> = self
                .nodes
                .iter_mut()
                .filter_map(|d| d.is_running().then_some(d.id))
                .collect();
            let mut leaders = Vec::new();
            for id in &running {
                let mut c = self.cluster(*id).await;
                if let Ok(s) = c.status(StatusRequest {}).await {
                    leaders.push(s.into_inner().leader_id);
                } else {
                    leaders.push(None);
                }
            }
            if let Some(Some(l)) = leaders.first() {
                if leaders.iter().all(|x| *x == Some(*l)) && running.contains(l) {
                    return *l;
                }
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no agreed leader within {timeout:?}: {leaders:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.nodes {
            if let Some(mut c) = d.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() || std::env::var("LVS_TEST_KEEP").is_ok() {
            eprintln!("cluster files kept in {}", self.dir.path().display());
            let _ = std::mem::replace(
                &mut self.dir,
                tempfile::tempdir().expect("replacement tempdir"),
            )
            .keep();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers for the cluster-level tests (extensions; nothing above depends on them).

use lvs_proto::v1 as pb;

/// Marker written into the cluster directory once the logs have been printed, so `LogsOnPanic`
/// does not print them a second time.
const LOGS_DUMPED: &str = "logs-dumped";

/// Prints every director's log if the test panics while it is alive (unless a wait already did).
/// Holds only the cluster directory, so the cluster itself stays free to borrow mutably.
pub struct LogsOnPanic {
    dir: PathBuf,
}

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() || self.dir.join(LOGS_DUMPED).exists() {
            return;
        }
        let mut logs: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.path().join("director.log"))
                    .filter(|p| p.exists())
                    .collect()
            })
            .unwrap_or_default();
        logs.sort();
        for p in logs {
            eprintln!("===== {} =====", p.display());
            eprintln!("{}", fs::read_to_string(&p).unwrap_or_default());
        }
    }
}

/// What a CLI run produced.
#[derive(Debug)]
pub struct CmdOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

impl Cluster {
    /// A guard that prints the directors' logs when the test panics (see `LogsOnPanic`).
    pub fn logs_on_panic(&self) -> LogsOnPanic {
        LogsOnPanic {
            dir: self.dir.path().to_path_buf(),
        }
    }

    /// Prints the logs, then panics with `msg`.
    #[track_caller]
    pub fn fail(&self, msg: impl std::fmt::Display) -> ! {
        self.dump_logs();
        let _ = fs::write(self.dir.path().join(LOGS_DUMPED), b"");
        panic!("{msg}");
    }

    /// Unwraps `r`, or prints the logs and panics naming `what`.
    #[track_caller]
    pub fn ok<T, E: std::fmt::Debug>(&self, r: Result<T, E>, what: &str) -> T {
        match r {
            Ok(v) => v,
            Err(e) => self.fail(format!("{what}: {e:?}")),
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|d| d.id).collect()
    }

    pub fn running_ids(&mut self) -> Vec<u64> {
        self.nodes
            .iter_mut()
            .filter_map(|d| d.is_running().then_some(d.id))
            .collect()
    }

    pub fn api_addr(&self, id: u64) -> String {
        self.nodes[self.idx(id)].api_addr.clone()
    }

    pub fn raft_addr(&self, id: u64) -> String {
        self.nodes[self.idx(id)].raft_addr.clone()
    }

    /// Calls `f` every 50 ms until it returns `Ok`; after `timeout` prints the logs and panics
    /// with `what` and the last `Err` (a description of what was seen instead).
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl AsyncFnMut() -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            match f().await {
                Ok(v) => return v,
                Err(last) => {
                    if Instant::now() > deadline {
                        self.fail(format!(
                            "timed out after {timeout:?} waiting for {what}; last seen: {last}"
                        ));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until directors `ids` all report the same leader, one of them (cf. `wait_leader`,
    /// which asks every running director).
    pub async fn wait_leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        self.wait_for(
            &format!("directors {ids:?} to agree on a leader among them"),
            timeout,
            async || {
                let mut leaders = Vec::new();
                for id in ids {
                    leaders.push(self.status(*id).await.ok().and_then(|s| s.leader_id));
                }
                match leaders.first() {
                    Some(Some(l)) if ids.contains(l) && leaders.iter().all(|x| *x == Some(*l)) => {
                        Ok(*l)
                    }
                    _ => Err(format!("leaders {leaders:?}")),
                }
            },
        )
        .await
    }

    /// `wait_leader_among` the running directors.
    pub async fn wait_running_leader(&mut self, timeout: Duration) -> u64 {
        let ids = self.running_ids();
        self.wait_leader_among(&ids, timeout).await
    }

    pub async fn status(&self, id: u64) -> Result<pb::StatusResponse, tonic::Status> {
        Ok(self
            .cluster(id)
            .await
            .status(StatusRequest {})
            .await?
            .into_inner())
    }

    /// `GetConfig` on director `id` (linearizable unless `stale`).
    pub async fn get_config(
        &self,
        id: u64,
        stale: bool,
    ) -> Result<pb::GetConfigResponse, tonic::Status> {
        Ok(self
            .admin(id)
            .await
            .get_config(pb::GetConfigRequest {
                stale,
                ..Default::default()
            })
            .await?
            .into_inner())
    }

    /// Linearizable read that must succeed.
    pub async fn read(&self, id: u64) -> pb::GetConfigResponse {
        let r = self.get_config(id, false).await;
        self.ok(r, &format!("linearizable read on director {id}"))
    }

    /// Polls stale reads on director `id` until it has applied `revision`.
    pub async fn wait_stale_revision(
        &self,
        id: u64,
        revision: u64,
        timeout: Duration,
    ) -> pb::GetConfigResponse {
        self.wait_for(
            &format!("director {id} to apply revision {revision} (stale read)"),
            timeout,
            async || match self.get_config(id, true).await {
                Ok(r) if r.revision >= revision => Ok(r),
                Ok(r) => Err(format!("revision {}", r.revision)),
                Err(e) => Err(format!("{e:?}")),
            },
        )
        .await
    }

    /// Full history as director `id` sees it.
    pub async fn history(
        &self,
        id: u64,
        stale: bool,
    ) -> Result<pb::HistoryResponse, tonic::Status> {
        Ok(self
            .admin(id)
            .await
            .history(pb::HistoryRequest { limit: 0, stale })
            .await?
            .into_inner())
    }

    /// Runs `lvsctl --endpoints <all directors> ARGS` (60 s limit).
    pub async fn lvsctl(&self, args: &[&str]) -> CmdOutput {
        self.lvsctl_at(&self.endpoints(), args).await
    }

    /// lvsctl's environment for this cluster as operator `who` (`admin` or `reader` with TLS).
    pub fn lvsctl_env(&self, who: &str) -> Vec<(&'static str, String)> {
        lvsctl_env_for(self.pki.as_deref(), who)
    }

    /// Runs `lvsctl --endpoints ENDPOINTS ARGS` (60 s limit).
    pub async fn lvsctl_at(&self, endpoints: &str, args: &[&str]) -> CmdOutput {
        let mut cmd = tokio::process::Command::new(bin("lvsctl"));
        for (k, v) in self.lvsctl_env("admin") {
            cmd.env(k, v);
        }
        cmd.arg("--endpoints")
            .arg(endpoints)
            .args(args)
            .env_remove("LVSCTL_ENDPOINTS")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => self.fail(format!("running lvsctl {args:?}: {e}")),
            Err(_) => self.fail(format!("lvsctl {args:?} did not finish within 60 s")),
        };
        CmdOutput {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
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

/// A request carrying `x-lvs-principal: principal`.
pub fn with_principal<T>(msg: T, principal: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        lvs_proto::PRINCIPAL_KEY,
        principal.parse().expect("ASCII principal"),
    );
    r
}

/// A service with just key and scheduler.
pub fn service(key: &str, scheduler: &str) -> pb::Service {
    pb::Service {
        key: key.into(),
        scheduler: scheduler.into(),
        ..Default::default()
    }
}

/// A direct-routing real server.
pub fn real(address: &str, port: u32, weight: u32) -> pb::RealServer {
    pb::RealServer {
        address: address.into(),
        port,
        weight: Some(weight),
        ..Default::default()
    }
}

/// A configuration touching every feature: all protocols and families, persistence with
/// netmasks, sh/mh flags, every forwarding method and tunnel type, thresholds, every kind of
/// health check, VIP groups and sync settings.
pub const RICH_CONFIG: &str = r#"
[[service]]
key = "tcp/10.0.0.1:80"
scheduler = "wrr"
persistence = { timeout = 300, netmask = "255.255.255.0" }
health_check = { kind = "http", path = "/healthz", host = "www.example.org", expect_status = "200-399", interval_ms = 1000, timeout_ms = 500, rise = 2, fall = 3, on_failure = "remove" }

[[service.reals]]
address = "10.0.1.1"
port = 80
weight = 5
upper_threshold = 1000
lower_threshold = 100

[[service.reals]]
address = "10.0.1.2"
port = 8080
weight = 3
forward = "masq"

[[service.reals]]
address = "10.0.1.3"
port = 80
forward = "tunnel"
tunnel_type = "gue"
tunnel_port = 6080
tunnel_csum = "remcsum"

[[service.reals]]
address = "10.0.1.4"
port = 80
forward = "tunnel"
tunnel_type = "gre"
tunnel_csum = "csum"

[[service.reals]]
address = "2001:db8::10"
port = 80
forward = "tunnel"
tunnel_type = "ipip"

[[service]]
key = "udp/10.0.0.2:53"
scheduler = "sh"
sched_flags = ["fallback", "port"]
one_packet = true
health_check = { kind = "dns", query_name = "example.org", query_type = "A" }

[[service.reals]]
address = "10.0.2.1"
port = 53
weight = 0

[[service.reals]]
address = "10.0.2.2"
port = 53

[[service]]
key = "sctp/10.0.0.3:9"
scheduler = "mh"
sched_flags = ["port"]
health_check = { kind = "tcp", port = 9999 }

[[service.reals]]
address = "10.0.3.1"
port = 9

[[service]]
key = "tcp/[2001:db8::1]:443"
scheduler = "wlc"
weight_policy = "latency"
persistence = { timeout = 600, netmask = "64" }
health_check = { kind = "https", path = "/" }

[[service.reals]]
address = "2001:db8::21"
port = 443
weight = 10

[[service.reals]]
address = "2001:db8::22"
port = 8443
forward = "masq"

[[service]]
key = "udp/[2001:db8::2]:5000"
scheduler = "twos"
health_check = { kind = "udp", send = "ping", expect = "pong" }

[[service.reals]]
address = "2001:db8::31"
port = 5000

[[service]]
key = "fwmark/5"
scheduler = "wrr"
weight_policy = "load"
health_check = { kind = "exec", command = ["/usr/local/bin/check", "--deep"] }

[[service.reals]]
address = "10.0.5.1"
port = 0

[[service.reals]]
address = "10.0.5.2"
port = 8080
forward = "masq"

[[service]]
key = "fwmark6/7"
scheduler = "wlc"
persistence = { timeout = 60, netmask = "48" }

[[service.reals]]
address = "2001:db8::71"
port = 0

[[service]]
key = "tcp/10.0.0.4:0"
scheduler = "dh"
persistence = { timeout = 120 }

[[service.reals]]
address = "10.0.4.1"
port = 0

[[vip_group]]
name = "web"
interface = "eth0"
addresses = ["10.0.0.1/24", "10.0.0.4/24", "10.0.0.2/32", "10.0.0.3/32"]

[[vip_group]]
name = "v6"
interface = "eth0.100"
addresses = ["2001:db8::1/64", "2001:db8::2/128"]

[sync]
interface = "eth1"
syncid = 7
group = "224.0.0.81"
port = 8848
ttl = 2
"#;
