//! Read-only views of the subsystems' state (VIP watchdog, IPVS reconciler, agent registry,
//! weight engine, derived-state transitions): what the API answers and the metrics show. Nothing
//! here changes state; changes go through Raft.

use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::agents::engine::{Snapshot, Transition};
use crate::agents::Registry;
use crate::ipvs::reconciler::IpvsStatusReader;
use crate::vip::VipStatusReader;

pub struct Views {
    pub vips: VipStatusReader,
    pub ipvs: IpvsStatusReader,
    /// The agent registry (meaningful on the leader).
    pub agents: Arc<Registry>,
    /// The weight engine's view (meaningful on the leader).
    pub engine: Arc<Mutex<Snapshot>>,
    transitions: broadcast::Sender<Transition>,
}

impl Views {
    pub fn new(
        vips: VipStatusReader,
        ipvs: IpvsStatusReader,
        agents: Arc<Registry>,
        engine: Arc<Mutex<Snapshot>>,
        transitions: broadcast::Sender<Transition>,
    ) -> Views {
        Views {
            vips,
            ipvs,
            agents,
            engine,
            transitions,
        }
    }

    /// Derived-state transitions (health, drain, sorry server) for the watch stream.
    pub fn transitions(&self) -> broadcast::Receiver<Transition> {
        self.transitions.subscribe()
    }
}
