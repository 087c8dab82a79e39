//! VIP ownership on the netns topology: the elected leader, and only it, holds the VIPs.

use std::time::Duration;

use lvs_tests::vip_cluster::NetCluster;

#[test]
fn only_the_leader_holds_the_vips() {
    let _turn = lvs_tests::serial::group("vip_smoke");
    let mut c = NetCluster::start(3, "default");
    let leader = c.wait_leader(Duration::from_secs(20));
    c.set_vips();
    c.wait_holder(leader, Duration::from_secs(5));
    // The client resolves the VIP to the leader's MAC.
    assert!(c.client.ping(c.vip4), "client cannot ping the IPv4 VIP");
    let mac = c.client.neigh(c.vip4);
    assert_eq!(mac.as_deref(), Some(c.node(leader).host.mac_str().as_str()));
}

#[test]
fn vips_move_when_the_leader_is_killed() {
    let _turn = lvs_tests::serial::group("vip_smoke");
    let mut c = NetCluster::start(3, "default");
    let leader = c.wait_leader(Duration::from_secs(20));
    c.set_vips();
    c.wait_holder(leader, Duration::from_secs(5));
    // The client has the VIP in its cache (a gratuitous ARP updates entries, it creates none).
    assert!(c.client.ping(c.vip4));
    let t = std::time::Instant::now();
    c.kill(leader);
    let next = c.wait_leader(Duration::from_secs(10));
    assert_ne!(next, leader);
    c.wait_holder(next, Duration::from_secs(5));
    eprintln!(
        "VIP moved from director {leader} to {next} in {:?}",
        t.elapsed()
    );
    // The client's cache follows the announcement.
    let want = c.node(next).host.mac_str();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while c.client.neigh(c.vip4).as_deref() != Some(want.as_str()) {
        assert!(
            std::time::Instant::now() < deadline,
            "client still maps the VIP to {:?}",
            c.client.neigh(c.vip4)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A director killed with SIGKILL cannot remove its VIPs itself; its guard process does.
#[test]
fn killed_leader_namespace_loses_the_vips() {
    let _turn = lvs_tests::serial::group("vip_smoke");
    let mut c = NetCluster::start(3, "default");
    let leader = c.wait_leader(Duration::from_secs(20));
    c.set_vips();
    c.wait_holder(leader, Duration::from_secs(5));
    let host = c.node(leader).host.clone();
    let t = std::time::Instant::now();
    c.kill(leader);
    while host.has_addr(c.vip4) || host.has_addr(c.vip6) {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "killed director's namespace still holds a VIP after 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    eprintln!("guard removed the VIPs {:?} after the kill", t.elapsed());
}

/// Another host with the VIP configured answers the leader's probe; status reports the conflict.
#[test]
fn address_conflict_is_reported() {
    let _turn = lvs_tests::serial::group("vip_smoke");
    let mut c = NetCluster::start(3, "default");
    let leader = c.wait_leader(Duration::from_secs(20));
    // The client claims the address before the cluster takes it.
    c.client
        .add_addr(&format!("{}/24", c.vip4))
        .expect("client takes the VIP address");
    c.set_vips();
    c.wait_holder(leader, Duration::from_secs(5));
    let want = c.client.mac_str();
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    loop {
        let out = c
            .client
            .cmd(lvs_tests::bin("lvsctl").to_str().unwrap())
            .env("LVSCTL_INSECURE", "1")
            .args([
                "--endpoints",
                &c.node(leader).api_addr(),
                "--output",
                "json",
            ])
            .args(["cluster", "status"])
            .output()
            .expect("lvsctl");
        let out = String::from_utf8_lossy(&out.stdout).into_owned();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        let errors: Vec<String> = v["vips"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["error"].as_str().map(String::from))
            .collect();
        if v["node_id"].as_u64() == Some(leader) && errors.iter().any(|e| e.contains(&want)) {
            break;
        }
        if std::time::Instant::now() > deadline {
            c.dump_logs();
            panic!("no conflict reported naming {want}: {out}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
