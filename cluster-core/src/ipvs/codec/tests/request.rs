//! Request bytes for every command, and their descriptions.

use super::*;

#[test]
fn new_service_v4_persistent() {
    let req = Request::new_service(&v4_service());
    assert_eq!((req.cmd, req.dump), (cmd::NEW_SERVICE, false));
    let expected: Vec<u8> = [
        &[0x54, 0x00, 0x01, 0x80][..], // SERVICE, 84 bytes, nested
        &[0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00], // AF_INET
        &[0x06, 0x00, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00], // TCP
        &[
            0x14, 0x00, 0x03, 0x00, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ], // ADDR
        &[0x06, 0x00, 0x04, 0x00, 0x00, 0x50, 0x00, 0x00], // PORT 80 be
        &[0x08, 0x00, 0x06, 0x00, b'w', b'l', b'c', 0x00], // SCHED_NAME "wlc\0"
        &[
            0x0c, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ], // FLAGS {PERSISTENT, mask ~0}
        &[0x08, 0x00, 0x08, 0x00, 0x2c, 0x01, 0x00, 0x00], // TIMEOUT 300
        &[0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0x00], // NETMASK /24 as be32
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn new_service_v6_netmask_is_host_order_prefix() {
    let req = Request::new_service(&v6_service());
    let expected: Vec<u8> = [
        &[0x54, 0x00, 0x01, 0x80][..],
        &[0x06, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00], // AF_INET6
        &[0x06, 0x00, 0x02, 0x00, 0x11, 0x00, 0x00, 0x00], // UDP
        &[
            0x14, 0x00, 0x03, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
        ], // ADDR 2001:db8::1
        &[0x06, 0x00, 0x04, 0x00, 0x01, 0xbb, 0x00, 0x00], // PORT 443 be
        &[0x07, 0x00, 0x06, 0x00, b'm', b'h', 0x00, 0x00], // "mh\0" + 1 pad byte
        &[
            0x0c, 0x00, 0x07, 0x00, 0x18, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ], // FLAGS {SCHED1|SCHED2, ~0}
        &[0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00], // TIMEOUT 0
        &[0x08, 0x00, 0x09, 0x00, 0x80, 0x00, 0x00, 0x00], // NETMASK: prefix 128, host order
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn new_service_fwmark_carries_af_and_mark_only() {
    let req = Request::new_service(&fwmark_service());
    let expected: Vec<u8> = [
        &[0x40, 0x00, 0x01, 0x80][..],                     // 64 bytes
        &[0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00], // AF_INET
        &[0x08, 0x00, 0x05, 0x00, 0x07, 0x00, 0x00, 0x00], // FWMARK 7
        &[0x07, 0x00, 0x06, 0x00, b'r', b'r', 0x00, 0x00], // "rr\0"
        &[0x08, 0x00, 0x0b, 0x00, b's', b'i', b'p', 0x00], // PE_NAME "sip\0"
        &[
            0x0c, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
        ],
        &[0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x08, 0x00, 0x09, 0x00, 0xff, 0xff, 0xff, 0xff], // NETMASK /32
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn set_service_strips_hashed_and_uses_set_command() {
    let mut svc = v4_service();
    svc.flags |= flags::HASHED;
    let req = Request::set_service(&svc);
    assert_eq!((req.cmd, req.dump), (cmd::SET_SERVICE, false));
    assert_eq!(req.attrs, Request::new_service(&v4_service()).attrs);
    // FLAGS payload starts at 4 (nest) + 8 + 8 + 20 + 8 + 8 + 4 (attr header).
    assert_eq!(&req.attrs[60..68], &[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn service_identity_requests() {
    let del = Request::del_service(&v4_key());
    assert_eq!((del.cmd, del.dump), (cmd::DEL_SERVICE, false));
    assert_eq!(del.attrs, V4_KEY_NEST);

    let get = Request::get_service(&v4_key());
    assert_eq!((get.cmd, get.dump), (cmd::GET_SERVICE, false));
    assert_eq!(get.attrs, V4_KEY_NEST);

    let fw6 = Request::del_service(&ServiceKey::Fwmark {
        family: Family::Ipv6,
        mark: 0x10,
    });
    let expected: &[u8] = &[
        0x14, 0x00, 0x01, 0x80, // 20 bytes
        0x06, 0x00, 0x01, 0x00, 0x0a, 0x00, 0x00, 0x00, // AF_INET6
        0x08, 0x00, 0x05, 0x00, 0x10, 0x00, 0x00, 0x00, // FWMARK 16
    ];
    assert_eq!(fw6.attrs, expected);

    let dump = Request::dump_services();
    assert_eq!((dump.cmd, dump.dump), (cmd::GET_SERVICE, true));
    assert!(dump.attrs.is_empty());

    let dests = Request::dump_dests(&v4_key());
    assert_eq!((dests.cmd, dests.dump), (cmd::GET_DEST, true));
    assert_eq!(dests.attrs, V4_KEY_NEST);
}

#[test]
fn new_dest_masq_has_no_tunnel_attributes() {
    let req = Request::new_dest(&v4_key(), &masq_dest());
    assert_eq!((req.cmd, req.dump), (cmd::NEW_DEST, false));
    let expected: Vec<u8> = [
        V4_KEY_NEST,
        &[0x48, 0x00, 0x02, 0x80], // DEST, 72 bytes, nested
        &[0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00], // ADDR_FAMILY AF_INET
        &[
            0x14, 0x00, 0x01, 0x00, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ], // ADDR
        &[0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00], // PORT 8080 be
        &[0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00], // FWD_METHOD MASQ
        &[0x08, 0x00, 0x04, 0x00, 0x64, 0x00, 0x00, 0x00], // WEIGHT 100
        &[0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00], // U_THRESH
        &[0x08, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00], // L_THRESH
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn set_dest_tunnel_gue_with_port() {
    let req = Request::set_dest(&v4_key(), &gue_dest());
    assert_eq!((req.cmd, req.dump), (cmd::SET_DEST, false));
    let expected: Vec<u8> = [
        V4_KEY_NEST,
        &[0x60, 0x00, 0x02, 0x80], // DEST, 96 bytes
        &[0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00],
        &[
            0x14, 0x00, 0x01, 0x00, 10, 2, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[0x06, 0x00, 0x02, 0x00, 0x00, 0x50, 0x00, 0x00], // PORT 80
        &[0x08, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00], // TUNNEL
        &[0x08, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00], // WEIGHT 1
        &[0x08, 0x00, 0x05, 0x00, 0xe8, 0x03, 0x00, 0x00], // U_THRESH 1000
        &[0x08, 0x00, 0x06, 0x00, 0x0a, 0x00, 0x00, 0x00], // L_THRESH 10
        &[0x05, 0x00, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x00], // TUN_TYPE GUE (u8 + 3 pad)
        &[0x06, 0x00, 0x0e, 0x00, 0x17, 0xc0, 0x00, 0x00], // TUN_PORT 6080 be
        &[0x06, 0x00, 0x0f, 0x00, 0x01, 0x00, 0x00, 0x00], // TUN_FLAGS CSUM
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn del_dest_sends_family_address_and_port() {
    let req = Request::del_dest(&v4_key(), "10.1.0.1".parse().unwrap(), 8080);
    assert_eq!((req.cmd, req.dump), (cmd::DEL_DEST, false));
    let expected: Vec<u8> = [
        V4_KEY_NEST,
        &[0x28, 0x00, 0x02, 0x80], // DEST, 40 bytes
        &[0x06, 0x00, 0x0b, 0x00, 0x02, 0x00, 0x00, 0x00],
        &[
            0x14, 0x00, 0x01, 0x00, 10, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[0x06, 0x00, 0x02, 0x00, 0x1f, 0x90, 0x00, 0x00],
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn new_daemon_v4_group_port_in_host_order() {
    let d = KDaemon {
        state: DaemonState::Master,
        interface: "eth0".into(),
        syncid: 7,
        maxlen: Some(1472),
        group: Some("224.0.0.81".parse().unwrap()),
        port: Some(8848),
        ttl: Some(1),
    };
    let req = Request::new_daemon(&d);
    assert_eq!((req.cmd, req.dump), (cmd::NEW_DAEMON, false));
    let expected: Vec<u8> = [
        &[0x40, 0x00, 0x03, 0x80][..],                     // DAEMON, 64 bytes
        &[0x08, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00], // STATE master
        &[
            0x09, 0x00, 0x02, 0x00, b'e', b't', b'h', b'0', 0x00, 0x00, 0x00, 0x00,
        ], // MCAST_IFN "eth0\0" + 3 pad
        &[0x08, 0x00, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00], // SYNC_ID 7
        &[0x06, 0x00, 0x04, 0x00, 0xc0, 0x05, 0x00, 0x00], // SYNC_MAXLEN 1472
        &[0x08, 0x00, 0x05, 0x00, 224, 0, 0, 81],          // MCAST_GROUP, network order
        &[0x06, 0x00, 0x07, 0x00, 0x90, 0x22, 0x00, 0x00], // MCAST_PORT 8848, host order
        &[0x05, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00], // MCAST_TTL 1
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn new_daemon_v6_group_and_defaults_left_out() {
    let d = KDaemon {
        state: DaemonState::Backup,
        interface: "veth0".into(),
        syncid: 256,
        maxlen: None,
        group: Some("ff02::81".parse().unwrap()),
        port: None,
        ttl: Some(4),
    };
    let req = Request::new_daemon(&d);
    let expected: Vec<u8> = [
        &[0x3c, 0x00, 0x03, 0x80][..],                     // DAEMON, 60 bytes
        &[0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00], // STATE backup
        &[
            0x0a, 0x00, 0x02, 0x00, b'v', b'e', b't', b'h', b'0', 0x00, 0x00, 0x00,
        ], // "veth0\0" + 2 pad
        &[0x08, 0x00, 0x03, 0x00, 0x00, 0x01, 0x00, 0x00], // SYNC_ID 256
        &[
            0x14, 0x00, 0x06, 0x00, 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81,
        ], // MCAST_GROUP6 ff02::81
        &[0x05, 0x00, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00], // MCAST_TTL 4
    ]
    .concat();
    assert_eq!(req.attrs, expected);
}

#[test]
fn daemon_config_info_flush_zero_requests() {
    let del = Request::del_daemon(DaemonState::Backup);
    assert_eq!((del.cmd, del.dump), (cmd::DEL_DAEMON, false));
    assert_eq!(
        del.attrs,
        [0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00]
    );

    let dump = Request::dump_daemons();
    assert_eq!(
        (dump.cmd, dump.dump, dump.attrs.len()),
        (cmd::GET_DAEMON, true, 0)
    );

    let get = Request::get_config();
    assert_eq!(
        (get.cmd, get.dump, get.attrs.len()),
        (cmd::GET_CONFIG, false, 0)
    );

    let set = Request::set_config(&KTimeouts {
        tcp: 900,
        tcp_fin: 120,
        udp: 300,
    });
    assert_eq!((set.cmd, set.dump), (cmd::SET_CONFIG, false));
    let expected: Vec<u8> = [
        &[0x08, 0x00, 0x04, 0x00, 0x84, 0x03, 0x00, 0x00][..], // TIMEOUT_TCP 900
        &[0x08, 0x00, 0x05, 0x00, 0x78, 0x00, 0x00, 0x00],     // TIMEOUT_TCP_FIN 120
        &[0x08, 0x00, 0x06, 0x00, 0x2c, 0x01, 0x00, 0x00],     // TIMEOUT_UDP 300
    ]
    .concat();
    assert_eq!(set.attrs, expected);

    let info = Request::get_info();
    assert_eq!(
        (info.cmd, info.dump, info.attrs.len()),
        (cmd::GET_INFO, false, 0)
    );

    let flush = Request::flush();
    assert_eq!(
        (flush.cmd, flush.dump, flush.attrs.len()),
        (cmd::FLUSH, false, 0)
    );

    let zero_all = Request::zero(None);
    assert_eq!((zero_all.cmd, zero_all.attrs.len()), (cmd::ZERO, 0));

    let zero_one = Request::zero(Some(&ServiceKey::Fwmark {
        family: Family::Ipv4,
        mark: 1,
    }));
    assert_eq!(zero_one.cmd, cmd::ZERO);
    assert_eq!(
        zero_one.attrs,
        [
            0x14, 0x00, 0x01, 0x80, 0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00,
            0x05, 0x00, 0x01, 0x00, 0x00, 0x00
        ]
    );
}

#[test]
fn describes_requests_for_error_messages() {
    assert_eq!(
        Request::new_service(&v4_service()).describe(),
        "new service tcp/10.0.0.1:80 (scheduler wlc)"
    );
    assert_eq!(
        Request::del_service(&v6_key()).describe(),
        "del service udp/[2001:db8::1]:443"
    );
    assert_eq!(
        Request::new_dest(&v4_key(), &gue_dest()).describe(),
        "new dest tcp/10.0.0.1:80 -> 10.2.0.5:80"
    );
    assert_eq!(
        Request::del_dest(&fwmark_service().key, "2001:db8::7".parse().unwrap(), 0).describe(),
        "del dest fwmark/7 -> [2001:db8::7]:0"
    );
    assert_eq!(
        Request::new_daemon(&KDaemon {
            state: DaemonState::Backup,
            interface: "eth0".into(),
            syncid: 1,
            maxlen: None,
            group: None,
            port: None,
            ttl: None,
        })
        .describe(),
        "new daemon backup on eth0"
    );
    assert_eq!(
        Request::del_daemon(DaemonState::Master).describe(),
        "del daemon master"
    );
    assert_eq!(Request::dump_services().describe(), "list services");
    assert_eq!(
        Request::dump_dests(&v4_key()).describe(),
        "list dests tcp/10.0.0.1:80"
    );
    assert_eq!(Request::zero(None).describe(), "zero");
    assert_eq!(Request::flush().describe(), "flush");
    assert_eq!(
        Request::set_config(&KTimeouts::default()).describe(),
        "set timeouts"
    );
}
