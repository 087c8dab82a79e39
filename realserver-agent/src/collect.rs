//! The periodic tasks of `run`: publishes one report per interval from a /proc sample (the
//! newest replaces an unsent one), runs the probes, and refreshes discovered addresses.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{info, warn};

use crate::config::ProbeSpec;
use crate::sample::Sampler;
use crate::shared::Shared;
use crate::{host, probe};

/// Directors reject reports arriving less than 100 ms apart; the margin absorbs network jitter.
pub const MIN_REPORT_GAP: Duration = Duration::from_millis(150);

/// Publishes a report every interval, or at once when `report_now` is notified. Publishing
/// replaces any report the connection has not taken yet, so a backed-up stream never holds up
/// collection.
pub async fn reports(
    shared: Arc<Shared>,
    mut sampler: Sampler,
    tx: watch::Sender<Option<pb::AgentReport>>,
) {
    let mut tick = tokio::time::interval(shared.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_error: Option<String> = None;
    let mut last_built: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shared.report_now.notified() => {}
        }
        // An immediate report (drain, ready, a new stream) right after a regular one would be
        // rejected by the director as a flood.
        if let Some(t) = last_built {
            let wait = MIN_REPORT_GAP.saturating_sub(t.elapsed());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
        // The next regular report comes one interval after this one.
        tick.reset();
        last_built = Some(Instant::now());
        // /proc/net/tcp of a busy server is large: read it off the runtime's threads.
        let (s, result) = match tokio::task::spawn_blocking(move || {
            let r = sampler.sample();
            (sampler, r)
        })
        .await
        {
            Ok(v) => v,
            Err(e) => {
                warn!("sampler task failed: {e}");
                return;
            }
        };
        sampler = s;
        match result {
            Ok(sample) => {
                if last_error.take().is_some() {
                    info!("reading /proc works again");
                }
                tx.send_replace(Some(shared.build_report(sample)));
            }
            Err(e) => {
                // Logged once per distinct message, not every interval.
                let e = e.to_string();
                if last_error.as_deref() != Some(e.as_str()) {
                    warn!(error = %e, "cannot sample the system; no report this interval");
                    last_error = Some(e);
                }
            }
        }
    }
}

/// Runs all probes every interval, concurrently; each finishes within its timeout, which the
/// config keeps within the interval.
pub async fn probes(shared: Arc<Shared>, specs: Vec<ProbeSpec>) {
    if specs.is_empty() {
        return;
    }
    let mut tick = tokio::time::interval(shared.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let results = futures::future::join_all(specs.iter().map(probe::run)).await;
        shared.set_probes(results);
    }
}

/// How often discovered addresses are refreshed.
const ADDRESS_REFRESH: Duration = Duration::from_secs(30);

/// Keeps the reported addresses equal to the host's global addresses (without `vips`).
pub async fn discover_addresses(shared: Arc<Shared>, vips: Vec<IpAddr>) {
    let mut last: Option<Vec<IpAddr>> = None;
    loop {
        match host::global_addresses(&vips).await {
            Ok(found) => {
                if last.as_ref() != Some(&found) {
                    if found.is_empty() {
                        warn!("the host has no global addresses to report; set `addresses` in the config");
                    } else {
                        info!(addresses = ?found, "reporting the host's global addresses");
                    }
                    shared.set_addresses(found.iter().map(|a| a.to_string()).collect());
                    last = Some(found);
                }
            }
            Err(e) => warn!(error = format!("{e:#}"), "cannot list the host's addresses"),
        }
        tokio::time::sleep(ADDRESS_REFRESH).await;
    }
}
