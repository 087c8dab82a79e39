//! The real-kernel lab (`tests/lab`), in one test binary, in two boots of the lab VM that run side
//! by side (each test takes the `lab_ipvs` turn, `lvs_tests::serial`): the lab's smoke check and
//! the IPVS client self-test share one boot (`kernel`), every IPVS scenario runs in the other
//! (`ipvs`). Both use the release binaries.

mod ipvs;
mod kernel;
