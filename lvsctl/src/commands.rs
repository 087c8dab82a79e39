//! Configuration writes: services, real servers, health checks, VIP groups, sync and apply.

use std::io::Read;

use anyhow::{anyhow, Context, Result};
use cluster_core::model::{Config, Service, SyncSettings, VipGroup};
use cluster_core::validate::{real_path, service_path};
use cluster_core::Change;
use lvs_proto::convert::{
    change_from_pb, config_to_pb, health_to_pb, real_to_pb, service_to_pb, sync_to_pb,
    vip_group_to_pb,
};
use lvs_proto::v1 as pb;

use crate::args;
use crate::cli::{
    ApplyArgs, HealthCheckVerb, RealRef, RealVerb, RealWrite, ServiceVerb, ServiceWrite, SyncVerb,
};
use crate::client::{admin, Call};
use crate::ctx::{is_revision_conflict, not_found, Ctx};
use crate::output;
use crate::output::json::{self, ApplyDoc};

/// Read-modify-write attempts before giving up on a busy configuration. Any write bumps the one
/// config revision, so concurrent edits of unrelated objects conflict too and must simply retry.
const EDIT_ATTEMPTS: usize = 10;

/// A short, jittered pause so concurrent editors do not collide again in lock step.
async fn conflict_pause(attempt: usize) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = u64::from((nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % 50);
    let ms = 10 * attempt as u64 + jitter;
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

fn syntax(e: args::ArgError) -> anyhow::Error {
    anyhow!(e)
}

pub async fn service(ctx: &mut Ctx, verb: ServiceVerb) -> Result<()> {
    let resp = match verb {
        ServiceVerb::Add(w) => {
            let key = args::service_key(&w.svc).map_err(syntax)?;
            let svc = args::new_service(key, &w.attrs).map_err(syntax)?;
            let req = pb::ServiceRequest {
                service: Some(service_to_pb(&svc)),
                expected_revision: None,
            };
            ctx.client
                .call(Call::Write, req, |ch, r| async move {
                    admin(ch).add_service(r).await
                })
                .await?
        }
        ServiceVerb::Edit(w) => edit_service(ctx, &w).await?,
        ServiceVerb::Del(s) => {
            let key = args::service_key(&s).map_err(syntax)?;
            let req = pb::ServiceRef {
                service: key.to_string(),
                expected_revision: None,
            };
            ctx.client
                .call(Call::Write, req, |ch, r| async move {
                    admin(ch).delete_service(r).await
                })
                .await?
        }
    };
    ctx.print_write(&resp)
}

fn find_service(cfg: &Config, key: &cluster_core::ServiceKey) -> Result<Service> {
    cfg.services
        .get(key)
        .cloned()
        .ok_or_else(|| not_found(service_path(key), format!("no such service {key}")))
}

/// EditService replaces every attribute, so the current service is read and only the flags given
/// are changed; `expected_revision` makes a concurrent write fail instead of being undone.
async fn edit_service(ctx: &mut Ctx, w: &ServiceWrite) -> Result<pb::WriteResponse> {
    let key = args::service_key(&w.svc).map_err(syntax)?;
    let mut attempt = 1;
    loop {
        let snap = ctx.config_of(false, &[key]).await?;
        let mut svc = find_service(&snap.config, &key)?;
        args::edit_service(&mut svc, &w.attrs).map_err(syntax)?;
        let req = pb::ServiceRequest {
            service: Some(service_to_pb(&svc)),
            expected_revision: Some(snap.revision),
        };
        match ctx
            .client
            .call(Call::Write, req, |ch, r| async move {
                admin(ch).edit_service(r).await
            })
            .await
        {
            Err(e) if attempt < EDIT_ATTEMPTS && is_revision_conflict(&e) => {
                conflict_pause(attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

pub async fn real(ctx: &mut Ctx, verb: RealVerb) -> Result<()> {
    let resp = match verb {
        RealVerb::Add(w) => {
            let key = args::service_key(&w.real.svc).map_err(syntax)?;
            let (addr, port) = args::real_endpoint(&key, w.real.real);
            let real = args::new_real(addr, port, &w.attrs).map_err(syntax)?;
            let req = pb::RealRequest {
                service: key.to_string(),
                real: Some(real_to_pb(&real)),
                expected_revision: None,
            };
            ctx.client
                .call(Call::Write, req, |ch, r| async move {
                    admin(ch).add_real(r).await
                })
                .await?
        }
        RealVerb::Edit(w) => edit_real(ctx, &w).await?,
        RealVerb::Del(RealRef { svc, real }) => {
            let key = args::service_key(&svc).map_err(syntax)?;
            let (addr, port) = args::real_endpoint(&key, real);
            let req = pb::RealRef {
                service: key.to_string(),
                address: addr.to_string(),
                port: port.into(),
                expected_revision: None,
            };
            ctx.client
                .call(Call::Write, req, |ch, r| async move {
                    admin(ch).delete_real(r).await
                })
                .await?
        }
    };
    ctx.print_write(&resp)
}

/// Like `edit_service`: only the flags given change; the rest is read from the current config.
async fn edit_real(ctx: &mut Ctx, w: &RealWrite) -> Result<pb::WriteResponse> {
    let key = args::service_key(&w.real.svc).map_err(syntax)?;
    let (addr, port) = args::real_endpoint(&key, w.real.real);
    let mut attempt = 1;
    loop {
        let snap = ctx.config_of(false, &[key]).await?;
        let svc = find_service(&snap.config, &key)?;
        let mut real = svc.real(&addr, port).cloned().ok_or_else(|| {
            not_found(
                real_path(&key, &addr, port),
                format!(
                    "no such real server {} in {key}",
                    cluster_core::fmt_endpoint(&addr, port)
                ),
            )
        })?;
        args::edit_real(&mut real, &w.attrs).map_err(syntax)?;
        let req = pb::RealRequest {
            service: key.to_string(),
            real: Some(real_to_pb(&real)),
            expected_revision: Some(snap.revision),
        };
        match ctx
            .client
            .call(Call::Write, req, |ch, r| async move {
                admin(ch).edit_real(r).await
            })
            .await
        {
            Err(e) if attempt < EDIT_ATTEMPTS && is_revision_conflict(&e) => {
                conflict_pause(attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

pub async fn health_check(ctx: &mut Ctx, verb: HealthCheckVerb) -> Result<()> {
    let (svc, check) = match verb {
        HealthCheckVerb::Set { svc, check } => {
            let h = args::health_check(&check).map_err(syntax)?;
            (svc, Some(health_to_pb(&h)))
        }
        HealthCheckVerb::Clear { svc } => (svc, None),
    };
    let key = args::service_key(&svc).map_err(syntax)?;
    let req = pb::HealthCheckRequest {
        service: key.to_string(),
        check,
        expected_revision: None,
    };
    let resp = ctx
        .client
        .call(Call::Write, req, |ch, r| async move {
            admin(ch).set_health_check(r).await
        })
        .await?;
    ctx.print_write(&resp)
}

pub async fn vip_set(
    ctx: &mut Ctx,
    name: String,
    interface: String,
    addresses: Vec<ipnet::IpNet>,
) -> Result<()> {
    let group = VipGroup {
        name,
        interface,
        addresses,
    };
    let req = pb::VipGroupRequest {
        group: Some(vip_group_to_pb(&group)),
        expected_revision: None,
    };
    let resp = ctx
        .client
        .call(Call::Write, req, |ch, r| async move {
            admin(ch).put_vip_group(r).await
        })
        .await?;
    ctx.print_write(&resp)
}

pub async fn vip_del(ctx: &mut Ctx, name: String) -> Result<()> {
    let req = pb::VipGroupRef {
        name,
        expected_revision: None,
    };
    let resp = ctx
        .client
        .call(Call::Write, req, |ch, r| async move {
            admin(ch).delete_vip_group(r).await
        })
        .await?;
    ctx.print_write(&resp)
}

pub async fn sync(ctx: &mut Ctx, verb: SyncVerb) -> Result<()> {
    let sync = match verb {
        SyncVerb::Set {
            mode,
            interface,
            syncid,
            group,
            port,
            ttl,
        } => Some(sync_to_pb(&SyncSettings {
            mode: mode.parse().map_err(anyhow::Error::msg)?,
            interface,
            syncid,
            group,
            port,
            ttl,
        })),
        SyncVerb::Clear => None,
    };
    let req = pb::SyncRequest {
        sync,
        expected_revision: None,
    };
    let resp = ctx
        .client
        .call(Call::Write, req, |ch, r| async move {
            admin(ch).set_sync(r).await
        })
        .await?;
    ctx.print_write(&resp)
}

/// Reads and parses the file before anything is sent, so a typo never reaches the cluster.
pub fn read_config(path: &std::path::Path) -> Result<Config> {
    let (name, text) = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading standard input")?;
        ("<stdin>".to_string(), s)
    } else {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
        (name, text)
    };
    Config::from_toml(&text).map_err(|e| anyhow!(output::toml_error(&name, &e)))
}

pub async fn apply(ctx: &mut Ctx, a: ApplyArgs) -> Result<()> {
    let config = read_config(&a.file)?;
    let req = pb::ApplyRequest {
        config: Some(config_to_pb(&config)),
        dry_run: a.dry_run,
        expected_revision: a.expect_revision,
    };
    let resp = ctx
        .client
        .call(
            Call::Write,
            req,
            |ch, r| async move { admin(ch).apply(r).await },
        )
        .await?;
    let changes: Vec<Change> = resp.changes.iter().map(change_from_pb).collect();
    if ctx.json() {
        ctx.print(&json::pretty(&ApplyDoc {
            revision: resp.revision,
            applied: resp.applied,
            dry_run: a.dry_run,
            changes: &changes,
        }))
    } else {
        ctx.print(&output::apply_result(resp.revision, &changes, a.dry_run))
    }
}
