//! Helpers the scenarios share: the kernel's schedulers, real-server and service-key shorthands,
//! the traffic services (DR and NAT on the VIPs) and the sync-daemon settings.

use std::fs;
use std::net::IpAddr;

use cluster_core::model::{
    Config, Forward, RealServer, Scheduler, Service, ServiceKey, SyncMode, SyncSettings,
};

use super::fixture::{Lab, NAT_PORT, NAT_REAL_PORT, PORT, UDP_PORT};

/// Schedulers whose modules this kernel ships (all of ours when modules are built in).
pub fn kernel_schedulers() -> Vec<Scheduler> {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = format!("/lib/modules/{}/kernel/net/netfilter/ipvs", release.trim());
    let Ok(entries) = fs::read_dir(&dir) else {
        return Scheduler::ALL
            .into_iter()
            .filter(|s| *s != Scheduler::Twos)
            .collect();
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    Scheduler::ALL
        .into_iter()
        .filter(|s| {
            let m = format!("ip_vs_{}.ko", s.as_str());
            names.iter().any(|n| n.starts_with(&m))
        })
        .collect()
}

pub(super) fn real(addr: &str, port: u16, weight: u32, forward: Forward) -> RealServer {
    let mut r = RealServer::new(addr.parse().expect("address"), port);
    r.weight = weight;
    r.forward = forward;
    r
}

pub(super) fn key(s: &str) -> ServiceKey {
    s.parse().expect("service key")
}

/// The traffic services: DR on the VIPs (TCP and UDP, IPv4 and IPv6) and NAT on VIP:8080.
pub fn traffic_config(lab: &Lab, scheduler: Scheduler, weights: [u32; 2]) -> Config {
    let mut c = Config::default();
    let rs: Vec<IpAddr> = lab.reals.iter().map(|h| IpAddr::V4(h.ipv4)).collect();
    let rs6: Vec<IpAddr> = lab.reals.iter().map(|h| IpAddr::V6(h.ipv6)).collect();
    let mk = |k: ServiceKey, addrs: &[IpAddr], port: u16, fwd: Forward| {
        let mut s = Service::new(k);
        s.scheduler = scheduler;
        s.reals = addrs
            .iter()
            .zip(weights)
            .map(|(a, w)| {
                let mut r = RealServer::new(*a, port);
                r.weight = w;
                r.forward = fwd;
                r
            })
            .collect();
        s
    };
    let v4 = IpAddr::V4(lab.c.vip4);
    let v6 = IpAddr::V6(lab.c.vip6);
    use cluster_core::model::Protocol::*;
    for s in [
        mk(
            ServiceKey::Addr {
                protocol: Tcp,
                address: v4,
                port: PORT,
            },
            &rs,
            PORT,
            Forward::Dr,
        ),
        mk(
            ServiceKey::Addr {
                protocol: Udp,
                address: v4,
                port: UDP_PORT,
            },
            &rs,
            UDP_PORT,
            Forward::Dr,
        ),
        mk(
            ServiceKey::Addr {
                protocol: Tcp,
                address: v6,
                port: PORT,
            },
            &rs6,
            PORT,
            Forward::Dr,
        ),
        mk(
            ServiceKey::Addr {
                protocol: Tcp,
                address: v4,
                port: NAT_PORT,
            },
            &rs,
            NAT_REAL_PORT,
            Forward::Masq,
        ),
    ] {
        c.services.insert(s.key, s);
    }
    c
}

pub(super) fn sync_settings(mode: SyncMode) -> SyncSettings {
    SyncSettings {
        mode,
        interface: if mode == SyncMode::Multicast {
            "eth0".into()
        } else {
            String::new()
        },
        syncid: 7,
        group: None,
        port: 8848,
        ttl: 1,
    }
}
