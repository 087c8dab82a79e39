//! Scenarios 1 and 2, the services: a config covering every protocol, family, scheduler and
//! forwarding method is in every director's kernel as ipvsadm shows it; drift made by hand is
//! repaired within the resync period, foreign services are left alone, and a service whose
//! scheduler module is missing fails on its own.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cluster_core::model::{
    Config, Forward, Persistence, SchedFlag, Scheduler, Service, TunnelCsum, TunnelType,
};

use super::common::{kernel_schedulers, key, real};
use super::fixture::{Lab, RESYNC_MS};
use super::ipvsadm::{IpvsadmService, IpvsadmTable};

/// Scenario 1's configuration: every protocol and family, fwmark, persistence with netmask, every
/// scheduler the kernel ships, every forwarding method and tunnel type.
pub fn coverage_config(schedulers: &[Scheduler]) -> Config {
    let mut c = Config::default();
    let mut add = |s: Service| {
        c.services.insert(s.key, s);
    };
    for (i, sch) in schedulers.iter().enumerate() {
        let mut s = Service::new(key(&format!("tcp/10.10.0.{}:80", i + 1)));
        s.scheduler = *sch;
        if matches!(sch, Scheduler::Sh | Scheduler::Mh) {
            s.sched_flags = vec![SchedFlag::Fallback, SchedFlag::Port];
        }
        s.reals = vec![
            real("10.20.0.1", 80, i as u32 + 1, Forward::Dr),
            real("10.20.0.2", 80, i as u32 + 2, Forward::Dr),
        ];
        add(s);
    }
    let mut udp = Service::new(key("udp/10.10.1.1:53"));
    udp.scheduler = Scheduler::Rr;
    udp.reals = vec![
        real("10.20.0.1", 5353, 1, Forward::Masq),
        real("10.20.0.2", 5353, 0, Forward::Masq),
    ];
    add(udp);
    let mut ops = Service::new(key("udp/10.10.1.4:53"));
    ops.one_packet = true;
    ops.reals = vec![real("10.20.0.1", 53, 1, Forward::Dr)];
    add(ops);
    let mut sctp = Service::new(key("sctp/10.10.1.2:9"));
    sctp.reals = vec![real("10.20.0.1", 9, 1, Forward::Dr)];
    add(sctp);
    let mut v6 = Service::new(key("tcp/[fd00:10::1]:443"));
    v6.persistence = Some(Persistence {
        timeout: 600,
        netmask: Some("64".into()),
    });
    v6.reals = vec![
        real("fd00:20::1", 443, 2, Forward::Dr),
        real("fd00:20::2", 8443, 3, Forward::Masq),
    ];
    add(v6);
    let mut persist = Service::new(key("tcp/10.10.1.3:80"));
    persist.scheduler = Scheduler::Wrr;
    persist.persistence = Some(Persistence {
        timeout: 300,
        netmask: Some("255.255.255.0".into()),
    });
    persist.reals = vec![real("10.20.0.3", 80, 4, Forward::Dr)];
    add(persist);
    let mut fw = Service::new(key("fwmark/5"));
    fw.reals = vec![
        real("10.20.0.1", 0, 1, Forward::Dr),
        real("10.20.0.2", 0, 2, Forward::Dr),
    ];
    add(fw);
    let mut fw6 = Service::new(key("fwmark6/6"));
    fw6.scheduler = Scheduler::Rr;
    fw6.reals = vec![real("fd00:20::1", 0, 1, Forward::Dr)];
    add(fw6);
    let mut tun = Service::new(key("tcp/10.10.1.5:80"));
    let mut ipip = real("10.20.0.1", 80, 1, Forward::Tunnel);
    ipip.tunnel_type = Some(TunnelType::Ipip);
    let mut gue = real("10.20.0.2", 80, 2, Forward::Tunnel);
    gue.tunnel_type = Some(TunnelType::Gue);
    gue.tunnel_port = Some(6080);
    gue.tunnel_csum = Some(TunnelCsum::Csum);
    let mut gre = real("10.20.0.3", 80, 3, Forward::Tunnel);
    gre.tunnel_type = Some(TunnelType::Gre);
    gre.tunnel_csum = Some(TunnelCsum::Csum);
    let mut thresholds = real("10.20.0.4", 80, 5, Forward::Dr);
    thresholds.upper_threshold = 100;
    thresholds.lower_threshold = 50;
    tun.reals = vec![ipip, gue, gre, thresholds];
    add(tun);
    c
}

