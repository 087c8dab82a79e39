//! ipvsadm-style flags turned into model objects. Only syntax is checked here; the server validates.

use std::net::IpAddr;
use std::time::Duration;

use cluster_core::model::*;

use ipnet::IpNet;

use crate::cli::{
    CheckArgs, Endpoint, OptServiceSel, RealAttrs, ServiceAttrs, ServiceRef, ServiceSel,
};

type R<T> = Result<T, String>;

/// `--timeout`: positive seconds; fractions allowed.
pub fn parse_secs(s: &str) -> R<Duration> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 || v > 86_400.0 {
        return Err(format!("{s:?} is not in 0..86400 seconds"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `--endpoints a:1,b:2`: order kept, blanks and duplicates dropped.
pub fn parse_endpoints(s: &str) -> R<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for e in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        if !out.iter().any(|x| x == e) {
            out.push(e.to_string());
        }
    }
    if out.is_empty() {
        return Err("--endpoints names no director (expected HOST:PORT,...)".into());
    }
    Ok(out)
}

/// Firewall marks as ipvsadm takes them: decimal or 0x-prefixed hex.
pub fn parse_fwmark(s: &str) -> R<u32> {
    let t = s.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse(),
    };
    v.map_err(|_| format!("fwmark {s:?} is not a number in 0..=4294967295"))
}

fn addr_key(protocol: Protocol, (address, port): Endpoint) -> ServiceKey {
    // ipvsadm: an omitted port means 0, which only persistent services accept (server checks).
    ServiceKey::Addr {
        protocol,
        address,
        port: port.unwrap_or(0),
    }
}

fn key_of(
    tcp: Option<Endpoint>,
    udp: Option<Endpoint>,
    sctp: Option<Endpoint>,
    fwmark: Option<u32>,
    ipv6: bool,
) -> Option<ServiceKey> {
    if let Some(e) = tcp {
        Some(addr_key(Protocol::Tcp, e))
    } else if let Some(e) = udp {
        Some(addr_key(Protocol::Udp, e))
    } else if let Some(e) = sctp {
        Some(addr_key(Protocol::Sctp, e))
    } else {
        let family = if ipv6 { Family::Ipv6 } else { Family::Ipv4 };
        fwmark.map(|mark| ServiceKey::Fwmark { family, mark })
    }
}

pub fn service_key(r: &ServiceRef) -> R<ServiceKey> {
    let ServiceSel {
        tcp,
        udp,
        sctp,
        fwmark,
    } = &r.sel;
    key_of(*tcp, *udp, *sctp, *fwmark, r.ipv6)
        .ok_or_else(|| "name a service with -t, -u, --sctp-service or -f".to_string())
}

pub fn optional_service_key(sel: &OptServiceSel, ipv6: bool) -> Option<ServiceKey> {
    key_of(sel.tcp, sel.udp, sel.sctp, sel.fwmark, ipv6)
}

/// A model word (scheduler, tunnel type, ...). Unknown words are reported like server errors
/// (exit status 1, one line) naming the flag, with the words accepted.
fn word<T: std::str::FromStr<Err: std::fmt::Display>>(flag: &str, s: &str) -> R<T> {
    s.trim().parse().map_err(|e| format!("{flag}: {e}"))
}

/// `-b`: ipvsadm's names (`sh-fallback`, `mh-port`, ...) and the model's (`fallback`, `port`);
/// `none` or an empty list clears the flags.
pub fn parse_sched_flags(s: &str) -> R<Vec<SchedFlag>> {
    let mut out = Vec::new();
    for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let flag = match word.to_ascii_lowercase().as_str() {
            "none" => continue,
            "sh-fallback" | "mh-fallback" | "fallback" => SchedFlag::Fallback,
            "sh-port" | "mh-port" | "port" => SchedFlag::Port,
            _ => {
                return Err(format!(
                    "-b/--sched-flags: unknown scheduler flag {word:?} (expected sh-fallback, sh-port, mh-fallback, mh-port or none)"
                ))
            }
        };
        if !out.contains(&flag) {
            out.push(flag);
        }
    }
    Ok(out)
}

