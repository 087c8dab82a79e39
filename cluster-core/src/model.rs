//! The virtual-service configuration: services, real servers, VIP groups, health-check specs and
//! sync-daemon settings. Plain data with serde; validation lives in `validate`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::{ConfigTomlError, EndpointError, ServiceKeyError};

crate::named_enum! {
    /// Address family of a service or real server.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Family {
        Ipv4 => "ipv4",
        Ipv6 => "ipv6",
    }
    unknown = "address family", case_insensitive = false, listing = Or;
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

crate::named_enum! {
    /// Transport protocol of an address-based virtual service.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Protocol {
        Tcp => "tcp",
        Udp => "udp",
        Sctp => "sctp",
    }
    unknown = "protocol", case_insensitive = true, listing = Or;
}

/// Identity of a virtual service, as the kernel identifies it.
///
/// Text form (used in files, the CLI and error paths): `tcp/10.0.0.1:80`, `udp/[2001:db8::1]:53`,
/// `sctp/10.0.0.1:9`, `fwmark/5` (IPv4) and `fwmark6/5` (IPv6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ServiceKey {
    Addr {
        protocol: Protocol,
        address: IpAddr,
        port: u16,
    },
    Fwmark {
        family: Family,
        mark: u32,
    },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { address, .. } => Family::of(address),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// The service port, `None` for fwmark services.
    pub fn port(&self) -> Option<u16> {
        match self {
            ServiceKey::Addr { port, .. } => Some(*port),
            ServiceKey::Fwmark { .. } => None,
        }
    }
}

/// `ip:port` with brackets around IPv6 addresses.
pub fn fmt_endpoint(addr: &IpAddr, port: u16) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(a) => format!("[{a}]:{port}"),
    }
}

/// Parses `ip:port`, `[ipv6]:port`, or a bare address (port `None`).
pub fn parse_endpoint(s: &str) -> Result<(IpAddr, Option<u16>), EndpointError> {
    let s = s.trim();
    let input = || s.to_string();
    let bad_address = |address: &str| EndpointError::BadAddress {
        input: input(),
        address: address.to_string(),
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| EndpointError::MissingBracket { input: input() })?;
        let addr: IpAddr = addr.parse().map_err(|_| bad_address(addr))?;
        return match after {
            "" => Ok((addr, None)),
            p => {
                let p = p
                    .strip_prefix(':')
                    .ok_or_else(|| EndpointError::ExpectedPort { input: input() })?;
                Ok((addr, Some(parse_port(s, p)?)))
            }
        };
    }
    if let Ok(addr) = s.parse::<IpAddr>() {
        return Ok((addr, None));
    }
    let (addr, port) = s
        .rsplit_once(':')
        .ok_or_else(|| EndpointError::NotAnEndpoint { input: input() })?;
    let addr: IpAddr = addr.parse().map_err(|_| bad_address(addr))?;
    if addr.is_ipv6() {
        return Err(EndpointError::UnbracketedIpv6 { input: input() });
    }
    Ok((addr, Some(parse_port(s, port)?)))
}

fn parse_port(whole: &str, p: &str) -> Result<u16, EndpointError> {
    p.parse::<u16>().map_err(|_| EndpointError::BadPort {
        input: whole.to_string(),
        port: p.to_string(),
    })
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr {
                protocol,
                address,
                port,
            } => write!(f, "{}/{}", protocol.as_str(), fmt_endpoint(address, *port)),
            ServiceKey::Fwmark {
                family: Family::Ipv4,
                mark,
            } => write!(f, "fwmark/{mark}"),
            ServiceKey::Fwmark {
                family: Family::Ipv6,
                mark,
            } => write!(f, "fwmark6/{mark}"),
        }
    }
}

