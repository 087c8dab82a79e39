//! Times as views print them (text and JSON alike): RFC 3339 in UTC.

use std::time::{Duration, UNIX_EPOCH};

/// RFC 3339 UTC, or the raw milliseconds when the time is beyond what RFC 3339 can say.
pub fn rfc3339(time_ms: u64, millis: bool) -> String {
    let Some(t) = UNIX_EPOCH.checked_add(Duration::from_millis(time_ms)) else {
        return format!("@{time_ms}ms");
    };
    // humantime refuses years past 9999 with a formatting error, which `to_string` would panic on.
    if time_ms / 1000 >= 253_402_300_800 {
        return format!("@{time_ms}ms");
    }
    if millis {
        humantime::format_rfc3339_millis(t).to_string()
    } else {
        humantime::format_rfc3339_seconds(t).to_string()
    }
}
