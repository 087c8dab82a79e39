//! Who a gRPC peer is and what it may call. An identity travels in the peer's certificate as one
//! URI subject-alternative name `urn:lvs:ROLE:NAME` (agents also carry the real-server addresses
//! they may report for as IP SANs); the policy maps each gRPC method to the roles allowed to call
//! it. Pure, so the rules are tested without TLS.

use std::fmt;
use std::net::IpAddr;

use crate::error::{AccessError, IdentityError};

/// The scheme and namespace of identity URIs.
pub const URI_PREFIX: &str = "urn:lvs:";

crate::named_enum! {
    /// What a certificate entitles its holder to. Its name is the ROLE part of the identity URI.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Role {
        /// A cluster member: Raft peer, and any API call (it forwards operators' calls to the
        /// leader).
        Director => "director",
        /// A realserver-agent: reports load for the addresses in its certificate, nothing else.
        Agent => "agent",
        /// An operator who may change the configuration and membership.
        Admin => "operator-admin",
        /// An operator who may only read (dry-run applies included).
        ReadOnly => "operator-read",
    }
    unknown = "role", case_insensitive = false, listing = Or;
    // Display is the human description below, not the URI tag.
    display = false;
}

impl Role {
    /// The ROLE part of the identity URI.
    pub fn tag(self) -> &'static str {
        self.as_str()
    }

    pub fn from_tag(tag: &str) -> Option<Role> {
        tag.parse().ok()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Director => "director",
            Role::Agent => "agent",
            Role::Admin => "admin operator",
            Role::ReadOnly => "read-only operator",
        })
    }
}

/// A peer as its certificate names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub role: Role,
    pub name: String,
    /// IP SANs: for an agent, the real-server addresses it may report for.
    pub addresses: Vec<IpAddr>,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.role, self.name)
    }
}

impl Identity {
    /// The principal recorded in the history for calls made with this certificate.
    pub fn principal(&self) -> String {
        format!("{}:{}", self.role.tag(), self.name)
    }
}

/// Whether `name` is usable in an identity URI: what a host or user name needs, no separators
/// that would make the URI ambiguous.
pub fn check_name(name: &str) -> Result<(), IdentityError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(IdentityError::BadName(name.to_string()))
    }
}

pub fn identity_uri(role: Role, name: &str) -> String {
    format!("{URI_PREFIX}{}:{name}", role.tag())
}

/// `urn:lvs:ROLE:NAME` → role and name.
pub fn parse_identity_uri(uri: &str) -> Result<(Role, String), IdentityError> {
    let rest = uri
        .strip_prefix(URI_PREFIX)
        .ok_or_else(|| IdentityError::NotAnIdentity {
            uri: uri.to_string(),
            prefix: URI_PREFIX,
        })?;
    let (tag, name) = rest
        .split_once(':')
        .ok_or_else(|| IdentityError::NoName(uri.to_string()))?;
    let role = Role::from_tag(tag).ok_or_else(|| IdentityError::UnknownRole {
        uri: uri.to_string(),
        tag: tag.to_string(),
        known: Role::NAMES.to_vec(),
    })?;
    check_name(name).map_err(|e| IdentityError::NameInUri {
        uri: uri.to_string(),
        source: Box::new(e),
    })?;
    Ok((role, name.to_string()))
}

/// The identity in a DER certificate (the TLS layer has already verified its chain).
pub fn identity_from_der(der: &[u8]) -> Result<Identity, IdentityError> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::Certificate(e.to_string()))?;
    let san = cert
        .subject_alternative_name()
        .map_err(|e| IdentityError::SubjectAltName(e.to_string()))?
        .ok_or(IdentityError::NoSubjectAltName)?;
    let mut ids = Vec::new();
    let mut addresses = Vec::new();
    for n in &san.value.general_names {
        match n {
            GeneralName::URI(u) if u.starts_with(URI_PREFIX) => ids.push(parse_identity_uri(u)?),
            GeneralName::IPAddress(b) => {
                if let Ok(a) = <[u8; 4]>::try_from(*b) {
                    addresses.push(IpAddr::from(a));
                } else if let Ok(a) = <[u8; 16]>::try_from(*b) {
                    addresses.push(IpAddr::from(a));
                }
            }
            _ => {}
        }
    }
    match ids.as_slice() {
        [(role, name)] => Ok(Identity {
            role: *role,
            name: name.clone(),
            addresses,
        }),
        [] => Err(IdentityError::NoIdentityUri(URI_PREFIX)),
        _ => Err(IdentityError::ManyIdentities),
    }
}

