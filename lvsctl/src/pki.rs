//! `lvsctl pki init|issue`: a small certificate authority for the cluster's mTLS, enough for a
//! lab or a small site. Certificates carry the identity the directors authorize by (a URI SAN
//! `urn:lvs:ROLE:NAME`, see `cluster_core::auth`); director and agent certificates also list
//! their addresses as IP SANs. Keys are ECDSA P-256, written 0600, never overwritten unless
//! `--force`.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use cluster_core::auth::{self, Role};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

#[derive(Debug, Subcommand)]
pub enum PkiVerb {
    /// Create the cluster CA (DIR/ca.pem, DIR/ca.key)
    Init {
        #[command(flatten)]
        out: OutArgs,
        /// The CA's common name
        #[arg(long, default_value = "lvs cluster CA")]
        cn: String,
        /// Days the CA is valid
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue a certificate signed by the CA in DIR (DIR/NAME.pem, DIR/NAME.key)
    Issue(IssueArgs),
}

#[derive(Debug, Args)]
pub struct OutArgs {
    /// Directory holding the CA and the issued files
    #[arg(long, default_value = "pki")]
    pub dir: PathBuf,
    /// Replace files that already exist
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A director: Raft peer and API server; --ip/--dns name the addresses others dial
    Director,
    /// A realserver-agent: --ip lists the real-server addresses it may report for
    Agent,
    /// An operator using lvsctl: --role admin (changes) or read (reads, dry runs)
    Operator,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OperatorRole {
    Admin,
    Read,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    #[arg(value_enum)]
    pub kind: Kind,
    /// The identity's name (e.g. director-1, web-1, alice); also the file name
    pub name: String,
    /// IP address to put in the certificate (repeatable)
    #[arg(long = "ip", value_name = "ADDR")]
    pub ips: Vec<IpAddr>,
    /// DNS name to put in the certificate (repeatable; directors only)
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// Operator role
    #[arg(long, value_enum)]
    pub role: Option<OperatorRole>,
    /// Days the certificate is valid
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    #[command(flatten)]
    pub out: OutArgs,
}

/// Runs a pki verb; returns what it wrote, one line per file.
pub fn run(verb: &PkiVerb) -> Result<String> {
    match verb {
        PkiVerb::Init { out, cn, days } => init(out, cn, *days),
        PkiVerb::Issue(a) => issue(a),
    }
}

fn check_days(days: u32) -> Result<()> {
    if days == 0 || days > 36500 {
        bail!("--days: {days} is not in 1..=36500");
    }
    Ok(())
}

/// Validity from an hour ago (clock skew between hosts) to `days` from now.
fn validity(p: &mut CertificateParams, days: u32) {
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(i64::from(days));
}

fn serial() -> SerialNumber {
    let mut b: [u8; 16] = rand::random();
    b[0] &= 0x7f; // positive
    SerialNumber::from_slice(&b)
}

/// Writes `data` to `path`; keys get mode 0600. Refuses to replace a file unless `force`.
fn write_file(path: &Path, data: &str, private: bool, force: bool) -> Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).mode(if private { 0o600 } else { 0o644 });
    if force {
        o.create(true).truncate(true);
    } else {
        o.create_new(true);
    }
    let mut f = o.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{}: already exists; pass --force to replace it",
                path.display()
            )
        } else {
            anyhow::anyhow!("{}: {e}", path.display())
        }
    })?;
    f.write_all(data.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn init(out: &OutArgs, cn: &str, days: u32) -> Result<String> {
    check_days(days)?;
    if cn.trim().is_empty() {
        bail!("--cn: must not be empty");
    }
    std::fs::create_dir_all(&out.dir).with_context(|| format!("--dir: {}", out.dir.display()))?;
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.serial_number = Some(serial());
    validity(&mut p, days);
    let cert = p.self_signed(&key).context("signing the CA")?;
    let (cert_path, key_path) = (out.dir.join("ca.pem"), out.dir.join("ca.key"));
    // The key first: a CA certificate without its key would be useless.
    write_file(&key_path, &key.serialize_pem(), true, out.force)?;
    write_file(&cert_path, &cert.pem(), false, out.force)?;
    Ok(format!(
        "wrote {} (CA {cn:?}, valid {days} days)\nwrote {} (keep it offline; it signs every identity)\n",
        cert_path.display(),
        key_path.display()
    ))
}

/// The role, SANs and key purposes a certificate of `a` gets, after checking the flags fit the
/// kind.
fn plan(a: &IssueArgs) -> Result<(Role, Vec<SanType>, Vec<ExtendedKeyUsagePurpose>)> {
    auth::check_name(&a.name).map_err(anyhow::Error::msg)?;
    let role = match (a.kind, a.role) {
        (Kind::Operator, Some(OperatorRole::Admin)) => Role::Admin,
        (Kind::Operator, Some(OperatorRole::Read)) => Role::ReadOnly,
        (Kind::Operator, None) => bail!("--role: an operator certificate needs admin or read"),
        (k, Some(r)) => bail!(
            "--role: {} is for operators, not a {}",
            r.to_possible_value().expect("value").get_name(),
            k.to_possible_value().expect("value").get_name()
        ),
        (Kind::Director, None) => Role::Director,
        (Kind::Agent, None) => Role::Agent,
    };
    match a.kind {
        Kind::Director if a.ips.is_empty() && a.dns.is_empty() => bail!(
            "--ip: a director certificate needs the address(es) its peers, agents and operators dial"
        ),
        Kind::Agent if a.ips.is_empty() => {
            bail!("--ip: an agent certificate needs the real-server address(es) it reports for")
        }
        Kind::Agent if !a.dns.is_empty() => {
            bail!("--dns: agents are bound to addresses (--ip), not names")
        }
        Kind::Operator if !a.ips.is_empty() || !a.dns.is_empty() => {
            bail!("--ip/--dns: operator certificates name a person, not addresses")
        }
        _ => {}
    }
    let mut sans = vec![SanType::URI(
        auth::identity_uri(role, &a.name)
            .try_into()
            .map_err(|e| anyhow::anyhow!("name: {:?}: {e}", a.name))?,
    )];
    sans.extend(a.ips.iter().map(|ip| SanType::IpAddress(*ip)));
    for d in &a.dns {
        sans.push(SanType::DnsName(
            d.clone()
                .try_into()
                .map_err(|e| anyhow::anyhow!("--dns: {d:?}: {e}"))?,
        ));
    }
    let eku = match a.kind {
        // A director both serves and dials its peers.
        Kind::Director => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Kind::Agent | Kind::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    Ok((role, sans, eku))
}

fn issue(a: &IssueArgs) -> Result<String> {
    check_days(a.days)?;
    let (role, sans, eku) = plan(a)?;
    let ca_pem_path = a.out.dir.join("ca.pem");
    let ca_key_path = a.out.dir.join("ca.key");
    let ca_pem = std::fs::read_to_string(&ca_pem_path).with_context(|| {
        format!(
            "--dir: {} (run `lvsctl pki init` first)",
            ca_pem_path.display()
        )
    })?;
    let ca_key_pem = std::fs::read_to_string(&ca_key_path)
        .with_context(|| format!("--dir: {}", ca_key_path.display()))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .map_err(|e| anyhow::anyhow!("{}: not a private key: {e}", ca_key_path.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
        .map_err(|e| anyhow::anyhow!("{}: not a CA certificate: {e}", ca_pem_path.display()))?;

    let key = KeyPair::generate().context("generating the key")?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, a.name.as_str());
    dn.push(DnType::OrganizationalUnitName, role.tag());
    p.distinguished_name = dn;
    p.subject_alt_names = sans;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = eku;
    p.use_authority_key_identifier_extension = true;
    p.serial_number = Some(serial());
    validity(&mut p, a.days);
    let cert = p
        .signed_by(&key, &issuer)
        .context("signing the certificate")?;
    let cert_path = a.out.dir.join(format!("{}.pem", a.name));
    let key_path = a.out.dir.join(format!("{}.key", a.name));
    write_file(&key_path, &key.serialize_pem(), true, a.out.force)?;
    write_file(&cert_path, &cert.pem(), false, a.out.force)?;
    let mut names: Vec<String> = a.ips.iter().map(|i| i.to_string()).collect();
    names.extend(a.dns.iter().cloned());
    let bound = if names.is_empty() {
        String::new()
    } else {
        format!(" for {}", names.join(", "))
    };
    Ok(format!(
        "wrote {} ({role} {:?}{bound}, valid {} days)\nwrote {}\n",
        cert_path.display(),
        a.name,
        a.days,
        key_path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(
        kind: Kind,
        name: &str,
        ips: &[&str],
        role: Option<OperatorRole>,
        dir: &Path,
    ) -> IssueArgs {
        IssueArgs {
            kind,
            name: name.into(),
            ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
            dns: vec![],
            role,
            days: 30,
            out: OutArgs {
                dir: dir.to_path_buf(),
                force: false,
            },
        }
    }

    #[test]
    fn issued_certificates_carry_the_identity_and_chain_to_the_ca() {
        let d = tempfile::tempdir().unwrap();
        let out = OutArgs {
            dir: d.path().to_path_buf(),
            force: false,
        };
        init(&out, "test CA", 10).unwrap();
        let e = init(&out, "test CA", 10).unwrap_err().to_string();
        assert!(e.contains("already exists; pass --force"), "{e}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(d.path().join("ca.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        issue(&args(
            Kind::Agent,
            "web-1",
            &["10.0.1.11", "2001:db8::11"],
            None,
            d.path(),
        ))
        .unwrap();
        let pem = std::fs::read(d.path().join("web-1.pem")).unwrap();
        let der = rustls_der(&pem);
        let id = auth::identity_from_der(&der).unwrap();
        assert_eq!(id.role, Role::Agent);
        assert_eq!(id.name, "web-1");
        assert_eq!(id.addresses.len(), 2);

        // The files load as a TLS identity under the CA (key fits, chain parses).
        issue(&args(Kind::Director, "d1", &["127.0.0.1"], None, d.path())).unwrap();
        lvs_proto::tls::TlsFiles {
            ca: d.path().join("ca.pem"),
            cert: d.path().join("d1.pem"),
            key: d.path().join("d1.key"),
        }
        .load()
        .unwrap();
        issue(&args(
            Kind::Operator,
            "alice",
            &[],
            Some(OperatorRole::Read),
            d.path(),
        ))
        .unwrap();
        let der = rustls_der(&std::fs::read(d.path().join("alice.pem")).unwrap());
        assert_eq!(auth::identity_from_der(&der).unwrap().role, Role::ReadOnly);
    }

    fn rustls_der(pem: &[u8]) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_slice(pem)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn flags_that_do_not_fit_the_kind_are_refused_naming_the_flag() {
        let d = Path::new("/nonexistent");
        let cases = [
            (args(Kind::Operator, "bob", &[], None, d), "--role"),
            (args(Kind::Agent, "a", &[], None, d), "--ip"),
            (args(Kind::Director, "d", &[], None, d), "--ip"),
            (
                args(
                    Kind::Operator,
                    "bob",
                    &["10.0.0.1"],
                    Some(OperatorRole::Admin),
                    d,
                ),
                "--ip",
            ),
            (
                args(
                    Kind::Agent,
                    "a",
                    &["10.0.0.1"],
                    Some(OperatorRole::Admin),
                    d,
                ),
                "--role",
            ),
            (args(Kind::Agent, "a/b", &["10.0.0.1"], None, d), "name"),
        ];
        for (a, field) in cases {
            let e = plan(&a).unwrap_err().to_string();
            assert!(e.starts_with(field), "{a:?}: {e}");
        }
        let mut a = args(Kind::Agent, "a", &["10.0.0.1"], None, d);
        a.days = 0;
        assert!(issue(&a).unwrap_err().to_string().starts_with("--days"));
        let e = issue(&args(Kind::Agent, "a", &["10.0.0.1"], None, d))
            .unwrap_err()
            .to_string();
        assert!(e.contains("lvsctl pki init"), "{e}");
    }
}
