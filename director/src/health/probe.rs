//! One probe of one real server, by check kind, bounded by the check's timeout; tcp, udp and dns
//! live here, http(s) and exec in their own modules.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_core::health::ProbeResult;
use cluster_core::model::{CheckKind, HealthCheck, ServiceKey};
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio_rustls::TlsConnector;

use super::{exec, http};

/// Exec checks that may run at once; more wait for a slot, so a flood of hanging commands
/// cannot exhaust the director's processes.
pub const EXEC_SLOTS: usize = 16;

/// Largest UDP/DNS reply read.
const MAX_DATAGRAM: usize = 65_535;

/// What to probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub service: ServiceKey,
    /// The real server as configured.
    pub address: IpAddr,
    pub port: u16,
    /// `health_check.port`, or the real server's port.
    pub probe_port: u16,
}

impl Target {
    pub fn new(service: ServiceKey, address: IpAddr, port: u16, hc: &HealthCheck) -> Self {
        Target {
            service,
            address,
            port,
            probe_port: hc.port.unwrap_or(port),
        }
    }

    pub fn probe_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.probe_port)
    }
}

/// Runs probes; cheap to clone (the TLS config and the exec slots are shared).
#[derive(Clone)]
pub struct Prober {
    tls: TlsConnector,
    exec_slots: Arc<Semaphore>,
}

impl Default for Prober {
    fn default() -> Self {
        Prober::new(EXEC_SLOTS)
    }
}

impl Prober {
    /// A prober running at most `exec_slots` exec checks at once.
    pub fn new(exec_slots: usize) -> Self {
        Prober {
            tls: http::connector(),
            exec_slots: Arc::new(Semaphore::new(exec_slots.max(1))),
        }
    }

    /// Probes `t` as `hc` says. Never takes (much) longer than `hc.timeout_ms`, except that exec
    /// checks first wait for a free slot.
    pub async fn probe(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        let limit = Duration::from_millis(u64::from(hc.timeout_ms));
        if hc.kind == CheckKind::Exec {
            let Ok(_slot) = self.exec_slots.acquire().await else {
                return ProbeResult::fail("exec slots closed", 0);
            };
            return exec::run(hc, t, limit).await;
        }
        let start = Instant::now();
        let out = if t.probe_port == 0 {
            Err("no port to probe (set health_check.port)".to_string())
        } else {
            match tokio::time::timeout(limit, self.network(hc, t)).await {
                Ok(r) => r,
                Err(_) => Err(timed_out(hc.timeout_ms)),
            }
        };
        let us = elapsed_us(start);
        match out {
            Ok(d) => ProbeResult::ok(d, us),
            Err(d) => ProbeResult::fail(d, us),
        }
    }

    async fn network(&self, hc: &HealthCheck, t: &Target) -> Result<String, String> {
        let addr = t.probe_addr();
        match hc.kind {
            CheckKind::Tcp => tcp(addr).await,
            CheckKind::Http => http::get(None, addr, hc).await,
            CheckKind::Https => http::get(Some(&self.tls), addr, hc).await,
            CheckKind::Udp => {
                let send = hc.send.as_deref().unwrap_or_default();
                udp(addr, send.as_bytes(), hc.expect.as_deref()).await
            }
            CheckKind::Dns => {
                let name = hc.query_name.as_deref().unwrap_or_default();
                dns(addr, name, hc.query_type.as_deref().unwrap_or("A")).await
            }
            CheckKind::Exec => unreachable!("exec checks do not use the network path"),
        }
    }
}

pub(super) fn timed_out(ms: u32) -> String {
    format!("timed out after {ms} ms")
}

