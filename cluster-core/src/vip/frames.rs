//! Ethernet frames that announce and probe VIPs, as pure functions: gratuitous ARP (IPv4),
//! unsolicited neighbour advertisement (IPv6), the ARP request a prober sends, and parsers for the
//! ARP and NA frames a director or test observer receives.

use std::net::{Ipv4Addr, Ipv6Addr};

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];
/// Ethernet address of the IPv6 all-nodes group ff02::1.
pub const ALL_NODES_MAC: Mac = [0x33, 0x33, 0, 0, 0, 1];
pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;
pub const ICMPV6_NEIGHBOR_ADVERT: u8 = 136;
const NA_ROUTER: u8 = 0x80;
const NA_SOLICITED: u8 = 0x40;
const NA_OVERRIDE: u8 = 0x20;

pub fn fmt_mac(m: &Mac) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn eth_header(out: &mut Vec<u8>, dst: &Mac, src: &Mac, ethertype: u16) {
    out.extend_from_slice(dst);
    out.extend_from_slice(src);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

fn arp(op: u16, dst: &Mac, sha: &Mac, spa: Ipv4Addr, tha: &Mac, tpa: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    eth_header(&mut f, dst, sha, ETH_P_ARP);
    f.extend_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    f.push(6);
    f.push(4);
    f.extend_from_slice(&op.to_be_bytes());
    f.extend_from_slice(sha);
    f.extend_from_slice(&spa.octets());
    f.extend_from_slice(tha);
    f.extend_from_slice(&tpa.octets());
    f
}

/// Gratuitous ARP for `vip` (what keepalived sends): a broadcast request whose sender and target
/// address are both the VIP, so every host on the segment updates its cache entry. The target
/// hardware address is zero, as RFC 5227 asks of announcements. 42 bytes.
pub fn gratuitous_arp(mac: &Mac, vip: Ipv4Addr) -> Vec<u8> {
    arp(ARP_REQUEST, &BROADCAST, mac, vip, &[0; 6], vip)
}

/// A broadcast "who has `target`" request from `sender` (a prober's own address; 0.0.0.0 makes it
/// an RFC 5227 probe that updates no cache).
pub fn arp_request(mac: &Mac, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    arp(ARP_REQUEST, &BROADCAST, mac, sender, &[0; 6], target)
}

/// An ARP packet as received (Ethernet/IPv4 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Mac,
    pub target_ip: Ipv4Addr,
}

/// Parses an Ethernet frame carrying Ethernet/IPv4 ARP; `None` for anything else.
pub fn parse_arp(frame: &[u8]) -> Option<ArpPacket> {
    if frame.len() < 42 || u16::from_be_bytes([frame[12], frame[13]]) != ETH_P_ARP {
        return None;
    }
    let a = &frame[14..];
    if a[0..2] != [0, 1] || a[2..4] != [0x08, 0x00] || a[4] != 6 || a[5] != 4 {
        return None;
    }
    let mac = |o: usize| -> Mac { a[o..o + 6].try_into().expect("6 bytes") };
    let ip = |o: usize| Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]);
    Some(ArpPacket {
        op: u16::from_be_bytes([a[6], a[7]]),
        sender_mac: mac(8),
        sender_ip: ip(14),
        target_mac: mac(18),
        target_ip: ip(24),
    })
}

/// One's-complement sum of 16-bit words (odd trailing byte padded with zero).
fn ones_sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc += u16::from_be_bytes([c[0], c[1]]) as u32;
    }
    if let [last] = chunks.remainder() {
        acc += (*last as u32) << 8;
    }
    acc
}

