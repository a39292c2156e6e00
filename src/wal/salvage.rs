//! `mcp-audit recover`: the explicit way out of a damaged WAL.
//!
//! The collector refuses to start on damage (a bad record with readable records after it, a
//! segment that lost records at its end, an unreadable segment header) because cutting it would
//! lose acknowledged events. Salvage keeps every readable record at its own position and records
//! what was lost:
//! - a copy of every file it changes goes to the copies folder first;
//! - a damaged segment is cut after its valid prefix, and each run of readable records after
//!   the damage becomes a segment of its own, at the positions the records carry (version 1
//!   segments, whose records carry no position, go after every consumer's position so nothing
//!   readable is skipped);
//! - a segment whose end was lost gets the next segment's `previous_end` corrected;
//! - every lost range of positions is appended to `gaps.json` in the WAL folder, which
//!   `mcp-audit verify` reads to tell a recorded loss from an unexplained gap.
//!
//! Running it again on a salvaged log finds nothing to do.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::log::{inspect, LogError};
use super::segment::{self, encode_record, header, segment_path, SegmentScan, Version};

/// Where salvage records the positions it could not keep.
pub const GAPS_FILE: &str = "gaps.json";

/// One range of positions lost to damage, as recorded in [`GAPS_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(with = "time::serde::rfc3339")]
    pub recovered_at: OffsetDateTime,
    /// The damaged segment file.
    pub segment: String,
    /// Byte offset of the damage in it.
    pub offset: u64,
    /// Unreadable bytes.
    pub bytes: u64,
    pub reason: String,
    /// Lost positions: `lost_from..lost_to`. For a version 1 segment the exact count is not
    /// known and this is the widest range it can be.
    pub lost_from: u64,
    pub lost_to: u64,
    /// Where the original file was copied before it was changed.
    pub copy: String,
}

/// What salvage did (or, dry, would do).
#[derive(Debug, Default)]
pub struct Report {
    pub gaps: Vec<Gap>,
    /// Readable records kept after damage.
    pub kept_after_damage: u64,
    /// Files written, changed or removed.
    pub changed: Vec<PathBuf>,
}

