//! The one error type a rejected command carries: a class (mapped to a gRPC code), the field path
//! and a message that names the offending value.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct CommandError {
    pub code: ErrorCode,
    /// Path of the offending field, e.g. `service[tcp/10.0.0.1:80].reals[10.0.1.1:80].weight`.
    pub field: String,
    pub message: String,
}

impl CommandError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: ErrorCode::InvalidArgument,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: ErrorCode::NotFound,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn exists(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: ErrorCode::AlreadyExists,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn precondition(field: impl Into<String>, message: impl Into<String>) -> Self {
        CommandError {
            code: ErrorCode::FailedPrecondition,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}
