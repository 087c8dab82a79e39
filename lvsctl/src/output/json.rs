//! `--output json` documents: one serde struct per view, with stable snake_case field names.

use cluster_core::ipvs::types::Stats64;
use cluster_core::model::{Config, VipGroup};
use cluster_core::Change;
use lvs_proto::convert::change_from_pb;
use lvs_proto::v1 as pb;
use serde::Serialize;

use super::time::rfc3339;

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

fn some(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// A destination in the kernel, with the weight the config gives it.
#[derive(Debug, Serialize)]
pub struct IpvsDestDoc {
    pub address: String,
    pub port: u32,
    /// masq, local, tunnel, route or bypass.
    pub forward: String,
    pub weight: u32,
    /// Null when the config has no such real server.
    pub config_weight: Option<u32>,
    pub upper_threshold: u32,
    pub lower_threshold: u32,
    pub active_conns: u32,
    pub inactive_conns: u32,
    pub persist_conns: u32,
    pub stats: Stats64,
    pub tunnel_type: Option<String>,
    pub tunnel_port: Option<u32>,
    pub tunnel_csum: Option<String>,
}

/// A service in the kernel.
#[derive(Debug, Serialize)]
pub struct IpvsServiceDoc {
    pub key: String,
    pub scheduler: String,
    pub sched_flags: Vec<String>,
    pub persistent: bool,
    pub timeout: u32,
    pub netmask: Option<String>,
    pub one_packet: bool,
    pub pe_name: Option<String>,
    /// In the replicated config; false for a foreign service.
    pub managed: bool,
    pub stats: Stats64,
    pub dests: Vec<IpvsDestDoc>,
}

impl IpvsServiceDoc {
    pub fn from_pb(s: &pb::IpvsService) -> IpvsServiceDoc {
        IpvsServiceDoc {
            key: s.key.clone(),
            scheduler: s.scheduler.clone(),
            sched_flags: s.sched_flags.clone(),
            persistent: s.persistent,
            timeout: s.timeout,
            netmask: some(&s.netmask),
            one_packet: s.one_packet,
            pe_name: some(&s.pe_name),
            managed: s.managed,
            stats: lvs_proto::convert::stats_from_pb(s.stats.as_ref()),
            dests: s
                .dests
                .iter()
                .map(|d| IpvsDestDoc {
                    address: d.address.clone(),
                    port: d.port,
                    forward: d.forward.clone(),
                    weight: d.weight,
                    config_weight: d.config_weight,
                    upper_threshold: d.upper_threshold,
                    lower_threshold: d.lower_threshold,
                    active_conns: d.active_conns,
                    inactive_conns: d.inactive_conns,
                    persist_conns: d.persist_conns,
                    stats: lvs_proto::convert::stats_from_pb(d.stats.as_ref()),
                    tunnel_type: some(&d.tunnel_type),
                    tunnel_port: (d.tunnel_type == "gue").then_some(d.tunnel_port),
                    tunnel_csum: some(&d.tunnel_csum),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct TimeoutsDoc {
    pub tcp: u32,
    pub tcp_fin: u32,
    pub udp: u32,
}

#[derive(Debug, Serialize)]
pub struct ObjectErrorDoc {
    pub object: String,
    pub op: String,
    pub message: String,
    pub since_ms: u64,
}

/// What the answering director's reconciler last did.
#[derive(Debug, Serialize)]
pub struct ReconcilerDoc {
    pub enabled: bool,
    pub unavailable: Option<String>,
    pub revision: u64,
    pub full_passes: u64,
    pub incremental_passes: u64,
    /// Null before the first pass.
    pub last_pass_ms: Option<u64>,
    pub last_pass_us: u64,
    pub last_ops: u64,
    pub total_ops: u64,
    /// Last change-triggered pass: from the director applying the change to the kernel ack.
    pub last_change_us: u64,
    pub errors: Vec<ObjectErrorDoc>,
    pub foreign: Vec<String>,
    pub daemons: Vec<String>,
    pub sync_mode: Option<String>,
    pub holder: bool,
}

impl ReconcilerDoc {
    fn from_pb(r: &pb::IpvsReconcilerStatus) -> ReconcilerDoc {
        ReconcilerDoc {
            enabled: r.enabled,
            unavailable: some(&r.unavailable),
            revision: r.revision,
            full_passes: r.full_passes,
            incremental_passes: r.incremental_passes,
            last_pass_ms: (r.last_pass_ms > 0).then_some(r.last_pass_ms),
            last_pass_us: r.last_pass_us,
            last_ops: r.last_ops,
            total_ops: r.total_ops,
            last_change_us: r.last_change_us,
            errors: r
                .errors
                .iter()
                .map(|e| ObjectErrorDoc {
                    object: e.object.clone(),
                    op: e.op.clone(),
                    message: e.message.clone(),
                    since_ms: e.since_ms,
                })
                .collect(),
            foreign: r.foreign.clone(),
            daemons: r.daemons.clone(),
            sync_mode: some(&r.sync_mode),
            holder: r.holder,
        }
    }
}

/// `list --stats`, `list --rate`, `ipvs`: the answering director's kernel IPVS state.
#[derive(Debug, Serialize)]
pub struct IpvsDoc {
    /// The address lvsctl asked.
    pub endpoint: String,
    pub node_id: u64,
    /// The config revision the answering director has applied.
    pub config_revision: u64,
    /// Why the kernel table could not be read; null when it was.
    pub unavailable: Option<String>,
    pub version: Option<String>,
    pub conn_tab_size: Option<u32>,
    pub timeouts: Option<TimeoutsDoc>,
    pub services: Vec<IpvsServiceDoc>,
    /// Sync daemons running in the kernel now.
    pub daemons: Vec<String>,
    pub reconciler: Option<ReconcilerDoc>,
    /// Unix milliseconds of the read.
    pub read_ms: u64,
}

impl IpvsDoc {
    pub fn from_pb(s: &pb::IpvsState, endpoint: &str) -> IpvsDoc {
        let read = s.unavailable.is_empty();
        IpvsDoc {
            endpoint: endpoint.to_string(),
            node_id: s.node_id,
            config_revision: s.config_revision,
            unavailable: some(&s.unavailable),
            version: some(&s.version),
            conn_tab_size: read.then_some(s.conn_tab_size),
            timeouts: s.timeouts.as_ref().map(|t| TimeoutsDoc {
                tcp: t.tcp,
                tcp_fin: t.tcp_fin,
                udp: t.udp,
            }),
            services: s.services.iter().map(IpvsServiceDoc::from_pb).collect(),
            daemons: s.daemons.clone(),
            reconciler: s.reconciler.as_ref().map(ReconcilerDoc::from_pb),
            read_ms: s.read_ms,
        }
    }
}

/// One connection entry.
#[derive(Debug, Serialize)]
pub struct ConnDoc {
    pub protocol: String,
    pub client: String,
    #[serde(rename = "virtual")]
    pub virtual_: String,
    pub real: String,
    pub state: String,
    pub expires_s: u32,
    /// local or sync; null when the kernel does not say.
    pub origin: Option<String>,
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
}

/// `conns`.
#[derive(Debug, Serialize)]
pub struct ConnsDoc {
    pub endpoint: String,
    pub node_id: u64,
    /// The /proc file the director read.
    pub file: String,
    /// The director sent only the first entries (it caps its answer).
    pub truncated: bool,
    pub conns: Vec<ConnDoc>,
}

impl ConnsDoc {
    pub fn from_pb(l: &pb::ConnList, endpoint: &str) -> ConnsDoc {
        ConnsDoc {
            endpoint: endpoint.to_string(),
            node_id: l.node_id,
            file: l.file.clone(),
            truncated: l.truncated,
            conns: l
                .conns
                .iter()
                .map(|c| ConnDoc {
                    protocol: c.protocol.clone(),
                    client: c.client_addr.clone(),
                    virtual_: c.virtual_addr.clone(),
                    real: c.real_addr.clone(),
                    state: c.state.clone(),
                    expires_s: c.expires_s,
                    origin: some(&c.origin),
                    pe_name: some(&c.pe_name),
                    pe_data: some(&c.pe_data),
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

    /// `stats` is the model's Stats64; the documents keep the field names and order they had.
    #[test]
    fn stats_fields_keep_their_names_and_order() {
        let s = lvs_proto::convert::stats_from_pb(Some(&pb::IpvsStats {
            conns: 1,
            inpkts: 2,
            outpkts: 3,
            inbytes: 4,
            outbytes: 5,
            cps: 6,
            inpps: 7,
            outpps: 8,
            inbps: 9,
            outbps: 10,
        }));
        assert_eq!(
            line(&s),
            "{\"conns\":1,\"inpkts\":2,\"outpkts\":3,\"inbytes\":4,\"outbytes\":5,\"cps\":6,\"inpps\":7,\"outpps\":8,\"inbps\":9,\"outbps\":10}\n"
        );
        assert_eq!(
            line(&lvs_proto::convert::stats_from_pb(None)),
            line(&Stats64::default())
        );
    }

    #[test]
    fn kernel_documents() {
        let none = pb::IpvsState {
            node_id: 2,
            config_revision: 5,
            unavailable: "IPVS is not available: modprobe ip_vs".into(),
            reconciler: Some(pb::IpvsReconcilerStatus {
                enabled: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&pretty(&IpvsDoc::from_pb(&none, "a:1"))).unwrap();
        assert_eq!(v["unavailable"], "IPVS is not available: modprobe ip_vs");
        assert_eq!(v["version"], serde_json::Value::Null);
        assert_eq!(v["conn_tab_size"], serde_json::Value::Null);
        assert_eq!(v["services"], json!([]));
        assert_eq!(v["reconciler"]["enabled"], true);
        assert_eq!(v["reconciler"]["last_pass_ms"], serde_json::Value::Null);
        assert_eq!(v["reconciler"]["errors"], json!([]));

        let some = pb::IpvsState {
            node_id: 2,
            version: "1.2.1".into(),
            conn_tab_size: 4096,
            services: vec![pb::IpvsService {
                key: "tcp/10.0.0.1:80".into(),
                scheduler: "wlc".into(),
                managed: true,
                stats: Some(pb::IpvsStats {
                    inbytes: 7,
                    ..Default::default()
                }),
                dests: vec![pb::IpvsDest {
                    address: "10.0.1.1".into(),
                    port: 80,
                    forward: "tunnel".into(),
                    weight: 0,
                    config_weight: Some(5),
                    tunnel_type: "gue".into(),
                    tunnel_port: 6080,
                    tunnel_csum: "csum".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&pretty(&IpvsDoc::from_pb(&some, "a:1"))).unwrap();
        assert_eq!(v["conn_tab_size"], 4096);
        let svc = &v["services"][0];
        assert_eq!(svc["managed"], true);
        assert_eq!(svc["stats"]["inbytes"], 7);
        assert_eq!(svc["netmask"], serde_json::Value::Null);
        let d = &svc["dests"][0];
        assert_eq!(
            (d["weight"].clone(), d["config_weight"].clone()),
            (json!(0), json!(5))
        );
        assert_eq!(d["tunnel_port"], 6080);
        assert_eq!(d["tunnel_csum"], "csum");

        let conns = pb::ConnList {
            node_id: 3,
            file: "/proc/net/ip_vs_conn".into(),
            conns: vec![pb::Conn {
                protocol: "TCP".into(),
                client_addr: "192.168.10.5:54321".into(),
                virtual_addr: "10.0.0.1:80".into(),
                real_addr: "10.0.1.1:80".into(),
                state: "ESTABLISHED".into(),
                expires_s: 898,
                ..Default::default()
            }],
            ..Default::default()
        };
        let v: serde_json::Value =
            serde_json::from_str(&pretty(&ConnsDoc::from_pb(&conns, "a:1"))).unwrap();
        assert_eq!(
            v,
            json!({
                "endpoint": "a:1",
                "node_id": 3,
                "file": "/proc/net/ip_vs_conn",
                "truncated": false,
                "conns": [{
                    "protocol": "TCP",
                    "client": "192.168.10.5:54321",
                    "virtual": "10.0.0.1:80",
                    "real": "10.0.1.1:80",
                    "state": "ESTABLISHED",
                    "expires_s": 898,
                    "origin": null,
                    "pe_name": null,
                    "pe_data": null
                }]
            })
        );
    }
}
