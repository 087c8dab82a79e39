//! Scenario 3, traffic: the client reaches the real servers through the VIP (DR over TCP, UDP and
//! IPv6, and NAT) spread as wrr says, and the leader's counters (`lvsctl list --stats` and
//! `/metrics`) agree with the traffic and with `ipvsadm --stats`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cluster_core::model::Scheduler;

use crate::metrics::{scrape, Metrics};
use crate::traffic;

use super::common::traffic_config;
use super::fixture::{Lab, METRICS_PORT, NAT_PORT, PORT, UDP_PORT};
use super::ipvsadm::IpvsadmTable;

/// Scenario 3: the client reaches the real servers through the VIP in DR (TCP, UDP, IPv6) and NAT, spread
/// as wrr with weights 1:3 says.
pub fn scenario_traffic(lab: &mut Lab) -> Result<String> {
    let config = traffic_config(lab, Scheduler::Wrr, [1, 3]);
    lab.apply(&config)?;
    lab.wait_tables(&IpvsadmTable::expected(&config), Duration::from_secs(30))?;
    let mut report = Vec::new();
    let n = 40;
    for (what, to, udp) in [
        ("DR tcp", lab.vip_addr(PORT), false),
        ("DR udp", lab.vip_addr(UDP_PORT), true),
        ("DR tcp6", lab.vip6_addr(PORT), false),
        ("NAT tcp", lab.vip_addr(NAT_PORT), false),
    ] {
        let (seen, failed) = lab.c.client.in_ns(move || traffic::spread(to, n, udp))?;
        let a = seen.get("rs1").copied().unwrap_or(0);
        let b = seen.get("rs2").copied().unwrap_or(0);
        if failed > 0 || a + b != n {
            bail!("{what} via {to}: {failed} of {n} failed, answers {seen:?}");
        }
        // wrr 1:3 is deterministic: exactly a quarter to rs1 (within one round).
        if a.abs_diff(n / 4) > 1 {
            bail!(
                "{what} via {to}: rs1 {a}, rs2 {b}; wrr 1:3 should give rs1 {}",
                n / 4
            );
        }
        report.push(format!("{what} rs1:rs2 = {a}:{b}"));
    }
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    let counted = wait_stats(
        lab,
        leader,
        &format!("tcp/{}", lab.vip_addr(PORT)),
        n as u64,
    )?;
    let scraped = metrics_during_traffic(lab, leader, n)?;
    Ok(format!(
        "{n} connections each, wrr weights 1:3: {}; lvsctl list --stats on director {leader}: {counted}; {scraped}",
        report.join(", ")
    ))
}

/// The leader's `/metrics`, scraped from the client namespace before, during and after a second
/// batch of `n` DR TCP connections through the VIP: the per-real-server connection and byte
/// counters grow by that batch (1:3, as wrr says), and equal `ipvsadm -Ln --stats --exact` once
/// the kernel has folded its per-CPU counters. A follower's scrape reads its own kernel table.
fn metrics_during_traffic(lab: &Lab, leader: u64, n: usize) -> Result<String> {
    let sc = Scraper::new(lab);
    let (after, delta, scrapes_during) = batch_counters(&sc, leader, n)?;
    check_weights_and_reconciler(&sc, &after)?;
    let kernel = kernel_counters(&sc, leader)?;
    let follower = check_follower_and_vips(&sc, leader, &after)?;
    let announced = |kind: &str| {
        after
            .get("lvs_director_vip_announcements_total", &[("kind", kind)])
            .unwrap_or(0.0)
    };
    Ok(format!(
        "leader /metrics scraped {} times during {n} more connections: connections +{}:+{}, bytes in +{}:+{}, equal to ipvsadm --stats --exact (connections {}:{}, bytes in {}:{}); VIPs held, {} GARP and {} NA sent; follower {follower} reads its own kernel",
        scrapes_during,
        delta[0][0],
        delta[1][0],
        delta[0][3],
        delta[1][3],
        kernel[0][0],
        kernel[1][0],
        kernel[0][3],
        kernel[1][3],
        announced("gratuitous_arp"),
        announced("unsolicited_na"),
    ))
}

/// [conns, inpkts, outpkts, inbytes, outbytes] of one real server.
type Row = [u64; 5];

/// Scrapes a director's `/metrics` from the client namespace, and reads the per-real-server
/// counters of the DR TCP service from a scrape or from `ipvsadm --stats --exact`.
struct Scraper<'a> {
    lab: &'a Lab,
    service: String,
    reals: Vec<String>,
}