impl FromStr for ServiceKey {
    type Err = ServiceKeyError;
    fn from_str(s: &str) -> Result<Self, ServiceKeyError> {
        let input = || s.to_string();
        let (kind, rest) = s
            .split_once('/')
            .ok_or_else(|| ServiceKeyError::Shape { input: input() })?;
        let kind = kind.to_ascii_lowercase();
        if kind == "fwmark" || kind == "fwmark6" {
            let mark: u32 = rest.parse().map_err(|_| ServiceKeyError::BadMark {
                input: input(),
                mark: rest.to_string(),
            })?;
            let family = if kind == "fwmark6" {
                Family::Ipv6
            } else {
                Family::Ipv4
            };
            return Ok(ServiceKey::Fwmark { family, mark });
        }
        let protocol: Protocol = kind.parse().map_err(|source| ServiceKeyError::Protocol {
            input: input(),
            source,
        })?;
        let (address, port) = parse_endpoint(rest).map_err(|source| ServiceKeyError::Endpoint {
            input: input(),
            source,
        })?;
        let port = port.ok_or_else(|| ServiceKeyError::MissingPort { input: input() })?;
        Ok(ServiceKey::Addr {
            protocol,
            address,
            port,
        })
    }
}

impl TryFrom<String> for ServiceKey {
    type Error = ServiceKeyError;
    fn try_from(s: String) -> Result<Self, ServiceKeyError> {
        s.parse()
    }
}

impl From<ServiceKey> for String {
    fn from(k: ServiceKey) -> String {
        k.to_string()
    }
}

crate::named_enum! {
    /// Every scheduler the kernel IPVS ships.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum Scheduler {
        Rr => "rr",
        Wrr => "wrr",
        Lc => "lc",
        #[default]
        Wlc => "wlc",
        Lblc => "lblc",
        Lblcr => "lblcr",
        Dh => "dh",
        Sh => "sh",
        Sed => "sed",
        Nq => "nq",
        Mh => "mh",
        Fo => "fo",
        Ovf => "ovf",
        Twos => "twos",
    }
    unknown = "scheduler", case_insensitive = false, listing = OneOf;
}

crate::named_enum! {
    /// Scheduler flags. `fallback` and `port` are the sh/mh flags (`-b sh-fallback,sh-port`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum SchedFlag {
        Fallback => "fallback",
        Port => "port",
    }
    unknown = "scheduler flag", case_insensitive = false, listing = Or;
}

/// Persistence (`-p TIMEOUT -M NETMASK`). The netmask is a dotted IPv4 mask for IPv4 services and
/// a prefix length for IPv6 services, normalised by validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Persistence {
    /// Seconds.
    pub timeout: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
}

crate::named_enum! {
    /// How the director forwards packets to a real server.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum Forward {
        /// NAT (`-m`).
        Masq => "masq" | "nat",
        /// Direct routing / gatewaying (`-g`), ipvsadm's default.
        #[default]
        Dr => "dr" | "route" | "gatewaying",
        /// IP-in-IP or other encapsulation (`-i`).
        Tunnel => "tunnel" | "tun" | "ipip",
    }
    unknown = "forwarding method", case_insensitive = false, listing = Or;
}

crate::named_enum! {
    /// Encapsulation used with `Forward::Tunnel`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum TunnelType {
        #[default]
        Ipip => "ipip",
        Gue => "gue",
        Gre => "gre",
    }
    unknown = "tunnel type", case_insensitive = false, listing = Or;
}

crate::named_enum! {
    /// Tunnel checksum mode (gue/gre).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum TunnelCsum {
        #[default]
        None => "none" | "nocsum",
        Csum => "csum",
        Remcsum => "remcsum",
    }
    unknown = "tunnel checksum", case_insensitive = false, listing = Or;
}

