//! VIP families: which VIPs this director holds, announcements sent, acquisitions and releases.

use std::fmt;

use lvs_ops::openmetrics::{counter, counters, gauges};
use prometheus_client::encoding::DescriptorEncoder;

use super::snapshot::{flag, Snapshot};

/// The families of this part of a scrape, in their order on the page.
pub(super) fn families(e: &mut DescriptorEncoder, s: &Snapshot) -> fmt::Result {
    gauges(
        e,
        "vip_held",
        "1 while this director holds the VIP",
        None,
        s.vips
            .iter()
            .map(|v| {
                (
                    vec![
                        ("name", v.group.clone()),
                        ("address", v.address.to_string()),
                        ("interface", v.interface.clone()),
                    ],
                    flag(v.held),
                )
            })
            .collect(),
    )?;
    counters(
            e,
            "vip_announcements",
            "VIP announcements sent: gratuitous ARP (IPv4) and unsolicited neighbour advertisements (IPv6)",
            vec![
                (vec![("kind", "gratuitous_arp".to_string())], s.vip_counts.garp_sent),
                (vec![("kind", "unsolicited_na".to_string())], s.vip_counts.na_sent),
            ],
        )?;
    counter(
        e,
        "vip_acquisitions",
        "VIPs added to an interface",
        s.vip_counts.acquired,
    )?;
    counter(
        e,
        "vip_releases",
        "VIPs removed from an interface",
        s.vip_counts.released,
    )?;
    Ok(())
}