/// ICMPv6 checksum over the IPv6 pseudo-header and the message (with its checksum field zero).
pub fn icmpv6_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, message: &[u8]) -> u16 {
    let mut acc = ones_sum(0, &src.octets());
    acc = ones_sum(acc, &dst.octets());
    acc = ones_sum(acc, &(message.len() as u32).to_be_bytes());
    acc = ones_sum(acc, &[0, 0, 0, 58]);
    acc = ones_sum(acc, message);
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// Unsolicited neighbour advertisement for `vip` to all nodes (ff02::1), Override set (and Router
/// when the director forwards), with the target link-layer address option. 86 bytes.
pub fn unsolicited_na(mac: &Mac, vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let dst: Ipv6Addr = "ff02::1".parse().expect("ff02::1");
    let mut icmp = Vec::with_capacity(32);
    icmp.push(ICMPV6_NEIGHBOR_ADVERT);
    icmp.push(0); // code
    icmp.extend_from_slice(&[0, 0]); // checksum, filled below
    icmp.push(NA_OVERRIDE | if router { NA_ROUTER } else { 0 });
    icmp.extend_from_slice(&[0, 0, 0]);
    icmp.extend_from_slice(&vip.octets());
    icmp.push(2); // option: target link-layer address
    icmp.push(1); // length in units of 8 bytes
    icmp.extend_from_slice(mac);
    let sum = icmpv6_checksum(&vip, &dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut f = Vec::with_capacity(86);
    eth_header(&mut f, &ALL_NODES_MAC, mac, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]); // version 6, traffic class 0, flow label 0
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.push(58); // next header: ICMPv6
    f.push(255); // hop limit: neighbour discovery requires 255
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(&icmp);
    f
}

/// A neighbour advertisement as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeighborAdvert {
    pub eth_src: Mac,
    pub ip_src: Ipv6Addr,
    pub ip_dst: Ipv6Addr,
    pub router: bool,
    pub solicited: bool,
    pub override_: bool,
    pub target: Ipv6Addr,
    /// From the target link-layer address option, when present.
    pub target_mac: Option<Mac>,
    /// The checksum verified against the pseudo-header.
    pub checksum_ok: bool,
}

