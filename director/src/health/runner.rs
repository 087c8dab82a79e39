//! Runs the configured health checks while this director is active (leads and holds the VIPs):
//! one task per checked real server, results fed through the rise/fall state machine, Up/Down
//! states published as a watched view and as events.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use cluster_core::health::{HealthEvent, HealthView, ProbeResult, RiseFall, Transition};
use cluster_core::model::{fmt_endpoint, Config, FailureAction, HealthCheck, ServiceKey};
use cluster_core::store::StateHandle;
use lvs_ops::clock::unix_ms;
use rand::Rng;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use super::probe::{Prober, Target};

/// (service, real server address, real server port).
pub type RealId = (ServiceKey, IpAddr, u16);

/// Upper bound of the random delay before a check's first probe, so hundreds of checks that
/// start together (a new leader) do not fire at once.
const MAX_JITTER_MS: u32 = 1000;

/// Results handled per view update.
const BATCH: usize = 256;

/// The running health checks.
pub struct HealthHandle {
    view: watch::Receiver<Arc<HealthView>>,
    events: broadcast::Sender<HealthEvent>,
    task: JoinHandle<()>,
}

impl HealthHandle {
    /// Up/Down state of every checked real server. Notifies only when a state changes or real
    /// servers appear or disappear; the counters inside are current whenever it is read.
    pub fn view(&self) -> watch::Receiver<Arc<HealthView>> {
        self.view.clone()
    }

    /// Up/Down transitions as they happen.
    pub fn events(&self) -> broadcast::Receiver<HealthEvent> {
        self.events.subscribe()
    }

    /// Stops every check (dropping the handle does the same).
    pub fn shutdown(self) {}
}

impl Drop for HealthHandle {
    fn drop(&mut self) {
        // The supervisor owns the check tasks; aborting it aborts them.
        self.task.abort();
    }
}

/// Starts the checks; they run while `active` is true and start afresh (all Up) each time it
/// turns true. Needs a tokio runtime.
pub fn spawn(state: StateHandle, active: watch::Receiver<bool>) -> HealthHandle {
    spawn_with(state, active, Prober::default())
}

/// `spawn` with a given prober.
pub fn spawn_with(
    state: StateHandle,
    active: watch::Receiver<bool>,
    prober: Prober,
) -> HealthHandle {
    let (view_tx, view) = watch::channel(Arc::new(HealthView::default()));
    let (events, _) = broadcast::channel(1024);
    let (results_tx, results) = mpsc::channel(1024);
    let sup = Supervisor {
        state,
        prober,
        view: view_tx,
        events: events.clone(),
        results_tx,
        checks: BTreeMap::new(),
        generation: 0,
    };
    let task = tokio::spawn(sup.run(active, results));
    HealthHandle { view, events, task }
}

/// What a check task probes and how; a change restarts the task.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Spec {
    /// With `on_failure` reset: changing the action needs no new probes.
    check: HealthCheck,
    target: Target,
}

