//! The real-kernel lab (`tests/lab`), in one test binary: the lab's own smoke check (`smoke`), the
//! IPVS client self-test and every IPVS scenario (`ipvs`). Each boots the lab VM with the release
//! binaries. Each file's tests take their own turn (`lvs_tests::serial`), as when each file was a
//! binary of its own: the two `ipvs` boots share the machine, the smoke boot runs alone.

mod ipvs;
mod smoke;
