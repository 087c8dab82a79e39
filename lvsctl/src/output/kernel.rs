//! Text views of kernel IPVS state as ipvsadm prints it: `list --stats|--rate`, `conns`, and
//! the `ipvs` report of the kernel and the reconciler.

use cluster_core::model::*;
use lvs_proto::v1 as pb;

use super::time::rfc3339;

/// Which numbers `list --stats` and `list --rate` show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelView {
    Stats,
    Rate,
}

/// ipvsadm's `print_largenum`: right-aligned in nine columns, and from 100 million on cut down
/// to K, M, G or T; `exact` widens the column instead.
pub fn largenum(i: u64, exact: bool) -> String {
    if exact {
        let s = i.to_string();
        let width = if s.len() <= 8 { 9 } else { s.len() + 1 };
        return format!("{s:>width$}");
    }
    match i {
        0..=99_999_999 => format!("{i:>9}"),
        100_000_000..=999_999_999 => format!("{:>8}K", i / 1_000),
        1_000_000_000..=99_999_999_999 => format!("{:>8}M", i / 1_000_000),
        100_000_000_000..=99_999_999_999_999 => format!("{:>8}G", i / 1_000_000_000),
        _ => format!("{:>8}T", i / 1_000_000_000_000),
    }
}

/// ipvsadm's service column: `TCP  10.0.0.1:80`, `FWM  5 IPv6`, cut at 33 characters unless IPv6.
fn kernel_service_name(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Fwmark {
            family: Family::Ipv4,
            mark,
        } => format!("FWM  {mark}"),
        ServiceKey::Fwmark {
            family: Family::Ipv6,
            mark,
        } => format!("FWM  {mark} IPv6"),
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            let mut name = format!(
                "{:<4} {}",
                protocol.as_str().to_ascii_uppercase(),
                fmt_endpoint(address, *port)
            );
            if address.is_ipv4() {
                name.truncate(33);
            }
            name
        }
    }
}

/// ipvsadm's order (`ipvs_cmp_services`): address services first, then by fwmark, family,
/// protocol number, address and port. (ipvsadm compares addresses by int subtraction, which
/// misorders addresses 2^31 or more apart; here they are simply numeric.)
fn kernel_service_order(key: &ServiceKey) -> (u32, Family, u8, Option<std::net::IpAddr>, u16) {
    match *key {
        ServiceKey::Addr {
            protocol,
            address,
            port,
        } => {
            let number = match protocol {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
                Protocol::Sctp => 132,
            };
            (0, Family::of(&address), number, Some(address), port)
        }
        ServiceKey::Fwmark { family, mark } => (mark, family, 0, None, 0),
    }
}

/// A destination column: `10.0.1.1:80`, `[2001:db8::10]:80`, cut at 28 characters unless IPv6.
fn kernel_dest_name(d: &pb::IpvsDest) -> (Option<std::net::IpAddr>, String) {
    match d.address.parse::<std::net::IpAddr>() {
        Ok(a) => {
            let port = u16::try_from(d.port).unwrap_or(0);
            let mut name = fmt_endpoint(&a, port);
            if a.is_ipv4() {
                name.truncate(28);
            }
            (Some(a), name)
        }
        Err(_) => (None, format!("{}:{}", d.address, d.port)),
    }
}

