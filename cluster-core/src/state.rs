//! Typed commands and their deterministic application to the replicated state: a command either
//! changes the config (and bumps the revision, recording history) or is rejected and changes
//! nothing. Everything a command needs (time, principal) travels inside it, so every replica
//! computes the same result.

use std::collections::VecDeque;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::diff::{self, Change};
use crate::error::CommandError;
use crate::model::*;
use crate::validate;

/// How many history entries the state keeps.
pub const HISTORY_LEN: usize = 1000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Command {
    AddService(Service),
    /// Replaces the service's attributes; its real servers and health check are kept.
    EditService(Service),
    DeleteService(ServiceKey),
    AddReal {
        service: ServiceKey,
        real: RealServer,
    },
    EditReal {
        service: ServiceKey,
        real: RealServer,
    },
    DeleteReal {
        service: ServiceKey,
        address: IpAddr,
        port: u16,
    },
    SetHealthCheck {
        service: ServiceKey,
        check: Option<HealthCheck>,
    },
    /// Adds or replaces the group of that name.
    PutVipGroup(VipGroup),
    DeleteVipGroup(String),
    SetSync(Option<SyncSettings>),
    /// Replaces the whole configuration atomically.
    Apply(Config),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::AddService(_) => "add-service",
            Command::EditService(_) => "edit-service",
            Command::DeleteService(_) => "delete-service",
            Command::AddReal { .. } => "add-real",
            Command::EditReal { .. } => "edit-real",
            Command::DeleteReal { .. } => "delete-real",
            Command::SetHealthCheck { .. } => "set-health-check",
            Command::PutVipGroup(_) => "put-vip-group",
            Command::DeleteVipGroup(_) => "delete-vip-group",
            Command::SetSync(_) => "set-sync",
            Command::Apply(_) => "apply",
        }
    }
}

/// A command as proposed to Raft: stamped by the node that accepted it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// The API principal that asked for the change.
    pub principal: String,
    /// Wall-clock milliseconds since the Unix epoch when the change was accepted.
    pub time_ms: u64,
    pub command: Command,
    /// Optimistic concurrency: reject unless the config is at exactly this revision.
    #[serde(default)]
    pub expected_revision: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub revision: u64,
    pub time_ms: u64,
    pub principal: String,
    pub command: String,
    pub changes: Vec<Change>,
}

/// Result of an accepted command. `changes` is empty (and the revision unchanged) for a no-op.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub revision: u64,
    pub changes: Vec<Change>,
}

/// Which stored objects a command touched, so stores can persist incrementally: each listed
/// service is rewritten if it exists after the command and removed otherwise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Touched {
    pub services: Vec<ServiceKey>,
    /// VIP groups or sync settings may have changed.
    pub globals: bool,
}

/// What one command does to the config: its changes and the objects to persist.
type Outcome = Result<(Vec<Change>, Touched), CommandError>;

/// The replicated state: the config, its revision and recent history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub revision: u64,
    pub config: Config,
    pub history: VecDeque<HistoryEntry>,
}

fn no_service(key: &ServiceKey) -> CommandError {
    CommandError::not_found(
        validate::service_path(key),
        format!("no such service {key}"),
    )
}

impl State {
    /// Applies a request. On error nothing changed.
    pub fn apply(&mut self, req: &ClientRequest) -> Result<(Applied, Touched), CommandError> {
        if let Some(want) = req.expected_revision {
            if want != self.revision {
                return Err(CommandError::precondition(
                    "expected_revision",
                    format!(
                        "{want} does not match the current revision {} (someone else changed the config; re-read and retry)",
                        self.revision
                    ),
                ));
            }
        }
        let (changes, touched) = self.apply_command(&req.command)?;
        if !changes.is_empty() {
            self.revision += 1;
            self.history.push_back(HistoryEntry {
                revision: self.revision,
                time_ms: req.time_ms,
                principal: req.principal.clone(),
                command: req.command.name().to_string(),
                changes: changes.clone(),
            });
            while self.history.len() > HISTORY_LEN {
                self.history.pop_front();
            }
        }
        Ok((
            Applied {
                revision: self.revision,
                changes,
            },
            touched,
        ))
    }

    /// What applying `desired` would change, without changing anything (dry-run).
    pub fn plan_apply(&self, desired: &Config) -> Result<Vec<Change>, CommandError> {
        let desired = validate::config(desired)?;
        Ok(diff::diff(&self.config, &desired))
    }

    fn put_service(&mut self, old: Option<&Service>, new: Service) -> (Vec<Change>, Touched) {
        let changes = diff::diff_service(old, Some(&new));
        let key = new.key;
        if !changes.is_empty() {
            self.config.services.insert(key, new);
        }
        (
            changes,
            Touched {
                services: vec![key],
                globals: false,
            },
        )
    }

    fn service(&self, key: &ServiceKey) -> Result<&Service, CommandError> {
        self.config.services.get(key).ok_or_else(|| no_service(key))
    }

