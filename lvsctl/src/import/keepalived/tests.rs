//! The importer end to end: keepalived.conf text in, config and warnings (or an error) out.

use std::path::Path;

use cluster_core::model::{
    CheckKind, Config, FailureAction, Forward, Persistence, SchedFlag, Scheduler, ServiceKey,
    TunnelCsum, TunnelType,
};

use super::*;

fn ok(text: &str) -> Imported {
    parse("k.conf", text).unwrap_or_else(|e| panic!("{e}"))
}

fn key(s: &str) -> ServiceKey {
    s.parse().unwrap()
}

#[test]
fn braces_on_the_next_line_and_blocks_on_one_line() {
    let im = ok("virtual_server 10.0.0.1 80\n{\n  lb_kind DR\n  real_server 10.0.1.1 80\n  {\n    weight 3 }\n}\nvirtual_server 10.0.0.2 80 { lb_kind DR; }\n");
    let s = &im.config.services[&key("tcp/10.0.0.1:80")];
    assert_eq!(s.reals[0].weight, 3);
    assert_eq!(s.reals[0].forward, Forward::Dr);
    // `lb_kind DR;` is read as a method "DR;" (keepalived has no semicolons).
    assert!(!im.config.services.contains_key(&key("tcp/10.0.0.2:80")));
    assert!(
        im.warnings
            .iter()
            .any(|w| w.starts_with("k.conf:8: lb_kind \"DR;\" is not NAT")),
        "{:#?}",
        im.warnings
    );
}

#[test]
fn syntax_errors_name_file_and_line() {
    let cases = [
        (
            "virtual_server 10.0.0.1 80 {\n  real_server 10.0.1.1 80 {\n}\n",
            "k.conf:1: the '{' of `virtual_server 10.0.0.1 80` is never closed (input ends at k.conf:3)",
        ),
        ("global_defs {\n}\n}\n", "k.conf:3: '}' without a matching '{'"),
        ("\n{\n}\n", "k.conf:2: '{' without a keyword before it"),
        (
            "x {\n y \"z\n}\n",
            "k.conf:2: unterminated quoted string (missing \")",
        ),
    ];
    for (text, want) in cases {
        match parse("k.conf", text) {
            Ok(im) => panic!("{text:?} was accepted: {:?}", im.warnings),
            Err(e) => assert_eq!(e.to_string(), want, "input {text:?}"),
        }
    }
    let deep = "a {\n".repeat(40);
    assert!(parse("k.conf", &deep)
        .unwrap_err()
        .to_string()
        .contains("nested deeper than 32"));
}