/// Parses an Ethernet frame carrying an IPv6 neighbour advertisement (no extension headers, as
/// neighbour discovery sends); `None` for anything else.
pub fn parse_na(frame: &[u8]) -> Option<NeighborAdvert> {
    if frame.len() < 14 + 40 + 24 || u16::from_be_bytes([frame[12], frame[13]]) != ETH_P_IPV6 {
        return None;
    }
    let ip = &frame[14..];
    if ip[0] >> 4 != 6 || ip[6] != 58 {
        return None;
    }
    let plen = u16::from_be_bytes([ip[4], ip[5]]) as usize;
    let addr = |o: usize| -> Ipv6Addr {
        let b: [u8; 16] = ip[o..o + 16].try_into().expect("16 bytes");
        Ipv6Addr::from(b)
    };
    let (src, dst) = (addr(8), addr(24));
    let icmp = ip.get(40..40 + plen)?;
    if icmp.len() < 24 || icmp[0] != ICMPV6_NEIGHBOR_ADVERT {
        return None;
    }
    let mut zeroed = icmp.to_vec();
    zeroed[2] = 0;
    zeroed[3] = 0;
    let checksum_ok =
        icmpv6_checksum(&src, &dst, &zeroed) == u16::from_be_bytes([icmp[2], icmp[3]]);
    let target_b: [u8; 16] = icmp[8..24].try_into().expect("16 bytes");
    let mut target_mac = None;
    let mut opts = &icmp[24..];
    while opts.len() >= 8 {
        let len = opts[1] as usize * 8;
        if len == 0 || len > opts.len() {
            break;
        }
        if opts[0] == 2 {
            target_mac = Some(opts[2..8].try_into().expect("6 bytes"));
        }
        opts = &opts[len..];
    }
    Some(NeighborAdvert {
        eth_src: frame[6..12].try_into().expect("6 bytes"),
        ip_src: src,
        ip_dst: dst,
        router: icmp[4] & NA_ROUTER != 0,
        solicited: icmp[4] & NA_SOLICITED != 0,
        override_: icmp[4] & NA_OVERRIDE != 0,
        target: Ipv6Addr::from(target_b),
        target_mac,
        checksum_ok,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    #[test]
    fn gratuitous_arp_every_byte() {
        let f = gratuitous_arp(&MAC, "192.0.2.10".parse().unwrap());
        #[rustfmt::skip]
        let want: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,       // eth dst: broadcast
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,       // eth src
            0x08, 0x06,                               // ARP
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04,       // Ethernet, IPv4, hlen 6, plen 4
            0x00, 0x01,                               // request
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,       // sender MAC
            192, 0, 2, 10,                            // sender IP = VIP
            0, 0, 0, 0, 0, 0,                         // target MAC (ignored, zero)
            192, 0, 2, 10,                            // target IP = VIP
        ];
        assert_eq!(f, want);
        let p = parse_arp(&f).unwrap();
        assert_eq!(p.op, ARP_REQUEST);
        assert_eq!(p.sender_mac, MAC);
        assert_eq!(p.sender_ip, p.target_ip);
    }

    #[test]
    fn arp_request_and_reply_parse() {
        let f = arp_request(&MAC, Ipv4Addr::UNSPECIFIED, "192.0.2.10".parse().unwrap());
        let p = parse_arp(&f).unwrap();
        assert_eq!(p.sender_ip, Ipv4Addr::UNSPECIFIED);
        assert_eq!(p.target_ip, "192.0.2.10".parse::<Ipv4Addr>().unwrap());
        let mut reply = f.clone();
        reply[20..22].copy_from_slice(&ARP_REPLY.to_be_bytes());
        assert_eq!(parse_arp(&reply).unwrap().op, ARP_REPLY);
        assert!(parse_arp(&f[..41]).is_none());
        let mut ipv6 = f.clone();
        ipv6[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
        assert!(parse_arp(&ipv6).is_none());
    }

    #[test]
    fn unsolicited_na_every_byte_and_checksum() {
        let vip: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let f = unsolicited_na(&MAC, vip, false);
        assert_eq!(f.len(), 86);
        #[rustfmt::skip]
        let head: [u8; 22] = [
            0x33, 0x33, 0x00, 0x00, 0x00, 0x01,       // eth dst: all-nodes multicast
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,       // eth src
            0x86, 0xdd,                               // IPv6
            0x60, 0x00, 0x00, 0x00,                   // version 6, tc 0, flow 0
            0x00, 0x20,                               // payload length 32
            58, 255,                                  // ICMPv6, hop limit 255
        ];
        assert_eq!(f[..22], head);
        assert_eq!(f[22..38], vip.octets()); // source = VIP
        let mut all_nodes = [0u8; 16];
        all_nodes[0] = 0xff;
        all_nodes[1] = 0x02;
        all_nodes[15] = 1;
        assert_eq!(f[38..54], all_nodes);
        assert_eq!(f[54], 136); // neighbour advertisement
        assert_eq!(f[55], 0); // code
        assert_eq!(f[58..62], [0x20, 0, 0, 0]); // Override only
        assert_eq!(f[62..78], vip.octets()); // target
        assert_eq!(f[78..86], [2, 1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]); // TLLA option

        // Checksum computed independently: sum the pseudo-header and message by hand.
        let mut words: Vec<u16> = Vec::new();
        let push = |w: &mut Vec<u16>, b: &[u8]| {
            for c in b.chunks(2) {
                w.push(u16::from_be_bytes([c[0], c[1]]));
            }
        };
        push(&mut words, &f[22..54]); // src + dst
        push(&mut words, &[0, 0, 0, 32, 0, 0, 0, 58]);
        let mut msg = f[54..86].to_vec();
        msg[2] = 0;
        msg[3] = 0;
        push(&mut words, &msg);
        let mut sum: u32 = words.iter().map(|w| *w as u32).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(u16::from_be_bytes([f[56], f[57]]), !(sum as u16));

        let na = parse_na(&f).unwrap();
        assert!(na.checksum_ok && na.override_ && !na.router && !na.solicited);
        assert_eq!(na.target, vip);
        assert_eq!(na.target_mac, Some(MAC));
        let mut bad = f.clone();
        bad[70] ^= 1;
        assert!(!parse_na(&bad).unwrap().checksum_ok);
        assert!(unsolicited_na(&MAC, vip, true)[58] & 0x80 != 0);
    }

    #[test]
    fn known_checksum_vector() {
        // RFC 1071 style check: a message whose sum is known. All-zero addresses and message of
        // one word 0x0001: sum = len(0x0002) + nh(58) + 1 = 0x003d -> checksum 0xffc2.
        let z = Ipv6Addr::UNSPECIFIED;
        assert_eq!(icmpv6_checksum(&z, &z, &[0x00, 0x01]), !0x003du16);
    }

    #[test]
    fn macs() {
        assert_eq!(fmt_mac(&MAC), "02:00:5e:10:20:30");
        assert_eq!(parse_mac("02:00:5e:10:20:30"), Some(MAC));
        assert_eq!(parse_mac("02:00:5e:10:20"), None);
        assert_eq!(parse_mac("02:00:5e:10:20:30:40"), None);
    }
}