/// Scenario 1: the config applied through lvsctl is in every director's kernel, as ipvsadm shows it.
pub fn scenario_config(lab: &mut Lab) -> Result<String> {
    let schedulers = kernel_schedulers();
    let config = coverage_config(&schedulers);
    lab.apply(&config)?;
    let want = IpvsadmTable::expected(&config);
    let took = lab.wait_tables(&want, Duration::from_secs(60))?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    println!(
        "--- ipvsadm -Ln in director {leader}'s namespace ---\n{}",
        lab.ipvsadm(leader, &["-Ln"])?
    );
    // Tunnel details and thresholds are not in the plain listing.
    for id in lab.c.running_ids() {
        let tun = lab.ipvsadm(id, &["-Ln", "-t", "10.10.1.5:80", "--tun-info"])?;
        check_tun_info(&tun).with_context(|| format!("director {id}: --tun-info"))?;
        let th = lab.ipvsadm(id, &["-Ln", "-t", "10.10.1.5:80", "--thresholds"])?;
        if !th
            .lines()
            .any(|l| l.contains("10.20.0.4:80") && l.contains("100") && l.contains("50"))
        {
            bail!("director {id}: thresholds 100/50 of 10.20.0.4:80 not shown:\n{th}");
        }
    }
    Ok(format!(
        "{} services ({} schedulers: {}), all 3 directors match ipvsadm -Ln within {:.1} s",
        config.services.len(),
        schedulers.len(),
        schedulers
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        took.as_secs_f64()
    ))
}

fn check_tun_info(text: &str) -> Result<()> {
    let find = |addr: &str| {
        text.lines()
            .find(|l| l.contains(addr))
            .map(|l| l.to_ascii_lowercase())
            .ok_or_else(|| anyhow!("{addr} not listed:\n{text}"))
    };
    let ipip = find("10.20.0.1:80")?;
    let gue = find("10.20.0.2:80")?;
    let gre = find("10.20.0.3:80")?;
    if !ipip.contains("ipip") {
        bail!("10.20.0.1 is not shown as ipip: {ipip}");
    }
    if !(gue.contains("gue") && gue.contains("6080")) {
        bail!("10.20.0.2 is not shown as gue port 6080: {gue}");
    }
    if !gre.contains("gre") {
        bail!("10.20.0.3 is not shown as gre: {gre}");
    }
    Ok(())
}

