//! Human-readable rendering, one printer per kind of view, and the `--output json` documents.
//!
//! * `table`: the column layout every text view uses.
//! * `config`: the ipvsadm-style service list and VIP groups.
//! * `changes`: single writes, `apply` summaries and history entries.
//! * `cluster`: `cluster status` and the member table.
//! * `kernel`: kernel IPVS state as ipvsadm prints it (`list --stats|--rate`, `conns`, `ipvs`).
//! * [`json`]: the `--output json` documents.
//! * `time`, `toml_error`: times and TOML errors as every view writes them.

mod changes;
mod cluster;
mod config;
pub mod json;
mod kernel;
mod table;
mod time;
mod toml_error;

pub use changes::{apply_result, changes, history_entry, write_result};
pub use cluster::{members, status};
pub use config::{forward_word, list, real_line, service_line, vip_groups};
pub use kernel::{conns, ipvs_status, kernel_table, largenum, KernelView};
pub use table::table;
pub use time::rfc3339;
pub use toml_error::toml_error;