/// What a gRPC method needs of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Raft traffic between directors.
    Raft,
    /// Agent load reports.
    Report,
    /// Reads of config, history, kernel tables, agents, status.
    Read,
    /// `Apply`: a read when it is a dry run, else a write; the handler decides.
    Apply,
    /// Config and membership changes.
    Write,
    /// Health checks and server reflection: any certificate of the cluster's CA.
    Public,
}

const READS: [&str; 7] = [
    "/lvs.v1.Admin/GetConfig",
    "/lvs.v1.Admin/History",
    "/lvs.v1.Admin/Watch",
    "/lvs.v1.Admin/GetIpvs",
    "/lvs.v1.Admin/ListConns",
    "/lvs.v1.Admin/GetAgents",
    "/lvs.v1.Cluster/Status",
];

/// The access a gRPC path (`/package.Service/Method`) needs; `None` for paths no server here
/// serves, which are refused.
pub fn access(path: &str) -> Option<Access> {
    if READS.contains(&path) {
        return Some(Access::Read);
    }
    if path == "/lvs.v1.Admin/Apply" {
        return Some(Access::Apply);
    }
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if method.is_empty() {
        return None;
    }
    match service {
        "lvs.raft.v1.Raft" => Some(Access::Raft),
        "lvs.v1.AgentReports" => Some(Access::Report),
        // Everything else on these services changes something: new methods default to writes.
        "lvs.v1.Admin" | "lvs.v1.Cluster" => Some(Access::Write),
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => Some(Access::Public),
        _ => None,
    }
}

/// Whether `role` may make a call needing `access`.
pub fn allows(role: Role, access: Access) -> bool {
    use Role::*;
    match access {
        Access::Raft => role == Director,
        Access::Report => role == Agent,
        Access::Read | Access::Apply => matches!(role, Director | Admin | ReadOnly),
        Access::Write => matches!(role, Director | Admin),
        Access::Public => true,
    }
}

/// Checks a call to `path` by `id`; the error says who was refused what, for the log and the
/// caller.
pub fn authorize(id: &Identity, path: &str) -> Result<Access, AccessError> {
    let Some(a) = access(path) else {
        return Err(AccessError::UnknownMethod {
            identity: id.to_string(),
            path: path.to_string(),
        });
    };
    if allows(id.role, a) {
        Ok(a)
    } else {
        Err(AccessError::Forbidden {
            identity: id.to_string(),
            path: path.to_string(),
        })
    }
}

