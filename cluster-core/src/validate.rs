//! Validation an operator would expect from ipvsadm and the kernel, done before anything is
//! written. Each check returns the field path and the offending value; successful checks return the
//! object normalised (sorted flags, canonical netmask) so equal configs compare equal.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use crate::error::{CommandError, NetmaskError, StatusRangeError};
use crate::model::*;

/// Largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;
/// ipvsadm accepts thresholds up to INT_MAX.
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;
/// IFNAMSIZ - 1.
pub const MAX_IFNAME: usize = 15;

type R<T> = Result<T, CommandError>;

pub fn service_path(key: &ServiceKey) -> String {
    format!("service[{key}]")
}

pub fn real_path(key: &ServiceKey, address: &IpAddr, port: u16) -> String {
    format!(
        "{}.reals[{}]",
        service_path(key),
        fmt_endpoint(address, port)
    )
}

fn usable_unicast(addr: &IpAddr) -> bool {
    !(addr.is_unspecified() || addr.is_multicast() || *addr == IpAddr::V4(Ipv4Addr::BROADCAST))
}

/// Schedulers whose choice follows the weights of each new connection, so computed weights
/// (policies load and latency) steer traffic without remapping existing flows.
pub const DYNAMIC_SCHEDULERS: [Scheduler; 5] = [
    Scheduler::Wrr,
    Scheduler::Wlc,
    Scheduler::Sed,
    Scheduler::Nq,
    Scheduler::Twos,
];

/// Validates a service, its real servers and health check, returning it normalised. The steps
/// run in this order, so the first problem found is the one reported.
pub fn service(svc: &Service) -> R<Service> {
    let mut s = svc.clone();
    let p = service_path(&s.key);
    check_service_key(&p, &s)?;
    normalize_sched_flags(&p, &mut s)?;
    normalize_persistence(&p, &mut s)?;
    check_one_packet(&p, &s)?;
    let seen = validate_reals(&p, &mut s)?;
    if let Some(hc) = &s.health_check {
        s.health_check = Some(health_check(&format!("{p}.health_check"), hc)?);
    }
    validate_sorry_server(&p, &mut s, &seen)?;
    check_weight_policy(&p, &s)?;
    Ok(s)
}

/// A usable virtual address, a port unless persistent, a non-zero firewall mark.
fn check_service_key(p: &str, s: &Service) -> R<()> {
    match s.key {
        ServiceKey::Addr { address, port, .. } => {
            if !usable_unicast(&address) {
                return Err(CommandError::invalid(
                    format!("{p}.address"),
                    format!("{address} is not a usable virtual address (unspecified, multicast or broadcast)"),
                ));
            }
            if port == 0 && s.persistence.is_none() {
                return Err(CommandError::invalid(
                    format!("{p}.port"),
                    "port 0 is only allowed for persistent (all-ports) services or fwmark services",
                ));
            }
        }
        ServiceKey::Fwmark { mark, .. } => {
            if mark == 0 {
                return Err(CommandError::invalid(
                    format!("{p}.fwmark"),
                    "0 is not a valid firewall mark (use 1..=4294967295)",
                ));
            }
        }
    }

    Ok(())
}

/// Scheduler flags only for sh and mh; sorted and deduplicated.
fn normalize_sched_flags(p: &str, s: &mut Service) -> R<()> {
    if !s.sched_flags.is_empty() && !matches!(s.scheduler, Scheduler::Sh | Scheduler::Mh) {
        let flags: Vec<&str> = s.sched_flags.iter().map(|f| f.as_str()).collect();
        return Err(CommandError::invalid(
            format!("{p}.sched_flags"),
            format!(
                "[{}] only apply to the sh and mh schedulers, not {}",
                flags.join(","),
                s.scheduler
            ),
        ));
    }
    s.sched_flags.sort();
    s.sched_flags.dedup();
    Ok(())
}

/// A persistence timeout of at least a second and a netmask valid for the family.
fn normalize_persistence(p: &str, s: &mut Service) -> R<()> {
    let family = s.key.family();
    if let Some(per) = &mut s.persistence {
        if per.timeout == 0 {
            return Err(CommandError::invalid(
                format!("{p}.persistence.timeout"),
                "0 is not a valid persistence timeout (seconds, at least 1)",
            ));
        }
        if let Some(mask) = &per.netmask {
            per.netmask = normalize_netmask(family, mask).map_err(|m| {
                CommandError::invalid(format!("{p}.persistence.netmask"), m.to_string())
            })?;
        }
    }

    Ok(())
}

