//! The agent's TOML configuration: parsing, defaults and validation, with errors that name the
//! field and the offending value.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::setup::Mode;

/// In its own directory, so the systemd unit's RuntimeDirectory= can hand it to the agent's user.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/realserver-agent/agent.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/realserver-agent";
pub const DEFAULT_INTERVAL_MS: u64 = 1000;
/// Directors reject reports that arrive less than 100 ms apart; 200 ms leaves room for jitter.
pub const INTERVAL_RANGE: RangeInclusive<u64> = 200..=60_000;
/// Probe timeout when `timeout_ms` is not given (capped at the interval).
pub const DEFAULT_PROBE_TIMEOUT_MS: u64 = 1000;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    name: Option<String>,
    #[serde(default)]
    directors: Vec<String>,
    addresses: Option<Vec<String>>,
    interval_ms: Option<u64>,
    #[serde(default)]
    ports: Vec<u16>,
    #[serde(default)]
    probe: Vec<RawProbe>,
    control_socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    setup: Option<RawSetup>,
    metrics: Option<RawMetrics>,
    tls: Option<lvs_proto::tls::TlsFiles>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawProbe {
    kind: ProbeKind,
    port: u16,
    path: Option<String>,
    host: Option<String>,
    address: Option<String>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    mode: Mode,
    #[serde(default)]
    vips: Vec<String>,
}

#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProbeKind {
    Tcp,
    Http,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Tcp => "tcp",
            ProbeKind::Http => "http",
        }
    }
}

/// A probe of the local application, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    pub kind: ProbeKind,
    pub address: IpAddr,
    pub port: u16,
    /// HTTP only: request path and Host header.
    pub path: String,
    pub host: String,
    pub timeout: Duration,
}

/// The `[setup]` section: how `realserver-agent setup` prepares this host.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupSpec {
    pub mode: Mode,
    pub vips: Vec<IpAddr>,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    /// Director API addresses, "HOST:PORT".
    pub directors: Vec<String>,
    /// The RIPs to report; `None` = discover the host's global addresses.
    pub addresses: Option<Vec<IpAddr>>,
    pub interval: Duration,
    pub ports: Vec<u16>,
    pub probes: Vec<ProbeSpec>,
    pub control_socket: PathBuf,
    pub state_dir: PathBuf,
    pub setup: Option<SetupSpec>,
    /// Where `/metrics` is served (`[metrics] listen`); none when absent.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// mTLS to the directors: the cluster CA and this agent's certificate (bound to its
    /// real-server addresses) and key. Without it `run` needs `--insecure`.
    pub tls: Option<lvs_proto::tls::TlsFiles>,
}

impl Config {
    /// Reads and validates `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        parse(&text, system_hostname).map_err(|e| anyhow::anyhow!("config {}: {e}", path.display()))
    }

    /// The key material `run` dials directors with, or plaintext when `insecure`; errors name
    /// the `[tls]` key and file.
    pub fn transport(&self, insecure: bool) -> Result<Option<lvs_proto::tls::Tls>, ConfigError> {
        match (&self.tls, insecure) {
            (Some(_), true) => Err(ConfigError::InsecureWithTls),
            (Some(f), false) => Ok(Some(f.load()?)),
            (None, true) => Ok(None),
            (None, false) => Err(ConfigError::NoTls),
        }
    }

    /// `run` needs directors to report to.
    pub fn require_directors(&self) -> Result<(), ConfigError> {
        if self.directors.is_empty() {
            return Err(ConfigError::NoDirectors);
        }
        Ok(())
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval.as_millis() as u64
    }

    /// The VIPs of `[setup]`, never reported as real-server addresses.
    pub fn vips(&self) -> Vec<IpAddr> {
        self.setup
            .as_ref()
            .map(|s| s.vips.clone())
            .unwrap_or_default()
    }
}

