//! `lvsctl import keepalived|ipvsadm` on realistic files (`tests/fixtures/`), through the built
//! binary: the exact services, real servers, checks and VIP groups in the TOML on stdout, and the
//! exact warnings (`FILE:LINE: ...`, included files named as such) on stderr. Plus the parsers on
//! mutated fixture text: an error or a config, never a panic.

use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cluster_core::model::{
    CheckKind, Config, FailureAction, Forward, HealthCheck, SchedFlag, Scheduler, Service,
    TunnelCsum, TunnelType,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

struct Run {
    ok: bool,
    header: String,
    config: Config,
    warnings: Vec<String>,
    stderr: String,
}

/// `lvsctl import KIND FILE` in `fixtures/DIR`, with `stdin` fed when given.
fn import(kind: &str, dir: &str, file: &str, stdin: Option<&str>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lvsctl"))
        .current_dir(fixtures().join(dir))
        .args(["import", kind, file])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running lvsctl");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.unwrap_or("").as_bytes())
        .expect("writing stdin");
    drop(pipe);
    let out = child.wait_with_output().expect("lvsctl output");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    let (header, toml) = stdout.split_once('\n').unwrap_or((&stdout, ""));
    let config = if out.status.success() {
        Config::from_toml(toml).unwrap_or_else(|e| panic!("{e}\n{stdout}"))
    } else {
        Config::default()
    };
    let warnings = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lvsctl: warning: "))
        .map(str::to_string)
        .collect();
    Run {
        ok: out.status.success(),
        header: header.to_string(),
        config,
        warnings,
        stderr,
    }
}

fn ok(kind: &str, dir: &str, file: &str) -> Run {
    let r = import(kind, dir, file, None);
    assert!(r.ok, "lvsctl import {kind} {file} failed: {}", r.stderr);
    // What is printed is what validation returns: validating again changes nothing.
    assert_eq!(
        cluster_core::validate::config(&r.config).expect("printed config validates"),
        r.config
    );
    r
}

fn svc<'a>(c: &'a Config, key: &str) -> &'a Service {
    c.services
        .get(&key.parse().expect("service key"))
        .unwrap_or_else(|| panic!("no service {key} in {:#?}", c.services.keys()))
}

/// (address, port, weight, forward) of each real server, in order.
fn reals(s: &Service) -> Vec<(String, u16, u32, Forward)> {
    s.reals
        .iter()
        .map(|r| (r.address.to_string(), r.port, r.weight, r.forward))
        .collect()
}

fn r(a: &str, port: u16, weight: u32, f: Forward) -> (String, u16, u32, Forward) {
    (a.to_string(), port, weight, f)
}

fn check(kind: CheckKind, interval_ms: u32, timeout_ms: u32, fall: u32) -> HealthCheck {
    let mut h = HealthCheck::new(kind);
    h.interval_ms = interval_ms;
    h.timeout_ms = timeout_ms;
    h.rise = 1;
    h.fall = fall;
    h.on_failure = FailureAction::Remove;
    h
}

fn keys(c: &Config) -> Vec<String> {
    c.services.keys().map(|k| k.to_string()).collect()
}