/// One-packet scheduling only for UDP (and fwmark) services.
fn check_one_packet(p: &str, s: &Service) -> R<()> {
    if s.one_packet {
        if let ServiceKey::Addr { protocol, .. } = s.key {
            if protocol != Protocol::Udp {
                return Err(CommandError::invalid(
                    format!("{p}.one_packet"),
                    format!(
                        "one-packet scheduling only applies to UDP or fwmark services, not {}",
                        protocol.as_str()
                    ),
                ));
            }
        }
    }

    Ok(())
}

/// Each real server valid and listed once; returns their endpoints.
fn validate_reals(p: &str, s: &mut Service) -> R<BTreeSet<(IpAddr, u16)>> {
    let mut seen = BTreeSet::new();
    let mut reals = Vec::with_capacity(s.reals.len());
    for r in &s.reals {
        if !seen.insert((r.address, r.port)) {
            return Err(CommandError::invalid(
                format!("{p}.reals"),
                format!("duplicate real server {}", r.endpoint()),
            ));
        }
        reals.push(real(&s.key, r)?);
    }
    s.reals = reals;

    Ok(seen)
}

/// The sorry server: not one of the reals, a weight above 0, no thresholds.
fn validate_sorry_server(p: &str, s: &mut Service, reals: &BTreeSet<(IpAddr, u16)>) -> R<()> {
    if let Some(sorry) = &s.sorry_server {
        if reals.contains(&(sorry.address, sorry.port)) {
            return Err(CommandError::invalid(
                format!("{p}.sorry_server"),
                format!(
                    "{} is one of the service's real servers; a sorry server stands in for them",
                    sorry.endpoint()
                ),
            ));
        }
        let mut v = real(&s.key, sorry)?;
        if v.weight == 0 {
            return Err(CommandError::invalid(
                format!("{p}.sorry_server.weight"),
                "0 would leave the sorry server unused (use at least 1)",
            ));
        }
        v.upper_threshold = 0;
        v.lower_threshold = 0;
        s.sorry_server = Some(v);
    }
    Ok(())
}

/// Dynamic weights only with a scheduler that uses weights per new connection.
fn check_weight_policy(p: &str, s: &Service) -> R<()> {
    if s.weight_policy.is_dynamic() && !DYNAMIC_SCHEDULERS.contains(&s.scheduler) {
        let names: Vec<&str> = DYNAMIC_SCHEDULERS.iter().map(|x| x.as_str()).collect();
        return Err(CommandError::invalid(
            format!("{p}.weight_policy"),
            format!(
                "{} needs a scheduler that uses weights per new connection ({}); {} {}",
                s.weight_policy.as_str(),
                names.join(", "),
                s.scheduler,
                match s.scheduler {
                    Scheduler::Dh | Scheduler::Sh | Scheduler::Mh =>
                        "hashes flows, and changing weights would remap them",
                    _ => "ignores weights or only uses them as a threshold",
                }
            ),
        ));
    }
    Ok(())
}

/// IPv4: a contiguous dotted mask (or a prefix length, converted); IPv6: a prefix length 1..=128.
pub fn normalize_netmask(family: Family, mask: &str) -> Result<Option<String>, NetmaskError> {
    let mask = mask.trim();
    match family {
        Family::Ipv4 => {
            let bits: u32 = if let Ok(m) = mask.parse::<Ipv4Addr>() {
                let v = u32::from(m);
                if v.leading_ones() + v.trailing_zeros() != 32 {
                    return Err(NetmaskError::NotContiguous(mask.to_string()));
                }
                v
            } else if let Ok(len) = mask.trim_start_matches('/').parse::<u32>() {
                if len > 32 {
                    return Err(NetmaskError::Ipv4PrefixRange(mask.to_string()));
                }
                if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - len)
                }
            } else {
                return Err(NetmaskError::NotIpv4Mask(mask.to_string()));
            };
            Ok(Some(Ipv4Addr::from(bits).to_string()))
        }
        Family::Ipv6 => {
            let len: u32 = mask
                .trim_start_matches('/')
                .parse()
                .map_err(|_| NetmaskError::NotIpv6Prefix(mask.to_string()))?;
            if !(1..=128).contains(&len) {
                return Err(NetmaskError::Ipv6PrefixRange(len));
            }
            Ok(Some(len.to_string()))
        }
    }
}

