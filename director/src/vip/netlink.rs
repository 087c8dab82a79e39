//! Interface lookup and VIP address add/remove over rtnetlink.

use std::net::IpAddr;

use cluster_core::vip::frames::Mac;
use futures_util::TryStreamExt;
use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::Handle;

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

    /// Looks up an interface by name: index and hardware address.
    pub async fn link(&self, name: &str) -> Result<Link, String> {
        self.find_link(name)
            .await?
            .ok_or_else(|| format!("interface {name:?} not found"))
    }

    /// Like `link`, with `None` when there is no such interface.
    pub async fn find_link(&self, name: &str) -> Result<Option<Link>, String> {
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
            Err(e) => return Err(format!("interface {name:?}: {e}")),
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
            .ok_or_else(|| format!("interface {name:?} has no Ethernet address"))?;
        Ok(Some(Link {
            index: msg.header.index,
            mac,
        }))
    }

    /// Addresses currently on the interface.
    pub async fn list(&self, index: u32) -> Result<Vec<IpNet>, String> {
        let mut out = Vec::new();
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(m) = s.try_next().await.map_err(|e| e.to_string())? {
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
    pub async fn add(&self, index: u32, vip: IpNet) -> Result<(), String> {
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
        req.execute()
            .await
            .map_err(|e| format!("adding {vip}: {e}"))
    }

    /// Removes a VIP; an address that is already gone is not an error.
    pub async fn del(&self, index: u32, vip: IpNet) -> Result<(), String> {
        let mut s = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(vip.addr())
            .execute();
        while let Some(m) = s.try_next().await.map_err(|e| e.to_string())? {
            match self.handle.address().del(m).execute().await {
                Ok(()) => {}
                Err(e) if matches!(errno(&e), Some(libc::EADDRNOTAVAIL) | Some(libc::ENOENT)) => {}
                Err(e) => return Err(format!("removing {vip}: {e}")),
            }
        }
        Ok(())
    }
}

/// Whether `addr` is among `addrs` (prefix ignored).
pub fn holds(addrs: &[IpNet], addr: IpAddr) -> bool {
    addrs.iter().any(|a| a.addr() == addr)
}
