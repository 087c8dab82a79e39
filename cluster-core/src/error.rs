//! The library's error types. A rejected command carries [`CommandError`]: a class (mapped to a
//! gRPC code), the field path and a message that names the offending value. The parsers and
//! checks of the library's other inputs (endpoints, service keys, config files, netmasks, status
//! ranges, timing profiles, identities, access) return the typed enums below, whose messages
//! likewise name the value. A leaf: it uses no sibling module but `names`.

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

// ------------------------------------------------------------------------------------------------
// Parse and check errors of the library's own inputs. Each message names the offending value the
// way the CLI and the API print it, so their texts are part of the interface.

/// An `ADDRESS[:PORT]` that does not parse ([`crate::model::parse_endpoint`]). `input` is the
/// trimmed text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{input:?}: missing ']' after IPv6 address")]
    MissingBracket { input: String },
    #[error("{input:?}: {address:?} is not an IP address")]
    BadAddress { input: String, address: String },
    #[error("{input:?}: expected ':PORT' after ']'")]
    ExpectedPort { input: String },
    #[error("{input:?}: port {port:?} is not a number in 0..=65535")]
    BadPort { input: String, port: String },
    #[error("{input:?} is not an address or ADDRESS:PORT")]
    NotAnEndpoint { input: String },
    #[error("{input:?}: write IPv6 endpoints as [ADDRESS]:PORT")]
    UnbracketedIpv6 { input: String },
}

/// A service key's text form that does not parse (`tcp/10.0.0.1:80`, `fwmark/5`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ServiceKeyError {
    #[error(
        "service {input:?}: expected PROTO/ADDRESS:PORT (tcp, udp, sctp) or fwmark/MARK, fwmark6/MARK"
    )]
    Shape { input: String },
    #[error("service {input:?}: fwmark {mark:?} is not a number")]
    BadMark { input: String, mark: String },
    #[error("service {input:?}: {source}")]
    Protocol {
        input: String,
        source: crate::names::UnknownName,
    },
    #[error("service {input:?}: {source}")]
    Endpoint {
        input: String,
        source: EndpointError,
    },
    #[error("service {input:?}: missing :PORT")]
    MissingPort { input: String },
}

/// A desired-config TOML file that does not parse: the TOML parser's message (with line and
/// column), trailing whitespace trimmed. Derefs to the message for callers that reformat it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigTomlError {
    pub message: String,
}

impl std::ops::Deref for ConfigTomlError {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

/// A persistence netmask that is not valid for the service's family.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetmaskError {
    #[error("{0} is not a contiguous IPv4 netmask")]
    NotContiguous(String),
    #[error("{0} is out of range for an IPv4 prefix (0..=32)")]
    Ipv4PrefixRange(String),
    #[error("{0:?} is not an IPv4 netmask (e.g. 255.255.255.0)")]
    NotIpv4Mask(String),
    #[error("{0:?} is not an IPv6 prefix length (1..=128)")]
    NotIpv6Prefix(String),
    #[error("{0} is out of range for an IPv6 prefix length (1..=128)")]
    Ipv6PrefixRange(u32),
}

/// An HTTP status code or range (`200`, `200-399`) that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusRangeError {
    #[error("{0:?} is not a status code or range like 200-399")]
    NotARange(String),
    #[error("{0} is not an HTTP status code (100..=599)")]
    NotAStatus(u16),
    #[error("{0:?}: range start is above its end")]
    Reversed(String),
}

/// A Raft timing profile that is unknown or breaks the VIP lease invariant
/// ([`crate::vip::lease::Profile`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("unknown timing profile {0:?} (expected default or fast)")]
    Unknown(String),
    #[error("heartbeat_ms and poll interval must be above 0")]
    ZeroInterval,
    #[error("election_min_ms {election_min_ms} must exceed twice heartbeat_ms ({heartbeat_ms})")]
    ElectionMinTooShort {
        election_min_ms: u64,
        heartbeat_ms: u64,
    },
    #[error("election_max_ms {election_max_ms} must exceed election_min_ms ({election_min_ms})")]
    ElectionMaxTooShort {
        election_max_ms: u64,
        election_min_ms: u64,
    },
    #[error(
        "vip_release_ms {release_ms} must be at least two heartbeats ({min_ms} ms), or every delayed heartbeat drops the VIPs"
    )]
    ReleaseTooShort { release_ms: u64, min_ms: u64 },
    #[error(
        "vip_release_ms {release_ms} + poll {poll_ms} ms + removal {remove_ms} ms must stay below election_max_ms {election_max_ms} (the leader lease), or a new leader could add the VIPs before this one drops them"
    )]
    NoMargin {
        release_ms: u64,
        poll_ms: u64,
        remove_ms: u64,
        election_max_ms: u64,
    },
}

/// An identity (name, `urn:lvs:ROLE:NAME` URI or certificate) that is not usable
/// ([`crate::auth`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("name: {0:?} must be 1-64 characters of letters, digits, '-', '_', '.', '@'")]
    BadName(String),
    #[error("{uri:?} is not an {prefix}ROLE:NAME identity")]
    NotAnIdentity { uri: String, prefix: &'static str },
    #[error("{0:?} has no NAME after the role")]
    NoName(String),
    #[error("{uri:?}: role {tag:?} is not one of {}", .known.join(", "))]
    UnknownRole {
        uri: String,
        tag: String,
        known: Vec<&'static str>,
    },
    #[error("{uri:?}: {source}")]
    NameInUri {
        uri: String,
        source: Box<IdentityError>,
    },
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    #[error("certificate subjectAltName: {0}")]
    SubjectAltName(String),
    #[error("certificate has no subjectAltName, so no lvs identity")]
    NoSubjectAltName,
    #[error("certificate has no {0}ROLE:NAME subjectAltName URI")]
    NoIdentityUri(&'static str),
    #[error("certificate has more than one lvs identity URI")]
    ManyIdentities,
}

/// A call or report refused by the policy ([`crate::auth`]). `identity` is the caller as it is
/// logged (`agent "web-1"`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("{identity}: {path} is not a method of this server")]
    UnknownMethod { identity: String, path: String },
    #[error("{identity} may not call {path}")]
    Forbidden { identity: String, path: String },
    #[error("agent: {agent:?} is not the name in the certificate of {identity}")]
    WrongAgent { agent: String, identity: String },
    #[error(
        "addresses: {} not in the certificate of {identity} (which allows {})",
        .foreign.join(", "),
        list_or_none(.allowed)
    )]
    ForeignAddresses {
        foreign: Vec<String>,
        identity: String,
        allowed: Vec<String>,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}

/// A simulator scheduler name that is none of [`crate::sim::sched::Kind`]'s.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scheduler {0:?} (expected random, rr, wrr, lc, wlc, sed, nq, mh, \
     jsq, jsqD with D in 1..=32 such as jsq2, or policy)"
)]
pub struct UnknownSimScheduler(pub String);
