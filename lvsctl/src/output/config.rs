//! Text views of the desired config: the ipvsadm-style service list and the VIP groups.

use cluster_core::model::*;

use super::table::table;

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
    if let Some(r) = &s.sorry_server {
        out.push_str(&format!(" sorry {}", r.endpoint()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
