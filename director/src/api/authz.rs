//! Authorization of every gRPC call on the director's servers: a tower layer that reads the
//! identity from the client certificate, checks the method against `cluster_core::auth`'s policy,
//! hands the identity to the handlers (request extension) and refuses the rest with
//! PERMISSION_DENIED, logging who was refused what.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use cluster_core::auth::{self, Identity};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::{Request, Status};
use tracing::warn;

/// The identity of the caller of a request; `None` when the server runs `--insecure`.
pub fn identity<T>(req: &Request<T>) -> Option<&Identity> {
    req.extensions().get::<Identity>()
}

/// The layer for one server (`"raft"` or `"api"`, for the log). With `tls` off every call
/// passes: there are no identities to check.
#[derive(Clone, Copy)]
pub struct Authz {
    pub server: &'static str,
    pub tls: bool,
}

impl<S> tower::Layer<S> for Authz {
    type Service = AuthzService<S>;
    fn layer(&self, inner: S) -> AuthzService<S> {
        AuthzService { inner, cfg: *self }
    }
}

#[derive(Clone)]
pub struct AuthzService<S> {
    inner: S,
    cfg: Authz,
}

/// Why a call was refused (logged, and the PERMISSION_DENIED message).
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("no client certificate")]
    NoCertificate,
    #[error(transparent)]
    Identity(#[from] cluster_core::error::IdentityError),
    #[error(transparent)]
    Access(#[from] cluster_core::error::AccessError),
}

/// The caller's identity and whether it may call `path`; the error is logged and returned.
fn decide<B>(req: &http::Request<B>, server: &'static str) -> Result<Identity, Refused> {
    let path = req.uri().path();
    let info = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>();
    let peer = info
        .and_then(|i| i.get_ref().remote_addr())
        .map_or_else(|| "unknown".to_string(), |a| a.to_string());
    let cert = info.and_then(|i| i.peer_certs());
    let result = match cert.as_ref().and_then(|c| c.first()) {
        None => Err(Refused::NoCertificate),
        Some(der) => auth::identity_from_der(der)
            .map_err(Refused::from)
            .and_then(|id| {
                auth::authorize(&id, path)?;
                Ok(id)
            }),
    };
    if let Err(e) = &result {
        warn!(server, %peer, method = path, reason = %e, "call refused");
    }
    result
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> tower::Service<http::Request<B>> for AuthzService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        if self.cfg.tls {
            match decide(&req, self.cfg.server) {
                Ok(id) => {
                    req.extensions_mut().insert(id);
                }
                Err(e) => {
                    let e = e.to_string();
                    return Box::pin(async move { Ok(Status::permission_denied(e).into_http()) });
                }
            }
        }
        // The clone is the one that was not polled ready; call the ready one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(inner.call(req))
    }
}
