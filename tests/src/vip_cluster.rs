//! A director cluster on the netns topology: one namespace per director (a real `director`
//! process with VIP management on, listening on its segment address), and a client namespace
//! from which `lvsctl` drives the cluster and the VIP is probed. Everything lives inside
//! namespaces the topology owns; dropping the cluster kills the directors and removes them.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster_core::vip::frames;

use crate::netns::{Host, PacketSocket, Topology};
use crate::{bin, kill_child, peer_section, spawn_director, terminate_child};

/// Like `assert!`, but dumps the directors' logs first.
#[macro_export]
macro_rules! ensure {
    ($c:expr, $cond:expr, $($arg:tt)+) => {
        if !$cond {
            $c.dump_logs();
            panic!($($arg)+);
        }
    };
}

pub const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
pub const HOLDER_TIMEOUT: Duration = Duration::from_secs(5);

pub const RAFT_PORT: u16 = 7100;
pub const API_PORT: u16 = 7000;

pub struct NetDirector {
    pub id: u64,
    pub host: Host,
    pub config: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl NetDirector {
    pub fn api_addr(&self) -> String {
        format!("{}:{API_PORT}", self.host.ipv4)
    }

    pub fn raft_addr(&self) -> String {
        format!("{}:{RAFT_PORT}", self.host.ipv4)
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }
}

pub struct NetCluster {
    pub nodes: Vec<NetDirector>,
    pub client: Host,
    pub vip4: Ipv4Addr,
    pub vip6: Ipv6Addr,
    pub dir: tempfile::TempDir,
    // Dropped last: directors are killed (below) before their namespaces go.
    pub topo: Topology,
}

impl NetCluster {
    /// `n` directors (`d1`..`dN`, hosts 1..=n) with timing `profile` ("default" or "fast") and a
    /// client (host n+1). The VIPs are 198.18.k.100/24 and fd00:k::100/64; nothing is configured
    /// until `set_vips`. Director 1 bootstraps.
    pub fn start(n: usize, profile: &str) -> NetCluster {
        NetCluster::start_custom(n, &format!("profile = \"{profile}\"\n"), "")
    }

    /// Like `start`, with `raft` as the body of each director's `[raft]` section and `extra`
    /// (more sections, e.g. `[ipvs]`) appended to each config.
    pub fn start_custom(n: usize, raft: &str, extra: &str) -> NetCluster {
        let mut topo = Topology::new();
        let hosts: Vec<Host> = (1..=n).map(|i| topo.add_host(&format!("d{i}"))).collect();
        let client = topo.add_host("client");
        let dir = tempfile::Builder::new()
            .prefix("lvs-netcluster-")
            .tempdir()
            .expect("tempdir");
        let vip4 = topo.ipv4_for(100);
        let vip6 = topo.ipv6_for(100);
        let mut c = NetCluster {
            nodes: Vec::new(),
            client,
            vip4,
            vip6,
            dir,
            topo,
        };
        for (i, h) in hosts.into_iter().enumerate() {
            let id = i as u64 + 1;
            let base = c.dir.path().join(format!("director-{id}"));
            fs::create_dir_all(&base).expect("node dir");
            c.nodes.push(NetDirector {
                id,
                host: h,
                config: base.join("director.toml"),
                log: base.join("director.log"),
                child: None,
            });
        }
        for i in 0..n {
            c.write_config(i, raft, extra);
        }
        for i in 0..n {
            c.start_idx(i, i == 0);
        }
        c
    }

    fn write_config(&self, idx: usize, raft: &str, extra: &str) {
        let d = &self.nodes[idx];
        let mut text = format!(
            "node_id = {}\nraft_addr = \"{}\"\napi_addr = \"{}\"\ndata_dir = \"{}\"\nrequest_timeout_ms = 3000\n\n[raft]\n{raft}\n{extra}\n",
            d.id,
            d.raft_addr(),
            d.api_addr(),
            self.dir
                .path()
                .join(format!("director-{}/data", d.id))
                .display(),
        );
        for p in &self.nodes {
            if p.id != d.id {
                text.push_str(&peer_section(p.id, &p.raft_addr(), &p.api_addr()));
            }
        }
        fs::write(&d.config, text).expect("write config");
    }

