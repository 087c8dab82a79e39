//! The admin gRPC service: converts API messages into typed commands, sends them through the
//! Raft write path, and serves reads (linearizable unless asked otherwise), dry-runs, history
//! and the watch stream; the per-director IPVS reads (kernel table, connections), which the
//! receiving director answers itself; and the agent listing, which only the leader has.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use cluster_core::error::CommandError;
use cluster_core::model::{RealServer, Service, ServiceKey};
use cluster_core::state::{ClientRequest, Command};
use futures::Stream;
use lvs_proto::convert as cv;
use lvs_proto::v1 as pb;
use lvs_proto::v1::admin_server::Admin;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::kernel_view;
use super::leader::LeaderApi;
use crate::agents::engine::Transition;
use crate::raft::{command_status, RaftHandle};
use crate::views::Views;

pub struct AdminService {
    pub raft: Arc<RaftHandle>,
    pub views: Arc<Views>,
    pub leader: Arc<LeaderApi>,
    /// Becomes true at shutdown; open watch streams end then so the server can stop.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Who asked: the identity in the client's certificate; without TLS the principal the client
/// names, else its address.
pub fn principal<T>(req: &Request<T>) -> String {
    if let Some(id) = super::authz::identity(req) {
        return id.principal();
    }
    if let Some(p) = req
        .metadata()
        .get(lvs_proto::PRINCIPAL_KEY)
        .and_then(|v| v.to_str().ok())
        .filter(|p| !p.is_empty())
    {
        return p.chars().take(128).collect();
    }
    match req.remote_addr() {
        Some(a) => format!("anonymous@{}", a.ip()),
        None => "anonymous".into(),
    }
}

/// A derived-state transition as a watch entry: the config revision it happened at, with one
/// change naming the object (these are not config changes and never advance the revision).
fn transition_entry(t: &Transition, revision: u64, node: u64) -> pb::HistoryEntry {
    pb::HistoryEntry {
        revision,
        time_ms: lvs_ops::clock::unix_ms(),
        principal: format!("director/{node}"),
        command: "event".into(),
        changes: vec![pb::Change {
            op: "event".into(),
            object: t.object.clone(),
            detail: t.detail.clone(),
        }],
    }
}

fn bad(e: CommandError) -> Status {
    command_status(&e)
}

fn missing(field: &str) -> Status {
    Status::invalid_argument(format!("{field}: missing"))
}

/// The service of an add/edit request and its expected revision.
fn service_of(r: pb::ServiceRequest) -> Result<(Service, Option<u64>), Status> {
    let svc =
        cv::service_from_pb(r.service.as_ref().ok_or_else(|| missing("service"))?).map_err(bad)?;
    Ok((svc, r.expected_revision))
}

/// The service key, real server and expected revision of an add/edit request.
fn real_of(r: pb::RealRequest) -> Result<(ServiceKey, RealServer, Option<u64>), Status> {
    let service = cv::service_key("service", &r.service).map_err(bad)?;
    let real =
        cv::real_from_pb("real", r.real.as_ref().ok_or_else(|| missing("real"))?).map_err(bad)?;
    Ok((service, real, r.expected_revision))
}

impl AdminService {
    async fn write(
        &self,
        principal: String,
        command: Command,
        expected_revision: Option<u64>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let applied = self
            .raft
            .write(ClientRequest {
                principal,
                time_ms: lvs_ops::clock::unix_ms(),
                command,
                expected_revision,
            })
            .await?;
        Ok(Response::new(pb::WriteResponse {
            revision: applied.revision,
            changes: applied.changes.iter().map(cv::change_to_pb).collect(),
        }))
    }

    async fn barrier(&self, stale: bool) -> Result<(), Status> {
        if !stale {
            self.raft.read_barrier().await?;
        }
        Ok(())
    }
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::HistoryEntry, Status>> + Send>>;

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_config(
        &self,
        req: Request<pb::GetConfigRequest>,
    ) -> Result<Response<pb::GetConfigResponse>, Status> {
        self.barrier(req.get_ref().stale).await?;
        let mut only = Vec::new();
        for (i, k) in req.get_ref().services.iter().enumerate() {
            let key: cluster_core::model::ServiceKey =
                k.parse()
                    .map_err(|e: cluster_core::error::ServiceKeyError| {
                        Status::invalid_argument(format!("services[{i}]: {e}"))
                    })?;
            only.push(key);
        }
        let (config, revision) = self.raft.state.read(|s| {
            if only.is_empty() {
                return (cv::config_to_pb(&s.config), s.revision);
            }
            let subset = cluster_core::model::Config {
                services: only
                    .iter()
                    .filter_map(|k| s.config.services.get(k).map(|v| (*k, v.clone())))
                    .collect(),
                vip_groups: s.config.vip_groups.clone(),
                sync: s.config.sync.clone(),
            };
            (cv::config_to_pb(&subset), s.revision)
        });
        Ok(Response::new(pb::GetConfigResponse {
            config: Some(config),
            revision,
            node_id: self.raft.id,
        }))
    }

