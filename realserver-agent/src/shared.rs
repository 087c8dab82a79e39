//! State shared by the agent's tasks: what the next report carries (draining, application
//! metrics, probe results, addresses), the director connection's status, and the
//! acknowledgements a drain waits for.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lvs_proto::v1 as pb;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use crate::config::Config;
use crate::sample::Sample;

/// App metrics not refreshed within this many intervals are dropped from reports.
pub const METRIC_TTL_INTERVALS: u32 = 3;
/// At most this many distinct app metrics (a report must stay small).
pub const MAX_METRICS: usize = 64;

/// An application metric the agent refuses; the message names the metric and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    #[error("metric name {0:?}: must be 1 to 64 characters of [a-z0-9_]")]
    BadName(String),
    #[error("metric {name}: value {value} is not a finite number")]
    NotFinite { name: String, value: f64 },
    #[error("metric busy: value {0} is out of range: must be between 0 and 1")]
    BusyOutOfRange(f64),
    #[error("metric {name}: value {value} is out of range: must not be negative")]
    Negative { name: String, value: f64 },
    #[error("metric {0}: too many metrics (at most {MAX_METRICS})")]
    TooMany(String),
}

/// Why a drain was not confirmed by a director.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AckError {
    #[error("the agent is shutting down")]
    ShuttingDown,
    #[error(
        "no director acknowledged the report within {} ({link}); draining stays set and is \
         reported once a director answers",
        humantime::format_duration(*timeout)
    )]
    Timeout { timeout: Duration, link: LinkState },
    #[error("director {director} rejected the report: {error}")]
    Rejected { director: String, error: String },
    #[error("`ready` was requested before the drain was acknowledged")]
    ReadyRequested,
}

/// The director connection when an acknowledgement did not come, for [`AckError::Timeout`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkState {
    #[error("connected to {0}, no acknowledgement yet")]
    Connected(String),
    #[error("no director reachable: {0}")]
    Unreachable(String),
    #[error("not connected to a director yet")]
    NotConnected,
}

/// The latest acknowledgement, for drain waiters.
#[derive(Clone, Debug, Default)]
pub struct AckSeen {
    pub seq: u64,
    pub error: String,
    pub director: String,
}

/// The persisted part of the agent's state.
#[derive(Serialize, Deserialize, Default)]
struct Persisted {
    draining: bool,
}

struct LastAck {
    seq: u64,
    at: Instant,
    director: String,
    matched: Vec<String>,
    error: String,
}

struct Inner {
    next_seq: u64,
    draining: bool,
    metrics: BTreeMap<String, (f64, Instant)>,
    probes: Vec<pb::Probe>,
    addresses: Vec<String>,
    connected: Option<(String, Instant)>,
    last_error: Option<String>,
    last_ack: Option<LastAck>,
    last_report: Option<pb::AgentReport>,
    /// The last distinct ack error that was logged.
    logged_ack_error: Option<String>,
    counts: Counts,
}

/// Totals since start, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Reports handed to a director stream.
    pub sent: u64,
    /// Acknowledgements accepting a report, and ones rejecting it.
    pub acked: u64,
    pub rejected: u64,
    /// Report streams opened.
    pub connects: u64,
}

pub struct Shared {
    pub name: String,
    pub directors: Vec<String>,
    pub interval: Duration,
    state_file: PathBuf,
    inner: Mutex<Inner>,
    /// Wakes the collector for an immediate report (drain/ready, a new stream).
    pub report_now: Notify,
    acks: watch::Sender<AckSeen>,
    /// Reports handed to a director stream (counted by the stream itself).
    pub reports_sent: Arc<AtomicU64>,
}

/// Checks an application metric: name `[a-z0-9_]{1,64}`, finite value; "busy" is a fraction
/// and "rps"/"inflight" are counts, as the director reads them.
pub fn validate_metric(name: &str, value: f64) -> Result<(), MetricError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(MetricError::BadName(name.to_string()));
    }
    if !value.is_finite() {
        return Err(MetricError::NotFinite {
            name: name.to_string(),
            value,
        });
    }
    match name {
        "busy" if !(0.0..=1.0).contains(&value) => Err(MetricError::BusyOutOfRange(value)),
        "rps" | "inflight" if value < 0.0 => Err(MetricError::Negative {
            name: name.to_string(),
            value,
        }),
        _ => Ok(()),
    }
}

