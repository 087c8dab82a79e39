//! The VIP watchdog's lifecycle: on its own OS thread and runtime (so a stalled main runtime
//! cannot keep a stale VIP) it runs the `watchdog` against the real Raft node and rtnetlink,
//! next to the guard process that removes the VIPs if this process dies; the handle gives the
//! rest of the director the status, the counters and whether this director holds the VIPs.

use std::sync::{Arc, Mutex};

use cluster_core::store::{Raft, StateHandle};
use openraft::ServerState;
use tokio::sync::watch;
use tracing::warn;

use super::netlink::Addrs;
use super::status::{VipCounters, VipStatus, VipStatusReader};
use super::watchdog::{RaftInputs, Settings, Watchdog};

/// What the rest of the director keeps of the watchdog.
pub struct VipHandle {
    status: Arc<Mutex<Vec<VipStatus>>>,
    counters: Arc<VipCounters>,
    /// True while this director holds the VIPs (with VIP management off: while it is leader).
    holding: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Removes the held VIPs if this process dies without doing so itself.
    guard: Option<std::process::Child>,
}

impl VipHandle {
    pub fn reader(&self) -> VipStatusReader {
        VipStatusReader(self.status.clone())
    }

    pub fn holding(&self) -> watch::Receiver<bool> {
        self.holding.clone()
    }

    pub fn counters(&self) -> Arc<VipCounters> {
        self.counters.clone()
    }

    /// Releases every held VIP and stops the watchdog.
    pub fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(mut g) = self.guard.take() {
            // Closing its pipe tells the guard we are done; it finds nothing left to remove.
            drop(g.stdin.take());
            let _ = g.wait();
        }
    }
}

/// Starts the watchdog thread (nothing when VIP management is disabled).
pub fn spawn(raft: Raft, state: StateHandle, settings: Settings) -> std::io::Result<VipHandle> {
    let status = Arc::new(Mutex::new(Vec::new()));
    let counters = Arc::new(VipCounters::default());
    let (stop, stop_rx) = watch::channel(false);
    let (holding_tx, holding) = watch::channel(false);
    if !settings.announce.enabled {
        warn!("VIP management is disabled ([vip] enabled = false): this director never holds VIPs");
        // The leader still plays the holder's other part (the master sync daemon).
        let mut metrics = raft.metrics();
        let id = settings.node_id;
        tokio::spawn(async move {
            loop {
                let leader = {
                    let m = metrics.borrow_and_update();
                    m.state == ServerState::Leader && m.current_leader == Some(id)
                };
                holding_tx.send_if_modified(|h| std::mem::replace(h, leader) != leader);
                if metrics.changed().await.is_err() {
                    return;
                }
            }
        });
        return Ok(VipHandle {
            status,
            counters,
            holding,
            stop,
            thread: None,
            guard: None,
        });
    }
    let guard = match super::guard::start(&settings.held_file) {
        Ok(g) => Some(g),
        Err(e) => {
            warn!(error = %e, "VIP guard not started: a crash would leave VIPs until restart");
            None
        }
    };
    let st = status.clone();
    let cn = counters.clone();
    let thread = std::thread::Builder::new()
        .name("vip-watchdog".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("vip runtime");
            rt.block_on(async move {
                match Addrs::connect() {
                    Ok(addrs) => {
                        let inputs = RaftInputs::new(&raft, state, settings.node_id);
                        Watchdog::new(inputs, addrs, settings, st, cn, holding_tx)
                            .run(stop_rx)
                            .await
                    }
                    Err(e) => {
                        warn!(error = %e, "VIP manager could not start; VIPs will not be held")
                    }
                }
            });
        })?;
    Ok(VipHandle {
        status,
        counters,
        holding,
        stop,
        thread: Some(thread),
        guard,
    })
}
