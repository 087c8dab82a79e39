//! Health checks the leader runs against real servers.
//!
//! - `checker`: the [`checker::Checker`] trait and what a check probes; one file per kind:
//!   `tcp`, `udp`, `dns`, `http` (http and https), `exec`.
//! - `common`: helpers the checkers share (the typed probe failure, timing, error texts).
//! - `probe`: the prober that picks the checker for a kind.
//! - `runner`: schedules the checks and publishes Up/Down states.

pub mod checker;
pub mod common;
mod dns;
mod exec;
mod http;
pub mod probe;
pub mod runner;
mod tcp;
mod udp;

pub use cluster_core::health::{HealthEvent, HealthView, ProbeResult, RealHealth};
pub use probe::{Prober, Target};
pub use runner::{spawn, spawn_with, HealthHandle, RealId};
