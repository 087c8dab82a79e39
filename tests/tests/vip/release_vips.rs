//! `director --config FILE --release-vips`, what systemd's ExecStopPost runs after a director
//! was killed with its guard: in network namespaces (root; panics, never skips, without it) it
//! removes exactly the addresses the held-VIPs file lists (also when one is the primary of its
//! subnet), leaves every other address alone, refuses while a director has the data directory
//! open, and needs neither TLS nor a cluster; and after a real leader and its guard are killed
//! together, it removes the VIPs that leader recorded.

use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use lvs_tests::netns::{Host, Topology};
use lvs_tests::vip_cluster::NetCluster;
use lvs_tests::{bin, free_port};

/// A director config whose data directory is `dir/data`; nothing in it is ever started.
fn write_config(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = dir.join("director.toml");
    std::fs::write(
        &cfg,
        format!(
            "node_id = 1\nraft_addr = \"127.0.0.1:{}\"\napi_addr = \"127.0.0.1:{}\"\ndata_dir = \"{}\"\n",
            free_port(),
            free_port(),
            data.display()
        ),
    )
    .unwrap();
    cfg
}

fn write_held(dir: &Path, records: &[(&str, String)]) {
    let list: Vec<serde_json::Value> = records
        .iter()
        .map(|(ifname, addr)| serde_json::json!({ "interface": ifname, "address": addr }))
        .collect();
    std::fs::write(
        dir.join("data/vips-held.json"),
        serde_json::to_vec(&list).unwrap(),
    )
    .unwrap();
}

