//! Harness for cluster-level tests and benchmarks: real `director` processes on loopback or in
//! network namespaces (`cluster`), the namespaces themselves (`netns`), VIP helpers
//! (`vip_cluster`), traffic and metrics helpers, request fixtures (`fixtures`), turns that keep
//! the test files sharing a binary apart (`serial`), and the real-kernel lab (`lab`, `lab_run`).
//! The common names are re-exported here: `Cluster` is the loopback cluster.

pub mod cluster;
pub mod fixtures;
pub mod lab;
pub mod lab_run;
pub mod metrics;
pub mod netns;
pub mod serial;
pub mod traffic;
pub mod vip_cluster;

pub use cluster::process::{
    bin, free_port, kill_child, lvsctl_env_for, peer_section, pki_run, spawn_director,
    terminate_child,
};
pub use cluster::{Director, LogsOnPanic, Timing};
pub use fixtures::{real, service, with_principal, RICH_CONFIG};

/// Directors on 127.0.0.1, driven from async tests (`Cluster::start(3)`).
pub type Cluster = cluster::LoopbackCluster;

/// What a CLI run produced.
#[derive(Debug)]
pub struct CmdOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}