/// A new service from `service add` flags; unset attributes take ipvsadm's defaults.
pub fn new_service(key: ServiceKey, a: &ServiceAttrs) -> R<Service> {
    let mut s = Service::new(key);
    edit_service(&mut s, a)?;
    Ok(s)
}

/// Overrides only the attributes whose flags were given.
pub fn edit_service(s: &mut Service, a: &ServiceAttrs) -> R<()> {
    if let Some(name) = &a.scheduler {
        let sched = word("-s/--scheduler", name)?;
        s.scheduler = sched;
        // Flags belong to sh/mh only; keeping them would make a plain `-s rr` fail validation.
        if a.sched_flags.is_none() && !matches!(sched, Scheduler::Sh | Scheduler::Mh) {
            s.sched_flags.clear();
        }
    }
    if let Some(flags) = &a.sched_flags {
        s.sched_flags = parse_sched_flags(flags)?;
    }
    if a.no_persistent {
        s.persistence = None;
    }
    if let Some(timeout) = a.persistent {
        match &mut s.persistence {
            Some(p) => p.timeout = timeout,
            None => {
                s.persistence = Some(Persistence {
                    timeout,
                    netmask: None,
                })
            }
        }
    }
    if let Some(mask) = &a.netmask {
        let p = s
            .persistence
            .as_mut()
            .ok_or("-M/--netmask only applies to a persistent service (add -p)")?;
        let mask = mask.trim();
        p.netmask = (!mask.is_empty()).then(|| mask.to_string());
    }
    if a.ops {
        s.one_packet = true;
    }
    if a.no_ops {
        s.one_packet = false;
    }
    if let Some(wp) = &a.weight_policy {
        s.weight_policy = word("--weight-policy", wp)?;
    }
    if let Some(ep) = a.sorry_server {
        let (address, port) = real_endpoint(&s.key, ep);
        let mut r = RealServer::new(address, port);
        if let Some(f) = &a.sorry_forward {
            r.forward = word("--sorry-forward", f)?;
        }
        s.sorry_server = Some(r);
    }
    if a.no_sorry_server {
        s.sorry_server = None;
    }
    Ok(())
}

/// `-r ADDR[:PORT]`; like ipvsadm the port defaults to the service's (0 for fwmark services).
pub fn real_endpoint(key: &ServiceKey, (address, port): Endpoint) -> (IpAddr, u16) {
    (address, port.or(key.port()).unwrap_or(0))
}

/// A new real server from `real add` flags; unset attributes take ipvsadm's defaults.
pub fn new_real(address: IpAddr, port: u16, a: &RealAttrs) -> R<RealServer> {
    let mut r = RealServer::new(address, port);
    edit_real(&mut r, a)?;
    Ok(r)
}

/// Overrides only the attributes whose flags were given.
pub fn edit_real(r: &mut RealServer, a: &RealAttrs) -> R<()> {
    let f = &a.forward;
    let forward = if f.masquerading {
        Some(Forward::Masq)
    } else if f.gatewaying {
        Some(Forward::Dr)
    } else if f.ipip {
        Some(Forward::Tunnel)
    } else {
        None
    };
    if let Some(fw) = forward {
        r.forward = fw;
        // Tunnel settings are rejected on masq/dr reals, so leaving tunnelling drops them.
        if fw != Forward::Tunnel {
            r.tunnel_type = None;
            r.tunnel_port = None;
            r.tunnel_csum = None;
        }
    }
    if let Some(t) = &a.tun_type {
        r.tunnel_type = Some(word("--tun-type", t)?);
    }
    if let Some(p) = a.tun_port {
        r.tunnel_port = Some(p);
    }
    let c = &a.csum;
    if c.nocsum {
        r.tunnel_csum = Some(TunnelCsum::None);
    } else if c.csum {
        r.tunnel_csum = Some(TunnelCsum::Csum);
    } else if c.remcsum {
        r.tunnel_csum = Some(TunnelCsum::Remcsum);
    }
    if let Some(w) = a.weight {
        r.weight = w;
    }
    if let Some(x) = a.u_threshold {
        r.upper_threshold = x;
    }
    if let Some(y) = a.l_threshold {
        r.lower_threshold = y;
    }
    Ok(())
}

