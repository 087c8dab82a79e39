//! Makes this host's kernel IPVS table match the replicated config, on every director (followers
//! too, so a takeover needs no programming and sync backups know the services). Level-triggered:
//! a full pass (dump the kernel, diff, apply) at start and every `resync_ms`, which repairs drift
//! such as `ipvsadm -C`; in between, applied config changes trigger passes limited to the
//! services they touched, diffed against the kernel view kept from the last full pass. Also runs
//! the sync daemons for the current role (see `cluster_core::ipvs::reconcile::desired_daemons`).
//!
//! On the leader, the derived state (computed weights, health failures, drained servers, sorry
//! servers; `cluster_core::effective`) is laid over the config before diffing; each change of it
//! triggers a pass limited to the services it touched.
//!
//! Per-object kernel errors are recorded in the status and logged once; they never stop the other
//! objects or the director. Without IPVS in the kernel the reconciler reports that and retries
//! every resync period.
//!
//! This file is the task loop: it turns events into pokes and pokes into passes (`pass`).

use std::collections::BTreeSet;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_core::effective::Overlay;
use cluster_core::ipvs::reconcile::changed_service;
use cluster_core::model::ServiceKey;
use cluster_core::store::StateHandle;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::{info, warn};

use super::client::IpvsClient;
use super::kernel::{open_client, IpvsKernel};
use super::pass::{ConfigSource, Opener, Reconciler};

// The names the rest of the director has always used from here.
pub use super::config::IpvsConfig;
pub use super::pass::Settings;
pub use super::status::{
    describe_daemon, IpvsStatus, IpvsStatusReader, ObjectError, PASS_BUCKETS_S,
};

enum Poke {
    /// Services touched by a config change, and when this director applied it.
    Services(Vec<ServiceKey>, Instant),
    /// A new overlay and the services whose part of it changed.
    Overlay(Arc<Overlay>, Vec<ServiceKey>),
    Full,
    Role(bool),
    Stop,
}

