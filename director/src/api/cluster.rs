//! The cluster gRPC service: this director's view of Raft (state, leader, indexes, members and
//! their reachability, VIPs) and membership changes, which run on the leader.

use std::sync::Arc;

use lvs_proto::v1 as pb;
use lvs_proto::v1::cluster_server::Cluster;
use tonic::{Request, Response, Status};

use super::leader::LeaderApi;
use super::members::members;
use crate::raft::{known_leader, role_name, RaftHandle};
use crate::views::Views;

pub struct ClusterService {
    pub raft: Arc<RaftHandle>,
    pub views: Arc<Views>,
    pub leader: Arc<LeaderApi>,
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let m = self.raft.raft.metrics().borrow().clone();
        let members = members(&self.raft, &self.views).await;
        let leader_id = known_leader(&m);
        let leader_api = leader_id
            .and_then(|l| members.iter().find(|x| x.id == l))
            .map(|x| x.api_addr.clone())
            .unwrap_or_default();
        let revision = self.raft.state.read(|s| s.revision);
        let committed = self
            .raft
            .raft
            .with_raft_state(|st| st.committed.map(|l| l.index))
            .await
            .ok()
            .flatten();
        Ok(Response::new(pb::StatusResponse {
            node_id: m.id,
            state: role_name(m.state).into(),
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
                .views
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
        let r = req.into_inner();
        self.leader.add_member_anywhere(r).await.map(Response::new)
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let r = req.into_inner();
        self.leader
            .remove_member_anywhere(r)
            .await
            .map(Response::new)
    }
}
