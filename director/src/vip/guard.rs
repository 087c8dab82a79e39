//! The VIP guard: a small child process that outlives a director killed with SIGKILL (or crashed)
//! and removes the VIPs it held, so the host stops answering ARP for them at once instead of
//! when the director is restarted. It waits for end-of-file on a pipe only the director holds,
//! then removes every address in the director's held-VIPs file.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::held;
use super::netlink::Addrs;

/// argv[1] that runs the guard instead of a director (internal; not in `--help`).
pub const GUARD_ARG: &str = "vip-guard";

/// Starts the guard for `held_file`; the director keeps the returned child (and so the write
/// end of its stdin pipe) for its whole life.
pub fn start(held_file: &Path) -> std::io::Result<Child> {
    Command::new(std::env::current_exe()?)
        .arg(GUARD_ARG)
        .arg(held_file)
        .stdin(Stdio::piped())
        .spawn()
}

/// The guard's main: returns the process exit code.
pub fn run(args: &[String]) -> i32 {
    let Some(file) = args.first().map(PathBuf::from) else {
        eprintln!("director {GUARD_ARG}: missing held-VIPs file");
        return 2;
    };
    // The director handles these; the guard must live until the director is gone.
    // SAFETY: setting signal dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    let mut buf = [0u8; 64];
    let mut stdin = std::io::stdin();
    // Blocks until the director exits, however it exits.
    while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}

    let records = held::read(&file);
    if records.is_empty() {
        return 0;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("guard runtime");
    rt.block_on(async {
        let addrs = match Addrs::connect() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("director {GUARD_ARG}: netlink: {e}");
                return 1;
            }
        };
        let mut failed = false;
        for (r, res) in held::remove_present(&addrs, &records).await {
            match res {
                Ok(()) => eprintln!(
                    "director {GUARD_ARG}: director exited holding {} on {}; removed it",
                    r.address, r.interface
                ),
                Err(e) => {
                    failed = true;
                    eprintln!("director {GUARD_ARG}: could not remove {}: {e}", r.address)
                }
            }
        }
        let _ = held::write(&file, &held::encode(&[]));
        i32::from(failed)
    })
}
