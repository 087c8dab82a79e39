//! Decoding of captured kernel replies, and round trips through kernel-style replies.

use super::*;

// A kernel GET_SERVICE reply for tcp/10.0.0.1:80 as ip_vs_genl_fill_service writes it: nests
// without NLA_F_NESTED, HASHED in the flags, legacy STATS and STATS64 with PAD attributes (as on
// architectures without efficient unaligned access), an attribute from a newer kernel inside
// the nest and one at top level.
fn v4_service_reply() -> Vec<u8> {
    [
        &[0x98, 0x00, 0x01, 0x00][..], // SERVICE, 152 bytes, no NESTED flag
        &[0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00],
        &[0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00],
        &[
            0x14, 0x00, 0x03, 0x00, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00],
        &[0x08, 0x00, 0x06, 0x00, b'w', b'l', b'c', 0x00],
        &[
            0x0c, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ], // PERSISTENT | HASHED
        &[0x08, 0x00, 0x08, 0x00, 0x2c, 0x01, 0x00, 0x00],
        &[0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0x00],
        &[0x08, 0x00, 0x63, 0x00, 0x01, 0x02, 0x03, 0x04], // unknown type 99
        &[0x0c, 0x00, 0x0a, 0x00],                         // STATS (legacy), 12 bytes
        &[0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00], // CONNS 1 (must lose to STATS64)
        &[0x30, 0x00, 0x0c, 0x00],                         // STATS64, 48 bytes
        &[0x04, 0x00, 0x0b, 0x00],                         // PAD
        &[0x0c, 0x00, 0x01, 0x00, 5, 0, 0, 0, 0, 0, 0, 0], // CONNS 5
        &[0x04, 0x00, 0x0b, 0x00],                         // PAD
        &[0x0c, 0x00, 0x04, 0x00, 0x00, 0x10, 0, 0, 0, 0, 0, 0], // INBYTES 4096
        &[0x0c, 0x00, 0x03, 0x00, 9, 0, 0, 0, 1, 0, 0, 0], // OUTPKTS 2^32 + 9
        &[0x08, 0x00, 0x2a, 0x00, 0x00, 0x00, 0x00, 0x00], // unknown top-level type 42
    ]
    .concat()
}

#[test]
fn decodes_service_reply_masking_hashed_and_skipping_pad_and_unknowns() {
    let e = decode_service(&v4_service_reply()).unwrap();
    assert_eq!(e.service, v4_service());
    assert_eq!(
        e.stats,
        Stats64 {
            conns: 5,
            inbytes: 4096,
            outpkts: (1 << 32) + 9,
            ..Stats64::default()
        }
    );
}

#[test]
fn decodes_legacy_stats_when_stats64_is_absent() {
    let reply: Vec<u8> = [
        &[0x58, 0x00, 0x01, 0x00][..], // SERVICE, 88 bytes
        &[0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x05, 0x00, 0x03, 0x00, 0x00, 0x00], // FWMARK 3
        &[0x07, 0x00, 0x06, 0x00, b's', b'h', 0x00, 0x00],
        &[
            0x0c, 0x00, 0x07, 0x00, 0x1a, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ], // HASHED | SCHED1 | SCHED2
        &[0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff],
        &[0x20, 0x00, 0x0a, 0x00], // STATS, 32 bytes
        &[0x08, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00], // CONNS 3 (u32)
        &[0x0c, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0], // INBYTES 65536 (u64)
        &[0x08, 0x00, 0x0a, 0x00, 0x07, 0x00, 0x00, 0x00], // OUTBPS 7
    ]
    .concat();
    let e = decode_service(&reply).unwrap();
    assert_eq!(
        e.service,
        KService {
            key: ServiceKey::Fwmark {
                family: Family::Ipv4,
                mark: 3
            },
            scheduler: "sh".into(),
            flags: flags::SCHED1 | flags::SCHED2,
            timeout: 0,
            netmask: 0xffff_ffff,
            pe_name: None,
        }
    );
    assert_eq!(
        e.stats,
        Stats64 {
            conns: 3,
            inbytes: 65536,
            outbps: 7,
            ..Stats64::default()
        }
    );
}

