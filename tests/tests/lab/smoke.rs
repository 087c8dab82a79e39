//! The real-kernel lab works: `tests/lab/run.sh` boots the lab VM (or uses the host when its
//! kernel has IPVS) with the release binaries and runs `tests/lab/smoke.sh` there (IPVS with every
//! scheduler, IPVS per network namespace, veth + bridge between three namespaces, nftables, the
//! project's binaries). Needs root and the release binaries (`cargo build --release`).

use std::path::PathBuf;

#[test]
fn lab_smoke_passes() {
    let _turn = lvs_tests::serial::group("lab_smoke");
    let r = lvs_tests::lab_run::run(
        "lab-smoke",
        &[PathBuf::from("tests/lab/smoke.sh")],
        &["smoke.sh"],
        600,
    );
    r.assert_success("the lab smoke check");
    assert!(
        r.log.contains("SMOKE OK"),
        "run.sh exited 0 but the log {} has no SMOKE OK",
        r.log_path.display()
    );
}
