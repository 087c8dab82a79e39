//! The lab fixture: a three-director cluster (`NetCluster`) with two DR real servers serving
//! `lab-tool` and a client, the lab's VIP group held by the leader, and the calls every scenario
//! makes on it (ipvsadm in a director's namespace, `lvsctl apply`, waiting for the kernel tables).
//! Teardown is `Drop`. Also `guarded`, which turns a panicking scenario into an error.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use cluster_core::model::{Config, VipGroup};

use crate::bin;
use crate::netns::Host;
use crate::vip_cluster::NetCluster;

use super::ipvsadm::IpvsadmTable;

/// Raft timing for the emulated VM: everything runs many times slower than on hardware, so
/// elections get more slack than the default profile.
pub const LAB_RAFT: &str =
    "heartbeat_ms = 250\nelection_min_ms = 1500\nelection_max_ms = 3000\nvip_release_ms = 1200\n";

/// Resync period the lab directors use (drift must be repaired within it).
pub const RESYNC_MS: u64 = 2000;

/// Service port served by the real servers (DR keeps the port).
pub const PORT: u16 = 80;
/// NAT service: VIP port 8080 mapped to the real servers' port 8081.
pub const NAT_PORT: u16 = 8080;
pub const NAT_REAL_PORT: u16 = 8081;
pub const UDP_PORT: u16 = 53;
/// Where each lab director serves `/metrics` (on every address of its namespace).
pub const METRICS_PORT: u16 = 9100;

/// The lab: directors d1..d3, client, real servers rs1 and rs2.
pub struct Lab {
    pub c: NetCluster,
    pub reals: Vec<Host>,
    /// Gateway address (held by the leader with the VIPs) the real servers route NAT replies to.
    pub gw4: IpAddr,
    servers: Vec<std::process::Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for s in &mut self.servers {
            let _ = s.kill();
            let _ = s.wait();
        }
    }
}

fn ipvs_section() -> String {
    format!("[ipvs]\nresync_ms = {RESYNC_MS}\n\n[metrics]\nlisten = \"0.0.0.0:{METRICS_PORT}\"\n")
}

impl Lab {
    /// Starts the cluster and the real servers; VIPs are configured, services are not.
    pub fn start() -> Result<Lab> {
        let mut c = NetCluster::start_custom(3, LAB_RAFT, &ipvs_section());
        let reals = vec![c.topo.add_host("rs1"), c.topo.add_host("rs2")];
        let gw4 = IpAddr::V4(c.topo.ipv4_for(254));
        for d in &c.nodes {
            // NAT replies come back through the holder and leave on the same interface.
            for (k, v) in [
                ("net.ipv4.ip_forward", "1"),
                ("net.ipv4.conf.all.send_redirects", "0"),
                ("net.ipv4.conf.eth0.send_redirects", "0"),
                ("net.ipv6.conf.all.forwarding", "1"),
            ] {
                d.host.set_sysctl(k, v)?;
            }
        }
        let mut servers = Vec::new();
        for r in &reals {
            prepare_dr_real(r, &c)?;
            // NAT replies (from the real server's own address) go back through the director
            // holding the gateway address; DR replies (from the VIP) go straight to the client.
            let own = r.ipv4.to_string();
            let client = format!("{}/32", c.client.ipv4);
            let gw = gw4.to_string();
            r.run(&["ip", "rule", "add", "from", &own, "table", "100"])?;
            r.run(&["ip", "route", "add", &client, "via", &gw, "table", "100"])?;
            let tool = bin("lab-tool");
            servers.push(r.spawn(&[
                tool.to_str().expect("utf-8 path"),
                "serve",
                "--name",
                &r.name,
                "--tcp",
                &format!("{PORT},{NAT_REAL_PORT}"),
                "--udp",
                &UDP_PORT.to_string(),
            ]));
        }
        let leader = c.wait_leader(Duration::from_secs(60));
        let v4 = format!("{}/24", c.vip4);
        let v6 = format!("{}/64", c.vip6);
        let gw = format!("{gw4}/24");
        c.lvsctl_ok(&["vip", "set", "web", "--interface", "eth0", &v4, &v6, &gw]);
        c.wait_holder(leader, Duration::from_secs(30));
        Ok(Lab {
            c,
            reals,
            gw4,
            servers,
        })
    }

    /// `ipvsadm ARGS` in director `id`'s namespace.
    pub fn ipvsadm(&self, id: u64, args: &[&str]) -> Result<String> {
        let mut a = vec!["ipvsadm"];
        a.extend_from_slice(args);
        self.c.node(id).host.run(&a)
    }

    /// Director `id`'s kernel table as `ipvsadm -Ln` shows it.
    pub fn table(&self, id: u64) -> Result<IpvsadmTable> {
        let text = self.ipvsadm(id, &["-Ln"])?;
        Ok(IpvsadmTable::parse(&text))
    }

    /// Applies `config` with `lvsctl apply -f`, plus the lab's VIP group (apply replaces the
    /// whole configuration).
    pub fn apply(&self, config: &Config) -> Result<()> {
        let mut config = config.clone();
        config.vip_groups = vec![VipGroup {
            name: "web".into(),
            interface: "eth0".into(),
            addresses: vec![
                format!("{}/24", self.c.vip4).parse()?,
                format!("{}/64", self.c.vip6).parse()?,
                format!("{}/24", self.gw4).parse()?,
            ],
        }];
        let path = self.c.dir.path().join("desired.toml");
        fs::write(&path, config.to_toml())?;
        let out = self
            .c
            .lvsctl(&["apply", "-f", path.to_str().expect("utf-8 path")]);
        if !out.status.success() {
            bail!(
                "lvsctl apply failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Waits until every running director's kernel shows `want` (as ipvsadm reads it).
    pub fn wait_tables(&mut self, want: &IpvsadmTable, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            let mut diffs = Vec::new();
            for id in self.c.running_ids() {
                let have = self.table(id)?;
                let d = want.diff(&have);
                if !d.is_empty() {
                    diffs.push(format!("director {id}: {}", d.join("; ")));
                }
            }
            if diffs.is_empty() {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "kernel tables differ from the config after {timeout:?}: {}",
                    diffs.join(" | ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn vip_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.c.vip4), port)
    }

    pub fn vip6_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V6(self.c.vip6), port)
    }
}

/// DR real server: the VIPs on `lo`, no ARP answers or announcements for them.
fn prepare_dr_real(r: &Host, c: &NetCluster) -> Result<()> {
    for (k, v) in [
        ("net.ipv4.conf.all.arp_ignore", "1"),
        ("net.ipv4.conf.all.arp_announce", "2"),
        ("net.ipv4.conf.eth0.arp_ignore", "1"),
        ("net.ipv4.conf.eth0.arp_announce", "2"),
        ("net.ipv4.conf.all.accept_redirects", "0"),
        ("net.ipv4.conf.eth0.accept_redirects", "0"),
    ] {
        r.set_sysctl(k, v)?;
    }
    r.run(&["ip", "addr", "add", &format!("{}/32", c.vip4), "dev", "lo"])?;
    r.run(&["ip", "addr", "add", &format!("{}/128", c.vip6), "dev", "lo"])?;
    Ok(())
}

/// Runs `f`, turning a panic (the cluster helpers panic with the directors' logs) into an error.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            Err(anyhow!("{what}: {msg}"))
        }
    }
}
