//! One reconciler pass: read the config (and, on a full pass, the kernel table), diff, apply,
//! record per-object errors and the services this director owns, and run the sync daemons for
//! the current role. Talks to the kernel only through [`IpvsKernel`], so the passes are unit
//! tested against `FakeIpvs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cluster_core::effective::{self, Overlay};
use cluster_core::ipvs::reconcile::{self, daemon_plan, desired_daemons, Op, Table};
use cluster_core::ipvs::DaemonState;
use cluster_core::model::{Config, ServiceKey, SyncMode};
use cluster_core::store::StateHandle;
use lvs_ops::clock::unix_ms;
use tracing::{debug, info, warn};

use super::client::IpvsError;
use super::config::IpvsConfig;
use super::kernel::{sysctl_path, IpvsKernel};
use super::status::{describe_daemon, IpvsStatus, IpvsStatusReader, ObjectError, PASS_BUCKETS_S};

/// Where the reconciler reads the replicated config from: the state machine, or a test's table.
pub trait ConfigSource: Send + 'static {
    /// Runs `f` on the current config and its revision.
    fn read<T>(&self, f: impl FnOnce(&Config, u64) -> T) -> T;
}

impl ConfigSource for StateHandle {
    fn read<T>(&self, f: impl FnOnce(&Config, u64) -> T) -> T {
        StateHandle::read(self, |s| f(&s.config, s.revision))
    }
}

pub struct Settings {
    pub config: IpvsConfig,
    /// Persisted set of services this director created.
    pub owned_file: PathBuf,
}

/// Opens the kernel connection; called again after a socket-level failure.
pub type Opener<K> = Box<dyn FnMut() -> Result<K, IpvsError> + Send>;

pub struct Reconciler<K: IpvsKernel, S: ConfigSource> {
    state: S,
    pub(super) settings: Settings,
    status: IpvsStatusReader,
    open: Opener<K>,
    kernel: Option<K>,
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

impl<K: IpvsKernel, S: ConfigSource> Reconciler<K, S> {
    pub fn new(
        state: S,
        settings: Settings,
        status: IpvsStatusReader,
        open: Opener<K>,
        holder: bool,
        overlay: Arc<Overlay>,
    ) -> Self {
        let owned = std::fs::read(&settings.owned_file)
            .ok()
            .and_then(|b| serde_json::from_slice::<Vec<ServiceKey>>(&b).ok())
            .map(|v| v.into_iter().collect())
            .unwrap_or_default();
        Reconciler {
            state,
            settings,
            status,
            open,
            kernel: None,
            known: BTreeMap::new(),
            owned,
            errors: BTreeMap::new(),
            holder,
            sloppy: None,
            overlay,
            failures: 0,
        }
    }

    /// Takes a new overlay; the caller passes the services it touched.
    pub fn set_overlay(&mut self, overlay: Arc<Overlay>) {
        self.overlay = overlay;
    }

    /// Records whether this director holds the VIPs; true when that changed.
    pub fn set_holder(&mut self, holder: bool) -> bool {
        std::mem::replace(&mut self.holder, holder) != holder
    }

    /// Records how long the last config change took to reach the kernel.
    pub fn set_change_latency(&self, us: u64) {
        self.status.lock().last_change_us = us;
    }

    fn kernel(&mut self) -> Option<&mut K> {
        if self.kernel.is_none() {
            match (self.open)() {
                Ok(k) => {
                    self.kernel = Some(k);
                    self.set_unavailable(None);
                }
                Err(e) => {
                    self.set_unavailable(Some(e.to_string()));
                    return None;
                }
            }
        }
        self.kernel.as_mut()
    }

