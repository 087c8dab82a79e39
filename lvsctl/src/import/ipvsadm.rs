//! `lvsctl import ipvsadm FILE`: turns `ipvsadm-save` / `ipvsadm -Sn` output into a config.
//! Each `-A`/`-a` line is parsed by lvsctl's own `service add` / `real add` flags (the same
//! ipvsadm habits), so both read a rule the same way; what cannot be mapped is reported line by
//! line and left out.

use std::collections::BTreeMap;

use clap::Parser;
use cluster_core::model::ServiceKey;

use super::Imported;
use crate::args::{self, ArgError};
use crate::cli::{Cli, RealVerb, ServiceVerb, Verb};

/// Why an ipvsadm rule line is left out (the warning adds `FILE:LINE: ` and `; line left out`).
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error(transparent)]
    Arg(#[from] ArgError),
    #[error("service {0} is defined twice")]
    Twice(ServiceKey),
    #[error("real server {real} for service {service}, which no earlier -A line adds")]
    NoService { real: String, service: ServiceKey },
}

/// The first line of a clap error, without its `error: ` prefix.
fn first_line(e: &clap::Error) -> String {
    let text = e.to_string();
    let line = text.lines().next().unwrap_or("").trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// Parses ipvsadm rules. `name` labels the warnings (`FILE:LINE: ...`).
pub fn ipvsadm(name: &str, text: &str) -> Imported {
    let mut out = Imported::default();
    let mut order: BTreeMap<ServiceKey, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let at = format!("{name}:{}", i + 1);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let (verb, rest) = match words[0] {
            "-A" | "--add-service" => (["service", "add"], &words[1..]),
            "-a" | "--add-server" => (["real", "add"], &words[1..]),
            other => {
                out.warnings.push(format!(
                    "{at}: {other:?} is not a rule ipvsadm-save writes (expected -A or -a); line left out"
                ));
                continue;
            }
        };
        let argv = ["lvsctl"].iter().chain(verb.iter()).chain(rest.iter());
        let cli = match Cli::try_parse_from(argv) {
            Ok(c) => c,
            Err(e) => {
                out.warnings
                    .push(format!("{at}: {}; line left out", first_line(&e)));
                continue;
            }
        };
        let result: Result<(), RuleError> = match cli.verb {
            Verb::Service(ServiceVerb::Add(w)) => args::service_key(&w.svc)
                .and_then(|k| args::new_service(k, &w.attrs))
                .map_err(RuleError::from)
                .and_then(|s| {
                    if out.config.services.contains_key(&s.key) {
                        return Err(RuleError::Twice(s.key));
                    }
                    order.insert(s.key, i);
                    out.config.services.insert(s.key, s);
                    Ok(())
                }),
            Verb::Real(RealVerb::Add(w)) => (|| {
                let k = args::service_key(&w.real.svc)?;
                let (addr, port) = args::real_endpoint(&k, w.real.real);
                let r = args::new_real(addr, port, &w.attrs)?;
                match out.config.services.get_mut(&k) {
                    Some(s) => {
                        s.reals.push(r);
                        Ok(())
                    }
                    None => Err(RuleError::NoService {
                        real: r.endpoint(),
                        service: k,
                    }),
                }
            })(),
            _ => unreachable!("only service add and real add are parsed"),
        };
        if let Err(e) = result {
            out.warnings.push(format!("{at}: {e}; line left out"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::model::Config;
    use cluster_core::model::{Forward, Scheduler, TunnelType};

    /// ipvsadm -Sn output of a mixed table (ipvsadm 1.31 formatting).
    const SAVED: &str = "\
-A -t 10.0.0.1:80 -s wlc -p 300 -M 255.255.255.0
-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g -w 5 -x 1000 -y 100
-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 3
-A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port -o
-a -u [2001:db8::1]:53 -r [2001:db8:1::1]:53 -i --tun-type gue --tun-port 6080 --tun-nocsum -w 1
-A -f 5 -s rr
-a -f 5 -r 10.0.5.1:0 -g -w 1
-A -t 10.0.0.2:443 -s wlc --pe sip
-a -t 10.0.0.9:80 -r 10.0.1.9:80 -g -w 1
";

    #[test]
    fn reads_ipvsadm_save_and_reports_what_it_left_out() {
        let im = ipvsadm("rules", SAVED);
        let c = &im.config;
        assert_eq!(c.services.len(), 3, "{c:#?}");
        let web = &c.services[&"tcp/10.0.0.1:80".parse().unwrap()];
        assert_eq!(web.scheduler, Scheduler::Wlc);
        let p = web.persistence.as_ref().unwrap();
        assert_eq!(
            (p.timeout, p.netmask.as_deref()),
            (300, Some("255.255.255.0"))
        );
        assert_eq!(web.reals.len(), 2);
        assert_eq!(
            (
                web.reals[0].weight,
                web.reals[0].upper_threshold,
                web.reals[0].lower_threshold
            ),
            (5, 1000, 100)
        );
        assert_eq!(web.reals[1].forward, Forward::Masq);
        let dns = &c.services[&"udp/[2001:db8::1]:53".parse().unwrap()];
        assert!(dns.one_packet);
        assert_eq!(dns.sched_flags.len(), 2);
        assert_eq!(dns.reals[0].tunnel_type, Some(TunnelType::Gue));
        assert_eq!(dns.reals[0].tunnel_port, Some(6080));
        assert_eq!(c.services[&"fwmark/5".parse().unwrap()].reals.len(), 1);
        assert_eq!(im.warnings.len(), 2, "{:#?}", im.warnings);
        assert!(
            im.warnings[0].starts_with("rules:8: "),
            "{}",
            im.warnings[0]
        );
        assert!(im.warnings[0].contains("--pe"), "{}", im.warnings[0]);
        assert_eq!(
            im.warnings[1],
            "rules:9: real server 10.0.1.9:80 for service tcp/10.0.0.9:80, which no earlier -A line adds; line left out"
        );
        cluster_core::validate::config(c).unwrap();
    }

    #[test]
    fn round_trips_through_toml() {
        let im = ipvsadm("rules", SAVED);
        let back = Config::from_toml(&im.config.to_toml()).unwrap();
        assert_eq!(back, im.config);
    }

    #[test]
    fn other_lines_are_named() {
        let im = ipvsadm("f", "# comment\n\n-C\n-A -t 10.0.0.1:80 -s nosuch\n");
        assert!(im.config.services.is_empty());
        assert_eq!(im.warnings.len(), 2, "{:#?}", im.warnings);
        assert!(
            im.warnings[0].starts_with("f:3: \"-C\" is not a rule"),
            "{}",
            im.warnings[0]
        );
        assert!(im.warnings[1].starts_with("f:4: "), "{}", im.warnings[1]);
        assert!(im.warnings[1].contains("nosuch"), "{}", im.warnings[1]);
    }

    proptest::proptest! {
        /// Whatever the lines hold, the importer answers with a config and warnings, never a
        /// panic, and every rule line is either taken or named in a warning.
        #[test]
        fn any_rules_give_config_or_warnings(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    "-[Aa] -[tuf] [0-9.:\\[\\]a-f]{1,20}( -[srwpMbxyogmi] [0-9a-z.,:-]{0,12}){0,4}",
                    "[ -~]{0,40}",
                ],
                0..12,
            )
        ) {
            let text = lines.join("\n");
            let im = ipvsadm("p", &text);
            let rules = lines.iter().filter(|l| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            }).count();
            let taken = im.config.services.len()
                + im.config.services.values().map(|s| s.reals.len()).sum::<usize>();
            proptest::prop_assert_eq!(taken + im.warnings.len(), rules);
            proptest::prop_assert!(im.warnings.iter().all(|w| w.starts_with("p:")));
        }
    }
}