#[test]
fn maps_a_dr_service_with_http_checks() {
    let im = ok(r#"
virtual_server 192.0.2.10 80 {
delay_loop 6
lb_algo wrr
lb_kind DR
protocol TCP
persistence_timeout
persistence_granularity 255.255.255.0
real_server 10.0.1.1 80 {
    weight 3
    inhibit_on_failure
    HTTP_GET {
        url {
            path /healthz
            status_code 200
        }
        connect_timeout 2.5
        nb_get_retry 2
        delay_before_retry 1
    }
}
real_server 10.0.1.2 80 {
    weight 1
    inhibit_on_failure
    HTTP_GET {
        url {
            path /healthz
            status_code 200
        }
        connect_timeout 2.5
        nb_get_retry 2
    }
}
}
"#);
    let s = &im.config.services[&key("tcp/192.0.2.10:80")];
    assert_eq!(s.scheduler, Scheduler::Wrr);
    assert_eq!(
        s.persistence,
        Some(Persistence {
            timeout: 360,
            netmask: Some("255.255.255.0".into())
        })
    );
    assert_eq!(
        s.reals
            .iter()
            .map(|r| (r.weight, r.forward))
            .collect::<Vec<_>>(),
        vec![(3, Forward::Dr), (1, Forward::Dr)]
    );
    let hc = s.health_check.as_ref().unwrap();
    assert_eq!(hc.kind, CheckKind::Http);
    assert_eq!(hc.path.as_deref(), Some("/healthz"));
    assert_eq!(hc.expect_status.as_deref(), Some("200"));
    assert_eq!(
        (
            hc.interval_ms,
            hc.timeout_ms,
            hc.rise,
            hc.fall,
            hc.on_failure
        ),
        (6000, 2500, 1, 3, FailureAction::Quiesce)
    );
    assert_eq!(
        im.warnings,
        vec!["k.conf:19: delay_before_retry is not mapped: failed probes are repeated at the check interval"]
    );
    cluster_core::validate::config(&im.config).unwrap();
}

#[test]
fn differing_checkers_keep_the_first_and_name_the_rest() {
    let im = ok(r#"
virtual_server 10.0.0.1 80 {
lb_kind DR
real_server 10.0.1.1 80 {
    TCP_CHECK { connect_timeout 3 }
}
real_server 10.0.1.2 80 {
    TCP_CHECK { connect_timeout 4 }
    HTTP_GET { url { path / } }
}
real_server 10.0.1.3 80 {
}
}
"#);
    let s = &im.config.services[&key("tcp/10.0.0.1:80")];
    let hc = s.health_check.as_ref().unwrap();
    assert_eq!(
        (hc.kind, hc.timeout_ms, hc.on_failure),
        (CheckKind::Tcp, 3000, FailureAction::Remove)
    );
    assert_eq!(
        im.warnings,
        vec![
            "k.conf:9: HTTP_GET: only one check per service is kept (the first of this real server); left out",
            "k.conf:8: `real_server 10.0.1.2 80`: its TCP_CHECK differs in timeout_ms from the service's check (TCP_CHECK at k.conf:5), which applies to every real server of the service",
            "k.conf:11: `real_server 10.0.1.3 80` has no checker, but the service's check (TCP_CHECK at k.conf:5) applies to it too",
        ]
    );
}

#[test]
fn misc_check_addresses_become_placeholders() {
    let im = ok(r#"
virtual_server fwmark 7 {
lb_kind DR
real_server 10.0.1.1 {
    MISC_CHECK {
        misc_path "/usr/local/bin/check --host 10.0.1.1 --url http://10.0.1.1:8080/ 10.0.1.10"
        misc_timeout 4
    }
}
real_server 10.0.1.10 {
    MISC_CHECK {
        misc_path "/usr/local/bin/check --host 10.0.1.10 --url http://10.0.1.10:8080/ 10.0.1.10"
        misc_timeout 4
    }
}
}
"#);
    let s = &im.config.services[&key("fwmark/7")];
    let hc = s.health_check.as_ref().unwrap();
    assert_eq!(
        hc.command,
        vec![
            "/usr/local/bin/check",
            "--host",
            "{address}",
            "--url",
            "http://{address}:8080/",
            "10.0.1.10"
        ],
        "{:#?}",
        im.warnings
    );
    // The second real's own address is replaced, the literal 10.0.1.10 argument of the first
    // is not: they differ.
    assert_eq!(im.warnings.len(), 1, "{:#?}", im.warnings);
    assert!(
        im.warnings[0].contains("differs in command"),
        "{}",
        im.warnings[0]
    );
    assert_eq!((hc.timeout_ms, hc.fall), (4000, 1));
    assert_eq!(
        s.reals.iter().map(|r| r.port).collect::<Vec<_>>(),
        vec![0, 0]
    );
}

#[test]
fn persistence_timeout_zero_is_no_persistence() {
    let im = ok("virtual_server 10.0.0.1 80 {\n  persistence_timeout 0\n  persistence_granularity 255.255.0.0\n}\n");
    assert_eq!(
        im.config.services[&key("tcp/10.0.0.1:80")].persistence,
        None
    );
    assert_eq!(
        im.warnings,
        vec!["k.conf:3: persistence_granularity 255.255.0.0 without persistence_timeout has no effect; left out"]
    );
}

#[test]
fn a_check_without_a_port_to_probe_is_left_out() {
    let im = ok(r#"
virtual_server fwmark 8 {
lb_kind DR
real_server 10.0.1.1 0 {
    TCP_CHECK {
        connect_timeout 2
    }
}
}
virtual_server fwmark 9 {
lb_kind DR
real_server 10.0.1.1 0 {
    TCP_CHECK {
        connect_port 80
    }
}
}
"#);
    assert_eq!(im.config.services[&key("fwmark/8")].health_check, None);
    assert_eq!(
        im.config.services[&key("fwmark/9")]
            .health_check
            .as_ref()
            .and_then(|h| h.port),
        Some(80)
    );
    assert_eq!(
        im.warnings,
        vec!["k.conf:5: TCP_CHECK of fwmark/8: real server 10.0.1.1:0 has port 0, so there is no port to probe; add connect_port (check left out)"]
    );
}

#[test]
fn groups_and_ranges_expand() {
    let im = ok(r#"
virtual_server_group web {
192.0.2.1-3 80
2001:db8::a-b 80
fwmark 9
10.0.0.0/16 80
}
virtual_server group web {
lb_kind TUN type gue port 6080 csum
real_server 10.0.1.1 80 { }
}
"#);
    let keys: Vec<String> = im.config.services.keys().map(|k| k.to_string()).collect();
    assert_eq!(
        keys,
        vec![
            "tcp/192.0.2.1:80",
            "tcp/192.0.2.2:80",
            "tcp/192.0.2.3:80",
            "tcp/[2001:db8::a]:80",
            "tcp/[2001:db8::b]:80",
            "fwmark/9"
        ]
    );
    let r = &im.config.services[&key("fwmark/9")].reals[0];
    assert_eq!(
        (
            r.forward,
            r.tunnel_type,
            r.tunnel_port,
            r.tunnel_csum,
            r.port
        ),
        (
            Forward::Tunnel,
            Some(TunnelType::Gue),
            Some(6080),
            Some(TunnelCsum::Csum),
            80
        )
    );
    assert_eq!(im.warnings.len(), 1, "{:#?}", im.warnings);
    assert!(
        im.warnings[0].starts_with(
            "k.conf:6: virtual_server_group web: \"10.0.0.0/16\" holds 65536 addresses"
        ),
        "{}",
        im.warnings[0]
    );
    cluster_core::validate::config(&im.config).unwrap();
}

#[test]
fn vrrp_becomes_vip_groups_and_sync() {
    let im = ok(r#"
global_defs {
router_id LVS_A
lvs_sync_daemon eth1 VI_1 port 8849
}
vrrp_instance VI_1 {
state MASTER
interface eth0
virtual_router_id 51
virtual_ipaddress {
    192.0.2.10/24
    192.0.2.11/24 dev eth0 label eth0:1
    198.51.100.5 dev eth2
}
}
"#);
    let g = &im.config.vip_groups;
    assert_eq!(g.len(), 2, "{g:#?}");
    assert_eq!(
        (g[0].name.as_str(), g[0].interface.as_str()),
        ("VI_1", "eth0")
    );
    assert_eq!(g[0].addresses.len(), 2);
    assert_eq!(
        (g[1].name.as_str(), g[1].interface.as_str()),
        ("VI_1-eth2", "eth2")
    );
    assert_eq!(g[1].addresses[0].to_string(), "198.51.100.5/32");
    let sync = im.config.sync.as_ref().unwrap();
    assert_eq!(
        (sync.interface.as_str(), sync.syncid, sync.port),
        ("eth1", 51, 8849)
    );
    assert_eq!(
        im.warnings,
        vec![
            "k.conf:3: global_defs router_id is not mapped; left out",
            "k.conf:12: virtual_ipaddress 192.0.2.11/24: \"label eth0:1\" is not mapped (VIPs are plain addresses on an interface)",
            "k.conf:6: vrrp_instance VI_1 is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set VI_1 --interface eth0 192.0.2.10/24 192.0.2.11/24; lvsctl vip set VI_1-eth2 --interface eth2 198.51.100.5/32)",
        ]
    );
    cluster_core::validate::config(&im.config).unwrap();
}

#[test]
fn bad_values_leave_out_what_they_belong_to() {
    let im = ok(r#"
virtual_server 10.0.0.1 80 {
lb_algo nosuch
}
virtual_server 10.0.0.2 80 {
lb_kind NAT
real_server 10.0.1.1 8080 { weight heavy }
real_server 10.0.1.2 8080 { TCP_CHECK { connect_port http } }
sorry_server 10.0.9.9 8080
}
virtual_server 10.0.0.300 80 { }
virtual_server 10.0.0.3 80 { frobnicate 1 }
"#);
    assert_eq!(im.config.services.len(), 2);
    let s = &im.config.services[&key("tcp/10.0.0.2:80")];
    assert_eq!(s.reals.len(), 1);
    assert!(s.health_check.is_none());
    assert_eq!(s.sorry_server.as_ref().unwrap().forward, Forward::Masq);
    assert_eq!(s.sorry_server.as_ref().unwrap().port, 8080);
    assert_eq!(
        im.warnings,
        vec![
            "k.conf:3: lb_algo: unknown scheduler \"nosuch\" (expected one of rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos); `virtual_server 10.0.0.1 80` left out",
            "k.conf:7: weight \"heavy\" is not a number in range; `real_server 10.0.1.1 8080` left out",
            "k.conf:8: connect_port: port \"http\" is not a number in 0..=65535; TCP_CHECK left out",
            "k.conf:11: virtual_server: \"10.0.0.300\" is not an IP address; `virtual_server 10.0.0.300 80` left out",
            "k.conf:12: unknown keyword \"frobnicate\" in virtual_server; left out",
        ]
    );
}

#[test]
fn includes_glob_nest_and_refuse_cycles() {
    let mut m = Memory::default();
    m.files
        .insert("etc/main.conf".into(), "include conf.d/*.conf\n".into());
    m.files.insert(
        "etc/conf.d/b.conf".into(),
        "virtual_server 10.0.0.2 80 {\n  include ../reals/*.inc\n}\n".into(),
    );
    m.files.insert(
        "etc/conf.d/a.conf".into(),
        "virtual_server 10.0.0.1 80 {\n}\nbogus\n".into(),
    );
    m.files
        .insert("etc/conf.d/a.conf.off".into(), "bogus\n".into());
    m.files
        .insert("etc/conf.d/.hidden.conf".into(), "bogus\n".into());
    m.files.insert(
        "etc/reals/r1.inc".into(),
        "real_server 10.0.1.1 80 {\n  frob\n}\n".into(),
    );
    let im = from_path(&m, Path::new("etc/main.conf")).unwrap();
    assert_eq!(im.config.services.len(), 2);
    assert_eq!(im.config.services[&key("tcp/10.0.0.2:80")].reals.len(), 1);
    assert_eq!(
        im.warnings,
        vec![
            "etc/conf.d/a.conf:3: unknown keyword \"bogus\"; left out",
            "etc/reals/r1.inc:2: unknown keyword \"frob\" in real_server; left out",
        ]
    );

    m.files
        .insert("etc/loop/a.conf".into(), "include b.conf\n".into());
    m.files
        .insert("etc/loop/b.conf".into(), "\ninclude ./a.conf\n".into());
    let e = from_path(&m, Path::new("etc/loop/a.conf")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "etc/loop/b.conf:2: include ./a.conf: include cycle: etc/loop/a.conf -> etc/loop/b.conf -> etc/loop/a.conf"
    );
    let im = from_text(
        &m,
        "x.conf",
        Path::new("etc"),
        "include nothing/*.conf\ninclude missing.conf\n",
    )
    .unwrap();
    assert_eq!(
        im.warnings,
        vec![
            "x.conf:1: include nothing/*.conf: no file matches; nothing included",
            "x.conf:2: include missing.conf: no file matches; nothing included",
        ]
    );
}

#[test]
fn fwmark_family_and_ipv6_granularity() {
    let im = ok(r#"
virtual_server fwmark 20 {
lb_kind DR
persistence_timeout 600
persistence_granularity 64
real_server 2001:db8:1::1 0 { }
}
virtual_server fwmark 21 {
ip_family inet6
lb_kind TUN
real_server 10.0.1.1 0 { }
}
virtual_server 2001:db8::80 443 {
lb_kind DR
lb_algo sh
sh-port
ops
real_server 2001:db8:1::1 443 {
    SSL_GET {
        url {
            path /ping
            status_code 200-299 300-399
        }
        virtualhost www.example.com
    }
}
}
"#);
    assert_eq!(
        im.config.services[&key("fwmark6/20")]
            .persistence
            .as_ref()
            .unwrap()
            .netmask
            .as_deref(),
        Some("64")
    );
    assert!(im.config.services.contains_key(&key("fwmark6/21")));
    let s = &im.config.services[&key("tcp/[2001:db8::80]:443")];
    assert_eq!(s.sched_flags, vec![SchedFlag::Port]);
    assert!(!s.one_packet);
    let hc = s.health_check.as_ref().unwrap();
    assert_eq!(
        (hc.kind, hc.expect_status.as_deref(), hc.host.as_deref()),
        (CheckKind::Https, Some("200-399"), Some("www.example.com"))
    );
    assert_eq!(
        im.warnings,
        vec!["k.conf:17: ops only applies to UDP and fwmark services, not tcp; left out"]
    );
    cluster_core::validate::config(&im.config).unwrap();
}

/// keepalived text built from pieces, to give the property below realistic input.
fn piece() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        Just("virtual_server 10.0.0.1 80 {".to_string()),
        Just("virtual_server fwmark 3 {".to_string()),
        Just("virtual_server group g {".to_string()),
        Just("virtual_server_group g {".to_string()),
        Just("real_server 10.0.1.1 80 {".to_string()),
        Just("TCP_CHECK {".to_string()),
        Just("HTTP_GET {".to_string()),
        Just("url {".to_string()),
        Just("MISC_CHECK {".to_string()),
        Just("vrrp_instance V {".to_string()),
        Just("virtual_ipaddress {".to_string()),
        Just("global_defs {".to_string()),
        Just("}".to_string()),
        Just("{".to_string()),
        Just("include x/*.conf".to_string()),
        "(lb_algo|lb_kind|weight|delay_loop|retry|connect_port|path|status_code|misc_path|type|name|persistence_timeout|persistence_granularity|protocol|sorry_server|lvs_sync_daemon|interface|inhibit_on_failure|ip_family) [ -~]{0,16}",
        "[0-9a-f.:/-]{1,20}( [0-9a-z]{1,6}){0,3}",
        "[ -~]{0,30}",
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Arbitrary text: an error or a config, never a panic; warnings carry FILE:LINE.
    #[test]
    fn never_panics_on_any_text(text in "[ -~\n\t{}\"'#!]{0,400}") {
        match parse("p", &text) {
            Ok(im) => {
                proptest::prop_assert!(im.warnings.iter().all(|w| w.starts_with("p:")));
                let _ = cluster_core::validate::config(&im.config);
            }
            Err(e) => proptest::prop_assert!(e.to_string().starts_with("p:"), "{}", e),
        }
    }

    /// keepalived-shaped text: the same, and what validates survives a TOML round trip.
    #[test]
    fn never_panics_on_keepalived_shaped_text(lines in proptest::collection::vec(piece(), 0..40)) {
        let text = lines.join("\n");
        match parse("p", &text) {
            Ok(im) => {
                proptest::prop_assert!(im.warnings.iter().all(|w| w.starts_with("p:")), "{:?}", im.warnings);
                if let Ok(v) = cluster_core::validate::config(&im.config) {
                    let back = Config::from_toml(&v.to_toml()).expect("own TOML parses");
                    proptest::prop_assert_eq!(back, v);
                }
            }
            Err(e) => proptest::prop_assert!(e.to_string().starts_with("p:"), "{}", e),
        }
    }
}
