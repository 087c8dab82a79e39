//! The configuration the leader programs: the replicated config with its derived, fast-changing
//! state laid over it (computed weights, health-check failures, drained servers, sorry servers).
//! The overlay never enters the Raft log; a director that does not lead programs an empty one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::{Config, FailureAction, RealServer, Service, ServiceKey};

/// What the leader knows about one real server beyond its configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealOverride {
    /// Weight computed by the weight policy (load/latency services only).
    pub weight: Option<u32>,
    /// Failed its health check, and what the check's owner asked for then.
    pub down: Option<FailureAction>,
    /// Its agent asked for no new connections.
    pub drained: bool,
}

/// Derived state per service, by real server.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overlay {
    pub services: BTreeMap<ServiceKey, BTreeMap<(IpAddr, u16), RealOverride>>,
}

impl Overlay {
    pub fn get(&self, key: &ServiceKey, r: &RealServer) -> RealOverride {
        self.services
            .get(key)
            .and_then(|m| m.get(&(r.address, r.port)))
            .copied()
            .unwrap_or_default()
    }

    /// Services whose overrides differ between the two overlays.
    pub fn changed(&self, other: &Overlay) -> BTreeSet<ServiceKey> {
        let keys: BTreeSet<&ServiceKey> =
            self.services.keys().chain(other.services.keys()).collect();
        keys.into_iter()
            .filter(|k| self.services.get(k) != other.services.get(k))
            .copied()
            .collect()
    }
}

/// One real server as programmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Programmed {
    /// False when a failed check removed it from the kernel table.
    pub in_kernel: bool,
    pub weight: u32,
}

/// How one real server is programmed under `o`.
pub fn programmed(s: &Service, r: &RealServer, o: RealOverride) -> Programmed {
    match o.down {
        Some(FailureAction::Remove) => Programmed {
            in_kernel: false,
            weight: 0,
        },
        Some(FailureAction::Quiesce) => Programmed {
            in_kernel: true,
            weight: 0,
        },
        None if o.drained => Programmed {
            in_kernel: true,
            weight: 0,
        },
        None => Programmed {
            in_kernel: true,
            weight: if s.weight_policy.is_dynamic() {
                o.weight.unwrap_or(r.weight)
            } else {
                r.weight
            },
        },
    }
}

/// Whether the service's sorry server stands in now: it has one and none of its real servers is
/// available (every one failed its check or is drained). A service without reals has nothing
/// to stand in for an operator may be building it up, so it gets no sorry server.
pub fn sorry_active(s: &Service, ov: &Overlay) -> bool {
    s.sorry_server.is_some()
        && !s.reals.is_empty()
        && s.reals.iter().all(|r| {
            let o = ov.get(&s.key, r);
            o.down.is_some() || o.drained
        })
}

/// The service as the kernel should hold it under `ov`.
pub fn service(s: &Service, ov: &Overlay) -> Service {
    let mut out = s.clone();
    out.reals = s
        .reals
        .iter()
        .filter_map(|r| {
            let p = programmed(s, r, ov.get(&s.key, r));
            p.in_kernel.then(|| RealServer {
                weight: p.weight,
                ..r.clone()
            })
        })
        .collect();
    if sorry_active(s, ov) {
        out.reals.extend(s.sorry_server.clone());
    }
    out
}

/// The whole config as the kernel should hold it under `ov`.
pub fn config(c: &Config, ov: &Overlay) -> Config {
    if ov.services.is_empty() && c.services.values().all(|s| s.sorry_server.is_none()) {
        return c.clone();
    }
    let mut out = c.clone();
    for (k, s) in out.services.iter_mut() {
        if ov.services.contains_key(k) || s.sorry_server.is_some() {
            *s = service(s, ov);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WeightPolicy;

    fn svc() -> Service {
        let mut s = Service::new("tcp/10.0.0.10:80".parse().unwrap());
        for (i, w) in [(1, 5), (2, 7)] {
            let mut r = RealServer::new(format!("10.0.1.{i}").parse().unwrap(), 80);
            r.weight = w;
            s.reals.push(r);
        }
        s
    }

    fn set(ov: &mut Overlay, s: &Service, i: usize, o: RealOverride) {
        let r = &s.reals[i];
        ov.services
            .entry(s.key)
            .or_default()
            .insert((r.address, r.port), o);
    }

    fn weights(s: &Service) -> Vec<(String, u32)> {
        s.reals.iter().map(|r| (r.endpoint(), r.weight)).collect()
    }

    #[test]
    fn computed_weights_only_for_dynamic_policies() {
        let mut s = svc();
        let mut ov = Overlay::default();
        let o = RealOverride {
            weight: Some(900),
            ..Default::default()
        };
        set(&mut ov, &s, 0, o);
        assert_eq!(service(&s, &ov).reals[0].weight, 5, "static keeps config");
        s.weight_policy = WeightPolicy::Load;
        assert_eq!(service(&s, &ov).reals[0].weight, 900);
        // No computed weight yet: the configured one.
        assert_eq!(service(&s, &ov).reals[1].weight, 7);
    }

    #[test]
    fn health_and_drain_win_over_weights() {
        let mut s = svc();
        s.weight_policy = WeightPolicy::Load;
        let mut ov = Overlay::default();
        let down = RealOverride {
            weight: Some(900),
            down: Some(FailureAction::Quiesce),
            drained: false,
        };
        set(&mut ov, &s, 0, down);
        let drained = RealOverride {
            drained: true,
            ..Default::default()
        };
        set(&mut ov, &s, 1, drained);
        assert_eq!(
            weights(&service(&s, &ov)),
            vec![("10.0.1.1:80".into(), 0), ("10.0.1.2:80".into(), 0)]
        );
        let removed = RealOverride {
            down: Some(FailureAction::Remove),
            ..Default::default()
        };
        set(&mut ov, &s, 0, removed);
        assert_eq!(weights(&service(&s, &ov)), vec![("10.0.1.2:80".into(), 0)]);
    }

    #[test]
    fn sorry_server_only_when_none_available() {
        let mut s = svc();
        let mut sorry = RealServer::new("10.0.9.9".parse().unwrap(), 80);
        sorry.weight = 1;
        s.sorry_server = Some(sorry);
        let mut ov = Overlay::default();
        assert!(!sorry_active(&s, &ov));
        assert_eq!(service(&s, &ov).reals.len(), 2);
        let down = RealOverride {
            down: Some(FailureAction::Remove),
            ..Default::default()
        };
        set(&mut ov, &s, 0, down);
        assert!(!sorry_active(&s, &ov), "one still up");
        let drained = RealOverride {
            drained: true,
            ..Default::default()
        };
        set(&mut ov, &s, 1, drained);
        assert!(sorry_active(&s, &ov));
        assert_eq!(
            weights(&service(&s, &ov)),
            vec![("10.0.1.2:80".into(), 0), ("10.0.9.9:80".into(), 1)]
        );
        // Applied through the whole config too.
        let mut c = Config::default();
        c.services.insert(s.key, s.clone());
        assert_eq!(config(&c, &ov).services[&s.key].reals.len(), 2);
    }

    #[test]
    fn changed_names_only_differing_services() {
        let s = svc();
        let mut a = Overlay::default();
        let b = a.clone();
        assert!(a.changed(&b).is_empty());
        set(&mut a, &s, 0, RealOverride::default());
        assert_eq!(a.changed(&b), BTreeSet::from([s.key]));
        assert_eq!(b.changed(&a), BTreeSet::from([s.key]));
    }
}
