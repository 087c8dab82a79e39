//! Real-server families: configured and effective weights, health verdicts.

use std::fmt;

use lvs_ops::openmetrics::gauges;
use prometheus_client::encoding::DescriptorEncoder;

use super::snapshot::{flag, RealSnap, Snapshot};

/// The families of this part of a scrape, in their order on the page.
pub(super) fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    let rl = |x: &RealSnap| vec![("service", x.service.clone()), ("real", x.real.clone())];
    gauges(
        e,
        "real_configured_weight",
        "Weight of the real server in the replicated config",
        None,
        s.reals
            .iter()
            .map(|x| (rl(x), x.configured_weight as i64))
            .collect(),
    )?;
    gauges(
            e,
            "real_effective_weight",
            "Weight this director programs: the config with the leader's computed weights, health and drains laid over it",
            None,
            s.reals
                .iter()
                .map(|x| (rl(x), x.effective_weight as i64))
                .collect(),
        )?;
    gauges(
        e,
        "real_health_up",
        "Health check verdict: 1 up, 0 down (checked real servers, on the leader)",
        None,
        s.reals
            .iter()
            .filter_map(|x| x.health_up.map(|u| (rl(x), flag(u))))
            .collect(),
    )?;
    Ok(())
}
