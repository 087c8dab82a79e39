//! The one cluster driver: real `director` processes with temporary data directories, placed
//! either on 127.0.0.1 ([`Loopback`], async gRPC and lvsctl from the test process) or one per
//! network namespace ([`Netns`], blocking, lvsctl from a client namespace). Starting, stopping,
//! restarting, logs, endpoints and the leader-agreement rule are written once here; the placement
//! only says where a process runs and how a director's config reads. Dropping a cluster kills its
//! directors (also when a test fails) and keeps its files when it panicked.
//!
//! * `process` — binaries, spawning and stopping processes, free ports, lvsctl's environment;
//! * `loopback` — the loopback placement and its async client (gRPC, lvsctl);
//! * `namespaces` — the network-namespace placement and its blocking client (lvsctl in `client`).

mod loopback;
mod namespaces;
pub mod process;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use loopback::{LocalHost, Loopback, Timing};
pub use namespaces::{Netns, API_PORT, RAFT_PORT};
use process::{bin, kill_child, lvsctl_env_for, peer_section, spawn_director, terminate_child};

/// Directors on 127.0.0.1 (`Cluster::start(3)`), driven from async tests.
pub type LoopbackCluster = Cluster<Loopback>;
/// Directors in network namespaces (`NetCluster::start(3, "default")`), driven from blocking
/// tests.
pub type NetCluster = Cluster<Netns>;

/// Where the directors of a cluster run, and the client that drives them.
pub trait Placement {
    /// What one process runs on: the test's own namespace, or a host of a netns topology.
    type Host;

    /// A command that runs `program` on `host` (arguments still to add).
    fn command(host: &Self::Host, program: &Path) -> Command;

    /// Where lvsctl runs.
    fn client(&self) -> &Self::Host;
}

