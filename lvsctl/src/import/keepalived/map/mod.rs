//! The mapper: the statement tree to our config, with one warning per thing left out. One
//! file per part of keepalived.conf: `vrrp` (vrrp_instance, global_defs), `virtual_server`
//! (virtual servers, groups, real servers) and `check` (checkers to the service's health check).

mod check;
mod virtual_server;
mod vrrp;

use std::collections::BTreeMap;
use std::net::IpAddr;

use cluster_core::model::{
    Config, Family, HealthCheck, Protocol, RealServer, SchedFlag, Scheduler, ServiceKey,
};

use super::parser::Node;
use super::source::Pos;
use super::values::{boolean, number, one, timer, Invalid, Method};

/// Maps `tree` (read from `files`), adding to the lexer's `warnings`.
pub(super) fn map(files: &[String], tree: &[Node], warnings: Vec<String>) -> (Config, Vec<String>) {
    let mut m = Mapper {
        files,
        warnings,
        config: Config::default(),
        groups: BTreeMap::new(),
        vrids: BTreeMap::new(),
        defined: BTreeMap::new(),
        vip_seen: BTreeMap::new(),
    };
    m.top(tree);
    (m.config, m.warnings)
}

#[derive(Clone, Debug, Default)]
struct CheckOpts {
    delay_loop_ms: Option<u32>,
    connect_timeout_ms: Option<u32>,
    retry: Option<u32>,
    inhibit: Option<bool>,
    virtualhost: Option<String>,
}

impl CheckOpts {
    /// `self` with the unset settings taken from `parent`.
    fn over(&self, parent: &CheckOpts) -> CheckOpts {
        CheckOpts {
            delay_loop_ms: self.delay_loop_ms.or(parent.delay_loop_ms),
            connect_timeout_ms: self.connect_timeout_ms.or(parent.connect_timeout_ms),
            retry: self.retry.or(parent.retry),
            inhibit: self.inhibit.or(parent.inhibit),
            virtualhost: self
                .virtualhost
                .clone()
                .or_else(|| parent.virtualhost.clone()),
        }
    }

    /// Reads one of the inherited settings; `Ok(false)` if `kw` is not one.
    fn read(&mut self, kw: &str, args: &[String]) -> Result<bool, Invalid> {
        match kw {
            "delay_loop" => self.delay_loop_ms = Some(timer(kw, one(kw, args)?)?),
            "connect_timeout" => self.connect_timeout_ms = Some(timer(kw, one(kw, args)?)?),
            "retry" | "nb_get_retry" | "nb_sock_retry" => {
                self.retry = Some(number(kw, one(kw, args)?)?)
            }
            "inhibit_on_failure" => self.inhibit = Some(boolean(kw, args)?),
            "virtualhost" => self.virtualhost = Some(one(kw, args)?.to_string()),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A real server as read, with the check it maps to.
struct Real {
    server: RealServer,
    /// The port as written (`None`: the service's).
    port: Option<u16>,
    pos: Pos,
    text: String,
    check: Option<(HealthCheck, Pos, String)>,
}

/// A virtual_server's settings as read.
struct Vs {
    scheduler: Scheduler,
    sched_flags: Vec<(SchedFlag, Pos, String)>,
    one_packet: Option<Pos>,
    method: Method,
    persistence_timeout: Option<u32>,
    granularity: Option<(String, Pos)>,
    protocol: Protocol,
    ip_family: Option<Family>,
    sorry: Option<(IpAddr, Option<u16>)>,
    sorry_method: Option<Method>,
    opts: CheckOpts,
    reals: Vec<Real>,
}

/// What a `virtual_server` line names.
enum Head {
    Addr(IpAddr, Option<u16>),
    Fwmark(u32, Option<Family>),
    Group(String),
}

/// The config being built, the warnings so far and what later statements refer to.
struct Mapper<'a> {
    files: &'a [String],
    warnings: Vec<String>,
    config: Config,
    groups: BTreeMap<String, &'a Node>,
    /// virtual_router_id of each vrrp_instance (the default sync id).
    vrids: BTreeMap<String, u8>,
    /// Where each service was defined.
    defined: BTreeMap<ServiceKey, Pos>,
    vip_seen: BTreeMap<IpAddr, Pos>,
}

/// Top-level blocks and keywords that configure what lvs-director does otherwise.
fn top_note(kw: &str) -> Option<&'static str> {
    Some(match kw {
        "vrrp_script" | "vrrp_track_process" | "track_file" | "track_process" => {
            "tracking for VRRP priorities; the leader holds the VIPs while a majority of directors acknowledges it"
        }
        "static_ipaddress" | "static_routes" | "static_rules" => {
            "static addresses, routes and rules belong to the host's network configuration"
        }
        "garp_group" | "linkbeat_interfaces" | "interface_up_down_delays" => {
            "interface settings for VRRP; the leader announces VIPs with gratuitous ARP and neighbour advertisements"
        }
        "bfd_instance" => "BFD is not supported",
        "SSL" => "SSL_GET client settings; https checks do not use client certificates",
        "net_namespace" | "net_namespace_ipvs" | "namespace_with_ipsets" | "instance"
        | "use_pid_dir" | "linkbeat_use_polling" | "child_wait_time" => {
            "keepalived process setting"
        }
        _ => return None,
    })
}

impl<'a> Mapper<'a> {
    fn at(&self, pos: Pos) -> String {
        pos.at(self.files)
    }

    fn warn(&mut self, pos: Pos, msg: impl AsRef<str>) {
        let at = self.at(pos);
        self.warnings.push(format!("{at}: {}", msg.as_ref()));
    }

    fn top(&mut self, tree: &'a [Node]) {
        // Groups and VRIDs may be used before they are defined.
        for n in tree {
            match n.kw() {
                "virtual_server_group" => {
                    if let Some(name) = n.args().first() {
                        self.groups.entry(name.clone()).or_insert(n);
                    }
                }
                "vrrp_instance" => {
                    let name = n.args().first().cloned().unwrap_or_default();
                    if let Some(id) = n
                        .children()
                        .iter()
                        .find(|c| c.kw() == "virtual_router_id")
                        .and_then(|c| c.args().first())
                        .and_then(|v| v.parse().ok())
                    {
                        self.vrids.insert(name, id);
                    }
                }
                _ => {}
            }
        }
        for n in tree {
            match n.kw() {
                "virtual_server" => self.virtual_server(n),
                "virtual_server_group" => {
                    if n.args().len() != 1 {
                        self.warn(
                            n.pos,
                            format!(
                                "`{}`: virtual_server_group takes one name; left out",
                                n.text()
                            ),
                        );
                    }
                }
                "vrrp_instance" => self.vrrp_instance(n),
                "vrrp_sync_group" => {
                    let members: Vec<String> = n
                        .children()
                        .iter()
                        .filter(|c| c.kw() == "group")
                        .flat_map(|c| {
                            c.args()
                                .iter()
                                .cloned()
                                .chain(c.children().iter().flat_map(|g| g.words.clone()))
                        })
                        .collect();
                    self.warn(
                        n.pos,
                        format!(
                            "vrrp_sync_group {} ({}) is not mapped: all VIP groups move together with the leader",
                            n.args().join(" "),
                            members.join(" ")
                        ),
                    );
                }
                "global_defs" => self.global_defs(n),
                kw => match top_note(kw) {
                    Some(why) => self.warn(n.pos, format!("{kw} is not mapped: {why}")),
                    None => self.warn(n.pos, format!("unknown keyword {kw:?}; left out")),
                },
            }
        }
    }
}