/// Checks that an agent reports under the name in its certificate and only for addresses the
/// certificate lists.
pub fn check_report(id: &Identity, agent: &str, reported: &[IpAddr]) -> Result<(), AccessError> {
    if agent != id.name {
        return Err(AccessError::WrongAgent {
            agent: agent.to_string(),
            identity: id.to_string(),
        });
    }
    let foreign: Vec<String> = reported
        .iter()
        .filter(|a| !id.addresses.contains(a))
        .map(|a| a.to_string())
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(AccessError::ForeignAddresses {
        foreign,
        identity: id.to_string(),
        allowed: id.addresses.iter().map(|a| a.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(role: Role, addrs: &[&str]) -> Identity {
        Identity {
            role,
            name: "n1".into(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    fn cert(sans: Vec<rcgen::SanType>) -> Vec<u8> {
        let mut p = rcgen::CertificateParams::default();
        p.subject_alt_names = sans;
        let key = rcgen::KeyPair::generate().unwrap();
        p.self_signed(&key).unwrap().der().to_vec()
    }

    fn uri(s: &str) -> rcgen::SanType {
        rcgen::SanType::URI(s.try_into().unwrap())
    }

    #[test]
    fn uris_round_trip_and_bad_ones_name_the_part() {
        for r in Role::ALL {
            let u = identity_uri(r, "web-1.example");
            assert_eq!(parse_identity_uri(&u).unwrap(), (r, "web-1.example".into()));
        }
        let e = parse_identity_uri("urn:lvs:root:x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("role \"root\""), "{e}");
        assert!(parse_identity_uri("urn:lvs:agent:").is_err());
        assert!(parse_identity_uri("urn:lvs:agent:a/b").is_err());
        assert!(parse_identity_uri("https://x").is_err());
    }

    #[test]
    fn identity_comes_from_the_uri_and_ip_sans() {
        let der = cert(vec![
            uri("urn:lvs:agent:web-1"),
            rcgen::SanType::IpAddress("10.0.1.11".parse().unwrap()),
            rcgen::SanType::IpAddress("2001:db8::11".parse().unwrap()),
            rcgen::SanType::DnsName("web-1".try_into().unwrap()),
            uri("https://unrelated.example/"),
        ]);
        let got = identity_from_der(&der).unwrap();
        assert_eq!(got, {
            let mut i = id(Role::Agent, &["10.0.1.11", "2001:db8::11"]);
            i.name = "web-1".into();
            i
        });
        assert_eq!(got.principal(), "agent:web-1");
    }

    #[test]
    fn certificates_without_exactly_one_identity_are_refused() {
        let none = cert(vec![rcgen::SanType::DnsName("x".try_into().unwrap())]);
        assert!(identity_from_der(&none)
            .unwrap_err()
            .to_string()
            .contains("no urn:lvs:"));
        let two = cert(vec![
            uri("urn:lvs:agent:a"),
            uri("urn:lvs:operator-admin:b"),
        ]);
        assert!(identity_from_der(&two)
            .unwrap_err()
            .to_string()
            .contains("more than one"));
        assert!(identity_from_der(b"junk").is_err());
    }

    #[test]
    fn policy() {
        use Role::*;
        let table = [
            ("/lvs.raft.v1.Raft/Vote", [true, false, false, false]),
            (
                "/lvs.raft.v1.Raft/AppendEntries",
                [true, false, false, false],
            ),
            ("/lvs.v1.AgentReports/Report", [false, true, false, false]),
            ("/lvs.v1.Admin/GetConfig", [true, false, true, true]),
            ("/lvs.v1.Admin/Watch", [true, false, true, true]),
            ("/lvs.v1.Cluster/Status", [true, false, true, true]),
            ("/lvs.v1.Admin/Apply", [true, false, true, true]),
            ("/lvs.v1.Admin/AddService", [true, false, true, false]),
            ("/lvs.v1.Admin/SomethingNew", [true, false, true, false]),
            ("/lvs.v1.Cluster/AddMember", [true, false, true, false]),
            ("/grpc.health.v1.Health/Check", [true, true, true, true]),
        ];
        for (path, want) in table {
            for (r, w) in [Director, Agent, Admin, ReadOnly].into_iter().zip(want) {
                assert_eq!(
                    authorize(&id(r, &[]), path).is_ok(),
                    w,
                    "{r} calling {path}"
                );
            }
        }
        for path in ["/other.Svc/M", "/lvs.v1.Admin/", "nonsense", "/"] {
            let e = authorize(&id(Admin, &[]), path).unwrap_err().to_string();
            assert!(e.contains("not a method"), "{e}");
        }
        let e = authorize(&id(ReadOnly, &[]), "/lvs.v1.Admin/AddService")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "read-only operator \"n1\" may not call /lvs.v1.Admin/AddService"
        );
    }

    #[test]
    fn agents_report_only_their_addresses() {
        let a = id(Role::Agent, &["10.0.1.11"]);
        let ok: Vec<IpAddr> = vec!["10.0.1.11".parse().unwrap()];
        assert!(check_report(&a, "n1", &ok).is_ok());
        let e = check_report(&a, "n2", &ok).unwrap_err().to_string();
        assert_eq!(
            e,
            "agent: \"n2\" is not the name in the certificate of agent \"n1\""
        );
        let bad: Vec<IpAddr> = vec!["10.0.1.11".parse().unwrap(), "10.0.1.12".parse().unwrap()];
        let e = check_report(&a, "n1", &bad).unwrap_err().to_string();
        assert!(
            e.starts_with("addresses: 10.0.1.12 not in the certificate of agent \"n1\""),
            "{e}"
        );
        assert!(e.contains("allows 10.0.1.11"), "{e}");
    }
}
