//! Text views of changes: single writes, `apply` summaries and history entries.

use cluster_core::Change;

use super::json::Entry;
use super::time::rfc3339;

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

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::ChangeOp;

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
}
