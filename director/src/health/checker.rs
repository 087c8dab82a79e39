//! What a health check probes ([`Target`]) and the [`Checker`] trait every kind implements
//! (`tcp`, `udp`, `dns`, `http` for http and https, `exec`); `probe` picks one per kind.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use cluster_core::health::ProbeResult;
use cluster_core::model::{HealthCheck, ServiceKey};

use super::common::{elapsed_us, CheckError};

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

/// One kind of health check.
pub trait Checker {
    /// Probes `t` as `hc` says; never takes (much) longer than `hc.timeout_ms`.
    fn check(&self, hc: &HealthCheck, t: &Target) -> impl Future<Output = ProbeResult> + Send;
}

/// The common frame of network checks: needs a port, bounded by the check's timeout, timed.
/// `probe` returns the detail of a healthy answer.
pub async fn network<F>(hc: &HealthCheck, t: &Target, probe: F) -> ProbeResult
where
    F: Future<Output = Result<String, CheckError>>,
{
    let start = Instant::now();
    let limit = Duration::from_millis(u64::from(hc.timeout_ms));
    let out = if t.probe_port == 0 {
        Err(CheckError::NoPort)
    } else {
        match tokio::time::timeout(limit, probe).await {
            Ok(r) => r,
            Err(_) => Err(CheckError::TimedOut(hc.timeout_ms)),
        }
    };
    let us = elapsed_us(start);
    match out {
        Ok(d) => ProbeResult::ok(d, us),
        Err(e) => ProbeResult::fail(e.to_string(), us),
    }
}
