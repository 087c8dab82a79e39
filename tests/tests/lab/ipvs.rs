//! The IPVS scenarios on a real kernel (`lab-scenario all` in the lab VM, see `lvs_tests::lab`):
//! config in every director's kernel as ipvsadm shows it, drift repair, traffic through the VIP in
//! DR and NAT, failover with connection sync, the stateless mh mode, and real-server agents with
//! load-informed weights, health checks and drain (read back with ipvsadm), and migration (a
//! keepalived.conf and ipvsadm-save rules through `lvsctl import` and `apply`). One boot runs them all;
//! the log with each scenario's report is `target/lab/lab-ipvs.log`.

#[test]
fn ipvs_lab_scenarios_pass() {
    let _turn = lvs_tests::serial::group("lab_ipvs");
    let r = lvs_tests::lab_run::run("lab-ipvs", &[], &["lab-scenario", "all"], 1800);
    r.assert_success("the IPVS lab scenarios");
    let reports: Vec<&str> = r
        .log
        .lines()
        .filter(|l| l.starts_with("SCENARIO "))
        .collect();
    assert_eq!(
        reports.len(),
        7,
        "expected seven scenario reports in {}: {reports:#?}",
        r.log_path.display()
    );
    assert!(reports.iter().all(|l| l.contains(": PASS")), "{reports:#?}");
    for l in reports {
        eprintln!("{l}");
    }
}
