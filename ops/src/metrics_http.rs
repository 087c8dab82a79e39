//! The `/metrics` HTTP endpoint both daemons serve: `GET`/`HEAD /metrics` answers with the
//! OpenMetrics text the caller renders at scrape time, other paths 404, other methods 405. One
//! task per connection, with a header-read timeout so an idle client holds nothing for long.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::{debug, info, warn};

pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn respond<B, F, Fut>(render: &F, req: Request<B>) -> Response<Full<Bytes>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = String>,
{
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found: metrics are at /metrics\n".into(),
        );
    }
    match *req.method() {
        Method::GET | Method::HEAD => {
            reply(StatusCode::OK, CONTENT_TYPE_OPENMETRICS, render().await)
        }
        _ => {
            let mut r = reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "method not allowed: use GET\n".into(),
            );
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
    }
}

/// Why the endpoint could not start; the message names the config key `metrics.listen`.
/// The cause is part of each message (callers and tests compare the text), so it is kept as a
/// plain field rather than a `source`: error-chain printers would repeat it.
#[derive(Debug, thiserror::Error)]
pub enum MetricsHttpError {
    #[error("metrics.listen: cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
}

/// Binds the metrics address; the error names `metrics.listen`.
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, MetricsHttpError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| MetricsHttpError::Bind { addr, error })
}

/// Serves `/metrics` on `listener` until `stop` completes; `render` produces each scrape.
pub async fn serve<F, Fut>(
    listener: tokio::net::TcpListener,
    render: F,
    stop: impl Future<Output = ()>,
) where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = String> + Send + 'static,
{
    if let Ok(a) = listener.local_addr() {
        info!(listen = %a, "serving /metrics");
    }
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => return,
        };
        let render = render.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let render = render.clone();
                async move { Ok::<_, Infallible>(respond(&render, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                debug!(peer = %peer, error = %e, "metrics connection");
            }
        });
    }
}
