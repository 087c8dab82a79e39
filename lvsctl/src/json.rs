//! `--output json` documents: one serde struct per view, with stable snake_case field names.

use cluster_core::model::{Config, VipGroup};
use cluster_core::Change;
use lvs_proto::convert::change_from_pb;
use lvs_proto::v1 as pb;
use serde::Serialize;

use crate::output::rfc3339;

/// `list`, `export`: the model `Config` as serde writes it (the TOML file's names).
#[derive(Debug, Serialize)]
pub struct ConfigDoc<'a> {
    pub revision: u64,
    pub node_id: u64,
    pub config: &'a Config,
}

/// `vip list`.
#[derive(Debug, Serialize)]
pub struct VipsDoc<'a> {
    pub revision: u64,
    pub node_id: u64,
    pub vip_groups: &'a [VipGroup],
}

/// Single writes (`service`, `real`, `healthcheck`, `vip`, `sync`).
#[derive(Debug, Serialize)]
pub struct WriteDoc<'a> {
    pub revision: u64,
    pub changes: &'a [Change],
}

/// `apply`.
#[derive(Debug, Serialize)]
pub struct ApplyDoc<'a> {
    pub revision: u64,
    pub applied: bool,
    pub dry_run: bool,
    pub changes: &'a [Change],
}

/// One history entry (`history` entries, `watch` lines).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub revision: u64,
    pub time_ms: u64,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub principal: String,
    pub command: String,
    pub changes: Vec<Change>,
}

impl Entry {
    pub fn from_pb(e: &pb::HistoryEntry) -> Entry {
        Entry {
            revision: e.revision,
            time_ms: e.time_ms,
            time: rfc3339(e.time_ms, true),
            principal: e.principal.clone(),
            command: e.command.clone(),
            changes: e.changes.iter().map(change_from_pb).collect(),
        }
    }
}

/// `history`.
#[derive(Debug, Serialize)]
pub struct HistoryDoc<'a> {
    pub revision: u64,
    pub entries: &'a [Entry],
}

#[derive(Debug, Serialize)]
pub struct MemberDoc {
    pub id: u64,
    pub raft_addr: String,
    pub api_addr: String,
    pub voter: bool,
    pub reachable: bool,
    pub matched_index: Option<u64>,
    pub probe_ms: Option<u64>,
    /// VIPs the member holds, as "INTERFACE ADDRESS/PREFIX".
    pub held_vips: Vec<String>,
}

impl MemberDoc {
    pub fn from_pb(m: &pb::Member) -> MemberDoc {
        MemberDoc {
            id: m.id,
            raft_addr: m.raft_addr.clone(),
            api_addr: m.api_addr.clone(),
            voter: m.voter,
            reachable: m.reachable,
            matched_index: m.matched_index,
            probe_ms: m.probe_ms,
            held_vips: m.held_vips.clone(),
        }
    }
}

/// `cluster add`, `cluster remove`.
#[derive(Debug, Serialize)]
pub struct MembersDoc {
    pub members: Vec<MemberDoc>,
}

impl MembersDoc {
    pub fn from_pb(ms: &[pb::Member]) -> MembersDoc {
        MembersDoc {
            members: ms.iter().map(MemberDoc::from_pb).collect(),
        }
    }
}

/// `cluster status`.
#[derive(Debug, Serialize)]
pub struct StatusDoc {
    /// The address lvsctl asked.
    pub endpoint: String,
    pub node_id: u64,
    pub state: String,
    pub leader_id: Option<u64>,
    pub leader_api_addr: Option<String>,
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub revision: u64,
    pub millis_since_quorum_ack: Option<u64>,
    pub members: Vec<MemberDoc>,
    /// Every configured VIP as the answering director sees it.
    pub vips: Vec<VipStateDoc>,
}

#[derive(Debug, Serialize)]
pub struct VipStateDoc {
    pub group: String,
    pub address: String,
    pub interface: String,
    /// The answering director holds it.
    pub held: bool,
    /// Unix milliseconds of its last acquire or release there (null: never).
    pub since_ms: Option<u64>,
    pub error: Option<String>,
}

impl StatusDoc {
    pub fn from_pb(s: &pb::StatusResponse, endpoint: &str) -> StatusDoc {
        StatusDoc {
            endpoint: endpoint.to_string(),
            node_id: s.node_id,
            state: s.state.clone(),
            leader_id: s.leader_id,
            leader_api_addr: (!s.leader_api_addr.is_empty()).then(|| s.leader_api_addr.clone()),
            term: s.term,
            last_log_index: s.last_log_index,
            commit_index: s.commit_index,
            applied_index: s.applied_index,
            revision: s.revision,
            millis_since_quorum_ack: s.millis_since_quorum_ack,
            members: s.members.iter().map(MemberDoc::from_pb).collect(),
            vips: s
                .vips
                .iter()
                .map(|v| VipStateDoc {
                    group: v.group.clone(),
                    address: v.address.clone(),
                    interface: v.interface.clone(),
                    held: v.held,
                    since_ms: (v.since_ms > 0).then_some(v.since_ms),
                    error: (!v.error.is_empty()).then(|| v.error.clone()),
                })
                .collect(),
        }
    }
}

pub fn pretty<T: Serialize>(v: &T) -> String {
    // Every document here is plain data (string keys, no maps with non-string keys).
    serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")) + "\n"
}

pub fn line<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")) + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_names_are_stable() {
        let c = Config::from_toml(
            "[[service]]\nkey = \"tcp/10.0.0.1:80\"\n[[service.reals]]\naddress = \"10.0.1.1\"\nport = 80\n",
        )
        .unwrap();
        let v: serde_json::Value = serde_json::from_str(&pretty(&ConfigDoc {
            revision: 4,
            node_id: 2,
            config: &c,
        }))
        .unwrap();
        assert_eq!(v["revision"], 4);
        assert_eq!(v["node_id"], 2);
        assert_eq!(v["config"]["service"][0]["key"], "tcp/10.0.0.1:80");
        assert_eq!(v["config"]["service"][0]["reals"][0]["forward"], "dr");

        let e = Entry::from_pb(&pb::HistoryEntry {
            revision: 5,
            time_ms: 1_000,
            principal: "bob@lb2".into(),
            command: "add-real".into(),
            changes: vec![pb::Change {
                op: "add".into(),
                object: "real tcp/10.0.0.1:80 10.0.1.1:80".into(),
                detail: "forward=dr weight=1".into(),
            }],
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&line(&e)).unwrap(),
            json!({
                "revision": 5,
                "time_ms": 1000,
                "time": "1970-01-01T00:00:01.000Z",
                "principal": "bob@lb2",
                "command": "add-real",
                "changes": [{"op": "add", "object": "real tcp/10.0.0.1:80 10.0.1.1:80", "detail": "forward=dr weight=1"}]
            })
        );
        assert!(!line(&e).trim_end().contains('\n'));

        let s = StatusDoc::from_pb(
            &pb::StatusResponse {
                node_id: 1,
                state: "candidate".into(),
                ..Default::default()
            },
            "a:1",
        );
        let v: serde_json::Value = serde_json::from_str(&pretty(&s)).unwrap();
        assert_eq!(v["leader_api_addr"], serde_json::Value::Null);
        assert_eq!(v["endpoint"], "a:1");
        assert_eq!(v["members"], json!([]));
    }
}
