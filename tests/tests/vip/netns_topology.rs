//! Tests of the network-namespace topology builder (`lvs_tests::netns`). Need root, `ip` and `nft`;
//! they panic (never skip) without them.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cluster_core::vip::frames::{self, fmt_mac, ARP_REQUEST};
use lvs_tests::netns::{
    self, answer_intervals, in_netns, overlaps, silent_gaps, total_overlap, ArpObserver, Host,
    Interval, PacketSocket, Topology,
};

/// Namespace names as `ip netns list` prints them.
fn netns_list() -> Vec<String> {
    let out = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Accepts connections on `l` forever and echoes what each one sends.
fn echo_server(l: TcpListener) {
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn connect_from(h: &Host, to: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    h.in_ns(|| TcpStream::connect_timeout(&to, timeout))
        .expect("enter namespace")
}

/// Writes `msg` and reads the echo within `timeout`.
fn echo(c: &mut TcpStream, msg: &[u8], timeout: Duration) -> std::io::Result<Vec<u8>> {
    c.write_all(msg)?;
    read_exact_within(c, msg.len(), timeout)
}

fn read_exact_within(c: &mut TcpStream, n: usize, timeout: Duration) -> std::io::Result<Vec<u8>> {
    c.set_read_timeout(Some(timeout))?;
    let mut buf = vec![0u8; n];
    c.read_exact(&mut buf)?;
    Ok(buf)
}

#[test]
fn hosts_get_the_planned_addresses_and_ping_over_ipv4_and_ipv6() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut t = Topology::new();
    let a = t.add_host("a");
    let b = t.add_host("b");
    let k = t.subnet();

    // The plan: 198.18.k.n/24, fd00:k::n/64, 02:00:TT:TT:00:nn, eth0.
    assert_eq!(a.ipv4, Ipv4Addr::new(198, 18, k, 1));
    assert_eq!(b.ipv4, Ipv4Addr::new(198, 18, k, 2));
    assert_eq!(b.ipv6, format!("fd00:{k:x}::2").parse::<IpAddr>().unwrap());
    let tag = u16::from_str_radix(t.tag(), 16).unwrap();
    assert_eq!(b.mac, [2, 0, (tag >> 8) as u8, tag as u8, 0, 2]);
    assert_eq!(a.ns, format!("lvs-{}-a", t.tag()));
    assert_eq!(a.ifname, "eth0");

    // What the kernel has agrees with the plan.
    let link: serde_json::Value =
        serde_json::from_str(&a.run(&["ip", "-j", "link", "show", "eth0"]).unwrap()).unwrap();
    assert_eq!(link[0]["address"], a.mac_str());
    assert_eq!(link[0]["ifindex"], a.ifindex);
    assert!(a.has_addr(a.ipv4) && a.has_addr(a.ipv6));
    assert!(!a.has_addr(b.ipv4));
    let addrs = a.run(&["ip", "-j", "addr", "show", "dev", "eth0"]).unwrap();
    assert!(!addrs.contains("tentative"), "DAD still on: {addrs}");
    assert_eq!(
        a.run(&["cat", "/proc/sys/net/ipv6/conf/eth0/accept_dad"])
            .unwrap()
            .trim(),
        "0"
    );
    // Ports hang off the bridge in the switch namespace.
    let ports = std::process::Command::new("ip")
        .args(["-n", t.switch_ns(), "-j", "link", "show", "master", "br0"])
        .output()
        .unwrap();
    let ports: serde_json::Value = serde_json::from_slice(&ports.stdout).unwrap();
    let names: Vec<&str> = ports
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ifname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["p1", "p2"]);
    // Nothing of ours in the root namespace.
    let root = std::process::Command::new("ip")
        .args(["-j", "link", "show"])
        .output()
        .unwrap();
    let root = String::from_utf8_lossy(&root.stdout);
    let prefix = fmt_mac(&t.mac_for(0));
    assert!(!root.contains(&prefix[..11]), "topology MAC in root ns");

    assert!(a.ping(b.ipv4), "a -> b IPv4");
    assert!(b.ping(a.ipv4), "b -> a IPv4");
    assert!(a.ping(b.ipv6), "a -> b IPv6");
    assert!(b.ping(a.ipv6), "b -> a IPv6");
    // ...and ping does fail for an address nobody has.
    assert!(!a.ping_timeout(t.ipv4_for(250), Duration::from_millis(300)));
    assert!(!a.ping_timeout(t.ipv6_for(250), Duration::from_millis(300)));
}

