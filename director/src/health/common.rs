//! Helpers every checker shares: the typed failure of one probe (whose text is the detail the
//! API shows), timing, short I/O error texts, substring search and socket setup. A leaf: it
//! uses no other health module.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use tokio::net::{TcpStream, UdpSocket};

/// Why a probe found its real server unhealthy (or could not probe it).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("no port to probe (set health_check.port)")]
    NoPort,
    #[error("timed out after {0} ms")]
    TimedOut(u32),
    /// A socket or process step (`connect`, `bind`, `send`, `recv`, `wait`) failed.
    #[error("{op}: {}", io_msg(source))]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
    #[error("reply does not contain {0:?}")]
    ReplyLacks(String),
    #[error("query name {name:?}: {source}")]
    QueryName {
        name: String,
        source: hickory_proto::ProtoError,
    },
    #[error("query type {0:?} is not a record type")]
    QueryType(String),
    #[error("encode query: {0}")]
    EncodeQuery(hickory_proto::ProtoError),
    /// The DNS server answered with an error code (`NXDOMAIN`, `SERVFAIL`, ...).
    #[error("{0}")]
    DnsRcode(String),
    #[error("tls: {0}")]
    Tls(std::io::Error),
    #[error("expect_status: {0}")]
    ExpectStatus(cluster_core::error::StatusRangeError),
    #[error("http: {0}")]
    Http(hyper::Error),
    #[error("request: {0}")]
    Request(hyper::http::Error),
    #[error("status {0}")]
    Status(u16),
    #[error("body: {0}")]
    Body(hyper::Error),
    #[error("body does not contain {0:?}")]
    BodyLacks(String),
    #[error("no command")]
    NoCommand,
    #[error("start {program}: {}", io_msg(source))]
    Start {
        program: String,
        source: std::io::Error,
    },
    #[error("exec slots closed")]
    SlotsClosed,
}

impl CheckError {
    /// A failed socket or process step.
    pub fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> CheckError {
        move |source| CheckError::Io { op, source }
    }
}

pub fn elapsed_us(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// "connection refused" rather than "Connection refused (os error 111)".
pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => &s[..i],
        None => &s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The unspecified address of `addr`'s family, any port: checks leave with default routing.
fn local_any(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

pub async fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, CheckError> {
    TcpStream::connect(addr)
        .await
        .map_err(CheckError::io("connect"))
}

/// A connected UDP socket, so an ICMP port unreachable surfaces as a refused `recv`.
pub async fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, CheckError> {
    let sock = UdpSocket::bind(local_any(&addr))
        .await
        .map_err(CheckError::io("bind"))?;
    sock.connect(addr)
        .await
        .map_err(CheckError::io("connect"))?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_messages_are_short() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_msg(&e), "connection refused");
        assert!(contains(b"hello world", b"o w"));
        assert!(!contains(b"hello", b"world"));
        assert!(contains(b"", b""));
    }
}
