//! `mcp-audit verify`: checks every tenant's hash chain over the stored events (the index and
//! the WAL), strictly and without changing anything.
//!
//! It reads the stored bytes, never a re-serialization (a float in the arguments must not read
//! as tampering). Pass 1 collects each event's sequence number and stored hash from both the
//! index and the WAL (a copy in each must agree); pass 2 recomputes every copy's hash from its
//! stored bytes and its predecessor's stored hash. An edited event fails its own check, a
//! deleted one leaves a gap in the sequence, and any damaged WAL record is reported with its
//! file and offset. Gaps that `mcp-audit recover` recorded when it salvaged a damaged WAL are
//! named as such.
//!
//! Deleting the newest events leaves no trace in the chain itself, so the head of each chain
//! is printed: record it elsewhere (a ticket, another system) and compare later.
//!
//! Exit status: 0 intact, 1 damage or unexplained gaps, 2 only gaps recorded by `recover`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::event::{chain_hash, GENESIS_HASH, RECORD_HASH_LEN};
use crate::index::{IndexConfig, Indexes};
use crate::wal::{self, salvage, RecordHead};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_DATA_DIR", default_value = "./mcp-audit-data")]
    data_dir: PathBuf,
}

/// One stored copy of an event: where it is, its position if known, its bytes.
type Visit<'a> = dyn FnMut(&'static str, Option<u64>, &[u8]) + 'a;

/// What pass 1 learns of one event.
struct Link {
    hash: [u8; 32],
    pos: Option<u64>,
}

/// Problems found, capped so a wrecked store still prints a readable report.
#[derive(Default)]
struct Problems {
    lines: Vec<String>,
    more: usize,
}

