//! Human-readable rendering: the ipvsadm-style service list, diffs, history and cluster tables.

use std::time::{Duration, UNIX_EPOCH};

use cluster_core::model::*;
use cluster_core::Change;
use lvs_proto::v1 as pb;

use crate::json::Entry;

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            let pad = widths.get(i).copied().unwrap_or(0);
            s.extend(std::iter::repeat_n(
                ' ',
                pad.saturating_sub(c.chars().count()),
            ));
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// ipvsadm's words for the forwarding method.
pub fn forward_word(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "Masq",
        Forward::Dr => "Route",
        Forward::Tunnel => "Tunnel",
    }
}

/// `TCP  10.0.0.1:80 wlc persistent 300 mask 255.255.255.0`, as `ipvsadm -Ln` prints it, plus
/// the attributes ipvsadm has no column for.
pub fn service_line(s: &Service) -> String {
    let mut out = match s.key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => format!(
            "{}  {} {}",
            protocol.as_str().to_ascii_uppercase(),
            fmt_endpoint(&address, port),
            s.scheduler
        ),
        ServiceKey::Fwmark { family, mark } => {
            let v6 = if family == Family::Ipv6 { " IPv6" } else { "" };
            format!("FWM  {mark}{v6} {}", s.scheduler)
        }
    };
    if !s.sched_flags.is_empty() {
        let prefix = match s.scheduler {
            Scheduler::Mh => "mh-",
            Scheduler::Sh => "sh-",
            _ => "",
        };
        let flags: Vec<String> = s
            .sched_flags
            .iter()
            .map(|f| format!("{prefix}{}", f.as_str()))
            .collect();
        out.push_str(&format!(" ({})", flags.join(",")));
    }
    if let Some(p) = &s.persistence {
        out.push_str(&format!(" persistent {}", p.timeout));
        if let Some(m) = &p.netmask {
            out.push_str(&format!(" mask {m}"));
        }
    }
    if s.one_packet {
        out.push_str(" ops");
    }
    if s.weight_policy != WeightPolicy::Static {
        out.push_str(&format!(" weight-policy {}", s.weight_policy.as_str()));
    }
    if let Some(h) = &s.health_check {
        out.push_str(&format!(" check {}", h.kind.as_str()));
    }
    out
}

/// `  -> 10.0.1.1:80                  Route   1      0       0`, then tunnel details ipvsadm -Ln
/// has no column for.
pub fn real_line(r: &RealServer) -> String {
    let mut line = format!(
        "  -> {:<28} {:<7} {:<6} {:<7} {:<7}",
        r.endpoint(),
        forward_word(r.forward),
        r.weight,
        r.upper_threshold,
        r.lower_threshold
    );
    if let Some(t) = r.tunnel_type {
        line.push_str(&format!(" {}", t.as_str()));
    }
    if let Some(p) = r.tunnel_port {
        line.push_str(&format!(" port {p}"));
    }
    // ipvsadm's flag words: --tun-nocsum, --tun-csum, --tun-remcsum.
    match r.tunnel_csum {
        Some(TunnelCsum::None) => line.push_str(" nocsum"),
        Some(c) => line.push_str(&format!(" {}", c.as_str())),
        None => {}
    }
    line.trim_end().to_string()
}

/// The `list` view: a header like `ipvsadm -Ln`, then each service and its real servers.
pub fn list(revision: u64, node_id: u64, services: &[&Service]) -> String {
    let mut out = format!("Config revision {revision} (served by director {node_id})\n");
    out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
    out.push_str("  -> RemoteAddress:Port           Forward Weight UThresh LThresh\n");
    for s in services {
        out.push_str(&service_line(s));
        out.push('\n');
        for r in &s.reals {
            out.push_str(&real_line(r));
            out.push('\n');
        }
    }
    out
}

pub fn changes(changes: &[Change]) -> String {
    changes.iter().map(|c| format!("{c}\n")).collect()
}

/// A single write: the changes, then the revision reached.
pub fn write_result(revision: u64, chg: &[Change]) -> String {
    let mut out = changes(chg);
    if chg.is_empty() {
        out.push_str(&format!("no changes (revision {revision})\n"));
    } else {
        out.push_str(&format!("applied: revision {revision}\n"));
    }
    out
}

pub fn apply_result(revision: u64, chg: &[Change], dry_run: bool) -> String {
    let mut out = changes(chg);
    if dry_run {
        out.push_str(&format!(
            "dry run: {} change(s), nothing written\n",
            chg.len()
        ));
    } else if chg.is_empty() {
        out.push_str(&format!("no changes (revision {revision})\n"));
    } else {
        out.push_str(&format!("applied: revision {revision}\n"));
    }
    out
}

/// RFC 3339 UTC, or the raw milliseconds when the time is beyond what RFC 3339 can say.
pub fn rfc3339(time_ms: u64, millis: bool) -> String {
    let Some(t) = UNIX_EPOCH.checked_add(Duration::from_millis(time_ms)) else {
        return format!("@{time_ms}ms");
    };
    // humantime refuses years past 9999 with a formatting error, which `to_string` would panic on.
    if time_ms / 1000 >= 253_402_300_800 {
        return format!("@{time_ms}ms");
    }
    if millis {
        humantime::format_rfc3339_millis(t).to_string()
    } else {
        humantime::format_rfc3339_seconds(t).to_string()
    }
}

/// `revision 13  2024-05-01T10:00:00Z  alice@lb1  add-real` and the changes indented.
pub fn history_entry(e: &Entry) -> String {
    let principal = if e.principal.is_empty() {
        "-"
    } else {
        &e.principal
    };
    let mut out = format!(
        "revision {}  {}  {}  {}\n",
        e.revision,
        rfc3339(e.time_ms, false),
        principal,
        e.command
    );
    for c in &e.changes {
        out.push_str(&format!("    {c}\n"));
    }
    out
}

