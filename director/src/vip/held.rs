//! The held-VIPs file: the addresses this director holds (or is about to add) on which interface.
//! It is written before an address is added, read by the guard when the director dies and by the
//! next start, and both remove what it lists.

use std::path::Path;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::netlink::{holds, Addrs};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldRecord {
    pub interface: String,
    pub address: IpNet,
}

/// The records in `file`; none when it is missing or unreadable.
pub fn read(file: &Path) -> Vec<HeldRecord> {
    load(file).unwrap_or_default()
}

/// The records in `file`; none when it is missing, an error naming the file when it cannot be
/// read or parsed.
pub fn load(file: &Path) -> Result<Vec<HeldRecord>, String> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", file.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(format!("{}: {e}", file.display())),
    }
}

pub fn encode(records: &[HeldRecord]) -> Vec<u8> {
    serde_json::to_vec(records).expect("held records serialise")
}

/// Replaces `file` atomically (write a sibling, rename over).
pub fn write(file: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, file)
}

/// The listed addresses that are on their interface now (an interface that does not exist holds
/// nothing); an error when the kernel cannot be asked.
pub async fn present(addrs: &Addrs, records: &[HeldRecord]) -> Result<Vec<HeldRecord>, String> {
    let mut out = Vec::new();
    for r in records {
        let Some(link) = addrs.find_link(&r.interface).await? else {
            continue;
        };
        let on_link = addrs
            .list(link.index)
            .await
            .map_err(|e| format!("listing the addresses of {}: {e}", r.interface))?;
        if holds(&on_link, r.address.addr()) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Removes every listed address that is on its interface. Returns, for each one that was there,
/// the outcome; absent interfaces and addresses are skipped.
pub async fn remove_present(
    addrs: &Addrs,
    records: &[HeldRecord],
) -> Vec<(HeldRecord, Result<(), String>)> {
    let mut out = Vec::new();
    for r in records {
        let Ok(link) = addrs.link(&r.interface).await else {
            continue;
        };
        let present = addrs.list(link.index).await.unwrap_or_default();
        if holds(&present, r.address.addr()) {
            let _keep = r
                .address
                .addr()
                .is_ipv4()
                .then(|| PromoteSecondaries::enable(&r.interface));
            out.push((r.clone(), addrs.del(link.index, r.address).await));
        }
    }
    out
}

/// While alive, `net.ipv4.conf.IF.promote_secondaries` is 1; dropping it restores the old value.
/// Without it the kernel deletes every secondary address of a subnet together with the subnet's
/// primary address, so removing a VIP that happens to be the primary would take unlisted
/// addresses with it. Best effort: when the sysctl cannot be written the removal goes ahead.
pub(crate) struct PromoteSecondaries {
    path: String,
    old: Option<String>,
}

impl PromoteSecondaries {
    pub(crate) fn enable(interface: &str) -> PromoteSecondaries {
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
