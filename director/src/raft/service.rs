//! Server side of the internal director-to-director service: openraft RPCs, the leader-only
//! calls followers pass on (writes, agent listings, membership changes), ReadIndex for follower
//! reads, and a ping for reachability probes.

use std::sync::Arc;

use cluster_core::state::ClientRequest;
use lvs_proto::raft::raft_server::Raft as RaftRpc;
use lvs_proto::raft::{
    PingRequest, PingResponse, RaftMessage, ReadIndexRequest, ReadIndexResponse,
};
use lvs_proto::v1 as pb;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use super::node::{Fail, RaftHandle};

/// The leader-side work of the passed-on API calls other than writes, provided by the API
/// layer. The internal service runs them only while this director leads.
#[tonic::async_trait]
pub trait LeaderCalls: Send + Sync + 'static {
    async fn get_agents(&self) -> Result<pb::AgentsState, Status>;
    async fn add_member(&self, r: pb::AddMemberRequest) -> Result<pb::MembershipResponse, Status>;
    async fn remove_member(
        &self,
        r: pb::RemoveMemberRequest,
    ) -> Result<pb::MembershipResponse, Status>;
}

pub struct RaftService {
    pub raft: Arc<RaftHandle>,
    /// The VIPs this director holds now, for pings.
    pub held_vips: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    pub leader_calls: Arc<dyn LeaderCalls>,
}

fn decode<T: DeserializeOwned>(m: &RaftMessage) -> Result<T, Status> {
    serde_json::from_slice(&m.data).map_err(|e| Status::invalid_argument(format!("decoding: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<Response<RaftMessage>, Status> {
    let data = serde_json::to_vec(v).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftMessage { data }))
}

impl RaftService {
    /// A passed-on call reached a director that no longer leads: it is not passed on again.
    fn ensure_leading(&self) -> Result<(), Status> {
        if self.raft.leading() {
            return Ok(());
        }
        Err(Status::unavailable(
            "this director is not the leader (leadership is moving)",
        ))
    }
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(&self.raft.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(&self.raft.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(&self.raft.raft.install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let creq: ClientRequest = decode(req.get_ref())?;
        let res: Result<_, Fail> = self.raft.write_once(&creq, self.raft.request_timeout).await;
        encode(&res)
    }

    async fn get_agents(
        &self,
        _req: Request<pb::GetAgentsRequest>,
    ) -> Result<Response<pb::AgentsState>, Status> {
        self.ensure_leading()?;
        self.leader_calls.get_agents().await.map(Response::new)
    }

    async fn add_member(
        &self,
        req: Request<pb::AddMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.ensure_leading()?;
        let r = req.into_inner();
        self.leader_calls.add_member(r).await.map(Response::new)
    }

    async fn remove_member(
        &self,
        req: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        self.ensure_leading()?;
        let r = req.into_inner();
        self.leader_calls.remove_member(r).await.map(Response::new)
    }

    async fn read_index(
        &self,
        _req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        let index = self.raft.leader_read_index().await?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    async fn ping(&self, _req: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {
            node_id: self.raft.id,
            held_vips: (self.held_vips)(),
        }))
    }
}
