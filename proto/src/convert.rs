//! Model ⇄ API message conversions. Model → API is total; API → model reports the first bad field
//! as a `CommandError` (InvalidArgument) with its path.

use std::net::IpAddr;
use std::str::FromStr;

use cluster_core::diff::{Change, ChangeOp};
use cluster_core::error::CommandError;
use cluster_core::model::*;
use cluster_core::state::HistoryEntry;

use crate::v1 as pb;

type R<T> = Result<T, CommandError>;

/// Any model type's parse error becomes the field's message through its Display text.
fn parse<T: FromStr>(field: &str, v: &str) -> R<T>
where
    T::Err: std::fmt::Display,
{
    v.parse()
        .map_err(|e: T::Err| CommandError::invalid(field, e.to_string()))
}

fn parse_or<T: FromStr + Default>(field: &str, v: &str) -> R<T>
where
    T::Err: std::fmt::Display,
{
    if v.is_empty() {
        Ok(T::default())
    } else {
        parse(field, v)
    }
}

fn addr(field: &str, v: &str) -> R<IpAddr> {
    v.trim()
        .parse()
        .map_err(|_| CommandError::invalid(field, format!("{v:?} is not an IP address")))
}

fn port(field: &str, v: u32) -> R<u16> {
    u16::try_from(v)
        .map_err(|_| CommandError::invalid(field, format!("{v} is out of range 0..=65535")))
}

pub fn service_key(field: &str, v: &str) -> R<ServiceKey> {
    parse(field, v)
}

// --- model → API ---------------------------------------------------------------------------

pub fn real_to_pb(r: &RealServer) -> pb::RealServer {
    pb::RealServer {
        address: r.address.to_string(),
        port: r.port as u32,
        weight: Some(r.weight),
        forward: r.forward.as_str().into(),
        tunnel_type: r.tunnel_type.map(|t| t.as_str().into()).unwrap_or_default(),
        tunnel_port: r.tunnel_port.map(u32::from),
        tunnel_csum: r.tunnel_csum.map(|t| t.as_str().into()).unwrap_or_default(),
        upper_threshold: r.upper_threshold,
        lower_threshold: r.lower_threshold,
    }
}

pub fn health_to_pb(h: &HealthCheck) -> pb::HealthCheck {
    pb::HealthCheck {
        kind: h.kind.as_str().into(),
        interval_ms: Some(h.interval_ms),
        timeout_ms: Some(h.timeout_ms),
        rise: Some(h.rise),
        fall: Some(h.fall),
        on_failure: h.on_failure.as_str().into(),
        port: h.port.map(u32::from),
        path: h.path.clone(),
        host: h.host.clone(),
        expect_status: h.expect_status.clone(),
        body_contains: h.body_contains.clone(),
        send: h.send.clone(),
        expect: h.expect.clone(),
        query_name: h.query_name.clone(),
        query_type: h.query_type.clone(),
        command: h.command.clone(),
    }
}

pub fn service_to_pb(s: &Service) -> pb::Service {
    pb::Service {
        key: s.key.to_string(),
        scheduler: s.scheduler.as_str().into(),
        sched_flags: s.sched_flags.iter().map(|f| f.as_str().into()).collect(),
        one_packet: s.one_packet,
        weight_policy: s.weight_policy.as_str().into(),
        persistence: s.persistence.as_ref().map(|p| pb::Persistence {
            timeout: p.timeout,
            netmask: p.netmask.clone().unwrap_or_default(),
        }),
        health_check: s.health_check.as_ref().map(health_to_pb),
        reals: s.reals.iter().map(real_to_pb).collect(),
        sorry_server: s.sorry_server.as_ref().map(real_to_pb),
    }
}

pub fn vip_group_to_pb(g: &VipGroup) -> pb::VipGroup {
    pb::VipGroup {
        name: g.name.clone(),
        interface: g.interface.clone(),
        addresses: g.addresses.iter().map(|a| a.to_string()).collect(),
    }
}

pub fn sync_to_pb(s: &SyncSettings) -> pb::SyncSettings {
    pb::SyncSettings {
        interface: s.interface.clone(),
        syncid: s.syncid as u32,
        group: s.group.map(|g| g.to_string()).unwrap_or_default(),
        port: s.port as u32,
        ttl: s.ttl as u32,
        mode: s.mode.as_str().to_string(),
    }
}

pub fn config_to_pb(c: &Config) -> pb::Config {
    pb::Config {
        services: c.services.values().map(service_to_pb).collect(),
        vip_groups: c.vip_groups.iter().map(vip_group_to_pb).collect(),
        sync: c.sync.as_ref().map(sync_to_pb),
    }
}