/// The kernel's host name (of this UTS namespace).
pub fn system_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// A configuration the agent refuses. Messages name the key and, where there is one, the value
/// as written (`directors[0] = "10.0.0.1": expected HOST:PORT ...`).
/// The cause is part of each message (callers and tests compare the text), so it is kept as a
/// plain field rather than a `source`: error-chain printers would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not TOML, or not the shape of the config (unknown key, wrong type, unknown enum value).
    #[error("{0}")]
    Syntax(String),
    #[error("name = {value:?}: {error}")]
    Name { value: String, error: NameError },
    #[error("name: not set and the host name is unknown")]
    NoHostName,
    #[error("name (from the host name {value:?}): {error}")]
    HostName { value: String, error: NameError },
    #[error("directors[{index}] = {value:?}: {error}")]
    Director {
        index: usize,
        value: String,
        error: DirectorError,
    },
    #[error("setup.vips[{index}] = {value:?}: {error}")]
    Vip {
        index: usize,
        value: String,
        error: VipError,
    },
    /// Any other key with a rejected value: `key` names it with the value, `reason` says why.
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
    #[error("addresses: empty; leave it out to report the host's global addresses")]
    NoAddresses,
    #[error("directors: at least one director API address (\"HOST:PORT\") is required")]
    NoDirectors,
    #[error("--insecure: the config has a [tls] section; remove one of the two")]
    InsecureWithTls,
    #[error(
        "tls: no [tls] section (ca, cert, key; see `lvsctl pki issue agent`); pass \
         --insecure to report in plaintext to directors started with --insecure"
    )]
    NoTls,
    #[error(transparent)]
    Tls(#[from] lvs_proto::tls::TlsError),
}

impl ConfigError {
    fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// An agent name the directors would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("must be 1 to 64 characters")]
    Length,
    #[error("may only hold letters, digits, '.', '-' and '_'")]
    Characters,
}

/// A director API address that is not "HOST:PORT".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectorError {
    #[error("only http:// is supported")]
    Scheme,
    #[error("expected HOST:PORT, e.g. \"10.0.0.1:7000\"")]
    NotHostPort,
    #[error("expected HOST:PORT with a port 1..=65535")]
    Port,
    #[error("unbalanced '[' in the host")]
    UnbalancedBracket,
    #[error("not an IPv6 address inside [ ]")]
    NotIpv6,
    #[error("an IPv6 host needs brackets: \"[2001:db8::1]:7000\"")]
    Ipv6NeedsBrackets,
}

/// A VIP that is not a single unicast address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VipError {
    #[error("not an IP address")]
    Address,
    /// A prefix other than the host prefix; `host_len` is 32 or 128.
    #[error("a VIP is a single address: give no prefix or /{host_len}")]
    Prefix { host_len: &'static str },
    /// Unspecified, multicast or loopback.
    #[error("not a unicast address")]
    NotUnicast,
}

/// Parses and validates a configuration; `hostname` supplies the default `name`.
pub fn parse(text: &str, hostname: impl FnOnce() -> Option<String>) -> Result<Config, ConfigError> {
    let raw: RawConfig =
        toml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string().trim().to_string()))?;
    let name = agent_name(raw.name, hostname)?;
    let directors = directors(&raw.directors)?;
    let interval_ms = raw.interval_ms.unwrap_or(DEFAULT_INTERVAL_MS);
    if !INTERVAL_RANGE.contains(&interval_ms) {
        return Err(ConfigError::invalid(
            format!("interval_ms = {interval_ms}"),
            format!(
                "must be between {} and {}",
                INTERVAL_RANGE.start(),
                INTERVAL_RANGE.end()
            ),
        ));
    }
    let setup = raw.setup.map(setup_section).transpose()?;
    let addresses = raw
        .addresses
        .map(|list| addresses(&list, setup.as_ref()))
        .transpose()?;
    ports(&raw.ports)?;
    let metrics_listen = raw
        .metrics
        .and_then(|m| m.listen)
        .map(|v| metrics_listen(&v))
        .transpose()?;
    let probes = raw
        .probe
        .into_iter()
        .enumerate()
        .map(|(i, p)| validate_probe(i, p, interval_ms))
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Config {
        name,
        directors,
        addresses,
        interval: Duration::from_millis(interval_ms),
        ports: raw.ports,
        probes,
        control_socket: raw
            .control_socket
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONTROL_SOCKET)),
        state_dir: raw
            .state_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        setup,
        metrics_listen,
        tls: raw.tls,
    })
}

/// `name`, or the host name when it is not set.
fn agent_name(
    name: Option<String>,
    hostname: impl FnOnce() -> Option<String>,
) -> Result<String, ConfigError> {
    match name {
        Some(n) => {
            validate_name(&n).map_err(|error| ConfigError::Name {
                value: n.clone(),
                error,
            })?;
            Ok(n)
        }
        None => {
            let h = hostname().ok_or(ConfigError::NoHostName)?;
            validate_name(&h).map_err(|error| ConfigError::HostName {
                value: h.clone(),
                error,
            })?;
            Ok(h)
        }
    }
}

