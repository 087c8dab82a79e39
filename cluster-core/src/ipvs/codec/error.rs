//! What a decoder reports when the kernel's bytes make no sense: the attribute and the problem.

/// A reply (or a frame) the decoder could not make sense of: which attribute, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{attr}: {problem}")]
pub struct DecodeError {
    /// Kernel name of the attribute or header (`IPVS_SVC_ATTR_PORT`, `nlmsghdr`).
    pub attr: &'static str,
    pub problem: Problem,
}

/// What was wrong with an attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing")]
    Missing,
    #[error("truncated: needs {need} bytes, {have} left")]
    Truncated { need: usize, have: usize },
    #[error("payload is {got} bytes, expected {expected}")]
    Length { got: usize, expected: &'static str },
    #[error("{0}")]
    Value(String),
}

impl DecodeError {
    pub(super) fn new(attr: &'static str, problem: Problem) -> DecodeError {
        DecodeError { attr, problem }
    }

    pub(super) fn missing(attr: &'static str) -> DecodeError {
        DecodeError::new(attr, Problem::Missing)
    }

    pub(super) fn value(attr: &'static str, what: impl Into<String>) -> DecodeError {
        DecodeError::new(attr, Problem::Value(what.into()))
    }
}
