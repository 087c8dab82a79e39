//! Byte-level tests of the codec, one file per part, with the fixtures they share. The expected
//! byte arrays are written out by hand for a little-endian host.

use std::net::IpAddr;

use super::*;
use crate::ipvs::types::{
    flags, tun_flags, tun_type, DaemonState, KDaemon, KDest, KDestEntry, KForward, KInfo, KService,
    KServiceEntry, KTimeouts, Stats64,
};
use crate::model::{Family, Protocol, ServiceKey};

mod attr;
mod decode;
mod frame;
mod request;

fn v4_key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Tcp,
        address: "10.0.0.1".parse().unwrap(),
        port: 80,
    }
}

fn v6_key() -> ServiceKey {
    ServiceKey::Addr {
        protocol: Protocol::Udp,
        address: "2001:db8::1".parse().unwrap(),
        port: 443,
    }
}

fn v4_service() -> KService {
    KService {
        key: v4_key(),
        scheduler: "wlc".into(),
        flags: flags::PERSISTENT,
        timeout: 300,
        netmask: 0xffff_ff00,
        pe_name: None,
    }
}

fn v6_service() -> KService {
    KService {
        key: v6_key(),
        scheduler: "mh".into(),
        flags: flags::SCHED1 | flags::SCHED2,
        timeout: 0,
        netmask: 128,
        pe_name: None,
    }
}

fn fwmark_service() -> KService {
    KService {
        key: ServiceKey::Fwmark {
            family: Family::Ipv4,
            mark: 7,
        },
        scheduler: "rr".into(),
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        pe_name: Some("sip".into()),
    }
}

fn masq_dest() -> KDest {
    KDest {
        address: "10.1.0.1".parse().unwrap(),
        port: 8080,
        forward: KForward::Masq,
        weight: 100,
        upper_threshold: 0,
        lower_threshold: 0,
        tun_type: 0,
        tun_port: 0,
        tun_flags: 0,
    }
}

fn gue_dest() -> KDest {
    KDest {
        address: "10.2.0.5".parse().unwrap(),
        port: 80,
        forward: KForward::Tunnel,
        weight: 1,
        upper_threshold: 1000,
        lower_threshold: 10,
        tun_type: tun_type::GUE,
        tun_port: 6080,
        tun_flags: tun_flags::CSUM,
    }
}

// SERVICE nest holding the identity of tcp/10.0.0.1:80 (48 bytes).
const V4_KEY_NEST: &[u8] = &[
    0x30, 0x00, 0x01, 0x80, // SERVICE, 48 bytes, NLA_F_NESTED
    0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, // AF = AF_INET
    0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, // PROTOCOL = TCP
    0x14, 0x00, 0x03, 0x00, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ADDR
    0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00, // PORT = 80, big-endian
];
