//! DR/TUN host preparation as a pure plan (the host's current state and the wanted VIPs in, a
//! list of changes out), and the state file that lets teardown undo exactly what setup did.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// Why setup cannot be planned: the host lacks a sysctl or device the mode needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("sysctl {0} does not exist")]
    NoSysctl(String),
    #[error("device {0} does not exist")]
    NoDevice(String),
}

/// How the directors forward to this real server.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Direct routing: VIPs on `lo`.
    Dr,
    /// IP-in-IP tunnelling: VIPs on `tunl0` / `ip6tnl0`.
    Tun,
}

/// What setup should establish.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub mode: Mode,
    pub vips: Vec<IpAddr>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkState {
    pub up: bool,
    pub addrs: Vec<(IpAddr, u8)>,
}

/// The parts of the host a plan looks at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostState {
    pub links: BTreeMap<String, LinkState>,
    /// Dotted sysctl names ("net.ipv4.conf.all.arp_ignore") that exist, with their values.
    pub sysctls: BTreeMap<String, String>,
}

impl HostState {
    fn has_addr(&self, dev: &str, addr: IpAddr) -> bool {
        self.links
            .get(dev)
            .is_some_and(|l| l.addrs.iter().any(|(a, _)| *a == addr))
    }
}

/// One change to the host, printed as one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Sysctl {
        key: String,
        from: String,
        to: String,
    },
    LinkUp {
        dev: String,
    },
    LinkDown {
        dev: String,
    },
    AddAddr {
        dev: String,
        addr: IpAddr,
        prefix: u8,
    },
    DelAddr {
        dev: String,
        addr: IpAddr,
        prefix: u8,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Sysctl { key, from, to } => write!(f, "set {key} = {to} (was {from})"),
            Change::LinkUp { dev } => write!(f, "set link {dev} up"),
            Change::LinkDown { dev } => write!(f, "set link {dev} down"),
            Change::AddAddr { dev, addr, prefix } => write!(f, "added {addr}/{prefix} to {dev}"),
            Change::DelAddr { dev, addr, prefix } => {
                write!(f, "removed {addr}/{prefix} from {dev}")
            }
        }
    }
}

/// An address setup added.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct AddedAddr {
    pub dev: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A sysctl setup changed: its value before the first change and the value setup wrote.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SysctlRecord {
    pub previous: String,
    pub set: String,
}

/// The state file: what setup changed, so teardown restores exactly that.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SetupState {
    pub mode: Option<Mode>,
    #[serde(default)]
    pub addresses: Vec<AddedAddr>,
    #[serde(default)]
    pub sysctls: BTreeMap<String, SysctlRecord>,
    #[serde(default)]
    pub links_up: Vec<String>,
}

/// Changes to make, how many wanted settings were already in place, and things to tell the user
/// that are not changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub unchanged: usize,
    pub notes: Vec<String>,
}

/// The device a VIP goes on.
pub fn vip_device(mode: Mode, vip: IpAddr) -> &'static str {
    match (mode, vip) {
        (Mode::Dr, _) => "lo",
        (Mode::Tun, IpAddr::V4(_)) => "tunl0",
        (Mode::Tun, IpAddr::V6(_)) => "ip6tnl0",
    }
}

/// Kernel modules TUN mode must load: (module, the fallback device it creates), for the address
/// families among the VIPs whose device does not exist yet.
pub fn tunnel_modules(want: &Wanted, existing: &[String]) -> Vec<(&'static str, &'static str)> {
    if want.mode != Mode::Tun {
        return Vec::new();
    }
    let mut out = Vec::new();
    for (module, dev, v4) in [("ipip", "tunl0", true), ("ip6_tunnel", "ip6tnl0", false)] {
        let needed = want.vips.iter().any(|v| v.is_ipv4() == v4);
        if needed && !existing.iter().any(|e| e == dev) {
            out.push((module, dev));
        }
    }
    out
}

/// Values a sysctl may have: any of `ok`; when it has none of them, setup writes `ok[0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SysctlWant {
    pub ok: &'static [&'static str],
}

