//! Wall-clock milliseconds since the Unix epoch: the one time unit the API, the history, the
//! metrics and the tests exchange. A clock before 1970 reads as 0 rather than panicking.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> u64 {
    unix_ms_at(SystemTime::now())
}

/// Milliseconds since the Unix epoch at `t` (0 for a time before the epoch).
pub fn unix_ms_at(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn before_the_epoch_reads_zero_and_after_counts_millis() {
        assert_eq!(unix_ms_at(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_ms_at(UNIX_EPOCH + Duration::from_millis(1234)), 1234);
        assert!(unix_ms() > 1_600_000_000_000);
    }
}
