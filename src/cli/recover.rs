//! `mcp-audit recover`: salvages a damaged WAL explicitly (see `wal::salvage`), with the
//! collector stopped. It keeps every readable record, copies every file it changes to
//! `<data dir>/wal-damaged/` first, and records what was lost in `wal/gaps.json`, where
//! `mcp-audit verify` finds it.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::wal::{salvage, Checkpoint};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_DATA_DIR", default_value = "./mcp-audit-data")]
    data_dir: PathBuf,
    /// Say what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let wal_dir = args.data_dir.join("wal");
    if !wal_dir.exists() {
        anyhow::bail!(
            "{} has no `wal` folder; pass the collector's --data-dir",
            args.data_dir.display()
        );
    }
    let _lock = crate::app::lock_data_dir(&args.data_dir, || {
        format!(
            "the collector is running on {}; stop it first",
            args.data_dir.display()
        )
    })?;
    let index: Checkpoint =
        crate::wal::read_checkpoint(&args.data_dir.join("index").join("checkpoint.json"))
            .unwrap_or_default();
    let copies = args.data_dir.join("wal-damaged");
    let report = salvage::salvage(&wal_dir, &copies, &[index.wal_next], args.dry_run)?;
    if report.gaps.is_empty() {
        println!("the WAL in {} has no damage to salvage (a torn tail after a crash is cut when the collector starts)", wal_dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if args.dry_run { "would" } else { "did" };
    for g in &report.gaps {
        let lost = g.lost_to.saturating_sub(g.lost_from);
        println!(
            "{}: damaged at byte {} ({}); positions {}..{} lost ({lost} records){}",
            g.segment,
            g.offset,
            g.reason,
            g.lost_from,
            g.lost_to,
            if args.dry_run {
                String::new()
            } else {
                format!("; original copied to {}", g.copy)
            }
        );
    }
    println!(
        "{verb} keep {} readable records found after the damage; {} files {verb} change",
        report.kept_after_damage,
        report.changed.len()
    );
    if args.dry_run {
        println!("nothing was changed (dry run)");
    } else {
        println!(
            "recorded in {}; start the collector again, then run `mcp-audit verify` to see which events were lost",
            wal_dir.join(salvage::GAPS_FILE).display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
