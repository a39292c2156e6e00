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
//! Deleting the newest events leaves no trace in the chain itself; the signed checkpoints of
//! `chain/` do: each checkpoint's signature is checked (against `--public-key` when given,
//! else the data dir's own key, and the output says which), its hash must be the stored
//! chain's at its seq, and a chain that ends before its last signed checkpoint lost its newest
//! events (the missing range is named). Where retention dropped the oldest events, a signed
//! checkpoint right before the oldest one kept checks the link into it, and the chain is
//! anchored from the oldest retained checkpoint on.
//!
//! An erased event (`POST /api/v1/admin/erase`) is stood for by its hash, from the signed
//! erasure record that lists it (`chain/erasures.jsonl`); an erasure marker in the WAL that no
//! validly signed record lists is a deletion.
//!
//! Exit status: 0 intact, 1 damage, unexplained gaps or a failed checkpoint, 2 only gaps
//! recorded by `recover`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::chain::{self, SignedCheckpoint};
use crate::event::{chain_hash, GENESIS_HASH, RECORD_HASH_LEN};
use crate::index::{IndexConfig, Indexes};
use crate::wal::{self, marker, salvage, RecordHead};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, env = "MCP_AUDIT_DATA_DIR", default_value = "./mcp-audit-data")]
    data_dir: PathBuf,
    /// The public key to check signed checkpoints against (`ed25519:<base64>`, as `mcp-audit
    /// chain export-public-key` printed it, or a file holding it). Default: the data dir's
    /// own key, which cannot tell a history re-signed with a new key.
    #[arg(long)]
    public_key: Option<String>,
}

/// The key checkpoints are checked against, and how to name it.
struct CheckKey {
    key: ed25519_dalek::VerifyingKey,
    named: String,
}

