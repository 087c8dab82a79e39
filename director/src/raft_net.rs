//! openraft's network over tonic: one lazily connected channel per peer, reused across the
//! `new_client` calls openraft makes for every vote and replication stream; every RPC is bounded
//! by openraft's hard TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cluster_core::store::{DirectorNode, NodeId, TypeConfig};
use lvs_proto::raft::raft_client::RaftClient;
use lvs_proto::raft::RaftMessage;
use lvs_proto::tls::Tls;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::Channel;

/// Large enough for a full AppendEntries batch or snapshot chunk.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// Builds a lazily connecting channel to `addr` (`host:port`), with mTLS when `tls` is given.
pub fn channel(
    addr: &str,
    connect_timeout: Duration,
    tls: Option<&Tls>,
) -> Result<Channel, String> {
    let ep = lvs_proto::tls::endpoint(addr, tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    Ok(ep.connect_lazy())
}

pub fn raft_client(ch: Channel) -> RaftClient<Channel> {
    RaftClient::new(ch)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
}

/// Channels to peers keyed by node id, rebuilt when a peer's address changes.
#[derive(Clone, Default)]
pub struct Peers {
    inner: Arc<Mutex<HashMap<NodeId, (String, Channel)>>>,
    /// This director's certificate, presented to peers; `None` when running `--insecure`.
    tls: Option<Tls>,
}

impl Peers {
    pub fn new(tls: Option<Tls>) -> Peers {
        Peers {
            inner: Arc::default(),
            tls,
        }
    }

    /// A channel to another director's API (forwarded calls), with this director's certificate.
    pub fn api_channel(&self, addr: &str, connect_timeout: Duration) -> Result<Channel, String> {
        channel(addr, connect_timeout, self.tls.as_ref())
    }

    pub fn get(&self, id: NodeId, addr: &str) -> Result<Channel, String> {
        let mut m = self.inner.lock().expect("peers lock");
        if let Some((a, ch)) = m.get(&id) {
            if a == addr {
                return Ok(ch.clone());
            }
        }
        let ch = channel(addr, Duration::from_millis(500), self.tls.as_ref())?;
        m.insert(id, (addr.to_string(), ch.clone()));
        Ok(ch)
    }

    /// Replaces the channel to `id` with a new connection. A connection whose packets were
    /// dropped (a partition) sits in TCP retransmission back-off after the network heals; a fresh
    /// one gets through at once, before the healed peer's election timer fires and it disrupts
    /// the leader (openraft 0.9 has no pre-vote).
    pub fn reconnect(&self, id: NodeId, addr: &str) -> Result<Channel, String> {
        let ch = channel(addr, Duration::from_millis(500), self.tls.as_ref())?;
        self.inner
            .lock()
            .expect("peers lock")
            .insert(id, (addr.to_string(), ch.clone()));
        Ok(ch)
    }
}

pub struct Network {
    pub self_id: NodeId,
    pub peers: Peers,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &DirectorNode) -> PeerClient {
        PeerClient {
            self_id: self.self_id,
            target,
            addr: node.raft_addr.clone(),
            peers: self.peers.clone(),
            client: self.peers.get(target, &node.raft_addr).map(raft_client),
        }
    }
}

pub struct PeerClient {
    self_id: NodeId,
    target: NodeId,
    addr: String,
    peers: Peers,
    client: Result<RaftClient<Channel>, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Msg(String);

type RpcErr<E> = RPCError<NodeId, DirectorNode, E>;

impl PeerClient {
    async fn call<Req, Resp, E>(
        &mut self,
        action: RPCTypes,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let client = match &mut self.client {
            Ok(c) => c,
            Err(e) => return Err(RPCError::Unreachable(Unreachable::new(&Msg(e.clone())))),
        };
        let data = serde_json::to_vec(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let msg = RaftMessage { data };
        let fut = async {
            match action {
                RPCTypes::AppendEntries => client.append_entries(msg).await,
                RPCTypes::Vote => client.vote(msg).await,
                RPCTypes::InstallSnapshot => client.install_snapshot(msg).await,
            }
        };
        let resp = match tokio::time::timeout(option.hard_ttl(), fut).await {
            Err(_) => {
                // The connection may be black-holed: use a new one for the next call.
                self.client = self
                    .peers
                    .reconnect(self.target, &self.addr)
                    .map(raft_client);
                return Err(RPCError::Timeout(Timeout {
                    action,
                    id: self.self_id,
                    target: self.target,
                    timeout: option.hard_ttl(),
                }));
            }
            Ok(Err(status)) => {
                let e = Msg(format!("{}: {}", status.code(), status.message()));
                return Err(match status.code() {
                    tonic::Code::Unavailable | tonic::Code::Unknown => {
                        RPCError::Unreachable(Unreachable::new(&e))
                    }
                    _ => RPCError::Network(NetworkError::new(&e)),
                });
            }
            Ok(Ok(r)) => r.into_inner(),
        };
        let res: Result<Resp, E> = serde_json::from_slice(&resp.data)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<RaftError<NodeId>>> {
        self.call(RPCTypes::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<RaftError<NodeId, InstallSnapshotError>>>
    {
        self.call(RPCTypes::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<RaftError<NodeId>>> {
        self.call(RPCTypes::Vote, &rpc, &option).await
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // A peer that is down is retried quickly enough to rejoin within a heartbeat or two.
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