/// `directors`, normalised, each at most once.
fn directors(list: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut directors = Vec::new();
    for (i, d) in list.iter().enumerate() {
        let a = parse_director(d).map_err(|error| ConfigError::Director {
            index: i,
            value: d.clone(),
            error,
        })?;
        if directors.contains(&a) {
            return Err(ConfigError::invalid(
                format!("directors[{i}] = {d:?}"),
                "listed twice",
            ));
        }
        directors.push(a);
    }
    Ok(directors)
}

/// `[setup]`: the mode and its VIPs, each at most once.
fn setup_section(s: RawSetup) -> Result<SetupSpec, ConfigError> {
    let mut vips = Vec::new();
    for (i, v) in s.vips.iter().enumerate() {
        let a = parse_vip(v).map_err(|error| ConfigError::Vip {
            index: i,
            value: v.clone(),
            error,
        })?;
        if vips.contains(&a) {
            return Err(ConfigError::invalid(
                format!("setup.vips[{i}] = {v:?}"),
                "listed twice",
            ));
        }
        vips.push(a);
    }
    Ok(SetupSpec { mode: s.mode, vips })
}

/// `addresses`: unicast RIPs, each at most once, none of them a VIP of `[setup]`.
fn addresses(list: &[String], setup: Option<&SetupSpec>) -> Result<Vec<IpAddr>, ConfigError> {
    let mut out = Vec::new();
    for (i, a) in list.iter().enumerate() {
        let key = || format!("addresses[{i}] = {a:?}");
        let ip: IpAddr = a
            .parse()
            .map_err(|_| ConfigError::invalid(key(), "not an IP address"))?;
        if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
            return Err(ConfigError::invalid(
                key(),
                "not a unicast address of this host",
            ));
        }
        if out.contains(&ip) {
            return Err(ConfigError::invalid(key(), "listed twice"));
        }
        if setup.is_some_and(|s| s.vips.contains(&ip)) {
            return Err(ConfigError::invalid(
                key(),
                "is a VIP of [setup]; list the real-server addresses (RIPs) the directors \
                 forward to",
            ));
        }
        out.push(ip);
    }
    if out.is_empty() {
        return Err(ConfigError::NoAddresses);
    }
    Ok(out)
}

/// `ports`: nonzero, each at most once.
fn ports(list: &[u16]) -> Result<(), ConfigError> {
    let mut seen = BTreeSet::new();
    for (i, p) in list.iter().enumerate() {
        if *p == 0 {
            return Err(ConfigError::invalid(
                format!("ports[{i}] = 0"),
                "not a port",
            ));
        }
        if !seen.insert(*p) {
            return Err(ConfigError::invalid(
                format!("ports[{i}] = {p}"),
                "listed twice",
            ));
        }
    }
    Ok(())
}

/// `[metrics] listen`: a numeric socket address with a fixed port.
fn metrics_listen(v: &str) -> Result<std::net::SocketAddr, ConfigError> {
    let key = || format!("metrics.listen = {v:?}");
    let a: std::net::SocketAddr = v
        .parse()
        .map_err(|_| ConfigError::invalid(key(), "not HOST:PORT with a numeric IP address"))?;
    if a.port() == 0 {
        return Err(ConfigError::invalid(key(), "port 0; give a fixed port"));
    }
    Ok(a)
}