struct Running {
    generation: u64,
    spec: Spec,
    action: FailureAction,
    state: RiseFall,
    _task: AbortOnDrop,
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Report {
    id: RealId,
    generation: u64,
    result: ProbeResult,
}

struct Supervisor {
    state: StateHandle,
    prober: Prober,
    view: watch::Sender<Arc<HealthView>>,
    events: broadcast::Sender<HealthEvent>,
    results_tx: mpsc::Sender<Report>,
    checks: BTreeMap<RealId, Running>,
    /// Tells results of a replaced task from those of its successor.
    generation: u64,
}

/// The checks `config` asks for, by real server, with their actions.
fn desired(config: &Config) -> BTreeMap<RealId, (Spec, FailureAction)> {
    let mut out = BTreeMap::new();
    for (key, svc) in &config.services {
        let Some(hc) = &svc.health_check else {
            continue;
        };
        let mut check = hc.clone();
        check.on_failure = FailureAction::default();
        for r in &svc.reals {
            let spec = Spec {
                check: check.clone(),
                target: Target::new(*key, r.address, r.port, hc),
            };
            out.insert((*key, r.address, r.port), (spec, hc.on_failure));
        }
    }
    out
}

impl Supervisor {
    async fn run(mut self, mut active: watch::Receiver<bool>, mut results: mpsc::Receiver<Report>) {
        let mut config = self.state.subscribe();
        let mut is_active = *active.borrow_and_update();
        if is_active {
            info!("health checks starting");
            self.sync();
        }
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                changed = active.changed() => {
                    // A dropped sender means the director is going away: stop like a demotion.
                    let now = changed.is_ok() && *active.borrow_and_update();
                    if now != is_active {
                        is_active = now;
                        if now {
                            info!("health checks starting");
                            self.sync();
                        } else {
                            info!("health checks stopped (not active)");
                            self.stop_all();
                        }
                    }
                    if changed.is_err() {
                        return;
                    }
                }
                entry = config.recv() => match entry {
                    // Lagging only means several changes: the config is re-read whole anyway.
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        if is_active {
                            self.sync();
                        }
                    }
                    Err(RecvError::Closed) => {
                        self.stop_all();
                        return;
                    }
                },
                n = results.recv_many(&mut batch, BATCH) => {
                    if n > 0 {
                        self.record(batch.drain(..));
                    }
                }
            }
        }
    }

    /// Starts, stops and restarts tasks so they match the config; untouched checks keep their
    /// state.
    fn sync(&mut self) {
        let want = self.state.read(|s| desired(&s.config));
        let mut changed = false;
        self.checks.retain(|id, _| {
            let keep = want.contains_key(id);
            if !keep {
                debug!(service = %id.0, real = %fmt_endpoint(&id.1, id.2), "health check removed");
                changed = true;
            }
            keep
        });
        let now = unix_ms();
        for (id, (spec, action)) in want {
            match self.checks.get_mut(&id) {
                Some(r) if r.spec == spec => {
                    if r.action != action {
                        r.action = action;
                        changed = true;
                    }
                }
                _ => {
                    self.generation += 1;
                    let task = tokio::spawn(check_loop(
                        id,
                        self.generation,
                        spec.clone(),
                        self.prober.clone(),
                        self.results_tx.clone(),
                    ));
                    debug!(service = %id.0, real = %fmt_endpoint(&id.1, id.2),
                        kind = spec.check.kind.as_str(), "health check started");
                    let state = RiseFall::new(spec.check.rise, spec.check.fall, now);
                    self.checks.insert(
                        id,
                        Running {
                            generation: self.generation,
                            spec,
                            action,
                            state,
                            _task: AbortOnDrop(task),
                        },
                    );
                    changed = true;
                }
            }
        }
        if changed {
            self.publish();
        }
    }

    fn stop_all(&mut self) {
        let had = !self.checks.is_empty();
        self.checks.clear();
        if had {
            self.publish();
        }
    }

    /// Replaces the view and notifies.
    fn publish(&self) {
        let view = HealthView {
            reals: self
                .checks
                .iter()
                .map(|(id, r)| (*id, r.state.health(r.action)))
                .collect(),
        };
        self.view.send_replace(Arc::new(view));
    }

    /// Feeds results to the state machines; the view is updated in place and watchers are
    /// notified only if some real server changed state.
    fn record(&mut self, reports: impl Iterator<Item = Report>) {
        let now = unix_ms();
        let mut updates = Vec::new();
        for rep in reports {
            let Some(r) = self.checks.get_mut(&rep.id) else {
                continue;
            };
            if r.generation != rep.generation {
                continue;
            }
            let t = r.state.record(&rep.result, now);
            if let Some(t) = &t {
                announce(&self.events, &rep.id, t, now);
            }
            updates.push((rep.id, r.state.health(r.action), t.is_some()));
        }
        if updates.is_empty() {
            return;
        }
        self.view.send_if_modified(|v| {
            let v = Arc::make_mut(v);
            let mut transitions = false;
            for (id, h, t) in updates {
                v.reals.insert(id, h);
                transitions |= t;
            }
            transitions
        });
    }
}

/// Logs a transition and sends its event.
fn announce(events: &broadcast::Sender<HealthEvent>, id: &RealId, t: &Transition, now: u64) {
    let (service, address, port) = *id;
    let real = fmt_endpoint(&address, port);
    if t.up {
        info!(service = %service, real = %real, detail = ?t.detail,
                after = %format_args!("{} successes", t.after), "real server up");
    } else {
        warn!(service = %service, real = %real, detail = ?t.detail,
                after = %format_args!("{} failures", t.after), "real server down");
    }
    // No subscribers is fine.
    let _ = events.send(HealthEvent {
        service,
        address,
        port,
        up: t.up,
        detail: t.detail.clone(),
        at_ms: now,
    });
}