pub fn change_to_pb(c: &Change) -> pb::Change {
    pb::Change {
        op: match c.op {
            ChangeOp::Add => "add",
            ChangeOp::Remove => "remove",
            ChangeOp::Modify => "modify",
        }
        .into(),
        object: c.object.clone(),
        detail: c.detail.clone(),
    }
}

pub fn change_from_pb(c: &pb::Change) -> Change {
    Change {
        op: match c.op.as_str() {
            "add" => ChangeOp::Add,
            "remove" => ChangeOp::Remove,
            _ => ChangeOp::Modify,
        },
        object: c.object.clone(),
        detail: c.detail.clone(),
    }
}

pub fn history_to_pb(h: &HistoryEntry) -> pb::HistoryEntry {
    pb::HistoryEntry {
        revision: h.revision,
        time_ms: h.time_ms,
        principal: h.principal.clone(),
        command: h.command.clone(),
        changes: h.changes.iter().map(change_to_pb).collect(),
    }
}

// --- API → model ---------------------------------------------------------------------------

/// `path` names the real server in errors, e.g. `service[tcp/10.0.0.1:80].reals[0]`.
/// The kernel's counters and rate estimates, as the API carries them.
pub fn stats_to_pb(s: &cluster_core::ipvs::Stats64) -> pb::IpvsStats {
    pb::IpvsStats {
        conns: s.conns,
        inpkts: s.inpkts,
        outpkts: s.outpkts,
        inbytes: s.inbytes,
        outbytes: s.outbytes,
        cps: s.cps,
        inpps: s.inpps,
        outpps: s.outpps,
        inbps: s.inbps,
        outbps: s.outbps,
    }
}

/// The API's counters as the model holds them (absent counters read as zero).
pub fn stats_from_pb(s: Option<&pb::IpvsStats>) -> cluster_core::ipvs::Stats64 {
    let s = s.cloned().unwrap_or_default();
    cluster_core::ipvs::Stats64 {
        conns: s.conns,
        inpkts: s.inpkts,
        outpkts: s.outpkts,
        inbytes: s.inbytes,
        outbytes: s.outbytes,
        cps: s.cps,
        inpps: s.inpps,
        outpps: s.outpps,
        inbps: s.inbps,
        outbps: s.outbps,
    }
}

pub fn real_from_pb(path: &str, r: &pb::RealServer) -> R<RealServer> {
    let f = |name: &str| format!("{path}.{name}");
    let weight = r.weight.unwrap_or(1);
    Ok(RealServer {
        address: addr(&f("address"), &r.address)?,
        port: port(&f("port"), r.port)?,
        weight,
        forward: parse_or(&f("forward"), &r.forward)?,
        tunnel_type: if r.tunnel_type.is_empty() {
            None
        } else {
            Some(parse(&f("tunnel_type"), &r.tunnel_type)?)
        },
        tunnel_port: r
            .tunnel_port
            .map(|p| port(&f("tunnel_port"), p))
            .transpose()?,
        tunnel_csum: if r.tunnel_csum.is_empty() {
            None
        } else {
            Some(parse(&f("tunnel_csum"), &r.tunnel_csum)?)
        },
        upper_threshold: r.upper_threshold,
        lower_threshold: r.lower_threshold,
    })
}

pub fn health_from_pb(path: &str, h: &pb::HealthCheck) -> R<HealthCheck> {
    let f = |name: &str| format!("{path}.{name}");
    let mut out = HealthCheck::new(parse(&f("kind"), &h.kind)?);
    if let Some(v) = h.interval_ms {
        out.interval_ms = v;
    }
    if let Some(v) = h.timeout_ms {
        out.timeout_ms = v;
    }
    if let Some(v) = h.rise {
        out.rise = v;
    }
    if let Some(v) = h.fall {
        out.fall = v;
    }
    out.on_failure = parse_or(&f("on_failure"), &h.on_failure)?;
    out.port = h.port.map(|p| port(&f("port"), p)).transpose()?;
    out.path = h.path.clone();
    out.host = h.host.clone();
    out.expect_status = h.expect_status.clone();
    out.body_contains = h.body_contains.clone();
    out.send = h.send.clone();
    out.expect = h.expect.clone();
    out.query_name = h.query_name.clone();
    out.query_type = h.query_type.clone();
    out.command = h.command.clone();
    Ok(out)
}

