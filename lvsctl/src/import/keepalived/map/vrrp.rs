//! `vrrp_instance` → VIP groups (VRRP itself is replaced by the leader holding the VIPs) and
//! `global_defs` → `[sync]` (`lvs_sync_daemon`); everything else there is warned about.

use std::net::IpAddr;

use cluster_core::model::{SyncMode, SyncSettings, VipGroup};
use ipnet::IpNet;

use super::super::parser::Node;
use super::super::values::{address, group_name, missing, number, port, Invalid};
use super::Mapper;

impl Mapper<'_> {
    pub(super) fn global_defs(&mut self, n: &Node) {
        for c in n.children() {
            match c.kw() {
                "lvs_sync_daemon" => {
                    if let Err(e) = self.sync_daemon(c) {
                        self.warn(c.pos, format!("{e}; left out"));
                    }
                }
                "lvs_sync_daemon_interface" => match c.args() {
                    [ifname] => {
                        let s = self.config.sync.get_or_insert_with(default_sync);
                        s.interface = ifname.clone();
                    }
                    _ => self.warn(
                        c.pos,
                        "lvs_sync_daemon_interface takes one interface; left out",
                    ),
                },
                kw => self.warn(c.pos, format!("global_defs {kw} is not mapped; left out")),
            }
        }
    }

    /// `lvs_sync_daemon IF [[inst] VI] [id N] [maxlen L] [port P] [ttl T] [group ADDR]`.
    fn sync_daemon(&mut self, c: &Node) -> Result<(), Invalid> {
        let kw = "lvs_sync_daemon";
        let args = c.args();
        let Some(ifname) = args.first() else {
            return Err(missing(kw, "an interface"));
        };
        let mut s = default_sync();
        s.interface = ifname.clone();
        let mut syncid: Option<u8> = None;
        let mut inst: Option<String> = None;
        let mut i = 1;
        while i < args.len() {
            let key = args[i].as_str();
            let val = args.get(i + 1);
            match (key, val) {
                ("inst", Some(v)) => inst = Some(v.clone()),
                ("id", Some(v)) => syncid = Some(number("lvs_sync_daemon id", v)?),
                ("port", Some(v)) => s.port = port(kw, v)?,
                ("ttl", Some(v)) => s.ttl = number("lvs_sync_daemon ttl", v)?,
                ("group", Some(v)) => s.group = Some(address("lvs_sync_daemon group", v)?),
                ("maxlen", Some(v)) => self.warn(
                    c.pos,
                    format!(
                        "lvs_sync_daemon maxlen {v} is not mapped (the kernel default is used)"
                    ),
                ),
                ("inst" | "id" | "port" | "ttl" | "group" | "maxlen", None) => {
                    return Err(missing(format!("{kw} {key}"), "a value"))
                }
                _ if i == 1 && inst.is_none() => {
                    inst = Some(key.to_string());
                    i += 1;
                    continue;
                }
                _ => {
                    return Err(Invalid::Unexpected {
                        what: kw.into(),
                        got: key.into(),
                    })
                }
            }
            i += 2;
        }
        s.syncid = match (syncid, &inst) {
            (Some(id), _) => id,
            (None, Some(vi)) => self.vrids.get(vi).copied().unwrap_or(0),
            (None, None) => 0,
        };
        self.config.sync = Some(s);
        Ok(())
    }

    /// A vrrp_instance: its addresses become VIP groups, and a note says VRRP is not mapped.
    pub(super) fn vrrp_instance(&mut self, n: &Node) {
        let name = n.args().first().cloned().unwrap_or_default();
        let interface = n
            .children()
            .iter()
            .find(|c| c.kw() == "interface")
            .and_then(|c| c.args().first())
            .cloned();
        let by_if = self.vip_addresses(n, &interface);
        let mut made = Vec::new();
        for (i, (dev, addrs)) in by_if.into_iter().enumerate() {
            let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
            let Some(dev) = dev else {
                self.warn(
                    n.pos,
                    format!(
                        "vrrp_instance {name}: no interface for {}; add them with lvsctl vip set {} --interface IF {}",
                        list.join(" "),
                        group_name(&name),
                        list.join(" ")
                    ),
                );
                continue;
            };
            if let Err(e) = cluster_core::validate::interface_name("dev", &dev) {
                self.warn(
                    n.pos,
                    format!("vrrp_instance {name}: {e}; {} left out", list.join(" ")),
                );
                continue;
            }
            let base = if i == 0 {
                group_name(&name)
            } else {
                group_name(&format!("{name}-{dev}"))
            };
            let gname = self.unique_group(base);
            made.push(format!(
                "lvsctl vip set {gname} --interface {dev} {}",
                list.join(" ")
            ));
            self.config.vip_groups.push(VipGroup {
                name: gname,
                interface: dev,
                addresses: addrs,
            });
        }
        let what = if made.is_empty() {
            "it has no virtual_ipaddress to take over".to_string()
        } else {
            format!("its addresses are in [[vip_group]] ({})", made.join("; "))
        };
        self.warn(
            n.pos,
            format!(
                "vrrp_instance {name} is not mapped: the leader director holds the VIPs (no VRRP); {what}"
            ),
        );
    }

    /// The `virtual_ipaddress` (and `_excluded`) entries of a vrrp_instance by interface (`dev`,
    /// or else the instance's `interface`), in the order seen; unreadable and repeated addresses
    /// are warned about and left out.
    fn vip_addresses(
        &mut self,
        n: &Node,
        interface: &Option<String>,
    ) -> Vec<(Option<String>, Vec<IpNet>)> {
        let mut by_if: Vec<(Option<String>, Vec<IpNet>)> = Vec::new();
        for block in n
            .children()
            .iter()
            .filter(|c| c.kw() == "virtual_ipaddress" || c.kw() == "virtual_ipaddress_excluded")
        {
            for e in block.children() {
                let addr = match e
                    .kw()
                    .parse::<IpNet>()
                    .or_else(|_| e.kw().parse::<IpAddr>().map(IpNet::from))
                {
                    Ok(a) => a,
                    Err(_) => {
                        self.warn(
                            e.pos,
                            format!("virtual_ipaddress {:?} is not an address; left out", e.kw()),
                        );
                        continue;
                    }
                };
                let mut dev = None;
                let mut dropped = Vec::new();
                let mut i = 0;
                let args = e.args();
                while i < args.len() {
                    if args[i] == "dev" && i + 1 < args.len() {
                        dev = Some(args[i + 1].clone());
                        i += 2;
                    } else {
                        dropped.push(args[i].clone());
                        i += 1;
                    }
                }
                if !dropped.is_empty() {
                    self.warn(
                        e.pos,
                        format!(
                            "virtual_ipaddress {addr}: {:?} is not mapped (VIPs are plain addresses on an interface)",
                            dropped.join(" ")
                        ),
                    );
                }
                if let Some(first) = self.vip_seen.get(&addr.addr()) {
                    let first = self.at(*first);
                    self.warn(
                        e.pos,
                        format!("virtual_ipaddress {addr} is already a VIP (at {first}); left out"),
                    );
                    continue;
                }
                self.vip_seen.insert(addr.addr(), e.pos);
                let dev = dev.or_else(|| interface.clone());
                match by_if.iter_mut().find(|(d, _)| *d == dev) {
                    Some((_, list)) => list.push(addr),
                    None => by_if.push((dev, vec![addr])),
                }
            }
        }
        by_if
    }

    /// `base`, or `base-2`, `base-3`, ... if a VIP group has that name already.
    fn unique_group(&self, base: String) -> String {
        let taken = |n: &str| self.config.vip_groups.iter().any(|g| g.name == n);
        if !taken(&base) {
            return base;
        }
        let stem: String = base.chars().take(56).collect();
        (2..)
            .map(|i| format!("{stem}-{i}"))
            .find(|n| !taken(n))
            .expect("a free name")
    }
}

fn default_sync() -> SyncSettings {
    SyncSettings {
        mode: SyncMode::Multicast,
        interface: String::new(),
        syncid: 0,
        group: None,
        port: 8848,
        ttl: 1,
    }
}
