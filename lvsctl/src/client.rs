//! Reaching whichever director answers: endpoint failover, leader hints, principal and deadlines.

use std::fmt;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

use lvs_proto::v1::admin_client::AdminClient;
use lvs_proto::v1::cluster_client::ClusterClient;
use lvs_proto::{LEADER_HINT_KEY, PRINCIPAL_KEY};
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

/// Connecting to a dead director should not eat the whole call budget.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between rounds while the cluster has no leader (elections take about a second).
const ROUND_PAUSE: Duration = Duration::from_millis(250);
/// Configurations with thousands of services outgrow tonic's 4 MiB default.
const MAX_MESSAGE: usize = 64 << 20;

/// What a call does, which decides whether it may be retried elsewhere after a timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Read,
    Write,
    /// Opening a server stream: only the opening is bounded by the timeout.
    Stream,
}

/// A gRPC error as the director returned it; printed as `Code: message`.
#[derive(Debug)]
pub struct RpcError(pub Status);

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        status_text(&self.0).fmt(f)
    }
}

impl std::error::Error for RpcError {}

pub fn status_text(s: &Status) -> String {
    let msg = if s.message().is_empty() {
        s.code().description()
    } else {
        s.message()
    };
    format!("{:?}: {}", s.code(), one_line(msg))
}

fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

pub fn admin(ch: Channel) -> AdminClient<Channel> {
    AdminClient::new(ch).max_decoding_message_size(MAX_MESSAGE)
}

pub fn cluster(ch: Channel) -> ClusterClient<Channel> {
    ClusterClient::new(ch).max_decoding_message_size(MAX_MESSAGE)
}

/// `$USER@hostname`, or `lvsctl` when the user is unknown.
pub fn default_principal() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .map(|u| u.trim().to_string())
        .find(|u| !u.is_empty());
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_string())
        .find(|h| !h.is_empty());
    let p = match (user, host) {
        (Some(u), Some(h)) => format!("{u}@{h}"),
        (Some(u), None) => u,
        _ => return "lvsctl".into(),
    };
    // Metadata must be visible ASCII; an odd login name should not stop the change.
    if printable(&p) {
        p
    } else {
        "lvsctl".into()
    }
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic() || c == ' ')
}

enum Round<P> {
    Done(anyhow::Result<P>),
    /// Nobody served; `answered` says whether some director answered at all, `cut_short` whether
    /// an attempt ran out of the time left rather than getting an answer.
    Failed {
        error: anyhow::Error,
        answered: bool,
        cut_short: bool,
    },
}

/// Why no channel to an endpoint could be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("not a HOST:PORT address")]
    Address,
    /// The transport's error with its causes, on one line.
    #[error("{0}")]
    Transport(String),
    #[error("no connection within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
}

enum Attempt<P> {
    Done(P),
    /// Could not connect: try the next endpoint.
    NoConnect(ConnectError),
    /// The director could not serve (or a read timed out): try elsewhere.
    Retry(Status),
    Fatal(anyhow::Error),
}

pub struct Client {
    endpoints: Vec<String>,
    timeout: Duration,
    principal: AsciiMetadataValue,
    /// The last director that answered, asked first next time.
    current: Option<(String, Channel)>,
    /// mTLS key material; `None` with --insecure.
    tls: Option<lvs_proto::tls::Tls>,
}

impl Client {
    pub fn new(
        endpoints: Vec<String>,
        timeout: Duration,
        principal: &str,
        tls: Option<lvs_proto::tls::Tls>,
    ) -> anyhow::Result<Self> {
        let principal = printable(principal)
            .then(|| AsciiMetadataValue::try_from(principal).ok())
            .flatten()
            .ok_or_else(|| anyhow::anyhow!("--principal {principal:?} must be printable ASCII"))?;
        Ok(Client {
            endpoints,
            timeout,
            principal,
            current: None,
            tls,
        })
    }

    /// Runs `f` against the first director that can serve it. `f` receives a channel and the
    /// request with principal and deadline set, e.g.
    /// `|ch, r| async move { client::admin(ch).get_config(r).await }`.
    ///
    /// When directors answer but none can serve (an election is under way), the round is repeated
    /// until `--timeout` has passed, so a failover is a short pause rather than an error.
    pub async fn call<Q, P, F, Fut>(&mut self, kind: Call, req: Q, f: F) -> anyhow::Result<P>
    where
        Q: Clone,
        F: Fn(Channel, Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<P>, Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut previous: Option<anyhow::Error> = None;
        loop {
            let limit = previous.is_some().then_some(deadline);
            match self.round(kind, &req, &f, limit).await {
                Round::Done(result) => return result,
                Round::Failed {
                    error,
                    answered,
                    cut_short,
                } => {
                    if !answered || Instant::now() + ROUND_PAUSE >= deadline {
                        // "no answer within the 200 ms left" says less than the answers before it.
                        return Err(match previous {
                            Some(p) if cut_short => p,
                            _ => error,
                        });
                    }
                    previous = Some(error);
                    tokio::time::sleep(ROUND_PAUSE).await;
                }
            }
        }
    }

