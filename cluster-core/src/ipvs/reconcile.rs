//! Desired vs kernel: turns the replicated config into kernel objects and computes the minimal
//! list of operations that makes the kernel table match it. Pure; the director's reconciler does
//! the reading and the applying.
//!
//! Ownership: the kernel does not record who created a service. A director owns the services in
//! the desired config and the ones it created earlier (the `owned` set, persisted by the caller),
//! so a service removed from the config is deleted, while services someone else created are left
//! alone and reported as foreign unless the operator opted into owning the whole table.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ipvs::types::{
    flags, tun_flags, tun_type, DaemonState, KDaemon, KDest, KForward, KService,
};
use crate::model::{
    Config, Family, Forward, RealServer, SchedFlag, Service, ServiceKey, SyncMode, SyncSettings,
    TunnelCsum, TunnelType,
};

/// A service with its destinations, keyed by (address, port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Table {
    pub service: KService,
    pub dests: BTreeMap<(IpAddr, u16), KDest>,
}

/// One kernel operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    NewService(KService),
    SetService(KService),
    DelService(ServiceKey),
    NewDest(ServiceKey, KDest),
    SetDest(ServiceKey, KDest),
    DelDest(ServiceKey, IpAddr, u16),
}

impl Op {
    /// The service the operation is about.
    pub fn service(&self) -> &ServiceKey {
        match self {
            Op::NewService(s) | Op::SetService(s) => &s.key,
            Op::DelService(k) | Op::NewDest(k, _) | Op::SetDest(k, _) | Op::DelDest(k, _, _) => k,
        }
    }

    /// Object path as the API reports errors (`service[tcp/10.0.0.1:80].real[10.0.1.1:80]`).
    pub fn object(&self) -> String {
        let svc = format!("service[{}]", self.service());
        match self {
            Op::NewService(_) | Op::SetService(_) | Op::DelService(_) => svc,
            Op::NewDest(_, d) | Op::SetDest(_, d) => {
                format!(
                    "{svc}.real[{}]",
                    crate::model::fmt_endpoint(&d.address, d.port)
                )
            }
            Op::DelDest(_, a, p) => format!("{svc}.real[{}]", crate::model::fmt_endpoint(a, *p)),
        }
    }

    /// Short verb for logs and errors.
    pub fn verb(&self) -> &'static str {
        match self {
            Op::NewService(_) => "add service",
            Op::SetService(_) => "edit service",
            Op::DelService(_) => "delete service",
            Op::NewDest(..) => "add real server",
            Op::SetDest(..) => "edit real server",
            Op::DelDest(..) => "delete real server",
        }
    }

    pub fn is_service_op(&self) -> bool {
        matches!(
            self,
            Op::NewService(_) | Op::SetService(_) | Op::DelService(_)
        )
    }
}

/// The operations, in two phases: service operations first, then destination operations (which
/// need their service to exist).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub service_ops: Vec<Op>,
    pub dest_ops: Vec<Op>,
    /// Services in the kernel that this director does not own and leaves alone.
    pub foreign: Vec<ServiceKey>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.service_ops.is_empty() && self.dest_ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.service_ops.len() + self.dest_ops.len()
    }
}

/// The kernel service a configured service maps to.
pub fn kernel_service(s: &Service) -> KService {
    let family = s.key.family();
    let mut f = 0;
    let (timeout, netmask) = match &s.persistence {
        Some(p) => {
            f |= flags::PERSISTENT;
            let mask = p
                .netmask
                .as_deref()
                .map(|m| parse_netmask(family, m))
                .unwrap_or_else(|| KService::host_netmask(family));
            (p.timeout, mask)
        }
        None => (0, KService::host_netmask(family)),
    };
    if s.one_packet {
        f |= flags::ONEPACKET;
    }
    for fl in &s.sched_flags {
        f |= match fl {
            SchedFlag::Fallback => flags::SCHED1,
            SchedFlag::Port => flags::SCHED2,
        };
    }
    KService {
        key: s.key,
        scheduler: s.scheduler.as_str().to_string(),
        flags: f,
        timeout,
        netmask,
        pe_name: None,
    }
}