    fn start_idx(&mut self, idx: usize, bootstrap: bool) {
        let d = &mut self.nodes[idx];
        assert!(d.child.is_none(), "director {} already running", d.id);
        let cmd = d.host.cmd(bin("director").to_str().expect("utf-8 path"));
        d.child = Some(spawn_director(cmd, &d.config, &d.log, bootstrap));
    }

    pub fn idx(&self, id: u64) -> usize {
        self.nodes
            .iter()
            .position(|d| d.id == id)
            .unwrap_or_else(|| panic!("no director {id}"))
    }

    pub fn node(&self, id: u64) -> &NetDirector {
        &self.nodes[self.idx(id)]
    }

    /// Restarts director `id` (never bootstraps).
    pub fn start_node(&mut self, id: u64) {
        let i = self.idx(id);
        self.start_idx(i, false);
    }

    /// SIGKILL.
    pub fn kill(&mut self, id: u64) {
        let i = self.idx(id);
        if let Some(c) = self.nodes[i].child.take() {
            kill_child(c);
        }
    }

    /// SIGTERM and wait (10 s at most); returns the exit code.
    pub fn terminate(&mut self, id: u64) -> Option<i32> {
        let i = self.idx(id);
        let c = self.nodes[i].child.take()?;
        terminate_child(c).unwrap_or_else(|| {
            self.dump_logs();
            panic!("director {id} did not exit within 10 s of SIGTERM")
        })
    }

    pub fn running_ids(&mut self) -> Vec<u64> {
        self.nodes
            .iter_mut()
            .filter_map(|d| d.is_running().then_some(d.id))
            .collect()
    }

