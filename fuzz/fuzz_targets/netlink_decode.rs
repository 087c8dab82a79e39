//! The IPVS generic-netlink reply decoders (what the kernel sends the reconciler): every decoder on
//! the raw bytes, and the message framing with each generic-netlink payload fed to every decoder.
#![no_main]

use cluster_core::ipvs::codec::{self, Payload};
use cluster_core::model::Family;
use libfuzzer_sys::fuzz_target;

fn decode_all(attrs: &[u8]) {
    let _ = codec::decode_service(attrs);
    let _ = codec::decode_dest(attrs, Family::Ipv4);
    let _ = codec::decode_dest(attrs, Family::Ipv6);
    let _ = codec::decode_daemons(attrs);
    let _ = codec::decode_config(attrs);
    let _ = codec::decode_info(attrs);
    let _ = codec::decode_service_key(attrs);
}

fuzz_target!(|data: &[u8]| {
    decode_all(data);
    for m in codec::parse_messages(data).take(256) {
        if let Ok(codec::NlMessage {
            payload: Payload::Genl { attrs, .. },
            ..
        }) = m
        {
            decode_all(attrs);
        }
    }
});
