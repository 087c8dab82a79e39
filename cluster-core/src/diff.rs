//! Field-level differences between two configurations, as operators read them in dry-runs,
//! history and the watch stream.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeOp {
    Add,
    Remove,
    Modify,
}

impl ChangeOp {
    pub fn sign(&self) -> char {
        match self {
            ChangeOp::Add => '+',
            ChangeOp::Remove => '-',
            ChangeOp::Modify => '~',
        }
    }
}

/// One changed object: `+ real tcp/10.0.0.1:80 10.0.1.1:80: weight=1 forward=dr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub op: ChangeOp,
    /// `service KEY`, `real KEY ENDPOINT`, `health_check KEY`, `vip_group NAME` or `sync`.
    pub object: String,
    /// For add/remove the object's attributes; for modify `field: old -> new` pairs.
    pub detail: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            write!(f, "{} {}", self.op.sign(), self.object)
        } else {
            write!(f, "{} {}: {}", self.op.sign(), self.object, self.detail)
        }
    }
}

/// Top-level fields of a serialisable object, rendered compactly, minus `skip`.
fn fields<T: Serialize>(v: &T, skip: &[&str]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(v) {
        for (k, v) in m {
            if skip.contains(&k.as_str()) {
                continue;
            }
            out.insert(k, render(&v));
        }
    }
    out
}

fn render(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "none".into(),
        serde_json::Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(render).collect();
            format!("[{}]", parts.join(","))
        }
        serde_json::Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect();
            format!("{{{}}}", parts.join(" "))
        }
        other => other.to_string(),
    }
}

fn summary(f: &BTreeMap<String, String>) -> String {
    f.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a field the model omits when it holds its default reads in a diff, judged from the value
/// on the other side (the model skips `false`, empty lists, zero thresholds, the static weight
/// policy and absent options).
fn omitted(key: &str, other: &str) -> String {
    let v = match other {
        "true" | "false" => "false",
        _ if other.starts_with('[') => "[]",
        _ if other.parse::<u64>().is_ok() => "0",
        _ if key == "weight_policy" => "static",
        _ => "none",
    };
    v.to_string()
}

fn delta(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> String {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => (x.clone(), y.clone()),
                (Some(x), None) => (x.clone(), omitted(k, x)),
                (None, Some(y)) => (omitted(k, y), y.clone()),
                (None, None) => return None,
            };
            (x != y).then(|| format!("{k}: {x} -> {y}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds an add/remove/modify change for one object, nothing if equal.
fn diff_obj<T: Serialize + PartialEq>(
    out: &mut Vec<Change>,
    object: String,
    old: Option<&T>,
    new: Option<&T>,
    skip: &[&str],
) {
    match (old, new) {
        (None, None) => {}
        (None, Some(n)) => out.push(Change {
            op: ChangeOp::Add,
            object,
            detail: summary(&fields(n, skip)),
        }),
        (Some(o), None) => out.push(Change {
            op: ChangeOp::Remove,
            object,
            detail: summary(&fields(o, skip)),
        }),
        (Some(o), Some(n)) => {
            let d = delta(&fields(o, skip), &fields(n, skip));
            if !d.is_empty() {
                out.push(Change {
                    op: ChangeOp::Modify,
                    object,
                    detail: d,
                });
            }
        }
    }
}

type RealIndex<'a> = BTreeMap<(std::net::IpAddr, u16), &'a RealServer>;

fn index_reals(s: Option<&Service>) -> RealIndex<'_> {
    s.map(|s| s.reals.iter().map(|r| ((r.address, r.port), r)).collect())
        .unwrap_or_default()
}

/// Changes that turn `old` into `new` for one service (either side may be absent).
pub fn diff_service(old: Option<&Service>, new: Option<&Service>) -> Vec<Change> {
    let mut out = Vec::new();
    let key = old.or(new).map(|s| s.key).expect("one side present");
    const SKIP: [&str; 3] = ["key", "reals", "health_check"];
    diff_obj(&mut out, format!("service {key}"), old, new, &SKIP);
    diff_obj(
        &mut out,
        format!("health_check {key}"),
        old.and_then(|s| s.health_check.as_ref()),
        new.and_then(|s| s.health_check.as_ref()),
        &[],
    );
    let (old_reals, new_reals) = (index_reals(old), index_reals(new));
    let mut eps: Vec<&(std::net::IpAddr, u16)> = old_reals.keys().chain(new_reals.keys()).collect();
    eps.sort();
    eps.dedup();
    for ep in eps {
        let (o, n) = (old_reals.get(ep).copied(), new_reals.get(ep).copied());
        if o == n {
            continue;
        }
        diff_obj(
            &mut out,
            format!("real {key} {}", fmt_endpoint(&ep.0, ep.1)),
            o,
            n,
            &["address", "port"],
        );
    }
    // A removed service reads better with its reals listed before it.
    if new.is_none() {
        out.reverse();
    }
    out
}

pub fn diff_vip_groups(old: &[VipGroup], new: &[VipGroup]) -> Vec<Change> {
    let mut out = Vec::new();
    let mut names: Vec<&String> = old.iter().chain(new.iter()).map(|g| &g.name).collect();
    names.sort();
    names.dedup();
    for name in names {
        diff_obj(
            &mut out,
            format!("vip_group {name}"),
            old.iter().find(|g| &g.name == name),
            new.iter().find(|g| &g.name == name),
            &["name"],
        );
    }
    out
}

pub fn diff_sync(old: Option<&SyncSettings>, new: Option<&SyncSettings>) -> Vec<Change> {
    let mut out = Vec::new();
    diff_obj(&mut out, "sync".into(), old, new, &[]);
    out
}

/// Every change that turns `old` into `new`, in a stable order.
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let mut out = Vec::new();
    let mut keys: Vec<&ServiceKey> = old.services.keys().chain(new.services.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let (o, n) = (old.services.get(k), new.services.get(k));
        if o != n {
            out.extend(diff_service(o, n));
        }
    }
    out.extend(diff_vip_groups(&old.vip_groups, &new.vip_groups));
    out.extend(diff_sync(old.sync.as_ref(), new.sync.as_ref()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_level_changes() {
        let mut a = Config::default();
        let key: ServiceKey = "tcp/10.0.0.1:80".parse().unwrap();
        let mut s = Service::new(key);
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 80));
        a.services.insert(key, s.clone());
        let mut b = a.clone();
        assert!(diff(&a, &b).is_empty());

        let sb = b.services.get_mut(&key).unwrap();
        sb.scheduler = Scheduler::Rr;
        sb.reals[0].weight = 7;
        sb.reals
            .push(RealServer::new("10.0.1.2".parse().unwrap(), 80));
        sb.sched_flags = vec![SchedFlag::Port];
        sb.weight_policy = WeightPolicy::Load;
        let d = diff(&a, &b);
        let text: Vec<String> = d.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "~ service tcp/10.0.0.1:80: sched_flags: [] -> [port], scheduler: wlc -> rr, weight_policy: static -> load",
                "~ real tcp/10.0.0.1:80 10.0.1.1:80: weight: 1 -> 7",
                "+ real tcp/10.0.0.1:80 10.0.1.2:80: forward=dr weight=1",
            ]
        );
        let d = diff(&b, &Config::default());
        assert_eq!(d.len(), 3);
        assert!(d.iter().all(|c| c.op == ChangeOp::Remove));
        assert!(d.last().unwrap().object.starts_with("service"));
    }
}
