//! Exercises every operation of the IPVS netlink client against the running kernel and checks
//! each read-back against what was sent; prints `ipvsadm -Ln` for an independent view. Runs in a
//! fresh network namespace of its own (IPVS state is per namespace), so the host's table is
//! never touched. Needs root. Exit code 0 when every check passed, 1 otherwise.
//!
//! `cargo build --release --example ipvs_selftest` and, on a host without IPVS,
//! `tests/lab/run.sh --file target/release/examples/ipvs_selftest -- ipvs_selftest`.
//! `LVS_TEST_IPVS_BATCH=N` sets the size of the pipelined batch (N services × 4 destinations).

use std::net::IpAddr;
use std::process::{Command, ExitCode};
use std::time::Instant;

use cluster_core::ipvs::codec::Request;
use cluster_core::ipvs::{
    flags, tun_flags, tun_type, DaemonState, KDaemon, KDest, KForward, KService, KTimeouts,
};
use cluster_core::model::{Family, ServiceKey};
use director::ipvs::client::{IpvsClient, IpvsError};

/// Counts failed checks and prints one line per check.
struct Checks {
    failed: Vec<String>,
    passed: usize,
}

impl Checks {
    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
            println!("ok    {what}");
        } else {
            let d = detail();
            println!("FAIL  {what}: {d}");
            self.failed.push(format!("{what}: {d}"));
        }
    }

    fn ok<T>(&mut self, what: &str, r: Result<T, IpvsError>) -> Option<T> {
        match r {
            Ok(v) => {
                self.check(what, true, String::new);
                Some(v)
            }
            Err(e) => {
                self.check(what, false, || e.to_string());
                None
            }
        }
    }

    fn errno<T: std::fmt::Debug>(&mut self, what: &str, r: Result<T, IpvsError>, want: i32) {
        match r {
            Err(e) if e.errno() == Some(want) => {
                self.check(what, true, String::new);
                println!("      ({e})");
            }
            Err(e) => self.check(what, false, || format!("wanted errno {want}, got: {e}")),
            Ok(v) => self.check(what, false, || {
                format!("wanted errno {want}, got Ok({v:?})")
            }),
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: &T, want: &T) {
        self.check(what, got == want, || {
            format!("\n        got:  {got:?}\n        want: {want:?}")
        });
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd} {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn show_ipvsadm(args: &[&str]) -> Option<String> {
    println!("----- ipvsadm {}", args.join(" "));
    match run("ipvsadm", args) {
        Ok(s) => {
            print!("{s}");
            println!("-----");
            Some(s)
        }
        Err(e) => {
            println!("(not available: {e})");
            None
        }
    }
}

fn key(s: &str) -> ServiceKey {
    s.parse().expect("service key")
}

fn svc(k: &str, sched: &str, fl: u32, timeout: u32, netmask: Option<u32>) -> KService {
    let key = key(k);
    KService {
        key,
        scheduler: sched.into(),
        flags: fl,
        timeout,
        netmask: netmask.unwrap_or_else(|| KService::host_netmask(key.family())),
        pe_name: None,
    }
}

fn dest(addr: &str, port: u16, forward: KForward, weight: u32) -> KDest {
    KDest {
        address: addr.parse().expect("address"),
        port,
        forward,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
        tun_type: 0,
        tun_port: 0,
        tun_flags: 0,
    }
}

fn main() -> ExitCode {
    // A namespace of our own: IPVS, its sync daemons and our veth pair live and die with it.
    // SAFETY: called before any thread is started; it only changes this thread's namespace.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!(
            "ipvs_selftest: unshare(CLONE_NEWNET): {} (run as root)",
            std::io::Error::last_os_error()
        );
        return ExitCode::from(2);
    }
    let mut c = match IpvsClient::open() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ipvs_selftest: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut t = Checks {
        failed: Vec::new(),
        passed: 0,
    };
    if let Err(e) = run("ip", &["link", "set", "lo", "up"]) {
        println!("note: {e}");
    }

    info_and_timeouts(&mut c, &mut t);
    let services = services_and_dests(&mut c, &mut t);
    error_cases(&mut c, &mut t, &services);
    daemons(&mut c, &mut t);
    stats_and_zero(&mut c, &mut t, &services);
    batch(&mut c, &mut t);
    deletes(&mut c, &mut t, &services);

    println!("\n{} checks passed, {} failed", t.passed, t.failed.len());
    for f in &t.failed {
        println!("  FAILED: {f}");
    }
    if t.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn info_and_timeouts(c: &mut IpvsClient, t: &mut Checks) {
    println!("\n== info and timeouts");
    if let Some(i) = t.ok("get info", c.info()) {
        println!(
            "      IPVS {} conn_tab_size {}",
            i.version_string(),
            i.conn_tab_size
        );
        t.check("version is 1.x.x", i.version >> 16 == 1, || {
            i.version_string()
        });
        t.check("conn_tab_size > 0", i.conn_tab_size > 0, || {
            i.conn_tab_size.to_string()
        });
    }
    let Some(orig) = t.ok("get timeouts", c.timeouts()) else {
        return;
    };
    println!(
        "      tcp {} tcpfin {} udp {}",
        orig.tcp, orig.tcp_fin, orig.udp
    );
    let new = KTimeouts {
        tcp: 1000,
        tcp_fin: 100,
        udp: 200,
    };
    t.ok("set timeouts", c.set_timeouts(&new));
    if let Some(got) = t.ok("get timeouts after set", c.timeouts()) {
        t.eq("timeouts read back", &got, &new);
    }
    t.ok(
        "set timeouts all 0 (= unchanged)",
        c.set_timeouts(&KTimeouts::default()),
    );
    if let Some(got) = t.ok("get timeouts after zero set", c.timeouts()) {
        t.eq("timeouts unchanged by zeros", &got, &new);
    }
    show_ipvsadm(&["-Ln", "--timeout"]);
    t.ok("restore timeouts", c.set_timeouts(&orig));
}

/// One service of every protocol, scheduler, flag and forwarding method, with destinations.
fn every_kind_of_service() -> Vec<(KService, Vec<KDest>)> {
    vec![
        (
            svc("tcp/10.0.0.1:80", "wlc", 0, 0, None),
            vec![
                dest("10.1.0.1", 80, KForward::Masq, 1),
                KDest {
                    upper_threshold: 100,
                    lower_threshold: 10,
                    ..dest("10.1.0.2", 8080, KForward::Masq, 2)
                },
            ],
        ),
        (
            svc(
                "tcp/10.0.0.2:443",
                "rr",
                flags::PERSISTENT,
                300,
                Some(0xffff_ff00),
            ),
            vec![
                dest("10.1.0.3", 443, KForward::Route, 1),
                dest("10.1.0.4", 443, KForward::Route, 0),
            ],
        ),
        (
            svc("udp/10.0.0.3:53", "lc", 0, 0, None),
            vec![KDest {
                tun_type: tun_type::IPIP,
                ..dest("10.1.0.5", 53, KForward::Tunnel, 3)
            }],
        ),
        (
            svc(
                "sctp/10.0.0.4:3868",
                "sh",
                flags::SCHED1 | flags::SCHED2,
                0,
                None,
            ),
            vec![KDest {
                tun_type: tun_type::GUE,
                tun_port: 6080,
                tun_flags: tun_flags::CSUM,
                ..dest("10.1.0.6", 3868, KForward::Tunnel, 1)
            }],
        ),
        (
            svc(
                "tcp/[2001:db8::1]:80",
                "wrr",
                flags::PERSISTENT,
                600,
                Some(64),
            ),
            vec![
                dest("2001:db8::20", 8080, KForward::Masq, 5),
                KDest {
                    tun_type: tun_type::GRE,
                    ..dest("2001:db8::21", 80, KForward::Tunnel, 5)
                },
                // Another family than its service: tunnel only (removed before the daemons).
                dest("10.1.0.7", 80, KForward::Tunnel, 1),
            ],
        ),
        (
            svc("fwmark/7", "mh", flags::SCHED1, 0, None),
            vec![
                dest("10.1.0.8", 0, KForward::Route, 1),
                dest("10.1.0.9", 0, KForward::Route, 1),
            ],
        ),
        (
            svc("fwmark6/8", "dh", 0, 0, None),
            vec![dest("2001:db8::30", 0, KForward::Route, 1)],
        ),
        (
            svc("udp/10.0.0.5:5000", "sed", flags::ONEPACKET, 0, None),
            vec![dest("10.1.0.10", 5000, KForward::Masq, 1)],
        ),
        (
            svc("tcp/10.0.0.6:8000", "nq", 0, 0, None),
            vec![dest("10.1.0.11", 8000, KForward::Masq, 1)],
        ),
        (
            svc("tcp/10.0.0.7:8000", "lblcr", 0, 0, None),
            vec![dest("10.1.0.12", 8000, KForward::Masq, 1)],
        ),
    ]
}

/// Services of every kind, their destinations, edits; returns the services as finally set.
fn services_and_dests(c: &mut IpvsClient, t: &mut Checks) -> Vec<(KService, Vec<KDest>)> {
    println!("\n== services and destinations");
    let mut want = every_kind_of_service();
    for (s, dests) in &want {
        t.ok(
            &format!("new service {} ({})", s.key, s.scheduler),
            c.new_service(s),
        );
        for d in dests {
            t.ok(
                &format!("new dest {} -> {} {:?}", s.key, d.address, d.forward),
                c.new_dest(&s.key, d),
            );
        }
    }
    compare(c, t, &want, "after adding");

    // Edits: weights/thresholds of a destination, and a service whose persistence is removed
    // (the full flag mask lets SET clear PERSISTENT) and scheduler changed.
    want[0].1[0].weight = 7;
    want[0].1[0].upper_threshold = 50;
    let d0 = want[0].1[0].clone();
    t.ok("set dest weight 7", c.set_dest(&want[0].0.key, &d0));
    want[1].0.flags = 0;
    want[1].0.timeout = 0;
    want[1].0.scheduler = "wlc".into();
    let s1 = want[1].0.clone();
    t.ok("set service: wlc, persistence off", c.set_service(&s1));
    want[2].1[0].weight = 0;
    let d2 = want[2].1[0].clone();
    t.ok(
        "set dest weight 0 (quiesce)",
        c.set_dest(&want[2].0.key, &d2),
    );
    compare(c, t, &want, "after edits");

    if let Some(out) = show_ipvsadm(&["-Ln"]) {
        let lines = out
            .lines()
            .filter(|l| {
                ["TCP ", "UDP ", "SCTP ", "FWM "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .count();
        t.eq("ipvsadm -Ln lists every service", &lines, &want.len());
        let reals = out
            .lines()
            .filter(|l| l.trim_start().starts_with("->"))
            .count();
        let ndests: usize = want.iter().map(|(_, d)| d.len()).sum();
        // One "-> RemoteAddress:Port" header line per listing.
        t.eq("ipvsadm -Ln lists every destination", &reals, &(ndests + 1));
    }
    want
}

/// Dumps services and destinations and compares them with `want` (order-independent).
fn compare(c: &mut IpvsClient, t: &mut Checks, want: &[(KService, Vec<KDest>)], when: &str) {
    let Some(got) = t.ok(&format!("dump services {when}"), c.services()) else {
        return;
    };
    let mut got_svcs: Vec<KService> = got.iter().map(|e| e.service.clone()).collect();
    let mut want_svcs: Vec<KService> = want.iter().map(|(s, _)| s.clone()).collect();
    got_svcs.sort_by_key(|s| s.key);
    want_svcs.sort_by_key(|s| s.key);
    t.eq(&format!("services {when}"), &got_svcs, &want_svcs);
    for (s, dests) in want {
        if let Some(one) = t.ok(&format!("get service {}", s.key), c.service(&s.key)) {
            t.eq(
                &format!("get service {} {when}", s.key),
                &one.map(|e| e.service),
                &Some(s.clone()),
            );
        }
        let Some(got) = t.ok(&format!("dump dests of {}", s.key), c.dests(&s.key)) else {
            continue;
        };
        let mut got: Vec<KDest> = got.into_iter().map(|e| e.dest).collect();
        let mut want = dests.clone();
        got.sort_by_key(|d| (d.address, d.port));
        want.sort_by_key(|d| (d.address, d.port));
        t.eq(&format!("dests of {} {when}", s.key), &got, &want);
    }
}

fn error_cases(c: &mut IpvsClient, t: &mut Checks, services: &[(KService, Vec<KDest>)]) {
    println!("\n== error cases");
    let (s0, d0) = (&services[0].0, &services[0].1[0]);
    t.errno(
        "new service that exists: EEXIST",
        c.new_service(s0),
        libc::EEXIST,
    );
    let missing = key("tcp/10.9.9.9:99");
    t.errno(
        "del service that is missing: ESRCH",
        c.del_service(&missing),
        libc::ESRCH,
    );
    t.errno(
        "set service that is missing: ESRCH",
        c.set_service(&svc("tcp/10.9.9.9:99", "rr", 0, 0, None)),
        libc::ESRCH,
    );
    match c.service(&missing) {
        Ok(None) => t.check("get service that is missing: None", true, String::new),
        other => t.check("get service that is missing: None", false, || {
            format!("{other:?}")
        }),
    }
    t.errno(
        "new service with scheduler nosuch: ENOENT",
        c.new_service(&svc("tcp/10.9.9.8:80", "nosuch", 0, 0, None)),
        libc::ENOENT,
    );
    t.errno(
        "new dest on a missing service: ESRCH",
        c.new_dest(&missing, d0),
        libc::ESRCH,
    );
    t.errno(
        "new dest that exists: EEXIST",
        c.new_dest(&s0.key, d0),
        libc::EEXIST,
    );
    let ghost = dest("10.9.9.7", 80, KForward::Masq, 1);
    t.errno(
        "set dest that is missing: ENOENT",
        c.set_dest(&s0.key, &ghost),
        libc::ENOENT,
    );
    t.errno(
        "del dest that is missing: ENOENT",
        c.del_dest(&s0.key, ghost.address, ghost.port),
        libc::ENOENT,
    );
    t.errno(
        "GUE tunnel without port: EINVAL",
        c.new_dest(
            &s0.key,
            &KDest {
                tun_type: tun_type::GUE,
                ..dest("10.9.9.6", 80, KForward::Tunnel, 1)
            },
        ),
        libc::EINVAL,
    );
    t.errno(
        "mixed-family masq dest: EINVAL",
        c.new_dest(&s0.key, &dest("2001:db8::99", 80, KForward::Masq, 1)),
        libc::EINVAL,
    );
    match c.dests(&missing) {
        Ok(v) => t.eq("dests of a missing service: empty", &v.len(), &0),
        Err(e) => t.check("dests of a missing service: empty", false, || e.to_string()),
    }
}

fn daemons(c: &mut IpvsClient, t: &mut Checks) {
    println!("\n== sync daemons");
    let setup = [
        vec![
            "link", "add", "ipvs0", "type", "veth", "peer", "name", "ipvs1",
        ],
        vec!["addr", "add", "192.0.2.1/24", "dev", "ipvs0"],
        vec!["link", "set", "ipvs0", "up"],
        vec!["link", "set", "ipvs1", "up"],
    ];
    for args in setup {
        if let Err(e) = run("ip", &args) {
            t.check("veth pair for the daemons", false, || e);
            return;
        }
    }
    // The loopback: not a multicast interface, so the kernel is expected to refuse it; shown
    // for information only.
    let on_lo = KDaemon {
        state: DaemonState::Master,
        interface: "lo".into(),
        syncid: 1,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    };
    match c.new_daemon(&on_lo) {
        Ok(()) => {
            println!("note: a master daemon on lo was accepted");
            let _ = c.del_daemon(DaemonState::Master);
        }
        Err(e) => println!("note: a master daemon on lo: {e}"),
    }

    let master = KDaemon {
        state: DaemonState::Master,
        interface: "ipvs0".into(),
        syncid: 7,
        maxlen: None,
        group: None,
        port: None,
        ttl: None,
    };
    // The v6 service still has a v4 (mixed-family) tunnel destination.
    t.errno(
        "new daemon while a mixed-family dest exists: EINVAL",
        c.new_daemon(&master),
        libc::EINVAL,
    );
    t.ok(
        "del the mixed-family dest",
        c.del_dest(
            &key("tcp/[2001:db8::1]:80"),
            "10.1.0.7".parse().unwrap(),
            80,
        ),
    );
    t.ok("new daemon master (kernel defaults)", c.new_daemon(&master));
    let backup = KDaemon {
        state: DaemonState::Backup,
        interface: "ipvs0".into(),
        syncid: 9,
        maxlen: Some(1400),
        group: Some("ff02::81".parse().unwrap()),
        port: Some(8849),
        ttl: Some(2),
    };
    t.ok(
        "new daemon backup (v6 group, port, ttl, maxlen)",
        c.new_daemon(&backup),
    );
    t.errno(
        "new daemon master again: EEXIST",
        c.new_daemon(&master),
        libc::EEXIST,
    );
    if let Some(mut got) = t.ok("dump daemons", c.daemons()) {
        got.sort_by_key(|d| d.state);
        for d in &got {
            println!("      {d:?}");
        }
        t.eq("two daemons", &got.len(), &2);
        if got.len() == 2 {
            let m = &got[0];
            t.eq(
                "master as sent",
                &(m.state, &m.interface, m.syncid),
                &(DaemonState::Master, &master.interface, 7),
            );
            t.eq(
                "master kernel defaults",
                &(m.group, m.port, m.ttl),
                &(
                    Some("224.0.0.81".parse::<IpAddr>().unwrap()),
                    Some(8848),
                    Some(1),
                ),
            );
            t.check("master maxlen set from the MTU", m.maxlen.is_some(), || {
                format!("{:?}", m.maxlen)
            });
            t.eq("backup as sent", &got[1], &backup);
        }
    }
    show_ipvsadm(&["-Ln", "--daemon"]);
    t.ok("del daemon master", c.del_daemon(DaemonState::Master));
    t.ok("del daemon backup", c.del_daemon(DaemonState::Backup));
    t.errno(
        "del daemon backup again: ESRCH",
        c.del_daemon(DaemonState::Backup),
        libc::ESRCH,
    );
    if let Some(got) = t.ok("dump daemons after delete", c.daemons()) {
        t.eq("no daemons", &got, &Vec::new());
    }
}

fn stats_and_zero(c: &mut IpvsClient, t: &mut Checks, services: &[(KService, Vec<KDest>)]) {
    println!("\n== stats and zero");
    if let Some(all) = t.ok("dump services with stats", c.services()) {
        for e in all.iter().take(3) {
            println!("      {} {:?}", e.service.key, e.stats);
        }
    }
    if let Some(ds) = t.ok("dump dests with stats", c.dests(&services[0].0.key)) {
        for d in &ds {
            println!(
                "      {} active {} inactive {} persist {} {:?}",
                d.dest.address, d.active_conns, d.inactive_conns, d.persist_conns, d.stats
            );
        }
    }
    t.ok("zero one service", c.zero(Some(&services[0].0.key)));
    t.ok("zero all", c.zero(None));
    t.errno(
        "zero a missing service: ESRCH",
        c.zero(Some(&key("tcp/10.9.9.9:99"))),
        libc::ESRCH,
    );
    show_ipvsadm(&["-Ln", "--stats"]);
}

fn batch(c: &mut IpvsClient, t: &mut Checks) {
    println!("\n== pipelined batch");
    let before = c.services().map(|v| v.len()).unwrap_or(0);
    // LVS_TEST_IPVS_BATCH services (default 1000), each with 4 destinations.
    let n: usize = std::env::var("LVS_TEST_IPVS_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| (1..=60_000).contains(&n))
        .unwrap_or(1000);
    let keys: Vec<ServiceKey> = (0..n)
        .map(|i| ServiceKey::Addr {
            protocol: cluster_core::model::Protocol::Tcp,
            address: IpAddr::from([10, 3, (i / 250) as u8, (i % 250 + 1) as u8]),
            port: 80,
        })
        .collect();
    let mut reqs = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        reqs.push(Request::new_service(&KService {
            key: *k,
            scheduler: "wrr".into(),
            flags: 0,
            timeout: 0,
            netmask: KService::host_netmask(Family::Ipv4),
            pe_name: None,
        }));
        for j in 0..4u8 {
            reqs.push(Request::new_dest(
                k,
                &dest(
                    &format!("10.4.{}.{}", i % 250, j + 1),
                    8080,
                    KForward::Masq,
                    j as u32 + 1,
                ),
            ));
        }
    }
    let start = Instant::now();
    let results = c.execute(&reqs);
    let took = start.elapsed();
    let failed: Vec<String> = results
        .iter()
        .zip(&reqs)
        .filter_map(|(r, q)| r.as_ref().err().map(|e| format!("{}: {e}", q.describe())))
        .collect();
    println!(
        "      {} requests in {:.1} ms ({:.0}/s)",
        reqs.len(),
        took.as_secs_f64() * 1000.0,
        reqs.len() as f64 / took.as_secs_f64()
    );
    t.eq("one result per request", &results.len(), &reqs.len());
    t.check("every batched request succeeded", failed.is_empty(), || {
        format!("{} failed, first: {}", failed.len(), failed[0])
    });
    if let Ok(all) = c.services() {
        t.eq("services after the batch", &all.len(), &(before + n));
    }
    for k in keys.iter().step_by(199) {
        match c.dests(k) {
            Ok(d) => t.eq(&format!("4 dests on {k}"), &d.len(), &4),
            Err(e) => t.check(&format!("4 dests on {k}"), false, || e.to_string()),
        }
    }

    // Failures in the middle of a batch: each request gets its own answer, in order.
    let fresh = key("tcp/10.5.0.1:80");
    let mixed = vec![
        Request::new_service(&svc("tcp/10.3.0.1:80", "wrr", 0, 0, None)),
        Request::new_service(&svc("tcp/10.5.0.1:80", "rr", 0, 0, None)),
        Request::del_service(&key("tcp/10.9.9.9:99")),
        Request::new_dest(&fresh, &dest("10.6.0.1", 80, KForward::Masq, 1)),
        Request::new_service(&svc("tcp/10.5.0.2:80", "nosuch", 0, 0, None)),
        Request::new_dest(
            &key("tcp/10.9.9.9:99"),
            &dest("10.6.0.1", 80, KForward::Masq, 1),
        ),
        Request::get_info(),
        Request::dump_services(),
        Request::del_service(&fresh),
    ];
    let got: Vec<Option<i32>> = c
        .execute(&mixed)
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.errno().unwrap_or(-1)))
        .collect();
    t.eq(
        "mixed batch: per-request outcomes in order",
        &got,
        &vec![
            Some(libc::EEXIST),
            None,
            Some(libc::ESRCH),
            None,
            Some(libc::ENOENT),
            Some(libc::ESRCH),
            None,
            None,
            None,
        ],
    );

    let dels: Vec<Request> = keys.iter().map(Request::del_service).collect();
    let start = Instant::now();
    let results = c.execute(&dels);
    println!(
        "      {} deletes in {:.1} ms",
        dels.len(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    t.check(
        "batched deletes succeeded",
        results.iter().all(Result::is_ok),
        || format!("{} failed", results.iter().filter(|r| r.is_err()).count()),
    );
    if let Ok(all) = c.services() {
        t.eq("services after the batched deletes", &all.len(), &before);
    }
}

fn deletes(c: &mut IpvsClient, t: &mut Checks, services: &[(KService, Vec<KDest>)]) {
    println!("\n== deletes and flush");
    let (s0, dests0) = (&services[0].0, &services[0].1);
    t.ok(
        "del dest",
        c.del_dest(&s0.key, dests0[0].address, dests0[0].port),
    );
    if let Ok(d) = c.dests(&s0.key) {
        t.eq("one dest fewer", &d.len(), &(dests0.len() - 1));
    }
    t.ok("del service", c.del_service(&s0.key));
    match c.service(&s0.key) {
        Ok(None) => t.check("deleted service is gone", true, String::new),
        other => t.check("deleted service is gone", false, || format!("{other:?}")),
    }
    t.ok("flush", c.flush());
    if let Some(all) = t.ok("dump after flush", c.services()) {
        t.eq("no services after flush", &all.len(), &0);
    }
    show_ipvsadm(&["-Ln"]);
}