/// The IPv4 sysctls the mode needs (none without IPv4 VIPs: they are IPv4 settings).
/// arp_ignore=1 (2 is stricter and fine) and arp_announce=2 keep the host from answering or
/// announcing the VIP over ARP; tunnelled packets arrive on tunl0 with a source the host routes
/// elsewhere, so reverse-path filtering must be off there and on `all` (the kernel uses the max).
pub fn wanted_sysctls(want: &Wanted) -> Vec<(String, SysctlWant)> {
    if !want.vips.iter().any(|v| v.is_ipv4()) {
        return Vec::new();
    }
    const ARP_IGNORE: SysctlWant = SysctlWant { ok: &["1", "2"] };
    const ARP_ANNOUNCE: SysctlWant = SysctlWant { ok: &["2"] };
    const RP_OFF: SysctlWant = SysctlWant { ok: &["0"] };
    let dev = match want.mode {
        Mode::Dr => "lo",
        Mode::Tun => "tunl0",
    };
    let key = |d: &str, k: &str| format!("net.ipv4.conf.{d}.{k}");
    let mut out = vec![
        (key("all", "arp_ignore"), ARP_IGNORE),
        (key("all", "arp_announce"), ARP_ANNOUNCE),
        (key(dev, "arp_ignore"), ARP_IGNORE),
        (key(dev, "arp_announce"), ARP_ANNOUNCE),
    ];
    if want.mode == Mode::Tun {
        out.push((key("all", "rp_filter"), RP_OFF));
        out.push((key(dev, "rp_filter"), RP_OFF));
    }
    out
}

fn host_prefix(a: IpAddr) -> u8 {
    if a.is_ipv4() {
        32
    } else {
        128
    }
}

/// Plans setup. Order matters: ARP sysctls first (so the host never answers ARP for a VIP it
/// just got), then links up, then addresses. VIPs that an earlier setup added but that are no
/// longer wanted (on that device) are removed.
pub fn plan_setup(
    want: &Wanted,
    host: &HostState,
    state: &SetupState,
) -> std::result::Result<Plan, PlanError> {
    let mut plan = Plan::default();
    for (key, w) in wanted_sysctls(want) {
        let Some(cur) = host.sysctls.get(&key) else {
            return Err(PlanError::NoSysctl(key));
        };
        if w.ok.contains(&cur.as_str()) {
            plan.unchanged += 1;
        } else {
            plan.changes.push(Change::Sysctl {
                key,
                from: cur.clone(),
                to: w.ok[0].to_string(),
            });
        }
    }

    let mut devs: Vec<&str> = want
        .vips
        .iter()
        .map(|v| vip_device(want.mode, *v))
        .collect();
    devs.sort_unstable();
    devs.dedup();
    for dev in &devs {
        let Some(link) = host.links.get(*dev) else {
            return Err(PlanError::NoDevice(dev.to_string()));
        };
        if link.up {
            plan.unchanged += 1;
        } else {
            plan.changes.push(Change::LinkUp {
                dev: dev.to_string(),
            });
        }
    }

    for old in &state.addresses {
        let still_wanted = want
            .vips
            .iter()
            .any(|v| *v == old.addr && vip_device(want.mode, *v) == old.dev);
        if !still_wanted && host.has_addr(&old.dev, old.addr) {
            plan.changes.push(Change::DelAddr {
                dev: old.dev.clone(),
                addr: old.addr,
                prefix: old.prefix,
            });
        }
    }

    for vip in &want.vips {
        let dev = vip_device(want.mode, *vip);
        if host.has_addr(dev, *vip) {
            plan.unchanged += 1;
        } else {
            plan.changes.push(Change::AddAddr {
                dev: dev.to_string(),
                addr: *vip,
                prefix: host_prefix(*vip),
            });
        }
        for (other, link) in &host.links {
            if other != dev && link.addrs.iter().any(|(a, _)| a == vip) {
                plan.notes.push(format!(
                    "warning: VIP {vip} is also on {other}; a real server must hold the VIP \
                     only on {dev}, or it answers ARP/ND for it and steals the directors' traffic"
                ));
            }
        }
    }
    Ok(plan)
}

/// Plans teardown: removes the addresses setup added, restores the sysctls setup changed (unless
/// they were changed again since, which is reported and left alone), and takes down links setup
/// brought up.
pub fn plan_teardown(host: &HostState, state: &SetupState) -> Plan {
    let mut plan = Plan::default();
    for a in &state.addresses {
        if host.has_addr(&a.dev, a.addr) {
            plan.changes.push(Change::DelAddr {
                dev: a.dev.clone(),
                addr: a.addr,
                prefix: a.prefix,
            });
        } else {
            plan.notes
                .push(format!("{}/{} is no longer on {}", a.addr, a.prefix, a.dev));
        }
    }
    for (key, rec) in &state.sysctls {
        match host.sysctls.get(key) {
            None => plan
                .notes
                .push(format!("{key} no longer exists; nothing to restore")),
            Some(cur) if *cur == rec.previous => plan.unchanged += 1,
            Some(cur) if *cur == rec.set => plan.changes.push(Change::Sysctl {
                key: key.clone(),
                from: cur.clone(),
                to: rec.previous.clone(),
            }),
            Some(cur) => plan.notes.push(format!(
                "left {key} = {cur}: changed since setup set {} (it was {} before setup)",
                rec.set, rec.previous
            )),
        }
    }
    for dev in &state.links_up {
        if host.links.get(dev).is_some_and(|l| l.up) {
            plan.changes.push(Change::LinkDown { dev: dev.clone() });
        }
    }
    plan
}

