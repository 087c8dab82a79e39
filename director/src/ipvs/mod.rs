//! Kernel IPVS on this host.
//!
//! - `client`: the blocking generic-netlink client (pipelined requests, dumps, daemons).
//! - `kernel`: the [`kernel::IpvsKernel`] trait the reconciler programs the kernel through,
//!   implemented by the client; `fake`: an in-memory implementation for tests.
//! - `config`: the `[ipvs]` config section; `status`: what the reconciler reports.
//! - `pass`: one reconciler pass (diff, apply, errors, ownership, sync daemons).
//! - `reconciler`: the thread and the tasks that turn config, holder and overlay changes into
//!   passes.

pub mod client;
pub mod config;
pub mod fake;
pub mod kernel;
pub mod pass;
pub mod reconciler;
pub mod status;
