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

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cluster_core::effective::{self, Overlay};
use cluster_core::ipvs::codec::Request;
use cluster_core::ipvs::reconcile::{
    self, changed_service, daemon_plan, desired_daemons, Op, Table,
};
use cluster_core::ipvs::{DaemonState, KDaemon};
use cluster_core::model::{Config, ServiceKey, SyncMode};
use cluster_core::store::StateHandle;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::client::{IpvsClient, IpvsError};

/// The `[ipvs]` section of the director config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IpvsConfig {
    /// Off only where directors share a network namespace (loopback examples and tests): they
    /// would fight over one kernel table.
    pub enabled: bool,
    /// Full passes (kernel dump + diff) this often; drift is repaired within this period.
    pub resync_ms: u64,
    /// Delete every service in the kernel that the config does not have, not only the ones this
    /// director created (like `ipvsadm -C` followed by a restore).
    pub own_all_services: bool,
}

impl Default for IpvsConfig {
    fn default() -> Self {
        IpvsConfig {
            enabled: true,
            resync_ms: 5000,
            own_all_services: false,
        }
    }
}

impl IpvsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(100..=3_600_000).contains(&self.resync_ms) {
            return Err(format!(
                "ipvs.resync_ms: {} is out of range 100..=3600000",
                self.resync_ms
            ));
        }
        Ok(())
    }
}

/// A kernel operation that failed, by object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectError {
    /// `service[tcp/10.0.0.1:80]` or `service[...].real[10.0.1.1:80]`, or `sync[master]`.
    pub object: String,
    pub op: String,
    pub message: String,
    pub since_ms: u64,
}

/// What the reconciler last did, for the API and `lvsctl`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct IpvsStatus {
    pub enabled: bool,
    /// Set while the kernel cannot be programmed at all (no IPVS, no permission).
    pub unavailable: Option<String>,
    /// Config revision the kernel was last reconciled to.
    pub revision: u64,
    pub full_passes: u64,
    pub incremental_passes: u64,
    pub last_pass_ms: u64,
    pub last_pass_us: u64,
    /// Operations applied by the last pass and in total.
    pub last_ops: u64,
    pub total_ops: u64,
    /// For the last pass triggered by a config change: microseconds from this director applying
    /// the change to the kernel acknowledging the last operation.
    pub last_change_us: u64,
    pub errors: Vec<ObjectError>,
    /// Services in the kernel left alone because this director does not own them.
    pub foreign: Vec<String>,
    /// Sync daemons running now, e.g. `backup eth1 syncid 7`.
    pub daemons: Vec<String>,
    pub sync_mode: String,
    /// Whether this director holds the VIPs (and so runs the master daemon).
    pub holder: bool,
    /// Failed kernel operations and failed reads of the kernel table, in total.
    pub errors_total: u64,
    /// Unix milliseconds of the end of the last pass in which every operation succeeded.
    pub last_ok_pass_ms: u64,
    /// Pass durations: how many fell in each bucket of `PASS_BUCKETS_S` (not cumulative; the
    /// last slot counts the ones above the largest bound), and their sum.
    pub pass_buckets: Vec<u64>,
    pub pass_us_sum: u64,
}

/// Upper bounds, in seconds, of the pass-duration histogram's buckets.
pub const PASS_BUCKETS_S: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

/// Read access to the status.
#[derive(Clone, Default)]
pub struct IpvsStatusReader(Arc<Mutex<IpvsStatus>>);

impl IpvsStatusReader {
    pub fn get(&self) -> IpvsStatus {
        self.0.lock().expect("ipvs status").clone()
    }
}

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

pub struct Settings {
    pub config: IpvsConfig,
    /// Persisted set of services this director created.
    pub owned_file: PathBuf,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
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
    status.0.lock().expect("ipvs status").enabled = true;
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
            let mut r = Reconciler::new(state, settings, st, initial_holder, first_overlay);
            r.run(rx);
        })?;
    Ok(IpvsHandle {
        status,
        tx,
        thread: Some(thread),
    })
}

struct Reconciler {
    state: StateHandle,
    settings: Settings,
    status: IpvsStatusReader,
    client: Option<IpvsClient>,
    /// The kernel table as of the last full pass plus the operations applied since.
    known: BTreeMap<ServiceKey, Table>,
    owned: BTreeSet<ServiceKey>,
    errors: BTreeMap<String, ObjectError>,
    holder: bool,
    /// The sloppy_tcp value this director last wrote, so it only resets what it set itself.
    sloppy: Option<bool>,
    overlay: Arc<Overlay>,
    /// Failed kernel operations and reads so far (`IpvsStatus::errors_total`).
    failures: u64,
}