#[test]
fn neighbour_entries_show_the_predicted_macs() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut t = Topology::new();
    let client = t.add_host("client");
    let server = t.add_host("server");
    assert_eq!(client.neigh(server.ipv4), None, "fresh host has no entry");
    assert!(client.ping(server.ipv4));
    assert!(client.ping(server.ipv6));
    let want = fmt_mac(&t.mac_for(2));
    assert_eq!(client.neigh(server.ipv4), Some(want.clone()));
    assert_eq!(client.neigh(server.ipv6), Some(want));
    assert_eq!(server.neigh(client.ipv4), Some(client.mac_str()));
}

#[test]
fn packet_socket_captures_the_arp_request_a_ping_triggers() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut t = Topology::new();
    let watcher = t.add_host("watcher");
    let pinger = t.add_host("pinger");
    let target = t.add_host("target");

    let sock: PacketSocket = in_netns(&watcher.ns, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    assert_eq!(sock.ifindex(), watcher.ifindex);
    // Nothing about `target` yet.
    let is_who_has_target = |f: &[u8]| {
        frames::parse_arp(f).is_some_and(|a| a.op == ARP_REQUEST && a.target_ip == target.ipv4)
    };
    assert!(sock
        .recv_matching(Duration::from_millis(50), is_who_has_target)
        .is_none());

    assert!(pinger.ping(target.ipv4));
    let frame = sock
        .recv_matching(Duration::from_secs(2), is_who_has_target)
        .expect("the broadcast ARP request reached the watcher");
    let arp = frames::parse_arp(&frame).unwrap();
    assert_eq!(arp.sender_mac, pinger.mac);
    assert_eq!(arp.sender_ip, pinger.ipv4);
    assert_eq!(frame[0..6], frames::BROADCAST);
    assert_eq!(frame[6..12], pinger.mac);

    // And it can send: a frame from the watcher reaches the pinger's socket.
    let psock = pinger.packet_socket().unwrap();
    let tap = watcher.packet_socket().unwrap();
    let probe = frames::arp_request(&watcher.mac, watcher.ipv4, t.ipv4_for(222));
    sock.send(&probe).unwrap();
    let got = psock
        .recv_matching(Duration::from_secs(2), |f| f == probe.as_slice())
        .expect("frame sent by the watcher arrives at the pinger");
    assert_eq!(got, probe);
    // Another socket on the sender sees the frame as outgoing (the sending socket itself does not).
    let (own, outgoing) = loop {
        let (f, out) = tap
            .recv_with_direction(Duration::from_secs(1))
            .unwrap()
            .expect("own frame seen");
        if f == probe {
            break (f, out);
        }
    };
    assert!(outgoing && own == probe);
}

#[test]
fn arp_observer_sees_the_address_move_without_overlap() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut t = Topology::new();
    let client = t.add_host("client");
    let d1 = t.add_host("d1");
    let d2 = t.add_host("d2");
    let bystander = t.add_host("bystander");
    let vip = t.ipv4_for(200);

    d1.add_addr(&format!("{vip}/32")).unwrap();
    assert!(d1.has_addr(vip) && !d2.has_addr(vip));
    // The bystander learns the VIP at d1 (and will only move on with the gratuitous ARP).
    assert!(bystander.ping(vip));
    assert_eq!(bystander.neigh(vip), Some(d1.mac_str()));

    let obs = ArpObserver::start(&client, vip).unwrap();
    assert!(
        obs.wait_answering(&d1.mac, Duration::from_secs(2)),
        "d1 answers"
    );
    std::thread::sleep(Duration::from_millis(60));

    d1.del_addr(vip).unwrap();
    d2.add_addr(&format!("{vip}/32")).unwrap();
    assert!(!d1.has_addr(vip) && d2.has_addr(vip));
    assert_eq!(
        bystander.neigh(vip),
        Some(d1.mac_str()),
        "nothing but the gratuitous ARP may move the bystander's entry"
    );
    let sock = in_netns(&d2.ns, || PacketSocket::open("eth0"))
        .unwrap()
        .unwrap();
    sock.send(&frames::gratuitous_arp(&d2.mac, vip)).unwrap();

    assert!(
        obs.wait_answering(&d2.mac, Duration::from_secs(2)),
        "d2 answers"
    );
    std::thread::sleep(Duration::from_millis(60));
    let period = obs.period();
    let probes = obs.probes();
    let replies = obs.stop();
    // A handful is enough: what matters is that both answer intervals were seen below.
    assert!(probes >= 5, "only {probes} probes");

    let intervals = answer_intervals(&replies, period);
    assert_eq!(
        intervals.iter().map(|i| i.mac).collect::<Vec<_>>(),
        [d1.mac, d2.mac],
        "{intervals:?}"
    );
    assert!(
        intervals[0].replies >= 5 && intervals[1].replies >= 5,
        "{intervals:?}"
    );
    assert!(intervals[0].to < intervals[1].from, "{intervals:?}");
    assert!(overlaps(&intervals).is_empty(), "{intervals:?}");
    assert_eq!(total_overlap(&intervals), Duration::ZERO);
    let gaps = silent_gaps(&intervals);
    assert_eq!(gaps, [(intervals[0].to, intervals[1].from)]);
    assert!(
        gaps[0].1 - gaps[0].0 < Duration::from_secs(1),
        "handover took {gaps:?}"
    );

    let moved = poll(Duration::from_secs(1), || {
        (bystander.neigh(vip)? == d2.mac_str()).then_some(())
    });
    assert!(
        moved.is_some(),
        "gratuitous ARP did not move the bystander's entry: {:?}",
        bystander.neigh(vip)
    );
    assert!(bystander.ping(vip));
}

