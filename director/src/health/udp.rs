//! UDP checks: send the configured payload, healthy on a reply (containing `expect`, if set).

use std::net::SocketAddr;

use cluster_core::health::ProbeResult;
use cluster_core::model::HealthCheck;

use super::checker::{network, Checker, Target};
use super::common::{contains, udp_socket, CheckError};

/// Largest UDP/DNS reply read.
pub const MAX_DATAGRAM: usize = 65_535;

pub struct Udp;

impl Checker for Udp {
    async fn check(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        let send = hc.send.as_deref().unwrap_or_default();
        network(
            hc,
            t,
            udp(t.probe_addr(), send.as_bytes(), hc.expect.as_deref()),
        )
        .await
    }
}

async fn udp(addr: SocketAddr, send: &[u8], expect: Option<&str>) -> Result<String, CheckError> {
    let sock = udp_socket(addr).await?;
    sock.send(send).await.map_err(CheckError::io("send"))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = sock.recv(&mut buf).await.map_err(CheckError::io("recv"))?;
    match expect {
        Some(x) if !contains(&buf[..n], x.as_bytes()) => Err(CheckError::ReplyLacks(x.into())),
        _ => Ok(format!("reply of {n} bytes")),
    }
}
