//! The desired-config TOML (`lvsctl apply`, `director` state): parse and validate never panic, and
//! a config that validates survives its own TOML.
#![no_main]

use cluster_core::model::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    if let Ok(valid) = cluster_core::validate::config(&config) {
        let back = Config::from_toml(&valid.to_toml()).expect("own TOML parses");
        assert_eq!(back, valid, "TOML round trip changed a valid config");
        // Validation is idempotent: a normalised config stays as it is.
        assert_eq!(cluster_core::validate::config(&valid).as_ref(), Ok(&valid));
    }
});