fn release(host: &Host, cfg: &Path) -> Output {
    let out = host
        .cmd(bin("director").to_str().unwrap())
        .arg("--config")
        .arg(cfg)
        .arg("--release-vips")
        .output()
        .expect("running director --release-vips");
    eprintln!(
        "--release-vips: {:?}\nstdout:\n{}stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The addresses on `host`'s interfaces (an error fails the test, rather than reading as "gone").
fn addrs_of(host: &Host, ifname: &str) -> Vec<IpAddr> {
    let text = host
        .run(&["ip", "-o", "addr", "show", "dev", ifname])
        .unwrap_or_else(|e| panic!("listing the addresses of {ifname}: {e:#}"));
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            f.find(|w| *w == "inet" || *w == "inet6")?;
            f.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

fn has(host: &Host, ifname: &str, ip: impl Into<IpAddr>) -> bool {
    addrs_of(host, ifname).contains(&ip.into())
}

/// A namespace with eth0 and vip0 (veths), each with a listed and an unlisted address.
struct Setup {
    _topo: Topology,
    host: Host,
    dir: tempfile::TempDir,
    cfg: PathBuf,
    listed: Vec<(&'static str, IpAddr)>,
    unlisted: Vec<(&'static str, IpAddr)>,
}

fn setup() -> Setup {
    let mut topo = Topology::new();
    let host = topo.add_host("rel");
    // A second interface (veth: this kernel may have no dummy driver), both ends in the namespace.
    host.run(&[
        "ip", "link", "add", "vip0", "type", "veth", "peer", "name", "vip0p",
    ])
    .unwrap();
    host.run(&["ip", "link", "set", "vip0", "up"]).unwrap();
    let listed: Vec<(&'static str, IpAddr)> = vec![
        ("eth0", topo.ipv4_for(100).into()),
        ("eth0", topo.ipv6_for(100).into()),
        ("vip0", topo.ipv4_for(110).into()),
    ];
    let unlisted: Vec<(&'static str, IpAddr)> = vec![
        ("eth0", topo.ipv4_for(101).into()),
        ("eth0", host.ipv4.into()),
        ("eth0", host.ipv6.into()),
        ("vip0", topo.ipv4_for(111).into()),
    ];
    for (ifname, ip) in listed.iter().chain(&unlisted) {
        if *ip == IpAddr::from(host.ipv4) || *ip == IpAddr::from(host.ipv6) {
            continue;
        }
        let plen = if ip.is_ipv4() { 24 } else { 64 };
        let mut args = vec!["ip".to_string(), "addr".into(), "add".into()];
        args.push(format!("{ip}/{plen}"));
        args.extend(["dev".into(), ifname.to_string()]);
        if ip.is_ipv6() {
            args.push("nodad".into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        host.run(&args).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let mut records: Vec<(&str, String)> = listed
        .iter()
        .map(|(i, ip)| (*i, format!("{ip}/{}", if ip.is_ipv4() { 24 } else { 64 })))
        .collect();
    // A listed interface that does not exist holds nothing: skipped, not an error.
    records.push(("nosuch0", format!("{}/24", topo.ipv4_for(120))));
    write_held(dir.path(), &records);
    for (i, ip) in listed.iter().chain(&unlisted) {
        assert!(has(&host, i, *ip), "setup: {ip} not on {i}");
    }
    Setup {
        _topo: topo,
        host,
        dir,
        cfg,
        listed,
        unlisted,
    }
}

#[test]
fn removes_exactly_the_listed_addresses() {
    let _turn = lvs_tests::serial::group("release_vips");
    let s = setup();
    let out = release(&s.host, &s.cfg);
    assert!(out.status.success(), "exit status {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (i, ip) in &s.listed {
        assert!(!has(&s.host, i, *ip), "listed {ip} still on {i}");
        assert!(
            stdout.contains(&format!("removed {ip}/")) && stdout.contains(&format!(" from {i}")),
            "no removal line for {ip} on {i}"
        );
    }
    for (i, ip) in &s.unlisted {
        assert!(has(&s.host, i, *ip), "unlisted {ip} was removed from {i}");
    }
    assert_eq!(
        stdout.matches("removed ").count(),
        s.listed.len(),
        "{stdout}"
    );
    // 198.18.k.110 was vip0's primary address: the kernel would have deleted the unlisted
    // secondary .111 with it, had the release not turned promote_secondaries on around the
    // removal. It is back to its old value now.
    let promote = s
        .host
        .run(&["cat", "/proc/sys/net/ipv4/conf/vip0/promote_secondaries"])
        .unwrap();
    assert_eq!(promote.trim(), "0");
    assert!(stdout.contains("none left"), "{stdout}");

    // Again: nothing listed is present any more, which is success, and nothing else is touched.
    let out = release(&s.host, &s.cfg);
    assert!(out.status.success(), "second run: {:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("removed "), "{stdout}");
    for (i, ip) in &s.unlisted {
        assert!(
            has(&s.host, i, *ip),
            "second run removed unlisted {ip} from {i}"
        );
    }
}

#[test]
fn refuses_while_a_director_has_the_store_open() {
    let _turn = lvs_tests::serial::group("release_vips");
    let s = setup();
    // sled keeps an exclusive flock on raft.sled/db while a director has the store open.
    let sled = s.dir.path().join("data/raft.sled");
    std::fs::create_dir_all(&sled).unwrap();
    let db = std::fs::File::create(sled.join("db")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(
        unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
        0
    );
    let out = release(&s.host, &s.cfg);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("a director is running"),
        "stderr does not say why"
    );
    for (i, ip) in s.listed.iter().chain(&s.unlisted) {
        assert!(
            has(&s.host, i, *ip),
            "{ip} removed from {i} despite the running director"
        );
    }

    drop(db);
    let out = release(&s.host, &s.cfg);
    assert!(out.status.success(), "after the lock: {:?}", out.status);
    for (i, ip) in &s.listed {
        assert!(!has(&s.host, i, *ip), "listed {ip} still on {i}");
    }
}

#[test]
fn a_bad_config_or_held_file_fails() {
    let _turn = lvs_tests::serial::group("release_vips");
    let s = setup();
    std::fs::write(s.dir.path().join("data/vips-held.json"), "{ not json").unwrap();
    let out = release(&s.host, &s.cfg);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("vips-held.json"));
    for (i, ip) in s.listed.iter().chain(&s.unlisted) {
        assert!(
            has(&s.host, i, *ip),
            "{ip} removed from {i} with an unreadable file"
        );
    }
    // The config is still required and checked.
    std::fs::write(&s.cfg, "node_id = 0\n").unwrap();
    let out = release(&s.host, &s.cfg);
    assert_eq!(out.status.code(), Some(2));
}

/// The case ExecStopPost exists for: the leader and its guard are killed together (systemd's
/// SIGKILL of the whole cgroup, the OOM killer), so nobody removes the VIPs; `--release-vips`
/// with the leader's own config removes exactly what the leader recorded.
#[test]
fn after_the_whole_unit_is_killed_release_removes_the_leaders_vips() {
    let _turn = lvs_tests::serial::group("release_vips");
    let mut c = NetCluster::start(3, "default");
    let leader = c.wait_leader(Duration::from_secs(20));
    c.set_vips();
    c.wait_holder(leader, Duration::from_secs(5));
    let host = c.node(leader).host.clone();
    let cfg = c.node(leader).config.clone();
    let (vip4, vip6) = (c.vip4, c.vip6);

    // Guard first (SIGKILL: no chance to act), then the director.
    let out = std::process::Command::new("ip")
        .args(["netns", "pids", &host.ns])
        .output()
        .unwrap();
    let pids = String::from_utf8_lossy(&out.stdout).into_owned();
    let guards: Vec<i32> = pids
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|p: &i32| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("vip-guard"))
        })
        .collect();
    assert_eq!(guards.len(), 1, "the leader's guard among {pids:?}");
    // SAFETY: kill(2) on a process of this test's namespace.
    unsafe {
        libc::kill(guards[0], libc::SIGKILL);
    }
    c.kill(leader);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        has(&host, "eth0", vip4),
        "the VIP went away without its guard"
    );
    assert!(
        has(&host, "eth0", vip6),
        "the VIP went away without its guard"
    );

    let out = release(&host, &cfg);
    assert!(out.status.success(), "{:?}", out.status);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("removed {vip4}/24 from eth0")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("removed {vip6}/64 from eth0")),
        "{stdout}"
    );
    assert!(!has(&host, "eth0", vip4) && !has(&host, "eth0", vip6));
    assert!(
        has(&host, "eth0", host.ipv4),
        "the host's own address was removed"
    );
}
