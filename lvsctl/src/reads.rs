//! Read verbs: list, export, vip list, history, watch and the cluster verbs; and the kernel
//! views of the answering director (list --stats/--rate, conns, ipvs), which no director
//! forwards.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use cluster_core::model::{Config, Service, ServiceKey};
use cluster_core::validate::service_path;
use lvs_proto::v1 as pb;

use crate::args;
use crate::cli::{ClusterVerb, ConnsArgs, HistoryArgs, ListArgs};
use crate::client::{admin, cluster, Call, RpcError};
use crate::ctx::{not_found, Ctx};
use crate::output::json::{
    self, ConfigDoc, ConnsDoc, Entry, HistoryDoc, IpvsDoc, MembersDoc, StatusDoc, VipsDoc,
};
use crate::output::{self, KernelView};

pub async fn list(ctx: &mut Ctx, a: ListArgs) -> Result<()> {
    if a.stats || a.rate {
        return kernel_list(ctx, a).await;
    }
    let only = args::optional_service_key(&a.sel, a.ipv6);
    let snap = ctx.config(ctx.stale).await?;
    let mut config = snap.config;
    if let Some(key) = only {
        let svc = config
            .services
            .remove(&key)
            .ok_or_else(|| not_found(service_path(&key), format!("no such service {key}")))?;
        config = Config::default();
        config.services.insert(key, svc);
    }
    if ctx.json() {
        ctx.print(&json::pretty(&ConfigDoc {
            revision: snap.revision,
            node_id: snap.node_id,
            config: &config,
        }))
    } else {
        let svcs: Vec<&Service> = config.services.values().collect();
        ctx.print(&output::list(snap.revision, snap.node_id, &svcs))
    }
}

/// The answering director's kernel state and the endpoint that answered.
async fn get_ipvs(ctx: &mut Ctx) -> Result<(pb::IpvsState, String)> {
    let state = ctx
        .client
        .call(Call::Read, pb::GetIpvsRequest {}, |ch, r| async move {
            admin(ch).get_ipvs(r).await
        })
        .await?;
    let ep = ctx.client.current_endpoint().unwrap_or("?").to_string();
    Ok((state, ep))
}