/// Records an applied setup change in the state (the first previous value of a sysctl wins).
pub fn record_setup(state: &mut SetupState, change: &Change) {
    match change {
        Change::Sysctl { key, from, to } => {
            state
                .sysctls
                .entry(key.clone())
                .and_modify(|r| r.set = to.clone())
                .or_insert_with(|| SysctlRecord {
                    previous: from.clone(),
                    set: to.clone(),
                });
        }
        Change::LinkUp { dev } => {
            if !state.links_up.contains(dev) {
                state.links_up.push(dev.clone());
            }
        }
        Change::LinkDown { dev } => state.links_up.retain(|d| d != dev),
        Change::AddAddr { dev, addr, prefix } => {
            if !state
                .addresses
                .iter()
                .any(|a| a.addr == *addr && a.dev == *dev)
            {
                state.addresses.push(AddedAddr {
                    dev: dev.clone(),
                    addr: *addr,
                    prefix: *prefix,
                });
            }
        }
        Change::DelAddr { dev, addr, .. } => state
            .addresses
            .retain(|a| !(a.addr == *addr && a.dev == *dev)),
    }
}

/// After setup: forget added addresses that are no longer wanted (removed by the plan, or gone).
pub fn finish_setup(state: &mut SetupState, want: &Wanted) {
    state.mode = Some(want.mode);
    state.addresses.retain(|a| {
        want.vips
            .iter()
            .any(|v| *v == a.addr && vip_device(want.mode, *v) == a.dev)
    });
}

/// Removes an undone change from the state.
pub fn record_teardown(state: &mut SetupState, change: &Change) {
    match change {
        Change::Sysctl { key, .. } => {
            state.sysctls.remove(key);
        }
        Change::LinkDown { dev } => state.links_up.retain(|d| d != dev),
        Change::DelAddr { dev, addr, .. } => state
            .addresses
            .retain(|a| !(a.addr == *addr && a.dev == *dev)),
        Change::LinkUp { .. } | Change::AddAddr { .. } => {}
    }
}

/// Reads the state file; `None` when there is none.
pub fn load_state(path: &Path) -> Result<Option<SetupState>> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("state file {} is not valid", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading state file {}", path.display())),
    }
}

