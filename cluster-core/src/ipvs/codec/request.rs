//! One request constructor per IPVS command (attribute bytes ready to frame), and the
//! human-readable description of a request that error messages quote.

use std::net::IpAddr;

use crate::ipvs::types::{flags, DaemonState, KDaemon, KDest, KForward, KService, KTimeouts};
use crate::model::{fmt_endpoint, Family, ServiceKey};

use super::attr::{attrs, find, get_str, get_u32, AttrWriter};
use super::decode::{decode_dest_addr, decode_service_key};
use super::uapi::{
    addr16, af_number, cmd, cmd_attr, daemon_attr, dest_attr, netmask_bytes, protocol_number,
    svc_attr,
};

/// One IPVS command ready to frame: the genl command, whether it is a dump, and the attribute
/// bytes that follow the 4-byte genlmsghdr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub cmd: u8,
    pub dump: bool,
    pub attrs: Vec<u8>,
}

pub(super) fn put_service_key(w: &mut AttrWriter, key: &ServiceKey) {
    w.put_u16(svc_attr::AF, af_number(key.family()));
    match key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            w.put_u16(svc_attr::PROTOCOL, protocol_number(*protocol));
            w.put(svc_attr::ADDR, &addr16(address));
            w.put_be16(svc_attr::PORT, *port);
        }
        // The kernel treats fwmark services as TCP itself; it wants only AF + FWMARK.
        ServiceKey::Fwmark { mark, .. } => w.put_u32(svc_attr::FWMARK, *mark),
    }
}

