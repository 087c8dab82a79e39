//! Raft on the director: the node's write path and read barrier, and everything that crosses
//! the internal director-to-director service.
//!
//! - `node`: [`RaftHandle`], writes (committed here when leading, else passed on) and
//!   linearizable read barriers, both bounded by the request timeout.
//! - `forward`: the one way a follower reaches the leader, for every leader-only call.
//! - `membership`: adding and removing directors, run on the leader.
//! - `network`: openraft's network, the client side (one cached channel per peer).
//! - `service`: the internal gRPC service, the server side.

pub mod forward;
pub mod membership;
pub mod network;
pub mod node;
pub mod service;

pub use node::{command_status, known_leader, Fail, RaftHandle};

use openraft::ServerState;

/// The name a Raft role has in the API, the logs and the metrics.
pub fn role_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}