#[test]
fn decodes_fwmark6_service_with_pe_and_prefix_netmask() {
    let reply: Vec<u8> = [
        &[0x40, 0x00, 0x01, 0x00][..],
        &[0x06, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x05, 0x00, 0x05, 0x00, 0x00, 0x00],
        &[0x07, 0x00, 0x06, 0x00, b's', b'h', 0x00, 0x00],
        &[0x08, 0x00, 0x0b, 0x00, b's', b'i', b'p', 0x00],
        &[
            0x0c, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ],
        &[0x08, 0x00, 0x08, 0x00, 0x3c, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x09, 0x00, 0x40, 0x00, 0x00, 0x00], // prefix 64
    ]
    .concat();
    let e = decode_service(&reply).unwrap();
    assert_eq!(
        e.service,
        KService {
            key: ServiceKey::Fwmark {
                family: Family::Ipv6,
                mark: 5
            },
            scheduler: "sh".into(),
            flags: flags::PERSISTENT,
            timeout: 60,
            netmask: 64,
            pe_name: Some("sip".into()),
        }
    );
    assert_eq!(e.stats, Stats64::default());
}

#[test]
fn service_decode_errors_name_the_attribute() {
    // Truncation anywhere inside the SERVICE nest is an error, never a panic.
    let reply = v4_service_reply();
    for cut in 0..reply.len() {
        let r = decode_service(&reply[..cut]);
        if cut < 152 {
            assert!(r.is_err(), "cut at {cut}");
        }
    }
    // Garbage: a deterministic byte soup.
    let mut x: u32 = 0x1234_5678;
    for len in 0..300 {
        let soup: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let _ = decode_service(&soup);
        let _ = decode_dest(&soup, Family::Ipv4);
        let _ = decode_daemons(&soup);
        let _ = decode_config(&soup);
        let _ = decode_info(&soup);
        let _ = parse_messages(&soup).count();
    }

    let mut bad_port = v4_service_reply();
    bad_port[4 + 8 + 8 + 20] = 0x08; // PORT attribute length 8 (a 4-byte payload)
    assert_eq!(
        decode_service(&bad_port).unwrap_err(),
        DecodeError {
            attr: "IPVS_SVC_ATTR_PORT",
            problem: Problem::Length {
                got: 4,
                expected: "2 (be16)"
            }
        }
    );

    let mut bad_af = v4_service_reply();
    bad_af[8] = 7;
    let e = decode_service(&bad_af).unwrap_err();
    assert_eq!(e.attr, "IPVS_SVC_ATTR_AF");
    assert_eq!(e.to_string(), "IPVS_SVC_ATTR_AF: unknown address family 7");

    let mut no_sched = v4_service_reply();
    no_sched[4 + 44 + 2] = 0x60; // SCHED_NAME becomes an unknown type
    assert_eq!(
        decode_service(&no_sched).unwrap_err(),
        DecodeError {
            attr: "IPVS_SVC_ATTR_SCHED_NAME",
            problem: Problem::Missing
        }
    );

    let e = decode_service(&[]).unwrap_err();
    assert_eq!(e.to_string(), "IPVS_CMD_ATTR_SERVICE: missing");
}

