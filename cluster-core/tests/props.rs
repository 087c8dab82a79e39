//! Property tests run by every `make test`: the parsers of untrusted input (netlink replies,
//! /proc/net/ip_vs_conn, the TOML config) never panic, a config that validates survives a TOML
//! round trip, and the weight controller never leaves its range whatever the reports say.

use cluster_core::ipvs::codec;
use cluster_core::model::{Config, Family};
use cluster_core::weights::{Controller, Input, Params, Sample};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn netlink_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode_service(&bytes);
        let _ = codec::decode_dest(&bytes, Family::Ipv4);
        let _ = codec::decode_dest(&bytes, Family::Ipv6);
        let _ = codec::decode_daemons(&bytes);
        let _ = codec::decode_config(&bytes);
        let _ = codec::decode_info(&bytes);
        let _ = codec::decode_service_key(&bytes);
        for m in codec::parse_messages(&bytes).take(64) {
            let _ = m;
        }
    }

    #[test]
    fn conn_table_parser_never_panics(text in "[ -~\n]{0,400}") {
        let _ = cluster_core::ipvs::conns::parse(&text);
    }

    #[test]
    fn config_parser_never_panics(text in "[ -~\n]{0,300}") {
        if let Ok(c) = Config::from_toml(&text) {
            if let Ok(v) = cluster_core::validate::config(&c) {
                let back = Config::from_toml(&v.to_toml()).expect("own TOML parses");
                prop_assert_eq!(back, v);
            }
        }
    }

    #[test]
    fn valid_configs_round_trip(
        reals in proptest::collection::vec((1u8..=254, 1u16..=65535, 0u32..=65535), 1..6),
        port in 1u16..=65535,
        sched in prop::sample::select(vec!["rr", "wrr", "wlc", "sed", "nq", "mh", "sh"]),
    ) {
        let mut text = format!("[[service]]\nkey = \"tcp/10.0.0.1:{port}\"\nscheduler = \"{sched}\"\n");
        for (host, rport, weight) in &reals {
            text.push_str(&format!(
                "\n[[service.reals]]\naddress = \"10.0.1.{host}\"\nport = {rport}\nweight = {weight}\nforward = \"masq\"\n"
            ));
        }
        let c = Config::from_toml(&text).expect("generated TOML parses");
        match cluster_core::validate::config(&c) {
            Ok(v) => {
                let back = Config::from_toml(&v.to_toml()).expect("own TOML parses");
                prop_assert_eq!(back, v);
            }
            // Duplicate real servers are the only way this generator makes an invalid config.
            Err(e) => prop_assert!(e.to_string().contains("duplicate real server"), "{e}"),
        }
    }

    #[test]
    fn controller_weights_stay_in_range(
        statics in proptest::collection::vec(0u32..=100, 1..6),
        steps in proptest::collection::vec(
            proptest::collection::vec(
                (any::<bool>(), -1.0f64..1e6, -0.5f64..1.5, -1.0f64..1e5),
                1..6,
            ),
            1..40,
        ),
        latency in any::<bool>(),
    ) {
        let params = Params::default();
        let scale = params.scale;
        let input = if latency { Input::Latency } else { Input::Load };
        let mut ctl: Controller<usize> = Controller::new(input, params);
        let members: Vec<(usize, u32)> = statics.iter().copied().enumerate().collect();
        ctl.set_members(&members);
        let mut now = 0u64;
        for step in steps {
            now += 1000;
            for (i, (send, thr, busy, lat)) in step.into_iter().enumerate() {
                if send && i < members.len() {
                    ctl.report(&i, Sample {
                        at_ms: now,
                        throughput: Some(thr),
                        busy: Some(busy),
                        latency_ms: Some(lat),
                    });
                }
            }
            // Never 0 (quiescing is the health checks' job), never above the scale.
            for (k, d) in ctl.step(now) {
                prop_assert!(
                    d.weight >= 1 && d.weight <= scale,
                    "member {k}: weight {} out of 1..={scale}",
                    d.weight
                );
            }
        }
    }
}
