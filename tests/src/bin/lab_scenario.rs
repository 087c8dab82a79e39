//! `lab-scenario [all|config|drift|traffic|failover|stateless|agents|import]...` runs the IPVS lab scenarios on
//! a kernel with IPVS (normally inside the VM, via `tests/lab/run.sh`); `lab-scenario
//! bench-reconcile [SERVICES]` runs the reconcile benchmark. Prints one `SCENARIO name: PASS|FAIL`
//! line per scenario and exits non-zero if any failed.

use std::fmt::Write as _;
use std::fs;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use cluster_core::model::SyncMode;
use lvs_tests::lab::{self, guarded, Lab};
use lvs_tests::netns::check_prerequisites;
use lvs_tests::vip_cluster::NetCluster;

const ALL: [&str; 7] = [
    "config",
    "drift",
    "traffic",
    "failover",
    "stateless",
    "agents",
    "import",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    check_prerequisites();
    if !std::path::Path::new("/proc/net/ip_vs").exists()
        && !std::process::Command::new("modprobe")
            .arg("ip_vs")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    {
        eprintln!("lab-scenario: this kernel has no IPVS (modprobe ip_vs failed); run it through tests/lab/run.sh");
        std::process::exit(2);
    }
    if args.first().map(String::as_str) == Some("demo") {
        if let Err(e) = guarded("demo", demo) {
            eprintln!("demo failed: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    if args.first().map(String::as_str) == Some("bench-reconcile") {
        let services = args
            .get(1)
            .map(|s| s.parse().expect("SERVICES is a number"))
            .unwrap_or(10_000);
        match bench_reconcile(services) {
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("bench-reconcile failed: {e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    let mut wanted: Vec<String> = if args.is_empty() || args.iter().any(|a| a == "all") {
        ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args
    };
    for w in &wanted {
        if !ALL.contains(&w.as_str()) {
            eprintln!(
                "lab-scenario: unknown scenario {w:?} (expected all, {}, or bench-reconcile)",
                ALL.join(", ")
            );
            std::process::exit(2);
        }
    }
    wanted.dedup();
    let started = Instant::now();
    let mut lab = match guarded("starting the lab", Lab::start) {
        Ok(l) => l,
        Err(e) => {
            println!("SCENARIO setup: FAIL {e:#}");
            std::process::exit(1);
        }
    };
    println!(
        "lab up in {:.1} s: directors d1-d3, real servers rs1 rs2, client; VIPs {} and {}",
        started.elapsed().as_secs_f64(),
        lab.c.vip4,
        lab.c.vip6
    );
    let mut failed = 0;
    for name in ALL.iter().filter(|n| wanted.iter().any(|w| w == *n)) {
        let t = Instant::now();
        let r = guarded(name, || match *name {
            "config" => lab::scenario_config(&mut lab),
            "drift" => lab::scenario_drift(&mut lab),
            "traffic" => lab::scenario_traffic(&mut lab),
            "failover" => lab::scenario_failover(&mut lab, SyncMode::Multicast),
            "stateless" => lab::scenario_failover(&mut lab, SyncMode::Stateless),
            "agents" => lab::scenario_agents(&mut lab, false),
            "import" => lab::scenario_import(&mut lab),
            _ => unreachable!(),
        });
        match r {
            Ok(line) => println!(
                "SCENARIO {name}: PASS ({:.1} s) {line}",
                t.elapsed().as_secs_f64()
            ),
            Err(e) => {
                failed += 1;
                lab.c.dump_logs();
                println!(
                    "SCENARIO {name}: FAIL ({:.1} s) {e:#}",
                    t.elapsed().as_secs_f64()
                );
            }
        }
        // Each later scenario needs three directors and a leader with the VIPs.
        if let Err(e) = guarded("re-settling", || {
            let l = lab.c.wait_leader(Duration::from_secs(60));
            lab.c.wait_holder(l, Duration::from_secs(30));
            Ok(())
        }) {
            println!("SCENARIO {name}: the cluster did not settle afterwards: {e:#}");
            failed += 1;
            break;
        }
    }
    println!(
        "lab scenarios: {} run, {failed} failed, {:.1} s",
        wanted.len(),
        started.elapsed().as_secs_f64()
    );
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

fn say(text: &str) {
    println!("\n==> {text}");
}

/// The narrated tour `make demo` shows: cluster up, services applied, traffic through the VIP,
/// leader killed, VIP moved, connections kept.
fn demo() -> Result<()> {
    say("Three directors, two DR real servers and a client, each in its own network namespace on one bridge");
    let mut lab = Lab::start()?;
    let leader = lab.c.wait_leader(Duration::from_secs(60));
    println!(
        "director {leader} leads and holds the VIPs {} and {}",
        lab.c.vip4, lab.c.vip6
    );
    say("Services applied with `lvsctl apply` (wrr, real servers weighted 1:3; DR, UDP, IPv6 and NAT)");
    let line = lab::scenario_traffic(&mut lab)?;
    print!("{}", lab.c.lvsctl_ok(&["list"]));
    say(&format!(
        "The kernel table in director {leader}'s namespace, read by ipvsadm -Ln"
    ));
    print!("{}", lab.ipvsadm(leader, &["-Ln"])?);
    say("Traffic from the client through the VIP");
    println!("{line}");
    say("The kernel's counters (STATS64) through lvsctl list --stats");
    print!(
        "{}",
        String::from_utf8_lossy(&lab.c.lvsctl_at(leader, &["list", "--stats"]).stdout)
    );
    say("20 long-lived connections through the VIP; the leader is killed (SIGKILL)");
    println!("{}", lab::scenario_failover(&mut lab, SyncMode::Multicast)?);
    let leader = lab.c.wait_leader(Duration::from_secs(60));
    say(&format!(
        "Synced connection entries on the new leader (director {leader}): lvsctl conns --sync"
    ));
    let out = lab.c.lvsctl_at(leader, &["conns", "--sync"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for l in text.lines().take(8) {
        println!("{l}");
    }
    say("Agents on both real servers report every second; the HTTP service on port 8000 takes its weights from their probe latency (weight_policy latency) and has an HTTP health check");
    let line = lab::scenario_agents(&mut lab, true)?;
    say("What the agents scenario checked");
    for part in line.split("; ") {
        println!("- {part}");
    }
    say("Demo complete");
    Ok(())
}

/// The reconcile benchmark: the same N services × 4 real servers programmed from an empty table by
/// `ipvsadm -R` (in the client's namespace) and by one director's reconciler (in its own).
fn bench_reconcile(services: usize) -> Result<String> {
    let mut c = NetCluster::start_custom(
        1,
        lab::LAB_RAFT,
        // No periodic pass during the measurement: only the change-triggered pass programs.
        "[ipvs]\nresync_ms = 3600000\n",
    );
    let d1 = c.nodes[0].host.clone();
    let client = c.client.clone();
    c.wait_leader(Duration::from_secs(60));

    let (rules, toml) = bench_tables(services);
    let objects = services * 5;
    let dir = c.dir.path().to_path_buf();
    let rules_file = dir.join("rules.ipvsadm");
    fs::write(&rules_file, &rules)?;
    let toml_file = dir.join("bench.toml");
    fs::write(&toml_file, &toml)?;

    // ipvsadm -R, the batch restore keepalived users reach for.
    let t = Instant::now();
    let out = client
        .cmd("sh")
        .arg("-c")
        .arg(format!("ipvsadm -R < {}", rules_file.display()))
        .output()?;
    let ipvsadm_s = t.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!("ipvsadm -R: {}", String::from_utf8_lossy(&out.stderr));
    }
    let lines = count_lines(&client)?;
    if lines != objects {
        bail!("ipvsadm -R left {lines} objects, expected {objects}");
    }
    client.run(&["ipvsadm", "-C"])?;
    println!("ipvsadm -R: {objects} objects in {ipvsadm_s:.2} s");

    // The director: apply through the cluster, then read how long the reconciler's pass took.
    let t = Instant::now();
    c.lvsctl_ok(&["apply", "-f", toml_file.to_str().expect("utf-8")]);
    let applied_in = t.elapsed();
    let status = wait_status(&c, |s| s["last_ops"].as_u64() == Some(objects as u64))?;
    let reconcile_s = status["last_pass_us"].as_f64().unwrap_or(f64::NAN) / 1e6;
    let change_s = status["last_change_us"].as_f64().unwrap_or(f64::NAN) / 1e6;
    let lines = count_lines(&d1)?;
    if lines != objects {
        bail!("the director programmed {lines} objects, expected {objects}");
    }
    println!(
        "director: lvsctl apply returned after {:.2} s; reconciler pass {reconcile_s:.2} s ({} ops), applied-to-programmed {change_s:.2} s",
        applied_in.as_secs_f64(),
        status["last_ops"]
    );

    // One weight among all those objects.
    let target = bench_addr(services / 2);
    let rip = bench_real(services / 2, 2);
    let before = status["incremental_passes"].as_u64().unwrap_or(0);
    let t = Instant::now();
    c.lvsctl_ok(&[
        "real",
        "edit",
        "-t",
        &format!("{target}:80"),
        "-r",
        &format!("{rip}:80"),
        "-w",
        "42",
    ]);
    let edit_took = t.elapsed();
    let mut polls = 0;
    let seen = loop {
        polls += 1;
        let out = d1.run(&["ipvsadm", "-Ln", "-t", &format!("{target}:80")])?;
        if out
            .lines()
            .any(|l| l.contains(&format!("{rip}:80")) && l.split_whitespace().nth(3) == Some("42"))
        {
            break t.elapsed();
        }
        if t.elapsed() > Duration::from_secs(30) {
            bail!("weight 42 never showed in ipvsadm:\n{out}");
        }
    };
    let status = wait_status(&c, |s| {
        s["incremental_passes"].as_u64().unwrap_or(0) > before && s["last_ops"].as_u64() == Some(1)
    })?;
    let single_ms = status["last_change_us"].as_f64().unwrap_or(f64::NAN) / 1e3;
    println!(
        "single weight change: {single_ms:.2} ms from the director applying it to the kernel ack; {:.0} ms from starting `lvsctl real edit` to ipvsadm showing it (lvsctl returned after {:.0} ms; {polls} ipvsadm reads)",
        seen.as_secs_f64() * 1e3,
        edit_took.as_secs_f64() * 1e3
    );
    Ok(format!(
        "RESULT reconcile_s={reconcile_s:.3} ipvsadm_restore_s={ipvsadm_s:.3} ratio={:.3} single_change_ms={single_ms:.2}",
        reconcile_s / ipvsadm_s
    ))
}

/// Service `i`'s VIP in the reconcile benchmark.
fn bench_addr(i: usize) -> String {
    format!("10.{}.{}.{}", 64 + i / 65536, (i / 256) % 256, i % 256)
}

/// Real server `j` of service `i` in the reconcile benchmark.
fn bench_real(i: usize, j: usize) -> String {
    format!(
        "10.200.{}.{}",
        (i * 4 + j) / 250 % 250,
        1 + (i * 4 + j) % 250
    )
}

/// The reconcile benchmark's `services` × 4 real servers as `ipvsadm -R` rules and as a config.
fn bench_tables(services: usize) -> (String, String) {
    let mut rules = String::new();
    let mut toml = String::new();
    for i in 0..services {
        let vip = bench_addr(i);
        let _ = writeln!(rules, "-A -t {vip}:80 -s wlc");
        let _ = writeln!(toml, "[[service]]\nkey = \"tcp/{vip}:80\"\n");
        for j in 0..4 {
            let rip = bench_real(i, j);
            let _ = writeln!(rules, "-a -t {vip}:80 -r {rip}:80 -g -w {}", j + 1);
            let _ = writeln!(
                toml,
                "[[service.reals]]\naddress = \"{rip}\"\nport = 80\nweight = {}\n",
                j + 1
            );
        }
    }
    (rules, toml)
}

/// Services plus destinations in the kernel table, as `ipvsadm -Ln` shows them.
fn count_lines(h: &lvs_tests::netns::Host) -> Result<usize> {
    let t = lab::IpvsadmTable::parse(&h.run(&["ipvsadm", "-Ln"])?);
    Ok(t.services.len() + t.services.values().map(|s| s.dests.len()).sum::<usize>())
}

fn wait_status(
    c: &NetCluster,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let start = Instant::now();
    loop {
        let last = c.lvsctl_json(1, &["ipvs"]);
        if let Ok(v) = &last {
            if done(&v["reconciler"]) {
                return Ok(v["reconciler"].clone());
            }
        }
        if start.elapsed() > Duration::from_secs(300) {
            return Err(anyhow!(
                "the reconciler did not report the expected pass: {last:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
