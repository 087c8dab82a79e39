//! The network-namespace placement: one namespace per director (a real `director` listening on
//! its segment address, VIP management on) and a client namespace from which `lvsctl` drives the
//! cluster. Tests here are blocking: every call runs lvsctl in the client namespace.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{agreed_leader, Cluster, Placement};
use crate::netns::{Host, Topology};

pub const RAFT_PORT: u16 = 7100;
pub const API_PORT: u16 = 7000;

/// The topology the directors live in, its client host and the VIPs the tests configure.
pub struct Netns {
    pub client: Host,
    pub vip4: Ipv4Addr,
    pub vip6: Ipv6Addr,
    pub topo: Topology,
}

impl Placement for Netns {
    type Host = Host;

    fn command(host: &Host, program: &Path) -> Command {
        host.cmd(program.to_str().expect("utf-8 path"))
    }

    fn client(&self) -> &Host {
        &self.client
    }
}

/// `c.client`, `c.topo`, `c.vip4`: the placement's parts read as the cluster's own.
impl Deref for Cluster<Netns> {
    type Target = Netns;

    fn deref(&self) -> &Netns {
        &self.place
    }
}

impl DerefMut for Cluster<Netns> {
    fn deref_mut(&mut self) -> &mut Netns {
        &mut self.place
    }
}

impl Cluster<Netns> {
    /// `n` directors (`d1`..`dN`, hosts 1..=n) with timing `profile` ("default" or "fast") and a
    /// client (host n+1). The VIPs are 198.18.k.100/24 and fd00:k::100/64; nothing is configured
    /// until `set_vips`. Director 1 bootstraps.
    pub fn start(n: usize, profile: &str) -> Self {
        Self::start_custom(n, &format!("profile = \"{profile}\"\n"), "")
    }

    /// Like `start`, with `raft` as the body of each director's `[raft]` section and `extra`
    /// (more sections, e.g. `[ipvs]`) in each config.
    pub fn start_custom(n: usize, raft: &str, extra: &str) -> Self {
        let mut topo = Topology::new();
        let hosts: Vec<Host> = (1..=n).map(|i| topo.add_host(&format!("d{i}"))).collect();
        let place = Netns {
            client: topo.add_host("client"),
            vip4: topo.ipv4_for(100),
            vip6: topo.ipv6_for(100),
            topo,
        };
        let mut c = Cluster::empty("lvs-netcluster-", place, raft.into(), extra.into());
        for (i, h) in hosts.into_iter().enumerate() {
            let (raft_addr, api_addr) = (
                format!("{}:{RAFT_PORT}", h.ipv4),
                format!("{}:{API_PORT}", h.ipv4),
            );
            c.add_director(i as u64 + 1, h, raft_addr, api_addr, None);
        }
        c.configure_and_start_all();
        c
    }

    /// `lvsctl --endpoints <all> ARGS` run in the client namespace.
    pub fn lvsctl(&self, args: &[&str]) -> Output {
        self.lvsctl_command(&self.endpoints(), args)
            .output()
            .expect("running lvsctl")
    }

    /// `lvsctl --endpoints <director id only> ARGS` run in the client namespace.
    pub fn lvsctl_at(&self, id: u64, args: &[&str]) -> Output {
        self.lvsctl_command(&self.api_addr(id), args)
            .output()
            .expect("running lvsctl")
    }

    /// Like `lvsctl`, panicking (with the directors' logs) when it fails.
    pub fn lvsctl_ok(&self, args: &[&str]) -> String {
        let out = self.lvsctl(args);
        if !out.status.success() {
            self.dump_logs();
            panic!(
                "lvsctl {args:?} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `lvsctl --endpoints <director id> --output json ARGS`, parsed; the error carries what
    /// lvsctl said.
    pub fn lvsctl_json(&self, id: u64, args: &[&str]) -> Result<serde_json::Value, String> {
        let mut full = vec!["--output", "json"];
        full.extend_from_slice(args);
        let out = self.lvsctl_at(id, &full);
        if !out.status.success() {
            return Err(format!(
                "lvsctl {args:?} at director {id}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("lvsctl {args:?} at director {id}: not JSON: {e}"))
    }

    /// `lvsctl --endpoints <director id> --timeout 2 --output json [--stale] ARGS`, parsed.
    fn lvsctl_json_at(&self, id: u64, stale: bool, args: &[&str]) -> Option<serde_json::Value> {
        let mut full = vec!["--timeout", "2"];
        if stale {
            full.push("--stale");
        }
        full.extend_from_slice(args);
        self.lvsctl_json(id, &full).ok()
    }

    /// The configuration revision director `id` has applied (`lvsctl --stale list` on it).
    pub fn stale_revision(&self, id: u64) -> Option<u64> {
        self.lvsctl_json_at(id, true, &["list"])?["revision"].as_u64()
    }

    /// The committed configuration revision (a linearizable `lvsctl list` on director `id`).
    pub fn revision_at(&self, id: u64) -> Option<u64> {
        self.lvsctl_json_at(id, false, &["list"])?["revision"].as_u64()
    }

    /// `lvsctl --output json cluster status` answered by director `id` (None if it fails).
    pub fn status_of(&self, id: u64) -> Option<serde_json::Value> {
        let out = self.lvsctl_at(
            id,
            &["--timeout", "3", "--output", "json", "cluster", "status"],
        );
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The leader as director `asked` reports it (None if unknown or unreachable).
    pub fn leader_seen_by(&self, asked: u64) -> Option<u64> {
        let out = self
            .lvsctl_at(
                asked,
                &["--timeout", "2", "--output", "json", "cluster", "status"],
            )
            .stdout;
        let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
        v["leader_id"].as_u64()
    }

    /// Waits until every running director names the same running leader.
    pub fn wait_leader(&mut self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.running_ids();
            let seen: Vec<Option<u64>> =
                running.iter().map(|id| self.leader_seen_by(*id)).collect();
            if let Some(l) = agreed_leader(&running, &seen) {
                return l;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no agreed leader within {timeout:?}: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the directors in `ids` all name the same leader, one of `ids` (for when some
    /// director is partitioned and still believes it leads).
    pub fn wait_leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let seen: Vec<Option<u64>> = ids.iter().map(|id| self.leader_seen_by(*id)).collect();
            if let Some(l) = agreed_leader(ids, &seen) {
                return l;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!(
                    "directors {ids:?} agree on no leader among them within {timeout:?}: {seen:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Polls `f` (every 10 ms) until it returns `Ok`; after `timeout` dumps the logs and panics
    /// with `what` and the last `Err` (a description of the state seen).
    pub fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match f(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("{what}: not within {timeout:?}; last seen: {last}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Checks `f` repeatedly for `window` (every 10 ms); the first `Err` dumps the logs and
    /// panics with `what` and the error.
    pub fn holds_for(
        &mut self,
        window: Duration,
        what: &str,
        mut f: impl FnMut(&mut Self) -> Result<(), String>,
    ) {
        let start = Instant::now();
        loop {
            if let Err(e) = f(self) {
                self.dump_logs();
                panic!("{what}: broken {:?} into the window: {e}", start.elapsed());
            }
            if start.elapsed() >= window {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
