//! `realserver-agent`: runs on each real server. This first version only inspects whether the host
//! is prepared for direct routing / tunnelling (the ARP sysctls that keep a real server from
//! answering ARP for the VIP); setup, load reports and drain/ready come with the agent milestone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(version, about = "Agent on an LVS real server")]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Report whether the ARP sysctls are set for DR/TUN (arp_ignore=1, arp_announce=2).
    /// Exits 1 when they are not.
    Check {
        /// Root of the sysctl tree (for tests).
        #[arg(long, default_value = "/proc/sys/net/ipv4/conf", hide = true)]
        sysctl_root: PathBuf,
    },
}

/// One sysctl the DR/TUN setup needs, with the value it needs (at least).
struct Want {
    iface: &'static str,
    key: &'static str,
    min: u32,
}

const WANTS: [Want; 4] = [
    Want {
        iface: "all",
        key: "arp_ignore",
        min: 1,
    },
    Want {
        iface: "all",
        key: "arp_announce",
        min: 2,
    },
    Want {
        iface: "lo",
        key: "arp_ignore",
        min: 1,
    },
    Want {
        iface: "lo",
        key: "arp_announce",
        min: 2,
    },
];

/// Returns one line per sysctl and whether all are as DR/TUN needs.
fn check(root: &Path) -> Result<(Vec<String>, bool)> {
    let mut lines = Vec::new();
    let mut ok = true;
    for w in &WANTS {
        let p = root.join(w.iface).join(w.key);
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        let v: u32 = text
            .trim()
            .parse()
            .with_context(|| format!("{}: {:?} is not a number", p.display(), text.trim()))?;
        let good = v >= w.min;
        ok &= good;
        lines.push(format!(
            "{:<4} {}.{} = {} (want {}{})",
            if good { "ok" } else { "FIX" },
            w.iface,
            w.key,
            v,
            w.min,
            if w.min == 1 { " or more" } else { "" }
        ));
    }
    Ok((lines, ok))
}

fn main() {
    let args = Args::parse();
    match args.cmd {
        Cmd::Check { sysctl_root } => match check(&sysctl_root) {
            Ok((lines, ok)) => {
                for l in lines {
                    println!("{l}");
                }
                std::process::exit(if ok { 0 } else { 1 });
            }
            Err(e) => {
                eprintln!("realserver-agent: error: {e:#}");
                std::process::exit(1);
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(values: [u32; 4]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (w, v) in WANTS.iter().zip(values) {
            std::fs::create_dir_all(d.path().join(w.iface)).unwrap();
            std::fs::write(d.path().join(w.iface).join(w.key), format!("{v}\n")).unwrap();
        }
        d
    }

    #[test]
    fn reports_missing_and_good_settings() {
        let d = tree([1, 2, 1, 2]);
        let (lines, ok) = check(d.path()).unwrap();
        assert!(ok);
        assert_eq!(lines.len(), 4);
        let d = tree([0, 2, 1, 1]);
        let (lines, ok) = check(d.path()).unwrap();
        assert!(!ok);
        assert!(lines[0].starts_with("FIX"));
        assert!(lines[3].starts_with("FIX"));
        assert!(check(Path::new("/nonexistent")).is_err());
    }
}