#[test]
fn decodes_dest_reply() {
    let reply: Vec<u8> = [
        &[0x8c, 0x00, 0x02, 0x00][..], // DEST, 140 bytes
        &[
            0x14, 0x00, 0x01, 0x00, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00],
        &[0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x04, 0x00, 0x64, 0x00, 0x00, 0x00],
        &[0x05, 0x00, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x00],
        &[0x06, 0x00, 0x0e, 0x00, 0x17, 0xc0, 0x00, 0x00],
        &[0x06, 0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x07, 0x00, 0x03, 0x00, 0x00, 0x00], // ACTIVE 3
        &[0x08, 0x00, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00], // INACT 4
        &[0x08, 0x00, 0x09, 0x00, 0x05, 0x00, 0x00, 0x00], // PERSIST 5
        &[0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00], // ADDR_FAMILY
        &[0x14, 0x00, 0x0c, 0x00],                         // STATS64, 20 bytes
        &[0x04, 0x00, 0x0b, 0x00],                         // PAD
        &[0x0c, 0x00, 0x06, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0], // CPS 2
    ]
    .concat();
    let e = decode_dest(&reply, Family::Ipv4).unwrap();
    assert_eq!(
        e,
        KDestEntry {
            dest: KDest {
                address: "10.1.0.1".parse().unwrap(),
                port: 8080,
                forward: KForward::Tunnel,
                weight: 100,
                upper_threshold: 0,
                lower_threshold: 0,
                tun_type: tun_type::GUE,
                tun_port: 6080,
                tun_flags: tun_flags::CSUM,
            },
            active_conns: 3,
            inactive_conns: 4,
            persist_conns: 5,
            stats: Stats64 {
                cps: 2,
                ..Stats64::default()
            },
        }
    );
    // Without ADDR_FAMILY the service's family decides: an IPv6 service wants 16 bytes, which
    // the 16-byte ADDR has, so it reads as an IPv6 address.
    let mut no_af = reply.clone();
    no_af[112 + 2] = 0x70; // ADDR_FAMILY's type byte
    let e6 = decode_dest(&no_af, Family::Ipv6).unwrap();
    assert_eq!(e6.dest.address, "a01:1::".parse::<IpAddr>().unwrap());

    let mut bad_fwd = reply.clone();
    bad_fwd[4 + 28 + 4] = 6;
    assert_eq!(
        decode_dest(&bad_fwd, Family::Ipv4).unwrap_err().attr,
        "IPVS_DEST_ATTR_FWD_METHOD"
    );
    for cut in 0..reply.len() {
        assert!(
            decode_dest(&reply[..cut], Family::Ipv4).is_err(),
            "cut at {cut}"
        );
    }
}

#[test]
fn decodes_daemon_config_and_info_replies() {
    let daemon: Vec<u8> = [
        &[0x40, 0x00, 0x03, 0x00][..],
        &[0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00],
        &[
            0x09, 0x00, 0x02, 0x00, b'e', b't', b'h', b'0', 0x00, 0x00, 0x00, 0x00,
        ],
        &[0x08, 0x00, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00],
        &[0x06, 0x00, 0x04, 0x00, 0xc0, 0x05, 0x00, 0x00],
        &[0x06, 0x00, 0x07, 0x00, 0x90, 0x22, 0x00, 0x00],
        &[0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x05, 0x00, 224, 0, 0, 81],
    ]
    .concat();
    assert_eq!(
        decode_daemons(&daemon).unwrap(),
        KDaemon {
            state: DaemonState::Master,
            interface: "eth0".into(),
            syncid: 7,
            maxlen: Some(1472),
            group: Some("224.0.0.81".parse().unwrap()),
            port: Some(8848),
            ttl: Some(1),
        }
    );
    let mut bad_state = daemon.clone();
    bad_state[8] = 3;
    assert_eq!(
        decode_daemons(&bad_state).unwrap_err().to_string(),
        "IPVS_DAEMON_ATTR_STATE: unknown daemon state 3"
    );

    let config: Vec<u8> = [
        &[0x08, 0x00, 0x04, 0x00, 0x84, 0x03, 0x00, 0x00][..],
        &[0x08, 0x00, 0x05, 0x00, 0x78, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x06, 0x00, 0x2c, 0x01, 0x00, 0x00],
    ]
    .concat();
    assert_eq!(
        decode_config(&config).unwrap(),
        KTimeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300
        }
    );

    let info: Vec<u8> = [
        &[0x08, 0x00, 0x01, 0x00, 0x01, 0x02, 0x01, 0x00][..],
        &[0x08, 0x00, 0x02, 0x00, 0x00, 0x10, 0x00, 0x00],
    ]
    .concat();
    let i = decode_info(&info).unwrap();
    assert_eq!(
        i,
        KInfo {
            version: 0x010201,
            conn_tab_size: 4096
        }
    );
    assert_eq!(i.version_string(), "1.2.1");
    assert_eq!(
        decode_info(&info[..8]).unwrap_err().to_string(),
        "IPVS_INFO_ATTR_CONN_TAB_SIZE: missing"
    );
}