#[test]
fn dr_web_site_with_http_and_ssl_checks_and_vrrp() {
    let run = ok("keepalived", "keepalived", "dr-web.conf");
    let c = &run.config;
    assert_eq!(
        run.header,
        "# lvsctl import keepalived dr-web.conf: 2 services, 5 real servers, 1 VIP groups, 14 warnings"
    );
    assert_eq!(keys(c), ["tcp/203.0.113.10:80", "tcp/203.0.113.10:443"]);

    let web = svc(c, "tcp/203.0.113.10:80");
    assert_eq!(web.scheduler, Scheduler::Wlc);
    assert_eq!(web.persistence, None);
    assert_eq!(
        reals(web),
        [
            r("10.1.0.11", 80, 10, Forward::Dr),
            r("10.1.0.12", 80, 10, Forward::Dr),
            r("10.1.0.13", 80, 5, Forward::Dr),
        ]
    );
    let mut want = check(CheckKind::Http, 5000, 3000, 3);
    want.on_failure = FailureAction::Quiesce;
    want.path = Some("/health".into());
    want.expect_status = Some("200".into());
    assert_eq!(web.health_check.as_ref(), Some(&want));

    let tls = svc(c, "tcp/203.0.113.10:443");
    assert_eq!(tls.scheduler, Scheduler::Sh);
    assert_eq!(tls.sched_flags, [SchedFlag::Port]);
    let p = tls.persistence.as_ref().expect("persistence");
    assert_eq!(
        (p.timeout, p.netmask.as_deref()),
        (300, Some("255.255.255.0"))
    );
    assert_eq!(
        reals(tls),
        [
            r("10.1.0.11", 443, 1, Forward::Dr),
            r("10.1.0.12", 443, 1, Forward::Dr)
        ]
    );
    let mut want = check(CheckKind::Https, 10_000, 4000, 2);
    want.path = Some("/health".into());
    want.host = Some("www.example.net".into());
    want.expect_status = Some("200-399".into());
    assert_eq!(tls.health_check.as_ref(), Some(&want));

    assert_eq!(c.vip_groups.len(), 1);
    let g = &c.vip_groups[0];
    assert_eq!((g.name.as_str(), g.interface.as_str()), ("VI_WEB", "eth0"));
    let addrs: Vec<String> = g.addresses.iter().map(|a| a.to_string()).collect();
    assert_eq!(addrs, ["203.0.113.10/24", "203.0.113.11/24"]);
    let sync = c.sync.as_ref().expect("sync from lvs_sync_daemon");
    assert_eq!(
        (sync.interface.as_str(), sync.syncid, sync.port, sync.ttl),
        ("eth1", 51, 8848, 1)
    );

    assert_eq!(
        run.warnings,
        [
            "dr-web.conf:5: global_defs notification_email is not mapped; left out",
            "dr-web.conf:8: global_defs notification_email_from is not mapped; left out",
            "dr-web.conf:9: global_defs smtp_server is not mapped; left out",
            "dr-web.conf:10: global_defs smtp_connect_timeout is not mapped; left out",
            "dr-web.conf:11: global_defs router_id is not mapped; left out",
            "dr-web.conf:15: vrrp_sync_group VG_WEB (VI_WEB) is not mapped: all VIP groups move together with the leader",
            "dr-web.conf:33: virtual_ipaddress 203.0.113.11/24: \"label eth0:web2\" is not mapped (VIPs are plain addresses on an interface)",
            "dr-web.conf:21: vrrp_instance VI_WEB is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set VI_WEB --interface eth0 203.0.113.10/24 203.0.113.11/24)",
            "dr-web.conf:42: quorum is not mapped: the sorry server is used while no real server is available; there is no weight quorum",
            "dr-web.conf:53: delay_before_retry is not mapped: failed probes are repeated at the check interval",
            "dr-web.conf:66: delay_before_retry is not mapped: failed probes are repeated at the check interval",
            "dr-web.conf:75: digest is not mapped: checks compare the status (and body_contains), not an MD5 of the page",
            "dr-web.conf:79: delay_before_retry is not mapped: failed probes are repeated at the check interval",
            "dr-web.conf:72: `real_server 10.1.0.13 80`: its HTTP_GET differs in expect_status from the service's check (HTTP_GET at dr-web.conf:46), which applies to every real server of the service",
        ]
    );
}

