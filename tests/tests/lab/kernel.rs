//! The lab's own smoke check (`tests/lab/smoke.sh`: IPVS with every scheduler, IPVS per network
//! namespace, veth + bridge between three namespaces, nftables, the project's binaries) and the
//! IPVS netlink client's self-test (`director/examples/ipvs_selftest.rs`: every operation, read
//! back and compared, errors included), one after the other in one boot of the lab VM: the boot
//! is the larger part of the smoke check, and this boot runs beside the scenarios' (`ipvs.rs`).
//! The log is `target/lab/lab-kernel.log`.

use std::path::PathBuf;
use std::sync::OnceLock;

use lvs_tests::lab_run::{self, LabRun};

/// The one boot both tests read: the first test to get here runs it, the other waits for it.
fn kernel_run() -> &'static LabRun {
    static RUN: OnceLock<LabRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let selftest = lab_run::release_dir().join("examples/ipvs_selftest");
        lab_run::run(
            "lab-kernel",
            &[PathBuf::from("tests/lab/smoke.sh"), selftest],
            // The self-test runs whatever the smoke check says; each test reads its own exit line.
            &[
                "sh",
                "-c",
                "smoke.sh; echo \"SMOKE EXIT $?\"; ipvs_selftest; echo \"SELFTEST EXIT $?\"",
            ],
            900,
        )
    })
}

#[test]
fn lab_smoke_passes() {
    let _turn = lvs_tests::serial::group("lab_ipvs");
    let r = kernel_run();
    assert!(
        r.log.contains("SMOKE OK") && r.log.contains("SMOKE EXIT 0"),
        "the lab smoke check failed (no SMOKE OK and SMOKE EXIT 0 in the log).\n{}",
        r.failure_report()
    );
}

#[test]
fn ipvs_client_selftest_passes() {
    let _turn = lvs_tests::serial::group("lab_ipvs");
    let r = kernel_run();
    assert!(
        r.log.contains(" checks passed, 0 failed") && r.log.contains("SELFTEST EXIT 0"),
        "the IPVS client self-test failed (no \"checks passed, 0 failed\" and SELFTEST EXIT 0 in \
         the log).\n{}",
        r.failure_report()
    );
}
