//! lvsctl as a library: the CLI definition, verb dispatch and the offline parsers (import,
//! simulate), so the binary stays a one-liner and fuzz targets can reach the parsers.

pub mod agents;
pub mod args;
pub mod cli;
pub mod client;
pub mod commands;
pub mod ctx;
pub mod flags;
pub mod import;
pub mod output;
pub mod pki;
pub mod reads;
pub mod simulate;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Verb, VipVerb};
use client::Client;
use ctx::Ctx;

/// Runs lvsctl with the process arguments; the binary's whole `main`.
pub fn main() -> ExitCode {
    // `lvsctl __generate-docs OUTDIR`: man pages and completions for packaging.
    if let Some(code) = lvs_ops::docs::from_args(Cli::command) {
        return ExitCode::from(code as u8);
    }
    let cli = Cli::parse();
    if let Verb::Completions { shell } = cli.verb {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "lvsctl", &mut script);
        let mut out = std::io::stdout().lock();
        // A closed pipe is not worth an error message.
        let _ = out.write_all(&script).and_then(|_| out.flush());
        return ExitCode::SUCCESS;
    }
    if let Verb::Import { kind, file } = &cli.verb {
        return match import::run(kind, file) {
            Ok(toml) => {
                print!("{toml}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Verb::Pki(v) = &cli.verb {
        return match pki::run(v) {
            Ok(report) => {
                print!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Verb::Simulate(a) = &cli.verb {
        return simulate::run(a, cli.global.output).map_or_else(fail, |()| ExitCode::SUCCESS);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(anyhow::anyhow!("starting the async runtime: {e}")),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

fn fail(e: anyhow::Error) -> ExitCode {
    let msg = format!("{e:#}").replace('\n', "; ");
    eprintln!("lvsctl: error: {msg}");
    ExitCode::from(1)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = cli.global;
    let endpoints = flags::parse_endpoints(&g.endpoints)?;
    let tls = g.tls()?;
    let principal = g.principal.unwrap_or_else(client::default_principal);
    let mut ctx = Ctx {
        client: Client::new(endpoints, g.timeout, &principal, tls)?,
        format: g.output,
        stale: g.stale,
    };
    let ctx = &mut ctx;
    match cli.verb {
        Verb::Service(v) => commands::service(ctx, v).await,
        Verb::Real(v) => commands::real(ctx, v).await,
        Verb::List(a) => reads::list(ctx, a).await,
        Verb::Conns(a) => reads::conns(ctx, a).await,
        Verb::Ipvs => reads::ipvs(ctx).await,
        Verb::Agents => agents::agents(ctx).await,
        Verb::Weights { service } => agents::weights(ctx, service).await,
        Verb::Apply(a) => commands::apply(ctx, a).await,
        Verb::Export => reads::export(ctx).await,
        Verb::History(a) => reads::history(ctx, a).await,
        Verb::Watch(a) => reads::watch(ctx, a.from_revision).await,
        Verb::Vip(VipVerb::Set {
            name,
            interface,
            addresses,
        }) => commands::vip_set(ctx, name, interface, addresses).await,
        Verb::Vip(VipVerb::Del { name }) => commands::vip_del(ctx, name).await,
        Verb::Vip(VipVerb::List) => reads::vip_list(ctx).await,
        Verb::HealthCheck(v) => commands::health_check(ctx, v).await,
        Verb::Sync(v) => commands::sync(ctx, v).await,
        Verb::Cluster(v) => reads::cluster_verb(ctx, v).await,
        Verb::Completions { .. } | Verb::Simulate(_) | Verb::Import { .. } | Verb::Pki(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