#[test]
fn ipv6_services_with_tcp_and_dns_checks() {
    let run = ok("keepalived", "keepalived", "ipv6.conf");
    let c = &run.config;
    assert_eq!(
        keys(c),
        ["tcp/[2001:db8:100::10]:80", "udp/[2001:db8:100::53]:53"]
    );
    let web = svc(c, "tcp/[2001:db8:100::10]:80");
    assert_eq!(web.scheduler, Scheduler::Rr);
    let p = web.persistence.as_ref().expect("persistence");
    assert_eq!((p.timeout, p.netmask.as_deref()), (120, Some("64")));
    assert_eq!(
        reals(web),
        [
            r("2001:db8:200::1", 80, 1, Forward::Dr),
            r("2001:db8:200::2", 80, 2, Forward::Dr)
        ]
    );
    assert_eq!(
        web.health_check.as_ref(),
        Some(&check(CheckKind::Tcp, 3000, 2000, 4))
    );

    // The `{` of this virtual_server and its real servers opens on the next line.
    let dns = svc(c, "udp/[2001:db8:100::53]:53");
    assert_eq!(dns.scheduler, Scheduler::Wrr);
    assert!(dns.one_packet);
    assert_eq!(
        reals(dns),
        [
            r("2001:db8:200::1", 53, 3, Forward::Dr),
            r("2001:db8:200::2", 53, 3, Forward::Dr)
        ]
    );
    let mut want = check(CheckKind::Dns, 5000, 1500, 4);
    want.query_name = Some("www.example.net".into());
    want.query_type = Some("AAAA".into());
    assert_eq!(dns.health_check.as_ref(), Some(&want));

    let g = &c.vip_groups[0];
    assert_eq!((g.name.as_str(), g.interface.as_str()), ("VI6", "bond0"));
    assert_eq!(g.addresses.len(), 2);
    assert!(c.sync.is_none());
    assert_eq!(
        run.warnings,
        ["ipv6.conf:3: vrrp_instance VI6 is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set VI6 --interface bond0 2001:db8:100::10/64 2001:db8:100::53/64)"]
    );
}

#[test]
fn fwmark_services_with_persistence_and_tunnels() {
    let run = ok("keepalived", "keepalived", "fwmark.conf");
    let c = &run.config;
    assert_eq!(keys(c), ["fwmark/7", "fwmark/100", "fwmark6/106"]);

    let web = svc(c, "fwmark/100");
    let p = web.persistence.as_ref().expect("persistence");
    assert_eq!(
        (p.timeout, p.netmask.as_deref()),
        (1800, Some("255.255.255.0"))
    );
    assert_eq!(
        reals(web),
        [
            r("10.2.0.1", 0, 100, Forward::Dr),
            r("10.2.0.2", 0, 100, Forward::Dr)
        ]
    );
    let mut want = check(CheckKind::Tcp, 10_000, 5000, 2);
    want.port = Some(443);
    assert_eq!(web.health_check.as_ref(), Some(&want));

    // The family of a fwmark service follows its real servers; a real without port gets 0.
    let v6 = svc(c, "fwmark6/106");
    assert_eq!(
        v6.persistence.as_ref().and_then(|p| p.netmask.as_deref()),
        Some("48")
    );
    assert_eq!(reals(v6), [r("2001:db8:2::1", 0, 1, Forward::Dr)]);
    assert_eq!(v6.health_check.as_ref(), Some(&want));

    let tun = svc(c, "fwmark/7");
    assert_eq!(tun.scheduler, Scheduler::Mh);
    assert_eq!(tun.sched_flags, [SchedFlag::Fallback, SchedFlag::Port]);
    assert_eq!(tun.persistence.as_ref().map(|p| p.timeout), Some(360));
    assert_eq!(tun.health_check, None);
    let t: Vec<_> = tun
        .reals
        .iter()
        .map(|r| (r.forward, r.tunnel_type, r.tunnel_port, r.tunnel_csum))
        .collect();
    assert_eq!(
        t,
        [
            (
                Forward::Tunnel,
                Some(TunnelType::Gre),
                None,
                Some(TunnelCsum::Csum)
            ),
            (
                Forward::Tunnel,
                Some(TunnelType::Gue),
                Some(6080),
                Some(TunnelCsum::Remcsum)
            ),
        ]
    );
    assert_eq!(
        run.warnings,
        [
            "fwmark.conf:10: alpha is not mapped: real servers are not assumed down at start",
            "fwmark.conf:11: omega is not mapped: notifications are not sent; lvsctl watch follows changes",
        ]
    );
}