/// Validates one real server under a service.
pub fn real(key: &ServiceKey, r: &RealServer) -> R<RealServer> {
    let p = real_path(key, &r.address, r.port);
    if !usable_unicast(&r.address) {
        return Err(CommandError::invalid(
            format!("{p}.address"),
            format!("{} is not a usable real-server address", r.address),
        ));
    }
    if r.weight > MAX_WEIGHT {
        return Err(CommandError::invalid(
            format!("{p}.weight"),
            format!("{} is out of range 0..={MAX_WEIGHT}", r.weight),
        ));
    }
    for (name, v) in [
        ("upper_threshold", r.upper_threshold),
        ("lower_threshold", r.lower_threshold),
    ] {
        if v > MAX_THRESHOLD {
            return Err(CommandError::invalid(
                format!("{p}.{name}"),
                format!("{v} is out of range 0..={MAX_THRESHOLD}"),
            ));
        }
    }
    if r.lower_threshold > r.upper_threshold {
        return Err(CommandError::invalid(
            format!("{p}.lower_threshold"),
            format!(
                "{} is above the upper threshold {} (set -x as well)",
                r.lower_threshold, r.upper_threshold
            ),
        ));
    }
    if Family::of(&r.address) != key.family() && r.forward != Forward::Tunnel {
        return Err(CommandError::invalid(
            format!("{p}.address"),
            format!(
                "{} real server {} under an {} service needs tunnel forwarding, not {}",
                Family::of(&r.address),
                r.address,
                key.family(),
                r.forward.as_str()
            ),
        ));
    }
    match key.port() {
        Some(0) | None => {}
        Some(sport) => {
            if r.port == 0 {
                return Err(CommandError::invalid(
                    format!("{p}.port"),
                    "port 0 is only allowed under fwmark or all-ports (port 0) services",
                ));
            }
            if r.forward != Forward::Masq && r.port != sport {
                return Err(CommandError::invalid(
                    format!("{p}.port"),
                    format!(
                        "{} differs from the service port {sport}; only masquerading (-m) can map ports",
                        r.port
                    ),
                ));
            }
        }
    }
    let tun = r.tunnel_type.unwrap_or_default();
    if r.forward != Forward::Tunnel {
        for (name, set) in [
            ("tunnel_type", r.tunnel_type.is_some()),
            ("tunnel_port", r.tunnel_port.is_some()),
            ("tunnel_csum", r.tunnel_csum.is_some()),
        ] {
            if set {
                return Err(CommandError::invalid(
                    format!("{p}.{name}"),
                    format!(
                        "only applies to tunnel forwarding, not {}",
                        r.forward.as_str()
                    ),
                ));
            }
        }
    } else {
        match (tun, r.tunnel_port) {
            (TunnelType::Gue, None) | (TunnelType::Gue, Some(0)) => {
                return Err(CommandError::invalid(
                    format!("{p}.tunnel_port"),
                    format!(
                        "{} is required for gue tunnels (1..=65535)",
                        r.tunnel_port
                            .map(|v| v.to_string())
                            .unwrap_or("missing".into())
                    ),
                ))
            }
            (TunnelType::Ipip | TunnelType::Gre, Some(port)) => {
                return Err(CommandError::invalid(
                    format!("{p}.tunnel_port"),
                    format!("{port} only applies to gue tunnels, not {}", tun.as_str()),
                ))
            }
            _ => {}
        }
        if tun == TunnelType::Ipip && r.tunnel_csum.is_some_and(|c| c != TunnelCsum::None) {
            return Err(CommandError::invalid(
                format!("{p}.tunnel_csum"),
                "checksum options only apply to gue and gre tunnels",
            ));
        }
    }
    Ok(r.clone())
}

