//! `director`: one member of the replicated IPVS director cluster. Parses the command line and
//! runs the daemon (`director::run`), or one of its one-shot modes: `--check`,
//! `--release-vips`, the VIP guard, and `__generate-docs`.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use director::config::DirectorConfig;
use director::vip;
use tracing::error;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

/// A director of the LVS cluster.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Director configuration file (TOML).
    #[arg(long, short = 'c', env = "DIRECTOR_CONFIG")]
    config: PathBuf,
    /// Initialise a new cluster made of this node and the configured peers, unless this node's
    /// store already belongs to a cluster (then it is a no-op, so it is safe to repeat).
    #[arg(long)]
    bootstrap: bool,
    /// Log format; the filter comes from RUST_LOG (default info).
    #[arg(long, value_enum, default_value = "text", env = "DIRECTOR_LOG_FORMAT")]
    log_format: LogFormat,
    /// Check the configuration file and exit.
    #[arg(long)]
    check: bool,
    /// Remove the VIPs that DATA_DIR/vips-held.json still lists (left by a director killed
    /// together with its guard) and exit: for systemd's ExecStopPost. Touches no other address;
    /// refuses while a director runs on DATA_DIR; exits 1 if a listed VIP is still present.
    #[arg(long, conflicts_with_all = ["bootstrap", "check"])]
    release_vips: bool,
    /// Serve and dial gRPC in plaintext with no client authentication, instead of the mTLS the
    /// `[tls]` section configures. For labs only: anyone who reaches the ports controls the
    /// cluster.
    #[arg(long, env = "DIRECTOR_INSECURE", value_parser = clap::builder::BoolishValueParser::new())]
    insecure: bool,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,openraft=warn,sled=warn,h2=warn,tower=warn")
    });
    // Colour only on a terminal: journald and log files get plain text.
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

/// `--check`: the key material is read here and at start, not by every config load, so
/// `--release-vips` works even when the certificate files are gone.
fn check(args: &Args, cfg: &DirectorConfig) -> i32 {
    if let Err(e) = cfg.load_tls() {
        eprintln!("director: error: {}: {e:#}", args.config.display());
        return 2;
    }
    println!("{}: ok", args.config.display());
    0
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(vip::guard::GUARD_ARG) {
        std::process::exit(vip::guard::run(&argv[2..]));
    }
    if let Some(code) = lvs_ops::docs::from_args(<Args as clap::CommandFactory>::command) {
        std::process::exit(code);
    }
    let args = Args::parse();
    init_logging(args.log_format);
    let cfg = match DirectorConfig::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("director: error: {e:#}");
            std::process::exit(2);
        }
    };
    if args.release_vips {
        std::process::exit(vip::release::run(&cfg.data_dir));
    }
    if args.check {
        std::process::exit(check(&args, &cfg));
    }
    let opts = director::Options {
        bootstrap: args.bootstrap,
        insecure: args.insecure,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(director::run(opts, cfg)) {
        error!("{e:#}");
        eprintln!("director: error: {e:#}");
        std::process::exit(1);
    }
}
