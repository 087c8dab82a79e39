//! The live host: links and addresses over rtnetlink, sysctls under /proc/sys, kernel modules via
//! modprobe. Reads the state plans are made from and applies their changes.

use std::net::IpAddr;
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};
use futures::TryStreamExt;
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::{Handle, LinkUnspec};

use crate::setup::{Change, HostState, LinkState};

/// A link as setup needs it.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub loopback: bool,
}

/// An address on a link.
#[derive(Clone, Debug)]
pub struct Addr {
    pub index: u32,
    pub addr: IpAddr,
    pub prefix: u8,
    pub global: bool,
}

/// A route-netlink connection driven on the current runtime.
pub struct Net {
    handle: Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

/// The host's own address of an address message: IFA_LOCAL where present (point-to-point
/// links put the peer in IFA_ADDRESS), else IFA_ADDRESS.
fn own_address(m: &AddressMessage) -> Option<IpAddr> {
    let mut address = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(ip) => return Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            _ => {}
        }
    }
    address
}

impl Net {
    pub fn connect() -> Result<Net> {
        let (conn, handle, _) =
            rtnetlink::new_connection().context("opening a route netlink socket")?;
        tokio::spawn(conn);
        Ok(Net { handle })
    }

    pub async fn links(&self) -> Result<Vec<Link>> {
        let mut out = Vec::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s.try_next().await.context("listing links")? {
            let Some(name) = m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }) else {
                continue;
            };
            out.push(Link {
                index: m.header.index,
                name,
                up: m.header.flags.contains(LinkFlags::Up),
                loopback: m.header.flags.contains(LinkFlags::Loopback),
            });
        }
        Ok(out)
    }

    pub async fn addresses(&self) -> Result<Vec<Addr>> {
        let mut out = Vec::new();
        let mut s = self.handle.address().get().execute();
        while let Some(m) = s.try_next().await.context("listing addresses")? {
            if let Some(addr) = own_address(&m) {
                out.push(Addr {
                    index: m.header.index,
                    addr,
                    prefix: m.header.prefix_len,
                    global: m.header.scope == AddressScope::Universe,
                });
            }
        }
        Ok(out)
    }

    /// Links with their addresses, and the values of `sysctls` (those that exist).
    pub async fn host_state(&self, sysctls: &[String]) -> Result<(HostState, Vec<Link>)> {
        let links = self.links().await?;
        let addrs = self.addresses().await?;
        let mut h = HostState::default();
        for l in &links {
            h.links.insert(
                l.name.clone(),
                LinkState {
                    up: l.up,
                    addrs: addrs
                        .iter()
                        .filter(|a| a.index == l.index)
                        .map(|a| (a.addr, a.prefix))
                        .collect(),
                },
            );
        }
        for k in sysctls {
            if let Some(v) = read_sysctl(k)? {
                h.sysctls.insert(k.clone(), v);
            }
        }
        Ok((h, links))
    }

    /// Applies one planned change.
    pub async fn apply(&self, change: &Change, links: &[Link]) -> Result<()> {
        let index = |dev: &str| {
            links
                .iter()
                .find(|l| l.name == dev)
                .map(|l| l.index)
                .ok_or_else(|| anyhow!("device {dev} does not exist"))
        };
        match change {
            Change::Sysctl { key, to, .. } => write_sysctl(key, to),
            Change::LinkUp { dev } | Change::LinkDown { dev } => {
                let b = LinkUnspec::new_with_index(index(dev)?);
                let msg = if matches!(change, Change::LinkUp { .. }) {
                    b.up()
                } else {
                    b.down()
                }
                .build();
                self.handle
                    .link()
                    .set(msg)
                    .execute()
                    .await
                    .with_context(|| format!("setting link {dev} state"))
            }
            Change::AddAddr { dev, addr, prefix } => {
                let mut req = self.handle.address().add(index(dev)?, *addr, *prefix);
                if addr.is_ipv6() {
                    // A VIP is the directors' address: duplicate address detection would only
                    // delay it (and fail it, as the directors own it on the wire).
                    let m = req.message_mut();
                    m.header.flags |= AddressHeaderFlags::Nodad;
                    m.attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
                match req.execute().await {
                    Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
                    r => r.with_context(|| format!("adding {addr}/{prefix} to {dev}")),
                }
            }
            Change::DelAddr { dev, addr, prefix } => {
                let mut s = self
                    .handle
                    .address()
                    .get()
                    .set_link_index_filter(index(dev)?)
                    .set_address_filter(*addr)
                    .execute();
                while let Some(m) = s
                    .try_next()
                    .await
                    .with_context(|| format!("looking up {addr} on {dev}"))?
                {
                    match self.handle.address().del(m).execute().await {
                        Err(e)
                            if matches!(
                                errno(&e),
                                Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)
                            ) => {}
                        r => r.with_context(|| format!("removing {addr}/{prefix} from {dev}"))?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// The host's global unicast addresses, except those on loopback and tunnel devices (where VIPs
/// live) and `exclude`: the default real-server addresses of a report.
pub async fn global_addresses(exclude: &[IpAddr]) -> Result<Vec<IpAddr>> {
    let net = Net::connect()?;
    let links = net.links().await?;
    let skip: Vec<u32> = links
        .iter()
        .filter(|l| l.loopback || l.name == "tunl0" || l.name == "ip6tnl0")
        .map(|l| l.index)
        .collect();
    let mut out: Vec<IpAddr> = net
        .addresses()
        .await?
        .into_iter()
        .filter(|a| a.global && !skip.contains(&a.index))
        .map(|a| a.addr)
        .filter(|a| !exclude.contains(a) && !a.is_loopback() && !a.is_multicast())
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn sysctl_path(key: &str) -> Result<String> {
    if !key.starts_with("net.") || key.contains('/') || key.contains("..") {
        bail!("refusing sysctl {key:?}: only net.* keys");
    }
    Ok(format!("/proc/sys/{}", key.replace('.', "/")))
}

/// A sysctl's value, `None` when it does not exist (e.g. of a missing device).
pub fn read_sysctl(key: &str) -> Result<Option<String>> {
    let path = sysctl_path(key)?;
    match std::fs::read_to_string(&path) {
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {path}")),
    }
}

pub fn write_sysctl(key: &str, value: &str) -> Result<()> {
    let path = sysctl_path(key)?;
    std::fs::write(&path, value).with_context(|| format!("writing {value} to {path}"))
}

/// Loads a kernel module (a no-op when it is loaded).
pub fn modprobe(module: &str) -> Result<()> {
    let out = Command::new("modprobe")
        .arg(module)
        .output()
        .with_context(|| format!("running modprobe {module}"))?;
    if !out.status.success() {
        bail!(
            "modprobe {module} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