    fn set_unavailable(&mut self, why: Option<String>) {
        let mut st = self.status.lock();
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

    /// A socket-level failure (not a per-object error): drop the connection and retry next pass.
    fn lost(&mut self, what: &str, e: IpvsError) {
        self.kernel = None;
        self.failures += 1;
        self.status.lock().errors_total = self.failures;
        self.set_unavailable(Some(format!("{what}: {e}")));
    }

    /// The desired table for `config` under the current overlay.
    fn desired(&self, config: &Config) -> BTreeMap<ServiceKey, Table> {
        reconcile::desired(&effective::config(config, &self.overlay), |_, r| r.weight)
    }

    /// Dumps the kernel, diffs the whole config against it and applies the difference; repairs
    /// any drift and re-derives every error.
    pub fn full_pass(&mut self) {
        let started = Instant::now();
        let (config, revision) = self.state.read(|c, r| (c.clone(), r));
        let desired = self.desired(&config);
        let Some(kernel) = self.kernel() else {
            return;
        };
        let kernel = match read_kernel(kernel, &desired) {
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
        let mut st = self.status.lock();
        st.foreign = plan.foreign.iter().map(|k| k.to_string()).collect();
        st.full_passes += 1;
        self.finish(&mut st, started, applied, revision, failures);
    }

    /// Reconciles only `keys`, against the kernel view kept since the last full pass.
    pub fn partial_pass(&mut self, keys: &BTreeSet<ServiceKey>) {
        let started = Instant::now();
        let (config, revision) = self.state.read(|c, r| {
            let services = keys
                .iter()
                .filter_map(|k| c.services.get(k).map(|v| (*k, v.clone())))
                .collect();
            (
                Config {
                    services,
                    ..Default::default()
                },
                r,
            )
        });
        if self.kernel().is_none() {
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
        let mut st = self.status.lock();
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
        let mut failed_new: BTreeSet<ServiceKey> = BTreeSet::new();
        let mut ok = self.apply_phase(&service_ops, &mut fresh, &mut failed_new);
        let dest_ops: Vec<Op> = dest_ops
            .into_iter()
            .filter(|op| !failed_new.contains(op.service()))
            .collect();
        ok += self.apply_phase(&dest_ops, &mut fresh, &mut failed_new);
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

    /// Executes one phase; failures go to `fresh`, services that could not be created to
    /// `failed_new`. Returns how many succeeded.
    fn apply_phase(
        &mut self,
        ops: &[Op],
        fresh: &mut BTreeMap<String, ObjectError>,
        failed_new: &mut BTreeSet<ServiceKey>,
    ) -> u64 {
        let results = self.execute(ops);
        let mut ok = 0;
        for (op, r) in ops.iter().zip(results) {
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
        match self.kernel.as_mut() {
            Some(k) => k.execute(ops),
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

    /// The sync daemons (and sloppy sysctls) alone, after the VIP holder changed.
    pub fn sync_pass(&mut self) {
        let config = self.state.read(|c, _| Config {
            sync: c.sync.clone(),
            ..Default::default()
        });
        if self.kernel().is_none() {
            return;
        }
        self.sync_pass_with(&config);
        let mut st = self.status.lock();
        st.errors = self.errors.values().cloned().collect();
        st.holder = self.holder;
    }

    /// Daemons for the current role, and sloppy TCP/SCTP for the stateless mode.
    fn sync_pass_with(&mut self, config: &Config) {
        let sync = config.sync.as_ref();
        let mode = sync.map(|s| s.mode);
        self.set_sloppy(mode == Some(SyncMode::Stateless));
        let want = desired_daemons(sync, self.holder);
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let have = match kernel.daemons() {
            Ok(h) => h,
            Err(e) => return self.lost("reading the sync daemons", e),
        };
        let (stop, start) = daemon_plan(&want, &have);
        let mut results: Vec<(String, String, Result<(), IpvsError>)> = Vec::new();
        for s in stop {
            let r = kernel.del_daemon(s);
            if r.is_ok() {
                info!(role = ?s, "IPVS sync daemon stopped");
            }
            results.push((daemon_object(s), "stop sync daemon".into(), r));
        }
        for d in &start {
            let r = kernel.new_daemon(d);
            if r.is_ok() {
                info!(role = ?d.state, interface = %d.interface, syncid = d.syncid, "IPVS sync daemon started");
            }
            results.push((daemon_object(d.state), "start sync daemon".into(), r));
        }
        let running = kernel.daemons().unwrap_or_default();
        for (object, op, r) in results {
            self.note_daemon_result(object, op, r);
        }
        let mut st = self.status.lock();
        st.errors_total = self.failures;
        st.daemons = running.iter().map(describe_daemon).collect();
        st.sync_mode = mode.map(|m| m.as_str().to_string()).unwrap_or_default();
    }

    fn note_daemon_result(&mut self, object: String, op: String, r: Result<(), IpvsError>) {
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

    fn set_sloppy(&mut self, on: bool) {
        if self.sloppy == Some(on) || (self.sloppy.is_none() && !on) {
            return;
        }
        let Some(kernel) = self.kernel.as_mut() else {
            return;
        };
        let v = if on { "1" } else { "0" };
        for name in ["sloppy_tcp", "sloppy_sctp"] {
            let path = sysctl_path(name);
            match kernel.set_sysctl(name, v) {
                Ok(()) => info!(sysctl = %path, value = v, "set for the stateless sync mode"),
                Err(e) => warn!(sysctl = %path, error = %e, "cannot set"),
            }
        }
        self.sloppy = Some(on);
    }

    /// Only the VIP holder may run the master: stop it when this director stops.
    pub fn stop_master(&mut self) {
        if let Some(k) = self.kernel.as_mut() {
            let running = k.daemons().unwrap_or_default();
            if running.iter().any(|d| d.state == DaemonState::Master) {
                match k.del_daemon(DaemonState::Master) {
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

/// Every service in the kernel, with destinations for the ones the config has (foreign services
/// are never looked into).
fn read_kernel(
    kernel: &mut impl IpvsKernel,
    desired: &BTreeMap<ServiceKey, Table>,
) -> Result<BTreeMap<ServiceKey, Table>, IpvsError> {
    let mut out = BTreeMap::new();
    for service in kernel.services()? {
        let key = service.key;
        let dests = if desired.contains_key(&key) {
            kernel
                .dests(&key)?
                .into_iter()
                .map(|d| ((d.address, d.port), d))
                .collect()
        } else {
            BTreeMap::new()
        };
        out.insert(key, Table { service, dests });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use cluster_core::effective::RealOverride;
    use cluster_core::model::{FailureAction, RealServer, Service, SyncSettings};

    use super::super::fake::FakeIpvs;
    use super::*;

    /// A config the test edits, standing in for the state machine.
    #[derive(Clone, Default)]
    struct TestConfig(Arc<Mutex<(Config, u64)>>);

    impl ConfigSource for TestConfig {
        fn read<T>(&self, f: impl FnOnce(&Config, u64) -> T) -> T {
            let g = self.0.lock().unwrap();
            f(&g.0, g.1)
        }
    }

    impl TestConfig {
        fn edit(&self, f: impl FnOnce(&mut Config)) {
            let mut g = self.0.lock().unwrap();
            f(&mut g.0);
            g.1 += 1;
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        config: TestConfig,
        fake: FakeIpvs,
        status: IpvsStatusReader,
        r: Reconciler<FakeIpvs, TestConfig>,
    }

    fn rig_with(own_all_services: bool, owned: Option<&[&str]>) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let owned_file = dir.path().join("ipvs-owned.json");
        if let Some(o) = owned {
            std::fs::write(&owned_file, serde_json::to_vec(o).unwrap()).unwrap();
        }
        let config = TestConfig::default();
        let fake = FakeIpvs::new();
        let status = IpvsStatusReader::default();
        let opener = fake.clone();
        let r = Reconciler::new(
            config.clone(),
            Settings {
                config: IpvsConfig {
                    own_all_services,
                    ..Default::default()
                },
                owned_file,
            },
            status.clone(),
            Box::new(move || Ok(opener.clone())),
            false,
            Arc::default(),
        );
        Rig {
            _dir: dir,
            config,
            fake,
            status,
            r,
        }
    }

    fn rig() -> Rig {
        rig_with(false, None)
    }

    fn key(s: &str) -> ServiceKey {
        s.parse().unwrap()
    }

    fn service(k: &str, reals: &[&str]) -> Service {
        let mut s = Service::new(key(k));
        for r in reals {
            let a: std::net::SocketAddr = r.parse().unwrap();
            s.reals.push(RealServer::new(a.ip(), a.port()));
        }
        s
    }

    fn add(config: &mut Config, s: Service) {
        config.services.insert(s.key, s);
    }

    /// The fake's table as `service -> [real:port/weight]`.
    fn kernel(fake: &FakeIpvs) -> BTreeMap<String, Vec<String>> {
        fake.table()
            .services
            .iter()
            .map(|(k, t)| {
                let dests = t
                    .dests
                    .values()
                    .map(|d| format!("{}:{}/{}", d.address, d.port, d.weight))
                    .collect();
                (k.to_string(), dests)
            })
            .collect()
    }

    fn table(rows: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        rows.iter()
            .map(|(k, d)| (k.to_string(), d.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    const WEB: &str = "tcp/10.0.0.1:80";
    const DNS: &str = "udp/10.0.0.2:53";

    fn two_services(rig: &Rig) {
        rig.config.edit(|c| {
            add(c, service(WEB, &["10.0.1.1:80", "10.0.1.2:80"]));
            add(c, service(DNS, &["10.0.1.3:53"]));
        });
    }

    #[test]
    fn a_full_pass_programs_the_config_and_a_second_changes_nothing() {
        let mut rig = rig();
        two_services(&rig);
        rig.r.full_pass();
        assert_eq!(
            kernel(&rig.fake),
            table(&[
                (WEB, &["10.0.1.1:80/1", "10.0.1.2:80/1"]),
                (DNS, &["10.0.1.3:53/1"]),
            ])
        );
        let st = rig.status.get();
        assert_eq!((st.full_passes, st.last_ops, st.revision), (1, 5, 1));
        assert!(st.errors.is_empty() && st.unavailable.is_none());
        assert_eq!(st.last_ok_pass_ms, st.last_pass_ms);
        assert_eq!(st.pass_buckets.iter().sum::<u64>(), 1);

        rig.fake.take_executed();
        rig.r.full_pass();
        assert!(rig.fake.take_executed().is_empty());
        assert_eq!(rig.status.get().total_ops, 5);
    }

    #[test]
    fn a_full_pass_repairs_drift() {
        let mut rig = rig();
        two_services(&rig);
        rig.r.full_pass();
        let programmed = kernel(&rig.fake);
        // `ipvsadm -C`, then someone edits a weight and deletes a real server.
        rig.fake.flush();
        rig.r.full_pass();
        assert_eq!(kernel(&rig.fake), programmed);
        {
            let mut t = rig.fake.table();
            let web = t.services.get_mut(&key(WEB)).unwrap();
            web.dests.values_mut().next().unwrap().weight = 7;
            web.dests.pop_last();
        }
        rig.r.full_pass();
        assert_eq!(kernel(&rig.fake), programmed);
        assert_eq!(rig.status.get().full_passes, 3);
    }

    #[test]
    fn a_partial_pass_touches_only_the_named_services() {
        let mut rig = rig();
        two_services(&rig);
        rig.r.full_pass();
        rig.config.edit(|c| {
            c.services.get_mut(&key(WEB)).unwrap().reals[0].weight = 5;
            c.services.get_mut(&key(DNS)).unwrap().reals[0].weight = 9;
        });
        rig.fake.take_executed();
        rig.r.partial_pass(&BTreeSet::from([key(WEB)]));
        let ops = rig.fake.take_executed();
        assert_eq!(ops.len(), 1, "{ops:?}");
        assert_eq!(ops[0].service(), &key(WEB));
        let k = kernel(&rig.fake);
        assert_eq!(k[WEB][0], "10.0.1.1:80/5");
        assert_eq!(k[DNS][0], "10.0.1.3:53/1");
        let st = rig.status.get();
        assert_eq!((st.incremental_passes, st.revision), (1, 2));
    }

    #[test]
    fn per_object_errors_are_recorded_and_do_not_stop_the_others() {
        let mut rig = rig();
        two_services(&rig);
        let bad_real = format!("service[{WEB}].real[10.0.1.2:80]");
        rig.fake.fail(&format!("service[{DNS}]"), libc::ENOENT);
        rig.fake.fail(&bad_real, libc::EINVAL);
        rig.r.full_pass();
        // The web service and its good real server went in; the DNS service's real servers were
        // not tried without their service.
        assert_eq!(kernel(&rig.fake), table(&[(WEB, &["10.0.1.1:80/1"])]));
        let st = rig.status.get();
        assert_eq!(st.errors_total, 2);
        assert_ne!(st.last_ok_pass_ms, st.last_pass_ms);
        let errors: Vec<(&str, &str)> = st
            .errors
            .iter()
            .map(|e| (e.object.as_str(), e.op.as_str()))
            .collect();
        assert_eq!(
            errors,
            [
                (bad_real.as_str(), "add real server"),
                (format!("service[{DNS}]").as_str(), "add service"),
            ]
        );
        // A missing scheduler module reads ENOENT; the message says so.
        assert!(
            st.errors[1]
                .message
                .ends_with("(is the scheduler module ip_vs_wlc available in this kernel?)"),
            "{:?}",
            st.errors[1]
        );
        let since = st.errors[0].since_ms;

        // Failing again keeps the first time; healed objects clear their error.
        rig.r.full_pass();
        let st = rig.status.get();
        assert_eq!(st.errors.len(), 2);
        assert_eq!(st.errors[0].since_ms, since);
        rig.fake.heal(&format!("service[{DNS}]"));
        rig.fake.heal(&bad_real);
        rig.r.full_pass();
        let st = rig.status.get();
        assert!(st.errors.is_empty(), "{:?}", st.errors);
        assert_eq!(st.errors_total, 4);
        assert_eq!(st.last_ok_pass_ms, st.last_pass_ms);
        assert_eq!(kernel(&rig.fake).len(), 2);
    }

    #[test]
    fn an_unreadable_kernel_is_reported_and_retried() {
        let mut rig = rig();
        two_services(&rig);
        rig.fake.table().read_errno = Some(libc::EPERM);
        rig.r.full_pass();
        let st = rig.status.get();
        assert!(
            st.unavailable
                .as_deref()
                .unwrap()
                .starts_with("reading the kernel table: dump services: "),
            "{st:?}"
        );
        assert_eq!((st.errors_total, st.full_passes), (1, 0));
        rig.fake.table().read_errno = None;
        rig.r.full_pass();
        let st = rig.status.get();
        assert_eq!((st.unavailable, st.full_passes), (None, 1));
        assert_eq!(kernel(&rig.fake).len(), 2);
    }

    #[test]
    fn no_kernel_means_unavailable() {
        let mut rig = rig();
        two_services(&rig);
        rig.r.open = Box::new(|| Err(IpvsError::Unavailable));
        rig.r.full_pass();
        rig.r.partial_pass(&BTreeSet::from([key(WEB)]));
        let st = rig.status.get();
        assert_eq!(
            st.unavailable.as_deref(),
            Some("IPVS is not available: modprobe ip_vs")
        );
        assert_eq!((st.full_passes, st.incremental_passes), (0, 0));
        assert!(kernel(&rig.fake).is_empty());
    }

    fn foreign_service(fake: &FakeIpvs, k: &str) {
        let s = reconcile::kernel_service(&service(k, &[]));
        let t = Table {
            service: s,
            dests: BTreeMap::new(),
        };
        fake.table().services.insert(key(k), t);
    }

    #[test]
    fn services_not_ours_are_left_alone() {
        let mut rig = rig();
        two_services(&rig);
        foreign_service(&rig.fake, "tcp/192.0.2.9:443");
        rig.r.full_pass();
        assert!(kernel(&rig.fake).contains_key("tcp/192.0.2.9:443"));
        assert_eq!(rig.status.get().foreign, ["tcp/192.0.2.9:443"]);

        // A service this director created is ours: removed from the config, it goes.
        rig.config.edit(|c| {
            c.services.remove(&key(DNS));
        });
        rig.r.full_pass();
        let k = kernel(&rig.fake);
        assert!(!k.contains_key(DNS) && k.contains_key(WEB), "{k:?}");
        assert!(k.contains_key("tcp/192.0.2.9:443"));
        let owned: Vec<String> =
            serde_json::from_slice(&std::fs::read(&rig.r.settings.owned_file).unwrap()).unwrap();
        assert_eq!(owned, [WEB]);
    }

    #[test]
    fn ownership_survives_a_restart_through_the_owned_file() {
        // An earlier run created the DNS service; the config no longer has it.
        let mut rig = rig_with(false, Some(&[DNS]));
        rig.config.edit(|c| add(c, service(WEB, &["10.0.1.1:80"])));
        foreign_service(&rig.fake, DNS);
        foreign_service(&rig.fake, "tcp/192.0.2.9:443");
        rig.r.full_pass();
        let k = kernel(&rig.fake);
        assert!(!k.contains_key(DNS), "{k:?}");
        assert!(k.contains_key("tcp/192.0.2.9:443"));
    }

    #[test]
    fn own_all_services_deletes_foreign_ones() {
        let mut rig = rig_with(true, None);
        two_services(&rig);
        foreign_service(&rig.fake, "tcp/192.0.2.9:443");
        rig.r.full_pass();
        assert_eq!(kernel(&rig.fake).len(), 2);
        assert!(rig.status.get().foreign.is_empty());
    }

    fn multicast() -> SyncSettings {
        serde_json::from_str(r#"{"interface":"eth1","syncid":7}"#).unwrap()
    }

    fn running(fake: &FakeIpvs) -> Vec<DaemonState> {
        fake.table().daemons.iter().map(|d| d.state).collect()
    }

    #[test]
    fn sync_daemons_follow_the_holder() {
        let mut rig = rig();
        rig.config.edit(|c| c.sync = Some(multicast()));
        rig.r.full_pass();
        assert_eq!(running(&rig.fake), [DaemonState::Backup]);
        assert_eq!(rig.status.get().daemons, ["backup eth1 syncid 7 ttl 1"]);
        assert_eq!(rig.status.get().sync_mode, "multicast");

        assert!(rig.r.set_holder(true));
        assert!(!rig.r.set_holder(true));
        rig.r.sync_pass();
        assert_eq!(
            running(&rig.fake),
            [DaemonState::Backup, DaemonState::Master]
        );
        assert!(rig.status.get().holder);

        assert!(rig.r.set_holder(false));
        rig.r.sync_pass();
        assert_eq!(running(&rig.fake), [DaemonState::Backup]);

        // A daemon that will not start is an error on its object, cleared once it starts.
        rig.fake.fail("sync[master]", libc::EBUSY);
        rig.r.set_holder(true);
        rig.r.sync_pass();
        let st = rig.status.get();
        assert_eq!(st.errors.len(), 1);
        assert_eq!(
            (st.errors[0].object.as_str(), st.errors[0].op.as_str()),
            ("sync[master]", "start sync daemon")
        );
        rig.fake.heal("sync[master]");
        rig.r.sync_pass();
        assert!(rig.status.get().errors.is_empty());
        assert_eq!(running(&rig.fake).len(), 2);

        // Stopping: only the VIP holder may run the master.
        rig.r.stop_master();
        assert_eq!(running(&rig.fake), [DaemonState::Backup]);
    }

    #[test]
    fn stateless_sync_sets_sloppy_and_runs_no_daemon() {
        let mut rig = rig();
        rig.fake.table().daemons = desired_daemons(Some(&multicast()), false);
        let mut s = multicast();
        s.mode = SyncMode::Stateless;
        rig.config.edit(|c| c.sync = Some(s));
        rig.r.full_pass();
        assert!(running(&rig.fake).is_empty());
        let sysctls = rig.fake.table().sysctls.clone();
        assert_eq!(sysctls["sloppy_tcp"], "1");
        assert_eq!(sysctls["sloppy_sctp"], "1");
        // Back to multicast: reset what this director set.
        rig.config.edit(|c| c.sync = Some(multicast()));
        rig.r.full_pass();
        assert_eq!(rig.fake.table().sysctls["sloppy_tcp"], "0");
        assert_eq!(running(&rig.fake), [DaemonState::Backup]);
    }

    #[test]
    fn overlay_changes_reprogram_only_their_services() {
        let mut rig = rig();
        two_services(&rig);
        rig.r.full_pass();
        let mut overlay = Overlay::default();
        let down = RealOverride {
            down: Some(FailureAction::Remove),
            ..Default::default()
        };
        let drained = RealOverride {
            drained: true,
            ..Default::default()
        };
        let web = overlay.services.entry(key(WEB)).or_default();
        web.insert(("10.0.1.1".parse().unwrap(), 80), down);
        web.insert(("10.0.1.2".parse().unwrap(), 80), drained);
        let touched = Overlay::default().changed(&overlay);
        assert_eq!(touched, BTreeSet::from([key(WEB)]));
        rig.r.set_overlay(Arc::new(overlay));
        rig.fake.take_executed();
        rig.r.partial_pass(&touched);
        assert!(rig
            .fake
            .take_executed()
            .iter()
            .all(|op| op.service() == &key(WEB)));
        assert_eq!(
            kernel(&rig.fake),
            table(&[(WEB, &["10.0.1.2:80/0"]), (DNS, &["10.0.1.3:53/1"])])
        );
        // The overlay also holds over full passes.
        rig.r.full_pass();
        assert_eq!(kernel(&rig.fake)[WEB], ["10.0.1.2:80/0"]);
    }
}
