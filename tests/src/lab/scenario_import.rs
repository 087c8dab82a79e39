//! Scenario 7, migration: a keepalived.conf and an ipvsadm-save text, both with the lab's
//! addresses, through `lvsctl import` and `lvsctl apply`, read back with ipvsadm.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use cluster_core::model::{Config, SyncMode, VipGroup};

use super::common::sync_settings;
use super::fixture::{Lab, NAT_PORT, NAT_REAL_PORT, PORT, UDP_PORT};
use super::ipvsadm::IpvsadmTable;

/// The import scenario's keepalived.conf and its included file, and what `ipvsadm -Ln` must show
/// for them: written out by hand from the keepalived text, not derived from the import.
fn import_keepalived_files(lab: &Lab) -> (String, String, String) {
    let (v4, v6, gw) = (lab.c.vip4, lab.c.vip6, lab.gw4);
    let (r1, r2) = (lab.reals[0].ipv4, lab.reals[1].ipv4);
    let (r16, r26) = (lab.reals[0].ipv6, lab.reals[1].ipv6);
    let main = format!(
        r#"! keepalived.conf of the lab, as a keepalived site would have it
global_defs {{
    router_id lab-lb1
    lvs_sync_daemon eth0 web id 7
}}

vrrp_instance web {{
    state MASTER
    interface eth0
    virtual_router_id 7
    priority 150
    virtual_ipaddress {{
        {v4}/24
        {v6}/64
        {gw}/24
    }}
}}

virtual_server {v4} {PORT} {{
    delay_loop 1
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server {r1} {PORT} {{
        weight 1
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
    real_server {r2} {PORT} {{
        weight 3
        TCP_CHECK {{
            connect_timeout 1
        }}
    }}
}}

include services.d/*.conf
"#
    );
    let included = format!(
        r#"virtual_server {v4} {UDP_PORT} {{
    lb_algo rr
    lb_kind DR
    protocol UDP
    ops
    real_server {r1} {UDP_PORT} {{
        weight 2
    }}
    real_server {r2} {UDP_PORT} {{
        weight 2
    }}
}}

virtual_server {v6} {PORT}
{{
    lb_algo sh
    sh-port
    sh-fallback
    lb_kind DR
    persistence_timeout 120
    persistence_granularity 64
    real_server {r16} {PORT} {{
        weight 1
    }}
    real_server {r26} {PORT} {{
        weight 1
    }}
}}

virtual_server {v4} {NAT_PORT} {{
    lb_algo wlc
    lb_kind NAT
    sorry_server {r2} {PORT}
    real_server {r1} {NAT_REAL_PORT} {{
        weight 4
    }}
    real_server {r2} {NAT_REAL_PORT} {{
        weight 1
    }}
}}

virtual_server fwmark 5 {{
    lb_algo lc
    lb_kind DR
    persistence_timeout 300
    persistence_granularity 255.255.255.0
    real_server {r1} 0 {{
        weight 1
    }}
    real_server {r2} 0 {{
        weight 2
    }}
}}
"#
    );
    (main, included, expected_listing(lab))
}

/// What `ipvsadm -Ln` must show for the import scenario's keepalived.conf, written out by hand.
fn expected_listing(lab: &Lab) -> String {
    let (v4, v6) = (lab.c.vip4, lab.c.vip6);
    let (r1, r2) = (lab.reals[0].ipv4, lab.reals[1].ipv4);
    let (r16, r26) = (lab.reals[0].ipv6, lab.reals[1].ipv6);
    // The sorry server is not in the table while real servers are available.
    format!(
        "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  {v4}:{PORT} wrr
  -> {r1}:{PORT}            Route   1      0          0
  -> {r2}:{PORT}            Route   3      0          0
TCP  {v4}:{NAT_PORT} wlc
  -> {r1}:{NAT_REAL_PORT}          Masq    4      0          0
  -> {r2}:{NAT_REAL_PORT}          Masq    1      0          0
TCP  [{v6}]:{PORT} sh (sh-fallback,sh-port) persistent 120 mask 64
  -> [{r16}]:{PORT}         Route   1      0          0
  -> [{r26}]:{PORT}         Route   1      0          0
UDP  {v4}:{UDP_PORT} rr ops
  -> {r1}:{UDP_PORT}            Route   2      0          0
  -> {r2}:{UDP_PORT}            Route   2      0          0
FWM  5 lc persistent 300 mask 255.255.255.0
  -> {r1}:0             Route   1      0          0
  -> {r2}:0             Route   2      0          0
"
    )
}

/// `lvsctl import KIND FILE`: the config it prints and its warnings (without the `lvsctl:
/// warning: ` prefix).
fn lvsctl_import(lab: &Lab, kind: &str, file: &std::path::Path) -> Result<(Config, Vec<String>)> {
    let path = file.to_str().expect("utf-8 path");
    let out = lab.c.lvsctl(&["import", kind, path]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!("lvsctl import {kind} {path} failed: {stderr}");
    }
    let config = Config::from_toml(&stdout).map_err(|e| {
        anyhow!("lvsctl import {kind} printed TOML that does not parse: {e}\n{stdout}")
    })?;
    let warnings = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lvsctl: warning: "))
        .map(str::to_string)
        .collect();
    Ok((config, warnings))
}

/// Waits until the leader reports every real server of `service` up after a probe that connected.
fn wait_checks_connected(lab: &mut Lab, service: &str, reals: usize) -> Result<Duration> {
    let start = Instant::now();
    loop {
        let leader = lab.c.wait_leader(Duration::from_secs(30));
        let last = lab.c.lvsctl_json(leader, &["weights", service]);
        if let Ok(v) = &last {
            let rows = v["reals"].as_array().cloned().unwrap_or_default();
            if rows.len() == reals
                && rows
                    .iter()
                    .all(|r| r["health"] == "up" && r["health_detail"] == "connected")
            {
                return Ok(start.elapsed());
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the imported TCP_CHECK of {service} did not report its real servers up and connected: {last:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Scenario 7: migrating to the cluster.
/// - A keepalived.conf with the lab's addresses (a DR service with TCP_CHECKs, UDP with ops, IPv6
///   with sh flags and persistence, NAT with a sorry server, fwmark with persistence, a
///   vrrp_instance holding the lab's VIPs, lvs_sync_daemon; part of it in an included file) goes
///   through `lvsctl import keepalived` and `lvsctl apply`: every director's `ipvsadm -Ln` equals
///   the table written out by hand for it, `lvsctl export` equals what was imported, the imported
///   checks run and connect, and the VIP group is the lab's own (the VIPs stay where they are).
/// - ipvsadm rules loaded with `ipvsadm -R` into the client's namespace, saved with `ipvsadm -Sn`,
///   go through `lvsctl import ipvsadm` and `lvsctl apply`: every director's `ipvsadm -Ln` equals
///   the client's, and the leader's `ipvsadm -Sn` is line for line the saved rules.
pub fn scenario_import(lab: &mut Lab) -> Result<String> {
    let dir = lab.c.dir.path().join("import");
    let keepalived_report = import_keepalived(lab, &dir)?;
    let ipvsadm_report = import_ipvsadm(lab, &dir)?;
    Ok(format!("{keepalived_report}; {ipvsadm_report}"))
}

/// The keepalived.conf half of scenario 7, its files written under `dir`.
fn import_keepalived(lab: &mut Lab, dir: &Path) -> Result<String> {
    fs::create_dir_all(dir.join("services.d"))?;
    let (main, included, listing) = import_keepalived_files(lab);
    let conf = dir.join("keepalived.conf");
    fs::write(&conf, &main)?;
    fs::write(dir.join("services.d/10-lab.conf"), &included)?;
    // An editor's backup beside it: not matched by *.conf.
    fs::write(dir.join("services.d/10-lab.conf~"), "bogus {\n")?;

    let (config, warnings) = lvsctl_import(lab, "keepalived", &conf)?;
    let line_of = |needle: &str| {
        main.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("line in the generated keepalived.conf")
    };
    let at = conf.display();
    let (v4, v6, gw) = (lab.c.vip4, lab.c.vip6, lab.gw4);
    let expected_warnings = [
        format!(
            "{at}:{}: global_defs router_id is not mapped; left out",
            line_of("router_id")
        ),
        format!(
            "{at}:{}: vrrp_instance web is not mapped: the leader director holds the VIPs (no VRRP); its addresses are in [[vip_group]] (lvsctl vip set web --interface eth0 {v4}/24 {v6}/64 {gw}/24)",
            line_of("vrrp_instance")
        ),
    ];
    if warnings != expected_warnings {
        bail!("lvsctl import keepalived warned {warnings:#?}, expected {expected_warnings:#?}");
    }
    // The lab's own VIP group (Lab::start), so applying it leaves the VIPs where they are.
    let web = VipGroup {
        name: "web".into(),
        interface: "eth0".into(),
        addresses: vec![
            format!("{v4}/24").parse()?,
            format!("{v6}/64").parse()?,
            format!("{gw}/24").parse()?,
        ],
    };
    if config.vip_groups != [web] {
        bail!(
            "the vrrp_instance was imported as {:?}, expected the lab's VIP group web",
            config.vip_groups
        );
    }
    if config.sync != Some(sync_settings(SyncMode::Multicast)) {
        bail!(
            "lvs_sync_daemon eth0 web id 7 was imported as {:?}",
            config.sync
        );
    }
    let imported = dir.join("keepalived.toml");
    fs::write(&imported, config.to_toml())?;
    let out = lab
        .c
        .lvsctl(&["apply", "-f", imported.to_str().expect("utf-8 path")]);
    if !out.status.success() {
        bail!(
            "lvsctl apply of the imported keepalived.conf failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let want = IpvsadmTable::parse(&listing);
    if want.services.len() != 5 {
        bail!(
            "the hand-written listing parses to {} services, not 5",
            want.services.len()
        );
    }
    let took = lab.wait_tables(&want, Duration::from_secs(60))?;
    let exported = Config::from_toml(&lab.c.lvsctl_ok(&["export"]))
        .map_err(|e| anyhow!("lvsctl export: {e}"))?;
    if exported != config {
        bail!("lvsctl export differs from the imported config:\nexported {exported:#?}\nimported {config:#?}");
    }
    let service = format!("tcp/{}", lab.vip_addr(PORT));
    let checks = wait_checks_connected(lab, &service, 2)?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    println!(
        "--- keepalived.conf imported and applied: ipvsadm -Ln in director {leader}'s namespace ---\n{}",
        lab.ipvsadm(leader, &["-Ln"])?
    );
    Ok(format!(
        "keepalived.conf (5 virtual servers, 4 of them in an included file, TCP_CHECKs, vrrp_instance, lvs_sync_daemon) imported with the 2 expected warnings and applied: all directors match the hand-written ipvsadm -Ln within {:.1} s, export equals the import, the checks connected within {:.1} s",
        took.as_secs_f64(),
        checks.as_secs_f64()
    ))
}

/// The ipvsadm half of scenario 7, its files written under `dir`.
fn import_ipvsadm(lab: &mut Lab, dir: &Path) -> Result<String> {
    let (v4, v6) = (lab.c.vip4, lab.c.vip6);
    // The rules as ipvsadm itself loads and saves them, in the client's namespace.
    let (r1, r2) = (lab.reals[0].ipv4, lab.reals[1].ipv4);
    let (r16, r26) = (lab.reals[0].ipv6, lab.reals[1].ipv6);
    let rules = format!(
        "-A -t {v4}:{PORT} -s wlc
-a -t {v4}:{PORT} -r {r1}:{PORT} -g -w 2
-a -t {v4}:{PORT} -r {r2}:{PORT} -g -w 5
-A -t {v4}:{NAT_PORT} -s rr
-a -t {v4}:{NAT_PORT} -r {r1}:{NAT_REAL_PORT} -m -w 1
-a -t {v4}:{NAT_PORT} -r {r2}:{NAT_REAL_PORT} -m -w 3
-A -u {v4}:{UDP_PORT} -s sh -b sh-port -o
-a -u {v4}:{UDP_PORT} -r {r1}:{UDP_PORT} -g -w 1
-a -u {v4}:{UDP_PORT} -r {r2}:{UDP_PORT} -g -w 1
-A -t [{v6}]:{PORT} -s lc -p 60
-a -t [{v6}]:{PORT} -r [{r16}]:{PORT} -g -w 1
-a -t [{v6}]:{PORT} -r [{r26}]:{PORT} -g -w 4
-A -f 9 -s wrr -p 300 -M 255.255.255.0
-a -f 9 -r {r1}:0 -g -w 1
-a -f 9 -r {r2}:0 -g -w 1
"
    );
    let rules_file = dir.join("rules.ipvsadm");
    fs::write(&rules_file, &rules)?;
    let client = lab.c.client.clone();
    let loaded = (|| -> Result<(String, String)> {
        let out = client
            .cmd("sh")
            .arg("-c")
            .arg(format!("ipvsadm -R < {}", rules_file.display()))
            .output()?;
        if !out.status.success() {
            bail!(
                "ipvsadm -R in the client's namespace: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok((
            client.run(&["ipvsadm", "-Sn"])?,
            client.run(&["ipvsadm", "-Ln"])?,
        ))
    })();
    // The client must not keep virtual services of its own (they would take its connections).
    let cleared = client.run(&["ipvsadm", "-C"]);
    let (saved, listed) = loaded?;
    cleared?;
    let saved_file = dir.join("rules.saved");
    fs::write(&saved_file, &saved)?;
    let (config, warnings) = lvsctl_import(lab, "ipvsadm", &saved_file)?;
    if !warnings.is_empty() {
        bail!("lvsctl import ipvsadm warned about ipvsadm's own -Sn output: {warnings:#?}");
    }
    if config.services.len() != 5 {
        bail!(
            "lvsctl import ipvsadm read {} services from {saved}",
            config.services.len()
        );
    }
    lab.apply(&config)?;
    let want = IpvsadmTable::parse(&listed);
    let took = lab.wait_tables(&want, Duration::from_secs(60))?;
    let leader = lab.c.wait_leader(Duration::from_secs(30));
    let sorted = |text: &str| {
        let mut l: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        l.sort();
        l
    };
    let on_leader = lab.ipvsadm(leader, &["-Sn"])?;
    if sorted(&on_leader) != sorted(&saved) {
        bail!("director {leader}'s ipvsadm -Sn differs from the rules:\n{on_leader}\nrules (ipvsadm -R then -Sn):\n{saved}");
    }
    Ok(format!(
        "ipvsadm -R rules (5 services, 10 real servers) saved with -Sn, imported without warnings and applied: all directors match the client's ipvsadm -Ln within {:.1} s and director {leader}'s ipvsadm -Sn is line for line the saved rules",
        took.as_secs_f64()
    ))
}