impl Problems {
    fn push(&mut self, line: String) {
        if self.lines.len() < 50 {
            self.lines.push(line);
        } else {
            self.more += 1;
        }
    }
    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Calls `f` with every stored record: the index's, then the WAL's readable ones.
fn each_record(
    index: &Indexes,
    wal_dir: &std::path::Path,
    f: &mut Visit<'_>,
) -> anyhow::Result<wal::Inspection> {
    index.for_each_record(&mut |pos, bytes| f("index", Some(pos), bytes))?;
    let inspection = if wal_dir.exists() {
        wal::inspect(wal_dir, &mut |found| f("wal", found.pos, found.payload))?
    } else {
        wal::Inspection::default()
    };
    Ok(inspection)
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let index_dir = args.data_dir.join("index");
    let wal_dir = args.data_dir.join("wal");
    if !index_dir.exists() && !wal_dir.exists() {
        anyhow::bail!(
            "{} holds no mcp-audit data (no `index` or `wal` folder); pass --data-dir",
            args.data_dir.display()
        );
    }
    // A shared lock, taken only if the lock file exists: verify never creates anything.
    let lock_path = args.data_dir.join("LOCK");
    let _lock = if lock_path.exists() {
        let f = std::fs::File::open(&lock_path)
            .with_context(|| format!("cannot open {}", lock_path.display()))?;
        f.try_lock_shared().map_err(|_| {
            anyhow::anyhow!(
                "the collector is running on {}; stop it first, or verify a copy of the data dir",
                args.data_dir.display()
            )
        })?;
        Some(f)
    } else {
        None
    };
    let index = if index_dir.exists() {
        Indexes::open_read_only(IndexConfig {
            dir: index_dir,
            retention_days: 36_500,
            writer_memory_bytes: 20 << 20,
            writer_threads: 1,
        })?
    } else {
        anyhow::bail!(
            "{} has a WAL but no index folder; start the collector once to create it",
            args.data_dir.display()
        );
    };
    let recorded = salvage::read_gaps(&wal_dir).unwrap_or_default();

    // Pass 1: every copy's tenant, seq and stored hash.
    let mut problems = Problems::default();
    let mut chains: BTreeMap<String, HashMap<u64, Link>> = BTreeMap::new();
    let mut copies = 0u64;
    let inspection = each_record(&index, &wal_dir, &mut |source, pos, bytes| {
        copies += 1;
        let head = match RecordHead::decode(bytes) {
            Ok(h) => h,
            Err(e) => {
                problems.push(format!(
                    "{source} record at position {}: unreadable ({e})",
                    show(pos)
                ));
                return;
            }
        };
        let chain = chains.entry(head.tenant.to_string()).or_default();
        match chain.get_mut(&head.seq) {
            Some(link) if link.hash != head.hash => problems.push(format!(
                "tenant {}: seq {} has two different copies (index and WAL disagree)",
                head.tenant, head.seq
            )),
            Some(link) => link.pos = link.pos.or(pos),
            None => {
                chain.insert(
                    head.seq,
                    Link {
                        hash: head.hash,
                        pos,
                    },
                );
            }
        }
    })?;
    for s in &inspection.segments {
        if let Some(spot) = s.torn_tail() {
            if Some(s.first) == inspection.segments.last().map(|l| l.first) {
                println!(
                    "note: {} ends in a torn write of {} bytes at byte {} (a crash during a write; never acknowledged)",
                    s.path.display(),
                    spot.len,
                    spot.offset
                );
                continue;
            }
        }
        for spot in &s.bad {
            problems.push(format!(
                "wal segment {}: damaged at byte {} ({}, {} bytes); {} readable records follow in it",
                s.path.display(),
                spot.offset,
                spot.reason,
                spot.len,
                s.records_after_bad
            ));
        }
    }
    for (path, len, reason) in &inspection.bad_headers {
        problems.push(format!(
            "wal segment {}: {reason} ({len} bytes)",
            path.display()
        ));
    }
    if let Some(e @ wal::LogError::Corrupt { .. }) = inspection.first_damage() {
        if e.to_string().contains("records are missing") {
            problems.push(e.to_string());
        }
    }

    // Pass 2: recompute every copy's hash from its bytes and its predecessor's stored hash.
    let mut checked = 0u64;
    let mut broken: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    each_record(&index, &wal_dir, &mut |_, _, bytes| {
        let Ok(head) = RecordHead::decode(bytes) else {
            return;
        };
        let Some(chain) = chains.get(head.tenant.as_ref()) else {
            return;
        };
        let previous = if head.seq == 1 {
            Some(GENESIS_HASH)
        } else {
            chain.get(&(head.seq - 1)).map(|l| l.hash)
        };
        if let Some(prev) = previous {
            checked += 1;
            if chain_hash(&prev, &bytes[RECORD_HASH_LEN..]) != head.hash {
                broken
                    .entry(head.tenant.to_string())
                    .or_default()
                    .push(head.seq);
            }
        }
    })?;

    let mut unexplained = !problems.is_empty();
    let mut recorded_gaps = 0usize;
    for (tenant, chain) in &chains {
        let mut seqs: Vec<u64> = chain.keys().copied().collect();
        seqs.sort_unstable();
        let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
        let head = chain
            .get(&last)
            .map(|l| hex::encode(l.hash))
            .unwrap_or_default();
        let mut line = format!(
            "tenant {tenant}: {} events, seq {first}..={last}, head {head}",
            seqs.len()
        );
        if first > 1 {
            line.push_str(&format!(" (seq 1..{first} dropped by retention; the link into seq {first} is not checkable)"));
        }
        println!("{line}");
        for w in seqs.windows(2) {
            let (a, b) = (w[0], w[1]);
            if b == a + 1 {
                continue;
            }
            let (from, to) = (a + 1, b - 1);
            let n = to - from + 1;
            let around = (
                chain.get(&a).and_then(|l| l.pos),
                chain.get(&b).and_then(|l| l.pos),
            );
            let why = recorded.iter().find(|g| match around {
                (Some(pa), Some(pb)) => g.lost_from < pb && g.lost_to > pa + 1,
                _ => false,
            });
            match why {
                Some(g) => {
                    recorded_gaps += 1;
                    println!(
                        "  seq {from}..={to} missing ({n} events): lost to damage in {} at byte {}, recorded by `mcp-audit recover` at {}",
                        g.segment, g.offset, g.recovered_at
                    );
                }
                None => {
                    unexplained = true;
                    println!("  seq {from}..={to} MISSING ({n} events): first missing seq {from}");
                }
            }
        }
        if let Some(seqs) = broken.get(tenant) {
            unexplained = true;
            let mut seqs = seqs.clone();
            seqs.sort_unstable();
            seqs.dedup();
            println!(
                "  first broken seq {}: its stored bytes do not match its hash (its content or its predecessor was changed); {} broken in all: {}",
                seqs[0],
                seqs.len(),
                seqs.iter().take(20).map(u64::to_string).collect::<Vec<_>>().join(", ")
            );
        }
    }
    for p in &problems.lines {
        println!("{p}");
    }
    if problems.more > 0 {
        println!("... and {} more problems", problems.more);
    }
    let verdict = if unexplained {
        "CHAIN BROKEN"
    } else if recorded_gaps > 0 {
        "chain intact except for gaps recorded by `mcp-audit recover`"
    } else {
        "chain intact"
    };
    let events: usize = chains.values().map(HashMap::len).sum();
    println!("{verdict} ({events} events; {checked} of {copies} stored copies checked against their predecessor)");
    Ok(if unexplained {
        ExitCode::FAILURE
    } else if recorded_gaps > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn show(pos: Option<u64>) -> String {
    pos.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}