    /// One command against the current config: a step per command kind below.
    fn apply_command(&mut self, cmd: &Command) -> Outcome {
        match cmd {
            Command::AddService(s) => self.add_service(s),
            Command::EditService(s) => self.edit_service(s),
            Command::DeleteService(key) => self.delete_service(key),
            Command::AddReal { service, real } => self.add_real(service, real),
            Command::EditReal { service, real } => self.edit_real(service, real),
            Command::DeleteReal {
                service,
                address,
                port,
            } => self.delete_real(service, address, *port),
            Command::SetHealthCheck { service, check } => {
                let old = self.service(service)?.clone();
                let mut s = old.clone();
                s.health_check = check.clone();
                let new = validate::service(&s)?;
                Ok(self.put_service(Some(&old), new))
            }
            Command::PutVipGroup(g) => {
                let mut groups = self.config.vip_groups.clone();
                match groups.iter_mut().find(|x| x.name == g.name) {
                    Some(slot) => *slot = g.clone(),
                    None => groups.push(g.clone()),
                }
                self.set_globals(groups, self.config.sync.clone())
            }
            Command::DeleteVipGroup(name) => self.delete_vip_group(name),
            Command::SetSync(s) => self.set_globals(self.config.vip_groups.clone(), s.clone()),
            Command::Apply(c) => self.apply_config(c),
        }
    }

    fn add_service(&mut self, s: &Service) -> Outcome {
        if self.config.services.contains_key(&s.key) {
            return Err(CommandError::exists(
                validate::service_path(&s.key),
                format!("service {} already exists (edit it instead)", s.key),
            ));
        }
        let new = validate::service(s)?;
        validate::sync_fits_service(self.config.sync.as_ref(), &new)?;
        Ok(self.put_service(None, new))
    }

    /// Replaces the service's attributes, keeping its real servers and health check.
    fn edit_service(&mut self, s: &Service) -> Outcome {
        let old = self.service(&s.key)?.clone();
        let mut merged = s.clone();
        merged.reals = old.reals.clone();
        merged.health_check = old.health_check.clone();
        let new = validate::service(&merged)?;
        validate::sync_fits_service(self.config.sync.as_ref(), &new)?;
        Ok(self.put_service(Some(&old), new))
    }

    fn delete_service(&mut self, key: &ServiceKey) -> Outcome {
        let old = self
            .config
            .services
            .remove(key)
            .ok_or_else(|| no_service(key))?;
        Ok((
            diff::diff_service(Some(&old), None),
            Touched {
                services: vec![*key],
                globals: false,
            },
        ))
    }

    fn add_real(&mut self, service: &ServiceKey, real: &RealServer) -> Outcome {
        let old = self.service(service)?.clone();
        if old.real(&real.address, real.port).is_some() {
            return Err(CommandError::exists(
                validate::real_path(service, &real.address, real.port),
                format!(
                    "real server {} already exists (edit it instead)",
                    real.endpoint()
                ),
            ));
        }
        let mut s = old.clone();
        s.reals.push(real.clone());
        let new = validate::service(&s)?;
        Ok(self.put_service(Some(&old), new))
    }

    fn edit_real(&mut self, service: &ServiceKey, real: &RealServer) -> Outcome {
        let old = self.service(service)?.clone();
        let mut s = old.clone();
        let slot = s
            .reals
            .iter_mut()
            .find(|r| r.address == real.address && r.port == real.port)
            .ok_or_else(|| {
                CommandError::not_found(
                    validate::real_path(service, &real.address, real.port),
                    format!("no real server {} in {service}", real.endpoint()),
                )
            })?;
        *slot = real.clone();
        let new = validate::service(&s)?;
        Ok(self.put_service(Some(&old), new))
    }

    fn delete_real(&mut self, service: &ServiceKey, address: &IpAddr, port: u16) -> Outcome {
        let old = self.service(service)?.clone();
        let mut s = old.clone();
        let before = s.reals.len();
        s.reals
            .retain(|r| !(r.address == *address && r.port == port));
        if s.reals.len() == before {
            return Err(CommandError::not_found(
                validate::real_path(service, address, port),
                format!(
                    "no real server {} in {service}",
                    fmt_endpoint(address, port)
                ),
            ));
        }
        Ok(self.put_service(Some(&old), s))
    }

    fn delete_vip_group(&mut self, name: &str) -> Outcome {
        let mut groups = self.config.vip_groups.clone();
        let before = groups.len();
        groups.retain(|g| g.name != name);
        if groups.len() == before {
            return Err(CommandError::not_found(
                format!("vip_group[{name}]"),
                format!("no VIP group named {name:?}"),
            ));
        }
        self.set_globals(groups, self.config.sync.clone())
    }

