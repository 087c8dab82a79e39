//! Probes of the local application: TCP connect time, or HTTP GET time to the end of the
//! response (2xx/3xx = ok), each bounded by its timeout.

use std::net::SocketAddr;
use std::time::Instant;

use lvs_proto::v1 as pb;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{ProbeKind, ProbeSpec};

/// Why a probe failed; its text is the `error` of the probe result the director sees.
/// The cause is part of each message (callers and tests compare the text), so it is kept as a
/// plain field rather than a `source`: error-chain printers would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("timed out after {} ms", .0.as_millis())]
    Timeout(std::time::Duration),
    #[error("connect {addr}: {error}")]
    Connect {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("sending the request: {0}")]
    Send(std::io::Error),
    #[error("reading the response: {0}")]
    Read(std::io::Error),
    #[error("connection closed without a response")]
    NoResponse,
    #[error("not an HTTP response")]
    NotHttp,
    /// A status outside 2xx/3xx.
    #[error("status {0}")]
    Status(u16),
}

/// Responses are read to their end, but no further than this.
const MAX_RESPONSE: usize = 1 << 20;

/// Runs one probe; never fails (a failure is a result with `ok = false`).
pub async fn run(spec: &ProbeSpec) -> pb::Probe {
    let start = Instant::now();
    let outcome = match tokio::time::timeout(spec.timeout, attempt(spec)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(spec.timeout)),
    };
    let (ok, latency_us, error) = match outcome {
        Ok(()) => (
            true,
            (start.elapsed().as_micros() as u64).max(1),
            String::new(),
        ),
        Err(e) => (false, 0, e.to_string()),
    };
    pb::Probe {
        port: spec.port as u32,
        kind: spec.kind.as_str().into(),
        ok,
        latency_us,
        error,
    }
}

async fn attempt(spec: &ProbeSpec) -> Result<(), ProbeError> {
    let addr = SocketAddr::new(spec.address, spec.port);
    let mut s = TcpStream::connect(addr)
        .await
        .map_err(|error| ProbeError::Connect { addr, error })?;
    if spec.kind == ProbeKind::Tcp {
        return Ok(());
    }
    s.set_nodelay(true).ok();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: realserver-agent\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        spec.path, spec.host
    );
    s.write_all(req.as_bytes())
        .await
        .map_err(ProbeError::Send)?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await.map_err(ProbeError::Read)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if response_complete(&buf) || buf.len() >= MAX_RESPONSE {
            break;
        }
    }
    let status = http_status(&buf).ok_or(if buf.is_empty() {
        ProbeError::NoResponse
    } else {
        ProbeError::NotHttp
    })?;
    if (200..400).contains(&status) {
        Ok(())
    } else {
        Err(ProbeError::Status(status))
    }
}

/// The status code of an HTTP/1.x response's status line.
pub fn http_status(buf: &[u8]) -> Option<u16> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&buf[..line_end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// Whether `buf` holds a whole response by its framing (Content-Length, chunked, or a status
/// without a body); without framing the response ends when the server closes.
pub fn response_complete(buf: &[u8]) -> bool {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let body = &buf[head_end + 4..];
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return false;
    };
    if matches!(http_status(buf), Some(s) if s == 204 || s == 304 || (100..200).contains(&s)) {
        return true;
    }
    for line in head.split("\r\n").skip(1) {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            return v.parse::<usize>().is_ok_and(|n| body.len() >= n);
        }
        if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        {
            return body.starts_with(b"0\r\n\r\n") || body.ends_with(b"\r\n0\r\n\r\n");
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    #[test]
    fn status_line() {
        assert_eq!(http_status(b"HTTP/1.1 200 OK\r\n"), Some(200));
        assert_eq!(
            http_status(b"HTTP/1.0 503 Service Unavailable\r\nX: y\r\n"),
            Some(503)
        );
        assert_eq!(http_status(b"HTTP/1.1 204\r\n"), Some(204));
        assert_eq!(http_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(http_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(http_status(b"HTTP/1.1 2000 OK\r\n"), None);
    }

    #[test]
    fn framing() {
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc"
        ));
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabcde"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        ));
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        ));
        assert!(response_complete(
            b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n"
        ));
        // No framing: read until the server closes.
        assert!(!response_complete(b"HTTP/1.0 200 OK\r\n\r\nbody"));
    }

    fn spec(kind: ProbeKind, port: u16) -> ProbeSpec {
        ProbeSpec {
            kind,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            path: "/health".into(),
            host: "localhost".into(),
            timeout: Duration::from_millis(500),
        }
    }

    /// A one-shot HTTP server answering with `response`; returns its port.
    async fn serve(response: &'static [u8]) -> u16 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(response).await;
                // Keep the connection open: the probe must stop at the framing.
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        });
        port
    }

    #[tokio::test]
    async fn probes() {
        let ok = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let r = run(&spec(ProbeKind::Http, ok)).await;
        assert!(r.ok, "{r:?}");
        assert!(r.latency_us > 0 && r.latency_us < 500_000, "{r:?}");
        assert_eq!(r.kind, "http");

        let bad = serve(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n").await;
        let r = run(&spec(ProbeKind::Http, bad)).await;
        assert!(
            !r.ok && r.error == "status 503" && r.latency_us == 0,
            "{r:?}"
        );

        let silent = serve(b"").await;
        let r = run(&spec(ProbeKind::Http, silent)).await;
        assert!(!r.ok && r.error.contains("timed out"), "{r:?}");

        let r = run(&spec(ProbeKind::Tcp, silent)).await;
        assert!(r.ok, "{r:?}");

        // A port nobody listens on.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap().port();
        drop(l);
        let r = run(&spec(ProbeKind::Tcp, closed)).await;
        assert!(!r.ok && r.error.contains("connect"), "{r:?}");
    }
}
