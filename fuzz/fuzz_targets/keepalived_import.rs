//! `lvsctl import keepalived`: any text gives an error or a config with warnings (each naming a
//! file and line), never a panic. The input is split at NUL bytes into `keepalived.conf` and files
//! `conf.d/1.conf`, `conf.d/2.conf`, ... in memory, so `include` (globs, nesting, cycles) is
//! exercised too.
#![no_main]

use std::path::{Path, PathBuf};

use cluster_core::model::Config;
use libfuzzer_sys::fuzz_target;
use lvsctl::import::keepalived::{self, Memory};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let main = parts.next().unwrap_or("");
    let mut src = Memory::default();
    src.files
        .insert(PathBuf::from("keepalived.conf"), main.to_string());
    for (i, part) in parts.take(8).enumerate() {
        src.files.insert(
            PathBuf::from(format!("conf.d/{}.conf", i + 1)),
            part.to_string(),
        );
    }
    match keepalived::from_path(&src, Path::new("keepalived.conf")) {
        Ok(im) => {
            assert!(im
                .warnings
                .iter()
                .all(|w| w.starts_with("keepalived.conf:") || w.starts_with("conf.d/")));
            if let Ok(valid) = cluster_core::validate::config(&im.config) {
                let back = Config::from_toml(&valid.to_toml()).expect("own TOML parses");
                assert_eq!(back, valid);
            }
        }
        Err(e) => {
            let e = e.to_string();
            assert!(
                e.starts_with("keepalived.conf:") || e.starts_with("conf.d/"),
                "{e}"
            )
        }
    }
    // The same text with no files around it.
    let _ = keepalived::parse("fuzz", main);
});