#[test]
fn intervals_and_overlaps_from_synthetic_replies() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let p = Duration::from_millis(5);
    let ms = Duration::from_millis;
    let (m1, m2) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    // m1 answers 0..=20 ms, pauses (more than 3 periods), answers again 40..=45; m2 18..=30 ms.
    let replies = vec![
        (ms(0), m1),
        (ms(5), m1),
        (ms(10), m1),
        (ms(15), m1),
        (ms(18), m2),
        (ms(20), m1),
        (ms(23), m2),
        (ms(30), m2),
        (ms(40), m1),
        (ms(45), m1),
    ];
    let iv = answer_intervals(&replies, p);
    let want = vec![
        Interval {
            mac: m1,
            from: ms(0),
            to: ms(20),
            replies: 5,
        },
        Interval {
            mac: m2,
            from: ms(18),
            to: ms(30),
            replies: 3,
        },
        Interval {
            mac: m1,
            from: ms(40),
            to: ms(45),
            replies: 2,
        },
    ];
    assert_eq!(iv, want);
    let ov = overlaps(&iv);
    assert_eq!(ov.len(), 1, "{ov:?}");
    assert_eq!((ov[0].from, ov[0].to), (ms(18), ms(20)));
    assert_eq!(total_overlap(&iv), ms(2));
    assert_eq!(silent_gaps(&iv), [(ms(30), ms(40))]);

    // A gap of exactly 3 periods does not end an interval; more does.
    let edge = answer_intervals(&[(ms(0), m1), (ms(15), m1), (ms(31), m1)], p);
    assert_eq!(edge.len(), 2, "{edge:?}");
    assert_eq!((edge[0].from, edge[0].to), (ms(0), ms(15)));
    // A single stray reply inside another MAC's interval is an overlap of zero length.
    let stray = answer_intervals(&[(ms(0), m1), (ms(5), m1), (ms(10), m1), (ms(5), m2)], p);
    let ov = overlaps(&stray);
    assert_eq!(ov.len(), 1);
    assert_eq!(ov[0].duration(), Duration::ZERO);
    assert!(answer_intervals(&[], p).is_empty());
}

