//! The VIP watchdog's work: holds the configured VIPs only while `lease::may_hold` says so,
//! announces them (burst, then periodic refresh), watches for another host claiming them, and
//! removes them on release, on config change, at shutdown and at startup. It reads Raft through
//! [`RaftView`] and the kernel through [`VipKernel`], so it is unit tested with fakes; `manager`
//! runs it on its own thread.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cluster_core::model::VipGroup;
use cluster_core::store::{NodeId, Raft, StateHandle};
use cluster_core::vip::frames::{self, Mac};
use cluster_core::vip::lease::{may_hold, Observation, Profile};
use ipnet::IpNet;
use lvs_ops::clock::unix_ms;
use openraft::ServerState;
use tokio::sync::watch;
use tracing::{info, warn};

use super::config::VipConfig;
use super::held::{self, HeldRecord};
use super::kernel::{FrameReceiver, FrameSender, VipKernel};
use super::netlink::{Link, NetlinkError};
use super::status::{VipCounters, VipKey, VipStatus};

/// What the watchdog is told at start.
pub struct Settings {
    pub node_id: NodeId,
    pub profile: Profile,
    pub announce: VipConfig,
    /// Where the addresses currently held are recorded, so a restart after a crash removes them
    /// even if the config changed meanwhile.
    pub held_file: PathBuf,
}

/// What the watchdog reads from Raft: leadership with the quorum-ack age, and the VIP groups.
pub trait RaftView {
    /// The latest published leadership, marked as seen; `since_publish` is the time since it
    /// arrived.
    fn observe(&mut self, since_publish: Duration) -> Observation;
    /// Resolves when new metrics are published; false once they never will be.
    fn changed(&mut self) -> impl Future<Output = bool>;
    /// Runs `f` on the configured VIP groups.
    fn vip_groups<T>(&self, f: impl FnOnce(&[VipGroup]) -> T) -> T;
}

/// The real Raft node and state machine.
pub struct RaftInputs {
    pub metrics: watch::Receiver<openraft::RaftMetrics<NodeId, cluster_core::store::DirectorNode>>,
    pub state: StateHandle,
    pub node_id: NodeId,
}

impl RaftInputs {
    pub fn new(raft: &Raft, state: StateHandle, node_id: NodeId) -> RaftInputs {
        RaftInputs {
            metrics: raft.metrics(),
            state,
            node_id,
        }
    }
}

impl RaftView for RaftInputs {
    fn observe(&mut self, since_publish: Duration) -> Observation {
        let m = self.metrics.borrow_and_update();
        Observation {
            is_leader: m.state == ServerState::Leader && m.current_leader == Some(self.node_id),
            ack_age_at_publish_ms: m.millis_since_quorum_ack,
            since_publish,
        }
    }

    async fn changed(&mut self) -> bool {
        self.metrics.changed().await.is_ok()
    }

    fn vip_groups<T>(&self, f: impl FnOnce(&[VipGroup]) -> T) -> T {
        self.state.read(|s| f(&s.config.vip_groups))
    }
}

/// Why a VIP could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum AcquireError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("raw socket on {interface}: {source}")]
    RawSocket {
        interface: String,
        source: std::io::Error,
    },
}

/// A configured VIP: group, interface, address.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Want {
    interface: String,
    address: IpNet,
    group: String,
}

struct Held {
    want: Want,
    link: Link,
    since_ms: u64,
    burst_left: u32,
    next_announce: Option<Instant>,
    /// Another host answered for this address: its MAC and when.
    conflict: Option<(Mac, Instant)>,
    burst_logged: bool,
}

/// How long a conflicting answer keeps showing in status after the last one.
const CONFLICT_SHOWN: Duration = Duration::from_secs(30);

pub struct Watchdog<K: VipKernel, R: RaftView> {
    holding: watch::Sender<bool>,
    raft: R,
    s: Settings,
    status: Arc<Mutex<Vec<VipStatus>>>,
    counters: Arc<VipCounters>,
    addrs: K,
    held: BTreeMap<VipKey, Held>,
    senders: BTreeMap<u32, K::Sender>,
    receivers: BTreeMap<u32, K::Receiver>,
    errors: BTreeMap<VipKey, String>,
    released_at: BTreeMap<VipKey, u64>,
    /// Contents of the held-VIPs file as last written.
    recorded: Option<Vec<u8>>,
    was_holding: bool,
}