/// Writes the state file atomically (creating its directory).
pub fn save_state(path: &Path, state: &SetupState) -> Result<()> {
    let text = serde_json::to_string_pretty(state).expect("state serialises");
    crate::atomic_file::write_atomic(path, text.as_bytes())
        .with_context(|| format!("writing state file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// A fresh network namespace: lo down, sysctls 0, eth0 with a RIP.
    fn fresh_host(tun: bool) -> HostState {
        let mut h = HostState::default();
        h.links.insert("lo".into(), LinkState::default());
        h.links.insert(
            "eth0".into(),
            LinkState {
                up: true,
                addrs: vec![(ip("192.0.2.5"), 24)],
            },
        );
        let mut devs = vec!["all", "lo", "eth0"];
        if tun {
            h.links.insert("tunl0".into(), LinkState::default());
            h.links.insert("ip6tnl0".into(), LinkState::default());
            devs.push("tunl0");
        }
        for d in devs {
            for k in ["arp_ignore", "arp_announce"] {
                h.sysctls
                    .insert(format!("net.ipv4.conf.{d}.{k}"), "0".into());
            }
            h.sysctls
                .insert(format!("net.ipv4.conf.{d}.rp_filter"), "2".into());
        }
        h
    }

    /// Applies a change to the simulated host.
    fn simulate(h: &mut HostState, c: &Change) {
        match c {
            Change::Sysctl { key, to, .. } => {
                h.sysctls.insert(key.clone(), to.clone());
            }
            Change::LinkUp { dev } => h.links.get_mut(dev).unwrap().up = true,
            Change::LinkDown { dev } => h.links.get_mut(dev).unwrap().up = false,
            Change::AddAddr { dev, addr, prefix } => {
                h.links.get_mut(dev).unwrap().addrs.push((*addr, *prefix))
            }
            Change::DelAddr { dev, addr, .. } => h
                .links
                .get_mut(dev)
                .unwrap()
                .addrs
                .retain(|(a, _)| a != addr),
        }
    }

    fn setup(want: &Wanted, h: &mut HostState, st: &mut SetupState) -> Plan {
        let plan = plan_setup(want, h, st).unwrap();
        for c in &plan.changes {
            simulate(h, c);
            record_setup(st, c);
        }
        finish_setup(st, want);
        plan
    }

    fn teardown(h: &mut HostState, st: &mut SetupState) -> Plan {
        let plan = plan_teardown(h, st);
        for c in &plan.changes {
            simulate(h, c);
            record_teardown(st, c);
        }
        plan
    }

    #[test]
    fn dr_setup_is_idempotent_and_teardown_restores() {
        let want = Wanted {
            mode: Mode::Dr,
            vips: vec![ip("10.0.0.10"), ip("2001:db8::10")],
        };
        let before = fresh_host(false);
        let mut h = before.clone();
        let mut st = SetupState::default();
        let p = setup(&want, &mut h, &mut st);
        let lines: Vec<String> = p.changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "set net.ipv4.conf.all.arp_ignore = 1 (was 0)",
                "set net.ipv4.conf.all.arp_announce = 2 (was 0)",
                "set net.ipv4.conf.lo.arp_ignore = 1 (was 0)",
                "set net.ipv4.conf.lo.arp_announce = 2 (was 0)",
                "set link lo up",
                "added 10.0.0.10/32 to lo",
                "added 2001:db8::10/128 to lo",
            ]
        );
        assert!(p.notes.is_empty());
        assert_eq!(st.addresses.len(), 2);
        assert_eq!(st.sysctls.len(), 4);
        assert_eq!(st.links_up, vec!["lo"]);

        let again = plan_setup(&want, &h, &st).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.unchanged, 4 + 1 + 2);

        let p = teardown(&mut h, &mut st);
        assert_eq!(p.changes.len(), 2 + 4 + 1);
        assert_eq!(h, before);
        assert_eq!(st.addresses.len() + st.sysctls.len() + st.links_up.len(), 0);
    }

    #[test]
    fn accepts_stricter_arp_ignore_and_existing_vips() {
        let want = Wanted {
            mode: Mode::Dr,
            vips: vec![ip("10.0.0.10")],
        };
        let mut h = fresh_host(false);
        h.sysctls
            .insert("net.ipv4.conf.all.arp_ignore".into(), "2".into());
        h.links.get_mut("lo").unwrap().up = true;
        h.links
            .get_mut("lo")
            .unwrap()
            .addrs
            .push((ip("10.0.0.10"), 24));
        let p = plan_setup(&want, &h, &SetupState::default()).unwrap();
        assert_eq!(p.changes.len(), 3, "{:?}", p.changes);
        // An address that was there before setup is not setup's to remove.
        let mut st = SetupState::default();
        for c in &p.changes {
            record_setup(&mut st, c);
        }
        assert!(st.addresses.is_empty());
    }

    #[test]
    fn tun_needs_modules_rp_filter_and_tunnel_devices() {
        let want = Wanted {
            mode: Mode::Tun,
            vips: vec![ip("10.0.0.10"), ip("2001:db8::10")],
        };
        let h = fresh_host(false);
        let names: Vec<String> = h.links.keys().cloned().collect();
        assert_eq!(
            tunnel_modules(&want, &names),
            vec![("ipip", "tunl0"), ("ip6_tunnel", "ip6tnl0")]
        );
        let e = plan_setup(&want, &h, &SetupState::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("tunl0"), "{e}");

        let mut h = fresh_host(true);
        let names: Vec<String> = h.links.keys().cloned().collect();
        assert!(tunnel_modules(&want, &names).is_empty());
        let mut st = SetupState::default();
        let p = setup(&want, &mut h, &mut st);
        let lines: Vec<String> = p.changes.iter().map(|c| c.to_string()).collect();
        assert!(lines.contains(&"set net.ipv4.conf.all.rp_filter = 0 (was 2)".to_string()));
        assert!(lines.contains(&"set net.ipv4.conf.tunl0.rp_filter = 0 (was 2)".to_string()));
        assert!(lines.contains(&"set net.ipv4.conf.tunl0.arp_ignore = 1 (was 0)".to_string()));
        assert!(lines.contains(&"set link tunl0 up".to_string()));
        assert!(lines.contains(&"set link ip6tnl0 up".to_string()));
        assert!(lines.contains(&"added 10.0.0.10/32 to tunl0".to_string()));
        assert!(lines.contains(&"added 2001:db8::10/128 to ip6tnl0".to_string()));
        assert!(!lines.iter().any(|l| l.contains(".lo.")));
        assert!(plan_setup(&want, &h, &st).unwrap().changes.is_empty());

        // IPv6 only: no IPv4 module, no IPv4 sysctls.
        let v6 = Wanted {
            mode: Mode::Tun,
            vips: vec![ip("2001:db8::10")],
        };
        assert_eq!(tunnel_modules(&v6, &[]), vec![("ip6_tunnel", "ip6tnl0")]);
        assert!(wanted_sysctls(&v6).is_empty());
        assert!(tunnel_modules(
            &Wanted {
                mode: Mode::Dr,
                vips: v6.vips.clone()
            },
            &[]
        )
        .is_empty());
    }

    #[test]
    fn dropped_vips_and_mode_changes_remove_what_setup_added() {
        let mut h = fresh_host(true);
        let mut st = SetupState::default();
        let two = Wanted {
            mode: Mode::Dr,
            vips: vec![ip("10.0.0.10"), ip("10.0.0.11")],
        };
        setup(&two, &mut h, &mut st);
        let one = Wanted {
            mode: Mode::Dr,
            vips: vec![ip("10.0.0.10")],
        };
        let p = setup(&one, &mut h, &mut st);
        assert_eq!(
            p.changes,
            vec![Change::DelAddr {
                dev: "lo".into(),
                addr: ip("10.0.0.11"),
                prefix: 32
            }]
        );
        assert_eq!(st.addresses.len(), 1);

        let tun = Wanted {
            mode: Mode::Tun,
            vips: vec![ip("10.0.0.10")],
        };
        let p = setup(&tun, &mut h, &mut st);
        assert!(p.changes.contains(&Change::DelAddr {
            dev: "lo".into(),
            addr: ip("10.0.0.10"),
            prefix: 32
        }));
        assert!(p.changes.contains(&Change::AddAddr {
            dev: "tunl0".into(),
            addr: ip("10.0.0.10"),
            prefix: 32
        }));
        assert_eq!(st.mode, Some(Mode::Tun));
        assert_eq!(st.addresses.len(), 1);
        // The lo sysctls of the DR run stay recorded for teardown.
        assert!(st.sysctls.contains_key("net.ipv4.conf.lo.arp_ignore"));
        teardown(&mut h, &mut st);
        assert_eq!(h, fresh_host(true));
    }

    #[test]
    fn warns_about_vips_on_other_devices() {
        let mut h = fresh_host(false);
        h.links
            .get_mut("eth0")
            .unwrap()
            .addrs
            .push((ip("10.0.0.10"), 32));
        let want = Wanted {
            mode: Mode::Dr,
            vips: vec![ip("10.0.0.10")],
        };
        let p = plan_setup(&want, &h, &SetupState::default()).unwrap();
        assert_eq!(p.notes.len(), 1);
        assert!(p.notes[0].contains("eth0"), "{:?}", p.notes);
    }

    #[test]
    fn teardown_leaves_sysctls_changed_since_setup() {
        let want = Wanted {
            mode: Mode::Dr,
            vips: vec![ip("10.0.0.10")],
        };
        let mut h = fresh_host(false);
        let mut st = SetupState::default();
        setup(&want, &mut h, &mut st);
        h.sysctls
            .insert("net.ipv4.conf.all.arp_ignore".into(), "2".into());
        h.links.get_mut("lo").unwrap().addrs.clear();
        let p = teardown(&mut h, &mut st);
        assert!(p
            .notes
            .iter()
            .any(|n| n.contains("left net.ipv4.conf.all.arp_ignore = 2")));
        assert!(p.notes.iter().any(|n| n.contains("no longer on lo")));
        assert_eq!(h.sysctls["net.ipv4.conf.all.arp_ignore"], "2");
        assert_eq!(h.sysctls["net.ipv4.conf.lo.arp_ignore"], "0");
    }

    #[test]
    fn state_file_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("sub/setup.json");
        assert_eq!(load_state(&path).unwrap(), None);
        let mut st = SetupState {
            mode: Some(Mode::Tun),
            ..Default::default()
        };
        record_setup(
            &mut st,
            &Change::Sysctl {
                key: "net.ipv4.conf.all.rp_filter".into(),
                from: "2".into(),
                to: "0".into(),
            },
        );
        save_state(&path, &st).unwrap();
        assert_eq!(load_state(&path).unwrap(), Some(st));
        std::fs::write(&path, "{").unwrap();
        assert!(load_state(&path).is_err());
    }
}