    /// Asks each endpoint once (the last one to answer first), following one leader hint.
    async fn round<Q, P, F, Fut>(
        &mut self,
        kind: Call,
        req: &Q,
        f: &F,
        deadline: Option<Instant>,
    ) -> Round<P>
    where
        Q: Clone,
        F: Fn(Channel, Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<P>, Status>>,
    {
        let mut order: Vec<String> = Vec::new();
        if let Some((ep, _)) = &self.current {
            order.push(ep.clone());
        }
        for e in &self.endpoints {
            if !order.contains(e) {
                order.push(e.clone());
            }
        }
        let mut hint_used = false;
        let mut failures: Vec<String> = Vec::new();
        let mut last_status: Option<Status> = None;
        let mut cut_short = false;
        let mut i = 0;
        while i < order.len() {
            let ep = order[i].clone();
            i += 1;
            // The first round gives every director the full timeout; later rounds share what is
            // left of it.
            let limit = match deadline {
                None => self.timeout,
                Some(d) => d.saturating_duration_since(Instant::now()),
            };
            if limit.is_zero() {
                cut_short = true;
                break;
            }
            cut_short |= limit < self.timeout;
            match self.attempt(&ep, kind, req, f, limit).await {
                Attempt::Done(p) => return Round::Done(Ok(p)),
                Attempt::Fatal(e) => return Round::Done(Err(e)),
                Attempt::NoConnect(msg) => failures.push(format!("{ep}: {msg}")),
                Attempt::Retry(status) => {
                    failures.push(format!("{ep}: {}", status_text(&status)));
                    if let Some(leader) = leader_hint(&status) {
                        // Follow the hint once; a second hint would mean an election is under way
                        // and the remaining endpoints are as good a bet.
                        if !hint_used && leader != ep {
                            hint_used = true;
                            let mut j = i;
                            while j < order.len() {
                                if order[j] == leader {
                                    order.remove(j);
                                } else {
                                    j += 1;
                                }
                            }
                            order.insert(i, leader);
                        }
                    }
                    last_status = Some(status);
                }
            }
        }
        let tried = failures.join("; ");
        match last_status {
            Some(s) => Round::Failed {
                error: anyhow::anyhow!(
                    "{:?}: no director could serve the request ({tried})",
                    s.code()
                ),
                answered: true,
                cut_short,
            },
            None => Round::Failed {
                error: anyhow::anyhow!("cannot reach any director ({tried})"),
                answered: false,
                cut_short,
            },
        }
    }

    async fn attempt<Q, P, F, Fut>(
        &mut self,
        ep: &str,
        kind: Call,
        req: &Q,
        f: &F,
        limit: Duration,
    ) -> Attempt<P>
    where
        Q: Clone,
        F: Fn(Channel, Request<Q>) -> Fut,
        Fut: Future<Output = Result<Response<P>, Status>>,
    {
        let ch = match self.channel(ep).await {
            Ok(c) => c,
            Err(m) => return Attempt::NoConnect(m),
        };
        let mut r = Request::new(req.clone());
        r.metadata_mut()
            .insert(PRINCIPAL_KEY, self.principal.clone());
        if kind != Call::Stream {
            r.set_timeout(limit);
        }
        let timed_out = || {
            let shown = Duration::from_millis(limit.as_millis().try_into().unwrap_or(u64::MAX));
            Status::deadline_exceeded(format!(
                "no answer within {}",
                humantime::format_duration(shown)
            ))
        };
        let status = match tokio::time::timeout(limit, f(ch.clone(), r)).await {
            Ok(Ok(resp)) => {
                self.current = Some((ep.to_string(), ch));
                return Attempt::Done(resp.into_inner());
            }
            // tonic servers answer an expired grpc-timeout with Cancelled; lvsctl never cancels.
            Ok(Err(s)) if s.code() == Code::Cancelled => timed_out(),
            Ok(Err(s)) => s,
            Err(_) => timed_out(),
        };
        match status.code() {
            Code::Unavailable => {
                self.forget(ep);
                Attempt::Retry(status)
            }
            Code::DeadlineExceeded if kind != Call::Write => {
                self.forget(ep);
                Attempt::Retry(status)
            }
            // A write that timed out may still commit; retrying elsewhere could apply it twice.
            Code::DeadlineExceeded => Attempt::Fatal(anyhow::anyhow!(
                "{} from {ep}; the change may or may not have been made (check before retrying)",
                status_text(&status)
            )),
            _ => Attempt::Fatal(RpcError(status).into()),
        }
    }

    fn forget(&mut self, ep: &str) {
        if self.current.as_ref().is_some_and(|(e, _)| e == ep) {
            self.current = None;
        }
    }

    async fn channel(&self, ep: &str) -> Result<Channel, ConnectError> {
        if let Some((e, ch)) = &self.current {
            if e == ep {
                return Ok(ch.clone());
            }
        }
        // Leader hints may carry a scheme; ours follows from --insecure or the certificates.
        let addr = ep
            .strip_prefix("http://")
            .or_else(|| ep.strip_prefix("https://"))
            .unwrap_or(ep)
            .trim_end_matches('/');
        let limit = CONNECT_TIMEOUT.min(self.timeout);
        let endpoint = lvs_proto::tls::endpoint(addr, self.tls.as_ref())
            .map_err(|_| ConnectError::Address)?
            .connect_timeout(limit)
            .tcp_nodelay(true);
        match tokio::time::timeout(limit, endpoint.connect()).await {
            Ok(Ok(ch)) => Ok(ch),
            Ok(Err(e)) => Err(ConnectError::Transport(error_chain(&e))),
            Err(_) => Err(ConnectError::Timeout(limit)),
        }
    }

    /// Endpoints in the order a fresh stream should try them, starting after `after`.
    pub fn rotation(&self, after: Option<&str>) -> Vec<String> {
        let mut v = self.endpoints.clone();
        if let Some(pos) = after.and_then(|a| v.iter().position(|e| e == a)) {
            v.rotate_left(pos + 1);
        }
        v
    }

    /// The director that answered last, if any.
    pub fn current_endpoint(&self) -> Option<&str> {
        self.current.as_ref().map(|(e, _)| e.as_str())
    }

    /// Makes `ep` the first director asked by the next call.
    pub fn prefer(&mut self, ep: &str) {
        if self.current_endpoint() != Some(ep) {
            self.current = None;
            if let Some(pos) = self.endpoints.iter().position(|e| e == ep) {
                let e = self.endpoints.remove(pos);
                self.endpoints.insert(0, e);
            }
        }
    }
}

fn leader_hint(s: &Status) -> Option<String> {
    s.metadata()
        .get(LEADER_HINT_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The innermost causes are what an operator needs ("Connection refused"), not "transport error".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_text_names_the_code() {
        let s = Status::invalid_argument(
            "service[tcp/10.0.0.1:80].reals[10.0.1.1:80].weight: 70000 is out of range 0..=65535",
        );
        assert_eq!(
            status_text(&s),
            "InvalidArgument: service[tcp/10.0.0.1:80].reals[10.0.1.1:80].weight: 70000 is out of range 0..=65535"
        );
        assert_eq!(
            status_text(&Status::unavailable("")),
            "Unavailable: The service is currently unavailable"
        );
        assert_eq!(status_text(&Status::not_found("a\n b")), "NotFound: a; b");
    }

    #[test]
    fn leader_hint_is_read_from_metadata() {
        let mut s = Status::unavailable("not the leader");
        assert_eq!(leader_hint(&s), None);
        s.metadata_mut()
            .insert(LEADER_HINT_KEY, "10.0.0.12:7001".parse().unwrap());
        assert_eq!(leader_hint(&s).as_deref(), Some("10.0.0.12:7001"));
    }

    #[test]
    fn rotation_starts_after_the_broken_endpoint() {
        let c = Client::new(
            vec!["a:1".into(), "b:2".into(), "c:3".into()],
            Duration::from_secs(1),
            "me@host",
            None,
        )
        .unwrap();
        assert_eq!(c.rotation(Some("b:2")), vec!["c:3", "a:1", "b:2"]);
        assert_eq!(c.rotation(None), vec!["a:1", "b:2", "c:3"]);
        assert!(Client::new(vec![], Duration::from_secs(1), "é", None).is_err());
    }

    /// A director stand-in that answers every call with one fixed status (headers only, as
    /// tonic sends errors), counting calls and remembering the principal it was sent.
    #[derive(Clone)]
    struct Fake {
        code: Code,
        message: &'static str,
        hint: Option<String>,
        hits: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl tonic::server::NamedService for Fake {
        const NAME: &'static str = "lvs.v1.Admin";
    }

    impl tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for Fake {
        type Response = tonic::codegen::http::Response<tonic::body::Body>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

        fn poll_ready(
            &mut self,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
            let who = req
                .headers()
                .get(PRINCIPAL_KEY)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            self.hits.lock().unwrap().push(who);
            let mut s = Status::new(self.code, self.message);
            if let Some(h) = &self.hint {
                s.metadata_mut().insert(LEADER_HINT_KEY, h.parse().unwrap());
            }
            std::future::ready(Ok(s.into_http()))
        }
    }

    /// Starts a fake director; returns its address and the principals of the calls it got.
    async fn fake(
        code: Code,
        message: &'static str,
        hint: Option<String>,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let hits = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let svc = Fake {
            code,
            message,
            hint,
            hits: hits.clone(),
        };
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(svc)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        (addr, hits)
    }

    async fn get_config(
        endpoints: Vec<String>,
    ) -> anyhow::Result<lvs_proto::v1::GetConfigResponse> {
        // Shorter than a round pause: each director is asked exactly once.
        let mut c = Client::new(endpoints, Duration::from_millis(200), "alice@lb1", None).unwrap();
        c.call(
            Call::Read,
            lvs_proto::v1::GetConfigRequest {
                stale: false,
                ..Default::default()
            },
            |ch, r| async move { admin(ch).get_config(r).await },
        )
        .await
    }

    #[tokio::test]
    async fn leader_hint_is_followed_once() {
        let (leader, leader_hits) = fake(Code::NotFound, "answer from the leader", None).await;
        let (follower, follower_hits) =
            fake(Code::Unavailable, "forwarding failed", Some(leader.clone())).await;
        let err = get_config(vec![follower.clone()]).await.unwrap_err();
        assert_eq!(err.to_string(), "NotFound: answer from the leader");
        assert_eq!(*follower_hits.lock().unwrap(), vec!["alice@lb1"]);
        assert_eq!(*leader_hits.lock().unwrap(), vec!["alice@lb1"]);

        // Two directors pointing at each other: each is asked once, then lvsctl gives up.
        let (a, a_hits) = fake(Code::Unavailable, "no leader", Some(follower.clone())).await;
        let err = get_config(vec![a.clone()]).await.unwrap_err().to_string();
        assert!(
            err.starts_with("Unavailable: no director could serve"),
            "{err}"
        );
        assert!(err.contains(&a) && err.contains(&follower), "{err}");
        assert_eq!(a_hits.lock().unwrap().len(), 1);
        assert_eq!(follower_hits.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn unavailable_without_hint_moves_on_but_real_errors_stop() {
        let (down, down_hits) = fake(Code::Unavailable, "no leader known", None).await;
        let (bad, bad_hits) = fake(Code::InvalidArgument, "service.key: nope", None).await;
        let (never, never_hits) = fake(Code::NotFound, "unused", None).await;
        let err = get_config(vec![
            "127.0.0.1:1".into(),
            down.clone(),
            bad.clone(),
            never.clone(),
        ])
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "InvalidArgument: service.key: nope");
        assert!(err.downcast_ref::<RpcError>().is_some());
        assert_eq!(down_hits.lock().unwrap().len(), 1);
        assert_eq!(bad_hits.lock().unwrap().len(), 1);
        assert!(never_hits.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn leaderless_cluster_is_asked_again_until_the_timeout() {
        let (a, a_hits) = fake(Code::Unavailable, "no leader known", None).await;
        let started = Instant::now();
        let mut c = Client::new(vec![a], Duration::from_millis(900), "t", None).unwrap();
        let err = c
            .call(
                Call::Write,
                lvs_proto::v1::ServiceRef::default(),
                |ch, r| async move { admin(ch).delete_service(r).await },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("no leader known"), "{err}");
        assert!(a_hits.lock().unwrap().len() >= 3);
        assert!(started.elapsed() < Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn timed_out_writes_are_not_repeated_elsewhere() {
        let (slow, slow_hits) = fake(Code::DeadlineExceeded, "quorum wait", None).await;
        let (other, other_hits) = fake(Code::NotFound, "from the other", None).await;
        let mut c = Client::new(
            vec![slow.clone(), other.clone()],
            Duration::from_millis(200),
            "t",
            None,
        )
        .unwrap();
        let err = c
            .call(
                Call::Write,
                lvs_proto::v1::ServiceRef::default(),
                |ch, r| async move { admin(ch).delete_service(r).await },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("may or may not have been made"), "{err}");
        assert!(other_hits.lock().unwrap().is_empty());
        // A read that timed out is simply asked again elsewhere.
        let err = get_config(vec![slow, other]).await.unwrap_err().to_string();
        assert_eq!(err, "NotFound: from the other");
        assert_eq!(slow_hits.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn unreachable_endpoints_are_all_reported() {
        // Port 1 on localhost refuses connections quickly.
        let mut c = Client::new(
            vec!["127.0.0.1:1".into(), "[::1]:1".into()],
            Duration::from_secs(2),
            "t",
            None,
        )
        .unwrap();
        let err = c
            .call(
                Call::Read,
                lvs_proto::v1::GetConfigRequest {
                    stale: false,
                    ..Default::default()
                },
                |ch, r| async move { admin(ch).get_config(r).await },
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot reach any director"), "{err}");
        assert!(
            err.contains("127.0.0.1:1") && err.contains("[::1]:1"),
            "{err}"
        );
    }
}