impl<'a> Scraper<'a> {
    fn new(lab: &'a Lab) -> Scraper<'a> {
        Scraper {
            lab,
            service: format!("tcp/{}", lab.vip_addr(PORT)),
            reals: lab
                .reals
                .iter()
                .map(|r| format!("{}:{PORT}", r.ipv4))
                .collect(),
        }
    }

    fn get(&self, id: u64) -> Result<Metrics> {
        let a = SocketAddr::new(IpAddr::V4(self.lab.c.node(id).host.ipv4), METRICS_PORT);
        self.lab
            .c
            .client
            .in_ns(move || scrape(a))?
            .map_err(|e| anyhow!("director {id}: {e}"))
    }

    /// The counters per real server, as the metrics say.
    fn counters(&self, m: &Metrics) -> Result<Vec<Row>> {
        self.reals
            .iter()
            .map(|r| {
                let mut row = [0; 5];
                for (i, f) in [
                    "connections",
                    "packets_in",
                    "packets_out",
                    "bytes_in",
                    "bytes_out",
                ]
                .iter()
                .enumerate()
                {
                    let name = format!("lvs_director_ipvs_real_{f}_total");
                    row[i] = m
                        .get(&name, &[("service", &self.service), ("real", r)])
                        .ok_or_else(|| anyhow!("{name} for {r} missing"))?
                        as u64;
                }
                Ok(row)
            })
            .collect()
    }

    /// The same counters as ipvsadm reads them.
    fn ipvsadm(&self, id: u64) -> Result<Vec<Row>> {
        let text = self.lab.ipvsadm(
            id,
            &[
                "-Ln",
                "--stats",
                "--exact",
                "-t",
                &self.lab.vip_addr(PORT).to_string(),
            ],
        )?;
        self.reals
            .iter()
            .map(|r| {
                let line = text
                    .lines()
                    .map(|l| l.split_whitespace().collect::<Vec<_>>())
                    .find(|t| t.len() == 7 && t[0] == "->" && t[1] == r)
                    .ok_or_else(|| anyhow!("no line for {r} in ipvsadm --stats:\n{text}"))?;
                let mut row = [0u64; 5];
                for (i, v) in line[2..].iter().enumerate() {
                    row[i] = v
                        .parse()
                        .map_err(|_| anyhow!("ipvsadm --stats: {v:?} in {line:?}"))?;
                }
                Ok(row)
            })
            .collect()
    }
}

/// Sends the second batch of `n` connections while scraping the leader, and checks how its
/// counters grew. Returns the scrape after the batch, the growth per real server, and how many
/// scrapes ran during the batch.
fn batch_counters(sc: &Scraper, leader: u64, n: usize) -> Result<(Metrics, Vec<Row>, usize)> {
    let lab = sc.lab;
    let before = sc.get(leader)?;
    if before.get("lvs_director_ipvs_kernel_read_ok", &[]) != Some(1.0) {
        bail!("director {leader}: /metrics did not read the kernel table");
    }
    let c0 = sc.counters(&before)?;
    let to = lab.vip_addr(PORT);
    // The second batch runs while the leader is scraped.
    let (batch, during) = std::thread::scope(|s| {
        let t = s.spawn(|| lab.c.client.in_ns(move || traffic::spread(to, n, false)));
        let mut during = Vec::new();
        while !t.is_finished() {
            during.push(sc.get(leader));
            std::thread::sleep(Duration::from_millis(100));
        }
        (t.join().expect("traffic thread"), during)
    });
    let (seen, failed) = batch?;
    if failed > 0 {
        bail!("second batch via {to}: {failed} of {n} failed ({seen:?})");
    }
    let scrapes_during = during.len();
    for d in during {
        sc.counters(&d?)?;
    }
    let start = Instant::now();
    let (after, c1) = loop {
        let m = sc.get(leader)?;
        let c = sc.counters(&m)?;
        let grew: u64 = c.iter().zip(&c0).map(|(a, b)| a[0] - b[0]).sum();
        if grew >= n as u64 {
            break (m, c);
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!(
                "/metrics connections grew by {grew} after {n} more connections: {c0:?} -> {c:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let delta: Vec<Row> = c1
        .iter()
        .zip(&c0)
        .map(|(a, b)| std::array::from_fn(|i| a[i] - b[i]))
        .collect();
    if delta[0][0].abs_diff(n as u64 / 4) > 1 || delta[0][0] + delta[1][0] != n as u64 {
        bail!(
            "/metrics connections grew {}:{} for {n} connections at wrr 1:3",
            delta[0][0],
            delta[1][0]
        );
    }
    for (r, d) in sc.reals.iter().zip(&delta) {
        // At least a SYN (60 bytes) and an ACK per connection arrive at the director (DR: the
        // replies bypass it).
        if d[1] < 2 * d[0] || d[3] < 100 * d[0] {
            bail!(
                "{r}: {} connections but only {} packets / {} bytes in",
                d[0],
                d[1],
                d[3]
            );
        }
    }
    Ok((after, delta, scrapes_during))
}

/// The weights of both real servers (1:3 in the kernel, configured and effective) and a
/// successful full reconciler pass, in the scrape `after` the batch.
fn check_weights_and_reconciler(sc: &Scraper, after: &Metrics) -> Result<()> {
    for (i, (r, w)) in sc.reals.iter().zip([1.0, 3.0]).enumerate() {
        let l = [("service", sc.service.as_str()), ("real", r.as_str())];
        for name in [
            "lvs_director_ipvs_real_weight",
            "lvs_director_real_configured_weight",
            "lvs_director_real_effective_weight",
        ] {
            if after.get(name, &l) != Some(w) {
                bail!(
                    "{name} of real {i} {r}: {:?}, expected {w}",
                    after.get(name, &l)
                );
            }
        }
    }
    if after
        .get("lvs_director_reconcile_last_success_timestamp_seconds", &[])
        .is_none()
        || after.get("lvs_director_reconcile_runs_total", &[("kind", "full")]) < Some(1.0)
    {
        bail!("the reconciler's metrics show no successful full pass");
    }
    Ok(())
}

/// Polls until the leader's `/metrics` counters equal ipvsadm's (the kernel folds per-CPU
/// counters every 2 s); returns them.
fn kernel_counters(sc: &Scraper, leader: u64) -> Result<Vec<Row>> {
    let start = Instant::now();
    loop {
        let m = sc.counters(&sc.get(leader)?)?;
        let k = sc.ipvsadm(leader)?;
        if m == k {
            return Ok(k);
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("/metrics {m:?} and ipvsadm --stats --exact {k:?} differ for {:?} ([conns, inpkts, outpkts, inbytes, outbytes])", sc.reals);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A follower's scrape reads its own kernel and does not claim to lead; the VIP holder's
/// watchdog metrics show every VIP held and announced (GARP for IPv4, NA for IPv6). Returns the
/// follower.
fn check_follower_and_vips(sc: &Scraper, leader: u64, after: &Metrics) -> Result<u64> {
    let lab = sc.lab;
    let follower = lab
        .c
        .nodes
        .iter()
        .map(|d| d.id)
        .find(|id| *id != leader)
        .expect("a follower");
    let fm = sc.get(follower)?;
    if fm.get("lvs_director_ipvs_kernel_read_ok", &[]) != Some(1.0)
        || fm.get("lvs_director_raft_is_leader", &[]) != Some(0.0)
    {
        bail!("director {follower}: no kernel read or claims to lead in /metrics");
    }
    let vip4 = format!("{}/24", lab.c.vip4);
    let vip_held = |m: &Metrics| {
        m.get(
            "lvs_director_vip_held",
            &[("name", "web"), ("address", &vip4), ("interface", "eth0")],
        )
    };
    let announced = |kind: &str| {
        after
            .get("lvs_director_vip_announcements_total", &[("kind", kind)])
            .unwrap_or(0.0)
    };
    if vip_held(after) != Some(1.0)
        || vip_held(&fm) != Some(0.0)
        || announced("gratuitous_arp") < 2.0
        || announced("unsolicited_na") < 1.0
        || after.get("lvs_director_vip_acquisitions_total", &[]) < Some(3.0)
    {
        bail!(
            "VIP metrics: held {:?} on the leader, {:?} on director {follower}; announcements {} GARP, {} NA; acquisitions {:?}",
            vip_held(after),
            vip_held(&fm),
            announced("gratuitous_arp"),
            announced("unsolicited_na"),
            after.get("lvs_director_vip_acquisitions_total", &[])
        );
    }
    sc.counters(&fm).context("the follower's /metrics")?;
    Ok(follower)
}

/// Waits until director `id`'s STATS64 counters (through `lvsctl list --stats`) show `n`
/// connections for `service`, split 1:3 between its two real servers. The kernel folds its per-CPU
/// counters into these every 2 s.
fn wait_stats(lab: &Lab, id: u64, service: &str, n: u64) -> Result<String> {
    let start = Instant::now();
    loop {
        let v = lab
            .c
            .lvsctl_json(id, &["list", "--stats"])
            .map_err(|e| anyhow!(e))?;
        let svc = v["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["key"].as_str() == Some(service)))
            .cloned()
            .unwrap_or_default();
        let conns = svc["stats"]["conns"].as_u64().unwrap_or(0);
        let per_dest: Vec<u64> = svc["dests"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| d["stats"]["conns"].as_u64().unwrap_or(0))
                    .collect()
            })
            .unwrap_or_default();
        if conns >= n {
            let inpkts = svc["stats"]["inpkts"].as_u64().unwrap_or(0);
            if per_dest.len() != 2 || per_dest.iter().sum::<u64>() != conns || inpkts == 0 {
                bail!("{service}: {conns} connections, per real server {per_dest:?}, {inpkts} packets in: {svc}");
            }
            return Ok(format!(
                "{conns} connections ({}:{}), {inpkts} packets in",
                per_dest[0], per_dest[1]
            ));
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{service}: the counters show {conns} connections, expected {n}: {svc}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}
