//! Agent families: connected agents, reports received and rejected, report ages.

use std::fmt;

use lvs_ops::openmetrics::{counter, gauge, gauges};
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use super::snapshot::Snapshot;

/// The families of this part of a scrape, in their order on the page.
pub(super) fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    let a = &s.agents;
    gauge(
        e,
        "agents_connected",
        "Agents with an open report stream to this director",
        None,
        a.connected as i64,
    )?;
    counter(
        e,
        "agent_reports",
        "Agent reports received",
        a.reports_total,
    )?;
    counter(
        e,
        "agent_reports_rejected",
        "Agent reports rejected",
        a.reports_rejected,
    )?;
    gauges(
        e,
        "agent_report_age",
        "Time since the agent's last accepted report (leader only)",
        Some(&Unit::Seconds),
        a.report_age_s
            .iter()
            .map(|(n, age)| (vec![("agent", n.clone())], *age))
            .collect(),
    )?;
    Ok(())
}
