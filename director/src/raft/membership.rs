//! Membership changes, run on the leader: add a director (as a learner that must catch up, then
//! as a voter unless asked otherwise) and remove one (never the last voter). Requests are
//! checked first, and a repeated request that is already in effect succeeds without a change.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use cluster_core::store::{self, DirectorNode, NodeId};
use lvs_proto::v1 as pb;
use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;
use tonic::Status;

use super::node::RaftHandle;

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

fn check_addr(field: &str, v: &str) -> Result<(), Status> {
    v.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
        Status::invalid_argument(format!("{field}: {v:?} is not HOST:PORT with a numeric IP"))
    })
}

/// Checks an add request: the director it names, with its addresses.
pub fn check_add(r: &pb::AddMemberRequest) -> Result<DirectorNode, Status> {
    if r.id == 0 {
        return Err(Status::invalid_argument("id: 0 is reserved; use 1 or more"));
    }
    check_addr("raft_addr", &r.raft_addr)?;
    check_addr("api_addr", &r.api_addr)?;
    Ok(DirectorNode {
        raft_addr: r.raft_addr.clone(),
        api_addr: r.api_addr.clone(),
    })
}

/// Adds director `r.id` (leader only). A learner must catch up within six request timeouts.
pub async fn add(raft: &RaftHandle, r: pb::AddMemberRequest) -> Result<(), Status> {
    let node = check_add(&r)?;
    let m = raft.raft.metrics().borrow().clone();
    let current = store::members(&m.membership_config);
    if let Some((existing, voter)) = current.get(&r.id) {
        if *existing != node {
            return Err(Status::already_exists(format!(
                "id: director {} is already a member at {} (remove it first)",
                r.id, existing
            )));
        }
        if *voter || r.learner_only {
            return Ok(());
        }
    }
    let catch_up = raft.request_timeout * 6;
    match tokio::time::timeout(catch_up, raft.raft.add_learner(r.id, node, true)).await {
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
        tokio::time::timeout(catch_up, raft.raft.change_membership(change, false))
            .await
            .map_err(|_| Status::unavailable("membership change not committed in time"))?
            .map_err(membership_error)?;
    }
    Ok(())
}

/// Removes director `id` (leader only); the last voter stays.
pub async fn remove(raft: &RaftHandle, id: NodeId) -> Result<(), Status> {
    let m = raft.raft.metrics().borrow().clone();
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
        raft.request_timeout * 2,
        raft.raft.change_membership(change, false),
    )
    .await
    .map_err(|_| Status::unavailable("membership change not committed in time"))?
    .map_err(membership_error)?;
    Ok(())
}

/// How long a membership change may take end to end: the learner's catch-up and the voter
/// change, each bounded on the leader, plus the request timeout for the hop.
pub fn budget(raft: &RaftHandle) -> std::time::Duration {
    raft.request_timeout * 13
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, raft_addr: &str, api_addr: &str) -> pb::AddMemberRequest {
        pb::AddMemberRequest {
            id,
            raft_addr: raft_addr.into(),
            api_addr: api_addr.into(),
            learner_only: false,
        }
    }

    #[test]
    fn add_requests_are_checked_field_by_field() {
        let cases = [
            (
                req(0, "127.0.0.1:1", "127.0.0.1:2"),
                "id: 0 is reserved; use 1 or more",
            ),
            (
                req(4, "localhost:1", "127.0.0.1:2"),
                "raft_addr: \"localhost:1\" is not HOST:PORT with a numeric IP",
            ),
            (
                req(4, "127.0.0.1:1", "10.0.0.1"),
                "api_addr: \"10.0.0.1\" is not HOST:PORT with a numeric IP",
            ),
        ];
        for (i, (r, want)) in cases.into_iter().enumerate() {
            let e = check_add(&r).expect_err(&format!("row {i} accepted"));
            assert_eq!(e.code(), tonic::Code::InvalidArgument, "row {i}");
            assert_eq!(e.message(), want, "row {i}");
        }
        let ok = check_add(&req(4, "127.0.0.1:1", "[::1]:2")).unwrap();
        assert_eq!(ok.api_addr, "[::1]:2");
    }
}
