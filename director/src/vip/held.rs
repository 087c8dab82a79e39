//! The held-VIPs file: the addresses this director holds (or is about to add) on which interface.
//! It is written before an address is added, read by the guard when the director dies and by the
//! next start, and both remove what it lists.

use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::kernel::VipKernel;
use super::netlink::{holds, NetlinkError};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HeldRecord {
    pub interface: String,
    pub address: IpNet,
}

/// The records in `file`; none when it is missing or unreadable.
pub fn read(file: &Path) -> Vec<HeldRecord> {
    load(file).unwrap_or_default()
}

/// A held-VIPs file that cannot be read or parsed; the text names the file.
#[derive(Debug, thiserror::Error)]
pub enum HeldFileError {
    #[error("{}: {source}", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", file.display())]
    Parse {
        file: PathBuf,
        source: serde_json::Error,
    },
}

/// Why the addresses on an interface could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum PresentError {
    #[error(transparent)]
    Link(NetlinkError),
    #[error("listing the addresses of {interface}: {source}")]
    List {
        interface: String,
        source: NetlinkError,
    },
}

/// The records in `file`; none when it is missing, an error naming the file when it cannot be
/// read or parsed.
pub fn load(file: &Path) -> Result<Vec<HeldRecord>, HeldFileError> {
    match std::fs::read(file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| HeldFileError::Parse {
            file: file.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(HeldFileError::Read {
            file: file.to_path_buf(),
            source,
        }),
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
pub async fn present(
    addrs: &impl VipKernel,
    records: &[HeldRecord],
) -> Result<Vec<HeldRecord>, PresentError> {
    let mut out = Vec::new();
    for r in records {
        let link = addrs
            .find_link(&r.interface)
            .await
            .map_err(PresentError::Link)?;
        let Some(link) = link else {
            continue;
        };
        let on_link = addrs
            .list(link.index)
            .await
            .map_err(|source| PresentError::List {
                interface: r.interface.clone(),
                source,
            })?;
        if holds(&on_link, r.address.addr()) {
            out.push(r.clone());
        }
    }
    Ok(out)
}

/// Removes every listed address that is on its interface. Returns, for each one that was there,
/// the outcome; absent interfaces and addresses are skipped.
pub async fn remove_present(
    addrs: &impl VipKernel,
    records: &[HeldRecord],
) -> Vec<(HeldRecord, Result<(), NetlinkError>)> {
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
                .then(|| addrs.promote_secondaries(&r.interface));
            out.push((r.clone(), addrs.del(link.index, r.address).await));
        }
    }
    out
}
