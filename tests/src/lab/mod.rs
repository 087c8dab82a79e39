//! The IPVS lab scenarios: a three-director cluster, two DR real servers and a client on the netns
//! topology, on a kernel with IPVS (inside the VM from `tests/lab/run.sh`, or a host that has
//! IPVS). Every claim is checked against `ipvsadm` (an independent reader of the kernel table) or
//! real traffic from the client namespace.
//!
//! # Contents
//! - [`fixture`]: the cluster, real servers and client ([`Lab`]), and [`guarded`].
//! - [`ipvsadm`]: `ipvsadm -Ln` parsed ([`IpvsadmTable`]), the table a config must show, diffs.
//! - [`common`]: helpers the scenarios share (schedulers, traffic services, sync settings).
//! - The scenarios, one file each. Each returns a one-line report, or an error saying what was
//!   wrong:
//!   - [`scenario_services`]: 1 config in the kernel, 2 drift repair;
//!   - [`scenario_traffic`]: 3 traffic through the VIP and its counters;
//!   - [`scenario_failover`]: 4 and 5 connections surviving a leader kill;
//!   - [`scenario_agents`]: 6 agents, weights, health checks, drain;
//!   - [`scenario_import`]: 7 keepalived and ipvsadm imports.

pub mod common;
pub mod fixture;
pub mod ipvsadm;
pub mod scenario_agents;
pub mod scenario_failover;
pub mod scenario_import;
pub mod scenario_services;
pub mod scenario_traffic;

pub use common::{kernel_schedulers, traffic_config};
pub use fixture::{
    guarded, Lab, LAB_RAFT, METRICS_PORT, NAT_PORT, NAT_REAL_PORT, PORT, RESYNC_MS, UDP_PORT,
};
pub use ipvsadm::{IpvsadmDest, IpvsadmService, IpvsadmTable};
pub use scenario_agents::{agents_config, scenario_agents, HTTP_PORT};
pub use scenario_failover::scenario_failover;
pub use scenario_import::scenario_import;
pub use scenario_services::{coverage_config, scenario_config, scenario_drift};
pub use scenario_traffic::scenario_traffic;