/// Reads the recorded gaps (none when the file does not exist).
pub fn read_gaps(wal_dir: &Path) -> std::io::Result<Vec<Gap>> {
    match fs::read(wal_dir.join(GAPS_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} is not valid: {e}", wal_dir.join(GAPS_FILE).display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Salvages every damaged segment of the log in `wal_dir`. `copies` receives the original of
/// every changed file; `consumer_positions` are the consumers' durable positions (only used to
/// place records of version 1 segments). With `dry_run`, nothing is written.
pub fn salvage(
    wal_dir: &Path,
    copies: &Path,
    consumer_positions: &[u64],
    dry_run: bool,
) -> Result<Report, LogError> {
    let inspection = inspect(wal_dir, &mut |_| {})?;
    let now = OffsetDateTime::now_utc();
    let stamp = now.unix_timestamp();
    let mut report = Report::default();
    let segments = &inspection.segments;
    let last_readable = segments.last().map(|s| s.first);

    let copy_of = |path: &Path, report: &mut Report| -> Result<String, LogError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let target = copies.join(format!("{name}.{stamp}"));
        if !dry_run {
            fs::create_dir_all(copies).map_err(io(copies))?;
            fs::copy(path, &target).map_err(io(&target))?;
            File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(io(&target))?;
        }
        report.changed.push(path.to_path_buf());
        Ok(target.display().to_string())
    };

    // Unreadable headers: nothing in the file can be placed; keep a copy and take it out.
    for (path, len, reason) in &inspection.bad_headers {
        let first = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(segment::parse_segment_name)
            .unwrap_or(0);
        let newest = last_readable.is_none_or(|l| first > l);
        if newest && *len <= segment::HEADER_LEN {
            continue; // created by a crash and empty: opening removes it
        }
        let next = segments.iter().map(|s| s.first).find(|&f| f > first);
        let copy = copy_of(path, &mut report)?;
        if !dry_run {
            fs::remove_file(path).map_err(io(path))?;
        }
        report.gaps.push(Gap {
            recovered_at: now,
            segment: file_name(path),
            offset: 0,
            bytes: *len,
            reason: reason.clone(),
            lost_from: first,
            lost_to: next.unwrap_or(first),
            copy,
        });
    }

    for (i, s) in segments.iter().enumerate() {
        let next = segments.get(i + 1);
        let is_last = next.is_none();
        if s.is_clean() {
            // Records lost from its end, at a record boundary: the next segment knows where it
            // should have ended.
            if let Some(n) = next {
                let expected = n.previous_end.unwrap_or(n.first);
                if s.prefix_end() != expected {
                    let copy = copy_of(&n.path, &mut report)?;
                    if !dry_run {
                        rewrite_previous_end(n, s.prefix_end())?;
                    }
                    report.gaps.push(Gap {
                        recovered_at: now,
                        segment: file_name(&s.path),
                        offset: s.file_len,
                        bytes: 0,
                        reason: format!(
                            "records after position {} are missing from its end",
                            s.prefix_end()
                        ),
                        lost_from: s.prefix_end(),
                        lost_to: expected,
                        copy,
                    });
                }
            }
            continue;
        }
        if is_last && s.torn_tail().is_some() {
            continue; // a torn tail: opening cuts it
        }
        salvage_segment(
            s,
            next,
            consumer_positions,
            dry_run,
            now,
            &copy_of,
            &mut report,
        )?;
    }

    if !dry_run && !report.gaps.is_empty() {
        let mut all = read_gaps(wal_dir).map_err(io(wal_dir))?;
        all.extend(report.gaps.iter().cloned());
        let path = wal_dir.join(GAPS_FILE);
        let tmp = wal_dir.join(format!("{GAPS_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| LogError::Encode(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(wal_dir)
            .and_then(|d| d.sync_all())
            .map_err(io(wal_dir))?;
    }
    Ok(report)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Keeps the valid prefix of a damaged segment and moves each run of readable records after
/// the damage into a segment of its own.
fn salvage_segment(
    s: &SegmentScan,
    next: Option<&SegmentScan>,
    consumer_positions: &[u64],
    dry_run: bool,
    now: OffsetDateTime,
    copy_of: &dyn Fn(&Path, &mut Report) -> Result<String, LogError>,
    report: &mut Report,
) -> Result<(), LogError> {
    // The readable records after the damage, with their positions where known.
    let mut after: Vec<(Option<u64>, Vec<u8>)> = Vec::new();
    segment::scan(&s.path, s.first, &mut |found| {
        if found.after_damage {
            after.push((found.pos, found.payload.to_vec()));
        }
    })
    .map_err(|e| match e {
        segment::ScanError::Io(source) => LogError::Io {
            path: s.path.clone(),
            source,
        },
        segment::ScanError::Header(reason) => LogError::Encode(reason),
    })?;
    let next_start = next.map(|n| n.previous_end.unwrap_or(n.first));
    let prefix_end = s.prefix_end();
    // Assign positions.
    let positioned: Vec<(u64, Vec<u8>)> = match s.version {
        Version::V2 => after
            .into_iter()
            .filter_map(|(p, b)| p.map(|p| (p, b)))
            .collect(),
        Version::V1 => {
            let m = after.len() as u64;
            let start = match next_start {
                Some(end) => end.saturating_sub(m).max(prefix_end + 1),
                None => consumer_positions
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)
                    .max(prefix_end + 1),
            };
            after
                .into_iter()
                .enumerate()
                .map(|(i, (_, b))| (start + i as u64, b))
                .collect()
        }
    };
    if let (Some(end), Some((last, _))) = (next_start, positioned.last()) {
        if *last >= end {
            return Err(LogError::Corrupt {
                path: s.path.clone(),
                offset: s.bad[0].offset,
                reason: format!(
                    "records after the damage reach position {last}, but the next segment starts at {end}; salvage cannot place them. Keep the data dir as it is and ask for help"
                ),
                good_after: positioned.len() as u64,
            });
        }
    }
    // Runs of consecutive positions.
    let mut runs: Vec<Vec<(u64, Vec<u8>)>> = Vec::new();
    for (pos, bytes) in positioned {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|(p, _)| *p + 1 == pos) => run.push((pos, bytes)),
            _ => runs.push(vec![(pos, bytes)]),
        }
    }
    let copy = copy_of(&s.path, report)?;
    // Gaps: before each run, and after the last one up to where the next segment starts.
    let mut end = prefix_end;
    let mut spots = s.bad.iter();
    let mut gap = |from: u64, to: u64, report: &mut Report| {
        let spot = spots.next().or(s.bad.last());
        report.gaps.push(Gap {
            recovered_at: now,
            segment: file_name(&s.path),
            offset: spot.map_or(0, |b| b.offset),
            bytes: spot.map_or(0, |b| b.len),
            reason: spot.map_or_else(String::new, |b| b.reason.clone()),
            lost_from: from,
            lost_to: to,
            copy: copy.clone(),
        });
    };
    for run in &runs {
        let first = run[0].0;
        if first > end {
            gap(end, first, report);
        }
        if !dry_run {
            write_segment(&s.path, first, end, run)?;
        }
        report.changed.push(segment_path(
            s.path.parent().unwrap_or(Path::new(".")),
            first,
        ));
        report.kept_after_damage += run.len() as u64;
        end = first + run.len() as u64;
    }
    // Up to where the next segment starts. In the newest segment, unreadable bytes after the
    // last readable record are a torn write: never acknowledged, and cut like one.
    if let Some(n) = next_start.filter(|&n| n > end) {
        gap(end, n, report);
    }
    if !dry_run {
        let f = OpenOptions::new()
            .write(true)
            .open(&s.path)
            .map_err(io(&s.path))?;
        f.set_len(s.prefix_len).map_err(io(&s.path))?;
        f.sync_all().map_err(io(&s.path))?;
        if let Some(dir) = s.path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io(dir))?;
        }
    }
    Ok(())
}

