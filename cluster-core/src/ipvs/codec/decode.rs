//! Decoders for the kernel's replies: services, destinations, sync daemons, timeouts and info,
//! each from the attribute bytes of one generic-netlink message.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ipvs::types::{
    flags, DaemonState, KDaemon, KDest, KDestEntry, KForward, KInfo, KService, KServiceEntry,
    KTimeouts, Stats64,
};
use crate::model::{Family, ServiceKey};

use super::attr::{
    attrs, exact, find, get_addr, get_be16, get_str, get_u16, get_u32, get_u8, get_uint,
};
use super::error::DecodeError;
use super::uapi::{
    cmd_attr, daemon_attr, dest_attr, info_attr, netmask_from_bytes, protocol_from_number,
    stats_attr, svc_attr, AF_INET, AF_INET6,
};

pub fn family_from_af(attr: &'static str, af: u16) -> Result<Family, DecodeError> {
    match af {
        AF_INET => Ok(Family::Ipv4),
        AF_INET6 => Ok(Family::Ipv6),
        other => Err(DecodeError::value(
            attr,
            format!("unknown address family {other}"),
        )),
    }
}

/// The identity part of a SERVICE nest.
pub fn decode_service_key(nest: &[u8]) -> Result<ServiceKey, DecodeError> {
    let mut af = None;
    let mut protocol = None;
    let mut addr = None;
    let mut port = None;
    let mut fwmark = None;
    for a in attrs(nest, "IPVS_CMD_ATTR_SERVICE") {
        let (ty, p) = a?;
        match ty {
            svc_attr::AF => af = Some(get_u16("IPVS_SVC_ATTR_AF", p)?),
            svc_attr::PROTOCOL => protocol = Some(get_u16("IPVS_SVC_ATTR_PROTOCOL", p)?),
            svc_attr::ADDR => addr = Some(p),
            svc_attr::PORT => port = Some(get_be16("IPVS_SVC_ATTR_PORT", p)?),
            svc_attr::FWMARK => fwmark = Some(get_u32("IPVS_SVC_ATTR_FWMARK", p)?),
            _ => {}
        }
    }
    let af = af.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_AF"))?;
    let family = family_from_af("IPVS_SVC_ATTR_AF", af)?;
    // The kernel reports FWMARK only for fwmark services (and PROTOCOL/ADDR/PORT otherwise).
    if let Some(mark) = fwmark.filter(|&m| m != 0) {
        return Ok(ServiceKey::Fwmark { family, mark });
    }
    let proto = protocol.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_PROTOCOL"))?;
    let protocol = protocol_from_number(proto).ok_or_else(|| {
        DecodeError::value(
            "IPVS_SVC_ATTR_PROTOCOL",
            format!("unsupported protocol {proto}"),
        )
    })?;
    let addr = addr.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_ADDR"))?;
    let address = get_addr("IPVS_SVC_ATTR_ADDR", addr, family)?;
    let port = port.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_PORT"))?;
    Ok(ServiceKey::Addr {
        protocol,
        address,
        port,
    })
}

