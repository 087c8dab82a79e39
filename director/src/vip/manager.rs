//! The VIP watchdog: on its own OS thread and runtime (so a stalled main runtime cannot keep a
//! stale VIP), it polls Raft metrics every few milliseconds and on every change, holds the
//! configured VIPs only while `lease::may_hold` says so, announces them (burst, then periodic
//! refresh), and removes them on release, on config change, at shutdown and at startup.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster_core::store::{NodeId, Raft, StateHandle};
use cluster_core::vip::frames::{self, Mac};
use cluster_core::vip::lease::{may_hold, Observation, Profile};
use ipnet::IpNet;
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{info, warn};

use super::held::{self, HeldRecord};
use super::netlink::{Addrs, Link};
use super::packet::{ArpReceiver, PacketSender};

/// The `[vip]` section: whether this director manages VIPs, and how it announces them.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VipConfig {
    /// Off only where the director shares a network namespace it must not touch (loopback
    /// examples and tests); a production director always manages its VIPs.
    pub enabled: bool,
    /// Announcements sent right after acquiring (the first at once).
    pub burst_count: u32,
    pub burst_spacing_ms: u64,
    /// Re-announce every held VIP this often while leader; 0 turns it off.
    pub refresh_ms: u64,
}

impl Default for VipConfig {
    /// Beats keepalived (5 at once, 5 more after 5 s, never again): 5 within 400 ms, then one
    /// every 5 s, so a switch that missed the burst or aged its table out still learns the MAC.
    fn default() -> Self {
        VipConfig {
            enabled: true,
            burst_count: 5,
            burst_spacing_ms: 100,
            refresh_ms: 5000,
        }
    }
}

/// One configured VIP as this director sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipStatus {
    pub group: String,
    pub address: IpNet,
    pub interface: String,
    pub held: bool,
    /// Unix milliseconds of the last change of `held`.
    pub since_ms: u64,
    pub error: Option<String>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the watchdog did, counted since start (for metrics).
#[derive(Debug, Default)]
pub struct VipCounters {
    /// Gratuitous ARPs (IPv4) and unsolicited neighbour advertisements (IPv6) sent.
    pub garp_sent: AtomicU64,
    pub na_sent: AtomicU64,
    /// VIPs added to an interface, and removed from one.
    pub acquired: AtomicU64,
    pub released: AtomicU64,
}

impl VipCounters {
    fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the rest of the director keeps of the watchdog.
pub struct VipHandle {
    status: Arc<Mutex<Vec<VipStatus>>>,
    counters: Arc<VipCounters>,
    /// True while this director holds the VIPs (with VIP management off: while it is leader).
    holding: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Removes the held VIPs if this process dies without doing so itself.
    guard: Option<std::process::Child>,
}

/// Read access to the watchdog's view, for the APIs.
#[derive(Clone, Default)]
pub struct VipStatusReader(Arc<Mutex<Vec<VipStatus>>>);

impl VipStatusReader {
    pub fn get(&self) -> Vec<VipStatus> {
        self.0.lock().expect("vip status").clone()
    }

    /// "INTERFACE ADDRESS/PREFIX" for every VIP held now.
    pub fn held(&self) -> Vec<String> {
        self.get()
            .into_iter()
            .filter(|v| v.held)
            .map(|v| format!("{} {}", v.interface, v.address))
            .collect()
    }
}

impl VipHandle {
    pub fn reader(&self) -> VipStatusReader {
        VipStatusReader(self.status.clone())
    }

    pub fn holding(&self) -> watch::Receiver<bool> {
        self.holding.clone()
    }

    pub fn counters(&self) -> Arc<VipCounters> {
        self.counters.clone()
    }

    /// Releases every held VIP and stops the watchdog.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(mut g) = self.guard.take() {
            // Closing its pipe tells the guard we are done; it finds nothing left to remove.
            drop(g.stdin.take());
            let _ = g.wait();
        }
    }
}

pub struct Settings {
    pub node_id: NodeId,
    pub profile: Profile,
    pub announce: VipConfig,
    /// Where the addresses currently held are recorded, so a restart after a crash removes them
    /// even if the config changed meanwhile.
    pub held_file: PathBuf,
}

