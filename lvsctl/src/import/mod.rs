//! `lvsctl import KIND FILE`: turns `ipvsadm-save` output (module `ipvsadm`) or a
//! keepalived.conf (module [`keepalived`]) into the TOML that `lvsctl apply` takes, with the
//! warnings on stderr.

use anyhow::{bail, Context, Result};
use cluster_core::model::Config;

mod ipvsadm;
pub mod keepalived;

pub use ipvsadm::{ipvsadm, RuleError};

/// A config read from ipvsadm rules or a keepalived.conf, with one warning per thing left out.
#[derive(Debug, Default)]
pub struct Imported {
    pub config: Config,
    pub warnings: Vec<String>,
}

/// `lvsctl import KIND FILE`: the TOML on stdout, warnings on stderr; fails if what was read
/// does not validate (naming the field and the value).
pub fn run(kind: &str, file: &str) -> Result<String> {
    let name = if file == "-" { "<stdin>" } else { file };
    let (imported, left_out) = match kind {
        "ipvsadm" => (ipvsadm(name, &read_input(file)?), "lines left out"),
        "keepalived" => {
            let im = if file == "-" {
                let text = read_input(file)?;
                // Includes of standard input are relative to the current directory.
                keepalived::from_text(&keepalived::Fs, name, std::path::Path::new(""), &text)
            } else {
                keepalived::from_file(std::path::Path::new(file))
            };
            (im?, "warnings")
        }
        other => bail!("KIND: {other:?} is not supported (expected ipvsadm or keepalived)"),
    };
    render(kind, name, &imported, left_out)
}

fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading standard input")
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {file}"))
    }
}

/// Prints the warnings to stderr and gives the validated config as TOML with a summary line.
fn render(kind: &str, name: &str, imported: &Imported, left_out: &str) -> Result<String> {
    for w in &imported.warnings {
        eprintln!("lvsctl: warning: {w}");
    }
    let config = cluster_core::validate::config(&imported.config)
        .map_err(|e| anyhow::anyhow!("{name}: the imported rules do not validate: {e}"))?;
    let services = config.services.len();
    let reals: usize = config.services.values().map(|s| s.reals.len()).sum();
    let vips = if config.vip_groups.is_empty() {
        String::new()
    } else {
        format!(", {} VIP groups", config.vip_groups.len())
    };
    Ok(format!(
        "# lvsctl import {kind} {name}: {services} services, {reals} real servers{vips}, {} {left_out}\n{}",
        imported.warnings.len(),
        config.to_toml()
    ))
}
