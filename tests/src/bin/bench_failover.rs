//! VIP failover benchmark on the netns topology: three directors (real processes, VIP management
//! on) in their own namespaces plus a client, for each timing profile (default, then fast).
//!
//! * Leader kills (`BENCH_KILLS`, default 20): with a stable leader holding the VIPs, the client
//!   probes the IPv4 VIP with ARP every few ms (`BENCH_ARP_PERIOD_MS`, default 3); the leader is
//!   killed with SIGKILL; the failover time runs from the kill to the first ARP reply for the VIP
//!   from another running director's MAC. The killed director is then restarted and the cluster
//!   must be stable again (every director agrees on the leader and has applied its revision, and
//!   only the leader's namespace holds the VIPs) before the next kill.
//! * Partitions (`BENCH_PARTITIONS`, default 5): the leader's Raft port is blocked with nftables
//!   (it still sees the LAN and answers ARP while it believes it may); the gap runs from the block
//!   to the first reply from the new leader's MAC, and the dual-ownership time is the overlap of
//!   the answer intervals of different MACs over the whole run (partition, handover and heal).
//!
//! Every wait has a deadline; a stuck iteration prints the directors' logs and exits non-zero.
//! The last two lines are `RESULT profile=default ...` and `RESULT profile=fast ...`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cluster_core::vip::frames::{fmt_mac, Mac};
use lvs_tests::netns::{answer_intervals, overlaps, total_overlap, ArpObserver};
use lvs_tests::vip_cluster::{NetCluster, RAFT_PORT};

/// Cluster start-up and first election.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Back to stable after a restart or a healed partition.
const STABLE_TIMEOUT: Duration = Duration::from_secs(20);
/// A new leader must answer for the VIP within this long.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the client keeps probing after the new leader answered in a partition run, before
/// the partition is healed (a late answer from the old leader would show as dual ownership).
const PARTITION_TAIL: Duration = Duration::from_millis(500);

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values (NaN when empty).
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct PartitionRun {
    /// Block to first reply from the new leader.
    gap: Duration,
    /// Last reply from the old leader to first reply from the new one (what a client re-ARPing
    /// all the time would see).
    silence: Duration,
    dual: Duration,
    overlaps: usize,
}

struct ProfileResult {
    name: String,
    kills: Vec<f64>,
    partitions: Vec<PartitionRun>,
    /// Replies from a MAC other than the leader's before it was killed / partitioned.
    anomalies: Vec<String>,
}

