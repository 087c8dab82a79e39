//! The leader's weight engine. Every control period it feeds the agents' new reports to one
//! `cluster_core::weights::Controller` per load/latency service, and lays the weights, the health
//! checks' verdicts, drained servers and sorry servers over the config as the overlay the IPVS
//! reconciler programs. Health transitions, drains and config changes rebuild the overlay at
//! once, without a control step. Off the leader the overlay is empty and the state is dropped:
//! derived state is never written to the Raft log.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::health::HealthView;
use crate::ipvs::client::IpvsClient;
use cluster_core::effective::{self, Overlay, RealOverride};
use cluster_core::model::{Service, ServiceKey, WeightPolicy};
use cluster_core::store::StateHandle;
use cluster_core::weights::{Controller, Decision, Input, Params};
use lvs_proto::v1 as pb;
use serde::Deserialize;
use tokio::sync::{broadcast, watch};
use tracing::{debug, info, warn};

use super::{report, Registry};

/// The `[weights]` section of the director config.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WeightsConfig {
    /// Control period: one step of every controller this often.
    pub period_ms: u64,
    /// Read each real server's connection rate from this director's kernel as the throughput
    /// of load-policy services whose application posts no `rps`.
    pub kernel_rates: bool,
}

impl Default for WeightsConfig {
    fn default() -> Self {
        WeightsConfig {
            period_ms: 1000,
            kernel_rates: true,
        }
    }
}

impl WeightsConfig {
    pub fn validate(&self) -> Result<(), crate::invalid::Invalid> {
        if !(100..=60_000).contains(&self.period_ms) {
            let reason = format!("{} is out of range 100..=60000", self.period_ms);
            return Err(crate::invalid::Invalid::value("weights.period_ms", reason));
        }
        Ok(())
    }
}

type RealKey = (IpAddr, u16);

/// What `GetAgents` shows, rebuilt with every overlay.
#[derive(Default)]
pub struct Snapshot {
    pub reals: Vec<pb::RealState>,
    pub sorry: Vec<pb::SorryState>,
    pub steps: u64,
    pub weight_writes: u64,
    pub period_ms: u64,
}

/// A change of derived state worth a line in the watch stream.
#[derive(Clone, Debug)]
pub struct Transition {
    pub object: String,
    pub detail: String,
}

pub struct EngineHandle {
    pub snapshot: Arc<Mutex<Snapshot>>,
    pub transitions: broadcast::Sender<Transition>,
}

struct ServiceCtl {
    policy: WeightPolicy,
    ctl: Controller<RealKey>,
    last: BTreeMap<RealKey, Decision>,
}

struct Engine {
    state: StateHandle,
    registry: Arc<Registry>,
    health: watch::Receiver<Arc<HealthView>>,
    overlay: watch::Sender<Arc<Overlay>>,
    snapshot: Arc<Mutex<Snapshot>>,
    transitions: broadcast::Sender<Transition>,
    settings: WeightsConfig,
    params: Params,
    ctls: HashMap<ServiceKey, ServiceCtl>,
    epoch: Instant,
    steps: u64,
    weight_writes: u64,
    drained: BTreeSet<IpAddr>,
    sorry: BTreeSet<ServiceKey>,
    kernel: Arc<Mutex<Option<IpvsClient>>>,
}

/// Starts the engine. `holder` is true while this director holds the VIPs (the leader).
pub fn spawn(
    state: StateHandle,
    registry: Arc<Registry>,
    holder: watch::Receiver<bool>,
    health: watch::Receiver<Arc<HealthView>>,
    overlay: watch::Sender<Arc<Overlay>>,
    settings: WeightsConfig,
    ipvs_enabled: bool,
) -> EngineHandle {
    let snapshot = Arc::new(Mutex::new(Snapshot {
        period_ms: settings.period_ms,
        ..Default::default()
    }));
    let (transitions, _) = broadcast::channel(256);
    let mut settings = settings;
    settings.kernel_rates &= ipvs_enabled;
    let engine = Engine {
        state,
        registry,
        health,
        overlay,
        snapshot: snapshot.clone(),
        transitions: transitions.clone(),
        settings,
        params: Params::default(),
        ctls: HashMap::new(),
        epoch: Instant::now(),
        steps: 0,
        weight_writes: 0,
        drained: BTreeSet::new(),
        sorry: BTreeSet::new(),
        kernel: Arc::new(Mutex::new(None)),
    };
    tokio::spawn(engine.run(holder));
    EngineHandle {
        snapshot,
        transitions,
    }
}

