//! The director's own configuration file (TOML): identity, listen addresses, data directory,
//! bootstrap peers and Raft timing. Parsed strictly: unknown keys and bad values are errors that
//! name the key.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use cluster_core::vip::lease::Profile;
use serde::Deserialize;

pub use crate::invalid::Invalid;

/// Why the director's configuration cannot be used. The messages name the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    /// Not TOML, or keys the director does not know.
    #[error("{path}: {message}")]
    Syntax { path: String, message: String },
    #[error("{path}: {error}")]
    Invalid { path: String, error: Invalid },
    /// The `[tls]` key material could not be read or does not fit together.
    #[error("{0}")]
    Tls(String),
    /// openraft refused the timing (it should not, after our own check).
    #[error("raft: {0}")]
    Openraft(Box<openraft::ConfigError>),
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub id: u64,
    pub raft_addr: String,
    pub api_addr: String,
}

/// Raft timing: a named profile (see `cluster_core::vip::lease::Profile`), optionally with
/// individual values overridden. Overridden timings get a release threshold of half the election
/// maximum unless `vip_release_ms` is given; either way the lease invariant is checked.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RaftTiming {
    pub profile: String,
    pub heartbeat_ms: Option<u64>,
    pub election_min_ms: Option<u64>,
    pub election_max_ms: Option<u64>,
    pub vip_release_ms: Option<u64>,
    /// Build a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, so slightly lagging followers need no snapshot.
    pub keep_logs: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            profile: "default".into(),
            heartbeat_ms: None,
            election_min_ms: None,
            election_max_ms: None,
            vip_release_ms: None,
            snapshot_every: 5000,
            keep_logs: 1000,
        }
    }
}

