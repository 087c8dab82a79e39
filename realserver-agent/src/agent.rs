//! `realserver-agent run`: wires the collector, probes, address discovery, director stream and
//! control socket together and runs them until SIGTERM/SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tracing::info;

use crate::collect;
use crate::config::Config;
use crate::sample::Sampler;
use crate::shared::Shared;
use crate::{client, control, metrics};

pub async fn run(cfg: Config, tls: Option<lvs_proto::tls::Tls>) -> Result<()> {
    if tls.is_none() {
        tracing::warn!(
            "--insecure: reports go to the directors in plaintext with no certificate; anyone \
             on the path can read or forge them"
        );
    }
    cfg.require_directors()?;
    std::fs::create_dir_all(&cfg.state_dir)
        .with_context(|| format!("creating state_dir {}", cfg.state_dir.display()))?;
    let shared = Arc::new(Shared::new(&cfg)?);
    let mut sampler = Sampler::new(PathBuf::from("/proc"), cfg.ports.clone());
    // A first sample sets the CPU baseline, so the first report covers a real interval.
    sampler.sample()?;
    let listener = control::bind(&cfg.control_socket)?;
    let metrics_listener = match cfg.metrics_listen {
        Some(a) => Some(metrics::bind(a).await?),
        None => None,
    };
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;

    info!(
        agent = %cfg.name,
        directors = ?cfg.directors,
        interval_ms = cfg.interval_ms(),
        draining = shared.draining(),
        socket = %cfg.control_socket.display(),
        "agent starting"
    );
    let (tx, rx) = watch::channel(None);
    if cfg.addresses.is_none() {
        tokio::spawn(collect::discover_addresses(shared.clone(), cfg.vips()));
    }
    tokio::spawn(collect::probes(shared.clone(), cfg.probes.clone()));
    tokio::spawn(collect::reports(shared.clone(), sampler, tx));
    tokio::spawn(client::run(shared.clone(), rx, tls));
    tokio::spawn(control::serve(listener, shared.clone()));
    if let Some(l) = metrics_listener {
        tokio::spawn(metrics::serve(l, shared.clone()));
    }
    // The control socket is bound and the stream to the directors is being opened.
    lvs_ops::notify::ready(&format!(
        "agent {} reporting to {}",
        cfg.name,
        cfg.directors.join(", ")
    ));
    lvs_ops::notify::spawn_watchdog();

    let sig = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = sig, "stopping");
    lvs_ops::notify::stopping(&format!("{sig}: stopping"));
    let _ = std::fs::remove_file(&cfg.control_socket);
    Ok(())
}