/// `list --stats` / `list --rate`: the kernel table as ipvsadm prints it, or the GetIpvs data.
async fn kernel_list(ctx: &mut Ctx, a: ListArgs) -> Result<()> {
    let only = args::optional_service_key(&a.sel, a.ipv6);
    let (mut state, ep) = get_ipvs(ctx).await?;
    if !state.unavailable.is_empty() {
        bail!(
            "director {} cannot read its kernel IPVS table: {}",
            state.node_id,
            state.unavailable
        );
    }
    let node = state.node_id;
    let mut keyed = std::mem::take(&mut state.services)
        .into_iter()
        .map(|s| match s.key.parse::<ServiceKey>() {
            Ok(k) => Ok((k, s)),
            Err(e) => Err(anyhow!(
                "director {node} sent a service lvsctl cannot read: {e}"
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(k) = only {
        keyed.retain(|(key, _)| *key == k);
        if keyed.is_empty() {
            return Err(not_found(
                service_path(&k),
                format!("no such service {k} in the kernel of director {node}"),
            ));
        }
    }
    if ctx.json() {
        state.services = keyed.into_iter().map(|(_, s)| s).collect();
        return ctx.print(&json::pretty(&IpvsDoc::from_pb(&state, &ep)));
    }
    let keyed: Vec<(ServiceKey, &pb::IpvsService)> = keyed.iter().map(|(k, s)| (*k, s)).collect();
    let view = if a.rate {
        KernelView::Rate
    } else {
        KernelView::Stats
    };
    ctx.print(&output::kernel_table(
        &state,
        &keyed,
        &ep,
        view,
        a.exact,
        only.is_none(),
    ))
}

/// `conns`: the answering director's connection entries, like `ipvsadm -Lnc`.
pub async fn conns(ctx: &mut Ctx, a: ConnsArgs) -> Result<()> {
    let req = pb::ListConnsRequest {
        sync_only: a.sync,
        limit: 0,
    };
    let list = ctx
        .client
        .call(Call::Read, req, |ch, r| async move {
            admin(ch).list_conns(r).await
        })
        .await?;
    let ep = ctx.client.current_endpoint().unwrap_or("?").to_string();
    if !list.unavailable.is_empty() {
        bail!(
            "director {} cannot list its connections: {}",
            list.node_id,
            list.unavailable
        );
    }
    if list.truncated {
        eprintln!(
            "lvsctl: director {} sent only its first {} entries",
            list.node_id,
            list.conns.len()
        );
    }
    if ctx.json() {
        ctx.print(&json::pretty(&ConnsDoc::from_pb(&list, &ep)))
    } else {
        ctx.print(&output::conns(&list, &ep))
    }
}

/// `ipvs`: the answering director's kernel and reconciler status. A report: errors in it do not
/// change the exit status.
pub async fn ipvs(ctx: &mut Ctx) -> Result<()> {
    let (state, ep) = get_ipvs(ctx).await?;
    if ctx.json() {
        ctx.print(&json::pretty(&IpvsDoc::from_pb(&state, &ep)))
    } else {
        ctx.print(&output::ipvs_status(&state, &ep))
    }
}

pub async fn export(ctx: &mut Ctx) -> Result<()> {
    let snap = ctx.config(ctx.stale).await?;
    if ctx.json() {
        ctx.print(&json::pretty(&ConfigDoc {
            revision: snap.revision,
            node_id: snap.node_id,
            config: &snap.config,
        }))
    } else {
        ctx.print(&format!(
            "# lvsctl export: revision {}\n{}",
            snap.revision,
            snap.config.to_toml()
        ))
    }
}

pub async fn vip_list(ctx: &mut Ctx) -> Result<()> {
    let snap = ctx.config(ctx.stale).await?;
    if ctx.json() {
        ctx.print(&json::pretty(&VipsDoc {
            revision: snap.revision,
            node_id: snap.node_id,
            vip_groups: &snap.config.vip_groups,
        }))
    } else {
        ctx.print(&output::vip_groups(&snap.config.vip_groups))
    }
}

pub async fn history(ctx: &mut Ctx, a: HistoryArgs) -> Result<()> {
    let req = pb::HistoryRequest {
        limit: a.limit.unwrap_or(0),
        stale: ctx.stale,
    };
    let resp = ctx
        .client
        .call(Call::Read, req, |ch, r| async move {
            admin(ch).history(r).await
        })
        .await?;
    let entries: Vec<Entry> = resp.entries.iter().map(Entry::from_pb).collect();
    if ctx.json() {
        return ctx.print(&json::pretty(&HistoryDoc {
            revision: resp.revision,
            entries: &entries,
        }));
    }
    if entries.is_empty() {
        return ctx.print(&format!("no history kept (revision {})\n", resp.revision));
    }
    let text: String = entries.iter().map(output::history_entry).collect();
    ctx.print(&text)
}

/// Follows the change stream; when it breaks, resumes after the last revision seen on the next
/// director, so a director restart or failover loses nothing history still holds.
pub async fn watch(ctx: &mut Ctx, from: Option<u64>) -> Result<()> {
    let mut last = match from {
        Some(n) => n,
        None => ctx.config(ctx.stale).await?.revision,
    };
    if !ctx.json() {
        eprintln!("lvsctl: watching changes after revision {last}");
    }
    let mut opened_once = false;
    let mut backoff = Duration::from_millis(250);
    loop {
        let req = pb::WatchRequest {
            from_revision: last,
        };
        let opened = ctx
            .client
            .call(Call::Stream, req, |ch, r| async move {
                admin(ch).watch(r).await
            })
            .await;
        let mut stream = match opened {
            Ok(s) => s,
            // A definite answer (bad request, ...) will not improve by asking again.
            Err(e) if !opened_once || e.downcast_ref::<RpcError>().is_some() => return Err(e),
            Err(e) => {
                eprintln!(
                    "lvsctl: watch: {e}; retrying in {}",
                    humantime::format_duration(backoff)
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        opened_once = true;
        let ep = ctx.client.current_endpoint().unwrap_or("?").to_string();
        loop {
            match stream.message().await {
                Ok(Some(e)) => {
                    backoff = Duration::from_millis(250);
                    if e.revision <= last {
                        continue;
                    }
                    if e.revision > last + 1 && !ctx.json() {
                        eprintln!(
                            "lvsctl: watch: revisions {}..={} are no longer in {ep}'s history",
                            last + 1,
                            e.revision - 1
                        );
                    }
                    last = e.revision;
                    let entry = Entry::from_pb(&e);
                    if ctx.json() {
                        ctx.print(&json::line(&entry))?;
                    } else {
                        ctx.print(&output::history_entry(&entry))?;
                    }
                }
                Ok(None) => {
                    eprintln!("lvsctl: watch: {ep} ended the stream; reconnecting");
                    break;
                }
                Err(s) => {
                    eprintln!(
                        "lvsctl: watch: stream from {ep} broke ({}); reconnecting",
                        crate::client::status_text(&s)
                    );
                    break;
                }
            }
        }
        // Resume on another director: the one that dropped us may be going away.
        if let Some(next) = ctx.client.rotation(Some(&ep)).first().cloned() {
            ctx.client.prefer(&next);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

pub async fn cluster_verb(ctx: &mut Ctx, verb: ClusterVerb) -> Result<()> {
    let resp = match verb {
        ClusterVerb::Status => return status(ctx).await,
        ClusterVerb::Add {
            id,
            raft_addr,
            api_addr,
            learner_only,
        } => {
            let req = pb::AddMemberRequest {
                id,
                raft_addr,
                api_addr,
                learner_only,
            };
            ctx.client
                .call(Call::Write, req, |ch, r| async move {
                    cluster(ch).add_member(r).await
                })
                .await?
        }
        ClusterVerb::Remove { id } => {
            let req = pb::RemoveMemberRequest { id };
            ctx.client
                .call(Call::Write, req, |ch, r| async move {
                    cluster(ch).remove_member(r).await
                })
                .await?
        }
    };
    if ctx.json() {
        ctx.print(&json::pretty(&MembersDoc::from_pb(&resp.members)))
    } else {
        ctx.print(&output::members(&resp.members))
    }
}

async fn status(ctx: &mut Ctx) -> Result<()> {
    let resp = ctx
        .client
        .call(Call::Read, pb::StatusRequest {}, |ch, r| async move {
            cluster(ch).status(r).await
        })
        .await?;
    let ep = ctx.client.current_endpoint().unwrap_or("?").to_string();
    if ctx.json() {
        ctx.print(&json::pretty(&StatusDoc::from_pb(&resp, &ep)))
    } else {
        ctx.print(&output::status(&resp, &ep))
    }
}
