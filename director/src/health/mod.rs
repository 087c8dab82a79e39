//! Health checks the leader runs against real servers: probes by kind (`probe`, with `http` and
//! `exec`) and the runner that schedules them and publishes Up/Down states (`runner`).

mod exec;
mod http;
pub mod probe;
pub mod runner;

pub use cluster_core::health::{HealthEvent, HealthView, ProbeResult, RealHealth};
pub use probe::{Prober, Target};
pub use runner::{spawn, spawn_with, HealthHandle, RealId};
