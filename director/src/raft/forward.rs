//! The one way a follower reaches the leader. Every leader-only call (writes, the agent listing,
//! membership changes) travels the same path: the leader's internal Raft service (director
//! certificates only), over the channel cached per peer, bounded by the deadline the call was
//! given when it entered the cluster. The receiver runs a passed-on call only while it leads and
//! never passes it on again, so a call makes at most one hop.
//!
//! Whether the leader may have acted matters for retrying, so failures say which: a call that
//! could not be sent is safe to retry elsewhere; one sent without an answer is not.

use std::future::Future;
use std::time::{Duration, Instant};

use cluster_core::store::{DirectorNode, NodeId};
use lvs_proto::raft::raft_client::RaftClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::network::{raft_client, Peers};

/// Why a passed-on call failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// Nothing reached the leader (no channel, connection refused): safe to retry.
    #[error("{0}")]
    NotSent(String),
    /// Sent, but no answer within the deadline: the leader may or may not have acted.
    #[error("{0}")]
    NoAnswer(String),
    /// The leader answered with an error status.
    #[error("{}: {}", .0.code(), .0.message())]
    Refused(Status),
}

impl ForwardError {
    /// The status an API caller sees: `leader` names where the call went.
    pub fn into_status(self, leader: &DirectorNode) -> Status {
        match self {
            ForwardError::Refused(s) => s,
            ForwardError::NotSent(e) | ForwardError::NoAnswer(e) => {
                let mut s = Status::unavailable(format!(
                    "leader at {} not reachable: {e}",
                    leader.api_addr
                ));
                if let Ok(v) = leader.api_addr.parse() {
                    s.metadata_mut().insert(lvs_proto::LEADER_HINT_KEY, v);
                }
                s
            }
        }
    }
}

/// Passes calls on to the leader over the peers' internal channels.
#[derive(Clone)]
pub struct Forwarder {
    peers: Peers,
}

impl Forwarder {
    pub fn new(peers: Peers) -> Forwarder {
        Forwarder { peers }
    }

    /// The channels to the other directors (also used for reachability probes).
    pub fn peers(&self) -> &Peers {
        &self.peers
    }

    /// Runs `call` against the leader `(id, node)`, giving up at `deadline`.
    pub async fn call<T, F, Fut>(
        &self,
        leader: (NodeId, &DirectorNode),
        deadline: Instant,
        call: F,
    ) -> Result<T, ForwardError>
    where
        F: FnOnce(RaftClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let (id, node) = leader;
        let ch = self
            .peers
            .get(id, &node.raft_addr)
            .map_err(|e| ForwardError::NotSent(e.to_string()))?;
        let limit = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(limit, call(raft_client(ch))).await {
            Err(_) => Err(ForwardError::NoAnswer(format!(
                "timed out after {} ms",
                limit.as_millis()
            ))),
            // tonic reports a connection that could not be made as Unavailable: nothing was sent.
            Ok(Err(s)) if s.code() == Code::Unavailable && is_transport(&s) => {
                Err(ForwardError::NotSent(s.message().to_string()))
            }
            Ok(Err(s)) => Err(ForwardError::Refused(s)),
            Ok(Ok(r)) => Ok(r.into_inner()),
        }
    }
}

/// A status made by the client's transport (it carries the transport error as its source)
/// rather than one the leader sent (decoded from the response, without a source).
fn is_transport(s: &Status) -> bool {
    std::error::Error::source(s).is_some()
}

/// A deadline `limit` from now.
pub fn deadline_in(limit: Duration) -> Instant {
    Instant::now() + limit
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leader() -> DirectorNode {
        DirectorNode {
            raft_addr: "127.0.0.1:1".into(),
            api_addr: "127.0.0.1:2".into(),
        }
    }

    #[test]
    fn transport_failures_name_the_leader_and_hint_its_address() {
        for e in [
            ForwardError::NotSent("connection refused".into()),
            ForwardError::NoAnswer("timed out after 5 ms".into()),
        ] {
            let s = e.into_status(&leader());
            assert_eq!(s.code(), Code::Unavailable);
            assert!(
                s.message()
                    .starts_with("leader at 127.0.0.1:2 not reachable: "),
                "{}",
                s.message()
            );
            assert_eq!(
                s.metadata().get(lvs_proto::LEADER_HINT_KEY).unwrap(),
                "127.0.0.1:2"
            );
        }
    }

    #[test]
    fn the_leaders_own_answer_passes_through() {
        let s = ForwardError::Refused(Status::not_found("id: no member with id 9"))
            .into_status(&leader());
        assert_eq!(s.code(), Code::NotFound);
        assert_eq!(s.message(), "id: no member with id 9");
    }

    #[test]
    fn unavailable_from_the_leader_is_not_a_transport_failure() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(is_transport(&Status::from_error(Box::new(io))));
        assert!(!is_transport(&Status::unavailable(
            "this director is not the leader (leadership is moving)"
        )));
    }

    #[tokio::test]
    async fn a_leader_that_does_not_listen_is_not_sent_to() {
        // Port 1 on loopback refuses at once: the call never reached a leader.
        let f = Forwarder::new(Peers::new(None));
        let r = f
            .call(
                (7, &leader()),
                deadline_in(Duration::from_secs(5)),
                |mut c| async move { c.ping(lvs_proto::raft::PingRequest {}).await },
            )
            .await;
        assert!(matches!(r, Err(ForwardError::NotSent(_))), "{r:?}");
    }
}
