//! The director daemon as a library; `main.rs` only parses arguments and calls [`run`].
//!
//! Data flows one way: the API (`api`) turns calls into commands for Raft (`raft`); the applied
//! config drives the reconcilers, which program the kernel: VIP ownership (`vip`), the IPVS table
//! and sync daemons (`ipvs`). On the leader, health checks (`health`) and real-server agents'
//! reports (`agents`) are laid over the config as derived state before the IPVS reconciler
//! programs it. `views` are the read-only handles the API and the metrics (`metrics`) read.
//!
//! - `daemon`: wiring at start and the shutdown order.
//! - `server`: the two gRPC servers (Raft and API), TLS, gRPC health and reflection.
//! - `config`: the director's own configuration file; `invalid`: the error its checks return.

pub mod agents;
pub mod api;
pub mod config;
mod daemon;
pub mod health;
pub mod invalid;
pub mod ipvs;
pub mod metrics;
pub mod raft;
mod server;
pub mod views;
pub mod vip;

pub use daemon::{run, Options};
