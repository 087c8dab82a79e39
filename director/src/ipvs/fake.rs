//! `FakeIpvs`: an in-memory kernel IPVS table implementing [`IpvsKernel`], for tests that drive
//! the reconciler without root. It applies operations as the kernel does (including its errnos
//! for duplicates and missing objects), can be told to fail chosen objects or every read, and can
//! be changed behind the reconciler's back (another tool, `ipvsadm -C`) through its handle.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use cluster_core::ipvs::reconcile::{Op, Table};
use cluster_core::ipvs::{DaemonState, KDaemon, KDest, KService};
use cluster_core::model::ServiceKey;

use super::client::IpvsError;
use super::kernel::IpvsKernel;

/// The fake kernel's contents.
#[derive(Debug, Default)]
pub struct FakeTable {
    pub services: BTreeMap<ServiceKey, Table>,
    pub daemons: Vec<KDaemon>,
    /// `net.ipv4.vs.*` values written.
    pub sysctls: BTreeMap<String, String>,
    /// Objects (`Op::object` or `sync[master]`) whose operations fail, with the errno.
    pub failing: BTreeMap<String, i32>,
    /// Every read (dump) fails with this errno while set.
    pub read_errno: Option<i32>,
    /// Operations the fake was asked to execute, successful or not.
    pub executed: Vec<Op>,
}

/// A handle to one fake table; clones share it.
#[derive(Clone, Debug, Default)]
pub struct FakeIpvs(Arc<Mutex<FakeTable>>);

impl FakeIpvs {
    pub fn new() -> FakeIpvs {
        FakeIpvs::default()
    }

    /// The table, to inspect or change behind the reconciler's back.
    pub fn table(&self) -> MutexGuard<'_, FakeTable> {
        self.0.lock().expect("fake ipvs")
    }

    /// Like `ipvsadm -C`: every service goes.
    pub fn flush(&self) {
        self.table().services.clear();
    }

    /// Operations on `object` fail with `errno` from now on.
    pub fn fail(&self, object: &str, errno: i32) {
        self.table().failing.insert(object.to_string(), errno);
    }

    /// Operations on `object` succeed again.
    pub fn heal(&self, object: &str) {
        self.table().failing.remove(object);
    }

    /// Takes the operations executed so far.
    pub fn take_executed(&self) -> Vec<Op> {
        std::mem::take(&mut self.table().executed)
    }

    fn read(&self, what: &str) -> Result<MutexGuard<'_, FakeTable>, IpvsError> {
        let t = self.table();
        match t.read_errno {
            Some(errno) => Err(IpvsError::Kernel {
                op: what.to_string(),
                errno,
            }),
            None => Ok(t),
        }
    }
}

fn kernel_err(op: &Op, errno: i32) -> IpvsError {
    IpvsError::Kernel {
        op: format!("{} {}", op.verb(), op.object()),
        errno,
    }
}

impl FakeTable {
    /// Applies one operation as the kernel would: EEXIST for duplicates, ESRCH for a missing
    /// service, ENOENT for a missing destination.
    fn apply(&mut self, op: &Op) -> Result<(), i32> {
        if let Some(errno) = self.failing.get(&op.object()) {
            return Err(*errno);
        }
        match op {
            Op::NewService(s) if self.services.contains_key(&s.key) => return Err(libc::EEXIST),
            Op::NewService(s) => {
                let t = Table {
                    service: s.clone(),
                    dests: BTreeMap::new(),
                };
                self.services.insert(s.key, t);
            }
            Op::SetService(s) => service_table(&mut self.services, &s.key)?.service = s.clone(),
            Op::DelService(k) => {
                self.services.remove(k).ok_or(libc::ESRCH)?;
            }
            Op::NewDest(k, d) => {
                let t = service_table(&mut self.services, k)?;
                if t.dests.contains_key(&(d.address, d.port)) {
                    return Err(libc::EEXIST);
                }
                t.dests.insert((d.address, d.port), d.clone());
            }
            Op::SetDest(k, d) => {
                let slot = service_table(&mut self.services, k)?
                    .dests
                    .get_mut(&(d.address, d.port));
                *slot.ok_or(libc::ENOENT)? = d.clone();
            }
            Op::DelDest(k, a, p) => {
                service_table(&mut self.services, k)?
                    .dests
                    .remove(&(*a, *p))
                    .ok_or(libc::ENOENT)?;
            }
        }
        Ok(())
    }

    fn daemon_errno(&self, state: DaemonState) -> Option<i32> {
        self.failing
            .get(&format!("sync[{}]", state.as_str()))
            .copied()
    }
}

fn service_table<'a>(
    services: &'a mut BTreeMap<ServiceKey, Table>,
    key: &ServiceKey,
) -> Result<&'a mut Table, i32> {
    services.get_mut(key).ok_or(libc::ESRCH)
}

impl IpvsKernel for FakeIpvs {
    fn services(&mut self) -> Result<Vec<KService>, IpvsError> {
        let t = self.read("dump services")?;
        Ok(t.services.values().map(|t| t.service.clone()).collect())
    }

    fn dests(&mut self, key: &ServiceKey) -> Result<Vec<KDest>, IpvsError> {
        let t = self.read("dump destinations")?;
        match t.services.get(key) {
            Some(s) => Ok(s.dests.values().cloned().collect()),
            None => Err(IpvsError::Kernel {
                op: format!("dump destinations of {key}"),
                errno: libc::ESRCH,
            }),
        }
    }

    fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), IpvsError>> {
        let mut t = self.table();
        t.executed.extend(ops.iter().cloned());
        ops.iter()
            .map(|op| t.apply(op).map_err(|errno| kernel_err(op, errno)))
            .collect()
    }

    fn daemons(&mut self) -> Result<Vec<KDaemon>, IpvsError> {
        Ok(self.read("dump sync daemons")?.daemons.clone())
    }

    fn new_daemon(&mut self, d: &KDaemon) -> Result<(), IpvsError> {
        let mut t = self.table();
        let exists = t.daemons.iter().any(|x| x.state == d.state);
        let errno = t.daemon_errno(d.state).or(exists.then_some(libc::EEXIST));
        if let Some(errno) = errno {
            return Err(IpvsError::Kernel {
                op: format!("start sync daemon {}", d.state.as_str()),
                errno,
            });
        }
        t.daemons.push(d.clone());
        Ok(())
    }

    fn del_daemon(&mut self, state: DaemonState) -> Result<(), IpvsError> {
        let mut t = self.table();
        let exists = t.daemons.iter().any(|x| x.state == state);
        let errno = t.daemon_errno(state).or((!exists).then_some(libc::ESRCH));
        if let Some(errno) = errno {
            return Err(IpvsError::Kernel {
                op: format!("stop sync daemon {}", state.as_str()),
                errno,
            });
        }
        t.daemons.retain(|x| x.state != state);
        Ok(())
    }

    fn set_sysctl(&mut self, name: &str, value: &str) -> std::io::Result<()> {
        self.table()
            .sysctls
            .insert(name.to_string(), value.to_string());
        Ok(())
    }
}
