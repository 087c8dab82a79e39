//! A configuration value that is not acceptable, naming the key: what every section's check
//! returns (the director config, `[metrics]`, `[weights]`), so a section needs no access to the
//! whole configuration to report its errors.

/// A value the configuration may not have.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// `key` has a value that is not acceptable, for `reason`.
    #[error("{key}: {reason}")]
    Value { key: String, reason: String },
    /// A section's own check failed (its message names the key).
    #[error("{0}")]
    Section(Box<dyn std::error::Error + Send + Sync>),
}

impl Invalid {
    pub fn value(key: impl Into<String>, reason: impl std::fmt::Display) -> Invalid {
        Invalid::Value {
            key: key.into(),
            reason: reason.to_string(),
        }
    }

    pub(crate) fn section(e: impl std::fmt::Display) -> Invalid {
        Invalid::Section(e.to_string().into())
    }
}