fn key(w: &Want) -> VipKey {
    (w.interface.clone(), w.address.addr())
}

impl<K: VipKernel, R: RaftView> Watchdog<K, R> {
    pub fn new(
        raft: R,
        addrs: K,
        s: Settings,
        status: Arc<Mutex<Vec<VipStatus>>>,
        counters: Arc<VipCounters>,
        holding: watch::Sender<bool>,
    ) -> Self {
        Watchdog {
            raft,
            s,
            status,
            counters,
            holding,
            addrs,
            held: BTreeMap::new(),
            senders: BTreeMap::new(),
            receivers: BTreeMap::new(),
            errors: BTreeMap::new(),
            released_at: BTreeMap::new(),
            recorded: None,
            was_holding: false,
        }
    }

    fn configured(&self) -> Vec<Want> {
        let mut v: Vec<Want> = self.raft.vip_groups(|groups| {
            groups
                .iter()
                .flat_map(|g| {
                    g.addresses.iter().map(|a| Want {
                        interface: g.interface.clone(),
                        address: *a,
                        group: g.name.clone(),
                    })
                })
                .collect()
        });
        v.sort();
        v
    }

    /// Removes VIPs a previous run may have left: those it recorded and every configured one.
    pub async fn clean_leftovers(&mut self) {
        let mut candidates = held::read(&self.s.held_file);
        candidates.extend(self.configured().into_iter().map(|w| HeldRecord {
            interface: w.interface,
            address: w.address,
        }));
        candidates.sort();
        candidates.dedup();
        for (r, res) in held::remove_present(&self.addrs, &candidates).await {
            match res {
                Ok(()) => {
                    info!(vip = %r.address, interface = %r.interface, "removed VIP left by an earlier run")
                }
                Err(e) => {
                    warn!(vip = %r.address, interface = %r.interface, error = %e, "could not remove leftover VIP")
                }
            }
        }
        self.record_held();
    }

    fn record_held(&mut self) {
        let wants: Vec<Want> = self.held.values().map(|h| h.want.clone()).collect();
        self.record(&wants);
    }

    /// Writes the held-VIPs file (read by the guard and by the next start) when it changes.
    fn record(&mut self, wants: &[Want]) {
        let recs: Vec<HeldRecord> = wants
            .iter()
            .map(|w| HeldRecord {
                interface: w.interface.clone(),
                address: w.address,
            })
            .collect();
        let data = held::encode(&recs);
        if self.recorded.as_deref() == Some(data.as_slice()) {
            return;
        }
        if let Err(e) = held::write(&self.s.held_file, &data) {
            warn!(error = %e, file = %self.s.held_file.display(), "could not record held VIPs");
        }
        self.recorded = Some(data);
    }

