//! keepalived checkers (`TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `DNS_CHECK`, `MISC_CHECK`) → a
//! health check, and the choice of the one check a service keeps (with warnings for the real
//! servers whose checker differs).

use cluster_core::model::{CheckKind, FailureAction, HealthCheck, RealServer};

use super::super::parser::Node;
use super::super::source::Pos;
use super::super::values::{
    address, missing, one, port, script_argv, status_range, substitute_address, timer, Invalid,
};
use super::{CheckOpts, Mapper, Vs};

/// keepalived's defaults.
const DELAY_LOOP_MS: u32 = 60_000;
const CONNECT_TIMEOUT_MS: u32 = 5_000;

/// Names of the fields in which two checks differ.
fn check_diff(a: &HealthCheck, b: &HealthCheck) -> Vec<&'static str> {
    let mut d = Vec::new();
    let mut f = |name, differs: bool| {
        if differs {
            d.push(name)
        }
    };
    f("kind", a.kind != b.kind);
    f("interval_ms", a.interval_ms != b.interval_ms);
    f("timeout_ms", a.timeout_ms != b.timeout_ms);
    f("rise", a.rise != b.rise);
    f("fall", a.fall != b.fall);
    f("on_failure", a.on_failure != b.on_failure);
    f("port", a.port != b.port);
    f("path", a.path != b.path);
    f("host", a.host != b.host);
    f("expect_status", a.expect_status != b.expect_status);
    f("body_contains", a.body_contains != b.body_contains);
    f("send", a.send != b.send);
    f("expect", a.expect != b.expect);
    f("query_name", a.query_name != b.query_name);
    f("query_type", a.query_type != b.query_type);
    f("command", a.command != b.command);
    d
}

/// A checker block as read so far.
struct CheckerRead {
    name: String,
    kind: CheckKind,
    hc: HealthCheck,
    opts: CheckOpts,
    urls: usize,
    url_host: Option<String>,
    misc_path: Option<String>,
    misc_timeout: Option<u32>,
    dns_type: Option<String>,
    dns_name: Option<String>,
}

