//! IPVS connection entries as `/proc/net/ip_vs_conn` and `/proc/net/ip_vs_conn_sync` list them
//! (the kernel has no netlink dump of connections). The formats, from `ip_vs_conn_seq_show` and
//! `ip_vs_conn_sync_seq_show` in net/netfilter/ipvs/ip_vs_conn.c:
//!
//! ```text
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
//! TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED     898
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
//! TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED LOCAL      898
//! ```
//!
//! IPv4 addresses are `%08X` of the address as a number (the hex of the network-order bytes),
//! ports `%04X`, IPv6 addresses `%pI6` (eight groups of four hex digits). The destination may be
//! of the other family (tunnelling to a mixed pool). Persistence templates have client port 0 and
//! state NONE or ASSURED; fwmark templates have protocol `IP` and the mark as virtual address.
//! The PE name and data follow the expiry only when a persistence engine (`sip`) is attached.
//! Lines that do not parse (the header, anything truncated) are skipped.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

crate::named_enum! {
    /// Where an entry came from (`ip_vs_conn_sync` only), named by the kernel's column text.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Origin {
        /// Created by this director's own scheduling.
        Local => "LOCAL",
        /// Received from a sync master.
        Sync => "SYNC",
    }
    unknown = "connection origin", case_insensitive = false, listing = Or;
}

/// One connection entry or persistence template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    /// As the kernel names it: `TCP`, `UDP`, `SCTP`, `IP` (fwmark templates), ...
    pub protocol: String,
    pub client: SocketAddr,
    pub virtual_: SocketAddr,
    pub real: SocketAddr,
    /// `ESTABLISHED`, `FIN_WAIT`, `UDP`, `NONE`, ...
    pub state: String,
    /// Seconds until the entry expires.
    pub expires_s: u32,
    /// Known only from `ip_vs_conn_sync`.
    pub origin: Option<Origin>,
    /// Persistence engine name and data (`ip_vs_conn` only, when an engine is attached).
    pub pe_name: Option<String>,
    pub pe_data: Option<String>,
}

/// `%08X` (IPv4 as a number) or `%pI6` (IPv6).
fn addr(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        return s.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16)
        .ok()
        .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
}

/// `%04X`.
fn port(s: &str) -> Option<u16> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(s, 16).ok()
}

/// A column the kernel fills with a name: letters, digits and a little punctuation (`ERR!`).
fn word(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 16
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-!?".contains(&b));
    ok.then(|| s.to_string())
}

/// Parses one line of either file; `None` for the header and anything malformed.
pub fn parse_line(line: &str) -> Option<Conn> {
    let mut it = line.split_ascii_whitespace();
    let protocol = word(it.next()?)?;
    let client = SocketAddr::new(addr(it.next()?)?, port(it.next()?)?);
    let virtual_ = SocketAddr::new(addr(it.next()?)?, port(it.next()?)?);
    let real = SocketAddr::new(addr(it.next()?)?, port(it.next()?)?);
    let state = word(it.next()?)?;
    let (origin, expires) = match it.next()? {
        "LOCAL" => (Some(Origin::Local), it.next()?),
        "SYNC" => (Some(Origin::Sync), it.next()?),
        e => (None, e),
    };
    let expires_s: u32 = expires.parse().ok()?;
    let (pe_name, pe_data) = match origin {
        Some(_) => (None, None),
        None => {
            let name = it.next().map(str::to_string);
            let data: Vec<&str> = it.collect();
            (name, (!data.is_empty()).then(|| data.join(" ")))
        }
    };
    Some(Conn {
        protocol,
        client,
        virtual_,
        real,
        state,
        expires_s,
        origin,
        pe_name,
        pe_data,
    })
}