#[test]
fn includes_are_read_where_they_stand_and_named_in_warnings() {
    let run = ok("keepalived", "keepalived", "main.conf");
    let c = &run.config;
    // conf.d/99-old.conf.disabled does not match *.conf.
    assert_eq!(keys(c), ["tcp/198.51.100.20:80", "udp/198.51.100.21:53"]);
    // The real servers come from shared/web-reals.inc, included inside the virtual_server.
    let web = svc(c, "tcp/198.51.100.20:80");
    assert_eq!(
        reals(web),
        [
            r("10.3.0.11", 80, 1, Forward::Dr),
            r("10.3.0.12", 80, 1, Forward::Dr)
        ]
    );
    let mut want = check(CheckKind::Http, 2000, 1000, 2);
    want.path = Some("/ping".into());
    want.expect_status = Some("200-299".into());
    assert_eq!(web.health_check.as_ref(), Some(&want));
    // keepalived's defaults: delay_loop 60 s, connect_timeout 5 s, DNS retry 3, type SOA.
    let dns = svc(c, "udp/198.51.100.21:53");
    let mut want = check(CheckKind::Dns, 60_000, 5000, 4);
    want.query_name = Some("example.net".into());
    want.query_type = Some("SOA".into());
    assert_eq!(dns.health_check.as_ref(), Some(&want));
    assert_eq!(c.vip_groups[0].name, "VI_1");
    assert_eq!(
        run.warnings,
        [
            "main.conf:4: global_defs router_id is not mapped; left out",
            "conf.d/10-vrrp.conf:1: vrrp_instance VI_1 is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set VI_1 --interface eth0 198.51.100.20/24 198.51.100.21/24)",
            "conf.d/10-vrrp.conf:15: vrrp_script is not mapped: tracking for VRRP priorities; the leader holds the VIPs while a majority of directors acknowledges it",
            "shared/web-reals.inc:9: bindto is not mapped: checks use the director's own source address and routing",
            "shared/web-reals.inc:19: bindto is not mapped: checks use the director's own source address and routing",
        ]
    );
}

#[test]
fn mixed_checkers_map_or_are_named() {
    let run = ok("keepalived", "keepalived", "checkers.conf");
    let c = &run.config;
    assert_eq!(
        keys(c),
        [
            "tcp/192.0.2.33:3306",
            "tcp/192.0.2.80:80",
            "udp/192.0.2.53:53"
        ]
    );
    // The first real's TCP_CHECK is the service's; the HTTP_GET of the second is named.
    let mut want = check(CheckKind::Tcp, 4000, 2000, 2);
    want.port = Some(8080);
    assert_eq!(
        svc(c, "tcp/192.0.2.80:80").health_check.as_ref(),
        Some(&want)
    );
    assert_eq!(svc(c, "tcp/192.0.2.80:80").reals.len(), 3);

    let mut want = check(CheckKind::Dns, 60_000, 5000, 3);
    want.query_name = Some("ns.example.net".into());
    want.query_type = Some("A".into());
    assert_eq!(
        svc(c, "udp/192.0.2.53:53").health_check.as_ref(),
        Some(&want)
    );

    // MISC_CHECK: argv split like keepalived, each real's own address as {address}, so both
    // reals' scripts are the same check; retry defaults to 0 (fall 1).
    let mut want = check(CheckKind::Exec, 15_000, 10_000, 1);
    want.on_failure = FailureAction::Quiesce;
    want.command = vec![
        "/etc/keepalived/check_mysql.sh".into(),
        "{address}".into(),
        "3306".into(),
        "repl user".into(),
    ];
    assert_eq!(
        svc(c, "tcp/192.0.2.33:3306").health_check.as_ref(),
        Some(&want)
    );
    assert_eq!(
        run.warnings,
        [
            "checkers.conf:30: SMTP_CHECK is not mapped: lvs-director checks are tcp, http, https, udp (payload and reply text), dns and exec",
            "checkers.conf:18: `real_server 10.4.0.2 80`: its HTTP_GET differs in kind, timeout_ms, port, path, expect_status from the service's check (TCP_CHECK at checkers.conf:11), which applies to every real server of the service",
            "checkers.conf:58: misc_dynamic is not mapped: the exit status only tells healthy (0) from failed; weights come from weight_policy",
        ]
    );
}

