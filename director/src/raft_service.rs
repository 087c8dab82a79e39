//! Server side of the internal director-to-director service: openraft RPCs, writes forwarded by
//! followers, ReadIndex for follower reads, and a ping for reachability probes.

use std::sync::Arc;

use cluster_core::state::ClientRequest;
use lvs_proto::raft::raft_server::Raft as RaftRpc;
use lvs_proto::raft::{
    PingRequest, PingResponse, RaftMessage, ReadIndexRequest, ReadIndexResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::node::{Fail, Node};

pub struct RaftService {
    pub node: Arc<Node>,
}

fn decode<T: DeserializeOwned>(m: &RaftMessage) -> Result<T, Status> {
    serde_json::from_slice(&m.data).map_err(|e| Status::invalid_argument(format!("decoding: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<Response<RaftMessage>, Status> {
    let data = serde_json::to_vec(v).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftMessage { data }))
}

#[tonic::async_trait]
impl RaftRpc for RaftService {
    async fn append_entries(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(&self.node.raft.append_entries(rpc).await)
    }

    async fn vote(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(&self.node.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftMessage>,
    ) -> Result<Response<RaftMessage>, Status> {
        let rpc = decode(req.get_ref())?;
        encode(&self.node.raft.install_snapshot(rpc).await)
    }

    async fn forward(&self, req: Request<RaftMessage>) -> Result<Response<RaftMessage>, Status> {
        let creq: ClientRequest = decode(req.get_ref())?;
        let res: Result<_, Fail> = self.node.write_once(&creq, self.node.request_timeout).await;
        encode(&res)
    }

    async fn read_index(
        &self,
        _req: Request<ReadIndexRequest>,
    ) -> Result<Response<ReadIndexResponse>, Status> {
        let index = self.node.leader_read_index().await?;
        Ok(Response::new(ReadIndexResponse { index }))
    }

    async fn ping(&self, _req: Request<PingRequest>) -> Result<Response<PingResponse>, Status> {
        Ok(Response::new(PingResponse {
            node_id: self.node.id,
            held_vips: self.node.vips.held(),
        }))
    }
}
