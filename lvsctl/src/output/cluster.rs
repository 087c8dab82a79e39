//! Text views of the cluster: `cluster status` (the answering director, its VIPs) and the
//! member table.

use std::time::{Duration, UNIX_EPOCH};

use lvs_proto::v1 as pb;

use super::table::table;

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

pub fn members(ms: &[pb::Member]) -> String {
    let rows: Vec<Vec<String>> = ms
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                m.raft_addr.clone(),
                m.api_addr.clone(),
                if m.voter { "voter" } else { "learner" }.into(),
                if m.reachable { "yes" } else { "no" }.into(),
                opt(m.matched_index),
                m.probe_ms
                    .map(|p| format!("{p} ms"))
                    .unwrap_or_else(|| "-".into()),
                if m.held_vips.is_empty() {
                    "-".into()
                } else {
                    m.held_vips.join(", ")
                },
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "RAFT ADDRESS",
            "API ADDRESS",
            "ROLE",
            "REACHABLE",
            "MATCHED",
            "PROBE",
            "HOLDS VIPS",
        ],
        &rows,
    )
}

/// `cluster status`: the answering director's view, then its member table.
pub fn status(s: &pb::StatusResponse, endpoint: &str) -> String {
    let leader = match (s.leader_id, s.leader_api_addr.as_str()) {
        (Some(id), "") => id.to_string(),
        (Some(id), addr) => format!("{id} at {addr}"),
        (None, _) => "unknown".into(),
    };
    let mut rows = vec![
        ("Director", format!("{} (asked at {endpoint})", s.node_id)),
        ("State", s.state.clone()),
        ("Leader", leader),
        ("Term", s.term.to_string()),
        (
            "Log",
            format!(
                "last {}, committed {}, applied {}",
                opt(s.last_log_index),
                opt(s.commit_index),
                opt(s.applied_index)
            ),
        ),
        ("Revision", s.revision.to_string()),
    ];
    if let Some(ms) = s.millis_since_quorum_ack {
        rows.push(("Quorum ack", format!("{ms} ms ago")));
    }
    let mut out: String = rows
        .iter()
        .map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:")))
        .collect();
    out.push('\n');
    out.push_str(&members(&s.members));
    if !s.vips.is_empty() {
        out.push('\n');
        out.push_str(&vips(s));
    }
    out
}

/// The answering director's view of every configured VIP.
fn vips(s: &pb::StatusResponse) -> String {
    let rows: Vec<Vec<String>> = s
        .vips
        .iter()
        .map(|v| {
            let since = match v.since_ms {
                0 => "-".to_string(),
                ms => humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms))
                    .to_string(),
            };
            vec![
                v.group.clone(),
                v.address.clone(),
                v.interface.clone(),
                if v.held { "held here" } else { "not here" }.into(),
                since,
                if v.error.is_empty() {
                    "-".into()
                } else {
                    v.error.clone()
                },
            ]
        })
        .collect();
    table(
        &[
            "VIP GROUP",
            "ADDRESS",
            "INTERFACE",
            "STATE",
            "SINCE",
            "ERROR",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_view() {
        let s = pb::StatusResponse {
            node_id: 2,
            state: "follower".into(),
            leader_id: Some(1),
            leader_api_addr: "10.0.0.11:7001".into(),
            term: 4,
            last_log_index: Some(20),
            commit_index: Some(20),
            applied_index: Some(19),
            revision: 7,
            millis_since_quorum_ack: None,
            members: vec![pb::Member {
                id: 1,
                raft_addr: "10.0.0.11:7000".into(),
                api_addr: "10.0.0.11:7001".into(),
                voter: true,
                reachable: true,
                matched_index: None,
                probe_ms: Some(1),
                held_vips: vec!["eth0 192.0.2.10/24".into()],
            }],
            vips: vec![pb::VipState {
                group: "web".into(),
                address: "192.0.2.10/24".into(),
                interface: "eth0".into(),
                held: false,
                since_ms: 0,
                error: "interface \"eth0\" not found".into(),
            }],
        };
        let text = status(&s, "10.0.0.12:7001");
        assert!(
            text.starts_with("Director:   2 (asked at 10.0.0.12:7001)\n"),
            "{text}"
        );
        assert!(text.contains("Leader:     1 at 10.0.0.11:7001\n"), "{text}");
        assert!(text.contains("Log:        last 20, committed 20, applied 19\n"));
        assert!(!text.contains("Quorum"));
        assert!(
            text.contains(
                "1   10.0.0.11:7000  10.0.0.11:7001  voter  yes        -        1 ms   eth0 192.0.2.10/24\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("web        192.0.2.10/24  eth0       not here  -      interface \"eth0\" not found"),
            "{text}"
        );
    }
}