/// `healthcheck set` flags; unset fields take the model's defaults.
pub fn health_check(a: &CheckArgs) -> R<HealthCheck> {
    let mut h = HealthCheck::new(word("--kind", &a.kind)?);
    if let Some(v) = a.interval_ms {
        h.interval_ms = v;
    }
    if let Some(v) = a.timeout_ms {
        h.timeout_ms = v;
    }
    if let Some(v) = a.rise {
        h.rise = v;
    }
    if let Some(v) = a.fall {
        h.fall = v;
    }
    if let Some(v) = &a.on_failure {
        h.on_failure = word("--on-failure", v)?;
    }
    h.port = a.port;
    h.path = a.path.clone();
    h.host = a.host.clone();
    h.expect_status = a.expect_status.clone();
    h.body_contains = a.body_contains.clone();
    h.send = a.send.clone();
    h.expect = a.expect.clone();
    h.query_name = a.query_name.clone();
    h.query_type = a.query_type.clone();
    h.command = a.command.clone();
    Ok(h)
}

/// `vip set` addresses: `ADDR/PREFIX`; a bare address gets a host prefix, as the server does.
pub fn parse_vip(a: &str) -> R<IpNet> {
    let t = a.trim();
    t.parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{a:?} is not an address with prefix (e.g. 192.0.2.10/24)"))
}