    async fn add_service(
        &self,
        req: Request<pb::ServiceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let (svc, expected) = service_of(req.into_inner())?;
        self.write(p, Command::AddService(svc), expected).await
    }

    async fn edit_service(
        &self,
        req: Request<pb::ServiceRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let (svc, expected) = service_of(req.into_inner())?;
        self.write(p, Command::EditService(svc), expected).await
    }

    async fn delete_service(
        &self,
        req: Request<pb::ServiceRef>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let r = req.into_inner();
        let key = cv::service_key("service", &r.service).map_err(bad)?;
        self.write(p, Command::DeleteService(key), r.expected_revision)
            .await
    }

    async fn add_real(
        &self,
        req: Request<pb::RealRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let (service, real, expected) = real_of(req.into_inner())?;
        self.write(p, Command::AddReal { service, real }, expected)
            .await
    }

    async fn edit_real(
        &self,
        req: Request<pb::RealRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let (service, real, expected) = real_of(req.into_inner())?;
        self.write(p, Command::EditReal { service, real }, expected)
            .await
    }

    async fn delete_real(
        &self,
        req: Request<pb::RealRef>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let r = req.into_inner();
        let service = cv::service_key("service", &r.service).map_err(bad)?;
        let address = r.address.parse().map_err(|_| {
            Status::invalid_argument(format!("address: {:?} is not an IP address", r.address))
        })?;
        let port = u16::try_from(r.port).map_err(|_| {
            Status::invalid_argument(format!("port: {} is out of range 0..=65535", r.port))
        })?;
        self.write(
            p,
            Command::DeleteReal {
                service,
                address,
                port,
            },
            r.expected_revision,
        )
        .await
    }

    async fn set_health_check(
        &self,
        req: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let r = req.into_inner();
        let service = cv::service_key("service", &r.service).map_err(bad)?;
        let check = r
            .check
            .as_ref()
            .map(|h| cv::health_from_pb("check", h))
            .transpose()
            .map_err(bad)?;
        self.write(
            p,
            Command::SetHealthCheck { service, check },
            r.expected_revision,
        )
        .await
    }

    async fn put_vip_group(
        &self,
        req: Request<pb::VipGroupRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let r = req.into_inner();
        let g = cv::vip_group_from_pb(r.group.as_ref().ok_or_else(|| missing("group"))?)
            .map_err(bad)?;
        self.write(p, Command::PutVipGroup(g), r.expected_revision)
            .await
    }

    async fn delete_vip_group(
        &self,
        req: Request<pb::VipGroupRef>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let r = req.into_inner();
        self.write(p, Command::DeleteVipGroup(r.name), r.expected_revision)
            .await
    }