impl Engine {
    async fn run(mut self, mut holder: watch::Receiver<bool>) {
        let period = Duration::from_millis(self.settings.period_ms);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut config_events = self.state.subscribe();
        let registry = self.registry.clone();
        let mut active = false;
        loop {
            let step = tokio::select! {
                _ = tick.tick() => true,
                _ = registry.wake.notified() => false,
                r = self.health.changed() => { if r.is_err() { return; } false }
                r = holder.changed() => { if r.is_err() { return; } false }
                r = config_events.recv() => {
                    if matches!(r, Err(broadcast::error::RecvError::Closed)) { return; }
                    false
                }
            };
            let now_active = *holder.borrow_and_update();
            if now_active != active {
                active = now_active;
                if active {
                    info!("leading: computing weights from agent reports and health checks");
                } else {
                    info!("no longer leading: derived weights and agent state dropped");
                    self.reset();
                }
            }
            if active {
                self.rebuild(step).await;
            }
        }
    }

    fn reset(&mut self) {
        self.ctls.clear();
        self.drained.clear();
        self.sorry.clear();
        self.registry.clear();
        self.overlay.send_replace(Arc::new(Overlay::default()));
        let mut s = self.snapshot.lock().expect("snapshot");
        s.reals.clear();
        s.sorry.clear();
    }

    fn note(&self, object: String, detail: String) {
        let _ = self.transitions.send(Transition { object, detail });
    }

