//! The gRPC API operators and tools use (lvsctl, grpcurl, load-balancer health checks).
//!
//! - `admin`: the config (reads, writes, apply, history, watch), kernel views, the agent listing.
//! - `cluster`: Raft status and membership changes.
//! - `leader`: the calls only the leader answers, run here or passed on to it.
//! - `members`: the member list with reachability probes.
//! - `kernel_view`: this director's kernel IPVS table and connection entries, as API messages.
//! - `authz`: who may call what, from the client certificate (a tower layer on both servers).

pub mod admin;
pub mod authz;
pub mod cluster;
pub mod kernel_view;
pub mod leader;
pub mod members;