impl RaftTiming {
    /// The effective timing, checked against the lease invariant.
    pub fn profile(&self) -> Result<Profile, Invalid> {
        let mut p = Profile::named(&self.profile).map_err(|e| Invalid::value("raft.profile", e))?;
        let overridden = self.heartbeat_ms.is_some()
            || self.election_min_ms.is_some()
            || self.election_max_ms.is_some();
        p.heartbeat_ms = self.heartbeat_ms.unwrap_or(p.heartbeat_ms);
        p.election_min_ms = self.election_min_ms.unwrap_or(p.election_min_ms);
        p.election_max_ms = self.election_max_ms.unwrap_or(p.election_max_ms);
        p.release_ms = match self.vip_release_ms {
            Some(v) => v,
            None if overridden => p.election_max_ms / 2,
            None => p.release_ms,
        };
        p.check().map_err(|e| Invalid::value("raft", e))?;
        Ok(p)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorConfig {
    pub node_id: u64,
    /// Where the internal Raft service listens; also what peers dial.
    pub raft_addr: String,
    /// Where the admin and cluster API listens.
    pub api_addr: String,
    pub data_dir: PathBuf,
    /// Initial members besides this node, used by `--bootstrap`.
    #[serde(default)]
    pub peers: Vec<Peer>,
    /// Same as `--bootstrap`.
    #[serde(default)]
    pub bootstrap: bool,
    /// How long an API write or linearizable read may wait for a quorum.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_ms: u64,
    #[serde(default)]
    pub raft: RaftTiming,
    /// How VIPs are announced once acquired.
    #[serde(default)]
    pub vip: crate::vip::VipConfig,
    /// Kernel IPVS programming.
    #[serde(default)]
    pub ipvs: crate::ipvs::reconciler::IpvsConfig,
    /// The leader's weight engine (load/latency weight policies).
    #[serde(default)]
    pub weights: crate::agents::engine::WeightsConfig,
    /// The `/metrics` endpoint.
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// mTLS for the Raft and API ports: the cluster CA, this director's certificate and key.
    /// Without it the director only starts with `--insecure`.
    #[serde(default)]
    pub tls: Option<lvs_proto::tls::TlsFiles>,
}

fn default_request_timeout() -> u64 {
    5000
}

fn check_addr(field: &str, v: &str) -> Result<(), Invalid> {
    v.parse::<SocketAddr>().map(|_| ()).map_err(|_| {
        Invalid::value(
            field,
            format!("{v:?} is not HOST:PORT with a numeric IP address"),
        )
    })
}

impl DirectorConfig {
    /// Reads, parses and checks the file at `path`.
    pub fn load(path: &Path) -> Result<DirectorConfig, ConfigError> {
        let shown = || path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: shown(),
            error,
        })?;
        let cfg: DirectorConfig = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: shown(),
            message: e.to_string().trim_end().to_string(),
        })?;
        cfg.validate().map_err(|error| ConfigError::Invalid {
            path: shown(),
            error,
        })?;
        Ok(cfg)
    }

    /// Checks every key, each section with its own rules.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.node_id == 0 {
            return Err(Invalid::value("node_id", "0 is reserved; use 1 or more"));
        }
        check_addr("raft_addr", &self.raft_addr)?;
        check_addr("api_addr", &self.api_addr)?;
        let mut ids = BTreeSet::from([self.node_id]);
        for (i, p) in self.peers.iter().enumerate() {
            if !ids.insert(p.id) {
                let reason = format!("{} is used twice (including node_id)", p.id);
                return Err(Invalid::value(format!("peers[{i}].id"), reason));
            }
            check_addr(&format!("peers[{i}].raft_addr"), &p.raft_addr)?;
            check_addr(&format!("peers[{i}].api_addr"), &p.api_addr)?;
        }
        self.raft.profile()?;
        self.ipvs.validate().map_err(Invalid::section)?;
        self.weights.validate()?;
        self.metrics
            .validate(&[("raft_addr", &self.raft_addr), ("api_addr", &self.api_addr)])?;
        if self.request_timeout_ms < 100 {
            let reason = format!("{} is below the minimum of 100", self.request_timeout_ms);
            return Err(Invalid::value("request_timeout_ms", reason));
        }
        Ok(())
    }

    /// The key material of `[tls]`, read and checked; `None` without that section.
    pub fn load_tls(&self) -> Result<Option<lvs_proto::tls::Tls>, ConfigError> {
        let Some(files) = &self.tls else {
            return Ok(None);
        };
        let tls = files.load().map_err(|e| ConfigError::Tls(e.to_string()))?;
        Ok(Some(tls))
    }

    /// openraft's settings from the checked timing.
    pub fn openraft_config(&self) -> Result<openraft::Config, ConfigError> {
        let r = &self.raft;
        let p = r.profile().map_err(|error| ConfigError::Invalid {
            path: "raft".into(),
            error,
        })?;
        let c = openraft::Config {
            cluster_name: "lvs-director".into(),
            heartbeat_interval: p.heartbeat_ms,
            election_timeout_min: p.election_min_ms,
            election_timeout_max: p.election_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(r.snapshot_every.max(1)),
            max_in_snapshot_log_to_keep: r.keep_logs,
            install_snapshot_timeout: 10_000,
            ..Default::default()
        };
        c.validate().map_err(|e| ConfigError::Openraft(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DirectorConfig, String> {
        let c: DirectorConfig = toml::from_str(s).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    const BASE: &str = "node_id = 1\nraft_addr = \"127.0.0.1:7101\"\napi_addr = \"127.0.0.1:7001\"\ndata_dir = \"/tmp/x\"\n";

    #[test]
    fn good_configs_and_their_timing() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.raft.profile().unwrap(), Profile::DEFAULT);
        let c = parse(&format!("{BASE}[raft]\nprofile = \"fast\"\n")).unwrap();
        assert_eq!(c.raft.profile().unwrap(), Profile::FAST);
        let c = parse(&format!(
            "{BASE}[raft]\nheartbeat_ms = 100\nelection_min_ms = 500\nelection_max_ms = 1000\n"
        ))
        .unwrap();
        assert_eq!(c.raft.profile().unwrap().release_ms, 500);
    }

    #[test]
    fn bad_configs_name_the_key() {
        let peer1 = "[[peers]]\nid = 1\nraft_addr = \"127.0.0.1:1\"\napi_addr = \"127.0.0.1:2\"\n";
        let cases = [
            (
                format!("{BASE}[raft]\nvip_release_ms = 390\n"),
                "vip_release_ms",
            ),
            (
                format!("{BASE}[raft]\nprofile = \"turbo\"\n"),
                "raft.profile",
            ),
            (BASE.replace("7101", "x"), "raft_addr"),
            (format!("{BASE}{peer1}"), "peers[0].id"),
            (
                format!("{BASE}[raft]\nheartbeat_ms = 300\n"),
                "election_min_ms",
            ),
            (format!("{BASE}bogus = 1\n"), "bogus"),
        ];
        for (text, key) in cases {
            let e = parse(&text).expect_err(key);
            assert!(e.contains(key), "{key}: {e}");
        }
    }
}
