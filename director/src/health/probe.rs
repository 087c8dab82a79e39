//! The prober: picks the checker for a check's kind and runs it. Exec checks share a bounded
//! number of slots; https checks share one TLS client.

use cluster_core::health::ProbeResult;
use cluster_core::model::{CheckKind, HealthCheck};

use super::checker::Checker;
pub use super::checker::Target;
use super::dns::Dns;
use super::exec::Exec;
use super::http::Http;
use super::tcp::Tcp;
use super::udp::Udp;

/// Exec checks that may run at once; more wait for a slot, so a flood of hanging commands
/// cannot exhaust the director's processes.
pub const EXEC_SLOTS: usize = 16;

/// Runs probes; cheap to clone (the TLS config and the exec slots are shared).
#[derive(Clone)]
pub struct Prober {
    http: Http,
    https: Http,
    exec: Exec,
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
            http: Http::plain(),
            https: Http::tls(),
            exec: Exec::new(exec_slots),
        }
    }

    /// Probes `t` as `hc` says. Never takes (much) longer than `hc.timeout_ms`, except that exec
    /// checks first wait for a free slot.
    pub async fn probe(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        match hc.kind {
            CheckKind::Tcp => Tcp.check(hc, t).await,
            CheckKind::Http => self.http.check(hc, t).await,
            CheckKind::Https => self.https.check(hc, t).await,
            CheckKind::Udp => Udp.check(hc, t).await,
            CheckKind::Dns => Dns.check(hc, t).await,
            CheckKind::Exec => self.exec.check(hc, t).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::model::ServiceKey;
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::rdata::A;
    use hickory_proto::rr::{RData, Record};
    use std::net::{Ipv4Addr, SocketAddr};
    use tokio::net::{TcpListener, UdpSocket};

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