    async fn set_sync(
        &self,
        req: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::WriteResponse>, Status> {
        let p = principal(&req);
        let r = req.into_inner();
        let s = r
            .sync
            .as_ref()
            .map(cv::sync_from_pb)
            .transpose()
            .map_err(bad)?;
        self.write(p, Command::SetSync(s), r.expected_revision)
            .await
    }

    async fn apply(
        &self,
        req: Request<pb::ApplyRequest>,
    ) -> Result<Response<pb::ApplyResponse>, Status> {
        let p = principal(&req);
        let reader = super::authz::identity(&req)
            .filter(|id| id.role == cluster_core::auth::Role::ReadOnly)
            .cloned();
        let r = req.into_inner();
        // Read-only operators may preview an apply; the authorization layer let them this far.
        if let (Some(id), false) = (reader, r.dry_run) {
            let e = format!("{id} may not call /lvs.v1.Admin/Apply without dry_run");
            tracing::warn!(server = "api", method = "/lvs.v1.Admin/Apply", reason = %e, "call refused");
            return Err(Status::permission_denied(e));
        }
        let config =
            cv::config_from_pb(r.config.as_ref().ok_or_else(|| missing("config"))?).map_err(bad)?;
        if r.dry_run {
            self.barrier(false).await?;
            let (revision, changes) = self
                .raft
                .state
                .read(|s| {
                    if let Some(want) = r.expected_revision {
                        if want != s.revision {
                            return Err(CommandError::precondition(
                                "expected_revision",
                                format!(
                                    "{want} does not match the current revision {}",
                                    s.revision
                                ),
                            ));
                        }
                    }
                    s.plan_apply(&config).map(|c| (s.revision, c))
                })
                .map_err(bad)?;
            return Ok(Response::new(pb::ApplyResponse {
                revision,
                changes: changes.iter().map(cv::change_to_pb).collect(),
                applied: false,
            }));
        }
        let w = self
            .write(p, Command::Apply(config), r.expected_revision)
            .await?
            .into_inner();
        Ok(Response::new(pb::ApplyResponse {
            revision: w.revision,
            changes: w.changes,
            applied: true,
        }))
    }

    async fn history(
        &self,
        req: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let r = req.into_inner();
        self.barrier(r.stale).await?;
        let (entries, revision) = self.raft.state.read(|s| {
            let skip = match r.limit {
                0 => 0,
                n => s.history.len().saturating_sub(n as usize),
            };
            (
                s.history.iter().skip(skip).map(cv::history_to_pb).collect(),
                s.revision,
            )
        });
        Ok(Response::new(pb::HistoryResponse { entries, revision }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let from = req.into_inner().from_revision;
        // Subscribe before reading the backlog so nothing falls between the two.
        let mut rx = self.raft.state.subscribe();
        let mut events = self.views.transitions();
        let node_id = self.raft.id;
        let (backlog, current) = self.raft.state.read(|s| {
            let b: Vec<_> = if from == 0 {
                Vec::new()
            } else {
                s.history
                    .iter()
                    .filter(|h| h.revision > from)
                    .cloned()
                    .collect()
            };
            (b, s.revision)
        });
        let (tx, out) = tokio::sync::mpsc::channel(256);
        let mut shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            let mut last = if from == 0 { current } else { from };
            for h in backlog {
                last = h.revision;
                if tx.send(Ok(cv::history_to_pb(&h))).await.is_err() {
                    return;
                }
            }
            loop {
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = async { let _ = shutdown.wait_for(|v| *v).await; } => {
                        let _ = tx.send(Err(Status::unavailable(format!(
                            "director shutting down; resume from revision {last}"
                        )))).await;
                        return;
                    }
                    t = events.recv() => {
                        if let Ok(t) = t {
                            if tx.send(Ok(transition_entry(&t, last, node_id))).await.is_err() {
                                return;
                            }
                        }
                    }
                    ev = rx.recv() => match ev {
                        Ok(h) => {
                            if h.revision <= last {
                                continue;
                            }
                            last = h.revision;
                            if tx.send(Ok(cv::history_to_pb(&h))).await.is_err() {
                                return;
                            }
                        }
                        Err(RecvError::Lagged(_)) => {
                            let _ = tx
                                .send(Err(Status::aborted(format!(
                                    "watch fell behind; resume from revision {last}"
                                ))))
                                .await;
                            return;
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }

    async fn get_ipvs(
        &self,
        _req: Request<pb::GetIpvsRequest>,
    ) -> Result<Response<pb::IpvsState>, Status> {
        let kernel = tokio::task::spawn_blocking(kernel_view::read_kernel)
            .await
            .map_err(|e| Status::internal(format!("reading the kernel IPVS table: {e}")))?;
        let status = self.views.ipvs.get();
        let id = self.raft.id;
        let state = self
            .raft
            .state
            .read(|s| kernel_view::ipvs_state(id, &s.config, s.revision, &status, kernel));
        Ok(Response::new(state))
    }

    async fn list_conns(
        &self,
        req: Request<pb::ListConnsRequest>,
    ) -> Result<Response<pb::ConnList>, Status> {
        let r = req.into_inner();
        let mut list = tokio::task::spawn_blocking(move || {
            kernel_view::read_conns(Path::new(kernel_view::PROC_NET), r.sync_only, r.limit)
        })
        .await
        .map_err(|e| Status::internal(format!("reading the connection entries: {e}")))?
        .map_err(|kernel_view::ConnsError::NoOrigin(m)| Status::failed_precondition(m))?;
        list.node_id = self.raft.id;
        Ok(Response::new(list))
    }

    async fn get_agents(
        &self,
        _req: Request<pb::GetAgentsRequest>,
    ) -> Result<Response<pb::AgentsState>, Status> {
        self.leader.get_agents_anywhere().await.map(Response::new)
    }
}