/// Waits until the observer has seen a reply at or after `since` (relative to its start) from
/// one of `macs`; returns its time and MAC.
fn wait_reply_from(
    obs: &ArpObserver,
    since: Duration,
    macs: &[Mac],
    timeout: Duration,
) -> Option<(Duration, Mac)> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(r) = obs
            .replies()
            .into_iter()
            .find(|(t, m)| *t >= since && macs.contains(m))
        {
            return Some(r);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Describes the replies per MAC, for error messages.
fn summarize(replies: &[(Duration, Mac)]) -> String {
    let mut per: BTreeMap<String, (usize, f64, f64)> = BTreeMap::new();
    for (t, m) in replies {
        let e = per.entry(fmt_mac(m)).or_insert((0, ms(*t), ms(*t)));
        e.0 += 1;
        e.2 = ms(*t);
    }
    per.iter()
        .map(|(m, (n, a, b))| format!("{m}: {n} replies {a:.1}..{b:.1} ms"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Starts an observer and checks that the leader, and only it, answers for the VIP.
fn observe_leader(
    c: &NetCluster,
    leader: u64,
    period: Duration,
    anomalies: &mut Vec<String>,
    what: &str,
) -> Result<ArpObserver, String> {
    let obs = ArpObserver::start_with_period(&c.client, c.vip4, period)
        .map_err(|e| format!("starting the ARP observer: {e:#}"))?;
    let mac = c.node(leader).host.mac;
    if !obs.wait_answering(&mac, Duration::from_secs(2)) {
        return Err(format!(
            "{what}: leader {leader} ({}) does not answer ARP for {}: {}",
            fmt_mac(&mac),
            c.vip4,
            summarize(&obs.replies())
        ));
    }
    // A few more probes, then nobody else may have answered.
    std::thread::sleep(period * 5);
    let others: Vec<(Duration, Mac)> = obs
        .replies()
        .into_iter()
        .filter(|(_, m)| *m != mac)
        .collect();
    if !others.is_empty() {
        anomalies.push(format!(
            "{what}: before the fault, other MACs answered too: {}",
            summarize(&others)
        ));
    }
    Ok(obs)
}

fn kill_run(
    c: &mut NetCluster,
    period: Duration,
    what: &str,
    anomalies: &mut Vec<String>,
) -> Result<f64, String> {
    let leader = c.try_wait_stable(STABLE_TIMEOUT)?;
    let obs = observe_leader(c, leader, period, anomalies, what)?;
    let killed_mac = c.node(leader).host.mac;
    let others: Vec<u64> = c
        .running_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let macs: Vec<Mac> = others.iter().map(|id| c.node(*id).host.mac).collect();

    let kill_at = Instant::now();
    c.kill(leader);
    let since = kill_at - obs.started_at();
    let Some((t, mac)) = wait_reply_from(&obs, since, &macs, FAILOVER_TIMEOUT) else {
        return Err(format!(
            "{what}: no director among {others:?} answered for {} within {FAILOVER_TIMEOUT:?} of \
             killing leader {leader}; replies: {}",
            c.vip4,
            summarize(&obs.replies())
        ));
    };
    let failover = t - since;
    // The observer runs a little longer so the summary shows the handover.
    std::thread::sleep(period * 5);
    let replies = obs.stop();
    let new = c.id_by_mac(&mac).expect("MAC of a director");
    let old_after = replies
        .iter()
        .filter(|(t, m)| *t >= since && *m == killed_mac)
        .count();
    println!(
        "  {what}: leader {leader} killed, director {new} answers after {:.1} ms{}",
        ms(failover),
        if old_after > 0 {
            format!(" (the killed namespace answered {old_after} more probes)")
        } else {
            String::new()
        }
    );

    c.start_node(leader);
    let next = c
        .try_wait_stable(STABLE_TIMEOUT)
        .map_err(|e| format!("{what}: after restarting director {leader}: {e}"))?;
    if next != new {
        anomalies.push(format!(
            "{what}: director {new} answered first but director {next} leads afterwards"
        ));
    }
    Ok(ms(failover))
}

fn partition_run(
    c: &mut NetCluster,
    period: Duration,
    what: &str,
    anomalies: &mut Vec<String>,
) -> Result<PartitionRun, String> {
    let leader = c.try_wait_stable(STABLE_TIMEOUT)?;
    let obs = observe_leader(c, leader, period, anomalies, what)?;
    let host = c.node(leader).host.clone();
    let old_mac = host.mac;
    let others: Vec<u64> = c
        .running_ids()
        .into_iter()
        .filter(|id| *id != leader)
        .collect();
    let macs: Vec<Mac> = others.iter().map(|id| c.node(*id).host.mac).collect();

    host.block_tcp_ports(&[RAFT_PORT])
        .map_err(|e| format!("{what}: blocking the Raft port of director {leader}: {e:#}"))?;
    // The rule is in force once nft returns (its start-up comes before the commit).
    let since = Instant::now() - obs.started_at();
    let found = wait_reply_from(&obs, since, &macs, FAILOVER_TIMEOUT);
    let outcome = match found {
        Some((t, mac)) => {
            std::thread::sleep(PARTITION_TAIL);
            Ok((t, mac))
        }
        None => Err(format!(
            "{what}: no director among {others:?} answered for {} within {FAILOVER_TIMEOUT:?} \
             of partitioning leader {leader}; replies: {}",
            c.vip4,
            summarize(&obs.replies())
        )),
    };
    // Heal in any case, and keep observing until the cluster is stable again.
    host.unblock()
        .map_err(|e| format!("{what}: unblocking director {leader}: {e:#}"))?;
    let (t_new, new_mac) = outcome?;
    let stable = c.try_wait_stable(STABLE_TIMEOUT);
    std::thread::sleep(period * 5);
    let replies = obs.stop();
    let stable = stable.map_err(|e| format!("{what}: after healing the partition: {e}"))?;

    let intervals = answer_intervals(&replies, period);
    let ov = overlaps(&intervals);
    let dual = total_overlap(&intervals);
    let last_old = replies
        .iter()
        .filter(|(t, m)| *m == old_mac && *t <= t_new)
        .map(|(t, _)| *t)
        .max()
        .unwrap_or(since);
    let new = c.id_by_mac(&new_mac).expect("MAC of a director");
    let run = PartitionRun {
        gap: t_new - since,
        silence: t_new.saturating_sub(last_old),
        dual,
        overlaps: ov.len(),
    };
    println!(
        "  {what}: leader {leader} cut off, director {new} answers after {:.1} ms \
         (old leader's last answer {:.1} ms before that), dual ownership {:.1} ms in {} overlaps",
        ms(run.gap),
        ms(run.silence),
        ms(run.dual),
        run.overlaps
    );
    for o in &ov {
        anomalies.push(format!(
            "{what}: {} and {} both answered from {:.1} to {:.1} ms",
            fmt_mac(&o.a),
            fmt_mac(&o.b),
            ms(o.from),
            ms(o.to)
        ));
    }
    if stable != new {
        anomalies.push(format!(
            "{what}: director {new} answered first but director {stable} leads after healing"
        ));
    }
    Ok(run)
}

fn run_profile(
    c: &mut NetCluster,
    profile: &str,
    kills: u64,
    partitions: u64,
    period: Duration,
) -> Result<ProfileResult, String> {
    let mut r = ProfileResult {
        name: profile.to_string(),
        kills: Vec::new(),
        partitions: Vec::new(),
        anomalies: Vec::new(),
    };
    let mut leader = None;
    let deadline = Instant::now() + START_TIMEOUT;
    while leader.is_none() {
        match c.leader_seen_by(1) {
            Some(l) => leader = Some(l),
            None if Instant::now() > deadline => {
                return Err(format!("no leader within {START_TIMEOUT:?} of start-up"))
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    c.set_vips();
    for i in 1..=kills {
        let ms = kill_run(c, period, &format!("kill {i}/{kills}"), &mut r.anomalies)?;
        r.kills.push(ms);
    }
    for i in 1..=partitions {
        let p = partition_run(
            c,
            period,
            &format!("partition {i}/{partitions}"),
            &mut r.anomalies,
        )?;
        r.partitions.push(p);
    }
    Ok(r)
}

fn main() {
    let kills = env_num("BENCH_KILLS", 20);
    let partitions = env_num("BENCH_PARTITIONS", 5);
    let period = Duration::from_millis(env_num("BENCH_ARP_PERIOD_MS", 3).max(1));
    let profiles: Vec<String> = std::env::var("BENCH_PROFILES")
        .unwrap_or_else(|_| "default,fast".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let started = Instant::now();
    println!(
        "VIP failover: 3 directors in network namespaces, ARP probe every {} ms, \
         {kills} leader kills and {partitions} leader partitions per profile",
        period.as_millis()
    );

    let mut results = Vec::new();
    for profile in &profiles {
        println!("\nprofile {profile}:");
        let t = Instant::now();
        let mut c = NetCluster::start(3, profile);
        match run_profile(&mut c, profile, kills, partitions, period) {
            Ok(r) => results.push(r),
            Err(e) => {
                c.dump_logs();
                eprintln!("bench-failover: profile {profile}: {e}");
                eprintln!(
                    "bench-failover: director logs and data in {}",
                    c.dir.path().display()
                );
                let keep = std::mem::replace(&mut c.dir, tempfile::tempdir().expect("tempdir"));
                let _ = keep.keep();
                drop(c); // kills the directors and removes the namespaces
                std::process::exit(1);
            }
        }
        drop(c);
        println!("  ({:.0} s)", t.elapsed().as_secs_f64());
    }

    println!();
    println!(
        "{:>8} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} | {:>5} {:>8} {:>8} {:>10} {:>8}",
        "profile",
        "kills",
        "min_ms",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "max_ms",
        "parts",
        "gap_p50",
        "gap_max",
        "silence_max",
        "dual_ms"
    );
    for r in &results {
        let mut k = r.kills.clone();
        k.sort_by(f64::total_cmp);
        let mut gaps: Vec<f64> = r.partitions.iter().map(|p| ms(p.gap)).collect();
        gaps.sort_by(f64::total_cmp);
        let silence_max = r
            .partitions
            .iter()
            .map(|p| ms(p.silence))
            .fold(f64::NAN, f64::max);
        let dual: f64 = r.partitions.iter().map(|p| ms(p.dual)).sum();
        println!(
            "{:>8} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} | {:>5} {:>8.1} {:>8.1} {:>10.1} {:>8.1}",
            r.name,
            k.len(),
            pct(&k, 0.0),
            pct(&k, 0.50),
            pct(&k, 0.90),
            pct(&k, 0.99),
            pct(&k, 1.0),
            r.partitions.len(),
            pct(&gaps, 0.50),
            pct(&gaps, 1.0),
            silence_max,
            dual
        );
    }
    for r in &results {
        let n: usize = r.partitions.iter().map(|p| p.overlaps).sum();
        if n > 0 || !r.anomalies.is_empty() {
            println!("{}: {n} dual-ownership overlaps; anomalies:", r.name);
            for a in &r.anomalies {
                println!("  {a}");
            }
        }
    }
    println!("total time {:.0} s", started.elapsed().as_secs_f64());
    for r in &results {
        let mut k = r.kills.clone();
        k.sort_by(f64::total_cmp);
        let dual: f64 = r.partitions.iter().map(|p| ms(p.dual)).sum();
        println!(
            "RESULT profile={} p50_ms={:.1} p99_ms={:.1} dual_ms={:.1}",
            r.name,
            pct(&k, 0.50),
            pct(&k, 0.99),
            dual
        );
    }
}