    /// Until `stop` (or the end of Raft's metrics): a step on every metrics change, on every
    /// due announcement and at least every `poll_ms`; then releases everything.
    pub async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        self.clean_leftovers().await;
        let mut received = Instant::now();
        let poll = Duration::from_millis(self.s.profile.poll_ms);
        loop {
            let obs = self.raft.observe(received.elapsed());
            let next = self.step(&obs).await;
            let wait = next
                .map(|t| t.saturating_duration_since(Instant::now()).min(poll))
                .unwrap_or(poll);
            tokio::select! {
                r = self.raft.changed() => {
                    if !r {
                        break;
                    }
                    received = Instant::now();
                }
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => break,
            }
        }
        self.holding.send_replace(false);
        self.reconcile(&[]).await;
        self.publish_status(&self.configured());
        info!("VIP manager stopped; no VIPs held");
    }

    /// One look at the lease: takes or releases the VIPs, sends due announcements, reads
    /// conflicting ARP answers, publishes the status. Returns when the next announcement is due.
    pub async fn step(&mut self, obs: &Observation) -> Option<Instant> {
        let hold = may_hold(obs, Duration::from_millis(self.s.profile.release_ms));
        if hold != self.was_holding {
            if hold {
                info!("leader with a quorum: taking the VIPs");
            } else {
                info!(
                    ack_age_ms = obs.ack_age().map(|a| a.as_millis() as u64),
                    leader = obs.is_leader,
                    "no longer a leader acknowledged by a quorum: releasing the VIPs"
                );
            }
            self.was_holding = hold;
            self.holding.send_replace(hold);
        }
        let configured = self.configured();
        let desired: Vec<Want> = if hold { configured.clone() } else { Vec::new() };
        self.reconcile(&desired).await;
        let next = self.announce_due();
        self.check_conflicts();
        self.publish_status(&configured);
        next
    }

    async fn reconcile(&mut self, desired: &[Want]) {
        let want_keys: Vec<(String, IpAddr)> = desired.iter().map(key).collect();
        let drop: Vec<(String, IpAddr)> = self
            .held
            .iter()
            .filter(|(k, h)| !want_keys.contains(k) || !desired.contains(&h.want))
            .map(|(k, _)| k.clone())
            .collect();
        let mut changed = false;
        for k in drop {
            let h = self.held.remove(&k).expect("held entry");
            // Removing a subnet's primary IPv4 address would take its secondaries (other VIPs,
            // the host's own address) with it unless they are promoted.
            let _promote = h
                .want
                .address
                .addr()
                .is_ipv4()
                .then(|| self.addrs.promote_secondaries(&h.want.interface));
            match self.addrs.del(h.link.index, h.want.address).await {
                Ok(()) => {
                    VipCounters::inc(&self.counters.released);
                    info!(vip = %h.want.address, interface = %h.want.interface, "VIP released")
                }
                Err(e) => {
                    warn!(vip = %h.want.address, interface = %h.want.interface, error = %e, "VIP release failed")
                }
            }
            self.released_at.insert(k, unix_ms());
            changed = true;
        }
        let adding: Vec<&Want> = desired
            .iter()
            .filter(|w| !self.held.contains_key(&key(w)))
            .collect();
        if !adding.is_empty() {
            // Record before adding, so a crash in between still leaves the guard a full list.
            let mut all: Vec<Want> = self.held.values().map(|h| h.want.clone()).collect();
            all.extend(adding.into_iter().cloned());
            self.record(&all);
        }
        for w in desired {
            let k = key(w);
            if self.held.contains_key(&k) {
                continue;
            }
            match self.acquire(w).await {
                Ok(h) => {
                    VipCounters::inc(&self.counters.acquired);
                    info!(vip = %w.address, interface = %w.interface, mac = %frames::fmt_mac(&h.link.mac), "VIP acquired");
                    self.errors.remove(&k);
                    self.held.insert(k, h);
                    changed = true;
                }
                Err(e) => {
                    let e = e.to_string();
                    if self.errors.get(&k) != Some(&e) {
                        warn!(vip = %w.address, interface = %w.interface, error = %e, "cannot hold VIP");
                        self.errors.insert(k, e);
                    }
                }
            }
        }
        if changed {
            self.record_held();
        }
    }

    async fn acquire(&mut self, w: &Want) -> Result<Held, AcquireError> {
        let link = self.addrs.link(&w.interface).await?;
        self.addrs.add(link.index, w.address).await?;
        if let std::collections::btree_map::Entry::Vacant(slot) = self.senders.entry(link.index) {
            let s =
                self.addrs
                    .open_sender(link.index)
                    .map_err(|source| AcquireError::RawSocket {
                        interface: w.interface.clone(),
                        source,
                    })?;
            slot.insert(s);
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = self.receivers.entry(link.index) {
            match self.addrs.open_receiver(link.index) {
                Ok(r) => {
                    slot.insert(r);
                }
                // Conflict detection is a diagnosis; holding the VIP does not depend on it.
                Err(e) => {
                    warn!(interface = %w.interface, error = %e, "no ARP listener: address conflicts go unnoticed")
                }
            }
        }
        Ok(Held {
            want: w.clone(),
            link,
            since_ms: unix_ms(),
            burst_left: self.s.announce.burst_count,
            next_announce: (self.s.announce.burst_count > 0).then(Instant::now),
            conflict: None,
            burst_logged: false,
        })
    }

    /// Sends the announcements that are due; returns when the next one is.
    fn announce_due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        let a = self.s.announce;
        let mut next: Option<Instant> = None;
        for h in self.held.values_mut() {
            let Some(due) = h.next_announce else { continue };
            if due <= now {
                let forwarding = h.want.address.addr().is_ipv6()
                    && self.addrs.ipv6_forwarding(&h.want.interface);
                let frame = announcement(&h.link.mac, &h.want, forwarding);
                if let Some(s) = self.senders.get(&h.link.index) {
                    match s.send(&frame) {
                        Ok(()) => {
                            VipCounters::inc(if h.want.address.addr().is_ipv4() {
                                &self.counters.garp_sent
                            } else {
                                &self.counters.na_sent
                            });
                            tracing::debug!(vip = %h.want.address, "announced")
                        }
                        Err(e) => warn!(vip = %h.want.address, error = %e, "announcement failed"),
                    }
                    // An RFC 5227 probe: any host that also has the address answers it.
                    if let IpAddr::V4(a) = h.want.address.addr() {
                        let probe =
                            frames::arp_request(&h.link.mac, std::net::Ipv4Addr::UNSPECIFIED, a);
                        let _ = s.send(&probe);
                    }
                }
                if h.burst_left > 0 {
                    h.burst_left -= 1;
                }
                h.next_announce = if h.burst_left > 0 {
                    Some(now + Duration::from_millis(a.burst_spacing_ms))
                } else if a.refresh_ms > 0 {
                    Some(now + Duration::from_millis(a.refresh_ms))
                } else {
                    None
                };
                if h.burst_left == 0 && a.burst_count > 0 && !h.burst_logged {
                    h.burst_logged = true;
                    info!(
                        vip = %h.want.address,
                        interface = %h.want.interface,
                        count = a.burst_count,
                        refresh_ms = a.refresh_ms,
                        "VIP announced ({})",
                        if h.want.address.addr().is_ipv4() { "gratuitous ARP" } else { "unsolicited NA" }
                    );
                }
            }
            if let Some(t) = h.next_announce {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        next
    }

    /// Reads queued ARP frames: one from another MAC that claims a held address means another
    /// host on the segment owns it too.
    fn check_conflicts(&mut self) {
        for (ifindex, rx) in &self.receivers {
            while let Some(f) = rx.try_recv() {
                let Some(p) = frames::parse_arp(&f) else {
                    continue;
                };
                for h in self.held.values_mut() {
                    if h.link.index != *ifindex
                        || IpAddr::V4(p.sender_ip) != h.want.address.addr()
                        || p.sender_mac == h.link.mac
                    {
                        continue;
                    }
                    let new = h.conflict.map(|(m, _)| m) != Some(p.sender_mac);
                    h.conflict = Some((p.sender_mac, Instant::now()));
                    if new {
                        tracing::error!(
                            vip = %h.want.address,
                            interface = %h.want.interface,
                            other_mac = %frames::fmt_mac(&p.sender_mac),
                            "address conflict: another host answers for this VIP"
                        );
                    }
                }
            }
        }
    }

    fn publish_status(&self, configured: &[Want]) {
        let list = configured
            .iter()
            .map(|w| {
                let k = key(w);
                let held = self.held.get(&k);
                VipStatus {
                    group: w.group.clone(),
                    address: w.address,
                    interface: w.interface.clone(),
                    held: held.is_some(),
                    since_ms: held
                        .map(|h| h.since_ms)
                        .or_else(|| self.released_at.get(&k).copied())
                        .unwrap_or(0),
                    error: self.errors.get(&k).cloned().or_else(|| {
                        let (mac, at) = held?.conflict?;
                        (at.elapsed() < CONFLICT_SHOWN).then(|| {
                            format!(
                                "address conflict: {} also answers for it (another host owns this address?)",
                                frames::fmt_mac(&mac)
                            )
                        })
                    }),
                }
            })
            .collect();
        *self.status.lock().expect("vip status") = list;
    }
}

/// The frame that announces `w` from `mac`: gratuitous ARP or unsolicited NA.
fn announcement(mac: &Mac, w: &Want, ipv6_forwarding: bool) -> Vec<u8> {
    match w.address.addr() {
        IpAddr::V4(a) => frames::gratuitous_arp(mac, a),
        IpAddr::V6(a) => frames::unsolicited_na(mac, a, ipv6_forwarding),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::Path;

    use super::super::fake::FakeNet;
    use super::*;

    /// Leadership and VIP groups as the test sets them.
    #[derive(Default)]
    struct TestRaft {
        groups: Arc<Mutex<Vec<VipGroup>>>,
    }

    impl RaftView for TestRaft {
        fn observe(&mut self, since_publish: Duration) -> Observation {
            Observation {
                is_leader: true,
                ack_age_at_publish_ms: Some(0),
                since_publish,
            }
        }

        async fn changed(&mut self) -> bool {
            std::future::pending().await
        }

        fn vip_groups<T>(&self, f: impl FnOnce(&[VipGroup]) -> T) -> T {
            f(&self.groups.lock().unwrap())
        }
    }

    const MAC: Mac = [2, 0, 0, 0, 0, 1];
    const OTHER_MAC: Mac = [2, 0, 0, 0, 0, 9];
    const IFINDEX: u32 = 7;

    struct Rig {
        dir: tempfile::TempDir,
        net: FakeNet,
        groups: Arc<Mutex<Vec<VipGroup>>>,
        status: Arc<Mutex<Vec<VipStatus>>>,
        counters: Arc<VipCounters>,
        holding: watch::Receiver<bool>,
        w: Watchdog<FakeNet, TestRaft>,
    }

    fn vip(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn group(addresses: &[&str]) -> VipGroup {
        VipGroup {
            name: "web".into(),
            interface: "eth0".into(),
            addresses: addresses.iter().map(|a| vip(a)).collect(),
        }
    }

    fn rig(addresses: &[&str]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let net = FakeNet::new();
        net.add_link("eth0", IFINDEX, MAC);
        let raft = TestRaft::default();
        let groups = raft.groups.clone();
        *groups.lock().unwrap() = vec![group(addresses)];
        let status = Arc::new(Mutex::new(Vec::new()));
        let counters = Arc::new(VipCounters::default());
        let (holding_tx, holding) = watch::channel(false);
        let settings = Settings {
            node_id: 1,
            profile: Profile::DEFAULT,
            announce: VipConfig {
                burst_count: 2,
                burst_spacing_ms: 0,
                refresh_ms: 0,
                ..Default::default()
            },
            held_file: dir.path().join("vips-held.json"),
        };
        let w = Watchdog::new(
            raft,
            net.clone(),
            settings,
            status.clone(),
            counters.clone(),
            holding_tx,
        );
        Rig {
            dir,
            net,
            groups,
            status,
            counters,
            holding,
            w,
        }
    }

    /// A leader whose last quorum ack is `ack_ms` old, published `since_ms` ago.
    fn leader(ack_ms: u64, since_ms: u64) -> Observation {
        Observation {
            is_leader: true,
            ack_age_at_publish_ms: Some(ack_ms),
            since_publish: Duration::from_millis(since_ms),
        }
    }

    fn follower() -> Observation {
        Observation {
            is_leader: false,
            ack_age_at_publish_ms: None,
            since_publish: Duration::ZERO,
        }
    }

    fn held_file(dir: &Path) -> Vec<HeldRecord> {
        held::load(&dir.join("vips-held.json")).unwrap()
    }

    fn counter(c: &std::sync::atomic::AtomicU64) -> u64 {
        c.load(std::sync::atomic::Ordering::Relaxed)
    }

    #[tokio::test]
    async fn a_leader_with_a_fresh_ack_acquires_announces_and_records() {
        let mut rig = rig(&["192.0.2.10/24", "2001:db8::10/64"]);
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(
            rig.net.addresses("eth0"),
            [vip("192.0.2.10/24"), vip("2001:db8::10/64")]
        );
        assert!(*rig.holding.borrow());
        let recorded: Vec<IpNet> = held_file(rig.dir.path())
            .into_iter()
            .map(|r| r.address)
            .collect();
        assert_eq!(recorded, [vip("192.0.2.10/24"), vip("2001:db8::10/64")]);
        // First burst at once: a gratuitous ARP plus an RFC 5227 probe for IPv4, an unsolicited
        // NA for IPv6.
        let sent = rig.net.take_sent();
        let v4 = Ipv4Addr::new(192, 0, 2, 10);
        assert_eq!(
            sent,
            [
                (IFINDEX, frames::gratuitous_arp(&MAC, v4)),
                (
                    IFINDEX,
                    frames::arp_request(&MAC, Ipv4Addr::UNSPECIFIED, v4)
                ),
                (
                    IFINDEX,
                    frames::unsolicited_na(&MAC, "2001:db8::10".parse().unwrap(), false)
                ),
            ]
        );
        // The rest of the burst, then nothing (refresh off).
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.net.take_sent().len(), 3);
        assert_eq!(rig.w.step(&leader(0, 0)).await, None);
        assert!(rig.net.take_sent().is_empty());
        assert_eq!(counter(&rig.counters.garp_sent), 2);
        assert_eq!(counter(&rig.counters.na_sent), 2);
        assert_eq!(counter(&rig.counters.acquired), 2);
        let st = rig.status.lock().unwrap().clone();
        assert!(st
            .iter()
            .all(|v| v.held && v.error.is_none() && v.since_ms > 0));
    }

    #[tokio::test]
    async fn losing_the_lease_releases_and_clears_the_record() {
        let mut rig = rig(&["192.0.2.10/24"]);
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.net.addresses("eth0").len(), 1);
        // The quorum ack ages past release_ms (200 ms) while no metrics arrive.
        rig.w.step(&leader(50, 160)).await;
        assert!(rig.net.addresses("eth0").is_empty());
        assert!(!*rig.holding.borrow());
        assert!(held_file(rig.dir.path()).is_empty());
        assert_eq!(counter(&rig.counters.released), 1);
        let st = rig.status.lock().unwrap().clone();
        assert!(!st[0].held && st[0].since_ms > 0, "{st:?}");

        // Leadership lost outright releases too.
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.net.addresses("eth0").len(), 1);
        rig.w.step(&follower()).await;
        assert!(rig.net.addresses("eth0").is_empty());
    }

    #[tokio::test]
    async fn a_stale_leader_does_not_reacquire() {
        let mut rig = rig(&["192.0.2.10/24"]);
        for obs in [
            leader(250, 0),
            leader(0, 250),
            leader(199, 1),
            Observation {
                is_leader: true,
                ack_age_at_publish_ms: None,
                since_publish: Duration::ZERO,
            },
        ] {
            rig.w.step(&obs).await;
            assert!(rig.net.addresses("eth0").is_empty(), "{obs:?}");
            assert!(!*rig.holding.borrow());
        }
        assert!(rig.net.take_sent().is_empty());
    }

    #[tokio::test]
    async fn a_config_change_releases_what_is_no_longer_configured() {
        let mut rig = rig(&["192.0.2.10/24", "192.0.2.11/24"]);
        rig.w.step(&leader(0, 0)).await;
        *rig.groups.lock().unwrap() = vec![group(&["192.0.2.11/24"])];
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.net.addresses("eth0"), [vip("192.0.2.11/24")]);
        let recorded: Vec<IpNet> = held_file(rig.dir.path())
            .into_iter()
            .map(|r| r.address)
            .collect();
        assert_eq!(recorded, [vip("192.0.2.11/24")]);
        // A new prefix length is a different VIP: released and added again.
        *rig.groups.lock().unwrap() = vec![group(&["192.0.2.11/25"])];
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.net.addresses("eth0"), [vip("192.0.2.11/25")]);
        assert_eq!(rig.status.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_address_conflict_is_reported() {
        let mut rig = rig(&["192.0.2.10/24"]);
        rig.w.step(&leader(0, 0)).await;
        let v4 = Ipv4Addr::new(192, 0, 2, 10);
        // Our own frames echoed back and answers for other addresses are not conflicts.
        rig.net.receive(IFINDEX, frames::gratuitous_arp(&MAC, v4));
        rig.net.receive(
            IFINDEX,
            frames::gratuitous_arp(&OTHER_MAC, Ipv4Addr::new(192, 0, 2, 99)),
        );
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.status.lock().unwrap()[0].error, None);
        rig.net
            .receive(IFINDEX, frames::arp_request(&OTHER_MAC, v4, v4));
        rig.w.step(&leader(0, 0)).await;
        let st = rig.status.lock().unwrap()[0].clone();
        assert!(st.held);
        assert_eq!(
            st.error.as_deref(),
            Some(
                "address conflict: 02:00:00:00:00:09 also answers for it (another host owns \
                 this address?)"
            )
        );
    }

    #[tokio::test]
    async fn failures_to_hold_are_reported_per_vip() {
        let mut rig = rig(&["192.0.2.10/24", "192.0.2.11/24"]);
        rig.groups.lock().unwrap().push(VipGroup {
            name: "db".into(),
            interface: "eth9".into(),
            addresses: vec![vip("192.0.2.20/24")],
        });
        rig.net
            .state()
            .add_errno
            .insert("192.0.2.11".parse().unwrap(), libc::EACCES);
        rig.w.step(&leader(0, 0)).await;
        assert_eq!(rig.net.addresses("eth0"), [vip("192.0.2.10/24")]);
        let st = rig.status.lock().unwrap().clone();
        let errors: Vec<(String, Option<String>)> = st
            .iter()
            .map(|v| (v.address.to_string(), v.error.clone()))
            .collect();
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            errors,
            [
                ("192.0.2.10/24".to_string(), None),
                (
                    "192.0.2.11/24".to_string(),
                    Some(format!("adding 192.0.2.11/24: {denied}"))
                ),
                (
                    "192.0.2.20/24".to_string(),
                    Some("interface \"eth9\" not found".to_string())
                ),
            ]
        );
        // The record lists what was about to be added, so the guard could remove it all.
        assert_eq!(held_file(rig.dir.path()).len(), 1);
    }

    #[tokio::test]
    async fn leftovers_of_an_earlier_run_are_removed_at_start() {
        let mut rig = rig(&["192.0.2.10/24"]);
        // A crash left a configured VIP and one only the record still knows about; the host's
        // own address is neither.
        {
            let mut st = rig.net.state();
            let eth0 = st.links.get_mut("eth0").unwrap();
            eth0.addresses = vec![
                vip("192.0.2.1/24"),
                vip("192.0.2.10/24"),
                vip("192.0.2.50/24"),
            ];
        }
        let old = [HeldRecord {
            interface: "eth0".into(),
            address: vip("192.0.2.50/24"),
        }];
        held::write(&rig.dir.path().join("vips-held.json"), &held::encode(&old)).unwrap();
        rig.w.clean_leftovers().await;
        assert_eq!(rig.net.addresses("eth0"), [vip("192.0.2.1/24")]);
        assert!(held_file(rig.dir.path()).is_empty());
    }

    #[tokio::test]
    async fn stopping_releases_everything() {
        let mut rig = rig(&["192.0.2.10/24"]);
        rig.w.step(&leader(0, 0)).await;
        let (stop, stop_rx) = watch::channel(false);
        stop.send(true).unwrap();
        // `run` cleans up first (which removes the VIP it finds), steps once, sees the stop and
        // releases.
        rig.w.run(stop_rx).await;
        assert!(rig.net.addresses("eth0").is_empty());
        assert!(!*rig.holding.borrow());
        assert!(held_file(rig.dir.path()).is_empty());
        assert!(!rig.status.lock().unwrap()[0].held);
    }
}