/// Validated netmasks are a dotted IPv4 mask or an IPv6 prefix length; anything else (which
/// validation refuses) falls back to one-client granularity rather than panicking.
fn parse_netmask(family: Family, m: &str) -> u32 {
    match family {
        Family::Ipv4 => m
            .parse::<std::net::Ipv4Addr>()
            .map(u32::from)
            .unwrap_or(0xffff_ffff),
        Family::Ipv6 => m
            .trim_start_matches('/')
            .parse::<u32>()
            .ok()
            .filter(|p| (1..=128).contains(p))
            .unwrap_or(128),
    }
}

/// The kernel destination a configured real server maps to, with `weight` (the configured one, or
/// the effective weight derived by health checks and agents).
pub fn kernel_dest(r: &RealServer, weight: u32) -> KDest {
    let (forward, tt, tp, tf) = match r.forward {
        Forward::Masq => (KForward::Masq, 0, 0, 0),
        Forward::Dr => (KForward::Route, 0, 0, 0),
        Forward::Tunnel => {
            let tt = match r.tunnel_type.unwrap_or_default() {
                TunnelType::Ipip => tun_type::IPIP,
                TunnelType::Gue => tun_type::GUE,
                TunnelType::Gre => tun_type::GRE,
            };
            let tf = match r.tunnel_csum.unwrap_or_default() {
                TunnelCsum::None => tun_flags::NOCSUM,
                TunnelCsum::Csum => tun_flags::CSUM,
                TunnelCsum::Remcsum => tun_flags::REMCSUM,
            };
            let tp = if tt == tun_type::GUE {
                r.tunnel_port.unwrap_or(0)
            } else {
                0
            };
            (KForward::Tunnel, tt, tp, tf)
        }
    };
    KDest {
        address: r.address,
        port: r.port,
        forward,
        weight,
        upper_threshold: r.upper_threshold,
        lower_threshold: r.lower_threshold,
        tun_type: tt,
        tun_port: tp,
        tun_flags: tf,
    }
}

/// The desired kernel table. `weight_of` gives each real server's weight to program (the
/// configured weight unless health checks or load reports override it).
pub fn desired(
    config: &Config,
    weight_of: impl Fn(&Service, &RealServer) -> u32,
) -> BTreeMap<ServiceKey, Table> {
    config
        .services
        .values()
        .map(|s| {
            let dests = s
                .reals
                .iter()
                .map(|r| ((r.address, r.port), kernel_dest(r, weight_of(s, r))))
                .collect();
            (
                s.key,
                Table {
                    service: kernel_service(s),
                    dests,
                },
            )
        })
        .collect()
}