fn default_weight() -> u32 {
    1
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A real server (IPVS destination) of a virtual service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServer {
    pub address: IpAddr,
    pub port: u16,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub forward: Forward,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_type: Option<TunnelType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_csum: Option<TunnelCsum>,
    /// Upper connection threshold (`-x`), 0 = none.
    #[serde(default, skip_serializing_if = "is_default")]
    pub upper_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    #[serde(default, skip_serializing_if = "is_default")]
    pub lower_threshold: u32,
}

impl RealServer {
    pub fn new(address: IpAddr, port: u16) -> Self {
        RealServer {
            address,
            port,
            weight: 1,
            forward: Forward::Dr,
            tunnel_type: None,
            tunnel_port: None,
            tunnel_csum: None,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    pub fn endpoint(&self) -> String {
        fmt_endpoint(&self.address, self.port)
    }
}

crate::named_enum! {
    /// Kind of health check.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum CheckKind {
        Tcp => "tcp",
        Http => "http",
        Https => "https",
        Udp => "udp",
        Dns => "dns",
        Exec => "exec",
    }
    unknown = "health check kind", case_insensitive = false, listing = Or;
}

crate::named_enum! {
    /// What happens to a real server that fails its health check.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum FailureAction {
        /// Weight 0, existing connections continue (keepalived's inhibit_on_failure).
        #[default]
        Quiesce => "quiesce",
        /// Remove the destination from the kernel table.
        Remove => "remove",
    }
    unknown = "failure action", case_insensitive = false, listing = Or;
}

fn default_interval() -> u32 {
    2000
}
fn default_timeout() -> u32 {
    1000
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// A health-check specification for the real servers of one service. Kind-specific fields are
/// optional and rejected by validation when they do not belong to the kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub kind: CheckKind,
    #[serde(default = "default_interval")]
    pub interval_ms: u32,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    #[serde(default = "default_rise")]
    pub rise: u32,
    #[serde(default = "default_fall")]
    pub fall: u32,
    #[serde(default)]
    pub on_failure: FailureAction,
    /// Port to probe; defaults to the real server's port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// http/https: request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// http/https: Host header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// http/https: accepted status codes, e.g. "200-399" or "200".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_status: Option<String>,
    /// http/https: the body must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    /// udp: payload to send.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    /// udp: the reply must contain this text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
    /// dns: name to query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_name: Option<String>,
    /// dns: record type (A, AAAA, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_type: Option<String>,
    /// exec: argv of the command; exit code 0 = healthy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
}

impl HealthCheck {
    pub fn new(kind: CheckKind) -> Self {
        HealthCheck {
            kind,
            interval_ms: default_interval(),
            timeout_ms: default_timeout(),
            rise: default_rise(),
            fall: default_fall(),
            on_failure: FailureAction::Quiesce,
            port: None,
            path: None,
            host: None,
            expect_status: None,
            body_contains: None,
            send: None,
            expect: None,
            query_name: None,
            query_type: None,
            command: Vec::new(),
        }
    }
}

crate::named_enum! {
    /// How the leader derives the weights it programs for a service's real servers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum WeightPolicy {
        /// The configured weights.
        #[default]
        Static => "static",
        /// From agent load reports.
        Load => "load",
        /// From measured response latency.
        Latency => "latency",
    }
    unknown = "weight policy", case_insensitive = false, listing = Or;
}

impl WeightPolicy {
    /// Computed from reports rather than configured.
    pub fn is_dynamic(&self) -> bool {
        !matches!(self, WeightPolicy::Static)
    }
}

/// A virtual service with its real servers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub key: ServiceKey,
    #[serde(default)]
    pub scheduler: Scheduler,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sched_flags: Vec<SchedFlag>,
    /// One-packet scheduling (`-o`, UDP).
    #[serde(default, skip_serializing_if = "is_default")]
    pub one_packet: bool,
    #[serde(default, skip_serializing_if = "is_default")]
    pub weight_policy: WeightPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistence: Option<Persistence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Put into the kernel table while no real server is available (all failed their health
    /// check or are drained), like keepalived's sorry_server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sorry_server: Option<RealServer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reals: Vec<RealServer>,
}