pub(super) fn elapsed_us(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// "connection refused" rather than "Connection refused (os error 111)".
pub(super) fn io_msg(e: &std::io::Error) -> String {
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

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The unspecified address of `addr`'s family, any port: checks leave with default routing.
fn local_any(addr: &SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    }
}

pub(super) async fn tcp_connect(addr: SocketAddr) -> Result<TcpStream, String> {
    TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {}", io_msg(&e)))
}

async fn tcp(addr: SocketAddr) -> Result<String, String> {
    tcp_connect(addr).await?;
    Ok("connected".into())
}

/// A connected UDP socket, so an ICMP port unreachable surfaces as a refused `recv`.
async fn udp_socket(addr: SocketAddr) -> Result<UdpSocket, String> {
    let sock = UdpSocket::bind(local_any(&addr))
        .await
        .map_err(|e| format!("bind: {}", io_msg(&e)))?;
    sock.connect(addr)
        .await
        .map_err(|e| format!("connect: {}", io_msg(&e)))?;
    Ok(sock)
}

async fn udp(addr: SocketAddr, send: &[u8], expect: Option<&str>) -> Result<String, String> {
    let sock = udp_socket(addr).await?;
    sock.send(send)
        .await
        .map_err(|e| format!("send: {}", io_msg(&e)))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = sock
        .recv(&mut buf)
        .await
        .map_err(|e| format!("recv: {}", io_msg(&e)))?;
    match expect {
        Some(x) if !contains(&buf[..n], x.as_bytes()) => {
            Err(format!("reply does not contain {x:?}"))
        }
        _ => Ok(format!("reply of {n} bytes")),
    }
}

fn rcode_name(c: ResponseCode) -> String {
    match u16::from(c) {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("rcode {n}"),
    }
}

async fn dns(addr: SocketAddr, name: &str, qtype: &str) -> Result<String, String> {
    let qname = Name::from_ascii(name).map_err(|e| format!("query name {name:?}: {e}"))?;
    let rtype: RecordType = qtype
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| format!("query type {qtype:?} is not a record type"))?;
    let mut msg = Message::query();
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(qname, rtype));
    let id = msg.metadata.id;
    let wire = msg.to_vec().map_err(|e| format!("encode query: {e}"))?;

    let sock = udp_socket(addr).await?;
    sock.send(&wire)
        .await
        .map_err(|e| format!("send: {}", io_msg(&e)))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = sock
            .recv(&mut buf)
            .await
            .map_err(|e| format!("recv: {}", io_msg(&e)))?;
        // Stray or garbled datagrams are skipped; the timeout bounds the wait for ours.
        let Ok(reply) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        if reply.metadata.id != id || reply.metadata.message_type != MessageType::Response {
            continue;
        }
        let code = reply.metadata.response_code;
        return if code == ResponseCode::NoError {
            Ok(format!("NOERROR, {} answers", reply.answers.len()))
        } else {
            Err(rcode_name(code))
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    use tokio::net::TcpListener;

    fn key() -> ServiceKey {
        "tcp/10.0.0.10:80".parse().unwrap()
    }

    fn target(addr: SocketAddr) -> Target {
        Target {
            service: key(),
            address: addr.ip(),
            port: addr.port(),
            probe_port: addr.port(),
        }
    }

    fn check(kind: CheckKind, timeout_ms: u32) -> HealthCheck {
        let mut hc = HealthCheck::new(kind);
        hc.timeout_ms = timeout_ms;
        hc
    }

    /// A port on 127.0.0.1 that nothing listens on (TCP and UDP).
    async fn closed_port() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        addr
    }

    #[test]
    fn io_messages_are_short() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(io_msg(&e), "connection refused");
        assert!(contains(b"hello world", b"o w"));
        assert!(!contains(b"hello", b"world"));
        assert!(contains(b"", b""));
    }

    #[tokio::test]
    async fn tcp_connects_or_reports_refused() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let p = Prober::default();
        let hc = check(CheckKind::Tcp, 500);
        let r = p.probe(&hc, &target(l.local_addr().unwrap())).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, "connected");

        let r = p.probe(&hc, &target(closed_port().await)).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "connect: connection refused");
    }

    #[tokio::test]
    async fn health_check_port_overrides_the_real_port() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut hc = check(CheckKind::Tcp, 500);
        hc.port = Some(l.local_addr().unwrap().port());
        let t = Target::new(key(), "127.0.0.1".parse().unwrap(), 1, &hc);
        assert_eq!(t.probe_port, hc.port.unwrap());
        assert!(Prober::default().probe(&hc, &t).await.ok);

        let mut zero = target("127.0.0.1:0".parse().unwrap());
        zero.probe_port = 0;
        let r = Prober::default().probe(&hc, &zero).await;
        assert!(r.detail.starts_with("no port to probe"), "{r:?}");
    }

    /// Replies "pong <payload>" to every datagram unless told to stay silent.
    async fn udp_server(silent: bool) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                if !silent {
                    let mut reply = b"pong ".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    let _ = s.send_to(&reply, from).await;
                }
            }
        });
        addr
    }

    #[tokio::test]
    async fn udp_expects_a_reply() {
        let p = Prober::default();
        let addr = udp_server(false).await;
        let mut hc = check(CheckKind::Udp, 500);
        hc.send = Some("ping".into());
        let r = p.probe(&hc, &target(addr)).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, "reply of 9 bytes");

        hc.expect = Some("pong ping".into());
        assert!(p.probe(&hc, &target(addr)).await.ok);
        hc.expect = Some("nope".into());
        let r = p.probe(&hc, &target(addr)).await;
        assert_eq!(r.detail, "reply does not contain \"nope\"");
        assert!(!r.ok);

        // ICMP port unreachable.
        hc.expect = None;
        let r = p.probe(&hc, &target(closed_port().await)).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "recv: connection refused");

        hc.timeout_ms = 150;
        let r = p.probe(&hc, &target(udp_server(true).await)).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "timed out after 150 ms");
        assert!(r.latency_us >= 150_000, "{r:?}");
    }

    /// Answers `ok.example.` with an A record and anything else with NXDOMAIN; sends a stray
    /// datagram with a wrong id first to prove it is skipped.
    async fn dns_server() -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let q = Message::from_vec(&buf[..n]).unwrap();
                let query = q.queries[0].clone();
                let mut stray =
                    Message::response(q.metadata.id.wrapping_add(1), q.metadata.op_code);
                stray.metadata.response_code = ResponseCode::ServFail;
                let _ = s.send_to(&stray.to_vec().unwrap(), from).await;

                let mut resp = Message::response(q.metadata.id, q.metadata.op_code);
                resp.add_query(query.clone());
                if query.name().to_ascii() == "ok.example." {
                    resp.add_answer(Record::from_rdata(
                        query.name().clone(),
                        60,
                        RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                    ));
                } else {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                }
                let _ = s.send_to(&resp.to_vec().unwrap(), from).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn dns_needs_noerror() {
        let p = Prober::default();
        let addr = dns_server().await;
        let mut hc = check(CheckKind::Dns, 500);
        hc.query_name = Some("ok.example.".into());
        let r = p.probe(&hc, &target(addr)).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, "NOERROR, 1 answers");

        hc.query_name = Some("missing.example".into());
        hc.query_type = Some("AAAA".into());
        let r = p.probe(&hc, &target(addr)).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "NXDOMAIN");

        let r = p.probe(&hc, &target(closed_port().await)).await;
        assert_eq!(r.detail, "recv: connection refused");
    }
}
