//! Kernel IPVS families, from the table read at scrape time: STATS64 counters per service and
//! real server, connection counts and kernel weights.

use std::fmt;

use cluster_core::ipvs::Stats64;
use cluster_core::model::fmt_endpoint;
use lvs_ops::openmetrics::{counters, gauge, gauges, Labels};
use prometheus_client::encoding::DescriptorEncoder;

use super::snapshot::{flag, Snapshot};

/// The kernel's STATS64 counters of services or real servers, one family per counter.
fn stats_families(
    enc: &mut DescriptorEncoder,
    what: &str,
    rows: &[(Labels, Stats64)],
) -> fmt::Result {
    type Pick = fn(&Stats64) -> u64;
    let fields: [(&str, &str, Pick); 5] = [
        ("connections", "connections scheduled", |s| s.conns),
        ("packets_in", "packets received", |s| s.inpkts),
        ("packets_out", "packets sent", |s| s.outpkts),
        ("bytes_in", "bytes received", |s| s.inbytes),
        ("bytes_out", "bytes sent", |s| s.outbytes),
    ];
    for (name, help, pick) in fields {
        counters(
            enc,
            &format!("ipvs_{what}_{name}"),
            &format!("IPVS {help} per {what}, from the kernel's counters (STATS64)"),
            rows.iter().map(|(l, s)| (l.clone(), pick(s))).collect(),
        )?;
    }
    Ok(())
}

/// The families of this part of a scrape, in their order on the page.
pub(super) fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    if let Some(k) = &s.kernel {
        gauge(
            e,
            "ipvs_kernel_read_ok",
            "1 when this scrape read the kernel's IPVS table",
            None,
            flag(k.is_ok()),
        )?;
        if let Ok(t) = k {
            let svc: Vec<(Labels, Stats64)> = t
                .services
                .iter()
                .map(|(sv, _)| (vec![("service", sv.service.key.to_string())], sv.stats))
                .collect();
            stats_families(e, "service", &svc)?;
            let dests: Vec<(Labels, &cluster_core::ipvs::KDestEntry)> = t
                .services
                .iter()
                .flat_map(|(sv, ds)| {
                    ds.iter().map(move |d| {
                        (
                            vec![
                                ("service", sv.service.key.to_string()),
                                ("real", fmt_endpoint(&d.dest.address, d.dest.port)),
                            ],
                            d,
                        )
                    })
                })
                .collect();
            let real_stats: Vec<(Labels, Stats64)> =
                dests.iter().map(|(l, d)| (l.clone(), d.stats)).collect();
            stats_families(e, "real", &real_stats)?;
            gauges(
                e,
                "ipvs_real_active_connections",
                "Active connections per real server (kernel)",
                None,
                dests
                    .iter()
                    .map(|(l, d)| (l.clone(), d.active_conns as i64))
                    .collect(),
            )?;
            gauges(
                e,
                "ipvs_real_inactive_connections",
                "Inactive connections per real server (kernel)",
                None,
                dests
                    .iter()
                    .map(|(l, d)| (l.clone(), d.inactive_conns as i64))
                    .collect(),
            )?;
            gauges(
                e,
                "ipvs_real_weight",
                "Weight of the real server in the kernel table",
                None,
                dests
                    .iter()
                    .map(|(l, d)| (l.clone(), d.dest.weight as i64))
                    .collect(),
            )?;
        }
    }
    Ok(())
}
