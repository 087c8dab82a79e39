//! The `[vip]` section of the director config: whether this director manages VIPs and how it
//! announces them.

use serde::Deserialize;

/// The `[vip]` section: whether this director manages VIPs, and how it announces them.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VipConfig {
    /// Off only where the director shares a network namespace it must not touch (loopback
    /// examples and tests); a production director always manages its VIPs.
    pub enabled: bool,
    /// Announcements sent right after acquiring (the first at once).
    pub burst_count: u32,
    pub burst_spacing_ms: u64,
    /// Re-announce every held VIP this often while leader; 0 turns it off.
    pub refresh_ms: u64,
}

impl Default for VipConfig {
    /// Beats keepalived (5 at once, 5 more after 5 s, never again): 5 within 400 ms, then one
    /// every 5 s, so a switch that missed the burst or aged its table out still learns the MAC.
    fn default() -> Self {
        VipConfig {
            enabled: true,
            burst_count: 5,
            burst_spacing_ms: 100,
            refresh_ms: 5000,
        }
    }
}
