//! Raft families: term, role, leader, log indexes, quorum acknowledgement age, members, and
//! the config revision applied.

use std::fmt;

use lvs_ops::openmetrics::{gauge, gauges};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::snapshot::{flag, Snapshot};

/// The families of this part of a scrape, in their order on the page.
pub(super) fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    let r = &s.raft;
    gauge(
        e,
        "raft_node_id",
        "This director's Raft node id",
        None,
        r.node_id as i64,
    )?;
    gauge(e, "raft_term", "Current Raft term", None, r.term as i64)?;
    gauge(
        e,
        "raft_is_leader",
        "1 while this director is the Raft leader",
        None,
        flag(r.is_leader),
    )?;
    gauge(
        e,
        "raft_leader_id",
        "Node id of the leader as this director knows it; -1 when unknown",
        None,
        r.leader.map_or(-1, |l| l as i64),
    )?;
    gauges(
        e,
        "raft_state",
        "This director's Raft role (1 for the current one)",
        None,
        ["leader", "follower", "candidate", "learner", "shutdown"]
            .into_iter()
            .map(|st| (vec![("state", st.to_string())], flag(st == r.state)))
            .collect(),
    )?;
    for (name, help, v) in [
        (
            "raft_last_log_index",
            "Index of the last entry in this director's log",
            r.last_log_index,
        ),
        (
            "raft_commit_index",
            "Index of the last entry known committed",
            r.commit_index,
        ),
        (
            "raft_applied_index",
            "Index of the last entry applied to the state machine",
            r.applied_index,
        ),
    ] {
        gauge(e, name, help, None, v.map_or(-1, |i| i as i64))?;
    }
    if let Some(ms) = r.quorum_ack_ms {
        gauge(
            e,
            "raft_quorum_ack_age",
            "Time since a quorum last acknowledged this leader (leader only)",
            Some(&Unit::Seconds),
            ms as f64 / 1000.0,
        )?;
    }
    gauges(
        e,
        "raft_members",
        "Members of the cluster by role",
        None,
        vec![
            (vec![("role", "voter".to_string())], r.voters as i64),
            (vec![("role", "learner".to_string())], r.learners as i64),
        ],
    )?;
    gauge(
        e,
        "config_revision",
        "Revision of the replicated configuration this director has applied",
        None,
        s.config_revision as i64,
    )?;
    Ok(())
}
