//! `director --config FILE --release-vips`: removes the addresses the held-VIPs file still lists.
//! For systemd's `ExecStopPost=`, which runs after the director is gone however it went: when
//! it was killed together with its guard (SIGKILL of the whole unit, the OOM killer, a
//! watchdog abort), nothing else removes the VIPs before the next start. Addresses not in the
//! file are never touched, and a director that is still running on the same data directory
//! makes it refuse.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::held::{self, HeldRecord};
use super::netlink::Addrs;

/// The held-VIPs file in a director's data directory.
pub const HELD_FILE: &str = "vips-held.json";

/// Runs the release for the director whose data directory is `data_dir`; returns the exit code:
/// 0 when none of the listed addresses is left on its interface, 1 otherwise (or when the file
/// cannot be read, or a director is running on `data_dir`).
pub fn run(data_dir: &Path) -> i32 {
    match store_in_use(data_dir) {
        Ok(false) => {}
        Ok(true) => {
            eprintln!(
                "director --release-vips: a director is running on {}: stop it first (it \
                 releases its VIPs itself when it stops)",
                data_dir.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!("director --release-vips: {e}");
            return 1;
        }
    }
    let file = data_dir.join(HELD_FILE);
    let records = match held::load(&file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("director --release-vips: {e}");
            return 1;
        }
    };
    if records.is_empty() {
        println!("{}: no VIPs listed", file.display());
        return 0;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("director --release-vips: starting a runtime: {e}");
            return 1;
        }
    };
    rt.block_on(release(&file, &records))
}

async fn release(file: &Path, records: &[HeldRecord]) -> i32 {
    let addrs = match Addrs::connect() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("director --release-vips: netlink: {e}");
            return 1;
        }
    };
    let mut removed = 0;
    for (r, res) in held::remove_present(&addrs, records).await {
        match res {
            Ok(()) => {
                removed += 1;
                println!("removed {} from {}", r.address, r.interface);
            }
            Err(e) => eprintln!(
                "director --release-vips: could not remove {} from {}: {e}",
                r.address, r.interface
            ),
        }
    }
    // Whatever the removals said, the kernel decides what is left.
    match held::present(&addrs, records).await {
        Ok(left) if left.is_empty() => {
            println!(
                "{}: {} listed, {removed} removed, none left",
                file.display(),
                records.len()
            );
            0
        }
        Ok(left) => {
            for r in left {
                eprintln!(
                    "director --release-vips: {} is still on {}",
                    r.address, r.interface
                );
            }
            1
        }
        Err(e) => {
            eprintln!("director --release-vips: checking what is left: {e}");
            1
        }
    }
}

/// Whether a director has the Raft store in `data_dir` open: sled holds an exclusive `flock` on
/// `raft.sled/db` for as long as the database is open.
fn store_in_use(data_dir: &Path) -> Result<bool, StoreLockError> {
    let db = data_dir.join("raft.sled").join("db");
    let f = match std::fs::File::open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(StoreLockError::Open { db, source }),
    };
    // SAFETY: flock on a descriptor we own; the lock, if we get it, goes with `f`.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r == 0 {
        return Ok(false);
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(true)
    } else {
        Err(StoreLockError::Lock { db, source: e })
    }
}

/// Why `store_in_use` could not tell; the text names the database file.
#[derive(Debug, thiserror::Error)]
enum StoreLockError {
    #[error("{}: {source}", db.display())]
    Open { db: PathBuf, source: std::io::Error },
    #[error("locking {}: {source}", db.display())]
    Lock { db: PathBuf, source: std::io::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_store_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!store_in_use(dir.path()).unwrap(), "no store yet");
        let sled_dir = dir.path().join("raft.sled");
        std::fs::create_dir_all(&sled_dir).unwrap();
        let db = std::fs::File::create(sled_dir.join("db")).unwrap();
        assert!(!store_in_use(dir.path()).unwrap(), "unlocked store");
        // SAFETY: flock on a descriptor we own.
        assert_eq!(
            unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        assert!(store_in_use(dir.path()).unwrap(), "locked store");
        drop(db);
        assert!(!store_in_use(dir.path()).unwrap(), "lock released");
    }

    #[test]
    fn nothing_listed_is_success() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(run(dir.path()), 0);
        std::fs::write(dir.path().join(HELD_FILE), "[]").unwrap();
        assert_eq!(run(dir.path()), 0);
        std::fs::write(dir.path().join(HELD_FILE), "not json").unwrap();
        assert_eq!(run(dir.path()), 1);
    }
}
