//! Read verbs: list, export, vip list, history, watch and the cluster verbs.

use std::time::Duration;

use anyhow::Result;
use cluster_core::model::{Config, Service};
use cluster_core::validate::service_path;
use lvs_proto::v1 as pb;

use crate::args;
use crate::cli::{ClusterVerb, HistoryArgs, ListArgs};
use crate::client::{admin, cluster, Call, RpcError};
use crate::ctx::{not_found, Ctx};
use crate::json::{self, ConfigDoc, Entry, HistoryDoc, MembersDoc, StatusDoc, VipsDoc};
use crate::output;

pub async fn list(ctx: &mut Ctx, a: ListArgs) -> Result<()> {
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