#[test]
fn nat_with_sorry_server_and_a_virtual_server_group() {
    let run = ok("keepalived", "keepalived", "nat-sorry.conf");
    let c = &run.config;
    assert_eq!(
        keys(c),
        [
            "tcp/192.0.2.100:80",
            "tcp/192.0.2.110:443",
            "tcp/192.0.2.111:443",
            "fwmark/443"
        ]
    );
    let app = svc(c, "tcp/192.0.2.100:80");
    assert_eq!(app.scheduler, Scheduler::Wrr);
    assert_eq!(
        reals(app),
        [
            r("10.5.0.1", 8080, 3, Forward::Masq),
            r("10.5.0.2", 8080, 1, Forward::Masq)
        ]
    );
    let sorry = app.sorry_server.as_ref().expect("sorry server");
    assert_eq!(
        (sorry.address, sorry.port, sorry.forward),
        ("10.5.0.99".parse::<IpAddr>().unwrap(), 8080, Forward::Masq)
    );
    let mut want = check(CheckKind::Http, 6000, 3000, 4);
    want.path = Some("/".into());
    want.expect_status = Some("200".into());
    assert_eq!(app.health_check.as_ref(), Some(&want));
    // keepalived's default forwarding method is NAT.
    for k in ["tcp/192.0.2.110:443", "tcp/192.0.2.111:443", "fwmark/443"] {
        let s = svc(c, k);
        assert_eq!(s.scheduler, Scheduler::Rr, "{k}");
        assert_eq!(
            reals(s),
            [
                r("10.5.0.1", 443, 1, Forward::Masq),
                r("10.5.0.2", 443, 1, Forward::Masq)
            ],
            "{k}"
        );
    }
    assert_eq!(
        run.warnings,
        [
            "nat-sorry.conf:10: sorry_server_inhibit is not mapped: the sorry server is added while no real server is available",
            "nat-sorry.conf:25: notify_down is not mapped: notifications are not sent; lvsctl watch follows changes",
        ]
    );
}

#[test]
fn errors_name_the_file_and_line() {
    let r = import("keepalived", "keepalived", "cycle/a.conf", None);
    assert!(!r.ok);
    assert!(
        r.stderr
            .starts_with("lvsctl: error: cycle/b.conf:2: include a.conf: include cycle: "),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.trim_end().ends_with("cycle/a.conf"),
        "{}",
        r.stderr
    );

    let r = import("keepalived", "keepalived", "unbalanced.conf", None);
    assert!(!r.ok);
    assert_eq!(
        r.stderr,
        "lvsctl: error: unbalanced.conf:1: the '{' of `virtual_server 192.0.2.1 80` is never closed (input ends at unbalanced.conf:9)\n"
    );

    let r = import("keepalived", "keepalived", "nosuch.conf", None);
    assert!(!r.ok);
    assert!(
        r.stderr
            .starts_with("lvsctl: error: nosuch.conf: cannot be read: "),
        "{}",
        r.stderr
    );

    let r = import("haproxy", "keepalived", "main.conf", None);
    assert!(!r.ok);
    assert_eq!(
        r.stderr,
        "lvsctl: error: KIND: \"haproxy\" is not supported (expected ipvsadm or keepalived)\n"
    );
}