/// Scenario 2: `ipvsadm -C` and a weight changed by hand are repaired within the resync period; a
/// service someone else added is left alone and reported.
pub fn scenario_drift(lab: &mut Lab) -> Result<String> {
    let config = lab.c.lvsctl_ok(&["export"]);
    let config = Config::from_toml(&config).map_err(|e| anyhow!("export: {e}"))?;
    let want = IpvsadmTable::expected(&config);
    let victim = lab.c.running_ids()[1];
    // Clear and read back in one go: the reconciler may repair it any moment after.
    let left = lab.c.node(victim).host.run(&[
        "sh",
        "-c",
        "ipvsadm -C && ipvsadm -Ln | grep -cE '^(TCP|UDP|SCTP|FWM) ' || true",
    ])?;
    let left: usize = left.trim().parse().unwrap_or(usize::MAX);
    if left >= want.services.len() {
        bail!("ipvsadm -C did not clear director {victim} ({left} services left)");
    }
    let took_clear = lab.wait_tables(&want, Duration::from_millis(RESYNC_MS * 3))?;
    lab.ipvsadm(
        victim,
        &[
            "-e",
            "-t",
            "10.10.1.3:80",
            "-r",
            "10.20.0.3:80",
            "-g",
            "-w",
            "77",
        ],
    )?;
    lab.ipvsadm(victim, &["-A", "-t", "192.0.2.99:22", "-s", "rr"])?;
    let mut with_foreign = want.clone();
    with_foreign.services.insert(
        "TCP 192.0.2.99:22".into(),
        IpvsadmService {
            settings: "rr".into(),
            dests: BTreeMap::new(),
        },
    );
    let took_edit = {
        let start = Instant::now();
        loop {
            let d = with_foreign.diff(&lab.table(victim)?);
            if d.is_empty() {
                break start.elapsed();
            }
            if start.elapsed() > Duration::from_millis(RESYNC_MS * 3) {
                bail!("director {victim}: drift not repaired: {}", d.join("; "));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // Reported as foreign by the next full pass.
    let start = Instant::now();
    loop {
        let status = lab
            .c
            .lvsctl_json(victim, &["ipvs"])
            .map_err(|e| anyhow!(e))?;
        let foreign = status["reconciler"]["foreign"]
            .as_array()
            .is_some_and(|a| a.iter().any(|k| k.as_str() == Some("tcp/192.0.2.99:22")));
        if foreign {
            break;
        }
        if start.elapsed() > Duration::from_millis(RESYNC_MS * 3) {
            bail!(
                "the foreign service is not reported by lvsctl ipvs: {}",
                status["reconciler"]
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    lab.ipvsadm(victim, &["-D", "-t", "192.0.2.99:22"])?;
    let missing = missing_scheduler(lab, &want)?;
    Ok(format!(
        "ipvsadm -C repaired in {:.1} s, a hand-edited weight in {:.1} s (resync {} ms); the foreign service was left alone and reported; {missing}",
        took_clear.as_secs_f64(),
        took_edit.as_secs_f64(),
        RESYNC_MS
    ))
}

/// A service whose scheduler module the kernel lacks (twos, before 6.7) fails on its own: the
/// error is reported per object by every director, the other services stay as they are, and the
/// error clears when the service goes.
fn missing_scheduler(lab: &mut Lab, want: &IpvsadmTable) -> Result<String> {
    if kernel_schedulers().contains(&Scheduler::Twos) {
        return Ok("(this kernel ships every scheduler: no missing-module check)".into());
    }
    lab.c
        .lvsctl_ok(&["service", "add", "-t", "10.10.9.9:80", "-s", "twos"]);
    let object = "service[tcp/10.10.9.9:80]";
    let start = Instant::now();
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    let ids = lab.c.running_ids();
    while seen.len() < ids.len() {
        for id in &ids {
            let v = lab.c.lvsctl_json(*id, &["ipvs"]).unwrap_or_default();
            let hit = v["reconciler"]["errors"].as_array().and_then(|a| {
                a.iter()
                    .find(|e| e["object"].as_str() == Some(object))
                    .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            });
            if let Some(m) = hit {
                seen.insert(*id, m);
            }
        }
        if start.elapsed() > Duration::from_secs(20) {
            bail!("the twos service's error is not reported by every director: {seen:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let message = seen.values().next().cloned().unwrap_or_default();
    if !message.contains("ip_vs_twos") {
        bail!("the error does not name the missing module: {message}");
    }
    // Everything else is still programmed.
    lab.wait_tables(want, Duration::from_secs(10))?;
    lab.c.lvsctl_ok(&["service", "del", "-t", "10.10.9.9:80"]);
    let start = Instant::now();
    loop {
        let v = lab.c.lvsctl_json(ids[0], &["ipvs"]).unwrap_or_default();
        let still = v["reconciler"]["errors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["object"].as_str() == Some(object)));
        if !still {
            break;
        }
        if start.elapsed() > Duration::from_millis(RESYNC_MS * 3) {
            bail!("the twos error did not clear after the service was deleted: {v}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(format!(
        "a twos service (no module in this kernel) failed alone, reported by all {} directors as \"{message}\", and cleared when deleted",
        ids.len()
    ))
}
