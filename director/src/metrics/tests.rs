//! Encoding tests: every family from a hand-made snapshot, absent values, the listen check.

use super::snapshot::{reals_snapshot, AgentsSnap, RaftSnap, VipCounts};
use super::*;
use crate::api::kernel_view::{KernelReadError, KernelTable};
use crate::ipvs::reconciler::{IpvsStatus, PASS_BUCKETS_S};
use crate::vip::VipStatus;
use cluster_core::effective::Overlay;
use cluster_core::health::HealthView;
use cluster_core::health::RealHealth;
use cluster_core::ipvs::Stats64;
use cluster_core::ipvs::{KDest, KDestEntry, KForward, KInfo, KServiceEntry, KTimeouts};
use cluster_core::model::{Config, FailureAction};

fn config() -> Config {
    Config::from_toml(
        r#"
[[service]]
key = "tcp/10.0.0.1:80"
scheduler = "wrr"

[[service.reals]]
address = "10.0.1.1"
port = 80
weight = 5

[[service.reals]]
address = "10.0.1.2"
port = 80
weight = 3

[[service]]
key = "tcp/[2001:db8::1]:443"
scheduler = "wlc"

[[service.reals]]
address = "2001:db8::21"
port = 443
weight = 10
"#,
    )
    .unwrap()
}

fn kernel(cfg: &Config) -> KernelTable {
    let svc = cfg.services.values().next().unwrap();
    let dest = |addr: &str, weight: u32, conns: u64, inbytes: u64| KDestEntry {
        dest: KDest {
            address: addr.parse().unwrap(),
            port: 80,
            forward: KForward::Route,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
            tun_type: 0,
            tun_port: 0,
            tun_flags: 0,
        },
        active_conns: 2,
        inactive_conns: 7,
        persist_conns: 0,
        stats: Stats64 {
            conns,
            inpkts: conns * 3,
            outpkts: 0,
            inbytes,
            outbytes: 0,
            ..Default::default()
        },
    };
    KernelTable {
        info: KInfo {
            version: 0x010201,
            conn_tab_size: 4096,
        },
        timeouts: KTimeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        },
        services: vec![(
            KServiceEntry {
                service: cluster_core::ipvs::reconcile::kernel_service(svc),
                stats: Stats64 {
                    conns: 40,
                    inpkts: 120,
                    inbytes: 9000,
                    ..Default::default()
                },
            },
            vec![dest("10.0.1.1", 5, 10, 2000), dest("10.0.1.2", 0, 30, 7000)],
        )],
        daemons: vec![],
    }
}

fn snapshot(kernel_read: Option<Result<KernelTable, KernelReadError>>) -> Snapshot {
    let cfg = config();
    let key = *cfg.services.keys().next().unwrap();
    let mut overlay = Overlay::default();
    overlay.services.entry(key).or_default().insert(
        ("10.0.1.2".parse().unwrap(), 80),
        cluster_core::effective::RealOverride {
            drained: true,
            ..Default::default()
        },
    );
    let mut health = HealthView::default();
    health.reals.insert(
        (key, "10.0.1.1".parse().unwrap(), 80),
        RealHealth {
            up: false,
            since_ms: 1,
            detail: "connection refused".into(),
            last_latency_us: 0,
            checks: 3,
            failures: 3,
            action: FailureAction::Remove,
        },
    );
    overlay.services.entry(key).or_default().insert(
        ("10.0.1.1".parse().unwrap(), 80),
        cluster_core::effective::RealOverride {
            down: Some(FailureAction::Remove),
            ..Default::default()
        },
    );
    Snapshot {
        version: "9.9.9",
        raft: RaftSnap {
            node_id: 2,
            term: 7,
            state: "leader",
            is_leader: true,
            leader: Some(2),
            last_log_index: Some(41),
            commit_index: Some(40),
            applied_index: Some(39),
            quorum_ack_ms: Some(1500),
            voters: 3,
            learners: 1,
        },
        config_revision: 12,
        vips: vec![VipStatus {
            group: "web".into(),
            address: "192.0.2.10/24".parse().unwrap(),
            interface: "eth0".into(),
            held: true,
            since_ms: 5,
            error: None,
        }],
        vip_counts: VipCounts {
            garp_sent: 6,
            na_sent: 5,
            acquired: 2,
            released: 1,
        },
        reals: reals_snapshot(&cfg, &overlay, &health),
        reconciler: IpvsStatus {
            enabled: true,
            full_passes: 4,
            incremental_passes: 9,
            errors_total: 2,
            total_ops: 17,
            last_pass_ms: 1_700_000_000_000,
            last_pass_us: 1500,
            last_ok_pass_ms: 1_700_000_000_500,
            pass_buckets: {
                let mut b = vec![0; PASS_BUCKETS_S.len() + 1];
                b[3] = 10; // <= 1 ms
                b[4] = 2; // <= 2.5 ms
                b[PASS_BUCKETS_S.len()] = 1; // above every bound
                b
            },
            pass_us_sum: 20_000,
            ..Default::default()
        },
        kernel: kernel_read,
        agents: AgentsSnap {
            connected: 1,
            reports_total: 30,
            reports_rejected: 2,
            report_age_s: vec![("web-1".into(), 0.25)],
        },
    }
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing line {line:?} in:\n{text}"
    );
}

