//! The `[ipvs]` section of the director config and its validation.

use serde::Deserialize;

/// The `[ipvs]` section of the director config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpvsConfig {
    /// Off only where directors share a network namespace (loopback examples and tests): they
    /// would fight over one kernel table.
    pub enabled: bool,
    /// Full passes (kernel dump + diff) this often; drift is repaired within this period.
    pub resync_ms: u64,
    /// Delete every service in the kernel that the config does not have, not only the ones this
    /// director created (like `ipvsadm -C` followed by a restore).
    pub own_all_services: bool,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        IpvsConfig {
            enabled: true,
            resync_ms: 5000,
            own_all_services: false,
        }
    }
}

/// A rejected `[ipvs]` setting, naming the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpvsConfigError {
    #[error("ipvs.resync_ms: {0} is out of range 100..=3600000")]
    ResyncOutOfRange(u64),
}

impl IpvsConfig {
    pub fn validate(&self) -> Result<(), IpvsConfigError> {
        if !(100..=3_600_000).contains(&self.resync_ms) {
            return Err(IpvsConfigError::ResyncOutOfRange(self.resync_ms));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_range_is_checked() {
        assert!(IpvsConfig::default().validate().is_ok());
        for bad in [99, 3_600_001] {
            let c = IpvsConfig {
                resync_ms: bad,
                ..Default::default()
            };
            assert_eq!(
                c.validate().unwrap_err().to_string(),
                format!("ipvs.resync_ms: {bad} is out of range 100..=3600000")
            );
        }
    }
}
