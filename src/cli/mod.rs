//! The command line: `serve` runs the collector; the other commands are clients of it or
//! offline tools.

mod bench;
mod bench_alerts;
mod bench_otlp;
mod chain;
pub(crate) mod client;
mod recover;
mod rules;
mod search;
mod ship;
mod token;
mod verify;
mod webhook;
mod wrap;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

#[derive(Parser)]
#[command(
    name = "mcp-audit",
    version,
    about = "Audit log and anomaly detection for AI-agent tool calls (MCP)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the collector (gRPC ingest, WAL, index, HTTP API).
    Serve {
        /// TOML config file.
        #[arg(long, env = "MCP_AUDIT_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        grpc_listen: Option<String>,
        #[arg(long)]
        http_listen: Option<String>,
        /// TLS certificate chain (PEM) for both listeners (`tls.cert`); needs --tls-key.
        #[arg(long, value_name = "PATH")]
        tls_cert: Option<PathBuf>,
        /// The certificate's private key (PEM) (`tls.key`).
        #[arg(long, value_name = "PATH")]
        tls_key: Option<PathBuf>,
        /// CA (PEM) that client certificates must chain to: clients must present one (mTLS,
        /// `tls.client_ca`).
        #[arg(long, value_name = "PATH")]
        tls_client_ca: Option<PathBuf>,
        /// Fill a fresh instance with a day of generated MCP traffic, attacks included.
        #[arg(long)]
        demo: bool,
    },
    /// Send JSON Lines events (files or stdin) to the collector over gRPC.
    Ship(ship::Args),
    /// Search stored events.
    Search(search::Args),
    /// Generate realistic MCP traffic, attacks included, and ship it.
    Demo(bench::DemoArgs),
    /// Load generator: ships generated ~1 KB events and reports throughput and ack latency.
    Bench(bench::Args),
    /// Create, list and revoke collector tokens (in the data dir; a running collector sees
    /// changes within a second).
    #[command(subcommand)]
    Token(token::Command),
    /// Check every tenant's tamper-evident hash chain and the WAL, changing nothing (collector
    /// stopped). Exit 1 on damage or gaps, 2 when the only gaps are ones `recover` recorded.
    Verify(verify::Args),
    /// Salvage a damaged WAL (collector stopped): keep every readable record, record the gap.
    Recover(recover::Args),
    /// Signed history: export the public key that verifies the signed checkpoints.
    #[command(subcommand)]
    Chain(chain::Command),
    /// Check rule files, or try them on events offline.
    #[command(subcommand)]
    Rules(rules::Command),
    /// Check a delivered webhook's signature, or send a test notification.
    #[command(subcommand)]
    Webhook(webhook::Command),
    /// Audit proxy in front of an MCP server (stdio child or streamable-HTTP upstream): relays
    /// every message unchanged and ships each call, scrubbed, to the collector.
    Wrap(wrap::Args),
    /// Remove secrets from JSON Lines offline (stdout), with a summary per kind (stderr).
    Scrub {
        /// Input file; `-` or nothing for stdin.
        file: Option<PathBuf>,
        /// Data dir whose installation key to use, so fingerprints match the collector's.
        #[arg(long, env = "MCP_AUDIT_DATA_DIR", default_value = "./mcp-audit-data")]
        data_dir: PathBuf,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve {
                config,
                data_dir,
                grpc_listen,
                http_listen,
                tls_cert,
                tls_key,
                tls_client_ca,
                demo,
            } => {
                let flags = Overrides {
                    data_dir,
                    grpc_listen,
                    http_listen,
                    tls_cert,
                    tls_key,
                    tls_client_ca,
                    demo,
                };
                serve(config, flags).await.map(|()| ExitCode::SUCCESS)
            }
            Command::Ship(args) => ship::run(args).await,
            Command::Search(args) => search::run(args).await,
            Command::Demo(args) => bench::demo(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Token(cmd) => token::run(cmd),
            Command::Verify(args) => verify::run(args),
            Command::Recover(args) => recover::run(args),
            Command::Chain(cmd) => chain::run(cmd),
            Command::Rules(cmd) => rules::run(cmd),
            Command::Webhook(cmd) => webhook::run(cmd).await,
            Command::Scrub { file, data_dir } => scrub(file, data_dir),
            Command::Wrap(args) => wrap::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCP_AUDIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

async fn serve(file: Option<PathBuf>, flags: Overrides) -> anyhow::Result<()> {
    let config = Config::load(file.as_deref(), std::env::vars(), &flags)?;
    let listeners = crate::app::Listeners::bind(&config).await?;
    crate::app::run(config, listeners, shutdown_signal()).await
}

/// Completes on SIGINT or SIGTERM (the collector's and `wrap --listen`'s graceful stop).
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn scrub(file: Option<PathBuf>, data_dir: PathBuf) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let key_path = data_dir.join(crate::scrub::KEY_FILE);
    let key = if key_path.exists() {
        crate::scrub::load_or_create_key(&key_path)?
    } else {
        eprintln!("note: no installation key at {}; using a one-off key, so fingerprints will not match a collector's (pass --data-dir)", key_path.display());
        rand::random()
    };
    let scrubber = crate::scrub::Scrubber::new(&crate::scrub::ScrubConfig::default(), key)?;
    let stdout = std::io::stdout().lock();
    let summary = match file.as_deref() {
        None => crate::scrub::scrub_jsonl(&scrubber, std::io::stdin().lock(), stdout)?,
        Some(p) if p.as_os_str() == "-" => {
            crate::scrub::scrub_jsonl(&scrubber, std::io::stdin().lock(), stdout)?
        }
        Some(p) => {
            let f =
                std::fs::File::open(p).with_context(|| format!("cannot open {}", p.display()))?;
            crate::scrub::scrub_jsonl(&scrubber, std::io::BufReader::new(f), stdout)?
        }
    };
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}