/// `list --stats` and `list --rate`: a line naming the director, then what
/// `ipvsadm -Ln --stats|--rate [--exact]` prints for the same table, in ipvsadm's order. `whole`
/// is false when one service was asked for; ipvsadm leaves the version line out then.
pub fn kernel_table(
    s: &pb::IpvsState,
    services: &[(ServiceKey, &pb::IpvsService)],
    endpoint: &str,
    view: KernelView,
    exact: bool,
    whole: bool,
) -> String {
    let mut out = format!(
        "Kernel IPVS table of director {} (asked at {endpoint})\n",
        s.node_id
    );
    if whole {
        out.push_str(&format!(
            "IP Virtual Server version {} (size={})\n",
            s.version, s.conn_tab_size
        ));
    }
    let columns = match view {
        KernelView::Stats => ["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"],
        KernelView::Rate => ["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"],
    };
    out.push_str(&format!("{:<33}", "Prot LocalAddress:Port"));
    for c in columns {
        out.push_str(&format!(" {c:>8}"));
    }
    out.push_str("\n  -> RemoteAddress:Port\n");
    let mut sorted: Vec<&(ServiceKey, &pb::IpvsService)> = services.iter().collect();
    sorted.sort_by_key(|(k, _)| kernel_service_order(k));
    let n = |v: u64| largenum(v, exact);
    for (key, svc) in sorted {
        let st = svc.stats.unwrap_or_default();
        out.push_str(&format!("{:<33}", kernel_service_name(key)));
        let nums = match view {
            KernelView::Stats => [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes],
            KernelView::Rate => [st.cps, st.inpps, st.outpps, st.inbps, st.outbps],
        };
        for v in nums {
            out.push_str(&n(v));
        }
        out.push('\n');
        let mut dests: Vec<(Option<std::net::IpAddr>, String, &pb::IpvsDest)> = svc
            .dests
            .iter()
            .map(|d| {
                let (a, name) = kernel_dest_name(d);
                (a, name, d)
            })
            .collect();
        dests.sort_by_key(|(a, _, d)| (*a, d.port));
        for (_, name, d) in dests {
            let st = d.stats.unwrap_or_default();
            out.push_str(&format!("  -> {name:<28}"));
            match view {
                KernelView::Stats => {
                    for v in [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes] {
                        out.push_str(&n(v));
                    }
                }
                // ipvsadm prints a destination's cps, inpps and outpps unscaled.
                KernelView::Rate => {
                    out.push_str(&format!(" {:>8} {:>8} {:>8}", st.cps, st.inpps, st.outpps));
                    out.push_str(&n(st.inbps));
                    out.push_str(&n(st.outbps));
                }
            }
            out.push('\n');
        }
    }
    out
}

/// `conns`: a line naming the director and the file, then what `ipvsadm -Lnc` prints, plus an
/// origin column when the kernel says where each entry came from.
pub fn conns(l: &pb::ConnList, endpoint: &str) -> String {
    let with_origin = l.file.ends_with("ip_vs_conn_sync");
    let mut out = format!(
        "Connections of director {} (asked at {endpoint}; {})\n",
        l.node_id, l.file
    );
    out.push_str("IPVS connection entries\n");
    if with_origin {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination", "origin"
        ));
    } else {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        ));
    }
    for c in &l.conns {
        let expire = format!("{:02}:{:02}", c.expires_s / 60, c.expires_s % 60);
        let line = format!(
            "{:<3} {:<6} {:<11} {:<18} {:<18} ",
            c.protocol, expire, c.state, c.client_addr, c.virtual_addr
        );
        out.push_str(&line);
        if with_origin {
            out.push_str(&format!(
                "{:<18} {}\n",
                c.real_addr,
                c.origin.to_ascii_uppercase()
            ));
        } else {
            out.push_str(&c.real_addr);
            out.push('\n');
        }
    }
    out
}

