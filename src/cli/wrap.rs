//! `mcp-audit wrap [OPTIONS] -- COMMAND [ARGS...]`, `mcp-audit wrap --listen ADDR --upstream URL`
//! and `mcp-audit wrap approve --pin FILE [TOOL]`: flags into [`crate::wrap::Options`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use super::client::{TlsArgs, DEFAULT_GRPC};
use crate::wrap::guard::{GuardConfig, PinFile};
use crate::wrap::observe::Context;
use crate::wrap::ship::{default_spool_dir, ShipperConfig};
use crate::wrap::{Mode, Options, DEFAULT_SPOOL_MAX_BYTES};

#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Put it in an MCP host's server config in front of the real command, e.g.\n  \
    \"command\": \"mcp-audit\", \"args\": [\"wrap\", \"--server-name\", \"fs\", \"--\", \"npx\", \"-y\", \"@modelcontextprotocol/server-filesystem\", \"/home/me\"]\n\
    Enforcement (--pin, --deny-destructive-without-consent, --policy) is off unless asked for."
)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    #[arg(long, env = "MCP_AUDIT_ENDPOINT", default_value = DEFAULT_GRPC)]
    endpoint: String,
    #[arg(long, env = "MCP_AUDIT_TOKEN")]
    token: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    /// The `server` of every event [default: the command's file name, or the upstream host].
    #[arg(long)]
    server_name: Option<String>,
    /// The `user` of events whose request names none in `_meta`.
    #[arg(long, env = "MCP_AUDIT_USER")]
    user: Option<String>,
    /// Where events wait while the collector is away [default: $XDG_STATE_HOME/mcp-audit/spool].
    #[arg(long, env = "MCP_AUDIT_SPOOL")]
    spool: Option<PathBuf>,
    /// Cap on the spool's size; events that do not fit are dropped, counted and reported.
    #[arg(long, default_value_t = DEFAULT_SPOOL_MAX_BYTES)]
    spool_max_bytes: u64,
    /// Data dir whose installation key the scrubber uses, so redaction fingerprints match a
    /// collector on this machine [default: a key kept next to the spool].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Pin each tool's definition at first call; refuse calls to a tool whose definition
    /// changed until `mcp-audit wrap approve`.
    #[arg(long, value_name = "FILE")]
    pin: Option<PathBuf>,
    /// Refuse calls to destructive tools unless the request carries the user's consent
    /// (`_meta` "io.mcp-audit/consent": allowed_once | allowed_always | auto_approved).
    #[arg(long)]
    deny_destructive_without_consent: bool,
    /// A tool that counts as consented to (repeatable), for --deny-destructive-without-consent.
    #[arg(long = "consent-tool", value_name = "TOOL")]
    consent_tools: Vec<String>,
    /// Rule file (the collector's rule language) evaluated on each call before it is made; a
    /// match refuses the call.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// HTTP mode: listen here for a streamable-HTTP MCP host (needs --upstream).
    #[arg(long, requires = "upstream", conflicts_with = "command")]
    listen: Option<String>,
    /// HTTP mode: the streamable-HTTP MCP server to forward to.
    #[arg(long, requires = "listen")]
    upstream: Option<String>,
    /// Seconds to try shipping the last events at exit before they go to the spool.
    #[arg(long, default_value_t = 3)]
    exit_flush_secs: u64,
    /// The MCP server command and its arguments (stdio mode).
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Accept the changed definition of TOOL (or of every changed tool) in a pin file.
    Approve {
        #[arg(long, value_name = "FILE")]
        pin: PathBuf,
        tool: Option<String>,
    },
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Approve { pin, tool }) = args.action {
        return approve(&pin, tool.as_deref());
    }
    let mode = match (args.listen, args.upstream) {
        (Some(listen), Some(upstream)) => Mode::Http { listen, upstream },
        _ => {
            anyhow::ensure!(
                !args.command.is_empty(),
                "give the MCP server command after `--` (stdio mode), or `--listen ADDR --upstream URL` (HTTP mode)"
            );
            Mode::Stdio {
                command: args.command,
            }
        }
    };
    let server = args.server_name.unwrap_or_else(|| match &mode {
        Mode::Stdio { command } => server_name_of(command),
        Mode::Http { upstream, .. } => url::Url::parse(upstream)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default(),
    });
    let key = crate::wrap::scrub_key(args.data_dir.as_ref())?;
    let scrubber = crate::scrub::Scrubber::new(&crate::scrub::ScrubConfig::default(), key)?;
    let opts = Options {
        mode,
        context: Context {
            server: server.clone(),
            user: args.user.unwrap_or_default(),
            transport: crate::event::Transport::Unknown,
        },
        guard: GuardConfig {
            pin: args.pin,
            deny_destructive_without_consent: args.deny_destructive_without_consent,
            consent_tools: args.consent_tools,
            policy: args.policy,
        },
        shipper: ShipperConfig {
            endpoint: args.endpoint,
            token: args.token,
            tls: args.tls.load()?,
            spool_dir: args.spool.unwrap_or_else(default_spool_dir),
            spool_max_bytes: args.spool_max_bytes,
            server,
            exit_deadline: Duration::from_secs(args.exit_flush_secs),
        },
        scrubber,
    };
    let code = crate::wrap::run(opts).await?;
    Ok(ExitCode::from(code))
}

/// A server name from its command: the package or script, not the launcher
/// (`npx -y @modelcontextprotocol/server-filesystem /tmp` → `server-filesystem`).
fn server_name_of(command: &[String]) -> String {
    const LAUNCHERS: &[&str] = &[
        "npx", "node", "uvx", "uv", "python", "python3", "bunx", "deno", "docker", "pipx",
    ];
    let base = |s: &str| {
        let s = s.rsplit('/').next().unwrap_or(s);
        s.split('@')
            .find(|p| !p.is_empty())
            .unwrap_or(s)
            .to_string()
    };
    let first = command.first().map(|c| base(c)).unwrap_or_default();
    if !LAUNCHERS.contains(&first.as_str()) {
        return first;
    }
    command
        .iter()
        .skip(1)
        .find(|a| !a.starts_with('-') && *a != "run")
        .map(|a| {
            let a = a.trim_start_matches('@');
            let name = a.rsplit('/').next().unwrap_or(a);
            name.split('@').next().unwrap_or(name).to_string()
        })
        .unwrap_or(first)
}

fn approve(pin: &Path, tool: Option<&str>) -> anyhow::Result<ExitCode> {
    let mut file = PinFile::load(pin)?;
    let approved = file.approve(tool);
    if approved.is_empty() {
        match tool {
            Some(t) => eprintln!(
                "nothing to approve: tool {t:?} has no changed definition waiting in {}",
                pin.display()
            ),
            None => eprintln!("nothing to approve in {}", pin.display()),
        }
        return Ok(ExitCode::FAILURE);
    }
    file.save(pin)?;
    for name in approved {
        println!("approved {name}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::server_name_of;

    #[test]
    fn the_server_name_is_the_package_not_the_launcher() {
        let v = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            server_name_of(&v("npx -y @modelcontextprotocol/server-filesystem /tmp")),
            "server-filesystem"
        );
        assert_eq!(
            server_name_of(&v("/usr/local/bin/github-mcp stdio")),
            "github-mcp"
        );
        assert_eq!(server_name_of(&v("python3 server.py")), "server.py");
    }
}
