//! Reconciler families: passes, operations, errors, the revision reconciled to, and the pass
//! duration histogram.

use std::fmt;

use lvs_ops::openmetrics::{counter, counters, gauge};
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::ipvs::reconciler::PASS_BUCKETS_S;

use super::snapshot::{flag, Snapshot};

/// The families of this part of a scrape, in their order on the page.
pub(super) fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    let st = &s.reconciler;
    gauge(
        e,
        "reconcile_enabled",
        "1 when this director programs its kernel's IPVS table",
        None,
        flag(st.enabled),
    )?;
    if st.enabled {
        gauge(
            e,
            "ipvs_available",
            "1 while the kernel's IPVS can be programmed",
            None,
            flag(st.unavailable.is_none()),
        )?;
    }
    counters(
            e,
            "reconcile_runs",
            "Reconciler passes: full (kernel dump and diff) and incremental (services a change touched)",
            vec![
                (vec![("kind", "full".to_string())], st.full_passes),
                (vec![("kind", "incremental".to_string())], st.incremental_passes),
            ],
        )?;
    counter(
        e,
        "reconcile_errors",
        "Failed kernel operations and failed reads of the kernel table",
        st.errors_total,
    )?;
    counter(
        e,
        "reconcile_operations",
        "Kernel operations applied",
        st.total_ops,
    )?;
    gauge(
        e,
        "reconcile_object_errors",
        "Objects whose last kernel operation failed",
        None,
        st.errors.len() as i64,
    )?;
    gauge(
        e,
        "reconcile_revision",
        "Config revision the kernel was last reconciled to",
        None,
        st.revision as i64,
    )?;
    if st.last_pass_ms > 0 {
        gauge(
            e,
            "reconcile_last_duration",
            "Duration of the last reconciler pass",
            Some(&Unit::Seconds),
            st.last_pass_us as f64 / 1e6,
        )?;
    }
    if st.last_ok_pass_ms > 0 {
        gauge(
            e,
            "reconcile_last_success_timestamp",
            "When the last pass in which every kernel operation succeeded ended (Unix time)",
            Some(&Unit::Seconds),
            st.last_ok_pass_ms as f64 / 1000.0,
        )?;
    }
    let mut buckets: Vec<(f64, u64)> = PASS_BUCKETS_S
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .enumerate()
        .map(|(i, b)| (b, st.pass_buckets.get(i).copied().unwrap_or(0)))
        .collect();
    if buckets.is_empty() {
        buckets.push((f64::INFINITY, 0));
    }
    let count: u64 = buckets.iter().map(|(_, n)| n).sum();
    let mut m = e.encode_descriptor(
        "reconcile_duration",
        "Duration of reconciler passes",
        Some(&Unit::Seconds),
        MetricType::Histogram,
    )?;
    m.encode_histogram::<NoLabelSet>(st.pass_us_sum as f64 / 1e6, count, &buckets, None)?;
    Ok(())
}