/// A service reply (GET_SERVICE, or one message of its dump): the SERVICE nest at top level.
pub fn decode_service(msg_attrs: &[u8]) -> Result<KServiceEntry, DecodeError> {
    let nest = find(
        msg_attrs,
        cmd_attr::SERVICE,
        "IPVS_CMD_ATTR_SERVICE",
        "service reply",
    )?;
    let key = decode_service_key(nest)?;
    let family = key.family();
    let mut scheduler = None;
    let mut svc_flags = None;
    let mut timeout = None;
    let mut netmask = None;
    let mut pe_name = None;
    let mut stats32 = None;
    let mut stats64 = None;
    for a in attrs(nest, "IPVS_CMD_ATTR_SERVICE") {
        let (ty, p) = a?;
        match ty {
            svc_attr::SCHED_NAME => scheduler = Some(get_str("IPVS_SVC_ATTR_SCHED_NAME", p)?),
            svc_attr::FLAGS => {
                let b: [u8; 8] = exact("IPVS_SVC_ATTR_FLAGS", p, "8 (flags, mask)")?;
                svc_flags = Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            }
            svc_attr::TIMEOUT => timeout = Some(get_u32("IPVS_SVC_ATTR_TIMEOUT", p)?),
            svc_attr::NETMASK => {
                let b = exact("IPVS_SVC_ATTR_NETMASK", p, "4")?;
                netmask = Some(netmask_from_bytes(family, b));
            }
            svc_attr::PE_NAME => pe_name = Some(get_str("IPVS_SVC_ATTR_PE_NAME", p)?),
            svc_attr::STATS => stats32 = Some(p),
            svc_attr::STATS64 => stats64 = Some(p),
            _ => {}
        }
    }
    let stats = decode_stats_pair(
        stats64,
        stats32,
        "IPVS_SVC_ATTR_STATS64",
        "IPVS_SVC_ATTR_STATS",
    )?;
    Ok(KServiceEntry {
        service: KService {
            key,
            scheduler: scheduler.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_SCHED_NAME"))?,
            flags: svc_flags.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_FLAGS"))?
                & !flags::HASHED,
            timeout: timeout.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_TIMEOUT"))?,
            netmask: netmask.ok_or_else(|| DecodeError::missing("IPVS_SVC_ATTR_NETMASK"))?,
            pe_name: pe_name.filter(|s| !s.is_empty()),
        },
        stats,
    })
}

/// STATS64 when the kernel sent it (4.x and later), else the legacy 32-bit STATS, else zeros.
fn decode_stats_pair(
    s64: Option<&[u8]>,
    s32: Option<&[u8]>,
    name64: &'static str,
    name32: &'static str,
) -> Result<Stats64, DecodeError> {
    match (s64, s32) {
        (Some(p), _) => decode_stats(p, name64),
        (None, Some(p)) => decode_stats(p, name32),
        (None, None) => Ok(Stats64::default()),
    }
}

fn decode_stats(nest: &[u8], context: &'static str) -> Result<Stats64, DecodeError> {
    let mut s = Stats64::default();
    for a in attrs(nest, context) {
        let (ty, p) = a?;
        let field = match ty {
            stats_attr::CONNS => &mut s.conns,
            stats_attr::INPKTS => &mut s.inpkts,
            stats_attr::OUTPKTS => &mut s.outpkts,
            stats_attr::INBYTES => &mut s.inbytes,
            stats_attr::OUTBYTES => &mut s.outbytes,
            stats_attr::CPS => &mut s.cps,
            stats_attr::INPPS => &mut s.inpps,
            stats_attr::OUTPPS => &mut s.outpps,
            stats_attr::INBPS => &mut s.inbps,
            stats_attr::OUTBPS => &mut s.outbps,
            // PAD (alignment for the u64s) and counters of newer kernels.
            _ => continue,
        };
        *field = get_uint(context, p)?;
    }
    Ok(s)
}

/// ADDR_FAMILY (or the service's family) + ADDR + PORT of a DEST nest.
pub(super) fn decode_dest_addr(
    nest: &[u8],
    svc_family: Option<Family>,
) -> Result<(IpAddr, u16), DecodeError> {
    let mut af = None;
    let mut addr = None;
    let mut port = None;
    for a in attrs(nest, "IPVS_CMD_ATTR_DEST") {
        let (ty, p) = a?;
        match ty {
            dest_attr::ADDR_FAMILY => af = Some(get_u16("IPVS_DEST_ATTR_ADDR_FAMILY", p)?),
            dest_attr::ADDR => addr = Some(p),
            dest_attr::PORT => port = Some(get_be16("IPVS_DEST_ATTR_PORT", p)?),
            _ => {}
        }
    }
    let family = match af {
        Some(af) => family_from_af("IPVS_DEST_ATTR_ADDR_FAMILY", af)?,
        None => svc_family.ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_ADDR_FAMILY"))?,
    };
    let addr = addr.ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_ADDR"))?;
    let address = get_addr("IPVS_DEST_ATTR_ADDR", addr, family)?;
    let port = port.ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_PORT"))?;
    Ok((address, port))
}