    /// Connections per second the kernel reports for each real server of `keys`.
    async fn kernel_cps(&self, keys: Vec<ServiceKey>) -> KernelRates {
        if keys.is_empty() || !self.settings.kernel_rates {
            return HashMap::new();
        }
        let kernel = self.kernel.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut out = HashMap::new();
            let mut k = kernel.lock().expect("kernel client");
            if k.is_none() {
                *k = IpvsClient::open().ok();
            }
            let Some(c) = k.as_mut() else {
                return out;
            };
            for key in keys {
                match c.dests(&key) {
                    Ok(ds) => {
                        for d in ds {
                            out.insert((key, (d.dest.address, d.dest.port)), d.stats.cps as f64);
                        }
                    }
                    // A socket-level failure: reopen next time.
                    Err(e) if e.errno().is_none() => {
                        *k = None;
                        break;
                    }
                    Err(_) => {}
                }
            }
            out
        });
        read.await.unwrap_or_default()
    }

    /// One rebuild: with `step`, new reports feed the controllers first; either way the
    /// overlay and the `GetAgents` snapshot are rebuilt from the config, weights, health and
    /// drains, and transitions are noted.
    async fn rebuild(&mut self, step: bool) {
        let now = Instant::now();
        let now_ms = now.duration_since(self.epoch).as_millis() as u64;
        let services: Vec<Service> = self
            .state
            .read(|s| s.config.services.values().cloned().collect());
        let pending = if step {
            self.registry.take_pending(now)
        } else {
            Vec::new()
        };
        let cps = if step {
            let load_keys: Vec<ServiceKey> = services
                .iter()
                .filter(|s| s.weight_policy == WeightPolicy::Load)
                .map(|s| s.key)
                .collect();
            self.kernel_cps(load_keys).await
        } else {
            HashMap::new()
        };
        let (reports, drained, agent_of) = self.read_registry(&pending);
        self.note_drains(drained);
        let writes = self.run_controllers(&services, step.then_some((&reports, &cps, now_ms)));
        if step {
            self.steps += 1;
            self.weight_writes += writes;
        }
        let health = self.health.borrow().clone();
        let ov = Arc::new(self.overlay_of(&services, &health));
        self.note_sorry(&services, &ov);
        self.overlay.send_if_modified(|cur| {
            if **cur == *ov {
                false
            } else {
                *cur = ov.clone();
                true
            }
        });
        self.publish(&services, &ov, &health, &agent_of);
    }

    /// This step's reports by address, the drained addresses and which agent speaks for each
    /// address, read once under the registry's lock.
    fn read_registry(
        &self,
        pending: &[String],
    ) -> (Reports, BTreeSet<IpAddr>, HashMap<IpAddr, String>) {
        let g = self.registry.lock();
        let mut reports: Reports = HashMap::new();
        for name in pending {
            if let Some(e) = g.agents.get(name) {
                if let (Some(r), Some(at)) = (&e.last, e.last_at) {
                    let at_ms = at.saturating_duration_since(self.epoch).as_millis() as u64;
                    for a in &e.addresses {
                        reports.insert(*a, (r.clone(), at_ms));
                    }
                }
            }
        }
        let mut drained = BTreeSet::new();
        for e in g.agents.values() {
            if e.last.as_ref().is_some_and(|r| r.draining) {
                drained.extend(e.addresses.iter().copied());
            }
        }
        (reports, drained, g.by_addr.clone())
    }

    fn note_drains(&mut self, drained: BTreeSet<IpAddr>) {
        for a in drained.difference(&self.drained) {
            info!(real = %a, "real server drained by its agent: weight 0, existing connections continue");
            self.note(format!("agent {a}"), "drained: no new connections".into());
        }
        for a in self.drained.difference(&drained) {
            info!(real = %a, "real server ready again (agent)");
            self.note(format!("agent {a}"), "ready: takes new connections".into());
        }
        self.drained = drained;
    }

    /// Keeps one controller per load/latency service (a changed policy starts a new one) with
    /// the config's members; with `step`, feeds it the reports and steps it. Returns how many
    /// weights changed.
    fn run_controllers(
        &mut self,
        services: &[Service],
        step: Option<(&Reports, &KernelRates, u64)>,
    ) -> u64 {
        let live: BTreeMap<ServiceKey, WeightPolicy> = services
            .iter()
            .filter(|s| s.weight_policy.is_dynamic())
            .map(|s| (s.key, s.weight_policy))
            .collect();
        self.ctls.retain(|k, c| live.get(k) == Some(&c.policy));
        let mut writes = 0;
        for s in services.iter().filter(|s| s.weight_policy.is_dynamic()) {
            let Some(input) = Input::from_policy(s.weight_policy) else {
                continue;
            };
            let params = &self.params;
            let c = self.ctls.entry(s.key).or_insert_with(|| ServiceCtl {
                policy: s.weight_policy,
                ctl: Controller::new(input, params.clone()),
                last: BTreeMap::new(),
            });
            let members: Vec<(RealKey, u32)> = s
                .reals
                .iter()
                .map(|r| ((r.address, r.port), r.weight))
                .collect();
            c.ctl.set_members(&members);
            if let Some((reports, cps, now_ms)) = step {
                writes += step_one(s, c, reports, cps, now_ms);
            }
        }
        writes
    }

    /// Computed weights, failed checks and drains over the config.
    fn overlay_of(&self, services: &[Service], health: &HealthView) -> Overlay {
        let mut ov = Overlay::default();
        for s in services {
            let mut m = BTreeMap::new();
            let ctl = self.ctls.get(&s.key);
            for r in &s.reals {
                let rk = (r.address, r.port);
                let o = RealOverride {
                    weight: ctl.and_then(|c| c.last.get(&rk)).map(|d| d.weight),
                    down: health
                        .reals
                        .get(&(s.key, r.address, r.port))
                        .filter(|h| !h.up)
                        .map(|h| h.action),
                    drained: self.drained.contains(&r.address),
                };
                if o != RealOverride::default() {
                    m.insert(rk, o);
                }
            }
            if !m.is_empty() {
                ov.services.insert(s.key, m);
            }
        }
        ov
    }

    fn note_sorry(&mut self, services: &[Service], ov: &Overlay) {
        let sorry_now: BTreeSet<ServiceKey> = services
            .iter()
            .filter(|s| effective::sorry_active(s, ov))
            .map(|s| s.key)
            .collect();
        for k in sorry_now.difference(&self.sorry) {
            warn!(service = %k, "no real server available: sorry server in use");
            self.note(format!("service {k}"), "sorry server in use".into());
        }
        for k in self.sorry.difference(&sorry_now) {
            info!(service = %k, "a real server is available again: sorry server withdrawn");
            self.note(format!("service {k}"), "sorry server withdrawn".into());
        }
        self.sorry = sorry_now;
    }

    /// The `GetAgents` view of this rebuild.
    fn publish(
        &self,
        services: &[Service],
        ov: &Overlay,
        health: &HealthView,
        agent_of: &HashMap<IpAddr, String>,
    ) {
        let mut reals = Vec::new();
        for s in services {
            let ctl = self.ctls.get(&s.key);
            for r in &s.reals {
                let d = ctl.and_then(|c| c.last.get(&(r.address, r.port)));
                let agent = agent_of.get(&r.address).cloned().unwrap_or_default();
                reals.push(real_state(s, r, ov.get(&s.key, r), d, health, agent));
            }
        }
        let sorry = services
            .iter()
            .filter(|s| self.sorry.contains(&s.key))
            .filter_map(|s| {
                s.sorry_server.as_ref().map(|r| pb::SorryState {
                    service: s.key.to_string(),
                    sorry: r.endpoint(),
                })
            })
            .collect();
        let mut snap = self.snapshot.lock().expect("snapshot");
        snap.reals = reals;
        snap.sorry = sorry;
        snap.steps = self.steps;
        snap.weight_writes = self.weight_writes;
    }
}

