//! What every verb shares: the client, the output format, config reads and pipe-safe printing.

use std::io::Write;

use anyhow::{anyhow, Result};
use cluster_core::model::Config;
use cluster_core::Change;
use lvs_proto::convert::{change_from_pb, config_from_pb};
use lvs_proto::v1 as pb;
use tonic::Code;

use crate::client::{admin, Call, Client, RpcError};
use crate::flags::OutputFormat;
use crate::output;
use crate::output::json::{self, WriteDoc};

pub struct Ctx {
    pub client: Client,
    pub format: OutputFormat,
    pub stale: bool,
}

/// A configuration as one director served it.
pub struct Snapshot {
    pub config: Config,
    pub revision: u64,
    pub node_id: u64,
}

impl Ctx {
    pub fn json(&self) -> bool {
        self.format == OutputFormat::Json
    }

    /// Writes to stdout; a closed pipe (`lvsctl history | head`) ends the program quietly.
    pub fn print(&self, text: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            Err(e) => Err(anyhow!("writing output: {e}")),
        }
    }

    pub async fn config(&mut self, stale: bool) -> Result<Snapshot> {
        self.config_of(stale, &[]).await
    }

    /// Like `config`, with only the `services` given (all when empty).
    pub async fn config_of(
        &mut self,
        stale: bool,
        services: &[cluster_core::model::ServiceKey],
    ) -> Result<Snapshot> {
        let services: Vec<String> = services.iter().map(|k| k.to_string()).collect();
        let resp = self
            .client
            .call(
                Call::Read,
                pb::GetConfigRequest { stale, services },
                |ch, r| async move { admin(ch).get_config(r).await },
            )
            .await?;
        let config = config_from_pb(&resp.config.unwrap_or_default()).map_err(|e| {
            anyhow!(
                "director {} sent a configuration lvsctl cannot read: {e}",
                resp.node_id
            )
        })?;
        Ok(Snapshot {
            config,
            revision: resp.revision,
            node_id: resp.node_id,
        })
    }

    /// Prints a write's outcome in the chosen format.
    pub fn print_write(&self, resp: &pb::WriteResponse) -> Result<()> {
        let changes: Vec<Change> = resp.changes.iter().map(change_from_pb).collect();
        if self.json() {
            self.print(&json::pretty(&WriteDoc {
                revision: resp.revision,
                changes: &changes,
            }))
        } else {
            self.print(&output::write_result(resp.revision, &changes))
        }
    }
}

/// The error a read-modify-write gets when someone else wrote in between.
pub fn is_revision_conflict(e: &anyhow::Error) -> bool {
    e.downcast_ref::<RpcError>().is_some_and(|RpcError(s)| {
        s.code() == Code::FailedPrecondition && s.message().starts_with("expected_revision")
    })
}

/// A NotFound error worded like the server's, for objects lvsctl looks up itself.
pub fn not_found(field: String, message: String) -> anyhow::Error {
    RpcError(tonic::Status::not_found(format!("{field}: {message}"))).into()
}