// Encoders of kernel replies for round trips, following ip_vs_genl_fill_service/_dest/_daemon.
fn put_stats(w: &mut AttrWriter, ty: u16, s: &Stats64, wide: bool) {
    w.nest(ty, |w| {
        let all = [
            (stats_attr::CONNS, s.conns),
            (stats_attr::INPKTS, s.inpkts),
            (stats_attr::OUTPKTS, s.outpkts),
            (stats_attr::INBYTES, s.inbytes),
            (stats_attr::OUTBYTES, s.outbytes),
            (stats_attr::CPS, s.cps),
            (stats_attr::INPPS, s.inpps),
            (stats_attr::OUTPPS, s.outpps),
            (stats_attr::INBPS, s.inbps),
            (stats_attr::OUTBPS, s.outbps),
        ];
        for (t, v) in all {
            if wide || t == stats_attr::INBYTES || t == stats_attr::OUTBYTES {
                w.put(stats_attr::PAD, &[]);
                w.put_u64(t, v);
            } else {
                w.put_u32(t, v as u32);
            }
        }
    });
}

fn reply_service(e: &KServiceEntry) -> Vec<u8> {
    let mut w = AttrWriter::new();
    w.nest(cmd_attr::SERVICE, |w| {
        put_service_key(w, &e.service.key);
        w.put_str(svc_attr::SCHED_NAME, &e.service.scheduler);
        if let Some(pe) = &e.service.pe_name {
            w.put_str(svc_attr::PE_NAME, pe);
        }
        let mut fl = (e.service.flags | flags::HASHED).to_ne_bytes().to_vec();
        fl.extend_from_slice(&u32::MAX.to_ne_bytes());
        w.put(svc_attr::FLAGS, &fl);
        w.put_u32(svc_attr::TIMEOUT, e.service.timeout);
        w.put(
            svc_attr::NETMASK,
            &netmask_bytes(e.service.key.family(), e.service.netmask),
        );
        // Legacy counters deliberately differ: STATS64 must win.
        put_stats(w, svc_attr::STATS, &Stats64::default(), false);
        put_stats(w, svc_attr::STATS64, &e.stats, true);
    });
    w.finish()
}

fn reply_dest(e: &KDestEntry) -> Vec<u8> {
    let d = &e.dest;
    let mut w = AttrWriter::new();
    w.nest(cmd_attr::DEST, |w| {
        w.put(dest_attr::ADDR, &addr16(&d.address));
        w.put_be16(dest_attr::PORT, d.port);
        w.put_u32(dest_attr::FWD_METHOD, d.forward.to_u32());
        w.put_u32(dest_attr::WEIGHT, d.weight);
        w.put_u8(dest_attr::TUN_TYPE, d.tun_type);
        w.put_be16(dest_attr::TUN_PORT, d.tun_port);
        w.put_u16(dest_attr::TUN_FLAGS, d.tun_flags);
        w.put_u32(dest_attr::U_THRESH, d.upper_threshold);
        w.put_u32(dest_attr::L_THRESH, d.lower_threshold);
        w.put_u32(dest_attr::ACTIVE_CONNS, e.active_conns);
        w.put_u32(dest_attr::INACT_CONNS, e.inactive_conns);
        w.put_u32(dest_attr::PERSIST_CONNS, e.persist_conns);
        w.put_u16(dest_attr::ADDR_FAMILY, af_number(Family::of(&d.address)));
        put_stats(w, dest_attr::STATS, &e.stats, false);
        put_stats(w, dest_attr::STATS64, &e.stats, true);
    });
    w.finish()
}

