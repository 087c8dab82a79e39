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
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
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
            out.push((r.clone(), addrs.del(link.index, r.address).await));
        }
    }
    out
}
