//! Framing of requests and parsing of received messages.

use super::*;

#[test]
fn frames_requests_with_ack_or_dump_flags() {
    assert_eq!(
        frame(&Request::flush(), 0x1c, 7, 0x1234),
        [
            0x14, 0x00, 0x00, 0x00, // nlmsg_len 20
            0x1c, 0x00, // type = family id
            0x05, 0x00, // NLM_F_REQUEST | NLM_F_ACK
            0x07, 0x00, 0x00, 0x00, // seq
            0x34, 0x12, 0x00, 0x00, // pid
            0x11, 0x01, 0x00, 0x00, // genlmsghdr: FLUSH, version 1
        ]
    );
    assert_eq!(
        frame(&Request::dump_services(), 0x1c, 8, 0),
        [
            0x14, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x03, // NLM_F_REQUEST | NLM_F_DUMP
            0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x01, 0x00, 0x00,
        ]
    );
    let get = frame(&Request::get_service(&v4_key()), 0x1c, 9, 0);
    let expected: Vec<u8> = [
        &[0x44, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x05, 0x00][..], // 68 bytes
        &[0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x04, 0x01, 0x00, 0x00],
        V4_KEY_NEST,
    ]
    .concat();
    assert_eq!(get, expected);

    // frame_into packs messages back to back for one sendmsg.
    let mut batch = Vec::new();
    frame_into(&mut batch, &Request::flush(), 0x1c, 1, 0);
    frame_into(&mut batch, &Request::get_info(), 0x1c, 2, 0);
    let msgs: Vec<_> = parse_messages(&batch).map(Result::unwrap).collect();
    assert_eq!(msgs.len(), 2);
    assert_eq!((msgs[0].seq, msgs[1].seq), (1, 2));
    assert_eq!(
        msgs[1].payload,
        Payload::Genl {
            cmd: cmd::GET_INFO,
            attrs: &[]
        }
    );
}

fn nlmsg(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = 16 + body.len();
    let mut m = Vec::new();
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0x99u32.to_ne_bytes());
    m.extend_from_slice(body);
    m.resize(align4(m.len()), 0);
    m
}

#[test]
fn parses_acks_errors_done_and_data() {
    let orig_hdr = [0x14, 0, 0, 0, 0x1c, 0, 5, 0, 6, 0, 0, 0, 0, 0, 0, 0];
    let buf = [
        // ACK for seq 5: error 0 + the request's header.
        nlmsg(2, 0x100, 5, &[[0u8; 4].as_slice(), &orig_hdr].concat()),
        // EEXIST for seq 6.
        nlmsg(
            2,
            0x100,
            6,
            &[(-17i32).to_ne_bytes().as_slice(), &orig_hdr].concat(),
        ),
        // A reply carrying one attribute (a 1-byte payload, so it has padding).
        nlmsg(0x1c, 2, 7, &[1, 1, 0, 0, 5, 0, 9, 0, 0xaa, 0, 0, 0]),
        nlmsg(3, 2, 8, &0i32.to_ne_bytes()),
        nlmsg(3, 2, 9, &(-4i32).to_ne_bytes()),
        nlmsg(3, 2, 10, &[]),
        nlmsg(1, 0, 11, &[]),
    ]
    .concat();
    let msgs: Vec<_> = parse_messages(&buf).map(Result::unwrap).collect();
    let payloads: Vec<_> = msgs.iter().map(|m| (m.seq, m.payload)).collect();
    assert_eq!(
        payloads,
        vec![
            (5, Payload::Ack),
            (6, Payload::Error(17)),
            (
                7,
                Payload::Genl {
                    cmd: 1,
                    attrs: &[5, 0, 9, 0, 0xaa, 0, 0, 0]
                }
            ),
            (8, Payload::Done(0)),
            (9, Payload::Done(4)),
            (10, Payload::Done(0)),
            (11, Payload::Other),
        ]
    );
    assert_eq!(
        (msgs[2].msg_type, msgs[2].flags, msgs[2].pid),
        (0x1c, 2, 0x99)
    );
    let Payload::Genl { attrs: a, .. } = msgs[2].payload else {
        unreachable!()
    };
    assert_eq!(attrs(a, "t").next().unwrap().unwrap(), (9, &[0xaa][..]));
}

#[test]
fn malformed_frames_give_errors_not_panics() {
    let good = nlmsg(0x1c, 0, 1, &[1, 1, 0, 0]);
    for cut in 1..good.len() {
        let r: Vec<_> = parse_messages(&good[..cut]).collect();
        assert_eq!(r.len(), 1);
        assert!(r[0].is_err(), "cut at {cut}");
    }
    // nlmsg_len smaller than the header.
    let mut bad = good.clone();
    bad[0] = 8;
    let e = parse_messages(&bad).next().unwrap().unwrap_err();
    assert_eq!(e.attr, "nlmsghdr");
    // An error message too short to hold the errno.
    let short_err = nlmsg(2, 0, 1, &[0, 0]);
    assert_eq!(
        parse_messages(&short_err).next().unwrap().unwrap_err().attr,
        "nlmsgerr"
    );
    // A genl message without its 4-byte header.
    let short_genl = nlmsg(0x1c, 0, 1, &[1, 1]);
    assert_eq!(
        parse_messages(&short_genl)
            .next()
            .unwrap()
            .unwrap_err()
            .attr,
        "genlmsghdr"
    );
}
