//! The director's two gRPC servers: the internal Raft service (directors only) and the API
//! (admin, cluster, agent reports, gRPC health and reflection), each behind the authorization
//! layer, on mTLS or, with `--insecure`, plaintext.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic_health::server::HealthReporter;

/// Names the gRPC health service answers for: the whole server ("") and each API service.
pub const API_SERVICES: [&str; 4] = ["", "lvs.v1.Admin", "lvs.v1.Cluster", "lvs.v1.AgentReports"];

/// A server task; its result is the server's own.
pub type ServerTask = JoinHandle<Result<(), tonic::transport::Error>>;

/// Listens on `addr`, the value of config key `what`.
pub async fn bind(what: &str, addr: &str) -> Result<TcpListener> {
    let a: SocketAddr = addr.parse().with_context(|| format!("{what}: {addr:?}"))?;
    TcpListener::bind(a)
        .await
        .with_context(|| format!("{what}: cannot listen on {addr}"))
}

/// Serves `router` on `listener` until `stop`: behind the TLS acceptor when `tls` is given.
pub fn serve<L>(
    router: tonic::transport::server::Router<L>,
    listener: TcpListener,
    tls: Option<&lvs_proto::tls::Tls>,
    server: &'static str,
    stop: impl Future<Output = ()> + Send + 'static,
) -> ServerTask
where
    L: tower::Layer<tonic::service::Routes> + Send + 'static,
    L::Service: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<tonic::body::Body>,
        > + Clone
        + Send
        + 'static,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Future: Send + 'static,
    <L::Service as tower::Service<http::Request<tonic::body::Body>>>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    match tls {
        Some(t) => tokio::spawn(router.serve_with_incoming_shutdown(
            lvs_proto::tls::incoming(listener, t.server_config(), server),
            stop,
        )),
        None => tokio::spawn(
            router.serve_with_incoming_shutdown(TcpListenerStream::new(listener), stop),
        ),
    }
}

/// The gRPC health service, serving for every API service, and its reporter.
pub async fn health_service() -> (
    HealthReporter,
    tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health>,
) {
    // Standard gRPC health (grpc_health_probe, load-balancer checks): serving while the
    // director runs, not serving from shutdown on.
    let (reporter, service) = tonic_health::server::health_reporter();
    set_health(&reporter, tonic_health::ServingStatus::Serving).await;
    (reporter, service)
}

/// Sets every API service's health status.
pub async fn set_health(reporter: &HealthReporter, status: tonic_health::ServingStatus) {
    for name in API_SERVICES {
        reporter.set_service_status(name, status).await;
    }
}

/// Server reflection (grpcurl) for the API services only: the Raft service listens on another
/// port.
pub fn reflection_service() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
> {
    let mut reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(lvs_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in API_SERVICES.iter().filter(|n| !n.is_empty()) {
        reflection = reflection.with_service_name(*name);
    }
    reflection
        .with_service_name("grpc.health.v1.Health")
        .with_service_name("grpc.reflection.v1.ServerReflection")
        .build_v1()
        .context("building the gRPC reflection service")
}

/// Waits for a server task to end after its stop signal, logging how it ended.
pub async fn join(name: &str, h: ServerTask) {
    match tokio::time::timeout(std::time::Duration::from_secs(3), h).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(server = name, error = %e, "server error at shutdown"),
        Ok(Err(e)) => tracing::warn!(server = name, error = %e, "server task failed"),
        Err(_) => tracing::warn!(server = name, "server did not stop within 3 s"),
    }
}
