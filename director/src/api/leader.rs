//! The API calls only the leader can answer, other than writes: the agent listing (only the
//! leader has reports and computed weights) and membership changes. Each runs here when this
//! director leads, else on the leader through `raft::forward`, the path writes take too.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lvs_proto::raft::raft_client::RaftClient;
use lvs_proto::v1 as pb;
use tonic::transport::Channel;
use tonic::Status;

use super::members::members;
use crate::raft::forward::deadline_in;
use crate::raft::service::LeaderCalls;
use crate::raft::{membership, RaftHandle};
use crate::views::Views;

pub struct LeaderApi {
    pub raft: Arc<RaftHandle>,
    pub views: Arc<Views>,
}

impl LeaderApi {
    /// Runs `call` on the leader, within `budget`; `no_leader` is the answer while none is known.
    async fn on_leader<T, F, Fut>(
        &self,
        no_leader: &'static str,
        budget: Duration,
        call: F,
    ) -> Result<T, Status>
    where
        F: FnOnce(RaftClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let Some((lid, node)) = self.raft.leader() else {
            return Err(Status::unavailable(no_leader));
        };
        self.raft
            .forward
            .call((lid, &node), deadline_in(budget), call)
            .await
            .map_err(|e| e.into_status(&node))
    }

    pub async fn get_agents_anywhere(&self) -> Result<pb::AgentsState, Status> {
        if self.raft.leading() {
            return Ok(self.agents_here());
        }
        let no_leader = "no leader elected; only the leader knows agents and computed weights";
        self.on_leader(no_leader, self.raft.request_timeout, |mut c| async move {
            c.get_agents(pb::GetAgentsRequest {}).await
        })
        .await
    }

    pub async fn add_member_anywhere(
        &self,
        r: pb::AddMemberRequest,
    ) -> Result<pb::MembershipResponse, Status> {
        if self.raft.leading() {
            return self.add_member(r).await;
        }
        let budget = membership::budget(&self.raft);
        self.on_leader(
            NO_LEADER,
            budget,
            |mut c| async move { c.add_member(r).await },
        )
        .await
    }

    pub async fn remove_member_anywhere(
        &self,
        r: pb::RemoveMemberRequest,
    ) -> Result<pb::MembershipResponse, Status> {
        if self.raft.leading() {
            return self.remove_member(r).await;
        }
        let budget = membership::budget(&self.raft);
        self.on_leader(NO_LEADER, budget, |mut c| async move {
            c.remove_member(r).await
        })
        .await
    }

    /// The agents, their last reports and the weight engine's view, from this director.
    fn agents_here(&self) -> pb::AgentsState {
        let registry = &self.views.agents;
        let (mut agents, total, rejected) = {
            let g = registry.lock();
            let agents: Vec<pb::AgentInfo> = g
                .agents
                .iter()
                .map(|(name, e)| pb::AgentInfo {
                    agent: name.clone(),
                    addresses: e.addresses.iter().map(|a| a.to_string()).collect(),
                    peer: e.peer.clone(),
                    connected: e.streams > 0,
                    last_report_ms: e.last_report_ms,
                    age_ms: e
                        .last_at
                        .map(|t| t.elapsed().as_millis() as u64)
                        .unwrap_or(0),
                    reports: e.reports,
                    rejected: e.rejected,
                    last_error: e.last_error.clone(),
                    last: e.last.clone(),
                })
                .collect();
            (agents, g.reports_total, g.reports_rejected)
        };
        agents.sort_by(|a, b| a.agent.cmp(&b.agent));
        let (p50, p99, max) = registry.latency_summary();
        let snap = self.views.engine.lock().expect("engine snapshot");
        pb::AgentsState {
            node_id: self.raft.id,
            agents,
            reals: snap.reals.clone(),
            sorry: snap.sorry.clone(),
            stats: Some(pb::WeightEngineStats {
                period_ms: snap.period_ms,
                reports_total: total,
                reports_rejected: rejected,
                steps: snap.steps,
                weight_writes: snap.weight_writes,
                report_to_weight_p50_ms: p50,
                report_to_weight_p99_ms: p99,
                report_to_weight_max_ms: max,
            }),
        }
    }

    async fn membership_response(&self) -> pb::MembershipResponse {
        pb::MembershipResponse {
            members: members(&self.raft, &self.views).await,
        }
    }
}

const NO_LEADER: &str = "no leader elected; retry shortly";

/// The leader's side of the passed-on calls (the internal service checks that it leads).
#[tonic::async_trait]
impl LeaderCalls for LeaderApi {
    async fn get_agents(&self) -> Result<pb::AgentsState, Status> {
        Ok(self.agents_here())
    }

    async fn add_member(&self, r: pb::AddMemberRequest) -> Result<pb::MembershipResponse, Status> {
        membership::add(&self.raft, r).await?;
        Ok(self.membership_response().await)
    }

    async fn remove_member(
        &self,
        r: pb::RemoveMemberRequest,
    ) -> Result<pb::MembershipResponse, Status> {
        membership::remove(&self.raft, r.id).await?;
        Ok(self.membership_response().await)
    }
}