/// One message of a GET_DEST dump. `svc_family` is the service's family, used for the address
/// when the kernel predates ADDR_FAMILY (4.3).
pub fn decode_dest(msg_attrs: &[u8], svc_family: Family) -> Result<KDestEntry, DecodeError> {
    let nest = find(
        msg_attrs,
        cmd_attr::DEST,
        "IPVS_CMD_ATTR_DEST",
        "destination reply",
    )?;
    let (address, port) = decode_dest_addr(nest, Some(svc_family))?;
    let mut fwd = None;
    let mut weight = None;
    let mut u_thresh = None;
    let mut l_thresh = None;
    let mut entry_counts = [0u32; 3];
    let (mut tun_type, mut tun_port, mut tun_flags) = (0, 0, 0);
    let mut stats32 = None;
    let mut stats64 = None;
    for a in attrs(nest, "IPVS_CMD_ATTR_DEST") {
        let (ty, p) = a?;
        match ty {
            dest_attr::FWD_METHOD => fwd = Some(get_u32("IPVS_DEST_ATTR_FWD_METHOD", p)?),
            dest_attr::WEIGHT => weight = Some(get_u32("IPVS_DEST_ATTR_WEIGHT", p)?),
            dest_attr::U_THRESH => u_thresh = Some(get_u32("IPVS_DEST_ATTR_U_THRESH", p)?),
            dest_attr::L_THRESH => l_thresh = Some(get_u32("IPVS_DEST_ATTR_L_THRESH", p)?),
            dest_attr::ACTIVE_CONNS => entry_counts[0] = get_u32("IPVS_DEST_ATTR_ACTIVE_CONNS", p)?,
            dest_attr::INACT_CONNS => entry_counts[1] = get_u32("IPVS_DEST_ATTR_INACT_CONNS", p)?,
            dest_attr::PERSIST_CONNS => {
                entry_counts[2] = get_u32("IPVS_DEST_ATTR_PERSIST_CONNS", p)?
            }
            dest_attr::TUN_TYPE => tun_type = get_u8("IPVS_DEST_ATTR_TUN_TYPE", p)?,
            dest_attr::TUN_PORT => tun_port = get_be16("IPVS_DEST_ATTR_TUN_PORT", p)?,
            dest_attr::TUN_FLAGS => tun_flags = get_u16("IPVS_DEST_ATTR_TUN_FLAGS", p)?,
            dest_attr::STATS => stats32 = Some(p),
            dest_attr::STATS64 => stats64 = Some(p),
            _ => {}
        }
    }
    let fwd = fwd.ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_FWD_METHOD"))?;
    let forward = KForward::from_u32(fwd).ok_or_else(|| {
        DecodeError::value(
            "IPVS_DEST_ATTR_FWD_METHOD",
            format!("unknown forwarding method {fwd}"),
        )
    })?;
    let stats = decode_stats_pair(
        stats64,
        stats32,
        "IPVS_DEST_ATTR_STATS64",
        "IPVS_DEST_ATTR_STATS",
    )?;
    Ok(KDestEntry {
        dest: KDest {
            address,
            port,
            forward,
            weight: weight.ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_WEIGHT"))?,
            upper_threshold: u_thresh
                .ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_U_THRESH"))?,
            lower_threshold: l_thresh
                .ok_or_else(|| DecodeError::missing("IPVS_DEST_ATTR_L_THRESH"))?,
            tun_type,
            tun_port,
            tun_flags,
        },
        active_conns: entry_counts[0],
        inactive_conns: entry_counts[1],
        persist_conns: entry_counts[2],
        stats,
    })
}

