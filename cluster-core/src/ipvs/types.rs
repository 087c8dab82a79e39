//! IPVS objects as the kernel sees them (include/uapi/linux/ip_vs.h), independent of how they are
//! encoded. Services are identified by the model's `ServiceKey` (AF + fwmark, or AF + protocol +
//! address + port), which is exactly the kernel's identity.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Family, ServiceKey};

/// `IP_VS_SVC_F_*` service flags.
pub mod flags {
    pub const PERSISTENT: u32 = 0x0001;
    /// Kernel-internal, always set in replies: masked off by the decoder.
    pub const HASHED: u32 = 0x0002;
    pub const ONEPACKET: u32 = 0x0004;
    /// sh/mh: fall back to another server when the chosen one is unavailable.
    pub const SCHED1: u32 = 0x0008;
    /// sh/mh: hash the source port too.
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;
}

/// A virtual service's settings (everything NEW/SET_SERVICE sends).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KService {
    pub key: ServiceKey,
    /// Scheduler module name without the `ip_vs_` prefix (`wlc`, `mh`, ...).
    pub scheduler: String,
    /// `flags::*`, without HASHED.
    pub flags: u32,
    /// Persistence timeout in seconds (0 when not persistent).
    pub timeout: u32,
    /// Persistence granularity. IPv4: the mask as a number (`0xffff_ff00` for /24; sent as be32).
    /// IPv6: the prefix length (1..=128).
    pub netmask: u32,
    /// Persistence engine (`sip`), rarely used.
    pub pe_name: Option<String>,
}

impl KService {
    /// The netmask that means "one client address" for the family.
    pub fn host_netmask(family: Family) -> u32 {
        match family {
            Family::Ipv4 => 0xffff_ffff,
            Family::Ipv6 => 128,
        }
    }
}

crate::named_enum! {
    /// `IP_VS_CONN_F_*` forwarding methods, named by ipvsadm's column text.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum KForward {
        Masq => "Masq",
        Local => "Local",
        Tunnel => "Tunnel",
        Route => "Route",
        Bypass => "Bypass",
    }
    unknown = "forwarding method", case_insensitive = false, listing = Or;
}

impl KForward {
    pub fn to_u32(self) -> u32 {
        match self {
            KForward::Masq => 0,
            KForward::Local => 1,
            KForward::Tunnel => 2,
            KForward::Route => 3,
            KForward::Bypass => 4,
        }
    }

    pub fn from_u32(v: u32) -> Option<KForward> {
        Some(match v & 0x7 {
            0 => KForward::Masq,
            1 => KForward::Local,
            2 => KForward::Tunnel,
            3 => KForward::Route,
            4 => KForward::Bypass,
            _ => return None,
        })
    }
}

/// `IP_VS_CONN_F_TUNNEL_TYPE_*`.
pub mod tun_type {
    pub const IPIP: u8 = 0;
    pub const GUE: u8 = 1;
    pub const GRE: u8 = 2;
}

/// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
pub mod tun_flags {
    pub const NOCSUM: u16 = 0;
    pub const CSUM: u16 = 1;
    pub const REMCSUM: u16 = 2;
}

/// A real server (destination) of one service: everything NEW/SET_DEST sends. The kernel reports
/// the tunnel fields for every destination (zero when not tunnelling), so they are not optional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KDest {
    pub address: IpAddr,
    pub port: u16,
    pub forward: KForward,
    pub weight: u32,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub tun_type: u8,
    pub tun_port: u16,
    pub tun_flags: u16,
}

/// 64-bit counters and rate estimates (`IPVS_STATS_ATTR_*` in STATS64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats64 {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// A service as dumped from the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KServiceEntry {
    pub service: KService,
    pub stats: Stats64,
}

/// A destination as dumped from the kernel, with its read-only counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KDestEntry {
    pub dest: KDest,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persist_conns: u32,
    pub stats: Stats64,
}

crate::named_enum! {
    /// Sync-daemon role (`IP_VS_STATE_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum DaemonState {
        Master => "master",
        Backup => "backup",
    }
    unknown = "sync daemon state", case_insensitive = false, listing = Or;
}

impl DaemonState {
    pub fn to_u32(self) -> u32 {
        match self {
            DaemonState::Master => 1,
            DaemonState::Backup => 2,
        }
    }

    pub fn from_u32(v: u32) -> Option<DaemonState> {
        match v {
            1 => Some(DaemonState::Master),
            2 => Some(DaemonState::Backup),
            _ => None,
        }
    }
}

/// A kernel sync daemon. `None` fields are left to the kernel's defaults on NEW_DAEMON
/// (group 224.0.0.81, port 8848, TTL 1, maxlen from the MTU).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KDaemon {
    pub state: DaemonState,
    pub interface: String,
    pub syncid: u32,
    pub maxlen: Option<u16>,
    /// IPv4 or IPv6 multicast group.
    pub group: Option<IpAddr>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
}

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 in SET_CONFIG = unchanged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KTimeouts {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

/// GET_INFO reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KInfo {
    /// 0x010201 = 1.2.1.
    pub version: u32,
    pub conn_tab_size: u32,
}

impl KInfo {
    pub fn version_string(&self) -> String {
        format!(
            "{}.{}.{}",
            (self.version >> 16) & 0xff,
            (self.version >> 8) & 0xff,
            self.version & 0xff
        )
    }
}
