//! `virtual_server` blocks (by address, fwmark or group) → services: their settings, the
//! entries of `virtual_server_group`, and `real_server` blocks with their checkers.

use cluster_core::model::{
    CheckKind, Family, HealthCheck, Persistence, Protocol, RealServer, SchedFlag, Scheduler,
    Service, ServiceKey,
};

use super::super::parser::Node;
use super::super::source::Pos;
use super::super::values::{
    endpoint, family_word, method, model, number, one, port, range, Invalid, Method,
};
use super::{CheckOpts, Head, Mapper, Real, Vs};

impl<'a> Mapper<'a> {
    fn head(&self, n: &Node) -> Result<Head, Invalid> {
        match n.args() {
            [f, m] if f == "fwmark" => Ok(Head::Fwmark(fwmark("virtual_server ", m)?, None)),
            [g, name] if g == "group" => Ok(Head::Group(name.clone())),
            args => {
                let (a, p) = endpoint("virtual_server", args)?;
                Ok(Head::Addr(a, p))
            }
        }
    }

    pub(super) fn virtual_server(&mut self, n: &'a Node) {
        let desc = n.text();
        let head = match self.head(n) {
            Ok(h) => h,
            Err(e) => return self.warn(n.pos, format!("{e}; `{desc}` left out")),
        };
        let vs = match self.vs_settings(n) {
            Ok(vs) => vs,
            Err((pos, e)) => return self.warn(pos, format!("{e}; `{desc}` left out")),
        };
        let heads = match head {
            Head::Group(g) => match self.groups.get(g.as_str()).copied() {
                Some(def) => self.group_entries(def),
                None => {
                    return self.warn(
                        n.pos,
                        format!("`{desc}`: no virtual_server_group {g} is defined; left out"),
                    )
                }
            },
            h => vec![h],
        };
        let check = self.service_check(&vs);
        for h in heads {
            if let Some(s) = self.service(&vs, h, &check) {
                if let Some(first) = self.defined.get(&s.key) {
                    let first = self.at(*first);
                    self.warn(
                        n.pos,
                        format!(
                            "service {} is already defined at {first}; `{desc}` left out",
                            s.key
                        ),
                    );
                    continue;
                }
                self.defined.insert(s.key, n.pos);
                self.config.services.insert(s.key, s);
            }
        }
    }

    fn group_entries(&mut self, def: &Node) -> Vec<Head> {
        let mut out = Vec::new();
        for e in def.children() {
            let r = match e.words.as_slice() {
                [f, m] if f == "fwmark" => fwmark("", m).map(|mark| vec![Head::Fwmark(mark, None)]),
                [f, m, fam] if f == "fwmark" => fwmark("", m).and_then(|mark| {
                    Ok(vec![Head::Fwmark(mark, Some(family_word("fwmark", fam)?))])
                }),
                [a] => range(a).map(|v| v.into_iter().map(|a| Head::Addr(a, None)).collect()),
                [a, p] => port("virtual_server_group", p).and_then(|p| {
                    range(a).map(|v| v.into_iter().map(|a| Head::Addr(a, Some(p))).collect())
                }),
                _ => Err(Invalid::GroupEntry(e.text())),
            };
            match r {
                Ok(v) => out.extend(v),
                Err(m) => self.warn(
                    e.pos,
                    format!(
                        "virtual_server_group {}: {m}; entry left out",
                        def.args().join(" ")
                    ),
                ),
            }
        }
        out
    }