fn put_service(w: &mut AttrWriter, svc: &KService) {
    put_service_key(w, &svc.key);
    w.put_str(svc_attr::SCHED_NAME, &svc.scheduler);
    if let Some(pe) = &svc.pe_name {
        w.put_str(svc_attr::PE_NAME, pe);
    }
    // struct ip_vs_flags { flags, mask }: the kernel computes (old & ~mask) | (flags & mask), so a
    // full mask makes the sent set replace the old one (SET_SERVICE can clear persistence), as
    // ipvsadm and keepalived do. HASHED is the kernel's own bit: a NEW_SERVICE carrying it would
    // be refused by ip_vs_svc_hash ("already hashed").
    let mut fl = [0u8; 8];
    fl[..4].copy_from_slice(&(svc.flags & !flags::HASHED).to_ne_bytes());
    fl[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    w.put(svc_attr::FLAGS, &fl);
    w.put_u32(svc_attr::TIMEOUT, svc.timeout);
    w.put(
        svc_attr::NETMASK,
        &netmask_bytes(svc.key.family(), svc.netmask),
    );
}

fn put_dest_addr(w: &mut AttrWriter, address: &IpAddr, port: u16) {
    // Always sent: a destination of the other family than its service (tunnel only) is
    // recognised by it, and it names the family of ADDR unambiguously.
    w.put_u16(dest_attr::ADDR_FAMILY, af_number(Family::of(address)));
    w.put(dest_attr::ADDR, &addr16(address));
    w.put_be16(dest_attr::PORT, port);
}

fn put_dest(w: &mut AttrWriter, d: &KDest) {
    put_dest_addr(w, &d.address, d.port);
    w.put_u32(dest_attr::FWD_METHOD, d.forward.to_u32());
    w.put_u32(dest_attr::WEIGHT, d.weight);
    w.put_u32(dest_attr::U_THRESH, d.upper_threshold);
    w.put_u32(dest_attr::L_THRESH, d.lower_threshold);
    if d.forward == KForward::Tunnel {
        w.put_u8(dest_attr::TUN_TYPE, d.tun_type);
        w.put_be16(dest_attr::TUN_PORT, d.tun_port);
        w.put_u16(dest_attr::TUN_FLAGS, d.tun_flags);
    }
}

impl Request {
    fn build(cmd: u8, dump: bool, f: impl FnOnce(&mut AttrWriter)) -> Request {
        let mut w = AttrWriter::new();
        f(&mut w);
        Request {
            cmd,
            dump,
            attrs: w.finish(),
        }
    }

    fn service_full(cmd: u8, svc: &KService) -> Request {
        Request::build(cmd, false, |w| {
            w.nest(cmd_attr::SERVICE, |w| put_service(w, svc))
        })
    }

    fn service_key(cmd: u8, dump: bool, key: &ServiceKey) -> Request {
        Request::build(cmd, dump, |w| {
            w.nest(cmd_attr::SERVICE, |w| put_service_key(w, key))
        })
    }

    fn dest_full(cmd: u8, key: &ServiceKey, d: &KDest) -> Request {
        Request::build(cmd, false, |w| {
            w.nest(cmd_attr::SERVICE, |w| put_service_key(w, key));
            w.nest(cmd_attr::DEST, |w| put_dest(w, d));
        })
    }

    pub fn new_service(svc: &KService) -> Request {
        Request::service_full(cmd::NEW_SERVICE, svc)
    }

    pub fn set_service(svc: &KService) -> Request {
        Request::service_full(cmd::SET_SERVICE, svc)
    }

    pub fn del_service(key: &ServiceKey) -> Request {
        Request::service_key(cmd::DEL_SERVICE, false, key)
    }

    /// One service; the kernel answers ESRCH when it does not exist.
    pub fn get_service(key: &ServiceKey) -> Request {
        Request::service_key(cmd::GET_SERVICE, false, key)
    }

    /// All services (the replies carry NEW_SERVICE).
    pub fn dump_services() -> Request {
        Request::build(cmd::GET_SERVICE, true, |_| {})
    }

    pub fn new_dest(key: &ServiceKey, d: &KDest) -> Request {
        Request::dest_full(cmd::NEW_DEST, key, d)
    }

    pub fn set_dest(key: &ServiceKey, d: &KDest) -> Request {
        Request::dest_full(cmd::SET_DEST, key, d)
    }

    pub fn del_dest(key: &ServiceKey, address: IpAddr, port: u16) -> Request {
        Request::build(cmd::DEL_DEST, false, |w| {
            w.nest(cmd_attr::SERVICE, |w| put_service_key(w, key));
            w.nest(cmd_attr::DEST, |w| put_dest_addr(w, &address, port));
        })
    }

    /// GET_DEST is dump-only and names the service.
    pub fn dump_dests(key: &ServiceKey) -> Request {
        Request::service_key(cmd::GET_DEST, true, key)
    }

    pub fn new_daemon(d: &KDaemon) -> Request {
        Request::build(cmd::NEW_DAEMON, false, |w| {
            w.nest(cmd_attr::DAEMON, |w| {
                w.put_u32(daemon_attr::STATE, d.state.to_u32());
                w.put_str(daemon_attr::MCAST_IFN, &d.interface);
                w.put_u32(daemon_attr::SYNC_ID, d.syncid);
                if let Some(maxlen) = d.maxlen {
                    w.put_u16(daemon_attr::SYNC_MAXLEN, maxlen);
                }
                match d.group {
                    Some(IpAddr::V4(g)) => w.put(daemon_attr::MCAST_GROUP, &g.octets()),
                    Some(IpAddr::V6(g)) => w.put(daemon_attr::MCAST_GROUP6, &g.octets()),
                    None => {}
                }
                // Host order, unlike every other port in this family (nla_get_u16 in the kernel).
                if let Some(port) = d.port {
                    w.put_u16(daemon_attr::MCAST_PORT, port);
                }
                if let Some(ttl) = d.ttl {
                    w.put_u8(daemon_attr::MCAST_TTL, ttl);
                }
            })
        })
    }

    pub fn del_daemon(state: DaemonState) -> Request {
        Request::build(cmd::DEL_DAEMON, false, |w| {
            w.nest(cmd_attr::DAEMON, |w| {
                w.put_u32(daemon_attr::STATE, state.to_u32())
            })
        })
    }

    /// GET_DAEMON is dump-only: one reply per running daemon (master, backup).
    pub fn dump_daemons() -> Request {
        Request::build(cmd::GET_DAEMON, true, |_| {})
    }

    pub fn get_config() -> Request {
        Request::build(cmd::GET_CONFIG, false, |_| {})
    }

    /// Sends all three timeouts; the kernel leaves a timeout unchanged when it is 0.
    pub fn set_config(t: &KTimeouts) -> Request {
        Request::build(cmd::SET_CONFIG, false, |w| {
            w.put_u32(cmd_attr::TIMEOUT_TCP, t.tcp);
            w.put_u32(cmd_attr::TIMEOUT_TCP_FIN, t.tcp_fin);
            w.put_u32(cmd_attr::TIMEOUT_UDP, t.udp);
        })
    }

    pub fn get_info() -> Request {
        Request::build(cmd::GET_INFO, false, |_| {})
    }

    /// Deletes every service (and its destinations) in the network namespace.
    pub fn flush() -> Request {
        Request::build(cmd::FLUSH, false, |_| {})
    }

    /// Zeroes the counters of one service, or of all of them.
    pub fn zero(key: Option<&ServiceKey>) -> Request {
        match key {
            Some(key) => Request::service_key(cmd::ZERO, false, key),
            None => Request::build(cmd::ZERO, false, |_| {}),
        }
    }

    /// What this request does, for error messages: `new service tcp/10.0.0.1:80 (scheduler wlc)`,
    /// `del dest tcp/10.0.0.1:80 -> 10.1.0.1:80`. Read back from the attributes, so it costs
    /// nothing until an error needs it.
    pub fn describe(&self) -> String {
        let mut out = command_name(self.cmd, self.dump).to_string();
        let mut svc_family = None;
        for (ty, p) in attrs(&self.attrs, "request").map_while(Result::ok) {
            match ty {
                cmd_attr::SERVICE => {
                    if let Ok(key) = decode_service_key(p) {
                        svc_family = Some(key.family());
                        out.push_str(&format!(" {key}"));
                    }
                    let sched = find(
                        p,
                        svc_attr::SCHED_NAME,
                        "IPVS_SVC_ATTR_SCHED_NAME",
                        "IPVS_CMD_ATTR_SERVICE",
                    )
                    .and_then(|s| get_str("IPVS_SVC_ATTR_SCHED_NAME", s));
                    if let Ok(sched) = sched {
                        out.push_str(&format!(" (scheduler {sched})"));
                    }
                }
                cmd_attr::DEST => {
                    if let Ok((addr, port)) = decode_dest_addr(p, svc_family) {
                        out.push_str(&format!(" -> {}", fmt_endpoint(&addr, port)));
                    }
                }
                cmd_attr::DAEMON => {
                    let state = find(
                        p,
                        daemon_attr::STATE,
                        "IPVS_DAEMON_ATTR_STATE",
                        "IPVS_CMD_ATTR_DAEMON",
                    )
                    .and_then(|s| get_u32("IPVS_DAEMON_ATTR_STATE", s));
                    match state.ok().and_then(DaemonState::from_u32) {
                        Some(DaemonState::Master) => out.push_str(" master"),
                        Some(DaemonState::Backup) => out.push_str(" backup"),
                        None => {}
                    }
                    let ifn = find(
                        p,
                        daemon_attr::MCAST_IFN,
                        "IPVS_DAEMON_ATTR_MCAST_IFN",
                        "IPVS_CMD_ATTR_DAEMON",
                    )
                    .and_then(|s| get_str("IPVS_DAEMON_ATTR_MCAST_IFN", s));
                    if let Ok(ifn) = ifn {
                        out.push_str(&format!(" on {ifn}"));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn command_name(cmd: u8, dump: bool) -> &'static str {
    match (cmd, dump) {
        (cmd::NEW_SERVICE, _) => "new service",
        (cmd::SET_SERVICE, _) => "set service",
        (cmd::DEL_SERVICE, _) => "del service",
        (cmd::GET_SERVICE, true) => "list services",
        (cmd::GET_SERVICE, false) => "get service",
        (cmd::NEW_DEST, _) => "new dest",
        (cmd::SET_DEST, _) => "set dest",
        (cmd::DEL_DEST, _) => "del dest",
        (cmd::GET_DEST, _) => "list dests",
        (cmd::NEW_DAEMON, _) => "new daemon",
        (cmd::DEL_DAEMON, _) => "del daemon",
        (cmd::GET_DAEMON, _) => "list daemons",
        (cmd::SET_CONFIG, _) => "set timeouts",
        (cmd::GET_CONFIG, _) => "get timeouts",
        (cmd::GET_INFO, _) => "get info",
        (cmd::ZERO, _) => "zero",
        (cmd::FLUSH, _) => "flush",
        _ => "ipvs command",
    }
}
