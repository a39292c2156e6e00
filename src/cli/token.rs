//! `mcp-audit token create|list|revoke`: collector tokens, managed in the data dir (a running
//! collector sees changes within a second).

use std::path::PathBuf;
use std::process::ExitCode;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::tokens::{self, NewToken, Tokens};
use crate::auth::Role;
use crate::config::{Config, Overrides};

/// Where the tokens live: `--data-dir`, else the config's `data_dir`.
#[derive(clap::Args)]
pub struct Place {
    /// TOML config file (its `data_dir` is used).
    #[arg(long, env = "MCP_AUDIT_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Place {
    fn data_dir(&self) -> anyhow::Result<PathBuf> {
        let flags = Overrides {
            data_dir: self.data_dir.clone(),
            ..Overrides::default()
        };
        Ok(Config::load(self.config.as_deref(), std::env::vars(), &flags)?.data_dir)
    }
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Create a token and print it alone on stdout (it is shown once; only its hash is kept).
    Create {
        /// The tenant the token's events go to and the only one it reads.
        #[arg(long)]
        tenant: String,
        /// ingest (ship only), read (search its tenant), admin (also rules, silences, erasure).
        #[arg(long)]
        role: String,
        /// Lifetime, e.g. `90d`, `12h`; no expiry when left out.
        #[arg(long)]
        expires: Option<String>,
        /// A label for `token list` (e.g. the gateway it is for).
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        place: Place,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON Lines instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Revoke a token by the id `token list` shows.
    Revoke {
        id: String,
        #[command(flatten)]
        place: Place,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Create {
            tenant,
            role,
            expires,
            name,
            place,
        } => {
            let role = Role::parse(&role).ok_or_else(|| {
                anyhow::anyhow!("--role {role:?}: use one of {}", Role::NAMES.join(", "))
            })?;
            let expires_at = match expires {
                None => None,
                Some(e) => {
                    let d = crate::api::parse_duration(&e).ok_or_else(|| {
                        anyhow::anyhow!(
                            "--expires {e:?}: use a number and a unit, e.g. 90d, 12h, 30m"
                        )
                    })?;
                    Some(OffsetDateTime::now_utc() + d)
                }
            };
            let dir = place.data_dir()?;
            let (record, token) = tokens::create(
                &dir,
                NewToken {
                    tenant: &tenant,
                    role,
                    name: &name,
                    expires_at,
                },
            )?;
            eprintln!(
                "created token {} (tenant {}, role {}{}) in {}",
                record.id,
                record.tenant,
                record.role.as_str(),
                record
                    .expires_at
                    .map(|e| format!(", expires {}", fmt_time(e)))
                    .unwrap_or_default(),
                tokens::path(&dir).display()
            );
            println!("{token}");
        }
        Command::List { json, place } => {
            let tokens = Tokens::load(&place.data_dir()?)?;
            let now = OffsetDateTime::now_utc();
            if !json {
                println!(
                    "{:<12}  {:<16}  {:<6}  {:<8}  {:<20}  NAME",
                    "ID", "TENANT", "ROLE", "STATE", "EXPIRES"
                );
            }
            for r in tokens.records() {
                let state = r.unusable(now).unwrap_or("active");
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": r.id, "name": r.name, "tenant": r.tenant,
                            "role": r.role, "state": state,
                            "created_at": fmt_time(r.created_at),
                            "expires_at": r.expires_at.map(fmt_time),
                            "revoked_at": r.revoked_at.map(fmt_time),
                        })
                    );
                } else {
                    println!(
                        "{:<12}  {:<16}  {:<6}  {:<8}  {:<20}  {}",
                        r.id,
                        r.tenant,
                        r.role.as_str(),
                        state,
                        r.expires_at.map(fmt_time).unwrap_or_else(|| "never".into()),
                        r.name
                    );
                }
            }
        }
        Command::Revoke { id, place } => {
            let r = tokens::revoke(&place.data_dir()?, &id)?;
            eprintln!(
                "revoked token {} (tenant {}, role {}); a running collector refuses it within a second",
                r.id,
                r.tenant,
                r.role.as_str()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_time(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}