    /// The virtual_server's own settings and its real servers; an unreadable value fails it.
    fn vs_settings(&mut self, n: &Node) -> Result<Vs, (Pos, Invalid)> {
        let mut vs = Vs {
            scheduler: Scheduler::Wlc,
            sched_flags: Vec::new(),
            one_packet: None,
            method: Method::nat(),
            persistence_timeout: None,
            granularity: None,
            protocol: Protocol::Tcp,
            ip_family: None,
            sorry: None,
            sorry_method: None,
            opts: CheckOpts::default(),
            reals: Vec::new(),
        };
        let mut real_nodes = Vec::new();
        for c in n.children() {
            let kw = c.kw();
            let args = c.args();
            let r: Result<(), Invalid> = (|| {
                if vs.opts.read(kw, args)? {
                    return Ok(());
                }
                match kw {
                    "lb_algo" | "lvs_sched" => {
                        vs.scheduler = one(kw, args)?
                            .to_ascii_lowercase()
                            .parse()
                            .map_err(|e| model(kw, e))?
                    }
                    "lb_kind" | "lvs_method" => vs.method = method(kw, args)?,
                    "sh-port" | "mh-port" | "flag-2" => {
                        vs.sched_flags.push((SchedFlag::Port, c.pos, kw.into()))
                    }
                    "sh-fallback" | "mh-fallback" | "flag-1" => {
                        vs.sched_flags.push((SchedFlag::Fallback, c.pos, kw.into()))
                    }
                    "ops" => vs.one_packet = Some(c.pos),
                    "persistence_timeout" => {
                        vs.persistence_timeout = Some(match args {
                            [] => 360,
                            _ => number(kw, one(kw, args)?)?,
                        })
                    }
                    "persistence_granularity" => {
                        vs.granularity = Some((one(kw, args)?.to_string(), c.pos))
                    }
                    "protocol" => vs.protocol = one(kw, args)?.parse().map_err(|e| model(kw, e))?,
                    "ip_family" => vs.ip_family = Some(family_word(kw, one(kw, args)?)?),
                    "sorry_server" => vs.sorry = Some(endpoint(kw, args)?),
                    "sorry_server_lvs_method" => vs.sorry_method = Some(method(kw, args)?),
                    "real_server" => real_nodes.push(c),
                    _ => self.vs_unmapped(c),
                }
                Ok(())
            })();
            r.map_err(|e| (c.pos, e))?;
        }
        for c in real_nodes {
            if let Some(r) = self.real(c, &vs) {
                vs.reals.push(r);
            }
        }
        Ok(vs)
    }

    fn vs_unmapped(&mut self, c: &Node) {
        let kw = c.kw();
        let why = match kw {
            "quorum" | "quorum_up" | "quorum_down" | "hysteresis" => {
                "the sorry server is used while no real server is available; there is no weight quorum"
            }
            "alpha" => "real servers are not assumed down at start",
            "omega" | "smtp_alert" | "snmp_name" => "notifications are not sent; lvsctl watch follows changes",
            "ha_suspend" => "checks run on the leader, which holds the VIPs",
            "persistence_engine" => "persistence engines (sip) are not supported",
            "sorry_server_inhibit" => "the sorry server is added while no real server is available",
            "delay_before_retry" => {
                "failed probes are repeated at the check interval, not after a separate delay"
            }
            "warmup" => "checks start at once",
            _ => "",
        };
        if why.is_empty() {
            self.warn(
                c.pos,
                format!("unknown keyword {kw:?} in virtual_server; left out"),
            );
        } else {
            self.warn(c.pos, format!("{kw} is not mapped: {why}"));
        }
    }

