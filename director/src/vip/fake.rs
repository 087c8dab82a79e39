//! `FakeNet`: in-memory interfaces implementing [`VipKernel`], for tests that drive the VIP
//! manager without root. It keeps the addresses per interface, records every frame sent, lets a
//! test queue ARP frames as if another host sent them, and can make adding an address fail.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use cluster_core::vip::frames::Mac;
use ipnet::IpNet;

use super::kernel::{FrameReceiver, FrameSender, VipKernel};
use super::netlink::{Link, NetlinkError, PromoteSecondaries};

/// One fake interface.
#[derive(Clone, Debug)]
pub struct FakeLink {
    pub link: Link,
    pub addresses: Vec<IpNet>,
}

/// The fake host's interfaces and traffic.
#[derive(Debug, Default)]
pub struct FakeNetState {
    pub links: BTreeMap<String, FakeLink>,
    /// Frames sent, with the interface index.
    pub sent: Vec<(u32, Vec<u8>)>,
    /// Frames waiting to be received, by interface index.
    pub inbound: BTreeMap<u32, VecDeque<Vec<u8>>>,
    /// Adding one of these addresses fails with the errno.
    pub add_errno: BTreeMap<IpAddr, i32>,
}

/// A handle to one fake host; clones share it.
#[derive(Clone, Debug, Default)]
pub struct FakeNet(Arc<Mutex<FakeNetState>>);

impl FakeNet {
    pub fn new() -> FakeNet {
        FakeNet::default()
    }

    pub fn state(&self) -> MutexGuard<'_, FakeNetState> {
        self.0.lock().expect("fake net")
    }

    /// Adds an interface with no addresses.
    pub fn add_link(&self, name: &str, index: u32, mac: Mac) {
        let link = FakeLink {
            link: Link { index, mac },
            addresses: Vec::new(),
        };
        self.state().links.insert(name.to_string(), link);
    }

    /// The addresses on `name` now.
    pub fn addresses(&self, name: &str) -> Vec<IpNet> {
        self.state()
            .links
            .get(name)
            .map(|l| l.addresses.clone())
            .unwrap_or_default()
    }

    /// Takes the frames sent so far.
    pub fn take_sent(&self) -> Vec<(u32, Vec<u8>)> {
        std::mem::take(&mut self.state().sent)
    }

    /// Queues a frame as received on interface `index`.
    pub fn receive(&self, index: u32, frame: Vec<u8>) {
        self.state()
            .inbound
            .entry(index)
            .or_default()
            .push_back(frame);
    }

    fn with_link<T>(
        &self,
        index: u32,
        f: impl FnOnce(&mut FakeLink) -> T,
    ) -> Result<T, NetlinkError> {
        let mut st = self.state();
        match st.links.values_mut().find(|l| l.link.index == index) {
            Some(l) => Ok(f(l)),
            None => Err(NetlinkError::List(Box::new(io::Error::from_raw_os_error(
                libc::ENODEV,
            )))),
        }
    }
}

/// A raw socket on one fake interface.
pub struct FakeSocket {
    net: FakeNet,
    index: u32,
}

impl FrameSender for FakeSocket {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        self.net.state().sent.push((self.index, frame.to_vec()));
        Ok(())
    }
}

impl FrameReceiver for FakeSocket {
    fn try_recv(&self) -> Option<Vec<u8>> {
        self.net.state().inbound.get_mut(&self.index)?.pop_front()
    }
}

impl VipKernel for FakeNet {
    type Sender = FakeSocket;
    type Receiver = FakeSocket;

    async fn find_link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        Ok(self.state().links.get(name).map(|l| l.link.clone()))
    }

    async fn list(&self, index: u32) -> Result<Vec<IpNet>, NetlinkError> {
        self.with_link(index, |l| l.addresses.clone())
    }

    async fn add(&self, index: u32, vip: IpNet) -> Result<(), NetlinkError> {
        if let Some(errno) = self.state().add_errno.get(&vip.addr()) {
            let source = Box::new(io::Error::from_raw_os_error(*errno));
            return Err(NetlinkError::Add { vip, source });
        }
        self.with_link(index, |l| {
            l.addresses.retain(|a| a.addr() != vip.addr());
            l.addresses.push(vip);
        })
    }

    async fn del(&self, index: u32, vip: IpNet) -> Result<(), NetlinkError> {
        self.with_link(index, |l| l.addresses.retain(|a| a.addr() != vip.addr()))
    }

    fn open_sender(&self, index: u32) -> io::Result<FakeSocket> {
        Ok(FakeSocket {
            net: self.clone(),
            index,
        })
    }

    fn open_receiver(&self, index: u32) -> io::Result<FakeSocket> {
        self.open_sender(index)
    }

    fn promote_secondaries(&self, _interface: &str) -> Option<PromoteSecondaries> {
        None
    }

    fn ipv6_forwarding(&self, _interface: &str) -> bool {
        false
    }
}