/// Validates a health-check spec; kind-specific fields must belong to the kind.
pub fn health_check(p: &str, hc: &HealthCheck) -> R<HealthCheck> {
    let k = hc.kind;
    for (name, v, lo, hi) in [
        ("interval_ms", hc.interval_ms, 100, 3_600_000),
        ("timeout_ms", hc.timeout_ms, 10, 600_000),
        ("rise", hc.rise, 1, 100),
        ("fall", hc.fall, 1, 100),
    ] {
        if !(lo..=hi).contains(&v) {
            return Err(CommandError::invalid(
                format!("{p}.{name}"),
                format!("{v} is out of range {lo}..={hi}"),
            ));
        }
    }
    if hc.port == Some(0) {
        return Err(CommandError::invalid(
            format!("{p}.port"),
            "0 is not a port to probe",
        ));
    }
    let http = matches!(k, CheckKind::Http | CheckKind::Https);
    let belongs: [(&str, bool, bool); 8] = [
        ("path", hc.path.is_some(), http),
        ("host", hc.host.is_some(), http),
        ("expect_status", hc.expect_status.is_some(), http),
        ("body_contains", hc.body_contains.is_some(), http),
        ("send", hc.send.is_some(), k == CheckKind::Udp),
        ("expect", hc.expect.is_some(), k == CheckKind::Udp),
        ("query_name", hc.query_name.is_some(), k == CheckKind::Dns),
        ("query_type", hc.query_type.is_some(), k == CheckKind::Dns),
    ];
    for (name, set, ok) in belongs {
        if set && !ok {
            return Err(CommandError::invalid(
                format!("{p}.{name}"),
                format!("does not apply to {} checks", k.as_str()),
            ));
        }
    }
    if !hc.command.is_empty() && k != CheckKind::Exec {
        return Err(CommandError::invalid(
            format!("{p}.command"),
            format!("does not apply to {} checks", k.as_str()),
        ));
    }
    match k {
        CheckKind::Http | CheckKind::Https => {
            if let Some(path) = &hc.path {
                if !path.starts_with('/') {
                    return Err(CommandError::invalid(
                        format!("{p}.path"),
                        format!("{path:?} must start with '/'"),
                    ));
                }
            }
            if let Some(st) = &hc.expect_status {
                parse_status_range(st).map_err(|m| {
                    CommandError::invalid(format!("{p}.expect_status"), m.to_string())
                })?;
            }
        }
        CheckKind::Udp => {
            if hc.send.as_deref().unwrap_or("").is_empty() {
                return Err(CommandError::invalid(
                    format!("{p}.send"),
                    "udp checks need a payload to send",
                ));
            }
        }
        CheckKind::Dns => {
            if hc.query_name.as_deref().unwrap_or("").is_empty() {
                return Err(CommandError::invalid(
                    format!("{p}.query_name"),
                    "dns checks need a name to query",
                ));
            }
            if let Some(t) = &hc.query_type {
                const TYPES: [&str; 9] =
                    ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"];
                if !TYPES.contains(&t.to_ascii_uppercase().as_str()) {
                    return Err(CommandError::invalid(
                        format!("{p}.query_type"),
                        format!("{t:?} is not a supported record type ({})", TYPES.join(" ")),
                    ));
                }
            }
        }
        CheckKind::Exec => {
            if hc.command.is_empty() || hc.command[0].is_empty() {
                return Err(CommandError::invalid(
                    format!("{p}.command"),
                    "exec checks need a command",
                ));
            }
        }
        CheckKind::Tcp => {}
    }
    let mut out = hc.clone();
    if let Some(t) = &mut out.query_type {
        *t = t.to_ascii_uppercase();
    }
    Ok(out)
}

/// Parses "200" or "200-399" (HTTP status codes 100..=599).
pub fn parse_status_range(s: &str) -> Result<(u16, u16), StatusRangeError> {
    let parse = |x: &str| -> Result<u16, StatusRangeError> {
        let v: u16 = x
            .trim()
            .parse()
            .map_err(|_| StatusRangeError::NotARange(s.to_string()))?;
        if !(100..=599).contains(&v) {
            return Err(StatusRangeError::NotAStatus(v));
        }
        Ok(v)
    };
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let v = parse(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(StatusRangeError::Reversed(s.to_string()));
    }
    Ok((lo, hi))
}