    /// A real_server with its first mappable checker; `None` (warned) if a value is unreadable.
    fn real(&mut self, c: &Node, vs: &Vs) -> Option<Real> {
        let desc = c.text();
        let (address, port) = match endpoint("real_server", c.args()) {
            Ok(e) => e,
            Err(e) => {
                self.warn(c.pos, format!("{e}; `{desc}` left out"));
                return None;
            }
        };
        let mut server = RealServer::new(address, port.unwrap_or(0));
        let mut meth = vs.method;
        let mut opts = CheckOpts::default();
        let mut checkers = Vec::new();
        for k in c.children() {
            let kw = k.kw();
            let args = k.args();
            let r: Result<(), Invalid> = (|| {
                if opts.read(kw, args)? {
                    return Ok(());
                }
                match kw {
                    "weight" => server.weight = number(kw, one(kw, args)?)?,
                    "uthreshold" => server.upper_threshold = number(kw, one(kw, args)?)?,
                    "lthreshold" => server.lower_threshold = number(kw, one(kw, args)?)?,
                    "lvs_method" | "lb_kind" => meth = method(kw, args)?,
                    "HTTP_GET" | "SSL_GET" | "TCP_CHECK" | "DNS_CHECK" | "MISC_CHECK" => {
                        checkers.push(k)
                    }
                    "SMTP_CHECK" | "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
                        self.warn(
                            k.pos,
                            format!("{kw} is not mapped: lvs-director checks are tcp, http, https, udp (payload and reply text), dns and exec"),
                        )
                    }
                    "notify_up" | "notify_down" => self.warn(
                        k.pos,
                        format!("{kw} is not mapped: notifications are not sent; lvsctl watch follows changes"),
                    ),
                    "smtp_alert" | "snmp_name" => {
                        self.warn(k.pos, format!("{kw} is not mapped: notifications are not sent"))
                    }
                    "alpha" => self.warn(
                        k.pos,
                        "alpha is not mapped: real servers are not assumed down at start",
                    ),
                    "delay_before_retry" | "warmup" => self.warn(
                        k.pos,
                        format!("{kw} is not mapped: failed probes are repeated at the check interval"),
                    ),
                    _ => self.warn(
                        k.pos,
                        format!("unknown keyword {kw:?} in real_server; left out"),
                    ),
                }
                Ok(())
            })();
            if let Err(e) = r {
                self.warn(k.pos, format!("{e}; `{desc}` left out"));
                return None;
            }
        }
        meth.apply(&mut server);
        let opts = opts.over(&vs.opts);
        let written = c.args().first().cloned().unwrap_or_default();
        let mut check = None;
        for k in checkers {
            if check.is_some() {
                self.warn(
                    k.pos,
                    format!("{}: only one check per service is kept (the first of this real server); left out", k.kw()),
                );
                continue;
            }
            if let Some(hc) = self.checker(k, &opts, &server, &written) {
                check = Some((hc, k.pos, k.kw().to_string()));
            }
        }
        Some(Real {
            server,
            port,
            pos: c.pos,
            text: desc,
            check,
        })
    }

    fn service(
        &mut self,
        vs: &Vs,
        head: Head,
        check: &Option<(HealthCheck, Pos, String)>,
    ) -> Option<Service> {
        let key = match head {
            Head::Addr(address, p) => ServiceKey::Addr {
                protocol: vs.protocol,
                address,
                port: p.unwrap_or(0),
            },
            Head::Fwmark(mark, fam) => {
                let family = fam.or(vs.ip_family).unwrap_or_else(|| {
                    vs.reals
                        .first()
                        .map(|r| Family::of(&r.server.address))
                        .or(vs.sorry.map(|(a, _)| Family::of(&a)))
                        .unwrap_or(Family::Ipv4)
                });
                ServiceKey::Fwmark { family, mark }
            }
            Head::Group(_) => unreachable!("groups are expanded first"),
        };
        let mut s = Service::new(key);
        s.scheduler = vs.scheduler;
        for (flag, pos, kw) in &vs.sched_flags {
            if matches!(s.scheduler, Scheduler::Sh | Scheduler::Mh) {
                if !s.sched_flags.contains(flag) {
                    s.sched_flags.push(*flag);
                }
            } else {
                self.warn(
                    *pos,
                    format!(
                        "{kw} only applies to the sh and mh schedulers, not {}; left out",
                        s.scheduler
                    ),
                );
            }
        }
        if let Some(pos) = vs.one_packet {
            match key {
                ServiceKey::Addr { protocol, .. } if protocol != Protocol::Udp => self.warn(
                    pos,
                    format!(
                        "ops only applies to UDP and fwmark services, not {}; left out",
                        protocol.as_str()
                    ),
                ),
                _ => s.one_packet = true,
            }
        }
        // keepalived: a timeout of 0 is no persistence.
        match (vs.persistence_timeout.filter(|t| *t > 0), &vs.granularity) {
            (Some(timeout), g) => {
                s.persistence = Some(Persistence {
                    timeout,
                    netmask: g.as_ref().map(|(m, _)| m.clone()),
                })
            }
            (None, Some((m, pos))) => self.warn(
                *pos,
                format!("persistence_granularity {m} without persistence_timeout has no effect; left out"),
            ),
            (None, None) => {}
        }
        let sport = key.port();
        s.reals = vs
            .reals
            .iter()
            .map(|r| {
                // Like ipvsadm: an omitted port is the service's (0 under fwmark services).
                let mut server = r.server.clone();
                server.port = r.port.or(sport).unwrap_or(0);
                server
            })
            .collect();
        if let Some((addr, p)) = vs.sorry {
            let mut sorry = RealServer::new(addr, p.or(sport).unwrap_or(0));
            vs.sorry_method.unwrap_or(vs.method).apply(&mut sorry);
            s.sorry_server = Some(sorry);
        }
        s.health_check = check.as_ref().map(|c| c.0.clone());
        if let (Some((hc, pos, name)), Some(r)) = (check, s.reals.iter().find(|r| r.port == 0)) {
            if hc.kind != CheckKind::Exec && hc.port.is_none() {
                self.warn(
                    *pos,
                    format!(
                        "{name} of {}: real server {} has port 0, so there is no port to probe; add connect_port (check left out)",
                        s.key,
                        r.endpoint()
                    ),
                );
                s.health_check = None;
            }
        }
        Some(s)
    }
}

/// An fwmark as the CLI reads `-f MARK`; `prefix` goes before the message.
fn fwmark(prefix: &'static str, m: &str) -> Result<u32, Invalid> {
    crate::flags::parse_fwmark(m).map_err(|e| Invalid::Fwmark {
        prefix,
        message: e.to_string(),
    })
}