fn check_key(args: &Args, chain_dir: &std::path::Path) -> anyhow::Result<Option<CheckKey>> {
    if let Some(given) = &args.public_key {
        let key = match chain::parse_public_key(given) {
            Ok(k) => k,
            Err(why) => {
                let text = std::fs::read_to_string(given).map_err(|_| {
                    anyhow::anyhow!("`--public-key`: {given:?} is neither a public key ({why}) nor a readable file; pass what `mcp-audit chain export-public-key` printed")
                })?;
                chain::parse_public_key(&text).map_err(|why| {
                    anyhow::anyhow!(
                        "`--public-key`: the file {given} does not hold a public key: {why}"
                    )
                })?
            }
        };
        return Ok(Some(CheckKey {
            named: format!(
                "the public key given with --public-key ({})",
                chain::format_public_key(&key)
            ),
            key,
        }));
    }
    Ok(chain::key::load_public(chain_dir)?.map(|key| CheckKey {
        named: format!(
            "this data dir's own key {} ({}); pass --public-key with a key exported earlier to also catch a history re-signed with a new key",
            chain::key::key_path(chain_dir).display(),
            chain::format_public_key(&key)
        ),
        key,
    }))
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
            layout: crate::index::layout::Layout::default(),
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
    // Per tenant, the last (position, seq) seen in the WAL, which is read in position order:
    // a tenant's seq only ever grows with the position.
    let mut wal_order: HashMap<String, (u64, u64)> = HashMap::new();
    let mut reordered: BTreeMap<String, String> = BTreeMap::new();
    // Erasure markers in the WAL: (tenant, seq, hash, position).
    let mut markers: Vec<(String, u64, [u8; 32], Option<u64>)> = Vec::new();
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
        if marker::is_marker(bytes) {
            markers.push((head.tenant.to_string(), head.seq, head.hash, pos));
        }
        if let (Some(p), "wal") = (pos, source) {
            match wal_order.get_mut(head.tenant.as_ref()) {
                Some((last_pos, last_seq)) => {
                    if head.seq <= *last_seq && !reordered.contains_key(head.tenant.as_ref()) {
                        reordered.insert(
                            head.tenant.to_string(),
                            format!(
                                "tenant {}: the WAL holds seq {} at position {p}, after seq {} at position {}: stored events were reordered",
                                head.tenant, head.seq, last_seq, last_pos
                            ),
                        );
                    }
                    *last_pos = p;
                    *last_seq = (*last_seq).max(head.seq);
                }
                None => {
                    wal_order.insert(head.tenant.to_string(), (p, head.seq));
                }
            }
        }
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
    for line in reordered.into_values() {
        problems.push(line);
    }
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

    // Signed checkpoints: their signatures first, since pass 2 checks the link into the
    // oldest retained event against one.
    let chain_dir = chain::dir(&args.data_dir);
    let key = check_key(&args, &chain_dir)?;
    let signed = Signed::read(&chain_dir, key.as_ref(), &mut problems)?;
    let horizon = retention_horizon(&args.data_dir.join("index"));
    // Erased events: their hash, from the validly signed erasure records, stands for them.
    let erased = Erased::read(&chain_dir, key.as_ref(), &mut problems)?;
    for (tenant, seqs) in &erased.tenants {
        let chain = chains.entry(tenant.clone()).or_default();
        // Erased events older than everything retention kept went with it: only those next
        // to the oldest stored event (or reaching seq 1) stand in the chain.
        let first_stored = chain.keys().min().copied();
        let floor = match first_stored {
            Some(f) => {
                let mut s = f;
                while s > 1 && seqs.contains_key(&(s - 1)) {
                    s -= 1;
                }
                s
            }
            None if seqs.contains_key(&1) => 1,
            None => u64::MAX,
        };
        let reach = match first_stored {
            Some(_) => u64::MAX,
            // Nothing stored: every event was erased, seq 1 on without a hole.
            None => {
                let mut s = 1;
                while seqs.contains_key(&(s + 1)) {
                    s += 1;
                }
                s
            }
        };
        for (seq, (hash, pos, line)) in seqs.range(floor..=reach) {
            match chain.get(seq) {
                Some(link) if link.hash != *hash => problems.push(format!(
                    "tenant {tenant}: seq {seq} has another hash in the erasure record of {} line {line} than its stored copy: the record or the event was changed",
                    chain::erase::records_path(&chain_dir).display()
                )),
                Some(_) => {}
                None => {
                    chain.insert(
                        *seq,
                        Link {
                            hash: *hash,
                            pos: Some(*pos),
                        },
                    );
                }
            }
        }
    }
    for (tenant, seq, hash, pos) in &markers {
        let listed = erased
            .tenants
            .get(tenant)
            .and_then(|seqs| seqs.get(seq))
            .is_some_and(|(h, _, _)| h == hash);
        if !listed {
            problems.push(format!(
                "tenant {tenant}: seq {seq} is an erasure marker in the WAL (position {}) that no validly signed erasure record lists: an event was removed outside `POST /api/v1/admin/erase`",
                show(*pos)
            ));
        }
    }

    // Pass 2: recompute every copy's hash from its bytes and its predecessor's stored hash
    // (or, for the oldest event retention kept, the signed checkpoint right before it).
    let mut checked = 0u64;
    let mut broken: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    each_record(&index, &wal_dir, &mut |_, _, bytes| {
        // A marker holds nothing to hash; its hash only links its successor.
        if marker::is_marker(bytes) {
            return;
        }
        let Ok(head) = RecordHead::decode(bytes) else {
            return;
        };
        let Some(chain) = chains.get(head.tenant.as_ref()) else {
            return;
        };
        let previous = if head.seq == 1 {
            Some(GENESIS_HASH)
        } else {
            chain
                .get(&(head.seq - 1))
                .map(|l| l.hash)
                .or_else(|| signed.hash_at(&head.tenant, head.seq - 1))
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
    let mut tenants: Vec<&String> = chains.keys().chain(signed.tenants.keys()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let empty = HashMap::new();
    for tenant in tenants {
        let chain = chains.get(tenant).unwrap_or(&empty);
        let mut seqs: Vec<u64> = chain.keys().copied().collect();
        seqs.sort_unstable();
        let checkpoints = signed.tenants.get(tenant).map_or(&[][..], Vec::as_slice);
        let (Some(&first), Some(&last)) = (seqs.first(), seqs.last()) else {
            // Signed checkpoints of a tenant with nothing stored: all of it was deleted, or
            // retention dropped it (then its newest checkpoint is older than every day kept).
            let (line, cp) = &checkpoints[checkpoints.len() - 1];
            if horizon.is_some_and(|h| cp.time < h) {
                println!(
                    "tenant {tenant}: no events stored; its newest signed checkpoint (seq {}, signed {}) is older than the oldest day the index keeps: dropped by retention",
                    cp.seq,
                    when(cp.time)
                );
                continue;
            }
            unexplained = true;
            println!(
                "tenant {tenant}: no events stored, but the signed checkpoint of line {line} (signed {}) covers seq 1..={}",
                when(cp.time), cp.seq
            );
            println!(
                "  seq 1..={} MISSING ({} events): every event was deleted; first missing seq 1",
                cp.seq, cp.seq
            );
            continue;
        };
        let head = chain
            .get(&last)
            .map(|l| hex::encode(l.hash))
            .unwrap_or_default();
        let mut line = format!(
            "tenant {tenant}: {} events, seq {first}..={last}, head {head}",
            seqs.len()
        );
        if first > 1 {
            let anchor = checkpoints
                .iter()
                .filter(|(_, cp)| {
                    cp.seq >= first
                        && chain
                            .get(&cp.seq)
                            .is_some_and(|l| hex::encode(l.hash) == cp.hash)
                })
                .map(|(_, cp)| cp.seq)
                .min();
            if signed.hash_at(tenant, first - 1).is_some() {
                line.push_str(&format!(" (seq 1..{first} dropped by retention; the link into seq {first} is checked against the signed checkpoint at seq {})", first - 1));
            } else if let Some(a) = anchor {
                line.push_str(&format!(" (seq 1..{first} dropped by retention; the chain is anchored from the oldest retained signed checkpoint, at seq {a}, on)"));
            } else {
                line.push_str(&format!(" (seq 1..{first} dropped by retention; the link into seq {first} is not checkable)"));
            }
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
        if let Some(seqs) = erased.tenants.get(tenant).filter(|s| !s.is_empty()) {
            let records: std::collections::BTreeSet<usize> =
                seqs.values().map(|(_, _, line)| *line).collect();
            println!(
                "  {} erased events, kept as hashes by {} signed erasure records",
                seqs.len(),
                records.len()
            );
        }
        if !checkpoints.is_empty() {
            unexplained |= compare_checkpoints(chain, first, last, checkpoints, horizon);
        }
    }
    if let Some(k) = &key {
        if signed.total > 0 {
            println!(
                "signed checkpoints: {} read, {} with a valid signature, checked against {}",
                signed.total, signed.valid, k.named
            );
        }
    }
    if signed.total == 0 && !chains.is_empty() {
        if args.public_key.is_some() {
            unexplained = true;
            println!("no signed checkpoints in {} to check against --public-key: deleting the newest events, or every checkpoint, cannot be ruled out", chain::checkpoints::path(&chain_dir).display());
        } else {
            println!(
                "note: no signed checkpoints in {}: deleting the newest events cannot be detected",
                chain::checkpoints::path(&chain_dir).display()
            );
        }
    }
    if signed.torn_bytes > 0 {
        println!(
            "note: {} ends in a torn write of {} bytes (a crash during a write; never acknowledged)",
            chain::checkpoints::path(&chain_dir).display(),
            signed.torn_bytes
        );
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

/// The signed checkpoints whose signature verifies, per tenant, in seq order.
struct Signed {
    tenants: BTreeMap<String, Vec<(usize, SignedCheckpoint)>>,
    total: usize,
    valid: usize,
    torn_bytes: usize,
}

impl Signed {
    /// Reads `checkpoints.jsonl`, checking every signature against `key`; what fails goes to
    /// `problems`.
    fn read(
        chain_dir: &std::path::Path,
        key: Option<&CheckKey>,
        problems: &mut Problems,
    ) -> anyhow::Result<Self> {
        let file = chain::checkpoints::path(chain_dir);
        let read = chain::checkpoints::read_all(chain_dir)?;
        let mut out = Signed {
            tenants: BTreeMap::new(),
            total: read.lines.len(),
            valid: 0,
            torn_bytes: read.torn_bytes,
        };
        let mut bad_sigs = Vec::new();
        for (line, cp) in read.lines {
            let cp = match cp {
                Ok(cp) => cp,
                Err(e) => {
                    problems.push(format!(
                        "{} line {line}: not a signed checkpoint ({e})",
                        file.display()
                    ));
                    continue;
                }
            };
            let Some(k) = key else { continue };
            match cp.verify(&k.key) {
                Ok(()) => {
                    out.valid += 1;
                    out.tenants
                        .entry(cp.tenant.clone())
                        .or_default()
                        .push((line, cp));
                }
                Err(why) => bad_sigs.push((line, cp, why)),
            }
        }
        match key {
            None if out.total > 0 => problems.push(format!(
                "{} holds {} signed checkpoints but there is no key to check them: {} is missing; pass --public-key",
                file.display(),
                out.total,
                chain::key::key_path(chain_dir).display()
            )),
            None => {}
            Some(k) if !bad_sigs.is_empty() && out.valid == 0 => problems.push(format!(
                "none of the {} signed checkpoints in {} verifies against {}: they were signed with another key (a wrong --public-key, or a history re-signed with a new key)",
                bad_sigs.len(),
                file.display(),
                k.named
            )),
            Some(k) => {
                for (line, cp, why) in &bad_sigs {
                    problems.push(format!(
                        "{} line {line} (tenant {}, seq {}): {why} against {}: the checkpoint was changed or forged",
                        file.display(),
                        cp.tenant,
                        cp.seq,
                        k.named
                    ));
                }
            }
        }
        for cps in out.tenants.values_mut() {
            cps.sort_by_key(|(line, cp)| (cp.seq, *line));
        }
        Ok(out)
    }

    /// The signed hash of `tenant`'s event `seq`, if a valid checkpoint holds it.
    fn hash_at(&self, tenant: &str, seq: u64) -> Option<[u8; 32]> {
        let cps = self.tenants.get(tenant)?;
        let i = cps.partition_point(|(_, cp)| cp.seq < seq);
        cps.get(i)
            .filter(|(_, cp)| cp.seq == seq)
            .and_then(|(_, cp)| cp.hash_bytes().ok())
    }
}

/// An erased event's hash, WAL position, and the line of the record that lists it.
type ErasedEvent = ([u8; 32], u64, usize);

/// The erased events of the validly signed erasure records: per tenant, seq → (hash,
/// position, line of the record).
struct Erased {
    tenants: BTreeMap<String, BTreeMap<u64, ErasedEvent>>,
}

impl Erased {
    fn read(
        chain_dir: &std::path::Path,
        key: Option<&CheckKey>,
        problems: &mut Problems,
    ) -> anyhow::Result<Self> {
        let file = chain::erase::records_path(chain_dir);
        let read = chain::erase::read_all(chain_dir)?;
        let mut out = Erased {
            tenants: BTreeMap::new(),
        };
        if read.lines.is_empty() {
            return Ok(out);
        }
        let Some(key) = key else {
            problems.push(format!(
                "{} holds {} erasure records but there is no key to check them: {} is missing; pass --public-key",
                file.display(),
                read.lines.len(),
                chain::key::key_path(chain_dir).display()
            ));
            return Ok(out);
        };
        for (line, record) in read.lines {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    problems.push(format!(
                        "{} line {line}: not an erasure record ({e})",
                        file.display()
                    ));
                    continue;
                }
            };
            if let Err(why) = record.verify(&key.key) {
                problems.push(format!(
                    "{} line {line} (erasure {}, tenant {}): {why} against {}: the record was changed or forged",
                    file.display(),
                    record.id,
                    record.tenant,
                    key.named
                ));
                continue;
            }
            let seqs = out.tenants.entry(record.tenant.clone()).or_default();
            for (seq, pos, hash) in &record.events {
                if let Some(h) = crate::event::decode_hash(hash) {
                    seqs.insert(*seq, (h, *pos, line));
                }
            }
        }
        Ok(out)
    }
}

/// Compares a tenant's stored chain (`first..=last`) with its signed checkpoints (valid
/// signatures, in seq order); prints what it finds and returns whether anything is wrong.
fn compare_checkpoints(
    chain: &HashMap<u64, Link>,
    first: u64,
    last: u64,
    checkpoints: &[(usize, SignedCheckpoint)],
    horizon: Option<time::OffsetDateTime>,
) -> bool {
    let mut matched = 0usize;
    let mut last_match: Option<u64> = None;
    let mut differs: Option<&(usize, SignedCheckpoint)> = None;
    let mut beyond: Option<&(usize, SignedCheckpoint)> = None;
    for entry in checkpoints {
        let cp = &entry.1;
        match chain.get(&cp.seq) {
            Some(link) if hex::encode(link.hash) == cp.hash => {
                matched += 1;
                if differs.is_none() {
                    last_match = Some(cp.seq);
                }
            }
            Some(_) => {
                differs.get_or_insert(entry);
            }
            // Beyond the end: the newest events are gone. Before the start: dropped by
            // retention. Inside: a gap, reported above.
            None if cp.seq > last && horizon.is_none_or(|h| cp.time >= h) => beyond = Some(entry),
            None => {}
        }
    }
    let newest = &checkpoints[checkpoints.len() - 1].1;
    println!(
        "  signed checkpoints: {} of {} match the stored chain; newest at seq {}, signed {}",
        matched,
        checkpoints.len(),
        newest.seq,
        when(newest.time)
    );
    let mut wrong = false;
    if let Some((line, cp)) = differs {
        wrong = true;
        let from = last_match.map_or(first, |s| s + 1).max(first);
        println!(
            "  seq {} differs from its signed checkpoint (checkpoints.jsonl line {line}, signed {}): the stored chain was rewritten; first broken seq is in {from}..={}",
            cp.seq,
            when(cp.time),
            cp.seq
        );
    }
    if let Some((line, cp)) = beyond {
        wrong = true;
        let n = cp.seq - last;
        println!(
            "  seq {}..={} MISSING ({n} events): the newest events were deleted; first missing seq {}; the signed checkpoint of checkpoints.jsonl line {line} (signed {}) covers seq {}",
            last + 1,
            cp.seq,
            last + 1,
            when(cp.time),
            cp.seq
        );
    } else if newest.seq < last {
        println!(
            "  seq {}..={last} not signed yet (a checkpoint follows within `chain.checkpoint_every_secs`, and at shutdown)",
            newest.seq + 1
        );
    }
    wrong
}

/// The start of the oldest day the index keeps (retention dropped everything before), from
/// its day folders; `None` when it keeps none.
fn retention_horizon(index_dir: &std::path::Path) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    std::fs::read_dir(index_dir)
        .ok()?
        .filter_map(|e| {
            let name = e.ok()?.file_name();
            time::Date::parse(name.to_str()?, &format).ok()
        })
        .min()
        .map(|d| d.midnight().assume_utc())
}

fn when(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn show(pos: Option<u64>) -> String {
    pos.map_or_else(|| "unknown".to_string(), |p| p.to_string())
}
