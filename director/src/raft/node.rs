//! One director's Raft handle and the two request paths every API call goes through: writes
//! (committed locally when leader, otherwise passed on to the leader through `forward`) and read
//! barriers (linearizable reads, via ReadIndex on followers). Both are bounded by the request
//! timeout so a cluster without quorum answers Unavailable instead of hanging.

use std::time::{Duration, Instant};

use cluster_core::error::{CommandError, ErrorCode};
use cluster_core::state::{Applied, ClientRequest};
use cluster_core::store::{DirectorNode, NodeId, Raft, Response, StateHandle};
use lvs_proto::raft::{RaftMessage, ReadIndexRequest};
use openraft::error::{CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{RaftMetrics, ServerState};
use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use super::forward::{ForwardError, Forwarder};

/// Why a request failed, in a form that can cross the forwarding hop.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Fail {
    Command(CommandError),
    /// This node is not the leader and did not forward (forwarded requests are not re-forwarded).
    NotLeader {
        leader_api: Option<String>,
    },
    Unavailable {
        message: String,
        leader_api: Option<String>,
    },
    Internal(String),
}

impl Fail {
    fn unavailable(message: impl Into<String>) -> Fail {
        Fail::Unavailable {
            message: message.into(),
            leader_api: None,
        }
    }
}

fn with_hint(mut s: Status, leader_api: &Option<String>) -> Status {
    if let Some(addr) = leader_api {
        if let Ok(v) = addr.parse() {
            s.metadata_mut().insert(lvs_proto::LEADER_HINT_KEY, v);
        }
    }
    s
}

pub fn command_status(e: &CommandError) -> Status {
    let code = match e.code {
        ErrorCode::InvalidArgument => Code::InvalidArgument,
        ErrorCode::NotFound => Code::NotFound,
        ErrorCode::AlreadyExists => Code::AlreadyExists,
        ErrorCode::FailedPrecondition => Code::FailedPrecondition,
    };
    let mut s = Status::new(code, e.to_string());
    if let Ok(v) = e.field.parse() {
        s.metadata_mut().insert("x-lvs-field", v);
    }
    s
}

impl From<Fail> for Status {
    fn from(f: Fail) -> Status {
        match f {
            Fail::Command(e) => command_status(&e),
            Fail::NotLeader { leader_api } => with_hint(
                Status::unavailable("this director is not the leader"),
                &leader_api,
            ),
            Fail::Unavailable {
                message,
                leader_api,
            } => with_hint(Status::unavailable(message), &leader_api),
            Fail::Internal(m) => Status::internal(m),
        }
    }
}

/// The Raft node as the API uses it: writes, read barriers and who leads.
pub struct RaftHandle {
    pub id: NodeId,
    pub raft: Raft,
    /// The applied state (config, revision, history), read-only outside the state machine.
    pub state: StateHandle,
    pub forward: Forwarder,
    /// How long a request may take, wherever it runs (here or on the leader).
    pub request_timeout: Duration,
}

/// The leader as far as this node knows. openraft keeps naming this node after it stopped
/// leading (e.g. once removed from the membership); only trust that while it still leads.
pub fn known_leader(m: &RaftMetrics<NodeId, DirectorNode>) -> Option<NodeId> {
    m.current_leader
        .filter(|l| *l != m.id || m.state == ServerState::Leader)
}

/// Short pause between retries while an election settles.
const RETRY_PAUSE: Duration = Duration::from_millis(30);

impl RaftHandle {
    /// Whether this director leads, as far as it knows.
    pub fn leading(&self) -> bool {
        known_leader(&self.raft.metrics().borrow()) == Some(self.id)
    }

    /// The current leader's id and node record, if known.
    pub fn leader(&self) -> Option<(NodeId, DirectorNode)> {
        let m = self.raft.metrics().borrow().clone();
        let id = known_leader(&m)?;
        let node = m.membership_config.membership().get_node(&id)?.clone();
        Some((id, node))
    }

    pub fn leader_api(&self) -> Option<String> {
        self.leader().map(|(_, n)| n.api_addr)
    }

    /// The answer once a request's deadline has passed, pointing at the leader if known.
    fn too_late(&self, message: String) -> Fail {
        Fail::Unavailable {
            message,
            leader_api: self.leader_api(),
        }
    }