    pub fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .map(|d| d.api_addr())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `lvsctl --endpoints <all> ARGS` run in the client namespace.
    pub fn lvsctl(&self, args: &[&str]) -> Output {
        let mut c: Command = self.client.cmd(bin("lvsctl").to_str().expect("utf-8 path"));
        c.env("LVSCTL_INSECURE", "1");
        c.arg("--endpoints").arg(self.endpoints()).args(args);
        c.output().expect("running lvsctl")
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

    /// Configures the VIP group `web` with both VIPs on eth0.
    pub fn set_vips(&self) {
        let v4 = format!("{}/24", self.vip4);
        let v6 = format!("{}/64", self.vip6);
        self.lvsctl_ok(&["vip", "set", "web", "--interface", "eth0", &v4, &v6]);
    }

    /// The leader as director `asked` reports it (None if unknown or unreachable).
    pub fn leader_seen_by(&self, asked: u64) -> Option<u64> {
        let mut c: Command = self.client.cmd(bin("lvsctl").to_str().expect("utf-8 path"));
        c.env("LVSCTL_INSECURE", "1");
        c.arg("--endpoints").arg(self.node(asked).api_addr()).args([
            "--timeout",
            "2",
            "--output",
            "json",
            "cluster",
            "status",
        ]);
        let out = c.output().ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v["leader_id"].as_u64()
    }

    /// Waits until every running director names the same running leader.
    pub fn wait_leader(&mut self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let running = self.running_ids();
            let seen: Vec<Option<u64>> =
                running.iter().map(|id| self.leader_seen_by(*id)).collect();
            if let Some(Some(l)) = seen.first() {
                if seen.iter().all(|s| *s == Some(*l)) && running.contains(l) {
                    return *l;
                }
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("no agreed leader within {timeout:?}: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Running directors whose namespace holds the IPv4 VIP now. (A director killed with SIGKILL
    /// cannot remove its addresses; it does so when it starts again.)
    pub fn holders(&mut self) -> Vec<u64> {
        let vip = self.vip4;
        self.nodes
            .iter_mut()
            .filter_map(|d| (d.is_running() && d.host.has_addr(vip)).then_some(d.id))
            .collect()
    }

    /// Waits until, of the running directors, exactly `id` holds both VIPs.
    pub fn wait_holder(&mut self, id: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let h4 = self.holders();
            let vip6 = self.vip6;
            let h6: Vec<u64> = self
                .nodes
                .iter_mut()
                .filter_map(|d| (d.is_running() && d.host.has_addr(vip6)).then_some(d.id))
                .collect();
            if h4 == [id] && h6 == [id] {
                return;
            }
            if Instant::now() > deadline {
                self.dump_logs();
                panic!("director {id} is not the only VIP holder after {timeout:?}: v4 {h4:?}, v6 {h6:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `lvsctl --endpoints <director id only> ARGS` run in the client namespace.
    pub fn lvsctl_at(&self, id: u64, args: &[&str]) -> Output {
        let mut c: Command = self.client.cmd(bin("lvsctl").to_str().expect("utf-8 path"));
        c.env("LVSCTL_INSECURE", "1");
        c.arg("--endpoints")
            .arg(self.node(id).api_addr())
            .args(args);
        c.output().expect("running lvsctl")
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

    /// Waits until the directors in `ids` all name the same leader, one of `ids` (for when some
    /// director is partitioned and still believes it leads).
    pub fn wait_leader_among(&self, ids: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let seen: Vec<Option<u64>> = ids.iter().map(|id| self.leader_seen_by(*id)).collect();
            if let Some(Some(l)) = seen.first() {
                if seen.iter().all(|s| *s == Some(*l)) && ids.contains(l) {
                    return *l;
                }
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

    /// Directors, running or not, whose namespace has `addr` on eth0 now.
    pub fn namespaces_with(&self, addr: impl Into<IpAddr>) -> Vec<u64> {
        let addr = addr.into();
        self.nodes
            .iter()
            .filter_map(|d| d.host.has_addr(addr).then_some(d.id))
            .collect()
    }

    /// Polls `f` (every 10 ms) until it returns `Ok`; after `timeout` dumps the logs and panics
    /// with `what` and the last `Err` (a description of the state seen).
    pub fn wait_until<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut f: impl FnMut(&mut NetCluster) -> Result<T, String>,
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
        mut f: impl FnMut(&mut NetCluster) -> Result<(), String>,
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

    /// Whether director `id`'s process is running.
    pub fn is_running(&mut self, id: u64) -> bool {
        let i = self.idx(id);
        self.nodes[i].is_running()
    }

    /// The director's log so far.
    pub fn log_of(&self, id: u64) -> String {
        fs::read_to_string(&self.node(id).log).unwrap_or_default()
    }

    pub fn dump_logs(&self) {
        for d in &self.nodes {
            eprintln!("===== director {} log =====", d.id);
            eprintln!("{}", fs::read_to_string(&d.log).unwrap_or_default());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Non-panicking waits for benchmarks (they report what they saw instead of panicking).

impl NetCluster {
    /// Director `id` by the MAC of its eth0.
    pub fn id_by_mac(&self, mac: &cluster_core::vip::frames::Mac) -> Option<u64> {
        self.nodes.iter().find(|d| d.host.mac == *mac).map(|d| d.id)
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

    /// Directors (running or not) whose namespace holds `ip` on eth0 now.
    pub fn namespaces_holding(&self, ip: impl Into<std::net::IpAddr>) -> Vec<u64> {
        let ip = ip.into();
        self.nodes
            .iter()
            .filter(|d| d.host.has_addr(ip))
            .map(|d| d.id)
            .collect()
    }

    /// One look at the cluster: `Ok(leader)` when every director runs, all name the same leader,
    /// all have applied the leader's committed revision, and the leader's namespace is the only
    /// one holding either VIP; otherwise what was seen instead.
    pub fn stable_now(&mut self) -> Result<u64, String> {
        let running = self.running_ids();
        if running.len() != self.nodes.len() {
            return Err(format!("running {running:?}"));
        }
        let seen: Vec<Option<u64>> = running.iter().map(|id| self.leader_seen_by(*id)).collect();
        let leader = match seen.first() {
            Some(Some(l)) if seen.iter().all(|s| *s == Some(*l)) && running.contains(l) => *l,
            _ => return Err(format!("leaders seen {seen:?}")),
        };
        let Some(rev) = self.revision_at(leader) else {
            return Err(format!("no linearizable read on leader {leader}"));
        };
        let revs: Vec<Option<u64>> = running.iter().map(|id| self.stale_revision(*id)).collect();
        if revs.iter().any(|r| *r != Some(rev)) {
            return Err(format!(
                "leader {leader} at revision {rev}, stale revisions {revs:?}"
            ));
        }
        let (h4, h6) = (
            self.namespaces_holding(self.vip4),
            self.namespaces_holding(self.vip6),
        );
        if h4 != [leader] || h6 != [leader] {
            return Err(format!(
                "leader {leader}, VIP holders: v4 {h4:?}, v6 {h6:?}"
            ));
        }
        Ok(leader)
    }

    /// Polls `stable_now` until it holds (`Ok(leader)`) or `timeout` passes (`Err(last seen)`).
    pub fn try_wait_stable(&mut self, timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.stable_now() {
                Ok(l) => return Ok(l),
                Err(e) if Instant::now() > deadline => {
                    return Err(format!("cluster not stable after {timeout:?}: {e}"))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// Three directors with timing `profile`, VIP group `web` (vip4/24 and vip6/64 on eth0)
/// configured, and its leader the only holder of both VIPs.
pub fn cluster_with_vips(profile: &str) -> (NetCluster, u64) {
    let mut c = NetCluster::start(3, profile);
    let leader = c.wait_leader(LEADER_TIMEOUT);
    c.set_vips();
    c.wait_holder(leader, HOLDER_TIMEOUT);
    (c, leader)
}

impl Drop for NetCluster {
    fn drop(&mut self) {
        for d in &mut self.nodes {
            if let Some(mut c) = d.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if std::thread::panicking() {
            eprintln!("netcluster files kept in {}", self.dir.path().display());
            let keep = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
            let _ = keep.keep();
        }
    }
}

/// Frames with their arrival times.
type Captured = Arc<Mutex<Vec<(Instant, Vec<u8>)>>>;

/// Records every frame a host receives on eth0 (incoming only), with its arrival time, from the
/// moment `start` returns until `stop` or drop. The socket is opened in the host's namespace
/// before `start` returns, so nothing sent afterwards is missed.
pub struct FrameCapture {
    stop: Arc<AtomicBool>,
    frames: Captured,
    thread: Option<JoinHandle<()>>,
}

impl FrameCapture {
    pub fn start(host: &Host) -> FrameCapture {
        let sock: PacketSocket = host
            .packet_socket()
            .unwrap_or_else(|e| panic!("packet socket in {}: {e:#}", host.name));
        let stop = Arc::new(AtomicBool::new(false));
        let frames = Arc::new(Mutex::new(Vec::new()));
        let (t_stop, t_frames) = (stop.clone(), frames.clone());
        let thread = std::thread::Builder::new()
            .name(format!("capture-{}", host.name))
            .spawn(move || {
                while !t_stop.load(Ordering::Relaxed) {
                    match sock.recv_with_direction(Duration::from_millis(20)) {
                        Ok(Some((f, false))) => t_frames
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((Instant::now(), f)),
                        Ok(_) => {}
                        Err(e) => panic!("capture: recv failed: {e}"),
                    }
                }
            })
            .expect("spawn capture thread");
        FrameCapture {
            stop,
            frames,
            thread: Some(thread),
        }
    }

    /// The frames received so far, in arrival order.
    pub fn frames(&self) -> Vec<(Instant, Vec<u8>)> {
        self.frames
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The first frame received so far for which `pred` holds, waiting up to `timeout`.
    pub fn wait_for(
        &self,
        timeout: Duration,
        mut pred: impl FnMut(&[u8]) -> bool,
    ) -> Option<(Instant, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(hit) = self
                .frames
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .find(|(_, f)| pred(f))
            {
                return Some(hit.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// One line per ARP and neighbour-advertisement frame received so far (for failure messages).
    pub fn describe_announcements(&self, since: Instant) -> String {
        let mut out = String::new();
        for (t, f) in self.frames() {
            let at = t.saturating_duration_since(since);
            if let Some(a) = frames::parse_arp(&f) {
                out.push_str(&format!(
                    "  +{at:?} ARP op {} {} ({}) -> {} ({}), {} bytes\n",
                    a.op,
                    a.sender_ip,
                    frames::fmt_mac(&a.sender_mac),
                    a.target_ip,
                    frames::fmt_mac(&a.target_mac),
                    f.len()
                ));
            } else if let Some(na) = frames::parse_na(&f) {
                out.push_str(&format!(
                    "  +{at:?} NA target {} from {} ({}) to {}, O={} S={} R={} tlla {:?} checksum_ok {}\n",
                    na.target,
                    na.ip_src,
                    frames::fmt_mac(&na.eth_src),
                    na.ip_dst,
                    na.override_,
                    na.solicited,
                    na.router,
                    na.target_mac.map(|m| frames::fmt_mac(&m)),
                    na.checksum_ok
                ));
            }
        }
        out
    }

    pub fn stop(mut self) -> Vec<(Instant, Vec<u8>)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            if let Err(p) = t.join() {
                std::panic::resume_unwind(p);
            }
        }
        self.frames()
    }
}

impl Drop for FrameCapture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
