//! HTTP and HTTPS GET checks: status range and optional body text. HTTPS completes the TLS
//! handshake but accepts any certificate, like keepalived's SSL_GET (backends commonly use
//! self-signed ones).

use std::net::SocketAddr;
use std::sync::Arc;

use cluster_core::model::{fmt_endpoint, HealthCheck};
use cluster_core::validate::parse_status_range;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use cluster_core::health::ProbeResult;

use super::checker::{network, Checker, Target};
use super::common::{contains, tcp_connect, CheckError};

/// Most of a body searched for `body_contains`.
pub const MAX_BODY: usize = 64 * 1024;

const DEFAULT_STATUS: (u16, u16) = (200, 399);

/// Accepts any certificate but still checks the handshake signatures, so the server must hold
/// the key of the certificate it presents.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// HTTP checks (`tls` unset) and HTTPS checks; cheap to clone (the TLS client is shared).
#[derive(Clone)]
pub struct Http {
    tls: Option<TlsConnector>,
}

impl Http {
    pub fn plain() -> Http {
        Http { tls: None }
    }

    pub fn tls() -> Http {
        Http {
            tls: Some(connector()),
        }
    }
}

impl Checker for Http {
    async fn check(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        network(hc, t, get(self.tls.as_ref(), t.probe_addr(), hc)).await
    }
}

/// The TLS client of https checks (rustls with the ring provider).
pub fn connector() -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

/// The host part of a Host header value ("example.org:8443" -> "example.org", "[::1]:80" ->
/// "::1").
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split_once(']').map_or(rest, |(h, _)| h);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// GET over plain TCP (`tls` = None) or TLS.
async fn get(
    tls: Option<&TlsConnector>,
    addr: SocketAddr,
    hc: &HealthCheck,
) -> Result<String, CheckError> {
    let host = match &hc.host {
        Some(h) => h.clone(),
        None => fmt_endpoint(&addr.ip(), addr.port()),
    };
    let stream = tcp_connect(addr).await?;
    match tls {
        None => exchange(stream, &host, hc).await,
        Some(tls) => {
            // SNI carries the configured host name; without one (or for an IP) none is sent.
            let name = ServerName::try_from(host_name(&host).to_string())
                .unwrap_or_else(|_| ServerName::from(addr.ip()));
            let stream = tls.connect(name, stream).await.map_err(CheckError::Tls)?;
            exchange(stream, &host, hc).await
        }
    }
}

/// Aborts the connection task when the check ends (or is cancelled by its timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn exchange<IO>(io: IO, host: &str, hc: &HealthCheck) -> Result<String, CheckError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (lo, hi) = match &hc.expect_status {
        Some(s) => parse_status_range(s).map_err(CheckError::ExpectStatus)?,
        None => DEFAULT_STATUS,
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(CheckError::Http)?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        // Its errors also fail the request, which reports them.
        let _ = conn.await;
    }));
    let req = Request::get(hc.path.as_deref().unwrap_or("/"))
        .header(HOST, host)
        .header(
            USER_AGENT,
            concat!("lvs-director-health/", env!("CARGO_PKG_VERSION")),
        )
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(CheckError::Request)?;
    let resp = sender.send_request(req).await.map_err(CheckError::Http)?;
    let status = resp.status().as_u16();
    if !(lo..=hi).contains(&status) {
        return Err(CheckError::Status(status));
    }
    let Some(needle) = &hc.body_contains else {
        return Ok(format!("status {status}"));
    };
    let mut body = resp.into_body();
    let mut seen: Vec<u8> = Vec::new();
    while seen.len() < MAX_BODY {
        let Some(frame) = body.frame().await else {
            break;
        };
        let frame = frame.map_err(CheckError::Body)?;
        if let Some(data) = frame.data_ref() {
            let room = MAX_BODY - seen.len();
            seen.extend_from_slice(&data[..data.len().min(room)]);
            if contains(&seen, needle.as_bytes()) {
                return Ok(format!("status {status}"));
            }
        }
    }
    Err(CheckError::BodyLacks(needle.clone()))
}

#[cfg(test)]
mod tests {
    use super::super::probe::Prober;
    use super::*;
    use cluster_core::model::CheckKind;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio_rustls::TlsAcceptor;

    type Requests = Arc<Mutex<Vec<String>>>;

    fn target(addr: SocketAddr) -> Target {
        Target {
            service: "tcp/10.0.0.10:80".parse().unwrap(),
            address: addr.ip(),
            port: addr.port(),
            probe_port: addr.port(),
        }
    }

    fn check(kind: CheckKind, path: &str) -> HealthCheck {
        let mut hc = HealthCheck::new(kind);
        hc.timeout_ms = 1000;
        hc.path = Some(path.into());
        hc
    }