/// One director of a cluster: its addresses, files, and process (when running).
pub struct Director<H> {
    pub id: u64,
    /// What the process runs on (`LocalHost`, or the director's namespace).
    pub host: H,
    raft_addr: String,
    api_addr: String,
    /// Where the director serves `/metrics` (`[metrics] listen`), when the driver chose it.
    pub metrics_addr: Option<String>,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl<H> Director<H> {
    pub fn api_addr(&self) -> String {
        self.api_addr.clone()
    }

    pub fn raft_addr(&self) -> String {
        self.raft_addr.clone()
    }

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

/// A set of directors placed by `P`. Fields drop in order: the directors are killed by `Drop`
/// before the placement (for `Netns`, the namespaces) goes.
pub struct Cluster<P: Placement> {
    pub nodes: Vec<Director<P::Host>>,
    pub dir: tempfile::TempDir,
    /// The PKI directory (`lvsctl pki`) when the cluster runs mTLS: `director-ID`, `admin`
    /// (admin operator) and `reader` (read-only operator) certificates under one CA.
    pub pki: Option<PathBuf>,
    /// The body of every director's `[raft]` section.
    raft: String,
    /// Sections every director's config starts with (after the node's own settings).
    sections: String,
    pub place: P,
}

/// Marker written into the cluster directory once the logs have been printed, so `LogsOnPanic`
/// does not print them a second time.
const LOGS_DUMPED: &str = "logs-dumped";

impl<P: Placement> Cluster<P> {
    /// An empty cluster (no director yet) in a fresh temporary directory named `prefix…`.
    fn empty(prefix: &str, place: P, raft: String, sections: String) -> Cluster<P> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        Cluster {
            nodes: Vec::new(),
            dir,
            pki: None,
            raft,
            sections,
            place,
        }
    }

    /// Adds director `id` (not started, no config yet) on `host` with these addresses.
    fn add_director(
        &mut self,
        id: u64,
        host: P::Host,
        raft_addr: String,
        api_addr: String,
        metrics_addr: Option<String>,
    ) -> usize {
        let base = self.dir.path().join(format!("director-{id}"));
        fs::create_dir_all(&base).expect("node dir");
        self.nodes.push(Director {
            id,
            host,
            raft_addr,
            api_addr,
            metrics_addr,
            config: base.join("director.toml"),
            log: base.join("director.log"),
            child: None,
        });
        self.nodes.len() - 1
    }

    /// Writes director `idx`'s config with the first `initial` directors as bootstrap peers.
    fn write_config(&self, idx: usize, initial: usize) {
        let d = &self.nodes[idx];
        let mut text = format!(
            "node_id = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\ndata_dir = \"{}\"\nrequest_timeout_ms = 3000\n\n{}\n[raft]\n{}\n",
            d.id,
            d.raft_addr,
            d.api_addr,
            self.dir.path().join(format!("director-{}/data", d.id)).display(),
            self.sections,
            self.raft,
        );
        if let Some(m) = &d.metrics_addr {
            text.push_str(&format!("\n[metrics]\nlisten = \"{m}\"\n"));
        }
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

    /// Writes every director's config (all of them peers) and starts them; the first bootstraps.
    fn configure_and_start_all(&mut self) {
        let n = self.nodes.len();
        for i in 0..n {
            self.write_config(i, n);
        }
        for i in 0..n {
            self.start_idx(i, i == 0);
        }
    }

    fn start_idx(&mut self, idx: usize, bootstrap: bool) {
        let d = &mut self.nodes[idx];
        assert!(d.child.is_none(), "director {} already running", d.id);
        let cmd = P::command(&d.host, &bin("director"));
        d.child = Some(spawn_director(cmd, &d.config, &d.log, bootstrap));
    }

    pub fn idx(&self, id: u64) -> usize {
        self.nodes
            .iter()
            .position(|d| d.id == id)
            .unwrap_or_else(|| panic!("no director {id}"))
    }

    pub fn node(&self, id: u64) -> &Director<P::Host> {
        &self.nodes[self.idx(id)]
    }

    /// Starts (or restarts) director `id` without bootstrapping.
    pub fn start_node(&mut self, id: u64) {
        let i = self.idx(id);
        self.start_idx(i, false);
    }

    /// Starts (or restarts) director `id` with `--bootstrap` (a no-op once its store belongs to a
    /// cluster).
    pub fn start_node_bootstrap(&mut self, id: u64) {
        let i = self.idx(id);
        self.start_idx(i, true);
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self, id: u64) {
        let i = self.idx(id);
        if let Some(c) = self.nodes[i].child.take() {
            kill_child(c);
        }
    }

    /// SIGTERM and wait for a clean exit (10 s at most); returns the exit status code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        let i = self.idx(id);
        let c = self.nodes[i].child.take()?;
        terminate_child(c).unwrap_or_else(|| {
            self.dump_logs();
            panic!("director {id} did not exit within 10 s of SIGTERM")
        })
    }

    /// Whether director `id`'s process is running.
    pub fn is_running(&mut self, id: u64) -> bool {
        let i = self.idx(id);
        self.nodes[i].is_running()
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
        self.node(id).api_addr()
    }

    pub fn raft_addr(&self, id: u64) -> String {
        self.node(id).raft_addr()
    }

    /// Every director's API address, comma-separated (lvsctl's `--endpoints`).
    pub fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .map(|d| d.api_addr.clone())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// lvsctl's environment for this cluster as operator `who` (`admin` or `reader` with TLS).
    pub fn lvsctl_env(&self, who: &str) -> Vec<(&'static str, String)> {
        lvsctl_env_for(self.pki.as_deref(), who)
    }

    /// `lvsctl --endpoints ENDPOINTS ARGS` on the placement's client, as the admin operator.
    fn lvsctl_command(&self, endpoints: &str, args: &[&str]) -> Command {
        let mut cmd = P::command(self.place.client(), &bin("lvsctl"));
        for (k, v) in self.lvsctl_env("admin") {
            cmd.env(k, v);
        }
        cmd.arg("--endpoints")
            .arg(endpoints)
            .args(args)
            .env_remove("LVSCTL_ENDPOINTS")
            .stdin(Stdio::null());
        cmd
    }

    /// Director `id`'s log so far.
    pub fn log_text(&self, id: u64) -> String {
        fs::read_to_string(&self.node(id).log).unwrap_or_default()
    }

    /// Prints every director's log (call on failure paths).
    pub fn dump_logs(&self) {
        for d in &self.nodes {
            eprintln!("===== director {} log =====", d.id);
            eprintln!("{}", fs::read_to_string(&d.log).unwrap_or_default());
        }
    }

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
}

/// The leader the directors `asked` agree on: all of them name the same one and it is one of
/// them. `seen[i]` is what `asked[i]` reported (None: no leader known, or no answer).
pub fn agreed_leader(asked: &[u64], seen: &[Option<u64>]) -> Option<u64> {
    match seen.first() {
        Some(Some(l)) if asked.contains(l) && seen.iter().all(|s| *s == Some(*l)) => Some(*l),
        _ => None,
    }
}

impl<P: Placement> Drop for Cluster<P> {
    fn drop(&mut self) {
        for d in &mut self.nodes {
            if let Some(c) = d.child.take() {
                kill_child(c);
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