/// `sync set --group`.
pub fn parse_group(g: &str) -> R<IpAddr> {
    g.trim()
        .parse()
        .map_err(|_| format!("{g:?} is not an IP address"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, RealVerb, ServiceVerb, Verb};
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["lvsctl"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn service_add(args: &[&str]) -> Service {
        let mut v = vec!["service", "add"];
        v.extend_from_slice(args);
        match cli(&v).verb {
            Verb::Service(ServiceVerb::Add(w)) => {
                new_service(service_key(&w.svc).unwrap(), &w.attrs).unwrap()
            }
            other => panic!("{other:?}"),
        }
    }

    fn service_edit(base: &Service, args: &[&str]) -> R<Service> {
        let mut v = vec!["service", "edit"];
        v.extend_from_slice(args);
        match cli(&v).verb {
            Verb::Service(ServiceVerb::Edit(w)) => {
                assert_eq!(service_key(&w.svc).unwrap(), base.key);
                let mut s = base.clone();
                edit_service(&mut s, &w.attrs)?;
                Ok(s)
            }
            other => panic!("{other:?}"),
        }
    }

    fn real_write(args: &[&str], base: Option<&RealServer>) -> RealServer {
        let verb = if base.is_some() { "edit" } else { "add" };
        let mut v = vec!["real", verb];
        v.extend_from_slice(args);
        let w = match cli(&v).verb {
            Verb::Real(RealVerb::Add(w)) | Verb::Real(RealVerb::Edit(w)) => w,
            other => panic!("{other:?}"),
        };
        let key = service_key(&w.real.svc).unwrap();
        let (addr, port) = real_endpoint(&key, w.real.real);
        match base {
            Some(b) => {
                let mut r = b.clone();
                edit_real(&mut r, &w.attrs).unwrap();
                r
            }
            None => new_real(addr, port, &w.attrs).unwrap(),
        }
    }

    /// Parses a command line that must be rejected as a usage error.
    fn usage_error(args: &[&str]) -> String {
        let mut v = vec!["lvsctl"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v) {
            Ok(c) => panic!("{args:?} was accepted: {:?}", c.verb),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn service_flags_make_keys() {
        assert_eq!(
            service_add(&["-t", "10.0.0.1:80"]).key.to_string(),
            "tcp/10.0.0.1:80"
        );
        assert_eq!(
            service_add(&["-u", "[2001:db8::1]:53"]).key.to_string(),
            "udp/[2001:db8::1]:53"
        );
        assert_eq!(
            service_add(&["--sctp-service", "10.0.0.1:9"])
                .key
                .to_string(),
            "sctp/10.0.0.1:9"
        );
        assert_eq!(service_add(&["-f", "5"]).key.to_string(), "fwmark/5");
        assert_eq!(
            service_add(&["-f", "0x10", "-6"]).key.to_string(),
            "fwmark6/16"
        );
        assert_eq!(
            service_add(&["--fwmark-service", "7", "--ipv6"])
                .key
                .to_string(),
            "fwmark6/7"
        );
        // ipvsadm: an omitted port is 0 (persistent all-port services).
        assert_eq!(
            service_add(&["-t", "10.0.0.1", "-p"]).key.to_string(),
            "tcp/10.0.0.1:0"
        );
    }

    #[test]
    fn bad_flags_are_usage_errors() {
        usage_error(&["service", "add"]);
        usage_error(&["service", "add", "-t", "10.0.0.1:80", "-u", "10.0.0.1:53"]);
        usage_error(&["service", "add", "-t", "10.0.0.1:80", "-6"]);
        usage_error(&["service", "add", "-t", "10.0.0.300:80"]);
        usage_error(&["service", "add", "-t", "10.0.0.1:http"]);
        usage_error(&["service", "add", "-t", "[2001:db8::1]:x"]);
        usage_error(&["service", "add", "-f", "-1"]);
        usage_error(&["service", "add", "-f", "0xZZ"]);
        usage_error(&["list", "-6"]);
        usage_error(&["real", "add", "-t", "10.0.0.1:80", "-r", "10.0.1.1:99999"]);
        usage_error(&[
            "real",
            "add",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.1.1",
            "-m",
            "-g",
        ]);
        usage_error(&[
            "real",
            "add",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.1.1",
            "-w",
            "-1",
        ]);
        usage_error(&["real", "add", "-t", "10.0.0.1:80"]);
        usage_error(&["vip", "set", "web", "--interface", "eth0", "192.0.2.300/24"]);
        usage_error(&["vip", "set", "web", "--interface", "eth0"]);
        usage_error(&["sync", "set", "--interface", "eth1", "--group", "nope"]);
        usage_error(&["sync", "set", "--interface", "eth1", "--syncid", "256"]);
        usage_error(&["--timeout", "0", "list"]);
        usage_error(&["--output", "yaml", "list"]);

        // As in ipvsadm, an unbracketed IPv6 address is all address: the port is 0.
        assert_eq!(
            service_add(&["-t", "2001:db8::1:80"]).key.to_string(),
            "tcp/[2001:db8::1:80]:0"
        );
    }

    #[test]
    fn service_attributes_and_defaults() {
        let s = service_add(&["-t", "10.0.0.1:80"]);
        assert_eq!(s.scheduler, Scheduler::Wlc);
        assert_eq!(s.persistence, None);
        assert!(!s.one_packet);

        let s = service_add(&[
            "-u",
            "10.0.0.1:53",
            "-s",
            "sh",
            "-b",
            "sh-fallback,sh-port",
            "-p",
            "-M",
            "255.255.255.0",
            "-o",
            "--weight-policy",
            "load",
        ]);
        assert_eq!(s.scheduler, Scheduler::Sh);
        assert_eq!(s.sched_flags, vec![SchedFlag::Fallback, SchedFlag::Port]);
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 300,
                netmask: Some("255.255.255.0".into())
            })
        );
        assert!(s.one_packet);
        assert_eq!(s.weight_policy, WeightPolicy::Load);

        let s = service_add(&["-t", "10.0.0.1:443", "-p", "60"]);
        assert_eq!(s.persistence.unwrap().timeout, 60);
        let s = service_add(&["-t", "10.0.0.1:443", "--persistent=90", "-s", "rr"]);
        assert_eq!(s.persistence.unwrap().timeout, 90);
        assert_eq!(s.scheduler, Scheduler::Rr);
    }

    #[test]
    fn unknown_words_name_the_flag() {
        let plain = service_add(&["-t", "10.0.0.1:80"]);
        let e = service_edit(&plain, &["-t", "10.0.0.1:80", "-s", "fastest"]).unwrap_err();
        assert!(
            e.starts_with("-s/--scheduler: ") && e.contains("\"fastest\""),
            "{e}"
        );
        assert!(e.contains("wlc"), "{e}");
        let e = service_edit(&plain, &["-t", "10.0.0.1:80", "-b", "sh-bogus"]).unwrap_err();
        assert!(
            e.starts_with("-b/--sched-flags: ") && e.contains("sh-bogus"),
            "{e}"
        );
        let e = service_edit(&plain, &["-t", "10.0.0.1:80", "--weight-policy", "x"]).unwrap_err();
        assert!(e.starts_with("--weight-policy: "), "{e}");

        let mut r = RealServer::new("10.0.1.1".parse().unwrap(), 80);
        let a = RealAttrs {
            tun_type: Some("vxlan".into()),
            ..Default::default()
        };
        assert!(edit_real(&mut r, &a)
            .unwrap_err()
            .starts_with("--tun-type: "));

        let c = cli(&["hc", "set", "-t", "10.0.0.1:80", "--kind", "icmp"]);
        let Verb::HealthCheck(crate::cli::HealthCheckVerb::Set { check, .. }) = c.verb else {
            panic!()
        };
        assert!(health_check(&check).unwrap_err().starts_with("--kind: "));
    }

    #[test]
    fn sched_flag_names_map_to_model_flags() {
        let flags = parse_sched_flags;
        assert_eq!(
            flags("mh-port, mh-fallback").unwrap(),
            vec![SchedFlag::Port, SchedFlag::Fallback]
        );
        assert_eq!(
            flags("fallback,sh-fallback").unwrap(),
            vec![SchedFlag::Fallback]
        );
        assert_eq!(flags("none").unwrap(), vec![]);
        assert_eq!(flags("").unwrap(), vec![]);
        assert!(flags("sh-bogus").unwrap_err().contains("sh-bogus"));
    }

    #[test]
    fn edit_keeps_what_is_not_given() {
        let base = service_add(&["-t", "10.0.0.1:80", "-p", "600", "-M", "255.255.0.0"]);
        let s = service_edit(&base, &["-t", "10.0.0.1:80", "-s", "rr"]).unwrap();
        assert_eq!(s.scheduler, Scheduler::Rr);
        assert_eq!(s.persistence, base.persistence);

        let s = service_edit(&base, &["-t", "10.0.0.1:80", "-p", "30"]).unwrap();
        assert_eq!(
            s.persistence,
            Some(Persistence {
                timeout: 30,
                netmask: Some("255.255.0.0".into())
            })
        );
        let s = service_edit(&base, &["-t", "10.0.0.1:80", "--no-persistent"]).unwrap();
        assert_eq!(s.persistence, None);

        let plain = service_add(&["-t", "10.0.0.1:80"]);
        assert!(
            service_edit(&plain, &["-t", "10.0.0.1:80", "-M", "255.255.255.0"])
                .unwrap_err()
                .contains("-p")
        );

        let sh = service_add(&["-t", "10.0.0.1:80", "-s", "sh", "-b", "sh-port"]);
        let s = service_edit(&sh, &["-t", "10.0.0.1:80", "-s", "mh"]).unwrap();
        assert_eq!(s.sched_flags, vec![SchedFlag::Port], "mh keeps flags");
        let s = service_edit(&sh, &["-t", "10.0.0.1:80", "-s", "rr"]).unwrap();
        assert!(s.sched_flags.is_empty(), "rr cannot carry sh flags");

        let ops = service_add(&["-u", "10.0.0.1:53", "-o"]);
        let s = service_edit(&ops, &["-u", "10.0.0.1:53", "--no-ops"]).unwrap();
        assert!(!s.one_packet);
    }

    #[test]
    fn real_flags_make_real_servers() {
        let r = real_write(&["-t", "10.0.0.1:80", "-r", "10.0.1.1"], None);
        assert_eq!(r, RealServer::new("10.0.1.1".parse().unwrap(), 80));
        assert_eq!(r.forward, Forward::Dr);
        assert_eq!(r.weight, 1);

        let r = real_write(
            &[
                "-u",
                "[2001:db8::1]:53",
                "-r",
                "[2001:db8::10]:5353",
                "-m",
                "-w",
                "5",
                "-x",
                "100",
                "-y",
                "10",
            ],
            None,
        );
        assert_eq!(r.address, "2001:db8::10".parse::<IpAddr>().unwrap());
        assert_eq!(r.port, 5353);
        assert_eq!(r.forward, Forward::Masq);
        assert_eq!(
            (r.weight, r.upper_threshold, r.lower_threshold),
            (5, 100, 10)
        );

        let r = real_write(&["-u", "[2001:db8::1]:53", "-r", "2001:db8::10"], None);
        assert_eq!(r.port, 53, "bare IPv6 real takes the service port");

        let r = real_write(&["-f", "5", "-r", "10.0.1.1"], None);
        assert_eq!(r.port, 0, "fwmark reals have no port by default");

        let r = real_write(
            &[
                "-t",
                "10.0.0.1:80",
                "-r",
                "10.0.1.1:80",
                "-i",
                "--tun-type",
                "gue",
                "--tun-port",
                "6080",
                "--tun-remcsum",
            ],
            None,
        );
        assert_eq!(r.forward, Forward::Tunnel);
        assert_eq!(r.tunnel_type, Some(TunnelType::Gue));
        assert_eq!(r.tunnel_port, Some(6080));
        assert_eq!(r.tunnel_csum, Some(TunnelCsum::Remcsum));

        // Switching to NAT drops tunnel settings; weight edits keep the rest.
        let m = real_write(&["-t", "10.0.0.1:80", "-r", "10.0.1.1", "-m"], Some(&r));
        assert_eq!(m.forward, Forward::Masq);
        assert_eq!(
            (m.tunnel_type, m.tunnel_port, m.tunnel_csum),
            (None, None, None)
        );
        let w = real_write(
            &["-t", "10.0.0.1:80", "-r", "10.0.1.1", "-w", "0"],
            Some(&r),
        );
        assert_eq!(w.weight, 0);
        assert_eq!(w.tunnel_type, Some(TunnelType::Gue));
    }

    #[test]
    fn health_check_flags() {
        let c = cli(&[
            "healthcheck",
            "set",
            "-t",
            "10.0.0.1:80",
            "--kind",
            "http",
            "--path",
            "/healthz",
            "--expect-status",
            "200-399",
            "--fall",
            "5",
            "--on-failure",
            "remove",
        ]);
        let Verb::HealthCheck(crate::cli::HealthCheckVerb::Set { check, .. }) = c.verb else {
            panic!()
        };
        let h = health_check(&check).unwrap();
        assert_eq!(h.kind, CheckKind::Http);
        assert_eq!(h.path.as_deref(), Some("/healthz"));
        assert_eq!(h.fall, 5);
        assert_eq!(h.rise, 2);
        assert_eq!(h.on_failure, FailureAction::Remove);

        let c = cli(&[
            "hc",
            "set",
            "-f",
            "5",
            "--kind",
            "exec",
            "--command",
            "/usr/bin/check",
            "-v",
            "--deep",
        ]);
        let Verb::HealthCheck(crate::cli::HealthCheckVerb::Set { check, .. }) = c.verb else {
            panic!()
        };
        assert_eq!(
            health_check(&check).unwrap().command,
            vec!["/usr/bin/check", "-v", "--deep"]
        );
    }

    #[test]
    fn global_flags() {
        let c = cli(&[
            "list",
            "--endpoints",
            "a:1, b:2,,a:1",
            "--output",
            "json",
            "--timeout",
            "2.5",
            "--stale",
        ]);
        assert_eq!(
            parse_endpoints(&c.global.endpoints).unwrap(),
            vec!["a:1", "b:2"]
        );
        assert_eq!(c.global.output, crate::cli::OutputFormat::Json);
        assert!(c.global.stale);
        assert_eq!(parse_secs("2.5").unwrap(), Duration::from_millis(2500));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("nan").is_err());
        assert!(parse_endpoints(" , ").is_err());
    }

    #[test]
    fn kernel_view_flags() {
        let Verb::List(a) = cli(&["list", "--stats"]).verb else {
            panic!()
        };
        assert!(a.stats && !a.rate && !a.exact);
        assert_eq!(optional_service_key(&a.sel, a.ipv6), None);
        let Verb::List(a) = cli(&["ls", "-t", "10.0.0.1:80", "--rate", "--exact"]).verb else {
            panic!()
        };
        assert!(a.rate && a.exact && !a.stats);
        assert_eq!(
            optional_service_key(&a.sel, a.ipv6).unwrap().to_string(),
            "tcp/10.0.0.1:80"
        );
        let Verb::List(a) = cli(&["list", "-f", "5", "-6", "--stats"]).verb else {
            panic!()
        };
        assert_eq!(
            optional_service_key(&a.sel, a.ipv6).unwrap().to_string(),
            "fwmark6/5"
        );
        // Plain list stays the config view.
        let Verb::List(a) = cli(&["list"]).verb else {
            panic!()
        };
        assert!(!a.stats && !a.rate);
        let e = usage_error(&["list", "--stats", "--rate"]);
        assert!(e.contains("cannot be used with"), "{e}");
        let e = usage_error(&["list", "--exact"]);
        assert!(e.contains("required"), "{e}");

        let Verb::Conns(c) = cli(&["conns", "--sync", "--output", "json"]).verb else {
            panic!()
        };
        assert!(c.sync);
        let Verb::Conns(c) = cli(&["conns"]).verb else {
            panic!()
        };
        assert!(!c.sync);
        usage_error(&["conns", "--stats"]);
        assert!(matches!(cli(&["ipvs"]).verb, Verb::Ipvs));
        usage_error(&["ipvs", "status"]);
    }

    #[test]
    fn vip_and_sync() {
        let c = cli(&[
            "vip",
            "set",
            "web",
            "--interface",
            "eth0",
            "192.0.2.10/24",
            "2001:db8::10",
        ]);
        let Verb::Vip(crate::cli::VipVerb::Set { addresses, .. }) = c.verb else {
            panic!()
        };
        assert_eq!(addresses[0].to_string(), "192.0.2.10/24");
        assert_eq!(addresses[1].to_string(), "2001:db8::10/128");
        let c = cli(&[
            "sync",
            "set",
            "--interface",
            "eth1",
            "--group",
            "224.0.0.81",
        ]);
        let Verb::Sync(crate::cli::SyncVerb::Set {
            group, port, ttl, ..
        }) = c.verb
        else {
            panic!()
        };
        assert_eq!(group, Some("224.0.0.81".parse().unwrap()));
        assert_eq!((port, ttl), (8848, 1));
    }
}
