//! The cluster gRPC service: this director's view of Raft (state, leader, indexes, members and
//! their reachability) and membership changes, which run on the leader (followers pass them on).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_core::store::{self, DirectorNode, NodeId};
use lvs_proto::raft::PingRequest;
use lvs_proto::v1 as pb;
use lvs_proto::v1::cluster_client::ClusterClient;
use lvs_proto::v1::cluster_server::Cluster;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState};
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::raft_net::raft_client;

/// Marks a membership request passed on by a follower, so it is never passed on twice.
const FORWARDED_KEY: &str = "x-lvs-forwarded";

pub struct ClusterService {
    pub node: Arc<Node>,
}

fn state_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

fn membership_error(e: RaftError<NodeId, ClientWriteError<NodeId, DirectorNode>>) -> Status {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
            let mut s = Status::unavailable("leadership moved during the membership change; retry");
            if let Some(v) = f.leader_node.and_then(|n| n.api_addr.parse().ok()) {
                s.metadata_mut().insert(lvs_proto::LEADER_HINT_KEY, v);
            }
            s
        }
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            Status::failed_precondition(e.to_string())
        }
        RaftError::Fatal(e) => Status::unavailable(format!("raft stopped: {e}")),
    }
}

impl ClusterService {
    async fn members(&self) -> Vec<pb::Member> {
        let m = self.node.raft.metrics().borrow().clone();
        let replication = m.replication.clone().unwrap_or_default();
        let list = store::members(&m.membership_config);
        let probes = list.iter().map(|(id, (node, _))| {
            let peers = self.node.peers.clone();
            let (id, addr, me) = (*id, node.raft_addr.clone(), self.node.id);
            let held_here = self.node.vips.held();
            async move {
                if id == me {
                    return (true, Some(0), held_here);
                }
                let Ok(ch) = peers.get(id, &addr) else {
                    return (false, None, Vec::new());
                };
                let start = Instant::now();
                let r = tokio::time::timeout(
                    Duration::from_millis(500),
                    raft_client(ch).ping(PingRequest {}),
                )
                .await;
                match r {
                    Ok(Ok(p)) if p.get_ref().node_id == id => (
                        true,
                        Some(start.elapsed().as_millis() as u64),
                        p.into_inner().held_vips,
                    ),
                    _ => (false, None, Vec::new()),
                }
            }
        });
        let results = futures::future::join_all(probes).await;
        list.into_iter()
            .zip(results)
            .map(
                |((id, (node, voter)), (reachable, probe_ms, held_vips))| pb::Member {
                    id,
                    raft_addr: node.raft_addr,
                    api_addr: node.api_addr,
                    voter,
                    reachable,
                    matched_index: replication
                        .get(&id)
                        .and_then(|l| l.as_ref())
                        .map(|l| l.index)
                        .or_else(|| {
                            (id == m.id && m.state == ServerState::Leader)
                                .then_some(m.last_log_index)
                                .flatten()
                        }),
                    probe_ms,
                    held_vips,
                },
            )
            .collect()
    }

    /// Runs `f` on the leader: here when this node leads, else through the leader's API.
    async fn leader_client<T>(
        &self,
        req: &Request<T>,
    ) -> Result<Option<ClusterClient<tonic::transport::Channel>>, Status> {
        let m = self.node.raft.metrics().borrow().clone();
        if m.state == ServerState::Leader {
            return Ok(None);
        }
        if req.metadata().contains_key(FORWARDED_KEY) {
            return Err(Status::unavailable(
                "this director is not the leader (leadership is moving)",
            ));
        }
        let Some(api) = self.node.leader_api() else {
            return Err(Status::unavailable("no leader elected; retry shortly"));
        };
        let ch = self
            .node
            .peers
            .api_channel(&api, Duration::from_millis(500))
            .map_err(Status::internal)?;
        Ok(Some(ClusterClient::new(ch)))
    }
}

fn forwarded<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(FORWARDED_KEY, "1".parse().expect("ascii"));
    r
}