    /// Reads one request head and answers by path; `/hang` never answers.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, seen: Requests) {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !contains(&head, b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let path = head.split(' ').nth(1).unwrap_or("").to_string();
        seen.lock().unwrap().push(head);
        let (status, body) = match path.as_str() {
            "/" | "/ok" => ("200 OK", "all ok\n".to_string()),
            "/down" => ("503 Service Unavailable", "maintenance\n".to_string()),
            "/moved" => ("302 Found", String::new()),
            // The marker sits beyond the 64 KiB that are read.
            "/big" => ("200 OK", format!("{}MARK", "x".repeat(MAX_BODY))),
            "/hang" => {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                return;
            }
            _ => ("404 Not Found", String::new()),
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = s.write_all(resp.as_bytes()).await;
        let _ = s.shutdown().await;
    }

    async fn http_server() -> (SocketAddr, Requests) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Requests::default();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(serve(s, s2.clone()));
            }
        });
        (addr, seen)
    }

    /// HTTPS with a self-signed certificate generated here.
    async fn https_server() -> (SocketAddr, Requests) {
        let cert = rcgen::generate_simple_self_signed(vec!["backend.test".to_string()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Requests::default();
        let s2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                let seen = s2.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        serve(tls, seen).await;
                    }
                });
            }
        });
        (addr, seen)
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("example.org"), "example.org");
        assert_eq!(host_name("example.org:8443"), "example.org");
        assert_eq!(host_name("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(host_name("2001:db8::1"), "2001:db8::1");
    }

    #[tokio::test]
    async fn http_status_body_and_host() {
        let (addr, seen) = http_server().await;
        let p = Prober::default();
        let t = target(addr);

        let r = p.probe(&check(CheckKind::Http, "/ok"), &t).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, "status 200");
        assert!(seen.lock().unwrap()[0].contains(&format!("host: {addr}")));

        let r = p.probe(&check(CheckKind::Http, "/down"), &t).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "status 503");

        // 302 is within the default 200-399, not within an explicit 200.
        let mut hc = check(CheckKind::Http, "/moved");
        assert!(p.probe(&hc, &t).await.ok);
        hc.expect_status = Some("200".into());
        assert_eq!(p.probe(&hc, &t).await.detail, "status 302");
        let mut hc = check(CheckKind::Http, "/down");
        hc.expect_status = Some("500-599".into());
        assert!(p.probe(&hc, &t).await.ok);

        let mut hc = check(CheckKind::Http, "/ok");
        hc.body_contains = Some("ok".into());
        hc.host = Some("www.example.org".into());
        assert!(p.probe(&hc, &t).await.ok);
        assert!(seen
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .contains("host: www.example.org"));
        hc.body_contains = Some("nope".into());
        let r = p.probe(&hc, &t).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "body does not contain \"nope\"");

        let mut hc = check(CheckKind::Http, "/big");
        hc.body_contains = Some("MARK".into());
        assert_eq!(
            p.probe(&hc, &t).await.detail,
            "body does not contain \"MARK\""
        );

        let mut hc = check(CheckKind::Http, "/hang");
        hc.timeout_ms = 200;
        let r = p.probe(&hc, &t).await;
        assert!(!r.ok);
        assert_eq!(r.detail, "timed out after 200 ms");
    }

    #[tokio::test]
    async fn https_accepts_self_signed_but_needs_tls() {
        let (addr, seen) = https_server().await;
        let p = Prober::default();
        let mut hc = check(CheckKind::Https, "/ok");
        hc.body_contains = Some("all ok".into());
        hc.host = Some("backend.test".into());
        let r = p.probe(&hc, &target(addr)).await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.detail, "status 200");
        assert!(seen.lock().unwrap()[0].contains("host: backend.test"));

        // Without a host: no SNI, the address as Host.
        let r = p
            .probe(&check(CheckKind::Https, "/down"), &target(addr))
            .await;
        assert_eq!(r.detail, "status 503");

        // A plain HTTP server answers the ClientHello in clear text, like nginx does.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
                    .await;
            }
        });
        let r = p.probe(&check(CheckKind::Https, "/"), &target(plain)).await;
        assert!(!r.ok);
        assert!(r.detail.starts_with("tls: "), "{r:?}");

        // Nor does a server that accepts and says nothing.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held: Vec<TcpStream> = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let mut hc = check(CheckKind::Https, "/");
        hc.timeout_ms = 200;
        let r = p.probe(&hc, &target(silent)).await;
        assert_eq!(r.detail, "timed out after 200 ms");
        hold.abort();
    }
}
