//! Scenario 6, agents: `realserver-agent setup --mode tun`, then agents on both real servers feed
//! load-informed weights (a slow handler, a dead agent), health checks quiesce and restore a real
//! server, and drain/ready, all read back with ipvsadm.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cluster_core::model::{Config, Forward, Scheduler, Service, ServiceKey};

use crate::bin;
use crate::traffic::{self, Held};

use super::common::real;
use super::fixture::{Lab, PORT};

/// HTTP port the lab's agent scenario serves (lab-tool http, with a switchable slow handler).
pub const HTTP_PORT: u16 = 8000;
/// Health-check timing of the agent scenario's HTTP service.
const CHECK_INTERVAL_MS: u32 = 500;
const CHECK_RISE: u32 = 2;
const CHECK_FALL: u32 = 3;

/// Processes the agent scenario started on the real servers, stopped when it ends.
struct RealProcs {
    agents: Vec<Option<std::process::Child>>,
    http: Vec<Option<std::process::Child>>,
}

impl Drop for RealProcs {
    fn drop(&mut self) {
        for c in self.agents.iter_mut().chain(self.http.iter_mut()).flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn stop(c: &mut Option<std::process::Child>) {
    if let Some(mut c) = c.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

impl Lab {
    fn agent_dir(&self, i: usize) -> std::path::PathBuf {
        self.c
            .dir
            .path()
            .join(format!("agent-{}", self.reals[i].name))
    }

    fn delay_file(&self, i: usize) -> std::path::PathBuf {
        self.agent_dir(i).join("delay-ms")
    }

    fn socket(&self, i: usize) -> String {
        self.agent_dir(i)
            .join("agent.sock")
            .to_str()
            .expect("utf-8 path")
            .to_string()
    }

    fn start_http(&self, i: usize) -> std::process::Child {
        let tool = bin("lab-tool");
        self.reals[i].spawn(&[
            tool.to_str().expect("utf-8 path"),
            "http",
            "--name",
            &self.reals[i].name,
            "--port",
            &HTTP_PORT.to_string(),
            "--delay-file",
            self.delay_file(i).to_str().expect("utf-8 path"),
        ])
    }

    /// Starts real server `i`'s agent: reports every second to all three directors, probing the
    /// HTTP service.
    fn start_agent(&self, i: usize) -> Result<std::process::Child> {
        let dir = self.agent_dir(i);
        fs::create_dir_all(&dir)?;
        let directors: Vec<String> = self
            .c
            .nodes
            .iter()
            .map(|n| format!("{:?}", n.api_addr()))
            .collect();
        let config = format!(
            "name = {:?}\ndirectors = [{}]\naddresses = [\"{}\"]\ninterval_ms = 1000\nports = [{PORT}, {HTTP_PORT}]\ncontrol_socket = {:?}\nstate_dir = {:?}\n\n[[probe]]\nkind = \"http\"\nport = {HTTP_PORT}\npath = \"/\"\ntimeout_ms = 900\n",
            self.reals[i].name,
            directors.join(", "),
            self.reals[i].ipv4,
            self.socket(i),
            dir.to_str().expect("utf-8 path"),
        );
        let path = dir.join("agent.toml");
        fs::write(&path, config)?;
        let agent = bin("realserver-agent");
        Ok(self.reals[i].spawn(&[
            agent.to_str().expect("utf-8 path"),
            "run",
            "--insecure",
            "--config",
            path.to_str().expect("utf-8 path"),
        ]))
    }

    /// Director `id`'s kernel weight for real server `i` of `service` (`TCP ADDR:PORT`), as
    /// `ipvsadm -Ln` shows it.
    fn kernel_weight(&self, id: u64, service: &str, i: usize, port: u16) -> Result<Option<u32>> {
        let t = self.table(id)?;
        Ok(t.services.get(service).and_then(|s| {
            s.dests
                .get(&format!("{}:{port}", self.reals[i].ipv4))
                .map(|d| d.weight)
        }))
    }

    /// Polls `ipvsadm -Ln` on director `id` until `ok(rs1 weight, rs2 weight)`; returns the time
    /// taken and the weights, and the lowest weight either had meanwhile.
    fn wait_weights(
        &self,
        id: u64,
        service: &str,
        port: u16,
        what: &str,
        timeout: Duration,
        ok: impl Fn(Option<u32>, Option<u32>) -> bool,
    ) -> Result<(Duration, Option<u32>, Option<u32>, u32)> {
        let start = Instant::now();
        let mut lowest = u32::MAX;
        loop {
            let a = self.kernel_weight(id, service, 0, port)?;
            let b = self.kernel_weight(id, service, 1, port)?;
            lowest = lowest.min(a.unwrap_or(0)).min(b.unwrap_or(0));
            if ok(a, b) {
                return Ok((start.elapsed(), a, b, lowest));
            }
            if start.elapsed() > timeout {
                let st = self
                    .c
                    .lvsctl_json(id, &["weights"])
                    .map(|v| v.to_string())
                    .unwrap_or_else(|e| e);
                bail!("{what}: not within {timeout:?}; ipvsadm weights rs1 {a:?} rs2 {b:?}; lvsctl weights: {st}");
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// `realserver-agent setup --mode tun` on a fresh real server (this kernel has ipip): the VIPs on
/// tunl0/ip6tnl0 with the ARP and rp_filter sysctls, idempotent, and `teardown` undoes it.
fn tun_setup(lab: &mut Lab) -> Result<String> {
    let h = lab.c.topo.add_host("rs3");
    let agent = bin("realserver-agent");
    let agent = agent.to_str().expect("utf-8 path");
    let state = lab.c.dir.path().join("rs3-setup.json");
    let state = state.to_str().expect("utf-8 path");
    let (v4, v6) = (lab.c.vip4.to_string(), lab.c.vip6.to_string());
    let setup = [
        agent,
        "setup",
        "--mode",
        "tun",
        "--vip",
        &v4,
        "--vip",
        &v6,
        "--state-file",
        state,
    ];
    let sysctl = |k: &str| -> Result<String> {
        Ok(h.run(&["cat", &format!("/proc/sys/net/ipv4/conf/{k}")])?
            .trim()
            .to_string())
    };
    let before = sysctl("all/arp_ignore")?;
    let first = h.run(&setup)?;
    let tunl0 = h.run(&["ip", "-o", "addr", "show", "dev", "tunl0"])?;
    let ip6tnl0 = h.run(&["ip", "-o", "addr", "show", "dev", "ip6tnl0"])?;
    let got = [
        sysctl("all/arp_ignore")?,
        sysctl("all/arp_announce")?,
        sysctl("tunl0/arp_ignore")?,
        sysctl("tunl0/rp_filter")?,
        sysctl("all/rp_filter")?,
    ];
    if !tunl0.contains(&format!("{v4}/32"))
        || !ip6tnl0.contains(&format!("{v6}/128"))
        || got != ["1", "2", "1", "0", "0"]
    {
        bail!("setup --mode tun left tunl0: {tunl0:?} ip6tnl0: {ip6tnl0:?} sysctls (arp_ignore, arp_announce, tunl0 arp_ignore, tunl0 rp_filter, all rp_filter) {got:?}; it said:\n{first}");
    }
    let again = h.run(&setup)?;
    if !again.trim_start().starts_with("unchanged") {
        bail!("a second setup changed something:\n{again}");
    }
    let down = h.run(&[agent, "teardown", "--state-file", state])?;
    let tunl0 = h.run(&["ip", "-o", "addr", "show", "dev", "tunl0"])?;
    if tunl0.contains(&v4) || sysctl("all/arp_ignore")? != before {
        bail!(
            "teardown left tunl0: {tunl0:?}, arp_ignore {}; it said:\n{down}",
            sysctl("all/arp_ignore")?
        );
    }
    Ok(format!(
        "setup --mode tun: {} changes, second run unchanged, teardown undid {}",
        first.lines().count(),
        down.lines().count()
    ))
}

/// The agent scenario's config: the HTTP service under the latency policy with an HTTP health
/// check (wlc, DR, configured weights 100:100), and a static TCP service on port 80 (weights 1:1)
/// for the long-lived connections of the drain check.
pub fn agents_config(lab: &Lab) -> Config {
    use cluster_core::model::{CheckKind, HealthCheck, Protocol, WeightPolicy};
    let mut c = Config::default();
    let v4 = IpAddr::V4(lab.c.vip4);
    let mut http = Service::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: v4,
        port: HTTP_PORT,
    });
    http.scheduler = Scheduler::Wlc;
    http.weight_policy = WeightPolicy::Latency;
    let mut hc = HealthCheck::new(CheckKind::Http);
    hc.interval_ms = CHECK_INTERVAL_MS;
    hc.timeout_ms = 2000;
    hc.rise = CHECK_RISE;
    hc.fall = CHECK_FALL;
    hc.path = Some("/".into());
    http.health_check = Some(hc);
    let mut tcp = Service::new(ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: v4,
        port: PORT,
    });
    tcp.scheduler = Scheduler::Wlc;
    for r in &lab.reals {
        http.reals
            .push(real(&r.ipv4.to_string(), HTTP_PORT, 100, Forward::Dr));
        tcp.reals
            .push(real(&r.ipv4.to_string(), PORT, 1, Forward::Dr));
    }
    c.services.insert(http.key, http);
    c.services.insert(tcp.key, tcp);
    c
}

/// Scenario 6, with agents on both real servers:
/// - rs1's handler turns slow: its kernel weight falls within a few control periods and new
///   connections shift to rs2;
/// - rs1's agent is killed: its weight climbs back toward the static weight, never through 0;
/// - rs1's HTTP service stops: the health check quiesces it (weight 0) within fall × interval,
///   and restores it after rise × interval once it is back;
/// - `realserver-agent drain` on rs2: weight 0 in both services, its held connections keep
///   working and new ones go to rs1; `ready` brings it back.
///
/// It starts with `realserver-agent setup --mode tun` on a fresh host. With `show`, prints `lvsctl agents`, `lvsctl weights` and `ipvsadm -Ln` at the end, while the
/// agents and services still run (the demo).
pub fn scenario_agents(lab: &mut Lab, show: bool) -> Result<String> {
    let mut report = vec![tun_setup(lab)?];
    for i in 0..lab.reals.len() {
        fs::create_dir_all(lab.agent_dir(i))?;
        fs::write(lab.delay_file(i), "0")?;
    }
    let mut procs = RealProcs {
        agents: Vec::new(),
        http: Vec::new(),
    };
    for i in 0..lab.reals.len() {
        procs.http.push(Some(lab.start_http(i)));
        procs.agents.push(Some(lab.start_agent(i)?));
    }
    let config = agents_config(lab);
    lab.apply(&config)?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    let svc = format!("TCP {}:{HTTP_PORT}", lab.c.vip4);
    let tcp_svc = format!("TCP {}:{PORT}", lab.c.vip4);

    agents_reporting(lab, leader, &svc, &mut report)?;
    let w1 = slow_handler(lab, leader, &svc, &mut report)?;
    agent_killed(lab, leader, &svc, w1, &mut procs, &mut report)?;
    service_stopped(lab, leader, &svc, &mut procs, &mut report)?;
    drain_and_ready(lab, leader, &svc, &tcp_svc, &mut report)?;
    if show {
        println!("\n==> lvsctl agents and lvsctl weights (configured beside effective weights, health, agent)");
        print!("{}", lab.c.lvsctl_ok(&["agents"]));
        print!("{}", lab.c.lvsctl_ok(&["weights"]));
        println!(
            "\n==> ipvsadm -Ln in director {leader}'s namespace: the weights the leader programmed"
        );
        print!("{}", lab.ipvsadm(leader, &["-Ln"])?);
    }
    drop(procs);
    Ok(report.join("; "))
}

/// Both agents report and their weights leave the blackout with equal latency.
fn agents_reporting(lab: &Lab, leader: u64, svc: &str, report: &mut Vec<String>) -> Result<()> {
    let start = Instant::now();
    loop {
        let v = lab
            .c
            .lvsctl_json(leader, &["weights"])
            .map_err(|e| anyhow!(e))?;
        let phases: Vec<String> = v["reals"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|r| r["policy"] == "latency")
                    .map(|r| r["phase"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        if phases.len() == 2 && phases.iter().all(|p| p == "fresh") {
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("agents did not both report within 60 s: phases {phases:?}: {v}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (_, a, b, _) = lab.wait_weights(
        leader,
        svc,
        HTTP_PORT,
        "initial weights",
        Duration::from_secs(30),
        |a, b| a.is_some() && b.is_some(),
    )?;
    report.push(format!(
        "agents reporting after {:.1} s, weights rs1 {} rs2 {}",
        start.elapsed().as_secs_f64(),
        a.unwrap_or(0),
        b.unwrap_or(0)
    ));
    Ok(())
}

/// Step 1: rs1's handler turns slow, its weight falls and new connections shift to rs2. Returns
/// rs1's weight then.
fn slow_handler(lab: &Lab, leader: u64, svc: &str, report: &mut Vec<String>) -> Result<u32> {
    fs::write(lab.delay_file(0), "300")?;
    let (took, a, b, _) = lab.wait_weights(
        leader,
        svc,
        HTTP_PORT,
        "rs1's weight falling below half of rs2's after its handler slowed to 300 ms",
        Duration::from_secs(60),
        |a, b| matches!((a, b), (Some(a), Some(b)) if a > 0 && a * 2 <= b),
    )?;
    let (w1, w2) = (a.unwrap_or(0), b.unwrap_or(0));
    let to = lab.vip_addr(HTTP_PORT);
    let n = 30;
    let seen = lab.c.client.in_ns(move || {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..n {
            let who = traffic::http_name(to, Duration::from_secs(5))
                .unwrap_or_else(|e| format!("error: {e:#}"));
            *seen.entry(who).or_default() += 1;
        }
        seen
    })?;
    let (c1, c2) = (
        seen.get("rs1").copied().unwrap_or(0),
        seen.get("rs2").copied().unwrap_or(0),
    );
    if c1 + c2 != n || c1 * 2 > c2 {
        bail!("after rs1 slowed (weights {w1}:{w2}), {n} new connections went {seen:?}; expected at least two thirds to rs2");
    }
    report.push(format!(
        "rs1 slowed to 300 ms: weight {w1} vs rs2 {w2} after {:.1} s, new connections rs1:rs2 = {c1}:{c2}",
        took.as_secs_f64()
    ));
    Ok(w1)
}

/// Step 2: rs1's agent is killed; its weight climbs back from `w1` toward the static share,
/// never through 0. The agent is restarted at the end.
fn agent_killed(
    lab: &Lab,
    leader: u64,
    svc: &str,
    w1: u32,
    procs: &mut RealProcs,
    report: &mut Vec<String>,
) -> Result<()> {
    stop(&mut procs.agents[0]);
    // Equal configured weights: the static share is rs2's weight. The decay (τ 60 s after a
    // 5 s hold) must close at least half of the gap.
    let (took, a, b, lowest) = lab.wait_weights(
        leader,
        svc,
        HTTP_PORT,
        "rs1's weight climbing back toward the static share after its agent died",
        Duration::from_secs(150),
        |a, b| matches!((a, b), (Some(a), Some(b)) if a * 2 >= w1 + b),
    )?;
    if lowest == 0 {
        bail!("a weight went to 0 while rs1's agent was gone");
    }
    report.push(format!(
        "rs1's agent killed: weight back to {} (rs2 {}) after {:.1} s, lowest {lowest}",
        a.unwrap_or(0),
        b.unwrap_or(0),
        took.as_secs_f64()
    ));
    fs::write(lab.delay_file(0), "0")?;
    procs.agents[0] = Some(lab.start_agent(0)?);
    Ok(())
}

/// Step 3: rs1's HTTP service stops: quiesced by the health check, restored once it is back.
fn service_stopped(
    lab: &Lab,
    leader: u64,
    svc: &str,
    procs: &mut RealProcs,
    report: &mut Vec<String>,
) -> Result<()> {
    stop(&mut procs.http[0]);
    let fall_bound =
        Duration::from_millis((CHECK_FALL * CHECK_INTERVAL_MS) as u64) + Duration::from_secs(3);
    let (down_took, _, _, _) = lab.wait_weights(
        leader,
        svc,
        HTTP_PORT,
        "rs1 quiesced by its health check",
        fall_bound,
        |a, _| a == Some(0),
    )?;
    procs.http[0] = Some(lab.start_http(0));
    let rise_bound =
        Duration::from_millis((CHECK_RISE * CHECK_INTERVAL_MS) as u64) + Duration::from_secs(3);
    let (up_took, a, _, _) = lab.wait_weights(
        leader,
        svc,
        HTTP_PORT,
        "rs1 restored by its health check",
        rise_bound,
        |a, _| a.is_some_and(|a| a > 0),
    )?;
    report.push(format!(
        "rs1's service stopped: weight 0 after {:.1} s (fall {CHECK_FALL} × {CHECK_INTERVAL_MS} ms), restored to {} {:.1} s after it came back (rise {CHECK_RISE})",
        down_took.as_secs_f64(),
        a.unwrap_or(0),
        up_took.as_secs_f64()
    ));
    Ok(())
}

/// Step 4: `realserver-agent drain` on rs2: weight 0 in both services, held connections keep
/// working, new ones go to rs1; `ready` brings it back.
fn drain_and_ready(
    lab: &Lab,
    leader: u64,
    svc: &str,
    tcp_svc: &str,
    report: &mut Vec<String>,
) -> Result<()> {
    let to80 = lab.vip_addr(PORT);
    let mut held: Vec<Held> = lab.c.client.in_ns(move || {
        (0..10)
            .map(|_| Held::open(to80, Duration::from_secs(5)))
            .collect::<Result<Vec<_>>>()
    })??;
    let on_rs2 = held.iter().filter(|h| h.server == "rs2").count();
    if on_rs2 == 0 {
        bail!("none of 10 held connections went to rs2 before the drain");
    }
    let agent = bin("realserver-agent");
    let sock = lab.socket(1);
    let out = lab.reals[1].run(&[
        agent.to_str().expect("utf-8 path"),
        "drain",
        "--socket",
        &sock,
    ])?;
    let (drain_took, _, _, _) = lab.wait_weights(
        leader,
        tcp_svc,
        PORT,
        "rs2 drained to weight 0",
        Duration::from_secs(10),
        |_, b| b == Some(0),
    )?;
    if lab.kernel_weight(leader, svc, 1, HTTP_PORT)? != Some(0) {
        bail!("rs2 drained but still weighted in {svc}");
    }
    // New connections come from an address of the client's that no earlier scenario used: the
    // kernel keeps sending a reused client port to the real server of its old, closing entry.
    let fresh_src = lab.c.topo.ipv4_for(77);
    lab.c.client.run(&[
        "ip",
        "addr",
        "replace",
        &format!("{fresh_src}/24"),
        "dev",
        "eth0",
    ])?;
    let IpAddr::V4(vip4) = to80.ip() else {
        unreachable!("the lab's VIP is IPv4")
    };
    let to80v4 = std::net::SocketAddrV4::new(vip4, PORT);
    let fresh: Vec<String> = lab.c.client.in_ns(move || {
        (0..10)
            .map(|_| traffic::tcp_hello_from(fresh_src, to80v4, Duration::from_secs(5)))
            .collect::<Result<Vec<_>>>()
    })??;
    if fresh.iter().any(|n| n != "rs1") {
        bail!("new connections during the drain went to {fresh:?}; expected only rs1");
    }
    for h in held.iter_mut() {
        h.ping(Duration::from_secs(5))
            .with_context(|| format!("held connection to {} during the drain", h.server))?;
    }
    lab.reals[1].run(&[
        agent.to_str().expect("utf-8 path"),
        "ready",
        "--socket",
        &sock,
    ])?;
    lab.wait_weights(
        leader,
        tcp_svc,
        PORT,
        "rs2 ready again",
        Duration::from_secs(10),
        |_, b| b.is_some_and(|b| b > 0),
    )?;
    report.push(format!(
        "rs2 drained ({}): weight 0 after {:.1} s, {on_rs2} held connections kept working, 10 new ones all to rs1; ready restored it",
        out.trim().lines().last().unwrap_or("").replace("; ", ", "),
        drain_took.as_secs_f64()
    ));
    Ok(())
}