#[test]
fn stdin_is_read_and_what_does_not_validate_is_an_error() {
    let text = "virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  real_server 10.0.0.1 80 {\n    weight 2\n  }\n  frob\n}\n";
    let run = import("keepalived", "keepalived", "-", Some(text));
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        reals(svc(&run.config, "tcp/192.0.2.1:80")),
        [r("10.0.0.1", 80, 2, Forward::Dr)]
    );
    assert_eq!(
        run.warnings,
        ["<stdin>:6: unknown keyword \"frob\" in virtual_server; left out"]
    );

    // DR cannot map ports: keepalived would accept it, the kernel ignores the port.
    let text =
        "virtual_server 192.0.2.1 80 {\n  lb_kind DR\n  real_server 10.0.0.1 8080 {\n  }\n}\n";
    let run = import("keepalived", "keepalived", "-", Some(text));
    assert!(!run.ok);
    assert_eq!(
        run.stderr,
        "lvsctl: error: <stdin>: the imported rules do not validate: service[tcp/192.0.2.1:80].reals[10.0.0.1:8080].port: 8080 differs from the service port 80; only masquerading (-m) can map ports\n"
    );
}

#[test]
fn ipvsadm_save_of_a_mixed_table() {
    let run = ok("ipvsadm", "ipvsadm", "lb1.save");
    let c = &run.config;
    assert_eq!(
        run.header,
        "# lvsctl import ipvsadm lb1.save: 7 services, 15 real servers, 0 lines left out"
    );
    assert!(run.warnings.is_empty(), "{:#?}", run.warnings);
    assert_eq!(
        keys(c),
        [
            "tcp/192.0.2.7:80",
            "tcp/192.0.2.100:80",
            "tcp/203.0.113.10:80",
            "tcp/203.0.113.10:443",
            "tcp/[2001:db8:100::10]:80",
            "udp/203.0.113.53:53",
            "fwmark/100"
        ]
    );
    let tls = svc(c, "tcp/203.0.113.10:443");
    assert_eq!(
        (tls.scheduler, tls.sched_flags.as_slice()),
        (Scheduler::Sh, &[SchedFlag::Port][..])
    );
    assert_eq!(
        tls.persistence
            .as_ref()
            .map(|p| (p.timeout, p.netmask.clone())),
        Some((300, Some("255.255.255.0".into())))
    );
    assert_eq!(
        svc(c, "tcp/[2001:db8:100::10]:80")
            .persistence
            .as_ref()
            .and_then(|p| p.netmask.clone()),
        Some("64".into())
    );
    let dns = svc(c, "udp/203.0.113.53:53");
    assert!(dns.one_packet);
    assert_eq!(
        reals(dns),
        [
            r("10.1.0.53", 53, 1, Forward::Dr),
            r("10.1.0.54", 53, 0, Forward::Dr)
        ]
    );
    let nat = svc(c, "tcp/192.0.2.100:80");
    assert_eq!(
        reals(nat),
        [
            r("10.5.0.1", 8080, 3, Forward::Masq),
            r("10.5.0.2", 8080, 1, Forward::Masq)
        ]
    );
    assert_eq!(
        (nat.reals[0].upper_threshold, nat.reals[0].lower_threshold),
        (500, 400)
    );
    let tun = svc(c, "tcp/192.0.2.7:80");
    assert_eq!(tun.sched_flags, [SchedFlag::Fallback, SchedFlag::Port]);
    assert_eq!(
        (
            tun.reals[1].tunnel_type,
            tun.reals[1].tunnel_port,
            tun.reals[1].tunnel_csum
        ),
        (Some(TunnelType::Gue), Some(6080), Some(TunnelCsum::Csum))
    );
    assert_eq!(svc(c, "fwmark/100").reals.len(), 2);
}

