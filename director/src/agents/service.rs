//! The `AgentReports` gRPC service: one stream per agent, each report checked, recorded in the
//! registry and acknowledged. Only the leader takes reports; the others (and a leader that loses
//! its office mid-stream) end the stream with UNAVAILABLE and the leader's address as a hint.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::Stream;
use lvs_proto::v1 as pb;
use lvs_proto::v1::agent_reports_server::AgentReports;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::{report, Offer, Registry};
use crate::raft::RaftHandle;

/// Configured real-server addresses and the real servers each one is, cached per revision so a
/// report costs a hash lookup, not a walk of the config.
#[derive(Default)]
struct Known {
    revision: Option<u64>,
    addrs: HashMap<IpAddr, Vec<String>>,
}

pub struct AgentService {
    pub raft: Arc<RaftHandle>,
    pub registry: Arc<Registry>,
    known: Arc<Mutex<Known>>,
}

impl AgentService {
    pub fn new(raft: Arc<RaftHandle>, registry: Arc<Registry>) -> AgentService {
        AgentService {
            raft,
            registry,
            known: Arc::default(),
        }
    }
}

fn not_leader(node: &RaftHandle) -> Status {
    let mut s = Status::unavailable("this director is not the leader; report to the leader");
    if let Some(addr) = node.leader_api() {
        if let Ok(v) = addr.parse() {
            s.metadata_mut().insert(lvs_proto::LEADER_HINT_KEY, v);
        }
    }
    s
}

/// The real servers (`SERVICE ADDRESS:PORT`) at `addrs` in the current config, and which of
/// `addrs` are real servers at all.
fn matched(
    node: &RaftHandle,
    known: &Mutex<Known>,
    addrs: &[IpAddr],
) -> (Vec<String>, HashSet<IpAddr>) {
    let mut k = known.lock().expect("known addresses");
    let rev = node.state.read(|s| s.revision);
    if k.revision != Some(rev) {
        k.addrs = node.state.read(|s| {
            let mut m: HashMap<IpAddr, Vec<String>> = HashMap::new();
            for svc in s.config.services.values() {
                for r in &svc.reals {
                    m.entry(r.address)
                        .or_default()
                        .push(format!("{} {}", svc.key, r.endpoint()));
                }
            }
            m
        });
        k.revision = Some(rev);
    }
    let mut out = Vec::new();
    let mut real = HashSet::new();
    for a in addrs {
        if let Some(labels) = k.addrs.get(a) {
            if real.insert(*a) {
                out.extend(labels.iter().cloned());
            }
        }
    }
    (out, real)
}

type AckStream = Pin<Box<dyn Stream<Item = Result<pb::ReportAck, Status>> + Send>>;

#[tonic::async_trait]
impl AgentReports for AgentService {
    type ReportStream = AckStream;

    async fn report(
        &self,
        req: Request<Streaming<pb::AgentReport>>,
    ) -> Result<Response<AckStream>, Status> {
        if !self.raft.leading() {
            return Err(not_leader(&self.raft));
        }
        let peer = req
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "unknown".into());
        // With mTLS an agent reports only for the addresses its certificate lists (the
        // authorization layer put its identity on the request).
        let identity = req
            .extensions()
            .get::<cluster_core::auth::Identity>()
            .cloned();
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let node = self.raft.clone();
        let registry = self.registry.clone();
        let known = self.known.clone();
        tokio::spawn(async move {
            let mut agent: Option<String> = None;
            loop {
                let msg = match inbound.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => break,
                    Err(e) => {
                        if let Some(a) = &agent {
                            info!(agent = %a, %peer, error = %e, "agent stream ended");
                        }
                        break;
                    }
                };
                if !node.leading() {
                    let _ = tx.send(Err(not_leader(&node))).await;
                    break;
                }
                let seq = msg.seq;
                let name = msg.agent.clone();
                let checked = report::check(&msg)
                    .map_err(|e| e.to_string())
                    .and_then(|addrs| match &identity {
                        Some(id) => cluster_core::auth::check_report(id, &msg.agent, &addrs)
                            .map(|()| addrs)
                            .map_err(|e| e.to_string()),
                        None => Ok(addrs),
                    });
                let (ack, rejected) = match checked {
                    Err(e) => {
                        registry.invalid(&name, &e);
                        (Err(e), true)
                    }
                    Ok(addrs) => {
                        let (m, real) = matched(&node, &known, &addrs);
                        let offer = registry.offer(msg, addrs, &peer, |a| real.contains(a));
                        match offer {
                            Offer::Accepted => (Ok(m), false),
                            Offer::Rejected(e) => (Err(e), true),
                        }
                    }
                };
                if !rejected && agent.as_deref() != Some(name.as_str()) {
                    if let Some(old) = agent.replace(name.clone()) {
                        registry.stream(&old, -1);
                    }
                    registry.stream(&name, 1);
                    info!(agent = %name, %peer, "agent reporting");
                }
                let ack = match ack {
                    Ok(matched) => pb::ReportAck {
                        seq,
                        matched,
                        error: String::new(),
                    },
                    Err(e) => {
                        if registry.should_log_reject(&name) {
                            let identity = identity.as_ref().map(|i| i.to_string());
                            warn!(agent = %name, %peer, identity = identity.as_deref().unwrap_or("none (insecure)"), error = %e, "agent report rejected (logged once a minute per agent)");
                        }
                        pb::ReportAck {
                            seq,
                            matched: Vec::new(),
                            error: e,
                        }
                    }
                };
                if tx.send(Ok(ack)).await.is_err() {
                    break;
                }
            }
            if let Some(a) = agent {
                registry.stream(&a, -1);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