/// The minimal operations that turn `kernel` into `desired`. `kernel` holds every service in the
/// kernel; destinations are needed only for services in `desired` (others are never looked into).
pub fn plan(
    desired: &BTreeMap<ServiceKey, Table>,
    kernel: &BTreeMap<ServiceKey, Table>,
    owned: &BTreeSet<ServiceKey>,
    own_all: bool,
) -> Plan {
    let mut p = Plan::default();
    for key in kernel.keys().filter(|k| !desired.contains_key(k)) {
        if own_all || owned.contains(key) {
            p.service_ops.push(Op::DelService(*key));
        } else {
            p.foreign.push(*key);
        }
    }
    for (key, want) in desired {
        match kernel.get(key) {
            None => {
                p.service_ops.push(Op::NewService(want.service.clone()));
                for d in want.dests.values() {
                    p.dest_ops.push(Op::NewDest(*key, d.clone()));
                }
            }
            Some(have) => {
                if have.service != want.service {
                    p.service_ops.push(Op::SetService(want.service.clone()));
                }
                for id in have.dests.keys() {
                    if !want.dests.contains_key(id) {
                        p.dest_ops.push(Op::DelDest(*key, id.0, id.1));
                    }
                }
                for (id, d) in &want.dests {
                    match have.dests.get(id) {
                        None => p.dest_ops.push(Op::NewDest(*key, d.clone())),
                        Some(h) if h != d => p.dest_ops.push(Op::SetDest(*key, d.clone())),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    p
}

/// The owned set after a pass over `scope` (every service when `None`). In scope, a service is
/// owned when desired, or when it was owned and is still in the kernel (its deletion failed, so
/// the next pass tries again); ownership outside the scope is unchanged.
pub fn owned_after(
    owned: &BTreeSet<ServiceKey>,
    scope: Option<&BTreeSet<ServiceKey>>,
    desired: &BTreeMap<ServiceKey, Table>,
    in_kernel: impl Fn(&ServiceKey) -> bool,
) -> BTreeSet<ServiceKey> {
    let in_scope = |k: &ServiceKey| scope.is_none_or(|s| s.contains(k));
    owned
        .iter()
        .filter(|k| !in_scope(k) || desired.contains_key(k) || in_kernel(k))
        .chain(desired.keys())
        .copied()
        .collect()
}

/// The kernel's sync-daemon defaults, used to compare a configured daemon with a running one.
const DEFAULT_GROUP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(224, 0, 0, 81));
const DEFAULT_PORT: u16 = 8848;
const DEFAULT_TTL: u8 = 1;

/// The sync daemons this director should run: in multicast mode a backup always (so it has the
/// connections when it takes over) and the master while it holds the VIPs; none otherwise.
pub fn desired_daemons(sync: Option<&SyncSettings>, holder: bool) -> Vec<KDaemon> {
    let Some(s) = sync.filter(|s| s.mode == SyncMode::Multicast) else {
        return Vec::new();
    };
    let daemon = |state| KDaemon {
        state,
        interface: s.interface.clone(),
        syncid: u32::from(s.syncid),
        maxlen: None,
        group: s.group,
        port: Some(s.port),
        ttl: Some(s.ttl),
    };
    let mut v = vec![daemon(DaemonState::Backup)];
    if holder {
        v.push(daemon(DaemonState::Master));
    }
    v
}

/// Whether a running daemon is the configured one (unset fields mean the kernel default; the
/// kernel always reports every field).
pub fn daemon_matches(want: &KDaemon, have: &KDaemon) -> bool {
    want.state == have.state
        && want.interface == have.interface
        && want.syncid == have.syncid
        && want.group.unwrap_or(DEFAULT_GROUP) == have.group.unwrap_or(DEFAULT_GROUP)
        && want.port.unwrap_or(DEFAULT_PORT) == have.port.unwrap_or(DEFAULT_PORT)
        && want.ttl.unwrap_or(DEFAULT_TTL) == have.ttl.unwrap_or(DEFAULT_TTL)
        && want.maxlen.is_none_or(|m| Some(m) == have.maxlen)
}

/// Daemons to stop, then daemons to start. A daemon whose settings changed is restarted (the
/// kernel cannot edit one).
pub fn daemon_plan(want: &[KDaemon], have: &[KDaemon]) -> (Vec<DaemonState>, Vec<KDaemon>) {
    let mut stop = Vec::new();
    let mut start = Vec::new();
    for h in have {
        if !want.iter().any(|w| daemon_matches(w, h)) {
            stop.push(h.state);
        }
    }
    for w in want {
        if !have.iter().any(|h| daemon_matches(w, h)) {
            start.push(w.clone());
        }
    }
    (stop, start)
}

/// The service a config change is about (`service KEY`, `real KEY ENDPOINT`, `health_check KEY`),
/// or `None` for global objects (VIP groups, sync settings).
pub fn changed_service(object: &str) -> Option<ServiceKey> {
    let mut words = object.split_whitespace();
    match words.next()? {
        "service" | "real" | "health_check" => words.next()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Persistence, Scheduler};

    fn key(s: &str) -> ServiceKey {
        s.parse().unwrap()
    }

    fn config() -> Config {
        let mut c = Config::default();
        let mut s = Service::new(key("tcp/10.0.0.1:80"));
        s.scheduler = Scheduler::Rr;
        s.persistence = Some(Persistence {
            timeout: 300,
            netmask: Some("255.255.255.0".into()),
        });
        let mut r1 = RealServer::new("10.0.1.1".parse().unwrap(), 80);
        r1.weight = 3;
        let mut r2 = RealServer::new("10.0.1.2".parse().unwrap(), 80);
        r2.forward = Forward::Tunnel;
        r2.tunnel_type = Some(TunnelType::Gue);
        r2.tunnel_port = Some(6080);
        r2.tunnel_csum = Some(TunnelCsum::Remcsum);
        s.reals = vec![r1, r2];
        c.services.insert(s.key, s);
        let mut s6 = Service::new(key("udp/[2001:db8::1]:53"));
        s6.scheduler = Scheduler::Mh;
        s6.sched_flags = vec![SchedFlag::Fallback, SchedFlag::Port];
        s6.one_packet = true;
        let mut r = RealServer::new("2001:db8::10".parse().unwrap(), 53);
        r.forward = Forward::Masq;
        s6.reals = vec![r];
        c.services.insert(s6.key, s6);
        c
    }

    fn static_weights(c: &Config) -> BTreeMap<ServiceKey, Table> {
        desired(c, |_, r| r.weight)
    }

    #[test]
    fn maps_model_to_kernel_terms() {
        let d = static_weights(&config());
        let t = &d[&key("tcp/10.0.0.1:80")];
        assert_eq!(t.service.scheduler, "rr");
        assert_eq!(t.service.flags, flags::PERSISTENT);
        assert_eq!(t.service.timeout, 300);
        assert_eq!(t.service.netmask, 0xffff_ff00);
        let r1 = &t.dests[&("10.0.1.1".parse().unwrap(), 80)];
        assert_eq!((r1.forward, r1.weight), (KForward::Route, 3));
        assert_eq!((r1.tun_type, r1.tun_port, r1.tun_flags), (0, 0, 0));
        let r2 = &t.dests[&("10.0.1.2".parse().unwrap(), 80)];
        assert_eq!(r2.forward, KForward::Tunnel);
        assert_eq!(
            (r2.tun_type, r2.tun_port, r2.tun_flags),
            (tun_type::GUE, 6080, tun_flags::REMCSUM)
        );
        let t6 = &d[&key("udp/[2001:db8::1]:53")];
        assert_eq!(
            t6.service.flags,
            flags::ONEPACKET | flags::SCHED1 | flags::SCHED2
        );
        assert_eq!((t6.service.timeout, t6.service.netmask), (0, 128));
        let r = t6.dests.values().next().unwrap();
        assert_eq!(r.forward, KForward::Masq);
    }

    #[test]
    fn empty_kernel_gets_everything_in_two_phases() {
        let d = static_weights(&config());
        let p = plan(&d, &BTreeMap::new(), &BTreeSet::new(), false);
        assert_eq!(p.service_ops.len(), 2);
        assert!(p.service_ops.iter().all(|o| matches!(o, Op::NewService(_))));
        assert_eq!(p.dest_ops.len(), 3);
        assert!(p.dest_ops.iter().all(|o| matches!(o, Op::NewDest(..))));
        assert!(p.foreign.is_empty());
    }

    #[test]
    fn matching_kernel_needs_nothing() {
        let d = static_weights(&config());
        let p = plan(&d, &d.clone(), &BTreeSet::new(), false);
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn drift_is_repaired_minimally() {
        let d = static_weights(&config());
        let mut k = d.clone();
        let t = k.get_mut(&key("tcp/10.0.0.1:80")).unwrap();
        t.service.scheduler = "wlc".into();
        t.dests
            .get_mut(&("10.0.1.1".parse().unwrap(), 80))
            .unwrap()
            .weight = 9;
        t.dests.remove(&("10.0.1.2".parse().unwrap(), 80));
        let stray = kernel_dest(&RealServer::new("10.0.1.9".parse().unwrap(), 80), 1);
        t.dests.insert((stray.address, stray.port), stray);
        let p = plan(&d, &k, &BTreeSet::new(), false);
        assert_eq!(p.service_ops.len(), 1);
        assert!(matches!(&p.service_ops[0], Op::SetService(s) if s.scheduler == "rr"));
        let kinds: Vec<String> = p
            .dest_ops
            .iter()
            .map(|o| format!("{} {}", o.verb(), o.object()))
            .collect();
        assert_eq!(
            kinds,
            [
                "delete real server service[tcp/10.0.0.1:80].real[10.0.1.9:80]",
                "edit real server service[tcp/10.0.0.1:80].real[10.0.1.1:80]",
                "add real server service[tcp/10.0.0.1:80].real[10.0.1.2:80]",
            ]
        );
    }

    #[test]
    fn foreign_services_are_left_alone_unless_owned() {
        let d = static_weights(&config());
        let mut k = d.clone();
        let other = Service::new(key("tcp/192.0.2.1:22"));
        k.insert(
            other.key,
            Table {
                service: kernel_service(&other),
                dests: BTreeMap::new(),
            },
        );
        let p = plan(&d, &k, &BTreeSet::new(), false);
        assert!(p.is_empty());
        assert_eq!(p.foreign, vec![other.key]);

        let owned: BTreeSet<_> = [other.key].into();
        let p = plan(&d, &k, &owned, false);
        assert_eq!(p.service_ops, vec![Op::DelService(other.key)]);
        assert!(p.foreign.is_empty());

        let p = plan(&d, &k, &BTreeSet::new(), true);
        assert_eq!(p.service_ops, vec![Op::DelService(other.key)]);
    }

    #[test]
    fn removed_service_is_deleted_because_it_was_owned() {
        let mut c = config();
        let d1 = static_weights(&c);
        let owned = owned_after(&BTreeSet::new(), None, &d1, |_| false);
        c.services.remove(&key("udp/[2001:db8::1]:53"));
        let d2 = static_weights(&c);
        let p = plan(&d2, &d1, &owned, false);
        assert_eq!(
            p.service_ops,
            vec![Op::DelService(key("udp/[2001:db8::1]:53"))]
        );
        assert!(p.dest_ops.is_empty());
        let after = owned_after(&owned, None, &d2, |_| false);
        assert_eq!(after.len(), 1);
        let kept = owned_after(&owned, None, &d2, |k| *k == key("udp/[2001:db8::1]:53"));
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn netmask_text_forms() {
        assert_eq!(parse_netmask(Family::Ipv4, "255.255.0.0"), 0xffff_0000);
        assert_eq!(parse_netmask(Family::Ipv6, "64"), 64);
        assert_eq!(parse_netmask(Family::Ipv6, "/48"), 48);
        assert_eq!(parse_netmask(Family::Ipv6, "999"), 128);
    }

    fn sync(mode: SyncMode) -> SyncSettings {
        SyncSettings {
            mode,
            interface: "eth1".into(),
            syncid: 7,
            group: None,
            port: 8848,
            ttl: 1,
        }
    }

    #[test]
    fn daemons_follow_the_vip_holder() {
        let s = sync(SyncMode::Multicast);
        let follower = desired_daemons(Some(&s), false);
        assert_eq!(follower.len(), 1);
        assert_eq!(follower[0].state, DaemonState::Backup);
        assert_eq!(follower[0].syncid, 7);
        let holder = desired_daemons(Some(&s), true);
        assert_eq!(holder.len(), 2);
        assert!(desired_daemons(Some(&sync(SyncMode::Stateless)), true).is_empty());
        assert!(desired_daemons(None, true).is_empty());

        // Becoming the holder starts the master only; losing it stops the master only.
        let (stop, start) = daemon_plan(&holder, &follower);
        assert!(stop.is_empty());
        assert_eq!(start.len(), 1);
        assert_eq!(start[0].state, DaemonState::Master);
        let (stop, start) = daemon_plan(&follower, &holder);
        assert_eq!(stop, vec![DaemonState::Master]);
        assert!(start.is_empty());
    }

    #[test]
    fn kernel_defaults_match_unset_fields_and_changes_restart() {
        let s = sync(SyncMode::Multicast);
        let want = desired_daemons(Some(&s), false);
        let reported = KDaemon {
            maxlen: Some(1472),
            group: Some("224.0.0.81".parse().unwrap()),
            ..want[0].clone()
        };
        assert!(daemon_matches(&want[0], &reported));
        let (stop, start) = daemon_plan(&want, std::slice::from_ref(&reported));
        assert!(stop.is_empty() && start.is_empty());

        let other_if = KDaemon {
            interface: "eth2".into(),
            ..reported
        };
        let (stop, start) = daemon_plan(&want, &[other_if]);
        assert_eq!(stop, vec![DaemonState::Backup]);
        assert_eq!(start.len(), 1);
    }

    #[test]
    fn change_objects_name_their_service() {
        assert_eq!(
            changed_service("service tcp/10.0.0.1:80"),
            Some(key("tcp/10.0.0.1:80"))
        );
        assert_eq!(
            changed_service("real fwmark/5 10.0.0.2:80"),
            Some(key("fwmark/5"))
        );
        assert_eq!(
            changed_service("health_check udp/[::1]:53"),
            Some(key("udp/[::1]:53"))
        );
        assert_eq!(changed_service("vip_group web"), None);
        assert_eq!(changed_service("sync"), None);
    }
}
