//! `mcp-audit chain export-public-key`: prints the public key of the data dir's signing key,
//! to keep elsewhere and pass to `mcp-audit verify --public-key` later. Reads only.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::chain;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the public key that verifies this data dir's signed checkpoints
    /// (`ed25519:<base64>`); keep it away from the data dir.
    ExportPublicKey {
        #[arg(long, env = "MCP_AUDIT_DATA_DIR", default_value = "./mcp-audit-data")]
        data_dir: PathBuf,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::ExportPublicKey { data_dir } => {
            let dir = chain::dir(&data_dir);
            let key = chain::key::load_public(&dir)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no signing key; start the collector once on this data dir (it creates the key), or pass --data-dir",
                    chain::key::key_path(&dir).display()
                )
            })?;
            println!("{}", chain::format_public_key(&key));
            Ok(ExitCode::SUCCESS)
        }
    }
}