/// `ipvs`: the answering director's kernel and reconciler, then every per-object error on a
/// line of its own.
pub fn ipvs_status(s: &pb::IpvsState, endpoint: &str) -> String {
    let r = s.reconciler.clone().unwrap_or_default();
    let mut rows: Vec<(&str, String)> =
        vec![("Director", format!("{} (asked at {endpoint})", s.node_id))];
    rows.push((
        "Kernel",
        if s.unavailable.is_empty() {
            format!("IPVS {} (size={})", s.version, s.conn_tab_size)
        } else {
            format!("unavailable: {}", s.unavailable)
        },
    ));
    reconciler_rows(s, &r, &mut rows);
    rows.push((
        "Role",
        if r.holder {
            "VIP holder (runs the master sync daemon)".into()
        } else {
            "not the VIP holder".into()
        },
    ));
    rows.push((
        "Sync mode",
        if r.sync_mode.is_empty() {
            "none".into()
        } else {
            r.sync_mode.clone()
        },
    ));
    // The live read when there is one, else what the reconciler saw last.
    let daemons = if s.unavailable.is_empty() {
        &s.daemons
    } else {
        &r.daemons
    };
    rows.push((
        "Daemons",
        if daemons.is_empty() {
            "none".into()
        } else {
            daemons.join("; ")
        },
    ));
    if let Some(t) = &s.timeouts {
        rows.push((
            "Timeouts",
            format!("tcp {} tcpfin {} udp {}", t.tcp, t.tcp_fin, t.udp),
        ));
    }
    if s.unavailable.is_empty() {
        let managed = s.services.iter().filter(|v| v.managed).count();
        rows.push((
            "Services",
            format!(
                "{} in the kernel ({managed} managed, {} not in the config)",
                s.services.len(),
                s.services.len() - managed
            ),
        ));
    }
    rows.push((
        "Foreign",
        if r.foreign.is_empty() {
            "none".into()
        } else {
            r.foreign.join(", ")
        },
    ));
    rows.push((
        "Errors",
        if r.errors.is_empty() {
            "none".into()
        } else {
            r.errors.len().to_string()
        },
    ));
    let mut out: String = rows
        .iter()
        .map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:")))
        .collect();
    for e in &r.errors {
        out.push_str(&format!("{}: {}: {}\n", e.object, e.op, e.message));
    }
    out
}

