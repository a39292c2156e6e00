//! `mcp-audit verify`: checks every tenant's hash chain over the stored events (the index and
//! the WAL tail it does not cover yet).
//!
//! Pass 1 collects each event's sequence number and stored hash; pass 2 recomputes every
//! event's hash from its content and its predecessor's stored hash. An edited event fails its
//! own check, a deleted one leaves a gap in the sequence. Deleting the newest events leaves
//! no trace in the chain itself, so the head of each chain is printed: record it elsewhere
//! (a ticket, another system) and compare later.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::event::{StoredEvent, GENESIS_HASH};
use crate::index::{IndexConfig, Indexes};
use crate::wal::{self, FileLog};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_DATA_DIR", default_value = "./mcp-audit-data")]
    data_dir: PathBuf,
}

fn decode_hash(hex_hash: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_hash).ok()?;
    bytes.try_into().ok()
}

/// Calls `f` for every stored event: committed index documents, then the WAL tail.
fn each_event(
    index: &Indexes,
    log: &FileLog,
    f: &mut dyn FnMut(StoredEvent),
) -> anyhow::Result<()> {
    index.for_each_event(f)?;
    wal::replay(log, index.checkpoint().wal_next, &mut |_, ev| f(ev))?;
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !args.data_dir.join("index").exists() {
        anyhow::bail!(
            "{} holds no mcp-audit data (no `index` folder); pass --data-dir",
            args.data_dir.display()
        );
    }
    let _lock = crate::app::lock_data_dir(&args.data_dir, || {
        format!(
            "the collector is running on {}; stop it first (verify reads a quiet data dir)",
            args.data_dir.display()
        )
    })?;
    let index = Indexes::open(IndexConfig {
        dir: args.data_dir.join("index"),
        retention_days: 36_500,
        writer_memory_bytes: 20 << 20,
        writer_threads: 1,
    })?;
    let (log, _) = FileLog::open(&args.data_dir.join("wal"), 64 << 20)?;

    let mut chains: BTreeMap<String, HashMap<u64, [u8; 32]>> = BTreeMap::new();
    let mut unreadable = 0u64;
    each_event(&index, &log, &mut |ev| match decode_hash(&ev.hash) {
        Some(h) => {
            chains
                .entry(ev.tenant.clone())
                .or_default()
                .insert(ev.seq, h);
        }
        None => unreadable += 1,
    })?;

    let mut problems: Vec<String> = Vec::new();
    let mut checked = 0u64;
    each_event(&index, &log, &mut |ev| {
        let Some(chain) = chains.get(&ev.tenant) else {
            return;
        };
        let previous = if ev.seq == 1 {
            Some(GENESIS_HASH)
        } else {
            chain.get(&(ev.seq - 1)).copied()
        };
        if let Some(prev) = previous {
            checked += 1;
            if Some(ev.chain_hash(&prev)) != decode_hash(&ev.hash) && problems.len() < 100 {
                problems.push(format!("tenant {}: event seq {} ({}) does not match its hash: its content or its predecessor was changed", ev.tenant, ev.seq, ev.event.event_id));
            }
        }
    })?;
    let mut ok = problems.is_empty() && unreadable == 0;
    for (tenant, chain) in &chains {
        let first = chain.keys().min().copied().unwrap_or(0);
        let last = chain.keys().max().copied().unwrap_or(0);
        let gaps = (last - first + 1).saturating_sub(chain.len() as u64);
        let head = chain.get(&last).map(hex::encode).unwrap_or_default();
        let mut line = format!(
            "tenant {tenant}: {} events, seq {first}..={last}, head {head}",
            chain.len()
        );
        if first > 1 {
            line.push_str(&format!(" (seq 1..{first} dropped by retention; the link into seq {first} is not checkable)"));
        }
        if gaps > 0 {
            ok = false;
            line.push_str(&format!(" — {gaps} events MISSING from the sequence"));
        }
        println!("{line}");
    }
    for p in &problems {
        println!("{p}");
    }
    if unreadable > 0 {
        println!("{unreadable} events carry an unreadable hash");
    }
    println!(
        "{} ({checked} links checked)",
        if ok { "chain intact" } else { "CHAIN BROKEN" }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