/// Probes one real server every `interval_ms` until aborted.
async fn check_loop(
    id: RealId,
    generation: u64,
    spec: Spec,
    prober: Prober,
    results: mpsc::Sender<Report>,
) {
    let interval = Duration::from_millis(u64::from(spec.check.interval_ms.max(1)));
    let jitter_max = spec.check.interval_ms.clamp(1, MAX_JITTER_MS);
    let jitter = Duration::from_millis(u64::from(rand::thread_rng().gen_range(0..jitter_max)));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + jitter, interval);
    // A probe slower than the interval delays the next one rather than bunching them up.
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let result = prober.probe(&spec.check, &spec.target).await;
        let report = Report {
            id,
            generation,
            result,
        };
        if results.send(report).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::model::{CheckKind, Forward, RealServer, Service};
    use cluster_core::state::{ClientRequest, Command};
    use cluster_core::store::{self, Response, StateMachineStore};
    use openraft::storage::RaftStateMachine;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::net::TcpListener;
    use tokio::time::Instant;

    /// A store to apply commands to, as a follower would.
    struct TestState {
        _dir: tempfile::TempDir,
        sm: StateMachineStore,
        index: u64,
    }

    impl TestState {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let (_log, sm) = store::open(dir.path()).unwrap();
            TestState {
                _dir: dir,
                sm,
                index: 0,
            }
        }

        async fn apply(&mut self, command: Command) {
            self.index += 1;
            let entry = Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
                payload: EntryPayload::Normal(ClientRequest {
                    principal: "test".into(),
                    time_ms: self.index,
                    command,
                    expected_revision: None,
                }),
            };
            let out = self.sm.apply(vec![entry]).await.unwrap();
            assert!(matches!(out[0], Response::Ok(_)), "{:?}", out[0]);
        }
    }

    /// A TCP server that accepts and counts connections until stopped.
    struct Backend {
        addr: SocketAddr,
        task: JoinHandle<()>,
    }

    impl Backend {
        async fn start(addr: SocketAddr, accepted: Arc<AtomicU64>) -> Backend {
            let l = TcpListener::bind(addr).await.unwrap();
            let addr = l.local_addr().unwrap();
            let count = accepted;
            let task = tokio::spawn(async move {
                while l.accept().await.is_ok() {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            });
            Backend { addr, task }
        }

        fn stop(&self) {
            self.task.abort();
        }
    }

    fn tcp_check(rise: u32, fall: u32) -> HealthCheck {
        let mut hc = HealthCheck::new(CheckKind::Tcp);
        hc.interval_ms = 100;
        hc.timeout_ms = 100;
        hc.rise = rise;
        hc.fall = fall;
        hc
    }

    fn service(key: &str, reals: &[SocketAddr], hc: Option<HealthCheck>) -> Service {
        let mut s = Service::new(key.parse().unwrap());
        s.health_check = hc;
        s.reals = reals
            .iter()
            .map(|a| {
                // Masquerading, as the loopback backends listen on other ports than the VIP.
                let mut r = RealServer::new(a.ip(), a.port());
                r.forward = Forward::Masq;
                r
            })
            .collect();
        s
    }

    async fn wait_view(
        rx: &mut watch::Receiver<Arc<HealthView>>,
        what: &str,
        f: impl Fn(&HealthView) -> bool,
    ) -> Arc<HealthView> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = rx.borrow_and_update().clone();
            if f(&v) {
                return v;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            // The counters change without a notification: poll as well as wait.
            let _ = tokio::time::timeout(left.min(Duration::from_millis(50)), rx.changed()).await;
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v:?}"
            );
        }
    }

    async fn next_event(rx: &mut broadcast::Receiver<HealthEvent>) -> HealthEvent {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event within 5 s")
            .unwrap()
    }

    #[tokio::test]
    async fn real_goes_down_after_fall_and_up_after_rise() {
        let accepted = Arc::new(AtomicU64::new(0));
        let backend = Backend::start("127.0.0.1:0".parse().unwrap(), accepted.clone()).await;
        let addr = backend.addr;
        let mut st = TestState::new();
        let key = "tcp/10.0.0.10:80";
        st.apply(Command::AddService(service(
            key,
            &[addr],
            Some(tcp_check(2, 3)),
        )))
        .await;
        let id: RealId = (key.parse().unwrap(), addr.ip(), addr.port());

        let (_active_tx, active) = watch::channel(true);
        let h = spawn(st.sm.handle(), active);
        let mut view = h.view();
        let mut events = h.events();
        let v = wait_view(&mut view, "first check", |v| {
            v.reals.get(&id).is_some_and(|r| r.checks >= 1)
        })
        .await;
        let r = &v.reals[&id];
        assert!(r.up);
        assert_eq!(r.detail, "connected");
        assert_eq!(r.action, FailureAction::Quiesce);
        assert!(accepted.load(Ordering::SeqCst) >= 1);

        backend.stop();
        let started = Instant::now();
        let e = next_event(&mut events).await;
        assert_eq!(
            (e.service, e.address, e.port, e.up),
            (id.0, id.1, id.2, false)
        );
        assert_eq!(e.detail, "connect: connection refused");
        // Three failures at 100 ms intervals.
        assert!(
            started.elapsed() >= Duration::from_millis(200),
            "{:?}",
            started.elapsed()
        );
        let r = view.borrow_and_update().reals[&id].clone();
        assert!(!r.up);
        assert!(r.failures >= 3);
        assert_eq!(r.since_ms, e.at_ms);

        let _backend = Backend::start(addr, accepted).await;
        let e = next_event(&mut events).await;
        assert!(e.up);
        assert_eq!(e.detail, "connected");
        assert!(view.borrow().reals[&id].up);
        h.shutdown();
    }

    #[tokio::test]
    async fn follows_config_and_activity() {
        let accepted = Arc::new(AtomicU64::new(0));
        let a = Backend::start("127.0.0.1:0".parse().unwrap(), accepted.clone()).await;
        let other = Arc::new(AtomicU64::new(0));
        let b = Backend::start("127.0.0.1:0".parse().unwrap(), other.clone()).await;
        let mut st = TestState::new();
        let (ka, kb) = ("tcp/10.0.0.10:80", "tcp/10.0.0.11:80");
        st.apply(Command::AddService(service(
            ka,
            &[a.addr],
            Some(tcp_check(1, 1)),
        )))
        .await;
        st.apply(Command::AddService(service(
            kb,
            &[b.addr],
            Some(tcp_check(1, 1)),
        )))
        .await;
        // Services without a check do not appear.
        st.apply(Command::AddService(service(
            "tcp/10.0.0.12:80",
            &[a.addr],
            None,
        )))
        .await;
        let ida: RealId = (ka.parse().unwrap(), a.addr.ip(), a.addr.port());
        let idb: RealId = (kb.parse().unwrap(), b.addr.ip(), b.addr.port());

        // Inactive: nothing runs.
        let (active_tx, active) = watch::channel(false);
        let h = spawn(st.sm.handle(), active);
        let mut view = h.view();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(view.borrow().reals.is_empty());
        assert_eq!(accepted.load(Ordering::SeqCst), 0);

        active_tx.send(true).unwrap();
        wait_view(&mut view, "both checked", |v| {
            v.reals.len() == 2 && v.reals.values().all(|r| r.checks >= 2)
        })
        .await;

        // Changing only the action keeps the state; changing the spec of one service restarts
        // only its check.
        let mut hc = tcp_check(1, 1);
        hc.on_failure = FailureAction::Remove;
        st.apply(Command::SetHealthCheck {
            service: ida.0,
            check: Some(hc.clone()),
        })
        .await;
        let v = wait_view(&mut view, "new action", |v| {
            v.reals[&ida].action == FailureAction::Remove
        })
        .await;
        assert!(v.reals[&ida].checks >= 2, "{v:?}");
        let (a_since, b_since) = (v.reals[&ida].since_ms, v.reals[&idb].since_ms);
        tokio::time::sleep(Duration::from_millis(5)).await;
        hc.interval_ms = 150;
        st.apply(Command::SetHealthCheck {
            service: ida.0,
            check: Some(hc),
        })
        .await;
        let v = wait_view(&mut view, "restarted check", |v| {
            v.reals[&ida].since_ms > a_since
        })
        .await;
        assert_eq!(v.reals[&idb].since_ms, b_since);

        // Deleting the service stops its check.
        st.apply(Command::DeleteService(ida.0)).await;
        wait_view(&mut view, "service gone", |v| !v.reals.contains_key(&ida)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = accepted.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(accepted.load(Ordering::SeqCst), before);
        assert!(view.borrow().reals.contains_key(&idb));

        // Deactivation stops everything and clears the view; reactivation starts afresh, Up,
        // so the still-stopped backend goes Down once more.
        b.stop();
        wait_view(&mut view, "b down", |v| !v.reals[&idb].up).await;
        active_tx.send(false).unwrap();
        wait_view(&mut view, "cleared", |v| v.reals.is_empty()).await;
        let mut events = h.events();
        let t0 = unix_ms();
        active_tx.send(true).unwrap();
        let e = next_event(&mut events).await;
        assert_eq!((e.service, e.up), (idb.0, false));
        assert!(e.at_ms >= t0);
        h.shutdown();
    }
}