fn validate_probe(i: usize, p: RawProbe, interval_ms: u64) -> Result<ProbeSpec, ConfigError> {
    let f = |field: &str| format!("probe[{i}].{field}");
    if p.port == 0 {
        return Err(ConfigError::invalid(
            format!("{} = 0", f("port")),
            "not a port",
        ));
    }
    let timeout_ms = p
        .timeout_ms
        .unwrap_or(DEFAULT_PROBE_TIMEOUT_MS.min(interval_ms));
    // A probe must finish within the interval so every report carries a fresh result.
    if timeout_ms == 0 || timeout_ms > interval_ms {
        return Err(ConfigError::invalid(
            format!("{} = {timeout_ms}", f("timeout_ms")),
            format!("must be between 1 and interval_ms ({interval_ms})"),
        ));
    }
    let address = match &p.address {
        Some(a) => a.parse::<IpAddr>().map_err(|_| {
            ConfigError::invalid(format!("{} = {a:?}", f("address")), "not an IP address")
        })?,
        None => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    if p.kind == ProbeKind::Tcp {
        for (name, v) in [("path", &p.path), ("host", &p.host)] {
            if let Some(v) = v {
                return Err(ConfigError::invalid(
                    format!("{} = {v:?}", f(name)),
                    format!("only http probes have a {name}"),
                ));
            }
        }
    }
    let path = p.path.unwrap_or_else(|| "/".into());
    if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            format!("{} = {path:?}", f("path")),
            "must start with '/' and contain no spaces",
        ));
    }
    let host = p.host.unwrap_or_else(|| match address {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    });
    if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::invalid(
            format!("{} = {host:?}", f("host")),
            "not a host name",
        ));
    }
    Ok(ProbeSpec {
        kind: p.kind,
        address,
        port: p.port,
        path,
        host,
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// The directors' rule for agent names.
fn validate_name(n: &str) -> Result<(), NameError> {
    if n.is_empty() || n.len() > 64 {
        return Err(NameError::Length);
    }
    if !n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
    {
        return Err(NameError::Characters);
    }
    Ok(())
}

/// Normalises a director API address: "HOST:PORT" or "[IPV6]:PORT", optionally prefixed with
/// "http://". Also used for the leader hints directors send.
pub fn parse_director(s: &str) -> Result<String, DirectorError> {
    let rest = s.strip_prefix("http://").unwrap_or(s);
    if rest.contains("://") {
        return Err(DirectorError::Scheme);
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').ok_or(DirectorError::NotHostPort)?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or(DirectorError::Port)?;
    if host.is_empty() || host.contains('/') {
        return Err(DirectorError::NotHostPort);
    }
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or(DirectorError::UnbalancedBracket)?;
        inner
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| DirectorError::NotIpv6)?;
    } else if host.contains(':') {
        return Err(DirectorError::Ipv6NeedsBrackets);
    }
    Ok(format!("{host}:{port}"))
}

/// A VIP: an address, optionally with its host prefix ("/32", "/128").
pub fn parse_vip(s: &str) -> Result<IpAddr, VipError> {
    let (addr, plen) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| VipError::Address)?;
    let host_len = if ip.is_ipv4() { "32" } else { "128" };
    if let Some(p) = plen {
        if p != host_len {
            return Err(VipError::Prefix { host_len });
        }
    }
    if ip.is_unspecified() || ip.is_multicast() || ip.is_loopback() {
        return Err(VipError::NotUnicast);
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Option<String> {
        Some("rs-1".into())
    }

    fn err(text: &str) -> String {
        parse(text, host).unwrap_err().to_string()
    }

    #[test]
    fn defaults() {
        let c = parse("directors = [\"10.0.0.1:7000\"]", host).unwrap();
        assert_eq!(c.name, "rs-1");
        assert_eq!(c.directors, vec!["10.0.0.1:7000"]);
        assert_eq!(c.addresses, None);
        assert_eq!(c.interval, Duration::from_millis(1000));
        assert!(c.ports.is_empty() && c.probes.is_empty());
        assert_eq!(c.control_socket, Path::new(DEFAULT_CONTROL_SOCKET));
        assert_eq!(c.state_dir, Path::new(DEFAULT_STATE_DIR));
        assert!(c.setup.is_none());
        assert!(c.require_directors().is_ok());
        let c = parse("", host).unwrap();
        assert!(c
            .require_directors()
            .unwrap_err()
            .to_string()
            .contains("directors"));
        assert!(parse("", || None).unwrap_err().to_string().contains("name"));
    }

    #[test]
    fn full_example() {
        let c = parse(
            r#"
            name = "web-1"
            directors = ["10.0.0.1:7000", "http://[2001:db8::1]:7000/"]
            addresses = ["10.0.1.1", "2001:db8:1::1"]
            interval_ms = 200
            ports = [80, 443]
            control_socket = "/tmp/a.sock"
            state_dir = "/tmp/state"

            [[probe]]
            kind = "http"
            port = 80
            path = "/healthz"
            timeout_ms = 150

            [[probe]]
            kind = "tcp"
            port = 443
            address = "::1"

            [setup]
            mode = "tun"
            vips = ["10.0.0.10", "2001:db8::10/128"]
            "#,
            host,
        )
        .unwrap();
        assert_eq!(c.name, "web-1");
        assert_eq!(c.directors, vec!["10.0.0.1:7000", "[2001:db8::1]:7000"]);
        assert_eq!(c.addresses.as_ref().unwrap().len(), 2);
        assert_eq!(c.interval_ms(), 200);
        assert_eq!(c.ports, vec![80, 443]);
        assert_eq!(c.probes[0].kind, ProbeKind::Http);
        assert_eq!(c.probes[0].path, "/healthz");
        assert_eq!(c.probes[0].host, "127.0.0.1");
        assert_eq!(c.probes[0].timeout, Duration::from_millis(150));
        // The default timeout is capped at the interval.
        assert_eq!(c.probes[1].timeout, Duration::from_millis(200));
        assert_eq!(c.probes[1].host, "[::1]");
        let s = c.setup.unwrap();
        assert_eq!(s.mode, Mode::Tun);
        assert_eq!(s.vips.len(), 2);
    }

    #[test]
    fn example_config_is_valid() {
        let c = parse(include_str!("../agent.example.toml"), || None).unwrap();
        assert_eq!(c.name, "web-1");
        assert_eq!(c.directors.len(), 3);
        assert_eq!(c.probes.len(), 2);
        assert_eq!(c.setup.unwrap().vips.len(), 2);
    }

    #[test]
    fn errors_name_field_and_value() {
        let e = err("interval_ms = 50");
        assert!(e.contains("interval_ms = 50") && e.contains("200"), "{e}");
        let e = err("bogus = 1");
        assert!(e.contains("unknown field") && e.contains("bogus"), "{e}");
        let e = err("directors = [\"10.0.0.1\"]");
        assert!(e.contains("directors[0] = \"10.0.0.1\""), "{e}");
        let e = err("directors = [\"2001:db8::1:7000\"]");
        assert!(e.contains("brackets"), "{e}");
        let e = err("directors = [\"https://a:1\"]");
        assert!(e.contains("http://"), "{e}");
        let e = err("addresses = [\"10.0.0.300\"]");
        assert!(e.contains("addresses[0] = \"10.0.0.300\""), "{e}");
        let e = err("addresses = []");
        assert!(e.contains("addresses"), "{e}");
        let e = err("addresses = [\"10.0.0.10\"]\n[setup]\nmode = \"dr\"\nvips = [\"10.0.0.10\"]");
        assert!(e.contains("VIP"), "{e}");
        let e = err("ports = [80, 80]");
        assert!(e.contains("ports[1] = 80"), "{e}");
        let e = err("ports = [70000]");
        assert!(e.contains("70000"), "{e}");
        let e = err("[[probe]]\nkind = \"udp\"\nport = 1");
        assert!(e.contains("udp"), "{e}");
        let e = err("[[probe]]\nkind = \"tcp\"\nport = 1\npath = \"/x\"");
        assert!(e.contains("probe[0].path"), "{e}");
        let e = err("[[probe]]\nkind = \"http\"\nport = 1\npath = \"x\"");
        assert!(e.contains("probe[0].path = \"x\""), "{e}");
        let e = err("interval_ms = 500\n[[probe]]\nkind = \"tcp\"\nport = 1\ntimeout_ms = 600");
        assert!(e.contains("probe[0].timeout_ms = 600"), "{e}");
        let e = err("[setup]\nmode = \"nat\"");
        assert!(e.contains("nat"), "{e}");
        let e = err("[setup]\nmode = \"dr\"\nvips = [\"10.0.0.10/24\"]");
        assert!(e.contains("setup.vips[0] = \"10.0.0.10/24\""), "{e}");
        let e = err("[metrics]\nlisten = \"localhost:9101\"");
        assert!(e.contains("metrics.listen = \"localhost:9101\""), "{e}");
        let e = err("[metrics]\nlisten = \"127.0.0.1:0\"");
        assert!(e.contains("metrics.listen = \"127.0.0.1:0\""), "{e}");
        let e = err("[metrics]\nlisten = \"127.0.0.1:9101\"\nport = 1");
        assert!(e.contains("port"), "{e}");
        let c = parse("[metrics]\nlisten = \"[::1]:9101\"", host).unwrap();
        assert_eq!(c.metrics_listen, Some("[::1]:9101".parse().unwrap()));
        let e = err("name = \"a b\"");
        assert!(e.contains("name = \"a b\""), "{e}");
    }

    #[test]
    fn director_addresses() {
        assert_eq!(parse_director("a.example:7000").unwrap(), "a.example:7000");
        assert_eq!(parse_director("http://10.0.0.1:7").unwrap(), "10.0.0.1:7");
        assert!(parse_director("10.0.0.1:0").is_err());
        assert!(parse_director(":7000").is_err());
        assert!(parse_director("[::1:7000").is_err());
        assert!(parse_director("[zz]:7000").is_err());
    }

    #[test]
    fn vips() {
        assert_eq!(
            parse_vip("10.0.0.1/32").unwrap(),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert!(parse_vip("2001:db8::1/64").is_err());
        assert!(parse_vip("127.0.0.1").is_err());
        assert!(parse_vip("x").is_err());
    }
}