#[test]
fn every_family_from_a_snapshot() {
    let cfg = config();
    let t = encode(snapshot(Some(Ok(kernel(&cfg)))));
    assert!(t.ends_with("# EOF\n"), "{t}");
    has(&t, "lvs_director_build_info{version=\"9.9.9\"} 1");
    has(&t, "# TYPE lvs_director_raft_term gauge");
    has(&t, "lvs_director_raft_term 7");
    has(&t, "lvs_director_raft_is_leader 1");
    has(&t, "lvs_director_raft_leader_id 2");
    has(&t, "lvs_director_raft_state{state=\"leader\"} 1");
    has(&t, "lvs_director_raft_state{state=\"follower\"} 0");
    has(&t, "lvs_director_raft_last_log_index 41");
    has(&t, "lvs_director_raft_commit_index 40");
    has(&t, "lvs_director_raft_applied_index 39");
    has(
        &t,
        "# UNIT lvs_director_raft_quorum_ack_age_seconds seconds",
    );
    has(&t, "lvs_director_raft_quorum_ack_age_seconds 1.5");
    has(&t, "lvs_director_raft_members{role=\"voter\"} 3");
    has(&t, "lvs_director_raft_members{role=\"learner\"} 1");
    has(&t, "lvs_director_config_revision 12");
    has(
        &t,
        "lvs_director_vip_held{name=\"web\",address=\"192.0.2.10/24\",interface=\"eth0\"} 1",
    );
    has(&t, "# TYPE lvs_director_vip_announcements counter");
    has(
        &t,
        "lvs_director_vip_announcements_total{kind=\"gratuitous_arp\"} 6",
    );
    has(
        &t,
        "lvs_director_vip_announcements_total{kind=\"unsolicited_na\"} 5",
    );
    has(&t, "lvs_director_vip_acquisitions_total 2");
    has(&t, "lvs_director_vip_releases_total 1");
    // Configured vs effective: 10.0.1.1 failed its check (removed), 10.0.1.2 is drained.
    let r1 = "{service=\"tcp/10.0.0.1:80\",real=\"10.0.1.1:80\"}";
    let r2 = "{service=\"tcp/10.0.0.1:80\",real=\"10.0.1.2:80\"}";
    let r6 = "{service=\"tcp/[2001:db8::1]:443\",real=\"[2001:db8::21]:443\"}";
    has(&t, &format!("lvs_director_real_configured_weight{r1} 5"));
    has(&t, &format!("lvs_director_real_effective_weight{r1} 0"));
    has(&t, &format!("lvs_director_real_configured_weight{r2} 3"));
    has(&t, &format!("lvs_director_real_effective_weight{r2} 0"));
    has(&t, &format!("lvs_director_real_effective_weight{r6} 10"));
    has(&t, &format!("lvs_director_real_health_up{r1} 0"));
    assert!(
        !t.contains(&format!("lvs_director_real_health_up{r2}")),
        "{t}"
    );
    // Kernel counters and gauges.
    has(&t, "lvs_director_ipvs_kernel_read_ok 1");
    has(&t, "# TYPE lvs_director_ipvs_real_connections counter");
    has(
        &t,
        "lvs_director_ipvs_service_connections_total{service=\"tcp/10.0.0.1:80\"} 40",
    );
    has(
        &t,
        "lvs_director_ipvs_service_bytes_in_total{service=\"tcp/10.0.0.1:80\"} 9000",
    );
    has(
        &t,
        &format!("lvs_director_ipvs_real_connections_total{r1} 10"),
    );
    has(
        &t,
        &format!("lvs_director_ipvs_real_connections_total{r2} 30"),
    );
    has(
        &t,
        &format!("lvs_director_ipvs_real_packets_in_total{r2} 90"),
    );
    has(
        &t,
        &format!("lvs_director_ipvs_real_bytes_in_total{r2} 7000"),
    );
    has(&t, &format!("lvs_director_ipvs_real_bytes_out_total{r2} 0"));
    has(
        &t,
        &format!("lvs_director_ipvs_real_active_connections{r1} 2"),
    );
    has(
        &t,
        &format!("lvs_director_ipvs_real_inactive_connections{r1} 7"),
    );
    has(&t, &format!("lvs_director_ipvs_real_weight{r2} 0"));
    // Reconciler.
    has(&t, "lvs_director_reconcile_runs_total{kind=\"full\"} 4");
    has(
        &t,
        "lvs_director_reconcile_runs_total{kind=\"incremental\"} 9",
    );
    has(&t, "lvs_director_reconcile_errors_total 2");
    has(&t, "lvs_director_reconcile_operations_total 17");
    has(&t, "lvs_director_ipvs_available 1");
    has(&t, "lvs_director_reconcile_last_duration_seconds 0.0015");
    has(
        &t,
        "lvs_director_reconcile_last_success_timestamp_seconds 1700000000.5",
    );
    has(
        &t,
        "# TYPE lvs_director_reconcile_duration_seconds histogram",
    );
    has(&t, "lvs_director_reconcile_duration_seconds_count 13");
    has(&t, "lvs_director_reconcile_duration_seconds_sum 0.02");
    has(
        &t,
        "lvs_director_reconcile_duration_seconds_bucket{le=\"0.0005\"} 0",
    );
    has(
        &t,
        "lvs_director_reconcile_duration_seconds_bucket{le=\"0.001\"} 10",
    );
    has(
        &t,
        "lvs_director_reconcile_duration_seconds_bucket{le=\"0.0025\"} 12",
    );
    has(
        &t,
        "lvs_director_reconcile_duration_seconds_bucket{le=\"2.5\"} 12",
    );
    has(
        &t,
        "lvs_director_reconcile_duration_seconds_bucket{le=\"+Inf\"} 13",
    );
    // Agents.
    has(&t, "lvs_director_agents_connected 1");
    has(&t, "lvs_director_agent_reports_total 30");
    has(&t, "lvs_director_agent_reports_rejected_total 2");
    has(
        &t,
        "lvs_director_agent_report_age_seconds{agent=\"web-1\"} 0.25",
    );
}

