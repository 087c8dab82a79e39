//! The report stream to the leader director: tries the configured directors in turn, follows
//! `x-lvs-leader` hints, reconnects with jittered exponential backoff, and feeds the acks back
//! into the shared state.

use std::sync::Arc;
use std::time::Duration;

use lvs_proto::v1 as pb;
use lvs_proto::v1::agent_reports_client::AgentReportsClient;
use rand::Rng;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::StreamExt;
use tracing::{info, warn};

use crate::config::parse_director;
use crate::shared::Shared;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// From opening the stream to the director's response headers.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 pings: a stream to a dead director (or across a dead network) fails within
/// interval + timeout instead of waiting for TCP to give up.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Jittered exponential backoff: each delay is drawn from [d/2, d], and d doubles up to the cap.
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    pub fn delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let ms = d.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// How one stream ended.
#[derive(Debug, PartialEq)]
enum Ended {
    /// The director is not the leader and named the one that is.
    Hint(String),
    /// Anything else; `healthy` when at least one report was acknowledged.
    Failed { error: String, healthy: bool },
}

/// The leader hint of a failed call: UNAVAILABLE with `x-lvs-leader` naming another director.
fn leader_hint(status: &tonic::Status, current: &str) -> Option<String> {
    if status.code() != tonic::Code::Unavailable {
        return None;
    }
    let hint = status
        .metadata()
        .get(lvs_proto::LEADER_HINT_KEY)?
        .to_str()
        .ok()?;
    parse_director(hint).ok().filter(|h| h != current)
}

fn describe_status(s: &tonic::Status) -> String {
    format!("{:?}: {}", s.code(), s.message())
}

/// An error with its sources, "a: b: c" (tonic's transport errors say little on their own).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// Reports forever: one stream at a time, to the leader as far as the directors tell.
pub async fn run(
    shared: Arc<Shared>,
    reports: watch::Receiver<Option<pb::AgentReport>>,
    tls: Option<lvs_proto::tls::Tls>,
) {
    let directors = shared.directors.clone();
    let mut idx = 0;
    let mut hint: Option<String> = None;
    let mut followed_hint = false;
    let mut backoff = Backoff::new(BACKOFF_MIN, BACKOFF_MAX);
    loop {
        let from_hint = hint.is_some();
        let target = hint.take().unwrap_or_else(|| directors[idx].clone());
        let ended = stream(&shared, &target, reports.clone(), tls.as_ref()).await;
        match ended {
            Ended::Hint(leader) => {
                shared.set_disconnected(&format!("{target} is not the leader"));
                info!(director = %target, leader = %leader, "not the leader; following its hint");
                // Two directors pointing at each other (an election in progress) must not
                // turn into a busy loop.
                if followed_hint {
                    tokio::time::sleep(backoff.delay()).await;
                }
                followed_hint = true;
                hint = Some(leader);
            }
            Ended::Failed { error, healthy } => {
                shared.set_disconnected(&format!("{target}: {error}"));
                followed_hint = false;
                if healthy {
                    backoff.reset();
                }
                // A hinted address that failed sends us back to the list where we were.
                if !from_hint {
                    idx = (idx + 1) % directors.len();
                }
                let d = backoff.delay();
                warn!(director = %target, error = %error, retry_in = ?d, "report stream ended");
                tokio::time::sleep(d).await;
            }
        }
    }
}