impl Reconciler {
    fn new(
        state: StateHandle,
        settings: Settings,
        status: IpvsStatusReader,
        holder: bool,
        overlay: Arc<Overlay>,
    ) -> Reconciler {
        let owned = std::fs::read(&settings.owned_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<ServiceKey>>(&b).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        Reconciler {
            state,
            settings,
            status,
            client: None,
            known: BTreeMap::new(),
            owned,
            errors: BTreeMap::new(),
            holder,
            sloppy: None,
            overlay,
            failures: 0,
        }
    }

    fn run(&mut self, rx: mpsc::Receiver<Poke>) {
        let resync = Duration::from_millis(self.settings.config.resync_ms);
        let mut next_full = Instant::now();
        loop {
            let mut full = Instant::now() >= next_full;
            let mut keys: BTreeSet<ServiceKey> = BTreeSet::new();
            let mut role_changed = false;
            let mut since: Option<Instant> = None;
            if !full {
                match rx.recv_timeout(next_full.saturating_duration_since(Instant::now())) {
                    Ok(p) => {
                        if self.take(p, &mut full, &mut keys, &mut role_changed, &mut since) {
                            break;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => full = true,
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            // Coalesce whatever else is queued into this pass.
            let mut stop = false;
            while let Ok(p) = rx.try_recv() {
                if self.take(p, &mut full, &mut keys, &mut role_changed, &mut since) {
                    stop = true;
                }
            }
            if stop {
                break;
            }
            if full {
                self.full_pass();
                next_full = Instant::now() + resync;
            } else if !keys.is_empty() {
                self.partial_pass(&keys);
            }
            if let Some(t) = since {
                self.status.0.lock().expect("ipvs status").last_change_us =
                    t.elapsed().as_micros() as u64;
            }
            if role_changed && !full {
                self.sync_pass();
            }
        }
        self.stop_master();
        info!("IPVS reconciler stopped");
    }

    /// Folds one poke into the pending work; true on Stop.
    fn take(
        &mut self,
        p: Poke,
        full: &mut bool,
        keys: &mut BTreeSet<ServiceKey>,
        role_changed: &mut bool,
        since: &mut Option<Instant>,
    ) -> bool {
        match p {
            Poke::Services(k, at) => {
                keys.extend(k);
                *since = Some(since.map_or(at, |s| s.min(at)));
            }
            Poke::Overlay(o, k) => {
                self.overlay = o;
                keys.extend(k);
            }
            Poke::Full => *full = true,
            Poke::Role(h) => {
                if h != self.holder {
                    self.holder = h;
                    *role_changed = true;
                }
            }
            Poke::Stop => return true,
        }
        false
    }

    fn client(&mut self) -> Option<&mut IpvsClient> {
        if self.client.is_none() {
            match IpvsClient::open() {
                Ok(mut c) => {
                    match c.info() {
                        Ok(i) => {
                            info!(version = %i.version_string(), conn_tab_size = i.conn_tab_size, "IPVS available")
                        }
                        Err(e) => warn!(error = %e, "IPVS info"),
                    }
                    self.client = Some(c);
                    self.set_unavailable(None);
                }
                Err(e) => {
                    self.set_unavailable(Some(e.to_string()));
                    return None;
                }
            }
        }
        self.client.as_mut()
    }

    fn set_unavailable(&mut self, why: Option<String>) {
        let mut st = self.status.0.lock().expect("ipvs status");
        if st.unavailable != why {
            match &why {
                Some(w) => {
                    warn!(error = %w, "cannot program kernel IPVS; retrying every resync period")
                }
                None if st.unavailable.is_some() => info!("kernel IPVS reachable again"),
                None => {}
            }
        }
        st.unavailable = why;
    }

    /// A socket-level failure (not a per-object error): drop the client and retry next pass.
    fn lost(&mut self, what: &str, e: IpvsError) {
        self.client = None;
        self.failures += 1;
        self.status.0.lock().expect("ipvs status").errors_total = self.failures;
        self.set_unavailable(Some(format!("{what}: {e}")));
    }

    /// The desired table for `config` under the current overlay.
    fn desired(&self, config: &Config) -> BTreeMap<ServiceKey, Table> {
        reconcile::desired(&effective::config(config, &self.overlay), |_, r| r.weight)
    }

    fn full_pass(&mut self) {
        let started = Instant::now();
        let (config, revision) = self.state.read(|s| (s.config.clone(), s.revision));
        let desired = self.desired(&config);
        let Some(client) = self.client() else {
            return;
        };
        let kernel = match read_kernel(client, &desired) {
            Ok(k) => k,
            Err(e) => return self.lost("reading the kernel table", e),
        };
        self.known = kernel;
        let plan = reconcile::plan(
            &desired,
            &self.known,
            &self.owned,
            self.settings.config.own_all_services,
        );
        // A full pass re-derives every error.
        let stale: Vec<String> = self.errors.keys().cloned().collect();
        let failures = self.failures;
        let applied = self.apply(plan.service_ops, plan.dest_ops, &stale);
        let owned =
            reconcile::owned_after(&self.owned, None, &desired, |k| self.known.contains_key(k));
        self.store_owned(owned);
        self.sync_pass_with(&config);
        let mut st = self.status.0.lock().expect("ipvs status");
        st.foreign = plan.foreign.iter().map(|k| k.to_string()).collect();
        st.full_passes += 1;
        self.finish(&mut st, started, applied, revision, failures);
    }

    fn partial_pass(&mut self, keys: &BTreeSet<ServiceKey>) {
        let started = Instant::now();
        let (config, revision) = self.state.read(|s| {
            let services = keys
                .iter()
                .filter_map(|k| s.config.services.get(k).map(|v| (*k, v.clone())))
                .collect();
            (
                Config {
                    services,
                    ..Default::default()
                },
                s.revision,
            )
        });
        if self.client().is_none() {
            return;
        }
        let desired = self.desired(&config);
        let known: BTreeMap<ServiceKey, Table> = keys
            .iter()
            .filter_map(|k| self.known.get(k).map(|t| (*k, t.clone())))
            .collect();
        let plan = reconcile::plan(
            &desired,
            &known,
            &self.owned,
            self.settings.config.own_all_services,
        );
        let prefixes: Vec<String> = keys.iter().map(|k| format!("service[{k}]")).collect();
        let stale: Vec<String> = self
            .errors
            .keys()
            .filter(|o| prefixes.iter().any(|p| o.starts_with(p.as_str())))
            .cloned()
            .collect();
        let failures = self.failures;
        let applied = self.apply(plan.service_ops, plan.dest_ops, &stale);
        let owned = reconcile::owned_after(&self.owned, Some(keys), &desired, |k| {
            self.known.contains_key(k)
        });
        self.store_owned(owned);
        let mut st = self.status.0.lock().expect("ipvs status");
        st.incremental_passes += 1;
        self.finish(&mut st, started, applied, revision, failures);
    }

    /// Records a finished pass; `failures_before` is the failure count when it started.
    fn finish(
        &self,
        st: &mut IpvsStatus,
        started: Instant,
        applied: u64,
        revision: u64,
        failures_before: u64,
    ) {
        let took = started.elapsed();
        st.revision = revision;
        st.last_pass_ms = unix_ms();
        st.last_pass_us = took.as_micros() as u64;
        st.errors_total = self.failures;
        if self.failures == failures_before {
            st.last_ok_pass_ms = st.last_pass_ms;
        }
        st.pass_buckets.resize(PASS_BUCKETS_S.len() + 1, 0);
        let slot = PASS_BUCKETS_S
            .iter()
            .position(|b| took.as_secs_f64() <= *b)
            .unwrap_or(PASS_BUCKETS_S.len());
        st.pass_buckets[slot] += 1;
        st.pass_us_sum += st.last_pass_us;
        st.last_ops = applied;
        st.total_ops += applied;
        st.errors = self.errors.values().cloned().collect();
        st.holder = self.holder;
        if applied > 0 {
            debug!(
                ops = applied,
                us = st.last_pass_us,
                revision,
                "IPVS reconciled"
            );
        }
    }

    /// Applies service operations, then the destination operations whose service exists.
    /// Returns how many succeeded. `stale` errors are dropped unless they happen again.
    fn apply(&mut self, service_ops: Vec<Op>, dest_ops: Vec<Op>, stale: &[String]) -> u64 {
        let mut fresh: BTreeMap<String, ObjectError> = BTreeMap::new();
        let mut ok = 0;
        let mut failed_new: BTreeSet<ServiceKey> = BTreeSet::new();
        let results = self.execute(&service_ops);
        for (op, r) in service_ops.iter().zip(results) {
            match r {
                Ok(()) => {
                    ok += 1;
                    self.note_applied(op);
                }
                Err(e) => {
                    self.failures += 1;
                    if let Op::NewService(s) = op {
                        failed_new.insert(s.key);
                    }
                    fresh.insert(op.object(), self.object_error(op, &e));
                }
            }
        }
        let dest_ops: Vec<Op> = dest_ops
            .into_iter()
            .filter(|op| !failed_new.contains(op.service()))
            .collect();
        let results = self.execute(&dest_ops);
        for (op, r) in dest_ops.iter().zip(results) {
            match r {
                Ok(()) => {
                    ok += 1;
                    self.note_applied(op);
                }
                Err(e) => {
                    self.failures += 1;
                    fresh.insert(op.object(), self.object_error(op, &e));
                }
            }
        }
        for o in stale {
            if !fresh.contains_key(o) {
                if let Some(old) = self.errors.remove(o) {
                    info!(object = %old.object, "IPVS error cleared");
                }
            }
        }
        for (o, e) in fresh {
            let repeat = self
                .errors
                .get(&o)
                .is_some_and(|old| old.message == e.message);
            if repeat {
                continue;
            }
            warn!(object = %e.object, op = %e.op, error = %e.message, "IPVS operation failed");
            self.errors.insert(o, e);
        }
        ok
    }

    fn object_error(&self, op: &Op, e: &IpvsError) -> ObjectError {
        let mut message = e.to_string();
        if let (Op::NewService(s) | Op::SetService(s), Some(libc::ENOENT)) = (op, e.errno()) {
            message = format!(
                "{message} (is the scheduler module ip_vs_{} available in this kernel?)",
                s.scheduler
            );
        }
        let since_ms = self
            .errors
            .get(&op.object())
            .map(|old| old.since_ms)
            .unwrap_or_else(unix_ms);
        ObjectError {
            object: op.object(),
            op: op.verb().to_string(),
            message,
            since_ms,
        }
    }

    fn execute(&mut self, ops: &[Op]) -> Vec<Result<(), IpvsError>> {
        if ops.is_empty() {
            return Vec::new();
        }
        let reqs: Vec<Request> = ops.iter().map(request).collect();
        match self.client.as_mut() {
            Some(c) => c.execute(&reqs),
            None => ops.iter().map(|_| Err(IpvsError::Unavailable)).collect(),
        }
    }

    fn note_applied(&mut self, op: &Op) {
        match op {
            Op::NewService(s) => {
                self.known.insert(
                    s.key,
                    Table {
                        service: s.clone(),
                        dests: BTreeMap::new(),
                    },
                );
            }
            Op::SetService(s) => {
                if let Some(t) = self.known.get_mut(&s.key) {
                    t.service = s.clone();
                }
            }
            Op::DelService(k) => {
                self.known.remove(k);
            }
            Op::NewDest(k, d) | Op::SetDest(k, d) => {
                if let Some(t) = self.known.get_mut(k) {
                    t.dests.insert((d.address, d.port), d.clone());
                }
            }
            Op::DelDest(k, a, p) => {
                if let Some(t) = self.known.get_mut(k) {
                    t.dests.remove(&(*a, *p));
                }
            }
        }
    }

    fn store_owned(&mut self, owned: BTreeSet<ServiceKey>) {
        if owned == self.owned {
            return;
        }
        self.owned = owned;
        let list: Vec<&ServiceKey> = self.owned.iter().collect();
        let path = &self.settings.owned_file;
        let tmp = path.with_extension("tmp");
        let res = serde_json::to_vec(&list)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            warn!(file = %path.display(), error = %e, "cannot record the services this director owns");
        }
    }

    fn sync_pass(&mut self) {
        let config = self.state.read(|s| Config {
            sync: s.config.sync.clone(),
            ..Default::default()
        });
        if self.client().is_none() {
            return;
        }
        self.sync_pass_with(&config);
        let mut st = self.status.0.lock().expect("ipvs status");
        st.errors = self.errors.values().cloned().collect();
        st.holder = self.holder;
    }

    /// Daemons for the current role, and sloppy TCP/SCTP for the stateless mode.
    fn sync_pass_with(&mut self, config: &Config) {
        let sync = config.sync.as_ref();
        let mode = sync.map(|s| s.mode);
        self.set_sloppy(mode == Some(SyncMode::Stateless));
        let want = desired_daemons(sync, self.holder);
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let have = match client.daemons() {
            Ok(h) => h,
            Err(e) => return self.lost("reading the sync daemons", e),
        };
        let (stop, start) = daemon_plan(&want, &have);
        let mut results: Vec<(String, String, Result<(), IpvsError>)> = Vec::new();
        for s in stop {
            let r = client.del_daemon(s);
            if r.is_ok() {
                info!(role = ?s, "IPVS sync daemon stopped");
            }
            results.push((daemon_object(s), "stop sync daemon".into(), r));
        }
        for d in &start {
            let r = client.new_daemon(d);
            if r.is_ok() {
                info!(role = ?d.state, interface = %d.interface, syncid = d.syncid, "IPVS sync daemon started");
            }
            results.push((daemon_object(d.state), "start sync daemon".into(), r));
        }
        let running = client.daemons().unwrap_or_default();
        for (object, op, r) in results {
            match r {
                Ok(()) => {
                    self.errors.remove(&object);
                }
                Err(e) => {
                    self.failures += 1;
                    let message = e.to_string();
                    if self.errors.get(&object).map(|x| &x.message) != Some(&message) {
                        warn!(object = %object, error = %message, "IPVS sync daemon change failed");
                        self.errors.insert(
                            object.clone(),
                            ObjectError {
                                object,
                                op,
                                message,
                                since_ms: unix_ms(),
                            },
                        );
                    }
                }
            }
        }
        let mut st = self.status.0.lock().expect("ipvs status");
        st.errors_total = self.failures;
        st.daemons = running.iter().map(describe_daemon).collect();
        st.sync_mode = mode.map(|m| m.as_str().to_string()).unwrap_or_default();
    }

    fn set_sloppy(&mut self, on: bool) {
        if self.sloppy == Some(on) || (self.sloppy.is_none() && !on) {
            return;
        }
        let v = if on { "1" } else { "0" };
        for name in ["sloppy_tcp", "sloppy_sctp"] {
            let path = format!("/proc/sys/net/ipv4/vs/{name}");
            match std::fs::write(&path, v) {
                Ok(()) => info!(sysctl = %path, value = v, "set for the stateless sync mode"),
                Err(e) => warn!(sysctl = %path, error = %e, "cannot set"),
            }
        }
        self.sloppy = Some(on);
    }

    /// Only the VIP holder may run the master: stop it when this director stops.
    fn stop_master(&mut self) {
        if let Some(c) = self.client.as_mut() {
            let running = c.daemons().unwrap_or_default();
            if running.iter().any(|d| d.state == DaemonState::Master) {
                match c.del_daemon(DaemonState::Master) {
                    Ok(()) => info!("IPVS master sync daemon stopped"),
                    Err(e) => warn!(error = %e, "cannot stop the IPVS master sync daemon"),
                }
            }
        }
    }
}

fn daemon_object(s: DaemonState) -> String {
    format!("sync[{}]", s.as_str())
}

/// `master eth1 syncid 7 group 224.0.0.81:8848 ttl 1`.
pub fn describe_daemon(d: &KDaemon) -> String {
    let mut s = format!("{} {} syncid {}", d.state.as_str(), d.interface, d.syncid);
    if let Some(g) = d.group {
        s.push_str(&format!(" group {g}:{}", d.port.unwrap_or(8848)));
    }
    if let Some(t) = d.ttl {
        s.push_str(&format!(" ttl {t}"));
    }
    s
}

fn request(op: &Op) -> Request {
    match op {
        Op::NewService(s) => Request::new_service(s),
        Op::SetService(s) => Request::set_service(s),
        Op::DelService(k) => Request::del_service(k),
        Op::NewDest(k, d) => Request::new_dest(k, d),
        Op::SetDest(k, d) => Request::set_dest(k, d),
        Op::DelDest(k, a, p) => Request::del_dest(k, *a, *p),
    }
}

/// Every service in the kernel, with destinations for the ones the config has (foreign services
/// are never looked into).
fn read_kernel(
    client: &mut IpvsClient,
    desired: &BTreeMap<ServiceKey, Table>,
) -> Result<BTreeMap<ServiceKey, Table>, IpvsError> {
    let mut out = BTreeMap::new();
    for e in client.services()? {
        let key = e.service.key;
        let dests = if desired.contains_key(&key) {
            client
                .dests(&key)?
                .into_iter()
                .map(|d| ((d.dest.address, d.dest.port), d.dest))
                .collect()
        } else {
            BTreeMap::new()
        };
        out.insert(
            key,
            Table {
                service: e.service,
                dests,
            },
        );
    }
    Ok(out)
}
