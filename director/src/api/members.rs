//! The member list as this director sees it: each member's addresses and role, how far its log
//! matches the leader's, and whether it answers a ping now (with the VIPs it says it holds).

use std::time::{Duration, Instant};

use cluster_core::store;
use lvs_proto::raft::PingRequest;
use lvs_proto::v1 as pb;
use openraft::ServerState;

use crate::raft::network::raft_client;
use crate::raft::RaftHandle;
use crate::views::Views;

/// A ping that takes longer marks the member unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Pings director `id` at `addr`: reachable, round trip and held VIPs.
async fn probe(raft: &RaftHandle, id: u64, addr: String) -> (bool, Option<u64>, Vec<String>) {
    let Ok(ch) = raft.forward.peers().get(id, &addr) else {
        return (false, None, Vec::new());
    };
    let start = Instant::now();
    let r = tokio::time::timeout(PROBE_TIMEOUT, raft_client(ch).ping(PingRequest {})).await;
    match r {
        Ok(Ok(p)) if p.get_ref().node_id == id => (
            true,
            Some(start.elapsed().as_millis() as u64),
            p.into_inner().held_vips,
        ),
        _ => (false, None, Vec::new()),
    }
}

/// Every member, probed in parallel (this director answers for itself without a ping).
pub async fn members(raft: &RaftHandle, views: &Views) -> Vec<pb::Member> {
    let m = raft.raft.metrics().borrow().clone();
    let replication = m.replication.clone().unwrap_or_default();
    let list = store::members(&m.membership_config);
    let probes = list.iter().map(|(id, (node, _))| {
        let (id, addr) = (*id, node.raft_addr.clone());
        let held_here = views.vips.held();
        async move {
            if id == raft.id {
                return (true, Some(0), held_here);
            }
            probe(raft, id, addr).await
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
