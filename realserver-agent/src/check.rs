//! `realserver-agent check`: reports whether the ARP sysctls are set as DR/TUN needs.

use std::path::Path;

use anyhow::{Context, Result};

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
pub fn check(root: &Path) -> Result<(Vec<String>, bool)> {
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