pub fn interface_name(field: &str, name: &str) -> R<()> {
    if name.is_empty() || name.len() > MAX_IFNAME {
        return Err(CommandError::invalid(
            field,
            format!(
                "{name:?} is not a valid interface name (1..={MAX_IFNAME} bytes, got {})",
                name.len()
            ),
        ));
    }
    if name == "."
        || name == ".."
        || name
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        return Err(CommandError::invalid(
            field,
            format!("{name:?} is not a valid interface name (no '/', ':' or spaces)"),
        ));
    }
    Ok(())
}

pub fn vip_group(g: &VipGroup) -> R<VipGroup> {
    let p = format!("vip_group[{}]", g.name);
    if g.name.is_empty()
        || g.name.len() > 64
        || !g
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(CommandError::invalid(
            format!("{p}.name"),
            format!(
                "{:?} is not a valid group name (1..=64 of A-Z a-z 0-9 - _ .)",
                g.name
            ),
        ));
    }
    interface_name(&format!("{p}.interface"), &g.interface)?;
    if g.addresses.is_empty() {
        return Err(CommandError::invalid(
            format!("{p}.addresses"),
            "a VIP group needs at least one address",
        ));
    }
    let mut seen = BTreeSet::new();
    for a in &g.addresses {
        if !usable_unicast(&a.addr()) {
            return Err(CommandError::invalid(
                format!("{p}.addresses"),
                format!("{a} is not a usable unicast address"),
            ));
        }
        if !seen.insert(a.addr()) {
            return Err(CommandError::invalid(
                format!("{p}.addresses"),
                format!("{} is listed twice", a.addr()),
            ));
        }
    }
    Ok(g.clone())
}

pub fn sync(s: &SyncSettings) -> R<SyncSettings> {
    if s.mode == SyncMode::Multicast || !s.interface.is_empty() {
        interface_name("sync.interface", &s.interface)?;
    }
    if let Some(g) = s.group {
        if !g.is_multicast() {
            return Err(CommandError::invalid(
                "sync.group",
                format!("{g} is not a multicast address"),
            ));
        }
    }
    if s.port == 0 {
        return Err(CommandError::invalid(
            "sync.port",
            "0 is not a valid UDP port",
        ));
    }
    if s.ttl == 0 {
        return Err(CommandError::invalid(
            "sync.ttl",
            "0 is out of range 1..=255",
        ));
    }
    Ok(s.clone())
}