/// One stream to `target`, until it fails.
async fn stream(
    shared: &Shared,
    target: &str,
    mut reports: watch::Receiver<Option<pb::AgentReport>>,
    tls: Option<&lvs_proto::tls::Tls>,
) -> Ended {
    let failed = |error: String| Ended::Failed {
        error,
        healthy: false,
    };
    let endpoint = match lvs_proto::tls::endpoint(target, tls) {
        Ok(e) => e,
        Err(e) => return failed(e.to_string()),
    }
    .connect_timeout(CONNECT_TIMEOUT)
    .tcp_nodelay(true)
    .http2_keep_alive_interval(KEEPALIVE_INTERVAL)
    .keep_alive_timeout(KEEPALIVE_TIMEOUT)
    .keep_alive_while_idle(true);
    let channel = match endpoint.connect().await {
        Ok(c) => c,
        Err(e) => return failed(format!("connecting: {}", chain(&e))),
    };
    let mut client = AgentReportsClient::new(channel);
    // Only reports published from now on: an old one was already sent (or is stale).
    reports.borrow_and_update();
    let sent = shared.reports_sent.clone();
    let outgoing = WatchStream::from_changes(reports)
        .filter_map(|r| r)
        .map(move |r| {
            sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            r
        });
    // The first report goes out now rather than up to an interval later.
    shared.report_now.notify_one();
    let call = tokio::time::timeout(CALL_TIMEOUT, client.report(outgoing));
    let mut acks = match call.await {
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(s)) => {
            return match leader_hint(&s, target) {
                Some(h) => Ended::Hint(h),
                None => failed(describe_status(&s)),
            }
        }
        Err(_) => return failed("the director did not answer the stream request".into()),
    };
    shared.set_connected(target);
    info!(director = %target, "connected; reporting");
    // A director that stops acknowledging (a wedged leader) is given up on, like a dead one.
    let ack_timeout = (shared.interval * 5).max(Duration::from_secs(10));
    let mut healthy = false;
    loop {
        match tokio::time::timeout(ack_timeout, acks.message()).await {
            Ok(Ok(Some(ack))) => {
                healthy = true;
                shared.on_ack(target, ack);
            }
            Ok(Ok(None)) => {
                return Ended::Failed {
                    error: "the director ended the stream".into(),
                    healthy,
                }
            }
            Ok(Err(s)) => {
                return match leader_hint(&s, target) {
                    Some(h) => Ended::Hint(h),
                    None => Ended::Failed {
                        error: describe_status(&s),
                        healthy,
                    },
                }
            }
            Err(_) => {
                return Ended::Failed {
                    error: format!(
                        "no acknowledgement for {}",
                        humantime::format_duration(ack_timeout)
                    ),
                    healthy,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut caps = Vec::new();
        for _ in 0..10 {
            caps.push(b.next);
            let d = b.delay();
            assert!(d >= *caps.last().unwrap() / 2 && d <= *caps.last().unwrap());
        }
        assert_eq!(caps[0], Duration::from_millis(200));
        assert_eq!(caps[1], Duration::from_millis(400));
        assert_eq!(*caps.last().unwrap(), Duration::from_secs(10));
        b.reset();
        assert!(b.delay() <= Duration::from_millis(200));
    }

    #[test]
    fn hints() {
        let mut s = tonic::Status::unavailable("not the leader");
        s.metadata_mut()
            .insert(lvs_proto::LEADER_HINT_KEY, "10.0.0.2:7000".parse().unwrap());
        assert_eq!(
            leader_hint(&s, "10.0.0.1:7000").as_deref(),
            Some("10.0.0.2:7000")
        );
        // Pointing at itself, or a hint on another code, is no hint.
        assert_eq!(leader_hint(&s, "10.0.0.2:7000"), None);
        let mut other = tonic::Status::internal("x");
        other
            .metadata_mut()
            .insert(lvs_proto::LEADER_HINT_KEY, "10.0.0.2:7000".parse().unwrap());
        assert_eq!(leader_hint(&other, "10.0.0.1:7000"), None);
        let mut bad = tonic::Status::unavailable("x");
        bad.metadata_mut()
            .insert(lvs_proto::LEADER_HINT_KEY, "garbage".parse().unwrap());
        assert_eq!(leader_hint(&bad, "10.0.0.1:7000"), None);
        assert_eq!(leader_hint(&tonic::Status::unavailable("x"), "a:1"), None);
    }
}