pub fn service_from_pb(s: &pb::Service) -> R<Service> {
    let key = service_key("service.key", &s.key)?;
    let path = format!("service[{key}]");
    let f = |name: &str| format!("{path}.{name}");
    let mut out = Service::new(key);
    out.scheduler = parse_or(&f("scheduler"), &s.scheduler)?;
    out.sched_flags = s
        .sched_flags
        .iter()
        .map(|x| parse(&f("sched_flags"), x))
        .collect::<R<_>>()?;
    out.one_packet = s.one_packet;
    out.weight_policy = parse_or(&f("weight_policy"), &s.weight_policy)?;
    out.persistence = s.persistence.as_ref().map(|p| Persistence {
        timeout: p.timeout,
        netmask: (!p.netmask.is_empty()).then(|| p.netmask.clone()),
    });
    out.health_check = s
        .health_check
        .as_ref()
        .map(|h| health_from_pb(&f("health_check"), h))
        .transpose()?;
    out.sorry_server = s
        .sorry_server
        .as_ref()
        .map(|r| real_from_pb(&f("sorry_server"), r))
        .transpose()?;
    out.reals = s
        .reals
        .iter()
        .enumerate()
        .map(|(i, r)| real_from_pb(&format!("{path}.reals[{i}]"), r))
        .collect::<R<_>>()?;
    Ok(out)
}

pub fn vip_group_from_pb(g: &pb::VipGroup) -> R<VipGroup> {
    let path = format!("vip_group[{}]", g.name);
    let addresses = g
        .addresses
        .iter()
        .map(|a| {
            a.parse::<ipnet::IpNet>()
                .or_else(|_| a.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    CommandError::invalid(
                        format!("{path}.addresses"),
                        format!("{a:?} is not an address with prefix (e.g. 192.0.2.10/24)"),
                    )
                })
        })
        .collect::<R<_>>()?;
    Ok(VipGroup {
        name: g.name.clone(),
        interface: g.interface.clone(),
        addresses,
    })
}

pub fn sync_from_pb(s: &pb::SyncSettings) -> R<SyncSettings> {
    let syncid = u8::try_from(s.syncid).map_err(|_| {
        CommandError::invalid(
            "sync.syncid",
            format!("{} is out of range 0..=255", s.syncid),
        )
    })?;
    let ttl = match s.ttl {
        0 => 1,
        t => u8::try_from(t).map_err(|_| {
            CommandError::invalid("sync.ttl", format!("{t} is out of range 1..=255"))
        })?,
    };
    Ok(SyncSettings {
        mode: parse("sync.mode", &s.mode)?,
        interface: s.interface.clone(),
        syncid,
        group: if s.group.is_empty() {
            None
        } else {
            Some(addr("sync.group", &s.group)?)
        },
        port: match s.port {
            0 => 8848,
            p => port("sync.port", p)?,
        },
        ttl,
    })
}

pub fn config_from_pb(c: &pb::Config) -> R<Config> {
    let mut out = Config::default();
    for s in &c.services {
        let s = service_from_pb(s)?;
        let key = s.key;
        if out.services.insert(key, s).is_some() {
            return Err(CommandError::invalid(
                format!("service[{key}]"),
                "the service is listed twice",
            ));
        }
    }
    out.vip_groups = c
        .vip_groups
        .iter()
        .map(vip_group_from_pb)
        .collect::<R<_>>()?;
    out.sync = c.sync.as_ref().map(sync_from_pb).transpose()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_pb() {
        let text = r#"
[[service]]
key = "udp/[2001:db8::1]:53"
scheduler = "mh"
sched_flags = ["fallback", "port"]
one_packet = true
persistence = { timeout = 60, netmask = "64" }
health_check = { kind = "dns", query_name = "example.org", query_type = "AAAA" }

[[service.reals]]
address = "2001:db8::10"
port = 53
weight = 3
forward = "masq"

[[service.reals]]
address = "10.0.0.9"
port = 53
forward = "tunnel"
tunnel_type = "gue"
tunnel_port = 6080
tunnel_csum = "remcsum"

[[vip_group]]
name = "dns"
interface = "eth0"
addresses = ["2001:db8::1/64"]

[sync]
interface = "eth1"
syncid = 7
group = "224.0.0.81"
"#;
        let c = Config::from_toml(text).unwrap();
        let back = config_from_pb(&config_to_pb(&c)).unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn bad_fields_are_named() {
        let mut s = service_to_pb(&Service::new("tcp/10.0.0.1:80".parse().unwrap()));
        s.scheduler = "fastest".into();
        let e = service_from_pb(&s).unwrap_err();
        assert_eq!(e.field, "service[tcp/10.0.0.1:80].scheduler");
        assert!(e.message.contains("fastest"));
        s.scheduler = "rr".into();
        s.reals.push(pb::RealServer {
            address: "10.0.0.300".into(),
            ..Default::default()
        });
        let e = service_from_pb(&s).unwrap_err();
        assert_eq!(e.field, "service[tcp/10.0.0.1:80].reals[0].address");
        let e = service_key("service", "tcp/10.0.0.1").unwrap_err();
        assert!(e.message.contains("missing :PORT"));
    }
}
