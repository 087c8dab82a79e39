//! `ipvsadm -Ln` as an independent reader of the kernel table: its output parsed into a
//! comparable table, the table a config must produce (ipvsadm 1.31 formatting), and their
//! differences as text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cluster_core::model::{Config, Forward, SchedFlag, Scheduler, ServiceKey};

/// One destination line of `ipvsadm -Ln`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsadmDest {
    pub forward: String,
    pub weight: u32,
}

/// One service block of `ipvsadm -Ln`: the text after the address (scheduler and flags, spaces
/// normalised) and its destinations by `addr:port` text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpvsadmService {
    pub settings: String,
    pub dests: BTreeMap<String, IpvsadmDest>,
}

/// `ipvsadm -Ln` parsed, keyed by `PROT ADDR:PORT` (`FWM 5`, `FWM 5 IPv6`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IpvsadmTable {
    pub services: BTreeMap<String, IpvsadmService>,
}

impl IpvsadmTable {
    pub fn parse(text: &str) -> IpvsadmTable {
        let mut t = IpvsadmTable::default();
        let mut current: Option<String> = None;
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.first().copied() {
                Some("TCP") | Some("UDP") | Some("SCTP") if words.len() >= 2 => {
                    let key = format!("{} {}", words[0], words[1]);
                    t.services.insert(
                        key.clone(),
                        IpvsadmService {
                            settings: words[2..].join(" "),
                            dests: BTreeMap::new(),
                        },
                    );
                    current = Some(key);
                }
                Some("FWM") if words.len() >= 2 => {
                    let v6 = words.get(2) == Some(&"IPv6");
                    let key = if v6 {
                        format!("FWM {} IPv6", words[1])
                    } else {
                        format!("FWM {}", words[1])
                    };
                    let rest = if v6 { &words[3..] } else { &words[2..] };
                    t.services.insert(
                        key.clone(),
                        IpvsadmService {
                            settings: rest.join(" "),
                            dests: BTreeMap::new(),
                        },
                    );
                    current = Some(key);
                }
                Some("->") if words.len() >= 4 && words[1] != "RemoteAddress:Port" => {
                    if let Some(k) = &current {
                        let d = IpvsadmDest {
                            forward: words[2].to_string(),
                            weight: words[3].parse().unwrap_or(u32::MAX),
                        };
                        if let Some(s) = t.services.get_mut(k) {
                            s.dests.insert(words[1].to_string(), d);
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }

    /// What `ipvsadm -Ln` shows for `config` (ipvsadm 1.31 formatting).
    pub fn expected(config: &Config) -> IpvsadmTable {
        let mut t = IpvsadmTable::default();
        for s in config.services.values() {
            let key = match s.key {
                ServiceKey::Addr {
                    protocol,
                    address,
                    port,
                } => format!(
                    "{} {}",
                    protocol.as_str().to_ascii_uppercase(),
                    cluster_core::model::fmt_endpoint(&address, port)
                ),
                ServiceKey::Fwmark { family, mark } => match family {
                    cluster_core::model::Family::Ipv4 => format!("FWM {mark}"),
                    cluster_core::model::Family::Ipv6 => format!("FWM {mark} IPv6"),
                },
            };
            let mut settings = s.scheduler.as_str().to_string();
            if !s.sched_flags.is_empty() {
                let prefix = match s.scheduler {
                    Scheduler::Sh => "sh",
                    _ => "mh",
                };
                let mut names: Vec<String> = Vec::new();
                for f in [SchedFlag::Fallback, SchedFlag::Port] {
                    if s.sched_flags.contains(&f) {
                        names.push(format!("{prefix}-{}", f.as_str()));
                    }
                }
                let _ = write!(settings, " ({})", names.join(","));
            }
            if let Some(p) = &s.persistence {
                let _ = write!(settings, " persistent {}", p.timeout);
                let family = s.key.family();
                let mask = p.netmask.clone().unwrap_or_else(|| match family {
                    cluster_core::model::Family::Ipv4 => "255.255.255.255".into(),
                    cluster_core::model::Family::Ipv6 => "128".into(),
                });
                if mask != "255.255.255.255" && mask != "128" {
                    let _ = write!(settings, " mask {mask}");
                }
            }
            if s.one_packet {
                settings.push_str(" ops");
            }
            let dests = s
                .reals
                .iter()
                .map(|r| {
                    let forward = match r.forward {
                        Forward::Masq => "Masq",
                        Forward::Dr => "Route",
                        Forward::Tunnel => "Tunnel",
                    };
                    (
                        r.endpoint(),
                        IpvsadmDest {
                            forward: forward.into(),
                            weight: r.weight,
                        },
                    )
                })
                .collect();
            t.services.insert(key, IpvsadmService { settings, dests });
        }
        t
    }

    /// Differences, `self` being the expectation.
    pub fn diff(&self, have: &IpvsadmTable) -> Vec<String> {
        let mut out = Vec::new();
        for (k, want) in &self.services {
            match have.services.get(k) {
                None => out.push(format!("{k} missing")),
                Some(h) => {
                    if h.settings != want.settings {
                        out.push(format!(
                            "{k}: shows {:?}, expected {:?}",
                            h.settings, want.settings
                        ));
                    }
                    for (a, d) in &want.dests {
                        match h.dests.get(a) {
                            None => out.push(format!("{k} -> {a} missing")),
                            Some(hd) if hd != d => {
                                out.push(format!("{k} -> {a}: shows {hd:?}, expected {d:?}"))
                            }
                            Some(_) => {}
                        }
                    }
                    for a in h.dests.keys() {
                        if !want.dests.contains_key(a) {
                            out.push(format!("{k} -> {a} unexpected"));
                        }
                    }
                }
            }
        }
        for k in have.services.keys() {
            if !self.services.contains_key(k) {
                out.push(format!("{k} unexpected"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use cluster_core::model::{Persistence, RealServer, Service};

    use super::*;

    /// ipvsadm 1.31's listing: a header, address and fwmark services (IPv6 too), flags.
    const LISTING: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.10:80 wrr
  -> 10.0.1.1:80                  Route   1      0          0
  -> 10.0.1.2:8080                Masq    3      2          1
TCP  [fd00::10]:443 sh (sh-fallback,sh-port) persistent 120 mask 64
  -> [fd00::1]:443                Route   1      0          0
UDP  10.0.0.10:53 rr ops
FWM  5 lc persistent 300 mask 255.255.255.0
  -> 10.0.1.1:0                   Tunnel  2      0          0
FWM  6 IPv6 rr
";

    fn dest(forward: &str, weight: u32) -> IpvsadmDest {
        IpvsadmDest {
            forward: forward.into(),
            weight,
        }
    }

    #[test]
    fn parses_services_flags_and_destinations() {
        let t = IpvsadmTable::parse(LISTING);
        let keys: Vec<&str> = t.services.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "FWM 5",
                "FWM 6 IPv6",
                "TCP 10.0.0.10:80",
                "TCP [fd00::10]:443",
                "UDP 10.0.0.10:53"
            ]
        );
        let tcp = &t.services["TCP 10.0.0.10:80"];
        assert_eq!(tcp.settings, "wrr");
        assert_eq!(tcp.dests["10.0.1.1:80"], dest("Route", 1));
        assert_eq!(tcp.dests["10.0.1.2:8080"], dest("Masq", 3));
        assert_eq!(
            t.services["TCP [fd00::10]:443"].settings,
            "sh (sh-fallback,sh-port) persistent 120 mask 64"
        );
        assert!(t.services["UDP 10.0.0.10:53"].dests.is_empty());
        assert_eq!(t.services["UDP 10.0.0.10:53"].settings, "rr ops");
        let fwm = &t.services["FWM 5"];
        assert_eq!(fwm.settings, "lc persistent 300 mask 255.255.255.0");
        assert_eq!(fwm.dests["10.0.1.1:0"], dest("Tunnel", 2));
        assert_eq!(t.services["FWM 6 IPv6"].settings, "rr");
    }

    #[test]
    fn expected_table_matches_what_ipvsadm_shows() {
        let mut c = Config::default();
        let mut tcp = Service::new("tcp/10.0.0.10:80".parse().unwrap());
        tcp.scheduler = Scheduler::Wrr;
        let mut a = RealServer::new("10.0.1.1".parse().unwrap(), 80);
        a.weight = 1;
        a.forward = Forward::Dr;
        let mut b = RealServer::new("10.0.1.2".parse().unwrap(), 8080);
        b.weight = 3;
        b.forward = Forward::Masq;
        tcp.reals = vec![a, b];
        let mut v6 = Service::new("tcp/[fd00::10]:443".parse().unwrap());
        v6.scheduler = Scheduler::Sh;
        v6.sched_flags = vec![SchedFlag::Fallback, SchedFlag::Port];
        v6.persistence = Some(Persistence {
            timeout: 120,
            netmask: Some("64".into()),
        });
        let mut r6 = RealServer::new("fd00::1".parse().unwrap(), 443);
        r6.weight = 1;
        r6.forward = Forward::Dr;
        v6.reals = vec![r6];
        for s in [tcp, v6] {
            c.services.insert(s.key, s);
        }
        let want = IpvsadmTable::expected(&c);
        let mut have = IpvsadmTable::parse(LISTING);
        have.services.retain(|k, _| k.starts_with("TCP"));
        assert_eq!(want.diff(&have), Vec::<String>::new());
        assert_eq!(want, have);
    }

    #[test]
    fn diff_names_every_difference() {
        let want = IpvsadmTable::parse(LISTING);
        let mut have = want.clone();
        have.services.remove("FWM 6 IPv6");
        let tcp = have.services.get_mut("TCP 10.0.0.10:80").unwrap();
        tcp.settings = "rr".into();
        tcp.dests.insert("10.0.1.1:80".into(), dest("Route", 7));
        tcp.dests.remove("10.0.1.2:8080");
        tcp.dests.insert("10.0.1.3:80".into(), dest("Route", 1));
        have.services
            .insert("TCP 192.0.2.1:22".into(), want.services["FWM 5"].clone());
        assert_eq!(
            want.diff(&have),
            [
                "FWM 6 IPv6 missing",
                "TCP 10.0.0.10:80: shows \"rr\", expected \"wrr\"",
                "TCP 10.0.0.10:80 -> 10.0.1.1:80: shows IpvsadmDest { forward: \"Route\", weight: 7 }, expected IpvsadmDest { forward: \"Route\", weight: 1 }",
                "TCP 10.0.0.10:80 -> 10.0.1.2:8080 missing",
                "TCP 10.0.0.10:80 -> 10.0.1.3:80 unexpected",
                "TCP 192.0.2.1:22 unexpected",
            ]
        );
    }
}