/// Reports of one step by real-server address, with their arrival (ms since the epoch).
type Reports = HashMap<IpAddr, (pb::AgentReport, u64)>;

/// Connections per second of each real server, from this director's kernel.
type KernelRates = HashMap<(ServiceKey, RealKey), f64>;

/// Feeds one service's controller the step's reports and steps it; returns the weights changed.
fn step_one(
    s: &Service,
    c: &mut ServiceCtl,
    reports: &Reports,
    cps: &KernelRates,
    now_ms: u64,
) -> u64 {
    for r in &s.reals {
        if let Some((rep, at_ms)) = reports.get(&r.address) {
            let kc = cps.get(&(s.key, (r.address, r.port))).copied();
            c.ctl.report(
                &(r.address, r.port),
                report::sample(rep, r.port, *at_ms, kc),
            );
        }
    }
    let decisions = c.ctl.step(now_ms);
    let mut writes = 0;
    for (k, d) in &decisions {
        let before = c.last.get(k).map(|d| d.weight);
        if before != Some(d.weight) {
            writes += 1;
            debug!(service = %s.key, real = %cluster_core::model::fmt_endpoint(&k.0, k.1), from = ?before, to = d.weight, phase = d.phase.as_str(), "weight");
        }
    }
    c.last = decisions;
    writes
}

/// One real server as `GetAgents` shows it.
fn real_state(
    s: &Service,
    r: &cluster_core::model::RealServer,
    o: RealOverride,
    d: Option<&Decision>,
    health: &HealthView,
    agent: String,
) -> pb::RealState {
    let p = effective::programmed(s, r, o);
    let h = health.reals.get(&(s.key, r.address, r.port));
    pb::RealState {
        service: s.key.to_string(),
        address: r.address.to_string(),
        port: r.port as u32,
        policy: s.weight_policy.as_str().into(),
        configured_weight: r.weight,
        effective_weight: if p.in_kernel { p.weight } else { 0 },
        in_kernel: p.in_kernel,
        phase: match d {
            Some(d) => d.phase.as_str().into(),
            None if s.weight_policy.is_dynamic() => "no-reports".into(),
            None => "static".into(),
        },
        capacity: d.and_then(|d| d.capacity),
        health: match h {
            None => "unchecked".into(),
            Some(h) if h.up => "up".into(),
            Some(_) => "down".into(),
        },
        health_detail: h.map(|h| h.detail.clone()).unwrap_or_default(),
        health_since_ms: h.map(|h| h.since_ms).unwrap_or(0),
        draining: o.drained,
        agent,
    }
}
