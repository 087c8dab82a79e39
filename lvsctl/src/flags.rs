//! Flag values: the types and parsers clap uses for single flag values (endpoints, firewall
//! marks, durations, VIP and group addresses, the output format). A leaf module: it uses no
//! other lvsctl module, so `cli`, `args`, `simulate` and the importers can all share it.

use std::net::IpAddr;
use std::time::Duration;

use clap::ValueEnum;
use ipnet::IpNet;

/// `ADDR`, `ADDR:PORT` or `[IPV6]:PORT`, port still optional.
pub type Endpoint = (IpAddr, Option<u16>);

/// `--output`: human tables or the JSON documents listed in `lvsctl --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// A flag value that cannot be read; the message names the value as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("{0:?} is not a number of seconds")]
    Seconds(String),
    #[error("{0:?} is not in 0..86400 seconds")]
    SecondsRange(String),
    #[error("--endpoints names no director (expected HOST:PORT,...)")]
    NoEndpoints,
    #[error("fwmark {0:?} is not a number in 0..=4294967295")]
    Fwmark(String),
    #[error("{0:?} is not an address with prefix (e.g. 192.0.2.10/24)")]
    Vip(String),
    #[error("{0:?} is not an IP address")]
    Address(String),
    /// The model's endpoint reader refused it, with its message.
    #[error("{0}")]
    Endpoint(String),
}

/// `-t`/`-u`/`-r ADDR[:PORT]`, read as the model reads endpoints.
pub fn parse_endpoint(s: &str) -> Result<Endpoint, FlagError> {
    cluster_core::model::parse_endpoint(s).map_err(|e| FlagError::Endpoint(e.to_string()))
}

/// `--timeout`: positive seconds; fractions allowed.
pub fn parse_secs(s: &str) -> Result<Duration, FlagError> {
    let v: f64 = s.trim().parse().map_err(|_| FlagError::Seconds(s.into()))?;
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(FlagError::SecondsRange(s.into()));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `--endpoints a:1,b:2`: order kept, blanks and duplicates dropped.
pub fn parse_endpoints(s: &str) -> Result<Vec<String>, FlagError> {
    let mut out: Vec<String> = Vec::new();
    for e in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !out.iter().any(|x| x == e) {
            out.push(e.to_string());
        }
    }
    if out.is_empty() {
        return Err(FlagError::NoEndpoints);
    }
    Ok(out)
}

/// Firewall marks as ipvsadm takes them: decimal or 0x-prefixed hex.
pub fn parse_fwmark(s: &str) -> Result<u32, FlagError> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse(),
    };
    v.map_err(|_| FlagError::Fwmark(s.into()))
}

/// `vip set` addresses: `ADDR/PREFIX`; a bare address gets a host prefix, as the server does.
pub fn parse_vip(a: &str) -> Result<IpNet, FlagError> {
    let t = a.trim();
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| FlagError::Vip(a.into()))
}

/// `sync set --group`.
pub fn parse_group(g: &str) -> Result<IpAddr, FlagError> {
    g.trim().parse().map_err(|_| FlagError::Address(g.into()))
}