/// Stateless takeover needs every director to hash a flow to the same real server: `mh` only.
pub fn sync_fits_service(sync: Option<&SyncSettings>, s: &Service) -> R<()> {
    match sync {
        Some(sync) if sync.mode == SyncMode::Stateless && s.scheduler != Scheduler::Mh => {
            Err(CommandError::invalid(
                format!("{}.scheduler", service_path(&s.key)),
                format!(
                    "{} cannot be used with sync.mode = stateless (every director must pick the \
                     same real server for a flow: use mh, or sync.mode = multicast)",
                    s.scheduler
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Validates a whole configuration, including checks across objects.
pub fn config(c: &Config) -> R<Config> {
    let mut out = Config::default();
    for (key, svc) in &c.services {
        if *key != svc.key {
            return Err(CommandError::invalid(
                service_path(key),
                format!("listed under {key} but its key is {}", svc.key),
            ));
        }
        out.services.insert(*key, service(svc)?);
    }
    let mut names = BTreeSet::new();
    let mut addrs = BTreeSet::new();
    for g in &c.vip_groups {
        let g = vip_group(g)?;
        if !names.insert(g.name.clone()) {
            return Err(CommandError::invalid(
                format!("vip_group[{}]", g.name),
                "the group name is used twice",
            ));
        }
        for a in &g.addresses {
            if !addrs.insert(a.addr()) {
                return Err(CommandError::invalid(
                    format!("vip_group[{}].addresses", g.name),
                    format!("{} is already in another VIP group", a.addr()),
                ));
            }
        }
        out.vip_groups.push(g);
    }
    out.vip_groups.sort_by(|a, b| a.name.cmp(&b.name));
    out.sync = c.sync.as_ref().map(sync).transpose()?;
    for s in out.services.values() {
        sync_fits_service(out.sync.as_ref(), s)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ServiceKey {
        s.parse().unwrap()
    }

    fn err_field(r: R<Service>) -> String {
        let e = r.unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidArgument);
        e.field
    }

    #[test]
    fn ok_service_normalises() {
        let mut s = Service::new(key("tcp/10.0.0.1:80"));
        s.persistence = Some(Persistence {
            timeout: 300,
            netmask: Some("24".into()),
        });
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 80));
        let v = service(&s).unwrap();
        assert_eq!(
            v.persistence.unwrap().netmask.as_deref(),
            Some("255.255.255.0")
        );
    }

    #[test]
    fn port_zero_rules() {
        let s = Service::new(key("tcp/10.0.0.1:0"));
        assert_eq!(err_field(service(&s)), "service[tcp/10.0.0.1:0].port");
        let mut s = Service::new(key("tcp/10.0.0.1:0"));
        s.persistence = Some(Persistence {
            timeout: 60,
            netmask: None,
        });
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 0));
        service(&s).unwrap();
        let s = Service::new(key("fwmark/0"));
        assert_eq!(err_field(service(&s)), "service[fwmark/0].fwmark");
        let mut s = Service::new(key("tcp/10.0.0.1:80"));
        let mut r = RealServer::new("10.0.1.1".parse().unwrap(), 0);
        r.forward = Forward::Masq;
        s.reals.push(r);
        assert!(err_field(service(&s)).ends_with(".port"));
    }

    #[test]
    fn weights_and_thresholds() {
        let k = key("tcp/10.0.0.1:80");
        let mut r = RealServer::new("10.0.1.1".parse().unwrap(), 80);
        r.weight = 65536;
        let e = real(&k, &r).unwrap_err();
        assert_eq!(
            e.field,
            "service[tcp/10.0.0.1:80].reals[10.0.1.1:80].weight"
        );
        assert!(e.message.contains("65536"));
        r.weight = 65535;
        real(&k, &r).unwrap();
        r.lower_threshold = 10;
        assert!(real(&k, &r).unwrap_err().field.ends_with("lower_threshold"));
        r.upper_threshold = 20;
        real(&k, &r).unwrap();
    }

    #[test]
    fn family_mismatch_needs_tunnel() {
        let k = key("tcp/10.0.0.1:80");
        let mut r = RealServer::new("2001:db8::5".parse().unwrap(), 80);
        assert!(real(&k, &r).unwrap_err().message.contains("tunnel"));
        r.forward = Forward::Tunnel;
        real(&k, &r).unwrap();
    }

    #[test]
    fn dr_cannot_map_ports_and_gue_needs_port() {
        let k = key("tcp/10.0.0.1:80");
        let r = RealServer::new("10.0.1.1".parse().unwrap(), 8080);
        assert!(real(&k, &r).unwrap_err().field.ends_with(".port"));
        let mut r = RealServer::new("10.0.1.1".parse().unwrap(), 80);
        r.forward = Forward::Tunnel;
        r.tunnel_type = Some(TunnelType::Gue);
        assert!(real(&k, &r).unwrap_err().field.ends_with("tunnel_port"));
        r.tunnel_port = Some(6080);
        real(&k, &r).unwrap();
        r.forward = Forward::Dr;
        assert!(real(&k, &r).unwrap_err().field.ends_with("tunnel_type"));
    }

    #[test]
    fn duplicate_reals_and_flags() {
        let mut s = Service::new(key("udp/10.0.0.1:53"));
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 53));
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 53));
        assert!(service(&s).unwrap_err().message.contains("duplicate"));
        let mut s = Service::new(key("tcp/10.0.0.1:80"));
        s.sched_flags = vec![SchedFlag::Port];
        assert!(err_field(service(&s)).ends_with("sched_flags"));
        s.scheduler = Scheduler::Mh;
        service(&s).unwrap();
        s.one_packet = true;
        assert!(err_field(service(&s)).ends_with("one_packet"));
    }

    #[test]
    fn netmasks() {
        assert!(normalize_netmask(Family::Ipv4, "255.0.255.0").is_err());
        assert!(normalize_netmask(Family::Ipv4, "33").is_err());
        assert_eq!(
            normalize_netmask(Family::Ipv6, "64").unwrap().as_deref(),
            Some("64")
        );
        assert!(normalize_netmask(Family::Ipv6, "0").is_err());
        assert!(normalize_netmask(Family::Ipv6, "129").is_err());
    }

    #[test]
    fn interfaces_and_groups() {
        assert!(interface_name("x", "eth0").is_ok());
        assert!(interface_name("x", "a-very-long-interface0").is_err());
        assert!(interface_name("x", "").is_err());
        let g = VipGroup {
            name: "web".into(),
            interface: "eth0".into(),
            addresses: vec![
                "10.0.0.1/24".parse().unwrap(),
                "10.0.0.1/32".parse().unwrap(),
            ],
        };
        assert!(vip_group(&g).unwrap_err().message.contains("twice"));
        let s = SyncSettings {
            mode: SyncMode::Multicast,
            interface: "eth0".into(),
            syncid: 1,
            group: Some("10.0.0.1".parse().unwrap()),
            port: 8848,
            ttl: 1,
        };
        assert_eq!(sync(&s).unwrap_err().field, "sync.group");
        let s = SyncSettings {
            interface: String::new(),
            group: None,
            ..s
        };
        assert_eq!(sync(&s).unwrap_err().field, "sync.interface");
    }

    #[test]
    fn stateless_sync_needs_mh_everywhere() {
        let stateless = SyncSettings {
            mode: SyncMode::Stateless,
            interface: String::new(),
            syncid: 0,
            group: None,
            port: 8848,
            ttl: 1,
        };
        assert!(sync(&stateless).is_ok());
        let mut c = Config {
            sync: Some(stateless),
            ..Default::default()
        };
        let mut s = Service::new(key("tcp/10.0.0.1:80"));
        c.services.insert(s.key, s.clone());
        let e = config(&c).unwrap_err();
        assert_eq!(e.field, "service[tcp/10.0.0.1:80].scheduler");
        assert!(e.message.contains("wlc"), "{e}");
        s.scheduler = Scheduler::Mh;
        c.services.insert(s.key, s);
        assert!(config(&c).is_ok());
    }

    #[test]
    fn health_checks() {
        let mut hc = HealthCheck::new(CheckKind::Tcp);
        hc.path = Some("/".into());
        assert!(health_check("hc", &hc).unwrap_err().field.ends_with("path"));
        let mut hc = HealthCheck::new(CheckKind::Http);
        hc.expect_status = Some("200-99".into());
        assert!(health_check("hc", &hc).is_err());
        hc.expect_status = Some("200-399".into());
        health_check("hc", &hc).unwrap();
        let hc = HealthCheck::new(CheckKind::Exec);
        assert!(health_check("hc", &hc).is_err());
        let mut hc = HealthCheck::new(CheckKind::Tcp);
        hc.rise = 0;
        assert!(health_check("hc", &hc).unwrap_err().field.ends_with("rise"));
    }

    #[test]
    fn sorry_server_and_dynamic_weights() {
        let mut s = Service::new(key("tcp/10.0.0.1:80"));
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 80));
        s.sorry_server = Some(RealServer::new("10.0.1.1".parse().unwrap(), 80));
        assert!(err_field(service(&s)).ends_with(".sorry_server"));
        let mut sorry = RealServer::new("10.0.9.9".parse().unwrap(), 80);
        sorry.weight = 0;
        s.sorry_server = Some(sorry.clone());
        assert!(err_field(service(&s)).ends_with(".sorry_server.weight"));
        sorry.weight = 1;
        s.sorry_server = Some(sorry);
        service(&s).unwrap();

        s.weight_policy = WeightPolicy::Load;
        service(&s).unwrap();
        s.scheduler = Scheduler::Mh;
        let e = service(&s).unwrap_err();
        assert!(e.field.ends_with(".weight_policy"), "{e}");
        assert!(e.to_string().contains("remap"), "{e}");
        s.scheduler = Scheduler::Rr;
        assert!(err_field(service(&s)).ends_with(".weight_policy"));
        s.weight_policy = WeightPolicy::Static;
        service(&s).unwrap();
    }
}