impl Service {
    pub fn new(key: ServiceKey) -> Self {
        Service {
            key,
            scheduler: Scheduler::Wlc,
            sched_flags: Vec::new(),
            one_packet: false,
            weight_policy: WeightPolicy::Static,
            persistence: None,
            health_check: None,
            sorry_server: None,
            reals: Vec::new(),
        }
    }

    pub fn real(&self, address: &IpAddr, port: u16) -> Option<&RealServer> {
        self.reals
            .iter()
            .find(|r| r.address == *address && r.port == port)
    }
}

/// A group of VIPs held by the leader on one interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VipGroup {
    pub name: String,
    pub interface: String,
    /// Address with prefix length, e.g. `192.0.2.10/24`.
    pub addresses: Vec<IpNet>,
}

fn default_sync_port() -> u16 {
    8848
}
fn default_sync_ttl() -> u8 {
    1
}

crate::named_enum! {
    /// Kernel IPVS sync-daemon settings.
    /// How connection state survives a change of the VIP holder.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    pub enum SyncMode {
        /// The kernel sync daemons: a backup on every director, the master on the VIP holder.
        #[default]
        Multicast => "multicast" | "",
        /// No sync traffic: every service uses `mh` (the same hash on every director) and the
        /// directors accept mid-flow TCP/SCTP (`sloppy_tcp`, `sloppy_sctp`). Connections survive a
        /// takeover only while the real-server set is unchanged, and persistence is not kept.
        Stateless => "stateless",
    }
    unknown = "sync mode", case_insensitive = false, listing = Or;
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncSettings {
    #[serde(default, skip_serializing_if = "is_default")]
    pub mode: SyncMode,
    /// Interface of the multicast sync traffic (unused in stateless mode).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    #[serde(default)]
    pub syncid: u8,
    /// Multicast group; the kernel default (224.0.0.81) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<IpAddr>,
    #[serde(default = "default_sync_port")]
    pub port: u16,
    #[serde(default = "default_sync_ttl")]
    pub ttl: u8,
}

/// The whole desired configuration: what `apply` takes and `export` prints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(
        default,
        rename = "service",
        with = "services_as_list",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub services: BTreeMap<ServiceKey, Service>,
    #[serde(default, rename = "vip_group", skip_serializing_if = "Vec::is_empty")]
    pub vip_groups: Vec<VipGroup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncSettings>,
}

/// Services are keyed in memory and written as a list of tables (each carries its key).
mod services_as_list {
    use super::*;
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<ServiceKey, Service>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ServiceKey, Service>, D::Error> {
        let list = Vec::<Service>::deserialize(d)?;
        let mut m = BTreeMap::new();
        for s in list {
            let key = s.key;
            if m.insert(key, s).is_some() {
                return Err(D::Error::custom(format!("service {key} is listed twice")));
            }
        }
        Ok(m)
    }
}

