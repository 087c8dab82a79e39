//! The VIP manager's only way to the kernel: the [`VipKernel`] trait (find an interface, list,
//! add and remove addresses, open the raw sockets that announce a VIP and listen for others
//! claiming it), implemented by rtnetlink and AF_PACKET sockets here and by `FakeNet` for tests.

use std::future::Future;
use std::io;

use ipnet::IpNet;

use super::netlink::{Addrs, Link, NetlinkError, PromoteSecondaries};
use super::packet::{ArpReceiver, PacketSender};

/// Sends complete Ethernet frames on one interface (gratuitous ARP, unsolicited NA, probes).
pub trait FrameSender {
    fn send(&self, frame: &[u8]) -> io::Result<()>;
}

/// The ARP frames arriving on one interface, without blocking.
pub trait FrameReceiver {
    fn try_recv(&self) -> Option<Vec<u8>>;
}

/// What the VIP manager needs of the host's interfaces.
pub trait VipKernel {
    type Sender: FrameSender;
    type Receiver: FrameReceiver;

    /// An interface by name; `None` when there is no such interface.
    fn find_link(&self, name: &str) -> impl Future<Output = Result<Option<Link>, NetlinkError>>;

    /// Like `find_link`, with a missing interface as an error.
    fn link(&self, name: &str) -> impl Future<Output = Result<Link, NetlinkError>> {
        async move {
            self.find_link(name)
                .await?
                .ok_or_else(|| NetlinkError::NoSuchInterface(name.to_string()))
        }
    }

    /// Addresses on the interface now.
    fn list(&self, index: u32) -> impl Future<Output = Result<Vec<IpNet>, NetlinkError>>;
    /// Adds (or refreshes) an address.
    fn add(&self, index: u32, vip: IpNet) -> impl Future<Output = Result<(), NetlinkError>>;
    /// Removes an address; one that is already gone is not an error.
    fn del(&self, index: u32, vip: IpNet) -> impl Future<Output = Result<(), NetlinkError>>;

    fn open_sender(&self, index: u32) -> io::Result<Self::Sender>;
    fn open_receiver(&self, index: u32) -> io::Result<Self::Receiver>;

    /// Keeps a subnet's other addresses while its primary IPv4 address is removed (see
    /// [`PromoteSecondaries`]); `None` where there is nothing to keep.
    fn promote_secondaries(&self, interface: &str) -> Option<PromoteSecondaries>;

    /// Whether the interface forwards IPv6 (unsolicited NAs then carry the router flag).
    fn ipv6_forwarding(&self, interface: &str) -> bool;
}

impl FrameSender for PacketSender {
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        PacketSender::send(self, frame)
    }
}

impl FrameReceiver for ArpReceiver {
    fn try_recv(&self) -> Option<Vec<u8>> {
        ArpReceiver::try_recv(self)
    }
}

impl VipKernel for Addrs {
    type Sender = PacketSender;
    type Receiver = ArpReceiver;

    async fn find_link(&self, name: &str) -> Result<Option<Link>, NetlinkError> {
        Addrs::find_link(self, name).await
    }

    async fn list(&self, index: u32) -> Result<Vec<IpNet>, NetlinkError> {
        Addrs::list(self, index).await
    }

    async fn add(&self, index: u32, vip: IpNet) -> Result<(), NetlinkError> {
        Addrs::add(self, index, vip).await
    }

    async fn del(&self, index: u32, vip: IpNet) -> Result<(), NetlinkError> {
        Addrs::del(self, index, vip).await
    }

    fn open_sender(&self, index: u32) -> io::Result<PacketSender> {
        PacketSender::open(index)
    }

    fn open_receiver(&self, index: u32) -> io::Result<ArpReceiver> {
        ArpReceiver::open(index)
    }

    fn promote_secondaries(&self, interface: &str) -> Option<PromoteSecondaries> {
        Some(PromoteSecondaries::enable(interface))
    }

    fn ipv6_forwarding(&self, interface: &str) -> bool {
        std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{interface}/forwarding"))
            .map(|v| v.trim() == "1")
            .unwrap_or(false)
    }
}
