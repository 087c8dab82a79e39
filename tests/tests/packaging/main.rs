//! What ships and how it is run, in one test binary: generated docs (`docs`), the systemd units
//! (`systemd_units`) and the notify protocol (`notify`), the example site configs
//! (`site_configs`), a three-director smoke test (`smoke`) and lvsctl end to end
//! (`lvsctl_cli`). Each file's tests take their own turn (`lvs_tests::serial`), so files never
//! overlap, as when each was a binary of its own.

mod docs;
mod lvsctl_cli;
mod notify;
mod site_configs;
mod smoke;
mod systemd_units;