#[test]
fn absent_values_and_unreadable_kernel() {
    let mut s = snapshot(Some(Err(KernelReadError::Busy)));
    s.raft = RaftSnap {
        node_id: 3,
        state: "follower",
        ..Default::default()
    };
    s.reconciler.last_ok_pass_ms = 0;
    s.reconciler.last_pass_ms = 0;
    s.reconciler.unavailable = Some("IPVS is not available".into());
    let t = encode(s);
    has(&t, "lvs_director_raft_is_leader 0");
    has(&t, "lvs_director_raft_leader_id -1");
    has(&t, "lvs_director_raft_commit_index -1");
    has(&t, "lvs_director_ipvs_kernel_read_ok 0");
    has(&t, "lvs_director_ipvs_available 0");
    for absent in [
        "lvs_director_raft_quorum_ack_age_seconds ",
        "lvs_director_ipvs_real_connections_total",
        "lvs_director_reconcile_last_success_timestamp_seconds ",
        "lvs_director_reconcile_last_duration_seconds ",
    ] {
        assert!(!t.contains(absent), "{absent} present in:\n{t}");
    }
    // IPVS disabled: no kernel families at all, not even the read flag.
    let t = encode(snapshot(None));
    assert!(!t.contains("ipvs_kernel_read_ok"), "{t}");
    assert!(!t.contains("ipvs_real_connections"), "{t}");
}

#[test]
fn listen_address_is_checked() {
    let c = |v: &str| MetricsConfig {
        listen: Some(v.into()),
    };
    assert_eq!(MetricsConfig::default().listen_addr().unwrap(), None);
    assert_eq!(
        c("127.0.0.1:9100").listen_addr().unwrap(),
        Some("127.0.0.1:9100".parse().unwrap())
    );
    assert!(c("[::]:9100").validate(&[]).is_ok());
    let taken = [("api_addr", "127.0.0.1:7001")];
    let cases: [(&str, &[&str]); 4] = [
        ("localhost:9100", &["metrics.listen", "\"localhost:9100\""]),
        ("10.0.0.1", &["\"10.0.0.1\""]),
        ("10.0.0.1:0", &["port 0"]),
        ("127.0.0.1:7001", &["api_addr"]),
    ];
    for (listen, wants) in cases {
        let e = c(listen).validate(&taken).unwrap_err().to_string();
        for want in wants {
            assert!(e.contains(want), "{listen}: {e}");
        }
    }
}