/// Starts the watchdog thread (nothing when VIP management is disabled).
pub fn spawn(raft: Raft, state: StateHandle, settings: Settings) -> std::io::Result<VipHandle> {
    let status = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(VipCounters::default());
    let (stop, stop_rx) = watch::channel(false);
    let (holding_tx, holding) = watch::channel(false);
    if !settings.announce.enabled {
        warn!("VIP management is disabled ([vip] enabled = false): this director never holds VIPs");
        // The leader still plays the holder's other part (the master sync daemon).
        let mut metrics = raft.metrics();
        let id = settings.node_id;
        tokio::spawn(async move {
            loop {
                let leader = {
                    let m = metrics.borrow_and_update();
                    m.state == ServerState::Leader && m.current_leader == Some(id)
                };
                holding_tx.send_if_modified(|h| std::mem::replace(h, leader) != leader);
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        return Ok(VipHandle {
            status,
            counters,
            holding,
            stop,
            thread: None,
            guard: None,
        });
    }
    let guard = match super::guard::start(&settings.held_file) {
        Ok(g) => Some(g),
        Err(e) => {
            warn!(error = %e, "VIP guard not started: a crash would leave VIPs until restart");
            None
        }
    };
    let st = status.clone();
    let cn = counters.clone();
    let thread = std::thread::Builder::new()
        .name("vip-watchdog".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("vip runtime");
            rt.block_on(async move {
                match Watchdog::new(raft, state, settings, st, cn, holding_tx) {
                    Ok(mut w) => w.run(stop_rx).await,
                    Err(e) => {
                        warn!(error = %e, "VIP manager could not start; VIPs will not be held")
                    }
                }
            });
        })?;
    Ok(VipHandle {
        status,
        counters,
        holding,
        stop,
        thread: Some(thread),
        guard,
    })
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

struct Watchdog {
    holding: watch::Sender<bool>,
    raft: Raft,
    state: StateHandle,
    s: Settings,
    status: Arc<Mutex<Vec<VipStatus>>>,
    counters: Arc<VipCounters>,
    addrs: Addrs,
    held: BTreeMap<(String, IpAddr), Held>,
    senders: BTreeMap<u32, PacketSender>,
    receivers: BTreeMap<u32, ArpReceiver>,
    errors: BTreeMap<(String, IpAddr), String>,
    released_at: BTreeMap<(String, IpAddr), u64>,
    /// Contents of the held-VIPs file as last written.
    recorded: Option<Vec<u8>>,
}

fn key(w: &Want) -> (String, IpAddr) {
    (w.interface.clone(), w.address.addr())
}

impl Watchdog {
    fn new(
        raft: Raft,
        state: StateHandle,
        s: Settings,
        status: Arc<Mutex<Vec<VipStatus>>>,
        counters: Arc<VipCounters>,
        holding: watch::Sender<bool>,
    ) -> std::io::Result<Watchdog> {
        Ok(Watchdog {
            raft,
            state,
            s,
            status,
            counters,
            holding,
            addrs: Addrs::connect()?,
            held: BTreeMap::new(),
            senders: BTreeMap::new(),
            receivers: BTreeMap::new(),
            errors: BTreeMap::new(),
            released_at: BTreeMap::new(),
            recorded: None,
        })
    }

    fn configured(&self) -> Vec<Want> {
        let mut v: Vec<Want> = self.state.read(|s| {
            s.config
                .vip_groups
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
    async fn clean_leftovers(&mut self) {
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

    async fn run(&mut self, mut stop: watch::Receiver<bool>) {
        self.clean_leftovers().await;
        let mut metrics = self.raft.metrics();
        let mut received = Instant::now();
        let poll = Duration::from_millis(self.s.profile.poll_ms);
        let release = Duration::from_millis(self.s.profile.release_ms);
        let mut was_holding = false;
        loop {
            let obs = {
                let m = metrics.borrow_and_update();
                Observation {
                    is_leader: m.state == ServerState::Leader
                        && m.current_leader == Some(self.s.node_id),
                    ack_age_at_publish_ms: m.millis_since_quorum_ack,
                    since_publish: received.elapsed(),
                }
            };
            let hold = may_hold(&obs, release);
            if hold != was_holding {
                if hold {
                    info!("leader with a quorum: taking the VIPs");
                } else {
                    info!(
                        ack_age_ms = obs.ack_age().map(|a| a.as_millis() as u64),
                        leader = obs.is_leader,
                        "no longer a leader acknowledged by a quorum: releasing the VIPs"
                    );
                }
                was_holding = hold;
                self.holding.send_replace(hold);
            }
            let configured = self.configured();
            let desired: Vec<Want> = if hold { configured.clone() } else { Vec::new() };
            self.reconcile(&desired).await;
            let next = self.announce_due();
            self.check_conflicts();
            self.publish_status(&configured);

            let wait = next
                .map(|t| t.saturating_duration_since(Instant::now()).min(poll))
                .unwrap_or(poll);
            tokio::select! {
                r = metrics.changed() => {
                    if r.is_err() {
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
                .then(|| super::held::PromoteSecondaries::enable(&h.want.interface));
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

    async fn acquire(&mut self, w: &Want) -> Result<Held, String> {
        let link = self.addrs.link(&w.interface).await?;
        self.addrs.add(link.index, w.address).await?;
        if let std::collections::btree_map::Entry::Vacant(slot) = self.senders.entry(link.index) {
            let s = PacketSender::open(link.index)
                .map_err(|e| format!("raw socket on {}: {e}", w.interface))?;
            slot.insert(s);
        }
        if let std::collections::btree_map::Entry::Vacant(slot) = self.receivers.entry(link.index) {
            match ArpReceiver::open(link.index) {
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
                let frame = announcement(&h.link.mac, &h.want);
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
fn announcement(mac: &Mac, w: &Want) -> Vec<u8> {
    match w.address.addr() {
        IpAddr::V4(a) => frames::gratuitous_arp(mac, a),
        IpAddr::V6(a) => {
            let forwarding = std::fs::read_to_string(format!(
                "/proc/sys/net/ipv6/conf/{}/forwarding",
                w.interface
            ))
            .map(|v| v.trim() == "1")
            .unwrap_or(false);
            frames::unsolicited_na(mac, a, forwarding)
        }
    }
}