impl Mapper<'_> {
    /// One checker block → a health check; `None` (warned) if a value is unreadable.
    pub(super) fn checker(
        &mut self,
        k: &Node,
        inherited: &CheckOpts,
        real: &RealServer,
        written: &str,
    ) -> Option<HealthCheck> {
        let name = k.kw();
        let kind = match name {
            "HTTP_GET" => CheckKind::Http,
            "SSL_GET" => CheckKind::Https,
            "TCP_CHECK" => CheckKind::Tcp,
            "DNS_CHECK" => CheckKind::Dns,
            _ => CheckKind::Exec,
        };
        let mut st = CheckerRead {
            name: name.to_string(),
            kind,
            hc: HealthCheck::new(kind),
            opts: CheckOpts::default(),
            urls: 0,
            url_host: None,
            misc_path: None,
            misc_timeout: None,
            dns_type: None,
            dns_name: None,
        };
        for c in k.children() {
            if let Err(e) = self.checker_setting(&mut st, c, real) {
                self.warn(c.pos, format!("{e}; {name} left out"));
                return None;
            }
        }
        self.finish_check(st, k, inherited, real, written)
    }

    /// One statement inside a checker block; unmapped keywords are warned about.
    fn checker_setting(
        &mut self,
        st: &mut CheckerRead,
        c: &Node,
        real: &RealServer,
    ) -> Result<(), Invalid> {
        let kw = c.kw();
        let args = c.args();
        if st.opts.read(kw, args)? {
            return Ok(());
        }
        match (st.kind, kw) {
                (_, "connect_port") => st.hc.port = Some(port(kw, one(kw, args)?)?),
                (_, "connect_ip") => {
                    let a = address(kw, one(kw, args)?)?;
                    if a != real.address {
                        self.warn(
                            c.pos,
                            format!("connect_ip {a} is not mapped: checks probe the real server's own address ({})", real.address),
                        );
                    }
                }
                (CheckKind::Http | CheckKind::Https, "url") => {
                    st.urls += 1;
                    if st.urls > 1 {
                        self.warn(
                            c.pos,
                            format!("{}: only the first url is checked; `url` with path {:?} left out", st.name,
                                c.children().iter().find(|u| u.kw() == "path").map(|u| u.args().join(" ")).unwrap_or_default()),
                        );
                    } else {
                        st.url_host = self.url(c, &mut st.hc)?;
                    }
                }
                (CheckKind::Dns, "type") => st.dns_type = Some(one(kw, args)?.to_ascii_uppercase()),
                (CheckKind::Dns, "name") => st.dns_name = Some(one(kw, args)?.to_string()),
                (CheckKind::Exec, "misc_path") => match args {
                    [] => return Err(missing("misc_path", "a command")),
                    // `misc_path "cmd args" user group`: the first word is the command.
                    [cmd, rest @ ..] => {
                        st.misc_path = Some(cmd.clone());
                        if !rest.is_empty() {
                            self.warn(c.pos, format!("misc_path user {:?} is not mapped: exec checks run as the director's user", rest.join(" ")));
                        }
                    }
                },
                (CheckKind::Exec, "misc_timeout") => st.misc_timeout = Some(timer(kw, one(kw, args)?)?),
                (CheckKind::Exec, "misc_dynamic") => self.warn(
                    c.pos,
                    "misc_dynamic is not mapped: the exit status only tells healthy (0) from failed; weights come from weight_policy",
                ),
                (CheckKind::Exec, "user") => self.warn(
                    c.pos,
                    format!("user {} is not mapped: exec checks run as the director's user", args.join(" ")),
                ),
                (CheckKind::Http | CheckKind::Https, "http_protocol") => self.warn(
                    c.pos,
                    format!("http_protocol {} is not mapped: checks send HTTP/1.1 with Connection: close", args.join(" ")),
                ),
                (CheckKind::Https, "enable_sni" | "sni_name" | "tls_compliant") => self.warn(
                    c.pos,
                    format!("{kw} is not mapped: https checks send the host (or address) as SNI"),
                ),
                (_, "bindto" | "bind_if" | "bind_port" | "fwmark") => self.warn(
                    c.pos,
                    format!("{kw} is not mapped: checks use the director's own source address and routing"),
                ),
                (_, "delay_before_retry" | "warmup") => self.warn(
                    c.pos,
                    format!("{kw} is not mapped: failed probes are repeated at the check interval"),
                ),
                (_, "alpha") => self.warn(c.pos, "alpha is not mapped: real servers are not assumed down at start"),
                (_, "log_all_failures" | "fast_recovery") => {
                    self.warn(c.pos, format!("{kw} is not mapped"))
                }
                _ => self.warn(
                    c.pos,
                    format!("unknown keyword {kw:?} in {}; left out", st.name),
                ),
            }
        Ok(())
    }

    /// The check from what its block said, with inherited settings and keepalived's defaults;
    /// `None` (warned) for a MISC_CHECK without a command.
    fn finish_check(
        &mut self,
        mut st: CheckerRead,
        k: &Node,
        inherited: &CheckOpts,
        real: &RealServer,
        written: &str,
    ) -> Option<HealthCheck> {
        let o = st.opts.over(inherited);
        st.hc.interval_ms = o.delay_loop_ms.unwrap_or(DELAY_LOOP_MS);
        st.hc.timeout_ms = o.connect_timeout_ms.unwrap_or(CONNECT_TIMEOUT_MS);
        let retry_default = match st.kind {
            CheckKind::Dns => 3,
            CheckKind::Exec => 0,
            _ => 1,
        };
        st.hc.rise = 1;
        st.hc.fall = o.retry.unwrap_or(retry_default).saturating_add(1);
        st.hc.on_failure = if o.inhibit.unwrap_or(false) {
            FailureAction::Quiesce
        } else {
            FailureAction::Remove
        };
        match st.kind {
            CheckKind::Http | CheckKind::Https => {
                st.hc.host = st.url_host.or(o.virtualhost);
                if st.hc.expect_status.is_none() {
                    st.hc.expect_status = Some("200-299".into());
                }
            }
            CheckKind::Dns => {
                st.hc.query_type = Some(st.dns_type.unwrap_or_else(|| "SOA".into()));
                st.hc.query_name = Some(st.dns_name.unwrap_or_else(|| ".".into()));
            }
            CheckKind::Exec => {
                let Some(path) = st.misc_path else {
                    self.warn(k.pos, "MISC_CHECK without misc_path; left out");
                    return None;
                };
                st.hc.command = script_argv(&path)
                    .iter()
                    .map(|a| substitute_address(a, written, &real.address))
                    .collect();
                if st.hc.command.is_empty() {
                    self.warn(k.pos, "MISC_CHECK with an empty misc_path; left out");
                    return None;
                }
                // keepalived lets a script run up to delay_loop without misc_timeout.
                st.hc.timeout_ms = st.misc_timeout.unwrap_or(st.hc.interval_ms);
                if st.hc.port.is_some() {
                    self.warn(k.pos, "MISC_CHECK connect_port is not mapped");
                    st.hc.port = None;
                }
            }
            _ => {}
        }
        Some(st.hc)
    }

    /// The first `url` block; gives its own `virtualhost`.
    fn url(&mut self, u: &Node, hc: &mut HealthCheck) -> Result<Option<String>, Invalid> {
        let mut host = None;
        for c in u.children() {
            let kw = c.kw();
            let args = c.args();
            match kw {
                "path" => hc.path = Some(one(kw, args)?.to_string()),
                "status_code" => {
                    if args.is_empty() {
                        return Err(missing("status_code", "a code or range"));
                    }
                    let (range, rest) = status_range(args)?;
                    if !rest.is_empty() {
                        self.warn(
                            c.pos,
                            format!("status_code: one range is checked ({range}); {:?} left out", rest.join(" ")),
                        );
                    }
                    hc.expect_status = Some(range);
                }
                "virtualhost" => host = Some(one(kw, args)?.to_string()),
                "digest" => self.warn(
                    c.pos,
                    "digest is not mapped: checks compare the status (and body_contains), not an MD5 of the page",
                ),
                "regex" => {
                    let re = one(kw, args)?;
                    if re.contains(|c: char| ".^$*+?()[]{}|\\".contains(c)) {
                        self.warn(
                            c.pos,
                            format!("regex {re:?} is not mapped: body_contains matches plain text only"),
                        );
                    } else {
                        hc.body_contains = Some(re.to_string());
                    }
                }
                _ => self.warn(c.pos, format!("{kw} in url is not mapped")),
            }
        }
        Ok(host)
    }

    /// The check the service takes: the first real server's; warns for every real that differs.
    pub(super) fn service_check(&mut self, vs: &Vs) -> Option<(HealthCheck, Pos, String)> {
        let first = vs.reals.iter().find_map(|r| r.check.clone())?;
        let at = self.at(first.1);
        for r in &vs.reals {
            match &r.check {
                Some((hc, _, _)) if *hc == first.0 => {}
                Some((hc, pos, name)) => {
                    let d = check_diff(&first.0, hc);
                    self.warn(
                        *pos,
                        format!(
                            "`{}`: its {name} differs in {} from the service's check ({} at {at}), which applies to every real server of the service",
                            r.text,
                            d.join(", "),
                            first.2
                        ),
                    );
                }
                None => self.warn(
                    r.pos,
                    format!(
                        "`{}` has no checker, but the service's check ({} at {at}) applies to it too",
                        r.text, first.2
                    ),
                ),
            }
        }
        Some(first)
    }
}
