//! `lvsctl import ipvsadm`: any text gives a config and warnings (each `NAME:LINE: ...`), never a
//! panic; what validates survives its own TOML.
#![no_main]

use cluster_core::model::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let im = lvsctl::import::ipvsadm("fuzz", text);
    assert!(im.warnings.iter().all(|w| w.starts_with("fuzz:")));
    if let Ok(valid) = cluster_core::validate::config(&im.config) {
        let back = Config::from_toml(&valid.to_toml()).expect("own TOML parses");
        assert_eq!(back, valid);
    }
});
