//! VIPs on a network-namespace cluster ([`NetCluster`]): configuring the VIP group, which
//! namespaces hold the VIPs, waiting for one holder, the "stable" check the benchmarks poll, and a
//! capture of the frames a host receives (ARP and neighbour advertisements).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cluster_core::vip::frames;

use crate::cluster::agreed_leader;
pub use crate::cluster::{NetCluster, API_PORT, RAFT_PORT};
use crate::netns::{Host, PacketSocket};

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

impl NetCluster {
    /// Configures the VIP group `web` with both VIPs on eth0.
    pub fn set_vips(&self) {
        let v4 = format!("{}/24", self.vip4);
        let v6 = format!("{}/64", self.vip6);
        self.lvsctl_ok(&["vip", "set", "web", "--interface", "eth0", &v4, &v6]);
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

    /// Directors, running or not, whose namespace has `addr` on eth0 now.
    pub fn namespaces_with(&self, addr: impl Into<IpAddr>) -> Vec<u64> {
        let addr = addr.into();
        self.nodes
            .iter()
            .filter_map(|d| d.host.has_addr(addr).then_some(d.id))
            .collect()
    }

    /// Director `id` by the MAC of its eth0.
    pub fn id_by_mac(&self, mac: &frames::Mac) -> Option<u64> {
        self.nodes.iter().find(|d| d.host.mac == *mac).map(|d| d.id)
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
        let Some(leader) = agreed_leader(&running, &seen) else {
            return Err(format!("leaders seen {seen:?}"));
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
            self.namespaces_with(self.vip4),
            self.namespaces_with(self.vip6),
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