fn stats(seed: u64) -> Stats64 {
    Stats64 {
        conns: seed,
        inpkts: seed + 1,
        outpkts: seed + 2,
        inbytes: seed << 33,
        outbytes: (seed << 34) + 5,
        cps: 6,
        inpps: 7,
        outpps: 8,
        inbps: 9,
        outbps: 10,
    }
}

#[test]
fn round_trips_services_through_kernel_style_replies() {
    let mut v6_persistent = v6_service();
    v6_persistent.flags |= flags::PERSISTENT | flags::ONEPACKET;
    v6_persistent.timeout = 3600;
    v6_persistent.netmask = 48;
    let sctp = KService {
        key: ServiceKey::Addr {
            protocol: Protocol::Sctp,
            address: "192.0.2.9".parse().unwrap(),
            port: 3868,
        },
        scheduler: "lblcr".into(),
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        pe_name: None,
    };
    for (i, svc) in [
        v4_service(),
        v6_service(),
        v6_persistent,
        fwmark_service(),
        sctp,
    ]
    .into_iter()
    .enumerate()
    {
        let entry = KServiceEntry {
            service: svc.clone(),
            stats: stats(i as u64 + 1),
        };
        assert_eq!(decode_service(&reply_service(&entry)).unwrap(), entry);
        // A request carries the same nest minus counters: it decodes to the same service.
        let from_request = decode_service(&Request::new_service(&svc).attrs).unwrap();
        assert_eq!(from_request.service, svc);
        assert_eq!(
            decode_service_key(&Request::get_service(&svc.key).attrs[4..]),
            Ok(svc.key)
        );
    }
}

#[test]
fn round_trips_dests_daemons_and_timeouts() {
    let v6_tunnel = KDest {
        address: "2001:db8::10".parse().unwrap(),
        port: 0,
        forward: KForward::Tunnel,
        weight: 65535,
        upper_threshold: 0,
        lower_threshold: 0,
        tun_type: tun_type::GRE,
        tun_port: 0,
        tun_flags: tun_flags::NOCSUM,
    };
    let route = KDest {
        forward: KForward::Route,
        weight: 0,
        ..masq_dest()
    };
    for (i, d) in [masq_dest(), gue_dest(), v6_tunnel, route]
        .into_iter()
        .enumerate()
    {
        let entry = KDestEntry {
            dest: d.clone(),
            active_conns: i as u32,
            inactive_conns: 2 * i as u32,
            persist_conns: 3,
            stats: stats(40 + i as u64),
        };
        // The service family (IPv4 here) must not override ADDR_FAMILY.
        assert_eq!(
            decode_dest(&reply_dest(&entry), Family::Ipv4).unwrap(),
            entry
        );
        let from_request = decode_dest(&Request::new_dest(&v4_key(), &d).attrs, Family::Ipv4);
        assert_eq!(from_request.unwrap().dest, d);
    }

    for d in [
        KDaemon {
            state: DaemonState::Master,
            interface: "eth1".into(),
            syncid: 200,
            maxlen: Some(1400),
            group: Some("239.1.2.3".parse().unwrap()),
            port: Some(9000),
            ttl: Some(3),
        },
        KDaemon {
            state: DaemonState::Backup,
            interface: "bond0.100".into(),
            syncid: 0,
            maxlen: None,
            group: Some("ff15::1234".parse().unwrap()),
            port: None,
            ttl: None,
        },
    ] {
        assert_eq!(decode_daemons(&Request::new_daemon(&d).attrs).unwrap(), d);
    }

    let t = KTimeouts {
        tcp: 7200,
        tcp_fin: 30,
        udp: 5,
    };
    assert_eq!(decode_config(&Request::set_config(&t).attrs).unwrap(), t);
}
