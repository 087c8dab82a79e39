//! Scenarios 4 and 5, failover: connections held through the VIP survive the kill of the leader,
//! with the sync daemon (multicast) or without it (stateless, mh).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use cluster_core::model::{Scheduler, SyncMode};

use crate::netns::Host;
use crate::traffic::{self, Held};

use super::common::{sync_settings, traffic_config};
use super::fixture::{Lab, PORT};
use super::ipvsadm::IpvsadmTable;

/// Scenarios 4 and 5: the client holds 20 connections through the VIP (DR), the leader is killed, and the
/// connections are used again through the new VIP holder; fails unless all 20 survive.
pub fn scenario_failover(lab: &mut Lab, mode: SyncMode) -> Result<String> {
    let scheduler = match mode {
        SyncMode::Multicast => Scheduler::Wlc,
        SyncMode::Stateless => Scheduler::Mh,
    };
    let mut config = traffic_config(lab, scheduler, [1, 1]);
    config.sync = Some(sync_settings(mode));
    lab.apply(&config)?;
    lab.wait_tables(&IpvsadmTable::expected(&config), Duration::from_secs(30))?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    lab.c.wait_holder(leader, Duration::from_secs(30));
    if mode == SyncMode::Multicast {
        wait_daemons(lab, leader)?;
    }
    let to = lab.vip_addr(PORT);
    let mut conns: Vec<Held> = lab.c.client.in_ns(move || {
        (0..20)
            .map(|_| Held::open(to, Duration::from_secs(5)))
            .collect::<Result<Vec<_>>>()
    })??;
    // Let the master sync the established connections (sync_threshold: after 3 packets).
    for _ in 0..5 {
        for c in conns.iter_mut() {
            c.ping(Duration::from_secs(5))?;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let others: Vec<u64> = lab
        .c
        .running_ids()
        .into_iter()
        .filter(|i| *i != leader)
        .collect();
    // The backups must have the 20 entries by sync before the leader dies (the master sends
    // when its buffer fills or every couple of seconds).
    let mut synced_before = Vec::new();
    if mode == SyncMode::Multicast {
        for id in &others {
            synced_before.push((*id, wait_synced(lab, *id, conns.len())?));
        }
    }
    let killed_at = Instant::now();
    lab.c.kill(leader);
    let mut new_holder = None;
    let vip = lab.c.vip4;
    let hosts: Vec<(u64, Host)> = others
        .iter()
        .map(|i| (*i, lab.c.node(*i).host.clone()))
        .collect();
    let report = traffic::hold_through(
        &mut conns,
        Duration::from_secs(20),
        Duration::from_secs(2),
        || {
            if new_holder.is_none() {
                new_holder = hosts
                    .iter()
                    .find(|(_, h)| h.has_addr(vip))
                    .map(|(i, _)| (*i, killed_at.elapsed()));
            }
            new_holder.is_some()
        },
    );
    let (holder, vip_moved) = new_holder.ok_or_else(|| anyhow!("no director took the VIP over"))?;
    let line = format!(
        "{} of {} connections survived the kill of leader {leader} (VIP on director {holder} after {:.2} s, longest pause {:.2} s; {}){}",
        report.survived,
        report.total,
        vip_moved.as_secs_f64(),
        report.max_pause.as_secs_f64(),
        if synced_before.is_empty() {
            "no sync daemons".to_string()
        } else {
            synced_before
                .iter()
                .map(|(id, n)| format!("director {id} had {n} entries by sync"))
                .collect::<Vec<_>>()
                .join(", ")
        },
        if report.errors.is_empty() {
            String::new()
        } else {
            format!("; first failure: {}", report.errors[0])
        }
    );
    // Restart the killed director so the next scenario has three.
    lab.c.start_node(leader);
    if report.survived < report.total {
        bail!("{line}");
    }
    Ok(line)
}

/// Waits until director `id` reports (through `lvsctl conns --sync`) at least `n` established
/// entries to the VIP that arrived by sync; returns how many.
fn wait_synced(lab: &Lab, id: u64, n: usize) -> Result<usize> {
    let start = Instant::now();
    let vip = lab.vip_addr(PORT).to_string();
    loop {
        let v = lab
            .c
            .lvsctl_json(id, &["conns", "--sync"])
            .map_err(|e| anyhow!(e))?;
        let count = v["conns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|c| {
                        c["virtual"].as_str() == Some(vip.as_str())
                            && c["state"].as_str() == Some("ESTABLISHED")
                    })
                    .count()
            })
            .unwrap_or(0);
        if count >= n {
            return Ok(count);
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!("director {id} has {count} synced entries for {vip}, expected {n}: {v}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_daemons(lab: &mut Lab, leader: u64) -> Result<()> {
    let start = Instant::now();
    loop {
        let mut missing = Vec::new();
        for id in lab.c.running_ids() {
            let d = lab.ipvsadm(id, &["-L", "--daemon"])?;
            let backup = d.contains("backup sync daemon");
            let master = d.contains("master sync daemon");
            if !backup || master != (id == leader) {
                missing.push(format!("director {id}: {}", d.trim().replace('\n', "; ")));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!(
                "sync daemons not as expected (backup everywhere, master on {leader}): {}",
                missing.join(" | ")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