/// One message of a GET_DAEMON dump (each holds one DAEMON nest). Kernels before 4.7 report only
/// state, interface and sync id: the other fields are then `None`.
pub fn decode_daemons(msg_attrs: &[u8]) -> Result<KDaemon, DecodeError> {
    let nest = find(
        msg_attrs,
        cmd_attr::DAEMON,
        "IPVS_CMD_ATTR_DAEMON",
        "daemon reply",
    )?;
    let mut state = None;
    let mut interface = None;
    let mut syncid = None;
    let mut d = KDaemon {
        state: DaemonState::Master,
        interface: String::new(),
        syncid: 0,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    };
    for a in attrs(nest, "IPVS_CMD_ATTR_DAEMON") {
        let (ty, p) = a?;
        match ty {
            daemon_attr::STATE => state = Some(get_u32("IPVS_DAEMON_ATTR_STATE", p)?),
            daemon_attr::MCAST_IFN => interface = Some(get_str("IPVS_DAEMON_ATTR_MCAST_IFN", p)?),
            daemon_attr::SYNC_ID => syncid = Some(get_u32("IPVS_DAEMON_ATTR_SYNC_ID", p)?),
            daemon_attr::SYNC_MAXLEN => {
                d.maxlen = Some(get_u16("IPVS_DAEMON_ATTR_SYNC_MAXLEN", p)?)
            }
            daemon_attr::MCAST_GROUP => {
                let b: [u8; 4] = exact("IPVS_DAEMON_ATTR_MCAST_GROUP", p, "4")?;
                d.group = Some(IpAddr::V4(Ipv4Addr::from(b)));
            }
            daemon_attr::MCAST_GROUP6 => {
                let b: [u8; 16] = exact("IPVS_DAEMON_ATTR_MCAST_GROUP6", p, "16")?;
                d.group = Some(IpAddr::V6(Ipv6Addr::from(b)));
            }
            daemon_attr::MCAST_PORT => d.port = Some(get_u16("IPVS_DAEMON_ATTR_MCAST_PORT", p)?),
            daemon_attr::MCAST_TTL => d.ttl = Some(get_u8("IPVS_DAEMON_ATTR_MCAST_TTL", p)?),
            _ => {}
        }
    }
    let state = state.ok_or_else(|| DecodeError::missing("IPVS_DAEMON_ATTR_STATE"))?;
    d.state = DaemonState::from_u32(state).ok_or_else(|| {
        DecodeError::value(
            "IPVS_DAEMON_ATTR_STATE",
            format!("unknown daemon state {state}"),
        )
    })?;
    d.interface = interface.ok_or_else(|| DecodeError::missing("IPVS_DAEMON_ATTR_MCAST_IFN"))?;
    d.syncid = syncid.ok_or_else(|| DecodeError::missing("IPVS_DAEMON_ATTR_SYNC_ID"))?;
    Ok(d)
}

/// GET_CONFIG's reply: the timeouts at top level. A timeout whose protocol is compiled out of the
/// kernel is absent and reads as 0.
pub fn decode_config(msg_attrs: &[u8]) -> Result<KTimeouts, DecodeError> {
    let mut t = KTimeouts::default();
    for a in attrs(msg_attrs, "config reply") {
        let (ty, p) = a?;
        match ty {
            cmd_attr::TIMEOUT_TCP => t.tcp = get_u32("IPVS_CMD_ATTR_TIMEOUT_TCP", p)?,
            cmd_attr::TIMEOUT_TCP_FIN => t.tcp_fin = get_u32("IPVS_CMD_ATTR_TIMEOUT_TCP_FIN", p)?,
            cmd_attr::TIMEOUT_UDP => t.udp = get_u32("IPVS_CMD_ATTR_TIMEOUT_UDP", p)?,
            _ => {}
        }
    }
    Ok(t)
}

/// GET_INFO's reply (command SET_INFO).
pub fn decode_info(msg_attrs: &[u8]) -> Result<KInfo, DecodeError> {
    let mut version = None;
    let mut conn_tab_size = None;
    for a in attrs(msg_attrs, "info reply") {
        let (ty, p) = a?;
        match ty {
            info_attr::VERSION => version = Some(get_u32("IPVS_INFO_ATTR_VERSION", p)?),
            info_attr::CONN_TAB_SIZE => {
                conn_tab_size = Some(get_u32("IPVS_INFO_ATTR_CONN_TAB_SIZE", p)?)
            }
            _ => {}
        }
    }
    Ok(KInfo {
        version: version.ok_or_else(|| DecodeError::missing("IPVS_INFO_ATTR_VERSION"))?,
        conn_tab_size: conn_tab_size
            .ok_or_else(|| DecodeError::missing("IPVS_INFO_ATTR_CONN_TAB_SIZE"))?,
    })
}