#[test]
fn block_tcp_ports_cuts_that_port_only_and_unblock_restores_it() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut t = Topology::new();
    let a = t.add_host("a");
    let b = t.add_host("b");
    let raft: SocketAddr = (b.ipv4, 7000).into();
    let other: SocketAddr = (b.ipv4, 7001).into();
    for addr in [raft, other] {
        echo_server(b.in_ns(|| TcpListener::bind(addr)).unwrap().unwrap());
    }
    let quick = Duration::from_millis(300);

    let mut conn = connect_from(&a, raft, Duration::from_secs(2)).unwrap();
    assert_eq!(
        echo(&mut conn, b"before", Duration::from_secs(2)).unwrap(),
        b"before"
    );

    b.block_tcp_ports(&[7000]).unwrap();
    let listed = b
        .run(&["nft", "list", "table", "inet", netns::NFT_TABLE])
        .unwrap();
    assert!(listed.contains("7000"), "{listed}");
    assert!(
        connect_from(&a, raft, quick).is_err(),
        "new connection to the blocked port"
    );
    assert!(
        echo(&mut conn, b"during", quick).is_err(),
        "established connection still passes data"
    );
    let mut side = connect_from(&a, other, Duration::from_secs(2)).expect("port 7001 unaffected");
    assert_eq!(echo(&mut side, b"x", Duration::from_secs(2)).unwrap(), b"x");
    assert!(
        a.ping(b.ipv4) && b.ping(a.ipv4),
        "ping works during the partition"
    );
    assert_eq!(
        a.neigh(b.ipv4),
        Some(b.mac_str()),
        "ARP works during the partition"
    );

    b.unblock().unwrap();
    b.unblock().unwrap(); // idempotent
    let mut fresh = connect_from(&a, raft, Duration::from_secs(2)).expect("connect after unblock");
    assert_eq!(
        echo(&mut fresh, b"after", Duration::from_secs(2)).unwrap(),
        b"after"
    );
    // The established connection recovers by retransmission.
    assert_eq!(
        read_exact_within(&mut conn, 6, Duration::from_secs(5)).unwrap(),
        b"during"
    );
    assert!(a.ping(b.ipv4));
}

#[test]
fn drop_kills_processes_and_deletes_every_namespace() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut t = Topology::new();
    let a = t.add_host("a");
    t.add_host("b");
    let prefix = format!("lvs-{}-", t.tag());
    let marker = std::path::Path::new(netns::MARKER_DIR).join(t.tag());
    let mine = |l: &[String]| {
        let mut v: Vec<String> = l
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .cloned()
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        mine(&netns_list()),
        [
            format!("{prefix}a"),
            format!("{prefix}b"),
            format!("{prefix}sw")
        ]
    );
    assert!(marker.exists());
    let mut child = a.spawn(&["sleep", "60"]);
    let mut other = a.cmd("sleep").arg("60").spawn().unwrap();
    // Wait until `ip netns exec` has exec'd both sleeps inside the namespace.
    let in_ns = || {
        let out = std::process::Command::new("ip")
            .args(["netns", "pids", &a.ns])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .count()
    };
    assert!(poll(Duration::from_secs(2), || (in_ns() >= 2).then_some(())).is_some());

    drop(t);
    assert!(mine(&netns_list()).is_empty(), "{:?}", netns_list());
    assert!(!marker.exists());
    for c in [&mut child, &mut other] {
        let st = poll(Duration::from_secs(2), || c.try_wait().unwrap()).expect("killed");
        assert!(!st.success());
    }

    // Also when the test panics.
    let tag = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let mut t = Topology::new();
        *tag.lock().unwrap() = t.tag().to_string();
        t.add_host("x");
        panic!("test failure inside a topology");
    });
    assert!(r.is_err());
    let prefix = format!("lvs-{}-", tag.lock().unwrap());
    assert!(
        !netns_list().iter().any(|n| n.starts_with(&prefix)),
        "{:?}",
        netns_list()
    );
}

#[test]
fn cleanup_stale_removes_namespaces_of_dead_owners_only() {
    let _turn = lvs_tests::serial::group("netns_topology");
    let mut live = Topology::new();
    live.add_host("h");
    // A leftover of a dead process: marker with a pid that cannot exist, and a namespace.
    let tag = (0..=0xffffu32)
        .rev()
        .map(|x| format!("{x:04x}"))
        .find(|t| {
            !std::path::Path::new(netns::MARKER_DIR).join(t).exists()
                && !netns_list()
                    .iter()
                    .any(|n| n.starts_with(&format!("lvs-{t}-")))
        })
        .unwrap();
    let marker = std::path::Path::new(netns::MARKER_DIR).join(&tag);
    std::fs::write(&marker, "4294967295 1\n").unwrap();
    let stale = format!("lvs-{tag}-sw");
    let out = std::process::Command::new("ip")
        .args(["netns", "add", &stale])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    Topology::cleanup_stale();
    let list = netns_list();
    assert!(!list.contains(&stale), "stale namespace kept: {list:?}");
    assert!(!marker.exists());
    for ns in live.namespaces() {
        assert!(list.contains(ns), "live namespace {ns} deleted: {list:?}");
    }
    assert!(live.hosts()[0].ping(live.hosts()[0].ipv4));
}
