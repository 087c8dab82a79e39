//! The reconciler's only way to the kernel: the [`IpvsKernel`] trait (read the table, apply
//! operations, manage sync daemons, set the IPVS sysctls), implemented by the generic-netlink
//! [`IpvsClient`] here and by the in-memory `FakeIpvs` for tests.

use cluster_core::ipvs::codec::Request;
use cluster_core::ipvs::reconcile::Op;
use cluster_core::ipvs::{DaemonState, KDaemon, KDest, KService};
use cluster_core::model::ServiceKey;
use tracing::{info, warn};

use super::client::{IpvsClient, IpvsError};

/// What the reconciler needs of a kernel IPVS table.
pub trait IpvsKernel: Send {
    /// Every service in the table.
    fn services(&mut self) -> Result<Vec<KService>, IpvsError>;
    /// The destinations of one service.
    fn dests(&mut self, key: &ServiceKey) -> Result<Vec<KDest>, IpvsError>;
    /// Applies the operations in order; one result per operation, and a failure does not stop
    /// the ones after it.
    fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), IpvsError>>;
    /// The sync daemons running now.
    fn daemons(&mut self) -> Result<Vec<KDaemon>, IpvsError>;
    fn new_daemon(&mut self, d: &KDaemon) -> Result<(), IpvsError>;
    fn del_daemon(&mut self, state: DaemonState) -> Result<(), IpvsError>;
    /// Writes `net.ipv4.vs.NAME` (`sloppy_tcp`, `sloppy_sctp`).
    fn set_sysctl(&mut self, name: &str, value: &str) -> std::io::Result<()>;
}

/// Opens the netlink client and logs the kernel's IPVS version (the reconciler's opener).
pub fn open_client() -> Result<IpvsClient, IpvsError> {
    let mut c = IpvsClient::open()?;
    match c.info() {
        Ok(i) => {
            info!(version = %i.version_string(), conn_tab_size = i.conn_tab_size, "IPVS available")
        }
        Err(e) => warn!(error = %e, "IPVS info"),
    }
    Ok(c)
}

/// Where `net.ipv4.vs.NAME` lives.
pub fn sysctl_path(name: &str) -> String {
    format!("/proc/sys/net/ipv4/vs/{name}")
}

impl IpvsKernel for IpvsClient {
    fn services(&mut self) -> Result<Vec<KService>, IpvsError> {
        Ok(IpvsClient::services(self)?
            .into_iter()
            .map(|e| e.service)
            .collect())
    }

    fn dests(&mut self, key: &ServiceKey) -> Result<Vec<KDest>, IpvsError> {
        Ok(IpvsClient::dests(self, key)?
            .into_iter()
            .map(|e| e.dest)
            .collect())
    }

    fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), IpvsError>> {
        if ops.is_empty() {
            return Vec::new();
        }
        let reqs: Vec<Request> = ops.iter().map(request).collect();
        IpvsClient::execute(self, &reqs)
    }

    fn daemons(&mut self) -> Result<Vec<KDaemon>, IpvsError> {
        IpvsClient::daemons(self)
    }

    fn new_daemon(&mut self, d: &KDaemon) -> Result<(), IpvsError> {
        IpvsClient::new_daemon(self, d)
    }

    fn del_daemon(&mut self, state: DaemonState) -> Result<(), IpvsError> {
        IpvsClient::del_daemon(self, state)
    }

    fn set_sysctl(&mut self, name: &str, value: &str) -> std::io::Result<()> {
        std::fs::write(sysctl_path(name), value)
    }
}

/// The netlink request that performs `op`.
pub fn request(op: &Op) -> Request {
    match op {
        Op::NewService(s) => Request::new_service(s),
        Op::SetService(s) => Request::set_service(s),
        Op::DelService(k) => Request::del_service(k),
        Op::NewDest(k, d) => Request::new_dest(k, d),
        Op::SetDest(k, d) => Request::set_dest(k, d),
        Op::DelDest(k, a, p) => Request::del_dest(k, *a, *p),
    }
}
