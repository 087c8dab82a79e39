//! `GET /metrics`: this director's state in the OpenMetrics text format (prefix `lvs_director_`),
//! on its own plain-HTTP address (`[metrics] listen`).
//!
//! - `gather`: each scrape reads the subsystems into a plain [`Snapshot`] (`snapshot`).
//! - one module per subsystem encodes its families: `raft`, `vip`, `reals`, `kernel`,
//!   `reconcile`, `agents`; [`encode`] runs them in that order.

mod agents;
mod gather;
mod kernel;
mod raft;
mod reals;
mod reconcile;
pub mod snapshot;
mod vip;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use lvs_ops::openmetrics::gauges;
use prometheus_client::encoding::DescriptorEncoder;
use serde::Deserialize;
use tokio::sync::watch;

use crate::invalid::Invalid;

pub use gather::Sources;
pub use snapshot::Snapshot;

/// The `[metrics]` section of the director config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Where `/metrics` is served (plain HTTP); no endpoint when absent.
    pub listen: Option<String>,
}

impl MetricsConfig {
    /// The listen address, checked: a numeric IP and a port other than 0.
    pub fn listen_addr(&self) -> Result<Option<SocketAddr>, Invalid> {
        let Some(v) = &self.listen else {
            return Ok(None);
        };
        let a: SocketAddr = v.parse().map_err(|_| {
            Invalid::value(
                "metrics.listen",
                format!("{v:?} is not HOST:PORT with a numeric IP address"),
            )
        })?;
        if a.port() == 0 {
            let reason = format!("{v:?} has port 0; give a fixed port");
            return Err(Invalid::value("metrics.listen", reason));
        }
        Ok(Some(a))
    }

    /// Checks the section; `taken` are the other listen addresses of this director.
    pub fn validate(&self, taken: &[(&str, &str)]) -> Result<(), Invalid> {
        let Some(a) = self.listen_addr()? else {
            return Ok(());
        };
        for (key, other) in taken {
            if other.parse::<SocketAddr>().ok() == Some(a) {
                let v = self.listen.as_deref().unwrap_or_default();
                return Err(Invalid::value(
                    "metrics.listen",
                    format!("{v:?} is already {key}"),
                ));
            }
        }
        Ok(())
    }
}

/// Every family of one scrape.
fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    gauges(
        e,
        "build_info",
        "The director's version",
        None,
        vec![(vec![("version", s.version.to_string())], 1i64)],
    )?;

    raft::families(e, s)?;
    vip::families(e, s)?;
    reals::families(e, s)?;
    kernel::families(e, s)?;
    reconcile::families(e, s)?;
    agents::families(e, s)
}

/// The OpenMetrics text of `s`.
pub fn encode(s: Snapshot) -> String {
    lvs_ops::openmetrics::encode("lvs_director", move |e| families(e, &s))
}

/// Binds the metrics address (the error names `metrics.listen`).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    lvs_ops::metrics_http::bind(addr)
        .await
        .map_err(anyhow::Error::msg)
}

/// Serves `/metrics` on `listener` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    sources: Arc<Sources>,
    mut stop: watch::Receiver<bool>,
) {
    let render = move || {
        let sources = sources.clone();
        async move { encode(sources.snapshot().await) }
    };
    lvs_ops::metrics_http::serve(listener, render, async move {
        let _ = stop.wait_for(|v| *v).await;
    })
    .await
}

#[cfg(test)]
mod tests;