/// The running reconciler.
pub struct IpvsHandle {
    status: IpvsStatusReader,
    tx: mpsc::Sender<Poke>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl IpvsHandle {
    pub fn reader(&self) -> IpvsStatusReader {
        self.status.clone()
    }

    /// Stops the thread. The kernel table is left as it is (the next start adopts it), except the
    /// master sync daemon, which only the VIP holder may run.
    pub fn shutdown(mut self) {
        let _ = self.tx.send(Poke::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts the reconciler: a thread for the blocking netlink work, fed by a task that turns applied
/// config changes, VIP-holder changes and overlay changes into pokes. `holder` is true while
/// this director holds the VIPs; `overlay` is the leader's derived state (empty elsewhere).
pub fn spawn(
    state: StateHandle,
    holder: watch::Receiver<bool>,
    overlay: watch::Receiver<Arc<Overlay>>,
    settings: Settings,
) -> std::io::Result<IpvsHandle> {
    let status = IpvsStatusReader::default();
    let (tx, rx) = mpsc::channel();
    if !settings.config.enabled {
        warn!("kernel IPVS programming is disabled ([ipvs] enabled = false)");
        return Ok(IpvsHandle {
            status,
            tx,
            thread: None,
        });
    }
    status.lock().enabled = true;
    let mut events = state.subscribe();
    let feed = tx.clone();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(entry) => {
                    let mut keys = Vec::new();
                    let mut global = false;
                    for c in &entry.changes {
                        match changed_service(&c.object) {
                            Some(k) => keys.push(k),
                            None => global = true,
                        }
                    }
                    let poke = if global {
                        Poke::Full
                    } else {
                        Poke::Services(keys, Instant::now())
                    };
                    if feed.send(poke).is_err() {
                        return;
                    }
                }
                // Missed changes: only a full pass is sure to catch up.
                Err(RecvError::Lagged(_)) => {
                    if feed.send(Poke::Full).is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    let role_feed = tx.clone();
    let mut holder_rx = holder;
    let initial_holder = *holder_rx.borrow_and_update();
    tokio::spawn(async move {
        while holder_rx.changed().await.is_ok() {
            let h = *holder_rx.borrow_and_update();
            if role_feed.send(Poke::Role(h)).is_err() {
                return;
            }
        }
    });
    let overlay_feed = tx.clone();
    let mut overlay_rx = overlay;
    let initial_overlay = overlay_rx.borrow_and_update().clone();
    let first_overlay = initial_overlay.clone();
    tokio::spawn(async move {
        let mut last = initial_overlay;
        while overlay_rx.changed().await.is_ok() {
            let now = overlay_rx.borrow_and_update().clone();
            let keys: Vec<ServiceKey> = last.changed(&now).into_iter().collect();
            last = now.clone();
            if !keys.is_empty() && overlay_feed.send(Poke::Overlay(now, keys)).is_err() {
                return;
            }
        }
    });
    let st = status.clone();
    let thread = std::thread::Builder::new()
        .name("ipvs-reconciler".into())
        .spawn(move || {
            let open: Opener<IpvsClient> = Box::new(open_client);
            let mut r = Reconciler::new(state, settings, st, open, initial_holder, first_overlay);
            run(&mut r, rx);
        })?;
    Ok(IpvsHandle {
        status,
        tx,
        thread: Some(thread),
    })
}

/// The work folded from the pokes that arrived since the last pass.
#[derive(Default)]
struct Pending {
    full: bool,
    keys: BTreeSet<ServiceKey>,
    role_changed: bool,
    /// When the oldest config change in this batch was applied.
    since: Option<Instant>,
    stop: bool,
}

impl Pending {
    /// Folds one poke into the pending work.
    fn take<K: IpvsKernel, S: ConfigSource>(&mut self, r: &mut Reconciler<K, S>, p: Poke) {
        match p {
            Poke::Services(k, at) => {
                self.keys.extend(k);
                self.since = Some(self.since.map_or(at, |s| s.min(at)));
            }
            Poke::Overlay(o, k) => {
                r.set_overlay(o);
                self.keys.extend(k);
            }
            Poke::Full => self.full = true,
            Poke::Role(h) => {
                if r.set_holder(h) {
                    self.role_changed = true;
                }
            }
            Poke::Stop => self.stop = true,
        }
    }
}

/// The reconciler thread: waits for pokes or the next full pass, coalesces what is queued into
/// one pass, and stops the master sync daemon on the way out.
fn run<K: IpvsKernel, S: ConfigSource>(r: &mut Reconciler<K, S>, rx: mpsc::Receiver<Poke>) {
    let resync = Duration::from_millis(r.settings.config.resync_ms);
    let mut next_full = Instant::now();
    loop {
        let mut p = Pending {
            full: Instant::now() >= next_full,
            ..Default::default()
        };
        if !p.full {
            match rx.recv_timeout(next_full.saturating_duration_since(Instant::now())) {
                Ok(poke) => p.take(r, poke),
                Err(RecvTimeoutError::Timeout) => p.full = true,
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if p.stop {
                break;
            }
        }
        // Coalesce whatever else is queued into this pass.
        while let Ok(poke) = rx.try_recv() {
            p.take(r, poke);
        }
        if p.stop {
            break;
        }
        if p.full {
            r.full_pass();
            next_full = Instant::now() + resync;
        } else if !p.keys.is_empty() {
            r.partial_pass(&p.keys);
        }
        if let Some(t) = p.since {
            r.set_change_latency(t.elapsed().as_micros() as u64);
        }
        if p.role_changed && !p.full {
            r.sync_pass();
        }
    }
    r.stop_master();
    info!("IPVS reconciler stopped");
}

#[cfg(test)]
mod tests {
    use cluster_core::ipvs::reconcile::desired_daemons;
    use cluster_core::ipvs::DaemonState;
    use cluster_core::model::{Config, SyncSettings};

    use super::super::fake::FakeIpvs;
    use super::*;

    /// A config that never changes.
    struct Fixed(Config);

    impl ConfigSource for Fixed {
        fn read<T>(&self, f: impl FnOnce(&Config, u64) -> T) -> T {
            f(&self.0, 1)
        }
    }

    fn reconciler(fake: &FakeIpvs, dir: &tempfile::TempDir) -> Reconciler<FakeIpvs, Fixed> {
        let fake = fake.clone();
        let settings = Settings {
            config: IpvsConfig::default(),
            owned_file: dir.path().join("ipvs-owned.json"),
        };
        let open: Opener<FakeIpvs> = Box::new(move || Ok(fake.clone()));
        let status = IpvsStatusReader::default();
        Reconciler::new(
            Fixed(Config::default()),
            settings,
            status,
            open,
            false,
            Arc::default(),
        )
    }

    #[test]
    fn pokes_fold_into_one_pass() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = reconciler(&FakeIpvs::new(), &dir);
        let (a, b): (ServiceKey, ServiceKey) = (
            "tcp/10.0.0.1:80".parse().unwrap(),
            "udp/10.0.0.2:53".parse().unwrap(),
        );
        let early = Instant::now();
        let late = early + Duration::from_millis(5);
        let mut p = Pending::default();
        p.take(&mut r, Poke::Services(vec![a], late));
        p.take(&mut r, Poke::Services(vec![a, b], early));
        p.take(&mut r, Poke::Role(false));
        assert_eq!(p.keys, BTreeSet::from([a, b]));
        assert_eq!(p.since, Some(early), "the oldest change counts");
        assert!(!p.role_changed, "already not the holder");
        p.take(&mut r, Poke::Role(true));
        p.take(&mut r, Poke::Overlay(Arc::default(), vec![b]));
        assert!(p.role_changed && !p.full && !p.stop);
        p.take(&mut r, Poke::Full);
        p.take(&mut r, Poke::Stop);
        assert!(p.full && p.stop);
    }

    #[test]
    fn stopping_stops_the_master_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeIpvs::new();
        let sync: SyncSettings = serde_json::from_str(r#"{"interface":"eth1"}"#).unwrap();
        fake.table().daemons = desired_daemons(Some(&sync), true);
        let mut r = reconciler(&fake, &dir);
        // Open the kernel as a pass would, without changing the daemons.
        r.partial_pass(&BTreeSet::new());
        let (tx, rx) = mpsc::channel();
        tx.send(Poke::Stop).unwrap();
        run(&mut r, rx);
        let running: Vec<DaemonState> = fake.table().daemons.iter().map(|d| d.state).collect();
        assert_eq!(running, [DaemonState::Backup]);
    }
}
