//! TCP checks: healthy when a connection is accepted.

use cluster_core::health::ProbeResult;
use cluster_core::model::HealthCheck;

use super::checker::{network, Checker, Target};
use super::common::tcp_connect;

pub struct Tcp;

impl Checker for Tcp {
    async fn check(&self, hc: &HealthCheck, t: &Target) -> ProbeResult {
        network(hc, t, async {
            tcp_connect(t.probe_addr()).await?;
            Ok("connected".to_string())
        })
        .await
    }
}
