//! Operations glue shared by `director`, `realserver-agent` and `lvsctl`: readiness, status and
//! watchdog notifications for systemd (`notify`), and man pages plus shell completions generated
//! from each binary's clap definition (`docs`, behind a hidden `__generate-docs OUTDIR` argument),
//! and the `/metrics` endpoint of both daemons (`metrics_http`, with encoding helpers in
//! `openmetrics`), and the wall clock in Unix milliseconds (`clock`).

pub mod clock;
pub mod docs;
pub mod metrics_http;
pub mod notify;
pub mod openmetrics;