fn check_addr(field: &str, v: &str) -> Result<(), Status> {
    v.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
        Status::invalid_argument(format!("{field}: {v:?} is not HOST:PORT with a numeric IP"))
    })
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let m = self.node.raft.metrics().borrow().clone();
        let members = self.members().await;
        let leader_id = crate::node::known_leader(&m);
        let leader_api = leader_id
            .and_then(|l| members.iter().find(|x| x.id == l))
            .map(|x| x.api_addr.clone())
            .unwrap_or_default();
        let revision = self.node.state.read(|s| s.revision);
        let committed = self
            .node
            .raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .ok()
            .flatten();
        Ok(Response::new(pb::StatusResponse {
            node_id: m.id,
            state: state_name(m.state).into(),
            leader_id,
            leader_api_addr: leader_api,
            term: m.current_term,
            last_log_index: m.last_log_index,
            commit_index: committed,
            applied_index: m.last_applied.map(|l| l.index),
            revision,
            millis_since_quorum_ack: m.millis_since_quorum_ack,
            members,
            vips: self
                .node
                .vips
                .get()
                .into_iter()
                .map(|v| pb::VipState {
                    group: v.group,
                    address: v.address.to_string(),
                    interface: v.interface,
                    held: v.held,
                    since_ms: v.since_ms,
                    error: v.error.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn add_member(
        &self,
        req: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        if let Some(mut c) = self.leader_client(&req).await? {
            return c.add_member(forwarded(req.into_inner())).await;
        }
        let r = req.into_inner();
        if r.id == 0 {
            return Err(Status::invalid_argument("id: 0 is reserved; use 1 or more"));
        }
        check_addr("raft_addr", &r.raft_addr)?;
        check_addr("api_addr", &r.api_addr)?;
        let node = DirectorNode {
            raft_addr: r.raft_addr.clone(),
            api_addr: r.api_addr.clone(),
        };
        let m = self.node.raft.metrics().borrow().clone();
        let current = store::members(&m.membership_config);
        if let Some((existing, voter)) = current.get(&r.id) {
            if *existing != node {
                return Err(Status::already_exists(format!(
                    "id: director {} is already a member at {} (remove it first)",
                    r.id, existing
                )));
            }
            if *voter || r.learner_only {
                return Ok(Response::new(pb::MembershipResponse {
                    members: self.members().await,
                }));
            }
        }
        let catch_up = self.node.request_timeout * 6;
        match tokio::time::timeout(catch_up, self.node.raft.add_learner(r.id, node, true)).await {
            Err(_) => {
                return Err(Status::unavailable(format!(
                    "director {} was added as a learner but has not caught up within {} s; check that it runs at {}",
                    r.id,
                    catch_up.as_secs(),
                    r.raft_addr
                )))
            }
            Ok(res) => {
                res.map_err(membership_error)?;
            }
        }
        if !r.learner_only {
            let change = ChangeMembers::AddVoterIds(BTreeSet::from([r.id]));
            tokio::time::timeout(catch_up, self.node.raft.change_membership(change, false))
                .await
                .map_err(|_| Status::unavailable("membership change not committed in time"))?
                .map_err(membership_error)?;
        }
        Ok(Response::new(pb::MembershipResponse {
            members: self.members().await,
        }))
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        if let Some(mut c) = self.leader_client(&req).await? {
            return c.remove_member(forwarded(req.into_inner())).await;
        }
        let id = req.into_inner().id;
        let m = self.node.raft.metrics().borrow().clone();
        let current = store::members(&m.membership_config);
        let Some((_, voter)) = current.get(&id) else {
            return Err(Status::not_found(format!("id: no member with id {id}")));
        };
        let change = if *voter {
            let voters = current.values().filter(|(_, v)| *v).count();
            if voters == 1 {
                return Err(Status::failed_precondition(format!(
                    "id: director {id} is the last voter; a cluster cannot remove its last voter"
                )));
            }
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        tokio::time::timeout(
            self.node.request_timeout * 2,
            self.node.raft.change_membership(change, false),
        )
        .await
        .map_err(|_| Status::unavailable("membership change not committed in time"))?
        .map_err(membership_error)?;
        Ok(Response::new(pb::MembershipResponse {
            members: self.members().await,
        }))
    }
}
