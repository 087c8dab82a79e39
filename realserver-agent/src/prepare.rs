//! `setup` and `teardown`: plan against the live host, apply one change at a time, print one
//! line per change, and keep the state file current after each change.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};

use crate::host::{self, Net};
use crate::setup::{self, Wanted};

/// Where and how a plan's changes are applied.
struct Apply<'a> {
    net: &'a Net,
    links: &'a [host::Link],
    state_file: &'a Path,
    dry_run: bool,
}

impl Apply<'_> {
    /// Applies `changes` in order, recording each applied one in `state` with `record`.
    async fn run(
        &self,
        changes: &[setup::Change],
        state: &mut setup::SetupState,
        record: fn(&mut setup::SetupState, &setup::Change),
    ) -> Result<()> {
        for c in changes {
            if self.dry_run {
                println!("would: {c}");
                continue;
            }
            let applied = self.net.apply(c, self.links).await;
            if applied.is_ok() {
                record(state, c);
            }
            // Whatever happened, the state file must describe what is applied so far.
            setup::save_state(self.state_file, state)?;
            applied?;
            println!("{c}");
        }
        Ok(())
    }
}

/// Prepares the host for `want`; `dry_run` prints the plan and changes nothing.
pub async fn setup(want: &Wanted, state_file: &Path, dry_run: bool) -> Result<()> {
    if want.vips.is_empty() {
        return Err(anyhow!(
            "no VIPs: give --vip ADDR (or `vips` in the config's [setup] section)"
        ));
    }
    let mut state = setup::load_state(state_file)?.unwrap_or_default();
    let net = Net::connect()?;
    let names: Vec<String> = net.links().await?.into_iter().map(|l| l.name).collect();
    let modules = setup::tunnel_modules(want, &names);
    for (module, dev) in &modules {
        if dry_run {
            println!("would load module {module} (creates {dev})");
            continue;
        }
        host::modprobe(module).with_context(|| {
            format!("TUN mode needs the {module} kernel module, which creates {dev}")
        })?;
        println!("loaded module {module} ({dev})");
    }
    if dry_run && !modules.is_empty() {
        println!("(the rest of the plan depends on the devices those modules create)");
        return Ok(());
    }

    let keys: Vec<String> = setup::wanted_sysctls(want)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let (current, links) = net.host_state(&keys).await?;
    let plan = setup::plan_setup(want, &current, &state)?;
    for n in &plan.notes {
        eprintln!("{n}");
    }
    let ctx = Apply {
        net: &net,
        links: &links,
        state_file,
        dry_run,
    };
    ctx.run(&plan.changes, &mut state, setup::record_setup)
        .await?;
    if dry_run {
        return Ok(());
    }
    setup::finish_setup(&mut state, want);
    setup::save_state(state_file, &state)?;
    if plan.changes.is_empty() {
        let mut by_dev: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for v in &want.vips {
            by_dev
                .entry(setup::vip_device(want.mode, *v))
                .or_default()
                .push(v.to_string());
        }
        let vips: Vec<String> = by_dev
            .iter()
            .map(|(d, v)| format!("{} on {d}", v.join(", ")))
            .collect();
        println!(
            "unchanged: {}; {} sysctls already set",
            vips.join("; "),
            keys.len()
        );
    }
    Ok(())
}

/// Undoes what setup recorded in `state_file`, then removes the file.
pub async fn teardown(state_file: &Path, dry_run: bool) -> Result<()> {
    let Some(mut state) = setup::load_state(state_file)? else {
        println!(
            "unchanged: no state file {}, nothing to undo",
            state_file.display()
        );
        return Ok(());
    };
    let keys: Vec<String> = state.sysctls.keys().cloned().collect();
    let net = Net::connect()?;
    let (current, links) = net.host_state(&keys).await?;
    let plan = setup::plan_teardown(&current, &state);
    for n in &plan.notes {
        println!("note: {n}");
    }
    let ctx = Apply {
        net: &net,
        links: &links,
        state_file,
        dry_run,
    };
    ctx.run(&plan.changes, &mut state, setup::record_teardown)
        .await?;
    if dry_run {
        return Ok(());
    }
    std::fs::remove_file(state_file)
        .with_context(|| format!("removing state file {}", state_file.display()))?;
    if plan.changes.is_empty() {
        println!("unchanged: nothing left to undo");
    }
    Ok(())
}