impl Shared {
    /// Starts from the persisted state in the config's state_dir (draining survives restarts).
    pub fn new(cfg: &Config) -> anyhow::Result<Shared> {
        let state_file = cfg.state_dir.join("agent.json");
        let persisted: Persisted = match std::fs::read_to_string(&state_file) {
            Ok(t) => serde_json::from_str(&t).map_err(|e| {
                anyhow::anyhow!("state file {} is not valid: {e}", state_file.display())
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Persisted::default(),
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "reading state file {}: {e}",
                    state_file.display()
                ))
            }
        };
        let addresses = cfg
            .addresses
            .as_ref()
            .map(|a| a.iter().map(|ip| ip.to_string()).collect())
            .unwrap_or_default();
        Ok(Shared {
            name: cfg.name.clone(),
            directors: cfg.directors.clone(),
            interval: cfg.interval,
            state_file,
            inner: Mutex::new(Inner {
                next_seq: 1,
                draining: persisted.draining,
                metrics: BTreeMap::new(),
                probes: Vec::new(),
                addresses,
                connected: None,
                last_error: None,
                last_ack: None,
                last_report: None,
                logged_ack_error: None,
                counts: Counts::default(),
            }),
            report_now: Notify::new(),
            acks: watch::channel(AckSeen::default()).0,
            reports_sent: Arc::new(AtomicU64::new(0)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn draining(&self) -> bool {
        self.lock().draining
    }

    /// Builds the next report from a system sample and the shared inputs.
    pub fn build_report(&self, s: Sample) -> pb::AgentReport {
        let mut g = self.lock();
        let seq = g.next_seq;
        g.next_seq += 1;
        let ttl = self.interval * METRIC_TTL_INTERVALS;
        g.metrics.retain(|_, (_, at)| at.elapsed() <= ttl);
        let r = pb::AgentReport {
            agent: self.name.clone(),
            addresses: g.addresses.clone(),
            seq,
            sent_unix_ms: lvs_ops::clock::unix_ms(),
            interval_ms: self.interval.as_millis() as u32,
            cpu_busy: s.cpu_busy,
            cpu_steal: s.cpu_steal,
            cpus: s.cpus,
            load1: s.load[0],
            load5: s.load[1],
            load15: s.load[2],
            mem_total_bytes: s.mem_total,
            mem_available_bytes: s.mem_available,
            conns: s.conns,
            probes: g.probes.clone(),
            app: g
                .metrics
                .iter()
                .map(|(k, (v, _))| (k.clone(), *v))
                .collect(),
            draining: g.draining,
        };
        g.last_report = Some(r.clone());
        r
    }

    pub fn set_probes(&self, p: Vec<pb::Probe>) {
        self.lock().probes = p;
    }

    pub fn set_addresses(&self, a: Vec<String>) {
        self.lock().addresses = a;
    }

    pub fn set_metric(&self, name: &str, value: f64) -> Result<(), MetricError> {
        validate_metric(name, value)?;
        let mut g = self.lock();
        if !g.metrics.contains_key(name) && g.metrics.len() >= MAX_METRICS {
            return Err(MetricError::TooMany(name.to_string()));
        }
        g.metrics.insert(name.to_string(), (value, Instant::now()));
        Ok(())
    }

    /// Sets draining and persists it. Returns the first report seq that carries the new value,
    /// and a warning when it could not be persisted (the in-memory state changes regardless: a
    /// drain in a shutdown path must not fail on a full disk).
    pub fn set_draining(&self, draining: bool) -> (u64, Option<String>) {
        let (seq, changed) = {
            let mut g = self.lock();
            let changed = g.draining != draining;
            g.draining = draining;
            (g.next_seq, changed)
        };
        if changed {
            info!(draining, "drain state changed");
        }
        let text = serde_json::to_string(&Persisted { draining }).expect("serialises");
        let warning = crate::atomic_file::write_atomic(&self.state_file, text.as_bytes())
            .err()
            .map(|e| {
                format!(
                    "could not persist the drain state to {}: {e}; it is lost on restart",
                    self.state_file.display()
                )
            });
        if let Some(w) = &warning {
            warn!("{w}");
        }
        self.report_now.notify_one();
        (seq, warning)
    }

    /// Waits until a director acknowledges a report with seq ≥ `seq` and returns that ack;
    /// errors when it was rejected, when draining was switched off meanwhile, or on timeout.
    pub async fn wait_ack(&self, seq: u64, timeout: Duration) -> Result<AckSeen, AckError> {
        let mut rx = self.acks.subscribe();
        let wait = rx.wait_for(|a| a.seq >= seq);
        let ack = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(a)) => a.clone(),
            Ok(Err(_)) => return Err(AckError::ShuttingDown),
            Err(_) => {
                let g = self.lock();
                let link = match (&g.connected, &g.last_error) {
                    (Some((d, _)), _) => LinkState::Connected(d.clone()),
                    (None, Some(e)) => LinkState::Unreachable(e.clone()),
                    (None, None) => LinkState::NotConnected,
                };
                return Err(AckError::Timeout { timeout, link });
            }
        };
        if !ack.error.is_empty() {
            return Err(AckError::Rejected {
                director: ack.director,
                error: ack.error,
            });
        }
        if !self.draining() {
            return Err(AckError::ReadyRequested);
        }
        Ok(ack)
    }

    pub fn set_connected(&self, director: &str) {
        let mut g = self.lock();
        g.connected = Some((director.to_string(), Instant::now()));
        g.last_error = None;
        g.counts.connects += 1;
    }

    pub fn set_disconnected(&self, error: &str) {
        let mut g = self.lock();
        g.connected = None;
        g.last_error = Some(error.to_string());
    }

    /// Records an ack; an error is logged once per distinct message.
    pub fn on_ack(&self, director: &str, ack: pb::ReportAck) {
        {
            let mut g = self.lock();
            if ack.error.is_empty() {
                g.counts.acked += 1;
            } else {
                g.counts.rejected += 1;
            }
            if ack.error.is_empty() {
                if g.logged_ack_error.take().is_some() {
                    info!(director, "reports are accepted again");
                }
            } else if g.logged_ack_error.as_deref() != Some(ack.error.as_str()) {
                warn!(director, seq = ack.seq, error = %ack.error, "director rejected a report");
                g.logged_ack_error = Some(ack.error.clone());
            }
            g.last_ack = Some(LastAck {
                seq: ack.seq,
                at: Instant::now(),
                director: director.to_string(),
                matched: ack.matched.clone(),
                error: ack.error.clone(),
            });
        }
        self.acks.send_replace(AckSeen {
            seq: ack.seq,
            error: ack.error,
            director: director.to_string(),
        });
    }

    /// The totals since start.
    pub fn counts(&self) -> Counts {
        let mut c = self.lock().counts;
        c.sent = self.reports_sent.load(Ordering::Relaxed);
        c
    }

    pub fn status(&self) -> StatusView {
        let g = self.lock();
        StatusView {
            agent: self.name.clone(),
            interval_ms: self.interval.as_millis() as u64,
            addresses: g.addresses.clone(),
            directors: self.directors.clone(),
            connected: g.connected.as_ref().map(|(d, _)| d.clone()),
            connected_for_ms: g
                .connected
                .as_ref()
                .map(|(_, t)| t.elapsed().as_millis() as u64),
            last_error: g.last_error.clone(),
            last_ack: g.last_ack.as_ref().map(|a| AckView {
                seq: a.seq,
                age_ms: a.at.elapsed().as_millis() as u64,
                director: a.director.clone(),
                matched: a.matched.clone(),
                error: a.error.clone(),
            }),
            draining: g.draining,
            last_report: g.last_report.as_ref().map(ReportView::from),
        }
    }
}

/// The `status` reply.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StatusView {
    pub agent: String,
    pub interval_ms: u64,
    pub addresses: Vec<String>,
    pub directors: Vec<String>,
    pub connected: Option<String>,
    pub connected_for_ms: Option<u64>,
    pub last_error: Option<String>,
    pub last_ack: Option<AckView>,
    pub draining: bool,
    pub last_report: Option<ReportView>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AckView {
    pub seq: u64,
    pub age_ms: u64,
    pub director: String,
    pub matched: Vec<String>,
    pub error: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ProbeView {
    pub kind: String,
    pub port: u32,
    pub ok: bool,
    pub latency_us: u64,
    pub error: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ConnsView {
    pub port: u32,
    pub established: u32,
}

/// A report as `status` shows it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ReportView {
    pub seq: u64,
    pub sent_unix_ms: u64,
    pub cpu_busy: f64,
    pub cpu_steal: f64,
    pub cpus: u32,
    pub load: [f64; 3],
    pub mem_total_bytes: u64,
    pub mem_available_bytes: u64,
    pub conns: Vec<ConnsView>,
    pub probes: Vec<ProbeView>,
    pub app: BTreeMap<String, f64>,
    pub draining: bool,
}

impl From<&pb::AgentReport> for ReportView {
    fn from(r: &pb::AgentReport) -> Self {
        ReportView {
            seq: r.seq,
            sent_unix_ms: r.sent_unix_ms,
            cpu_busy: r.cpu_busy,
            cpu_steal: r.cpu_steal,
            cpus: r.cpus,
            load: [r.load1, r.load5, r.load15],
            mem_total_bytes: r.mem_total_bytes,
            mem_available_bytes: r.mem_available_bytes,
            conns: r
                .conns
                .iter()
                .map(|c| ConnsView {
                    port: c.port,
                    established: c.established,
                })
                .collect(),
            probes: r
                .probes
                .iter()
                .map(|p| ProbeView {
                    kind: p.kind.clone(),
                    port: p.port,
                    ok: p.ok,
                    latency_us: p.latency_us,
                    error: p.error.clone(),
                })
                .collect(),
            app: r.app.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            draining: r.draining,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &std::path::Path) -> Config {
        let mut c = crate::config::parse(
            "name = \"t\"\ndirectors = [\"127.0.0.1:1\"]\naddresses = [\"10.0.0.1\"]",
            || None,
        )
        .unwrap();
        c.state_dir = dir.to_path_buf();
        // Shorter than a config allows, to see metrics expire quickly.
        c.interval = Duration::from_millis(100);
        c
    }

    #[test]
    fn metric_validation() {
        assert!(validate_metric("busy", 0.5).is_ok());
        assert!(validate_metric("queue_depth_2", -3.0).is_ok());
        assert!(validate_metric("busy", 1.5)
            .unwrap_err()
            .to_string()
            .contains("between 0 and 1"));
        assert!(validate_metric("rps", -1.0).is_err());
        assert!(validate_metric("Busy", 0.1)
            .unwrap_err()
            .to_string()
            .contains("[a-z0-9_]"));
        assert!(validate_metric("", 0.1).is_err());
        assert!(validate_metric(&"a".repeat(65), 0.1).is_err());
        assert!(validate_metric("x", f64::NAN)
            .unwrap_err()
            .to_string()
            .contains("finite"));
        assert!(validate_metric("x", f64::INFINITY).is_err());
    }

    #[test]
    fn reports_carry_metrics_until_they_expire_and_draining_persists() {
        let d = tempfile::tempdir().unwrap();
        let s = Shared::new(&cfg(d.path())).unwrap();
        s.set_metric("busy", 0.25).unwrap();
        let r = s.build_report(Sample::default());
        assert_eq!(r.seq, 1);
        assert_eq!(r.app.get("busy"), Some(&0.25));
        assert_eq!(r.addresses, vec!["10.0.0.1"]);
        assert!(!r.draining);
        std::thread::sleep(Duration::from_millis(350));
        let r = s.build_report(Sample::default());
        assert_eq!(r.seq, 2);
        assert!(r.app.is_empty(), "{:?}", r.app);

        let (seq, warning) = s.set_draining(true);
        assert_eq!((seq, warning), (3, None));
        assert!(s.build_report(Sample::default()).draining);
        // A restart keeps draining.
        let s2 = Shared::new(&cfg(d.path())).unwrap();
        assert!(s2.draining());
        s2.set_draining(false);
        assert!(!Shared::new(&cfg(d.path())).unwrap().draining());
    }

    #[tokio::test]
    async fn drain_waits_for_an_accepting_ack() {
        let d = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(Shared::new(&cfg(d.path())).unwrap());
        let (seq, _) = s.set_draining(true);
        let e = s
            .wait_ack(seq, Duration::from_millis(50))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("not connected"), "{e}");
        let s2 = s.clone();
        let waiter = tokio::spawn(async move { s2.wait_ack(seq, Duration::from_secs(5)).await });
        let ack = |seq, error: &str| pb::ReportAck {
            seq,
            matched: vec![],
            error: error.into(),
        };
        s.on_ack("d1", ack(seq - 1, ""));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        s.on_ack("d1", ack(seq, ""));
        let a = waiter.await.unwrap().unwrap();
        assert_eq!((a.seq, a.director.as_str()), (seq, "d1"));

        s.on_ack("d1", ack(seq + 1, "unknown addresses"));
        let e = s
            .wait_ack(seq + 1, Duration::from_secs(1))
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown addresses"), "{e}");
        let st = s.status();
        assert_eq!(st.last_ack.unwrap().error, "unknown addresses");
    }
}