#[test]
fn ipvsadm_hand_edited_rules_name_each_line_left_out() {
    let run = ok("ipvsadm", "ipvsadm", "hand-edited.save");
    assert_eq!(keys(&run.config), ["tcp/198.51.100.20:80"]);
    assert_eq!(
        reals(svc(&run.config, "tcp/198.51.100.20:80")),
        [
            r("10.3.0.11", 80, 1, Forward::Dr),
            r("10.3.0.12", 80, 1, Forward::Dr)
        ]
    );
    assert_eq!(
        run.warnings,
        [
            "hand-edited.save:6: unexpected argument '--pe' found; line left out",
            "hand-edited.save:7: real server 10.3.0.50:5060 for service udp/198.51.100.5:5060, which no earlier -A line adds; line left out",
            "hand-edited.save:8: \"-Z\" is not a rule ipvsadm-save writes (expected -A or -a); line left out",
            "hand-edited.save:9: -s/--scheduler: unknown scheduler \"roundrobin\" (expected one of rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos); line left out",
            "hand-edited.save:10: real server 10.3.0.25:25 for service tcp/198.51.100.22:25, which no earlier -A line adds; line left out",
            "hand-edited.save:11: service tcp/198.51.100.20:80 is defined twice; line left out",
        ]
    );
}

/// Every fixture file's text, for the mutation property below.
fn fixture_texts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut dirs = vec![fixtures()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("fixtures folder") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let text = std::fs::read_to_string(&p).expect("fixture text");
                out.push((p.display().to_string(), text));
            }
        }
    }
    out.sort();
    out
}

/// One edit of fixture text: delete, duplicate or insert at a char boundary.
#[derive(Clone, Debug)]
enum Edit {
    Delete(usize, usize),
    Duplicate(usize, usize),
    Insert(usize, String),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for e in edits {
        let n = chars.len();
        match e {
            Edit::Delete(at, len) if n > 0 => {
                let a = at % n;
                let b = (a + len).min(n);
                chars.drain(a..b);
            }
            Edit::Duplicate(at, len) if n > 0 => {
                let a = at % n;
                let b = (a + len).min(n);
                let copy: Vec<char> = chars[a..b].to_vec();
                chars.splice(b..b, copy);
            }
            Edit::Insert(at, s) => {
                let a = if n == 0 { 0 } else { at % (n + 1) };
                chars.splice(a..a, s.chars());
            }
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn edit() -> impl proptest::strategy::Strategy<Value = Edit> {
    use proptest::prelude::*;
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, l)| Edit::Delete(a, l)),
        (any::<usize>(), 1usize..200).prop_map(|(a, l)| Edit::Duplicate(a, l)),
        (
            any::<usize>(),
            prop_oneof![
                Just("{".to_string()),
                Just("}".to_string()),
                Just("\"".to_string()),
                Just("\n".to_string()),
                Just(" 0".to_string()),
                Just("include *".to_string()),
                Just("fwmark 4294967295".to_string()),
                Just("::".to_string()),
                "[ -~]{1,8}".prop_map(|s| s),
                "\\PC{1,3}".prop_map(|s| s),
            ]
        )
            .prop_map(|(a, s)| Edit::Insert(a, s)),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Mutated fixtures: each importer gives an error or a config with FILE:LINE warnings, never a
    /// panic; whatever validates survives a TOML round trip.
    #[test]
    fn mutated_fixtures_never_panic(
        pick in proptest::prelude::any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..8),
    ) {
        let texts = fixture_texts();
        let (path, text) = pick.get(&texts);
        let mutated = apply(text, &edits);
        let imported = if path.contains("/ipvsadm/") {
            Ok(lvsctl::import::ipvsadm("m", &mutated))
        } else {
            lvsctl::import::keepalived::parse("m", &mutated)
        };
        match imported {
            Ok(im) => {
                proptest::prop_assert!(im.warnings.iter().all(|w| w.starts_with("m:")), "{:?}", im.warnings);
                if let Ok(v) = cluster_core::validate::config(&im.config) {
                    let back = Config::from_toml(&v.to_toml()).expect("own TOML parses");
                    proptest::prop_assert_eq!(back, v);
                }
            }
            Err(e) => proptest::prop_assert!(e.to_string().starts_with("m:"), "{}", e),
        }
    }
}