/// Every entry of a whole file (either variant), in file order.
pub fn parse(text: &str) -> Vec<Conn> {
    text.lines().filter_map(parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    // As a 6.x kernel prints them (field widths from ip_vs_conn.c).
    const CONN: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED     898
UDP C0A80A06 A1B2 0A000002 0035 0A000102 0035 UDP             287
TCP C0A80A05 0000 0A000001 0050 0A000101 0050 NONE            298
IP  C0A80A07 0000 00000005 0000 0A000103 0000 ASSURED         299
TCP 2001:0db8:0000:0000:0000:0000:0000:0100 C350 2001:0db8:0000:0000:0000:0000:0000:0001 01BB 2001:0db8:0000:0000:0000:0000:0001:0001 01BB FIN_WAIT         59
TCP 2001:0db8:0000:0000:0000:0000:0000:0100 C351 2001:0db8:0000:0000:0000:0000:0000:0001 0050 0A000104 0050 SYN_RECV         30
UDP C0A80A08 13C4 0A000003 13C4 0A000105 13C4 UDP             179 sip 3c26@192.168.10.8
";

    const CONN_SYNC: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED LOCAL      898
TCP C0A80A09 9C40 0A000001 0050 0A000102 0050 ESTABLISHED SYNC       900
UDP 2001:0db8:0000:0000:0000:0000:0000:0100 1F90 2001:0db8:0000:0000:0000:0000:0000:0001 0035 2001:0db8:0000:0000:0000:0000:0001:0002 0035 UDP         SYNC       300
";

    #[test]
    fn ip_vs_conn_lines() {
        let c = parse(CONN);
        assert_eq!(c.len(), 7);
        assert_eq!(
            c[0],
            Conn {
                protocol: "TCP".into(),
                client: sa("192.168.10.5:54321"),
                virtual_: sa("10.0.0.1:80"),
                real: sa("10.0.1.1:80"),
                state: "ESTABLISHED".into(),
                expires_s: 898,
                origin: None,
                pe_name: None,
                pe_data: None,
            }
        );
        // UDP entries carry the pseudo-state UDP.
        assert_eq!(c[1].protocol, "UDP");
        assert_eq!(c[1].state, "UDP");
        assert_eq!(c[1].client, sa("192.168.10.6:41394"));
        assert_eq!(c[1].virtual_, sa("10.0.0.2:53"));
        // A persistence template: client port 0, state NONE.
        assert_eq!(c[2].client, sa("192.168.10.5:0"));
        assert_eq!(c[2].state, "NONE");
        assert_eq!(c[2].expires_s, 298);
        // An fwmark template: protocol IP, the mark (5) as the virtual address.
        assert_eq!(c[3].protocol, "IP");
        assert_eq!(c[3].virtual_, sa("0.0.0.5:0"));
        assert_eq!(c[3].state, "ASSURED");
        // IPv6 in full %pI6 form.
        assert_eq!(c[4].client, sa("[2001:db8::100]:50000"));
        assert_eq!(c[4].virtual_, sa("[2001:db8::1]:443"));
        assert_eq!(c[4].real, sa("[2001:db8::1:1]:443"));
        assert_eq!(c[4].state, "FIN_WAIT");
        assert_eq!(c[4].expires_s, 59);
        // Mixed families: an IPv6 service tunnelling to an IPv4 real server.
        assert_eq!(c[5].real, sa("10.0.1.4:80"));
        // A persistence engine's name and data.
        assert_eq!(c[6].pe_name.as_deref(), Some("sip"));
        assert_eq!(c[6].pe_data.as_deref(), Some("3c26@192.168.10.8"));
        assert!(c.iter().all(|c| c.origin.is_none()));
    }

    #[test]
    fn ip_vs_conn_sync_lines() {
        let c = parse(CONN_SYNC);
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].origin, Some(Origin::Local));
        assert_eq!(c[0].expires_s, 898);
        assert_eq!(c[1].origin, Some(Origin::Sync));
        assert_eq!(c[1].client, sa("192.168.10.9:40000"));
        assert_eq!(c[1].real, sa("10.0.1.2:80"));
        assert_eq!(c[2].origin, Some(Origin::Sync));
        assert_eq!(c[2].client, sa("[2001:db8::100]:8080"));
        assert_eq!(c[2].real, sa("[2001:db8::1:2]:53"));
        assert_eq!(c[2].expires_s, 300);
        assert!(c.iter().all(|c| c.pe_name.is_none()));
        assert_eq!(Origin::Sync.as_str(), "SYNC");
    }

    #[test]
    fn garbage_is_skipped() {
        let text = "\
garbage
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED
TCP C0A80A05 D431 0A000001 0050 0A000101 0050
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED -5
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED 99999999999
TCP C0A80A0 D431 0A000001 0050 0A000101 0050 ESTABLISHED 10
TCP C0A80A05 D4311 0A000001 0050 0A000101 0050 ESTABLISHED 10
TCP +0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED 10
TCP 2001:zz8::1 D431 0A000001 0050 0A000101 0050 ESTABLISHED 10
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED SYNC
TCP C0A80A05 D431 0A000001 0050 0A000101 0050 <script> 10
ÄÖÜ C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED 10

TCP C0A80A05 D431 0A000001 0050 0A000101 0050 ESTABLISHED 10
";
        let c = parse(text);
        assert_eq!(c.len(), 1, "{c:?}");
        assert_eq!(c[0].expires_s, 10);
        assert!(parse("").is_empty());
        assert!(parse_line(
            "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires"
        )
        .is_none());
    }
}
