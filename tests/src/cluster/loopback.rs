//! The loopback placement: every director on 127.0.0.1 with its own free ports (VIPs and IPVS
//! off, since they would share the host's interfaces), optionally with mTLS, driven from async
//! tests through gRPC and lvsctl run by the test process itself.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use lvs_proto::v1::admin_client::AdminClient;
use lvs_proto::v1::cluster_client::ClusterClient;
use lvs_proto::v1::StatusRequest;
use tonic::transport::Channel;

use super::process::{free_port, pki_run};
use super::{agreed_leader, Cluster, Placement};
use crate::CmdOutput;

/// The test process's own network namespace.
pub struct LocalHost;

/// Directors and lvsctl run as plain child processes of the test.
pub struct Loopback {
    host: LocalHost,
}

impl Placement for Loopback {
    type Host = LocalHost;

    fn command(_: &LocalHost, program: &Path) -> Command {
        Command::new(program)
    }

    fn client(&self) -> &LocalHost {
        &self.host
    }
}

/// Loopback clusters share the host namespace: their directors must never touch its interfaces.
const HOST_SAFE: &str = "# Loopback clusters share the host namespace: never touch its interfaces.\n[vip]\nenabled = false\n\n[ipvs]\nenabled = false\n";

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

    /// The body of a `[raft]` section with these settings.
    fn raft_section(&self) -> String {
        format!(
            "heartbeat_ms = {}\nelection_min_ms = {}\nelection_max_ms = {}\nsnapshot_every = {}\nkeep_logs = {}\n",
            self.heartbeat_ms,
            self.election_min_ms,
            self.election_max_ms,
            self.snapshot_every,
            self.keep_logs,
        )
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

// ---------------------------------------------------------------------------------------------
// Setting up and starting

impl Cluster<Loopback> {
    /// Writes configs for `n` directors (ids 1..=n) and starts them; director 1 bootstraps.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, Timing::default())
    }

    pub fn start_with(n: usize, timing: Timing) -> Self {
        let mut c = Self::new_stopped(n, timing);
        c.configure_and_start_all();
        c
    }

    /// Like `start`, with mTLS: a fresh CA and certificates made by `lvsctl pki`, and lvsctl
    /// calls made as the admin operator.
    pub fn start_tls(n: usize) -> Self {
        let mut c = Self::new_stopped_with(n, Timing::default(), true);
        c.configure_and_start_all();
        c
    }

    /// Writes configs only; start nodes with `start_node`.
    pub fn new_stopped(n: usize, timing: Timing) -> Self {
        Self::new_stopped_with(n, timing, false)
    }

    fn new_stopped_with(n: usize, timing: Timing, tls: bool) -> Self {
        let place = Loopback { host: LocalHost };
        let mut c = Cluster::empty(
            "lvs-cluster-",
            place,
            timing.raft_section(),
            HOST_SAFE.to_string(),
        );
        if tls {
            c.pki = Some(issue_pki(&c.dir.path().join("pki"), n));
        }
        for id in 1..=n as u64 {
            c.add_local(id);
        }
        for i in 0..n {
            c.write_config(i, n);
        }
        c
    }

    /// Adds director `id` with fresh raft, API and metrics ports (no config written yet).
    fn add_local(&mut self, id: u64) -> usize {
        let addr = || format!("127.0.0.1:{}", free_port());
        self.add_director(id, LocalHost, addr(), addr(), Some(addr()))
    }

    /// Adds the config of a further director (not a member yet) and starts it.
    pub fn spawn_extra(&mut self) -> usize {
        let id = self.nodes.len() as u64 + 1;
        let idx = self.add_local(id);
        self.write_config(idx, 0);
        self.start_idx(idx, false);
        idx
    }
}

/// A CA in `pki` with certificates for directors 1..=n on 127.0.0.1 and two operators, `admin`
/// (role admin) and `reader` (role read).
fn issue_pki(pki: &Path, n: usize) -> std::path::PathBuf {
    pki_run(pki, &["init"]);
    for id in 1..=n {
        pki_run(
            pki,
            &[
                "issue",
                "director",
                &format!("director-{id}"),
                "--ip",
                "127.0.0.1",
            ],
        );
    }
    pki_run(pki, &["issue", "operator", "admin", "--role", "admin"]);
    pki_run(pki, &["issue", "operator", "reader", "--role", "read"]);
    pki.to_path_buf()
}

// ---------------------------------------------------------------------------------------------
// gRPC clients, waits and reads

impl Cluster<Loopback> {
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
        let addr = self.api_addr(id);
        let tls = self.operator_tls("admin");
        lvs_proto::tls::endpoint(&addr, tls.as_ref())
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(15))
            .connect_lazy()
    }

    /// The leader as each of `ids` reports it (None: unknown, or no answer).
    async fn leaders_seen(&self, ids: &[u64]) -> Vec<Option<u64>> {
        let mut seen = Vec::new();
        for id in ids {
            seen.push(self.status(*id).await.ok().and_then(|s| s.leader_id));
        }
        seen
    }

    /// Waits until a running director reports a leader that every running director agrees on.
    pub async fn wait_leader(&mut self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.running_ids();
            let seen = self.leaders_seen(&running).await;
            if let Some(l) = agreed_leader(&running, &seen) {
                return l;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no agreed leader within {timeout:?}: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
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
                let seen = self.leaders_seen(ids).await;
                agreed_leader(ids, &seen).ok_or_else(|| format!("leaders {seen:?}"))
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

    /// Runs `lvsctl --endpoints ENDPOINTS ARGS` (60 s limit).
    pub async fn lvsctl_at(&self, endpoints: &str, args: &[&str]) -> CmdOutput {
        let mut cmd = tokio::process::Command::from(self.lvsctl_command(endpoints, args));
        cmd.kill_on_drop(true);
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