/// The reconciler's rows of the `ipvs` report: enabled or not, and if so what it last did.
fn reconciler_rows(
    s: &pb::IpvsState,
    r: &pb::IpvsReconcilerStatus,
    rows: &mut Vec<(&str, String)>,
) {
    if !r.enabled {
        rows.push((
            "Reconciler",
            "disabled ([ipvs] enabled = false in the director config)".into(),
        ));
    } else {
        rows.push((
            "Reconciler",
            if r.unavailable.is_empty() {
                "enabled".into()
            } else {
                format!("enabled, cannot program the kernel: {}", r.unavailable)
            },
        ));
        let behind = if r.revision < s.config_revision {
            " (behind)"
        } else {
            ""
        };
        rows.push((
            "Revision",
            format!(
                "reconciled {}, config {}{behind}",
                r.revision, s.config_revision
            ),
        ));
        rows.push((
            "Passes",
            format!(
                "{} full, {} incremental",
                r.full_passes, r.incremental_passes
            ),
        ));
        rows.push((
            "Last pass",
            match r.last_pass_ms {
                0 => "none yet".into(),
                ms => format!(
                    "{}, {:.3} ms, {} ops ({} in total)",
                    rfc3339(ms, true),
                    r.last_pass_us as f64 / 1000.0,
                    r.last_ops,
                    r.total_ops
                ),
            },
        ));
        if r.last_change_us > 0 {
            rows.push((
                "Last edit",
                format!(
                    "in the kernel {:.3} ms after this director applied it",
                    r.last_change_us as f64 / 1000.0
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(v: [u64; 10]) -> Option<pb::IpvsStats> {
        Some(pb::IpvsStats {
            conns: v[0],
            inpkts: v[1],
            outpkts: v[2],
            inbytes: v[3],
            outbytes: v[4],
            cps: v[5],
            inpps: v[6],
            outpps: v[7],
            inbps: v[8],
            outbps: v[9],
        })
    }

    fn kdest(address: &str, port: u32, stats: [u64; 10]) -> pb::IpvsDest {
        pb::IpvsDest {
            address: address.into(),
            port,
            forward: "route".into(),
            weight: 1,
            stats: st(stats),
            ..Default::default()
        }
    }

    fn ksvc(key: &str, stats: [u64; 10], dests: Vec<pb::IpvsDest>) -> pb::IpvsService {
        pb::IpvsService {
            key: key.into(),
            scheduler: "wlc".into(),
            managed: true,
            stats: st(stats),
            dests,
            ..Default::default()
        }
    }

    /// A kernel table in no particular order; ipvsadm sorts services and destinations.
    fn kernel_state() -> pb::IpvsState {
        let big = [
            99_999_999,
            100_000_000,
            999_999_999,
            5_000_000_000,
            123_456_789_012_345,
            1,
            2,
            3,
            4,
            5,
        ];
        let zero = [0; 10];
        pb::IpvsState {
            node_id: 3,
            config_revision: 9,
            version: "1.2.1".into(),
            conn_tab_size: 4096,
            services: vec![
                ksvc(
                    "fwmark/5",
                    [100_000_000_000, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                    vec![kdest("10.0.2.1", 0, zero)],
                ),
                ksvc(
                    "udp/[2001:db8::1]:53",
                    big,
                    vec![kdest("2001:db8::10", 53, big)],
                ),
                ksvc("tcp/10.0.0.1:8080", zero, vec![]),
                ksvc("fwmark6/3", [1; 10], vec![]),
                ksvc(
                    "tcp/10.0.0.1:80",
                    [12, 345, 0, 123_456_789, 0, 2, 30, 0, 4000, 0],
                    vec![
                        kdest(
                            "10.0.1.2",
                            8080,
                            [5, 145, 0, 123_456_689, 0, 0, 10, 0, 0, 0],
                        ),
                        kdest(
                            "10.0.1.1",
                            80,
                            [7, 200, 0, 100, 0, 123_456_789, 20, 0, 150_000_000, 0],
                        ),
                    ],
                ),
                ksvc("sctp/192.168.100.200:65535", zero, vec![]),
            ],
            ..Default::default()
        }
    }

    fn keyed(s: &pb::IpvsState) -> Vec<(ServiceKey, &pb::IpvsService)> {
        s.services
            .iter()
            .map(|v| (v.key.parse().unwrap(), v))
            .collect()
    }

    /// The text after lvsctl's first line, which names the director.
    fn after_header(text: &str, header: &str) -> String {
        let (first, rest) = text.split_once('\n').unwrap();
        assert_eq!(first, header);
        rest.to_string()
    }

    // The expected tables are what ipvsadm's printf formats (print_title, print_service_entry,
    // print_largenum, print_conn) produce for the same numbers, compiled and run.
    const IPVSADM_STATS: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.1:80                        12      345        0  123456K        0
  -> 10.0.1.1:80                         7      200        0      100        0
  -> 10.0.1.2:8080                       5      145        0  123456K        0
TCP  10.0.0.1:8080                       0        0        0        0        0
SCTP 192.168.100.200:65535               0        0        0        0        0
UDP  [2001:db8::1]:53             99999999  100000K  999999K    5000M     123T
  -> [2001:db8::10]:53            99999999  100000K  999999K    5000M     123T
FWM  3 IPv6                              1        1        1        1        1
FWM  5                                100G        0        0        0        0
  -> 10.0.2.1:0                          0        0        0        0        0
";

    const IPVSADM_RATE: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.1:80                         2       30        0     4000        0
  -> 10.0.1.1:80                  123456789       20        0  150000K        0
  -> 10.0.1.2:8080                       0       10        0        0        0
TCP  10.0.0.1:8080                       0        0        0        0        0
SCTP 192.168.100.200:65535               0        0        0        0        0
UDP  [2001:db8::1]:53                    1        2        3        4        5
  -> [2001:db8::10]:53                   1        2        3        4        5
FWM  3 IPv6                              1        1        1        1        1
FWM  5                                   0        0        0        0        0
  -> 10.0.2.1:0                          0        0        0        0        0
";

    const IPVSADM_STATS_EXACT: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.1:80                        12      345        0 123456789        0
  -> 10.0.1.1:80                         7      200        0      100        0
  -> 10.0.1.2:8080                       5      145        0 123456689        0
TCP  10.0.0.1:8080                       0        0        0        0        0
SCTP 192.168.100.200:65535               0        0        0        0        0
UDP  [2001:db8::1]:53             99999999 100000000 999999999 5000000000 123456789012345
  -> [2001:db8::10]:53            99999999 100000000 999999999 5000000000 123456789012345
FWM  3 IPv6                              1        1        1        1        1
FWM  5                            100000000000        0        0        0        0
  -> 10.0.2.1:0                          0        0        0        0        0
";

    const IPVSADM_RATE_ONE_SERVICE: &str = "\
Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS
  -> RemoteAddress:Port
TCP  10.0.0.1:80                         2       30        0     4000        0
  -> 10.0.1.1:80                  123456789       20        0  150000K        0
  -> 10.0.1.2:8080                       0       10        0        0        0
";

    #[test]
    fn kernel_tables_match_ipvsadm() {
        let s = kernel_state();
        let k = keyed(&s);
        let header = "Kernel IPVS table of director 3 (asked at 127.0.0.1:7001)";
        let table = |view, exact| kernel_table(&s, &k, "127.0.0.1:7001", view, exact, true);
        assert_eq!(
            after_header(&table(KernelView::Stats, false), header),
            IPVSADM_STATS
        );
        assert_eq!(
            after_header(&table(KernelView::Rate, false), header),
            IPVSADM_RATE
        );
        assert_eq!(
            after_header(&table(KernelView::Stats, true), header),
            IPVSADM_STATS_EXACT
        );
        // One service asked for: no version line, as `ipvsadm -Ln --rate -t ...`.
        let one: Vec<_> = k
            .iter()
            .filter(|(key, _)| key.to_string() == "tcp/10.0.0.1:80")
            .cloned()
            .collect();
        let text = kernel_table(&s, &one, "127.0.0.1:7001", KernelView::Rate, false, false);
        assert_eq!(after_header(&text, header), IPVSADM_RATE_ONE_SERVICE);
    }

    #[test]
    fn largenum_scales_like_ipvsadm() {
        let cases = [
            (0, "        0"),
            (99_999_999, " 99999999"),
            (100_000_000, "  100000K"),
            (999_999_999, "  999999K"),
            (1_000_000_000, "    1000M"),
            (99_999_999_999, "   99999M"),
            (100_000_000_000, "     100G"),
            (99_999_999_999_999, "   99999G"),
            (100_000_000_000_000, "     100T"),
            (u64::MAX, "18446744T"),
        ];
        for (v, want) in cases {
            assert_eq!(largenum(v, false), want, "{v}");
        }
        assert_eq!(largenum(12, true), "       12");
        assert_eq!(largenum(12_345_678, true), " 12345678");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(u64::MAX, true), " 18446744073709551615");
    }

    fn conn(p: &str, e: u32, state: &str, c: &str, v: &str, r: &str, origin: &str) -> pb::Conn {
        pb::Conn {
            protocol: p.into(),
            client_addr: c.into(),
            virtual_addr: v.into(),
            real_addr: r.into(),
            state: state.into(),
            expires_s: e,
            origin: origin.into(),
            ..Default::default()
        }
    }

    const IPVSADM_CONNS: &str = "\
IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:58  ESTABLISHED 192.168.10.5:54321 10.0.0.1:80        10.0.1.1:80
UDP 04:47  UDP         192.168.10.6:41394 10.0.0.2:53        10.0.1.2:53
TCP 60:00  NONE        192.168.10.5:0     10.0.0.1:80        10.0.1.1:80
TCP 00:59  FIN_WAIT    [2001:db8::100]:50000 [2001:db8::1]:443  [2001:db8::1:1]:443
";

    #[test]
    fn conns_look_like_ipvsadm_lnc() {
        let mut l = pb::ConnList {
            node_id: 3,
            file: "/proc/net/ip_vs_conn".into(),
            conns: vec![
                conn(
                    "TCP",
                    898,
                    "ESTABLISHED",
                    "192.168.10.5:54321",
                    "10.0.0.1:80",
                    "10.0.1.1:80",
                    "",
                ),
                conn(
                    "UDP",
                    287,
                    "UDP",
                    "192.168.10.6:41394",
                    "10.0.0.2:53",
                    "10.0.1.2:53",
                    "",
                ),
                conn(
                    "TCP",
                    3600,
                    "NONE",
                    "192.168.10.5:0",
                    "10.0.0.1:80",
                    "10.0.1.1:80",
                    "",
                ),
                conn(
                    "TCP",
                    59,
                    "FIN_WAIT",
                    "[2001:db8::100]:50000",
                    "[2001:db8::1]:443",
                    "[2001:db8::1:1]:443",
                    "",
                ),
            ],
            ..Default::default()
        };
        let text = conns(&l, "127.0.0.1:7003");
        assert_eq!(
            after_header(
                &text,
                "Connections of director 3 (asked at 127.0.0.1:7003; /proc/net/ip_vs_conn)"
            ),
            IPVSADM_CONNS
        );
        // With the Origin column the destination is padded and the origin follows.
        l.file = "/proc/net/ip_vs_conn_sync".into();
        l.conns.truncate(2);
        l.conns[0].origin = "local".into();
        l.conns[1].origin = "sync".into();
        let text = conns(&l, "127.0.0.1:7003");
        assert_eq!(
            text,
            "\
Connections of director 3 (asked at 127.0.0.1:7003; /proc/net/ip_vs_conn_sync)
IPVS connection entries
pro expire state       source             virtual            destination        origin
TCP 14:58  ESTABLISHED 192.168.10.5:54321 10.0.0.1:80        10.0.1.1:80        LOCAL
UDP 04:47  UDP         192.168.10.6:41394 10.0.0.2:53        10.0.1.2:53        SYNC
"
        );
    }

    #[test]
    fn ipvs_status_report() {
        let mut s = kernel_state();
        s.services[1].managed = false;
        s.daemons = vec!["backup eth1 syncid 7".into()];
        s.timeouts = Some(pb::IpvsTimeouts {
            tcp: 900,
            tcp_fin: 120,
            udp: 300,
        });
        s.reconciler = Some(pb::IpvsReconcilerStatus {
            enabled: true,
            revision: 8,
            full_passes: 34,
            incremental_passes: 5,
            last_pass_ms: 1_500,
            last_pass_us: 1_234,
            last_ops: 3,
            total_ops: 120,
            last_change_us: 2_500,
            errors: vec![pb::IpvsObjectError {
                object: "service[tcp/10.0.0.1:80]".into(),
                op: "add service".into(),
                message:
                    "No such file or directory (is the scheduler module ip_vs_twos available?)"
                        .into(),
                since_ms: 1_000,
            }],
            foreign: vec!["udp/[2001:db8::1]:53".into()],
            daemons: vec!["stale".into()],
            sync_mode: "multicast".into(),
            holder: false,
            unavailable: String::new(),
        });
        assert_eq!(
            ipvs_status(&s, "127.0.0.1:7001"),
            "\
Director:   3 (asked at 127.0.0.1:7001)
Kernel:     IPVS 1.2.1 (size=4096)
Reconciler: enabled
Revision:   reconciled 8, config 9 (behind)
Passes:     34 full, 5 incremental
Last pass:  1970-01-01T00:00:01.500Z, 1.234 ms, 3 ops (120 in total)
Last edit:  in the kernel 2.500 ms after this director applied it
Role:       not the VIP holder
Sync mode:  multicast
Daemons:    backup eth1 syncid 7
Timeouts:   tcp 900 tcpfin 120 udp 300
Services:   6 in the kernel (5 managed, 1 not in the config)
Foreign:    udp/[2001:db8::1]:53
Errors:     1
service[tcp/10.0.0.1:80]: add service: No such file or directory (is the scheduler module ip_vs_twos available?)
"
        );

        // No IPVS in this kernel: the reasons, and nothing else to show.
        let s = pb::IpvsState {
            node_id: 1,
            unavailable: "IPVS is not available: modprobe ip_vs".into(),
            reconciler: Some(pb::IpvsReconcilerStatus {
                enabled: true,
                unavailable: "IPVS is not available: modprobe ip_vs".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = ipvs_status(&s, "a:1");
        assert!(
            text.contains("Kernel:     unavailable: IPVS is not available: modprobe ip_vs\n"),
            "{text}"
        );
        assert!(text.contains(
            "Reconciler: enabled, cannot program the kernel: IPVS is not available: modprobe ip_vs\n"
        ));
        assert!(text.contains("Last pass:  none yet\n"));
        assert!(text.ends_with("Errors:     none\n"), "{text}");
        assert!(!text.contains("Services:"));

        let s = pb::IpvsState {
            reconciler: Some(pb::IpvsReconcilerStatus::default()),
            ..Default::default()
        };
        assert!(ipvs_status(&s, "a:1")
            .contains("Reconciler: disabled ([ipvs] enabled = false in the director config)\n"));
    }
}
