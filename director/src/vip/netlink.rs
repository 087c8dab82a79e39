//! Interface lookup and VIP address add/remove over rtnetlink, with their typed errors, and the
//! sysctl that keeps a subnet's other addresses when one is removed.

use std::net::IpAddr;

use cluster_core::vip::frames::Mac;
use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::Handle;

/// Why an interface or address operation failed; the texts name the interface or address.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("interface {0:?} not found")]
    NoSuchInterface(String),
    #[error("interface {0:?} has no Ethernet address")]
    NoEthernetAddress(String),
    #[error("interface {name:?}: {source}")]
    Interface { name: String, source: KernelError },
    /// Reading the addresses on an interface.
    #[error("{0}")]
    List(KernelError),
    #[error("adding {vip}: {source}")]
    Add { vip: IpNet, source: KernelError },
    /// Looking up the address to remove.
    #[error("{0}")]
    Lookup(KernelError),
    #[error("removing {vip}: {source}")]
    Remove { vip: IpNet, source: KernelError },
}

/// What the kernel (or a fake) said: rtnetlink's error, or an errno.
pub type KernelError = Box<dyn std::error::Error + Send + Sync>;

/// An interface as the VIP manager needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub mac: Mac,
}

pub struct Addrs {
    handle: Handle,
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

impl Addrs {
    /// Opens a route-netlink connection driven on the current runtime.
    pub fn connect() -> std::io::Result<Addrs> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Addrs { handle })
    }

    /// Looks up an interface by name: index and hardware address; `None` when there is no such
    /// interface.
    pub async fn find_link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = match links.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) if errno(&e) == Some(libc::ENODEV) => return Ok(None),
            Err(e) => {
                return Err(NetlinkError::Interface {
                    name: name.to_string(),
                    source: e.into(),
                })
            }
        };
        let mac = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(b) if b.len() == 6 => {
                    Some(<Mac>::try_from(b.as_slice()).expect("6 bytes"))
                }
                _ => None,
            })
            .ok_or_else(|| NetlinkError::NoEthernetAddress(name.to_string()))?;
        Ok(Some(Link {
            index: msg.header.index,
            mac,
        }))
    }

    /// Addresses currently on the interface.
    pub async fn list(&self, index: u32) -> Result<Vec<IpNet>, NetlinkError> {
        let mut out = Vec::new();
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetlinkError::List(e.into()))?
        {
            for a in &m.attributes {
                // IFA_LOCAL is the interface's own address on point-to-point links; on Ethernet
                // IFA_ADDRESS is.
                if let AddressAttribute::Address(ip) = a {
                    if let Ok(n) = IpNet::new(*ip, m.header.prefix_len) {
                        out.push(n);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Adds (or refreshes) a VIP. IPv6 VIPs skip duplicate address detection: the leader owns
    /// the address by election, and DAD would keep it unusable for a second or more.
    pub async fn add(&self, index: u32, vip: IpNet) -> Result<(), NetlinkError> {
        let mut req = self
            .handle
            .address()
            .add(index, vip.addr(), vip.prefix_len())
            .replace();
        if vip.addr().is_ipv6() {
            let m = req.message_mut();
            m.header.flags |= AddressHeaderFlags::Nodad;
            m.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        req.execute().await.map_err(|e| NetlinkError::Add {
            vip,
            source: e.into(),
        })
    }

    /// Removes a VIP; an address that is already gone is not an error.
    pub async fn del(&self, index: u32, vip: IpNet) -> Result<(), NetlinkError> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(vip.addr())
            .execute();
        while let Some(m) = s
            .try_next()
            .await
            .map_err(|e| NetlinkError::Lookup(e.into()))?
        {
            match self.handle.address().del(m).execute().await {
                Ok(()) => {}
                Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)) => {}
                Err(e) => {
                    return Err(NetlinkError::Remove {
                        vip,
                        source: e.into(),
                    })
                }
            }
        }
        Ok(())
    }
}

/// Whether `addr` is among `addrs` (prefix ignored).
pub fn holds(addrs: &[IpNet], addr: IpAddr) -> bool {
    addrs.iter().any(|a| a.addr() == addr)
}

/// While alive, `net.ipv4.conf.IF.promote_secondaries` is 1; dropping it restores the old value.
/// Without it the kernel deletes every secondary address of a subnet together with the subnet's
/// primary address, so removing a VIP that happens to be the primary would take unlisted
/// addresses with it. Best effort: when the sysctl cannot be written the removal goes ahead.
pub struct PromoteSecondaries {
    path: String,
    old: Option<String>,
}

impl PromoteSecondaries {
    pub fn enable(interface: &str) -> PromoteSecondaries {
        let path = format!("/proc/sys/net/ipv4/conf/{interface}/promote_secondaries");
        let old = std::fs::read_to_string(&path)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| v != "1" && std::fs::write(&path, "1").is_ok());
        PromoteSecondaries { path, old }
    }
}

impl Drop for PromoteSecondaries {
    fn drop(&mut self) {
        if let Some(old) = &self.old {
            let _ = std::fs::write(&self.path, old);
        }
    }
}