pub fn vip_groups(groups: &[VipGroup]) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|g| {
            let addrs: Vec<String> = g.addresses.iter().map(|a| a.to_string()).collect();
            vec![g.name.clone(), g.interface.clone(), addrs.join(" ")]
        })
        .collect();
    table(&["NAME", "INTERFACE", "ADDRESSES"], &rows)
}

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

/// `toml` errors span several lines (position, source excerpt, message); the CLI prints one:
/// `FILE: line 3, column 1: unknown field ...`.
pub fn toml_error(file: &str, err: &str) -> String {
    let lines: Vec<&str> = err.lines().collect();
    let position = lines.first().and_then(|l| {
        let at = l.find("line ")?;
        Some(l[at..].trim().to_string())
    });
    let message: Vec<&str> = lines
        .iter()
        .skip(1)
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !is_excerpt(l))
        .collect();
    match position {
        Some(p) if !message.is_empty() => format!("{file}: {p}: {}", message.join("; ")),
        _ => format!(
            "{file}: {}",
            lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// Excerpt lines look like `3 | schedulr = "rr"`.
fn is_excerpt(l: &str) -> bool {
    match l.split_once('|') {
        Some((n, _)) => n.trim().chars().all(|c| c.is_ascii_digit()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::ChangeOp;

    fn sample() -> Config {
        Config::from_toml(
            r#"
[[service]]
key = "tcp/10.0.0.1:80"
persistence = { timeout = 300, netmask = "255.255.255.0" }

[[service.reals]]
address = "10.0.1.1"
port = 80

[[service.reals]]
address = "10.0.1.2"
port = 8080
weight = 100
forward = "masq"
upper_threshold = 5000
lower_threshold = 100

[[service]]
key = "fwmark6/5"
scheduler = "rr"

[[service]]
key = "udp/[2001:db8::1]:53"
scheduler = "sh"
sched_flags = ["fallback", "port"]
one_packet = true
weight_policy = "load"
health_check = { kind = "dns", query_name = "example.org" }

[[service.reals]]
address = "2001:db8::10"
port = 53
forward = "tunnel"
tunnel_type = "gue"
tunnel_port = 6080
"#,
        )
        .unwrap()
    }

    #[test]
    fn list_looks_like_ipvsadm() {
        let c = sample();
        let svcs: Vec<&Service> = c.services.values().collect();
        let text = list(12, 1, &svcs);
        let expected = "\
Config revision 12 (served by director 1)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight UThresh LThresh
TCP  10.0.0.1:80 wlc persistent 300 mask 255.255.255.0
  -> 10.0.1.1:80                  Route   1      0       0
  -> 10.0.1.2:8080                Masq    100    5000    100
UDP  [2001:db8::1]:53 sh (sh-fallback,sh-port) ops weight-policy load check dns
  -> [2001:db8::10]:53            Tunnel  1      0       0       gue port 6080
FWM  5 IPv6 rr
";
        assert_eq!(text, expected);
    }

    #[test]
    fn write_and_apply_summaries() {
        let c = vec![Change {
            op: ChangeOp::Add,
            object: "real tcp/10.0.0.1:80 10.0.1.1:80".into(),
            detail: "forward=dr weight=1".into(),
        }];
        assert_eq!(
            write_result(13, &c),
            "+ real tcp/10.0.0.1:80 10.0.1.1:80: forward=dr weight=1\napplied: revision 13\n"
        );
        assert_eq!(write_result(13, &[]), "no changes (revision 13)\n");
        assert!(apply_result(12, &c, true).ends_with("dry run: 1 change(s), nothing written\n"));
        assert_eq!(apply_result(12, &[], false), "no changes (revision 12)\n");
        assert_eq!(
            apply_result(12, &[], true),
            "dry run: 0 change(s), nothing written\n"
        );
    }

    #[test]
    fn tables_align_and_trim() {
        let t = table(
            &["ID", "NAME", "X"],
            &[
                vec!["1".into(), "alpha".into(), "".into()],
                vec!["22".into(), "b".into(), "z".into()],
            ],
        );
        assert_eq!(t, "ID  NAME   X\n1   alpha\n22  b      z\n");
    }

    #[test]
    fn history_and_times() {
        assert_eq!(rfc3339(0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_500, true), "1970-01-01T00:00:01.500Z");
        assert_eq!(rfc3339(u64::MAX, false), format!("@{}ms", u64::MAX));
        let e = Entry {
            revision: 3,
            time_ms: 86_400_000,
            time: String::new(),
            principal: "alice@lb1".into(),
            command: "delete-service".into(),
            changes: vec![Change {
                op: ChangeOp::Remove,
                object: "service fwmark/5".into(),
                detail: "scheduler=wlc".into(),
            }],
        };
        assert_eq!(
            history_entry(&e),
            "revision 3  1970-01-02T00:00:00Z  alice@lb1  delete-service\n    - service fwmark/5: scheduler=wlc\n"
        );
    }

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

    #[test]
    fn toml_errors_fit_on_one_line() {
        let err = Config::from_toml("[[service]]\nkey = \"tcp/10.0.0.1:80\"\nschedulr = \"rr\"\n")
            .unwrap_err();
        let line = toml_error("web.toml", &err);
        assert!(!line.contains('\n'), "{line}");
        assert!(line.starts_with("web.toml: line 3, column 1: "), "{line}");
        assert!(line.contains("schedulr"), "{line}");
    }
}
