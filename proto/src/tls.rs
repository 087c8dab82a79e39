//! Transport security shared by every gRPC server and client of the cluster: PEM files to rustls
//! configurations, client endpoints (`https://` with our CA and certificate, or plaintext when the
//! operator chose `--insecure`), and a TLS acceptor for servers that logs every refused handshake
//! with the peer's address, the identity its certificate claims and the reason.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::Deserialize;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tracing::warn;

/// The `[tls]` table of director and agent configs: PEM files of the cluster CA, this node's
/// certificate and its private key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Loaded and checked key material, ready to build server and client configurations.
#[derive(Clone)]
pub struct Tls {
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    server: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tls { .. }")
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Why key material or an endpoint could not be built. Every message names the `[tls]` key
/// (`tls.ca`, `tls.cert`, `tls.key`) and the file, or the address.
/// The cause is part of each message (callers and tests compare the text), so it is kept as a
/// plain field rather than a `source`: error-chain printers would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{field}: cannot read {}: {error}", path.display())]
    Read {
        field: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{field}: {} is not PEM certificates: {error}", path.display())]
    NotPemCertificates {
        field: &'static str,
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("{field}: {} holds no CERTIFICATE block", path.display())]
    NoCertificate { field: &'static str, path: PathBuf },
    /// The CA certificate is refused as a trust anchor.
    #[error("tls.ca: {}: {error}", path.display())]
    CaRejected { path: PathBuf, error: rustls::Error },
    /// No client verifier can be built from the CA.
    #[error("tls.ca: {}: {error}", path.display())]
    CaVerifier {
        path: PathBuf,
        error: rustls::server::VerifierBuilderError,
    },
    #[error("tls.key: {} is not a PEM private key: {error}", path.display())]
    NotPemKey {
        path: PathBuf,
        error: rustls::pki_types::pem::Error,
    },
    #[error("tls: {0}")]
    Protocols(rustls::Error),
    #[error("tls.key: {} does not fit tls.cert {}: {error}", key.display(), cert.display())]
    KeyMismatch {
        key: PathBuf,
        cert: PathBuf,
        error: rustls::Error,
    },
    #[error("bad address {addr:?}: {error}")]
    BadAddress {
        addr: String,
        error: tonic::transport::Error,
    },
    #[error("TLS for {addr}: {error}")]
    ClientConfig {
        addr: String,
        error: tonic::transport::Error,
    },
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        field,
        path: path.to_path_buf(),
        error,
    })
}

fn certs(
    field: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::NotPemCertificates {
            field,
            path: path.to_path_buf(),
            error,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            field,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

impl TlsFiles {
    /// Reads the three files and checks that they fit: the CA and certificate parse, the key
    /// parses and belongs to the certificate. Errors name the key (`ca`, `cert`, `key`) and file.
    pub fn load(&self) -> Result<Tls, TlsError> {
        let ca_pem = read("tls.ca", &self.ca)?;
        let cert_pem = read("tls.cert", &self.cert)?;
        let key_pem = read("tls.key", &self.key)?;
        let mut roots = RootCertStore::empty();
        for c in certs("tls.ca", &self.ca, &ca_pem)? {
            roots.add(c).map_err(|error| TlsError::CaRejected {
                path: self.ca.clone(),
                error,
            })?;
        }
        let chain = certs("tls.cert", &self.cert, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::NotPemKey {
            path: self.key.clone(),
            error,
        })?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|error| TlsError::CaVerifier {
                path: self.ca.clone(),
                error,
            })?;
        let mut server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Protocols)?
            .with_client_cert_verifier(Arc::new(LoggingVerifier(verifier)))
            .with_single_cert(chain, key)
            .map_err(|error| TlsError::KeyMismatch {
                key: self.key.clone(),
                cert: self.cert.clone(),
                error,
            })?;
        server.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Tls {
            ca_pem,
            cert_pem,
            key_pem,
            server: Arc::new(server),
        })
    }
}

/// The host part of `host:port` as a TLS server name: an IP address without brackets, or a DNS
/// name.
fn server_name(addr: &str) -> String {
    match addr.parse::<SocketAddr>() {
        Ok(a) => a.ip().to_string(),
        Err(_) => addr
            .rsplit_once(':')
            .map_or(addr, |(h, _)| h)
            .trim_matches(['[', ']'])
            .to_string(),
    }
}

impl Tls {
    /// Client configuration for a director at `addr`: trust only our CA, present our
    /// certificate, and expect the director's certificate to name the address dialled.
    pub fn client_config(&self, addr: &str) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(tonic::transport::Identity::from_pem(
                &self.cert_pem,
                &self.key_pem,
            ))
            .domain_name(server_name(addr))
    }

    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        self.server.clone()
    }
}

/// An endpoint for `addr` (`host:port`): `https://` with mTLS when `tls` is given, else
/// plaintext `http://`.
pub fn endpoint(addr: &str, tls: Option<&Tls>) -> Result<Endpoint, TlsError> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ep = Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(|error| {
        TlsError::BadAddress {
            addr: addr.to_string(),
            error,
        }
    })?;
    match tls {
        Some(t) => ep
            .tls_config(t.client_config(addr))
            .map_err(|error| TlsError::ClientConfig {
                addr: addr.to_string(),
                error,
            }),
        None => Ok(ep),
    }
}

tokio::task_local! {
    /// What the certificate of the connection being handshaken claims, for the rejection log.
    static CLAIMED: std::cell::RefCell<Option<String>>;
}

/// How a refused certificate introduces itself: its lvs identity, else its subject.
fn claimed(der: &[u8]) -> String {
    match cluster_core::auth::identity_from_der(der) {
        Ok(id) => id.to_string(),
        Err(_) => x509_parser::parse_x509_certificate(der)
            .map(|(_, c)| format!("subject {:?}", c.subject().to_string()))
            .unwrap_or_else(|_| "an unparsable certificate".into()),
    }
}

/// The standard chain check, remembering what a refused certificate claimed to be.
#[derive(Debug)]
struct LoggingVerifier(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for LoggingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }
    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let r = self.0.verify_client_cert(end_entity, intermediates, now);
        if r.is_err() {
            let who = claimed(end_entity);
            let _ = CLAIMED.try_with(|c| *c.borrow_mut() = Some(who));
        }
        r
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A bound on handshakes so a peer that connects and stalls holds nothing for long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` and completes TLS handshakes concurrently, yielding the
/// established streams for `Server::serve_with_incoming`. A refused handshake (no certificate,
/// another CA, expired...) is logged with `server`, the peer and what its certificate claimed.
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    server: &'static str,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of descriptors and the like: back off rather than spin.
                        warn!(server, error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = tx.closed() => return,
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(CLAIMED.scope(std::cell::RefCell::new(None), async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => {
                        let _ = tx.send(Ok(s)).await;
                    }
                    Ok(Err(e)) => {
                        let who = CLAIMED
                            .with(|c| c.borrow_mut().take())
                            .unwrap_or_else(|| "none".into());
                        warn!(server, %peer, identity = %who, error = %e, "TLS handshake refused");
                    }
                    Err(_) => warn!(server, %peer, "TLS handshake timed out"),
                }
            }));
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_ports_and_brackets() {
        assert_eq!(server_name("10.0.0.1:7000"), "10.0.0.1");
        assert_eq!(server_name("[2001:db8::1]:7000"), "2001:db8::1");
        assert_eq!(server_name("d1.example:7000"), "d1.example");
    }
}