impl Config {
    /// Parses a desired-config TOML file; syntax and type errors carry line and column.
    pub fn from_toml(text: &str) -> Result<Config, ConfigTomlError> {
        toml::from_str(text).map_err(|e: toml::de::Error| ConfigTomlError {
            message: e.to_string().trim_end().to_string(),
        })
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises to TOML")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The texts are the ones the hand-written tables had; CLI output and importers quote them.
    #[test]
    fn name_tables_parse_aliases_and_name_what_they_expected() {
        let err = |r: Result<(), crate::names::UnknownName>| r.unwrap_err().to_string();
        let cases = [
            (
                err("x".parse::<Protocol>().map(drop)),
                r#"unknown protocol "x" (expected tcp, udp or sctp)"#,
            ),
            (
                err("x".parse::<Scheduler>().map(drop)),
                r#"unknown scheduler "x" (expected one of rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos)"#,
            ),
            (
                err("x".parse::<SchedFlag>().map(drop)),
                r#"unknown scheduler flag "x" (expected fallback or port)"#,
            ),
            (
                err("x".parse::<Forward>().map(drop)),
                r#"unknown forwarding method "x" (expected masq, dr or tunnel)"#,
            ),
            (
                err("x".parse::<TunnelType>().map(drop)),
                r#"unknown tunnel type "x" (expected ipip, gue or gre)"#,
            ),
            (
                err("x".parse::<TunnelCsum>().map(drop)),
                r#"unknown tunnel checksum "x" (expected none, csum or remcsum)"#,
            ),
            (
                err("x".parse::<CheckKind>().map(drop)),
                r#"unknown health check kind "x" (expected tcp, http, https, udp, dns or exec)"#,
            ),
            (
                err("x".parse::<FailureAction>().map(drop)),
                r#"unknown failure action "x" (expected quiesce or remove)"#,
            ),
            (
                err("x".parse::<WeightPolicy>().map(drop)),
                r#"unknown weight policy "x" (expected static, load or latency)"#,
            ),
            (
                err("x".parse::<SyncMode>().map(drop)),
                r#"unknown sync mode "x" (expected multicast or stateless)"#,
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert_eq!("SCTP".parse::<Protocol>(), Ok(Protocol::Sctp));
        assert!("WLC".parse::<Scheduler>().is_err());
        assert_eq!("nat".parse::<Forward>(), Ok(Forward::Masq));
        assert_eq!("gatewaying".parse::<Forward>(), Ok(Forward::Dr));
        assert_eq!("ipip".parse::<Forward>(), Ok(Forward::Tunnel));
        assert_eq!("nocsum".parse::<TunnelCsum>(), Ok(TunnelCsum::None));
        assert_eq!("".parse::<SyncMode>(), Ok(SyncMode::Multicast));
        assert_eq!(Scheduler::ALL.len(), 14);
        assert_eq!(Scheduler::Twos.to_string(), "twos");
        // Serde keeps the canonical names and refuses the aliases.
        assert_eq!(serde_json::to_string(&Forward::Masq).unwrap(), r#""masq""#);
        assert!(serde_json::from_str::<Forward>(r#""nat""#).is_err());
    }

    #[test]
    fn service_key_round_trips() {
        for s in [
            "tcp/10.0.0.1:80",
            "udp/[2001:db8::1]:53",
            "sctp/10.0.0.1:9",
            "fwmark/5",
            "fwmark6/7",
        ] {
            let k: ServiceKey = s.parse().unwrap();
            assert_eq!(k.to_string(), s);
        }
        assert!("tcp/10.0.0.1".parse::<ServiceKey>().is_err());
        assert!("icmp/10.0.0.1:1".parse::<ServiceKey>().is_err());
        assert!("tcp/2001:db8::1:80".parse::<ServiceKey>().is_err());
        assert!("fwmark/x".parse::<ServiceKey>().is_err());
    }

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("10.1.1.1:8080").unwrap(),
            ("10.1.1.1".parse().unwrap(), Some(8080))
        );
        assert_eq!(
            parse_endpoint("[::1]:80").unwrap(),
            ("::1".parse().unwrap(), Some(80))
        );
        assert_eq!(
            parse_endpoint("::1").unwrap(),
            ("::1".parse().unwrap(), None)
        );
        assert!(parse_endpoint("10.1.1.1:99999").is_err());
    }

    #[test]
    fn toml_round_trip_and_errors_have_positions() {
        let text = r#"
[[service]]
key = "tcp/10.0.0.1:80"
scheduler = "rr"
persistence = { timeout = 300, netmask = "255.255.255.0" }

[[service.reals]]
address = "10.0.1.1"
port = 80
weight = 5

[[vip_group]]
name = "web"
interface = "eth0"
addresses = ["10.0.0.1/24"]
"#;
        let c = Config::from_toml(text).unwrap();
        assert_eq!(c.services.len(), 1);
        let again = Config::from_toml(&c.to_toml()).unwrap();
        assert_eq!(c, again);

        let err = Config::from_toml("[[service]]\nkey = \"tcp/10.0.0.1:80\"\nschedulr = \"rr\"\n")
            .unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("schedulr"), "{err}");
    }
}