/// Writes a new segment holding `records` (consecutive positions from `first`).
fn write_segment(
    damaged: &Path,
    first: u64,
    previous_end: u64,
    records: &[(u64, Vec<u8>)],
) -> Result<(), LogError> {
    let dir = damaged.parent().unwrap_or(Path::new("."));
    let path = segment_path(dir, first);
    let mut bytes = header(first, previous_end).to_vec();
    for (pos, payload) in records {
        encode_record(&mut bytes, *pos, payload);
    }
    let mut f = File::create(&path).map_err(io(&path))?;
    f.write_all(&bytes).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(())
}

/// Sets a segment header's `previous_end` (a version 1 header is rewritten as version 2).
fn rewrite_previous_end(s: &SegmentScan, previous_end: u64) -> Result<(), LogError> {
    if s.version == Version::V2 {
        let mut f = OpenOptions::new()
            .write(true)
            .open(&s.path)
            .map_err(io(&s.path))?;
        f.seek(SeekFrom::Start(0)).map_err(io(&s.path))?;
        f.write_all(&header(s.first, previous_end))
            .map_err(io(&s.path))?;
        f.sync_all().map_err(io(&s.path))?;
        return Ok(());
    }
    // Version 1: rewrite the whole segment in the current format.
    let mut records = Vec::new();
    segment::scan(&s.path, s.first, &mut |found| {
        if let (Some(pos), false) = (found.pos, found.after_damage) {
            records.push((pos, found.payload.to_vec()));
        }
    })
    .map_err(|_| LogError::Encode(format!("cannot re-read {}", s.path.display())))?;
    let mut bytes = header(s.first, previous_end).to_vec();
    for (pos, payload) in &records {
        encode_record(&mut bytes, *pos, payload);
    }
    let tmp = s.path.with_extension("wal.tmp");
    let mut f = File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(&bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    fs::rename(&tmp, &s.path).map_err(io(&s.path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wal::log::{FileLog, Log, LogReader};

    fn fill(dir: &Path, n: u64, segment_bytes: u64) {
        let (mut log, _) = FileLog::open(dir, segment_bytes, &mut |_, _| {}).unwrap();
        for i in 0..n {
            log.append(format!("record number {i:05}").as_bytes())
                .unwrap();
        }
        log.sync().unwrap();
    }

    fn read_all(dir: &Path) -> Vec<u64> {
        let (log, _) = FileLog::open(dir, 1 << 20, &mut |_, _| {}).unwrap();
        let mut got = Vec::new();
        log.reader()
            .read(0, u64::MAX, &mut |p, _| {
                got.push(p);
                true
            })
            .unwrap();
        got
    }

    #[test]
    fn a_damaged_record_is_salvaged_around_at_exact_positions() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        fill(&wal, 100, 1 << 20);
        let path = segment_path(&wal, 0);
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] = 0;
        fs::write(&path, &bytes).unwrap();
        assert!(FileLog::open(&wal, 1 << 20, &mut |_, _| {}).is_err());

        let copies = dir.path().join("copies");
        let dry = salvage(&wal, &copies, &[], true).unwrap();
        assert_eq!(dry.gaps.len(), 1);
        assert!(!copies.exists(), "a dry run writes nothing");
        assert_eq!(fs::read(&path).unwrap(), bytes);

        let report = salvage(&wal, &copies, &[], false).unwrap();
        assert_eq!(report.gaps.len(), 1);
        let g = &report.gaps[0];
        assert_eq!(g.lost_to - g.lost_from, 1, "one record lost: {g:?}");
        assert_eq!(report.kept_after_damage, 99 - g.lost_from);
        assert_eq!(fs::read(&g.copy).unwrap(), bytes, "the original is kept");
        let got = read_all(&wal);
        assert_eq!(got.len(), 99);
        assert!(!got.contains(&g.lost_from));
        assert_eq!(read_gaps(&wal).unwrap(), report.gaps);
        // The log continues after the salvaged records.
        let (mut log, _) = FileLog::open(&wal, 1 << 20, &mut |_, _| {}).unwrap();
        assert_eq!(log.append(b"new").unwrap(), 100);
        log.sync().unwrap();
        drop(log);
        // Nothing more to do.
        let again = salvage(&wal, &copies, &[], false).unwrap();
        assert!(again.gaps.is_empty());
        assert_eq!(read_gaps(&wal).unwrap().len(), 1);
    }

    #[test]
    fn a_segment_missing_its_end_is_recorded_and_opens_again() {
        let dir = tempfile::tempdir().unwrap();
        let wal = dir.path().join("wal");
        fill(&wal, 40, 256);
        let first = segment_path(&wal, 0);
        let bytes = fs::read(&first).unwrap();
        // Drop the last record (16-byte header + 19-byte payload) at its boundary.
        fs::write(&first, &bytes[..bytes.len() - 35]).unwrap();
        assert!(FileLog::open(&wal, 256, &mut |_, _| {}).is_err());
        let report = salvage(&wal, &dir.path().join("copies"), &[], false).unwrap();
        assert_eq!(report.gaps.len(), 1);
        assert_eq!(report.gaps[0].lost_to - report.gaps[0].lost_from, 1);
        assert_eq!(read_all(&wal).len(), 39);
    }
}