    /// When a request that arrives now must be answered.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.request_timeout
    }

    /// Commits a command: locally when leader, else through the leader. Retries while leadership
    /// moves, until the request timeout. A forwarded write whose fate is unknown (the leader did
    /// not answer in time) is not sent again, so a retry cannot apply it twice.
    pub async fn write(&self, req: ClientRequest) -> Result<Applied, Fail> {
        let deadline = self.deadline();
        let mut last = String::from("no leader elected");
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let ms = self.request_timeout.as_millis();
                return Err(self.too_late(format!("write not accepted within {ms} ms: {last}")));
            }
            match self.write_once(&req, remaining).await {
                Err(Fail::NotLeader { leader_api }) => {
                    match self.leader() {
                        Some((lid, node)) if lid != self.id => {
                            match self.forward_write(lid, &node, &req, deadline).await {
                                Ok(Err(Fail::NotLeader { .. })) => {
                                    last = format!("director {lid} lost leadership");
                                }
                                Ok(Err(Fail::Unavailable {
                                    message,
                                    leader_api: None,
                                })) => {
                                    return Err(Fail::Unavailable {
                                        message,
                                        leader_api: Some(node.api_addr),
                                    })
                                }
                                Ok(r) => return r,
                                Err(ForwardError::NotSent(e)) => {
                                    last = format!("forwarding to director {lid}: {e}")
                                }
                                Err(e) => {
                                    return Err(Fail::Unavailable {
                                        message: format!(
                                            "forwarded to the leader (director {lid}) but got no answer: {e}; the change may or may not have been applied (check with list or history)"
                                        ),
                                        leader_api: Some(node.api_addr),
                                    })
                                }
                            }
                        }
                        _ => {
                            last = match leader_api {
                                Some(a) => format!("leader at {a} not reachable"),
                                None => "no leader elected".into(),
                            }
                        }
                    }
                    tokio::time::sleep(RETRY_PAUSE.min(remaining)).await;
                }
                r => return r,
            }
        }
    }

    /// One attempt on this node only; `NotLeader` when another node leads (used for forwarded
    /// requests, which are never forwarded again).
    pub async fn write_once(&self, req: &ClientRequest, limit: Duration) -> Result<Applied, Fail> {
        match tokio::time::timeout(limit, self.raft.client_write(req.clone())).await {
            Err(_) => Err(Fail::unavailable(format!(
                "write not committed within {} ms: no quorum reachable (it may still be applied later)",
                limit.as_millis()
            ))),
            Ok(Ok(resp)) => match resp.data {
                Response::Ok(a) => Ok(a),
                Response::Err(e) => Err(Fail::Command(e)),
                Response::None => Err(Fail::Internal("state machine gave no result".into())),
            },
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(Fail::NotLeader {
                    leader_api: f.leader_node.map(|n| n.api_addr),
                })
            }
            Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                Err(Fail::Internal(e.to_string()))
            }
            Ok(Err(RaftError::Fatal(e))) => Err(Fail::unavailable(format!("raft stopped: {e}"))),
        }
    }

    /// Passes a write to the leader, which runs it once (never passing it on again). The answer
    /// is the leader's `write_once` result, JSON in the internal service's message.
    async fn forward_write(
        &self,
        lid: NodeId,
        leader: &DirectorNode,
        req: &ClientRequest,
        deadline: Instant,
    ) -> Result<Result<Applied, Fail>, ForwardError> {
        let data = serde_json::to_vec(req).map_err(|e| ForwardError::NotSent(e.to_string()))?;
        let resp = self
            .forward
            .call((lid, leader), deadline, |mut c| async move {
                c.forward(RaftMessage { data }).await
            })
            .await?;
        serde_json::from_slice(&resp.data).map_err(|e| ForwardError::NoAnswer(e.to_string()))
    }

    /// Waits until this node has applied everything committed before the call (linearizable
    /// read). On a follower, asks the leader for its confirmed commit index first.
    pub async fn read_barrier(&self) -> Result<(), Fail> {
        let deadline = self.deadline();
        let mut last = String::from("no leader elected");
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                let ms = self.request_timeout.as_millis();
                return Err(self.too_late(format!(
                    "linearizable read not possible within {ms} ms: {last} (use a stale read to see this director's copy)"
                )));
            }
            match tokio::time::timeout(remaining, self.raft.ensure_linearizable()).await {
                Err(_) => last = "leadership not confirmed by a quorum".into(),
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    match (f.leader_id, f.leader_node) {
                        (Some(lid), Some(node)) if lid != self.id => {
                            match self.read_index(lid, &node, deadline).await {
                                Ok(index) => {
                                    let r = self
                                        .raft
                                        .wait(Some(
                                            deadline.saturating_duration_since(Instant::now()),
                                        ))
                                        .applied_index_at_least(Some(index), "linearizable read")
                                        .await;
                                    match r {
                                        Ok(_) => return Ok(()),
                                        Err(e) => {
                                            last = format!("catching up to index {index}: {e}")
                                        }
                                    }
                                }
                                Err(e) => last = format!("asking director {lid}: {e}"),
                            }
                        }
                        _ => last = "no leader elected".into(),
                    }
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => {
                    last = "a quorum of voters did not confirm this director's leadership".into()
                }
                Ok(Err(RaftError::Fatal(e))) => {
                    return Err(Fail::unavailable(format!("raft stopped: {e}")))
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn read_index(
        &self,
        lid: NodeId,
        leader: &DirectorNode,
        deadline: Instant,
    ) -> Result<u64, ForwardError> {
        let resp = self
            .forward
            .call((lid, leader), deadline, |mut c| async move {
                c.read_index(ReadIndexRequest {}).await
            })
            .await?;
        Ok(resp.index)
    }

    /// The index a linearizable read must wait for, confirmed with a quorum (leader only).
    pub async fn leader_read_index(&self) -> Result<u64, Fail> {
        match tokio::time::timeout(self.request_timeout, self.raft.get_read_log_id()).await {
            Err(_) => Err(Fail::unavailable("leadership not confirmed by a quorum")),
            Ok(Ok((read, _applied))) => Ok(read.map(|l| l.index).unwrap_or(0)),
            Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                Err(Fail::NotLeader {
                    leader_api: f.leader_node.map(|n| n.api_addr),
                })
            }
            Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => Err(
                Fail::unavailable("a quorum of voters did not confirm this director's leadership"),
            ),
            Ok(Err(RaftError::Fatal(e))) => Err(Fail::unavailable(format!("raft stopped: {e}"))),
        }
    }
}