    /// Replaces the whole config; every service of the old and the new one counts as touched.
    fn apply_config(&mut self, c: &Config) -> Outcome {
        let new = validate::config(c)?;
        let changes = diff::diff(&self.config, &new);
        let mut services: Vec<ServiceKey> = self
            .config
            .services
            .keys()
            .chain(new.services.keys())
            .copied()
            .collect();
        services.sort();
        services.dedup();
        if !changes.is_empty() {
            self.config = new;
        }
        Ok((
            changes,
            Touched {
                services,
                globals: true,
            },
        ))
    }

    /// Validates VIP groups and sync settings together (addresses must be unique across groups).
    fn set_globals(&mut self, groups: Vec<VipGroup>, sync: Option<SyncSettings>) -> Outcome {
        let probe = Config {
            services: Default::default(),
            vip_groups: groups,
            sync,
        };
        let v = validate::config(&probe)?;
        for s in self.config.services.values() {
            validate::sync_fits_service(v.sync.as_ref(), s)?;
        }
        let mut changes = diff::diff_vip_groups(&self.config.vip_groups, &v.vip_groups);
        changes.extend(diff::diff_sync(self.config.sync.as_ref(), v.sync.as_ref()));
        if !changes.is_empty() {
            self.config.vip_groups = v.vip_groups;
            self.config.sync = v.sync;
        }
        Ok((
            changes,
            Touched {
                services: Vec::new(),
                globals: true,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn req(command: Command) -> ClientRequest {
        ClientRequest {
            principal: "test".into(),
            time_ms: 1,
            command,
            expected_revision: None,
        }
    }

    fn key() -> ServiceKey {
        "tcp/10.0.0.1:80".parse().unwrap()
    }

    #[test]
    fn add_edit_delete_bumps_revision_and_history() {
        let mut st = State::default();
        let (a, _) = st
            .apply(&req(Command::AddService(Service::new(key()))))
            .unwrap();
        assert_eq!(a.revision, 1);
        let r = RealServer::new("10.0.1.1".parse().unwrap(), 80);
        st.apply(&req(Command::AddReal {
            service: key(),
            real: r.clone(),
        }))
        .unwrap();
        let e = st
            .apply(&req(Command::AddReal {
                service: key(),
                real: r.clone(),
            }))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::AlreadyExists);
        assert_eq!(st.revision, 2);

        // Edit keeps reals; identical edit is a no-op.
        let mut s = Service::new(key());
        s.scheduler = Scheduler::Rr;
        st.apply(&req(Command::EditService(s.clone()))).unwrap();
        assert_eq!(st.config.services[&key()].reals.len(), 1);
        let (a, _) = st.apply(&req(Command::EditService(s))).unwrap();
        assert!(a.changes.is_empty());
        assert_eq!(a.revision, 3);

        let mut bad = r.clone();
        bad.weight = 100_000;
        let e = st
            .apply(&req(Command::EditReal {
                service: key(),
                real: bad,
            }))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert_eq!(st.revision, 3);
        assert_eq!(st.config.services[&key()].reals[0].weight, 1);

        st.apply(&req(Command::DeleteService(key()))).unwrap();
        assert!(st.config.services.is_empty());
        let e = st.apply(&req(Command::DeleteService(key()))).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        assert_eq!(st.history.len(), 4);
        assert_eq!(st.history.back().unwrap().command, "delete-service");
    }

    #[test]
    fn apply_is_atomic_and_idempotent() {
        let mut st = State::default();
        let mut c = Config::default();
        let mut s = Service::new(key());
        s.reals
            .push(RealServer::new("10.0.1.1".parse().unwrap(), 80));
        c.services.insert(key(), s);
        c.vip_groups.push(VipGroup {
            name: "web".into(),
            interface: "eth0".into(),
            addresses: vec!["10.0.0.1/24".parse().unwrap()],
        });
        assert_eq!(st.plan_apply(&c).unwrap().len(), 3);
        assert_eq!(st.revision, 0);
        st.apply(&req(Command::Apply(c.clone()))).unwrap();
        assert_eq!(st.revision, 1);
        let (a, _) = st.apply(&req(Command::Apply(c.clone()))).unwrap();
        assert!(a.changes.is_empty());
        assert_eq!(st.revision, 1);

        // One bad object rejects the whole apply.
        let mut bad = c.clone();
        bad.services.get_mut(&key()).unwrap().reals[0].weight = 70_000;
        bad.vip_groups.clear();
        assert!(st.apply(&req(Command::Apply(bad))).is_err());
        assert_eq!(st.config, c);
    }

    #[test]
    fn vip_addresses_unique_across_groups() {
        let mut st = State::default();
        let g = |name: &str| VipGroup {
            name: name.into(),
            interface: "eth0".into(),
            addresses: vec!["10.0.0.1/24".parse().unwrap()],
        };
        st.apply(&req(Command::PutVipGroup(g("a")))).unwrap();
        let e = st.apply(&req(Command::PutVipGroup(g("b")))).unwrap_err();
        assert!(e.message.contains("another VIP group"));
        st.apply(&req(Command::DeleteVipGroup("a".into()))).unwrap();
        assert!(st.config.vip_groups.is_empty());
    }
}
