//! The segmented, checksummed record log under the WAL: bytes in, positions out.
//!
//! It knows nothing about events; [`super::Committer`] puts stored events in it. The [`Log`]
//! trait is the seam for a replicated log (NATS JetStream) later.
//!
//! ## On disk
//! ```text
//! <dir>/<first_position:020>.wal      one file per segment, named by its first position
//! segment = header record*
//! header  = b"MCPAWAL1" | first_position: u64 LE                         (16 bytes)
//! record  = len: u32 LE | crc: u32 LE | payload: len bytes
//!           crc = CRC-32 (IEEE) over the 4 len bytes followed by the payload
//! ```
//! Positions count records from 0 across all segments, without gaps. A record is durable once
//! [`Log::sync`] has returned after its append. On open, the last segment is scanned and cut
//! at the first record that is incomplete or fails its checksum (a torn write from a crash);
//! since nothing after the last sync was ever acknowledged, the cut never loses an ack.
//! Corruption inside an older segment is not a torn tail: replay reports it as an error
//! instead of silently skipping acknowledged history.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"MCPAWAL1";
const HEADER_LEN: u64 = 16;
const RECORD_HEADER_LEN: usize = 8;
/// Largest payload accepted; bigger lengths on disk can only be corruption.
pub const MAX_RECORD_BYTES: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("wal i/o on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("wal segment {path} is corrupt at byte {offset}: {reason}; it is not the last segment, so acknowledged events may be lost. Move the file aside only after keeping a copy")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("wal record of {0} bytes is over the {MAX_RECORD_BYTES} byte limit")]
    TooLarge(usize),
}

pub type Result<T> = std::result::Result<T, LogError>;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An append-only log of byte records addressed by position.
pub trait Log: Send + 'static {
    /// Appends one record (buffered, not yet durable) and returns its position.
    fn append(&mut self, payload: &[u8]) -> Result<u64>;
    /// Makes every appended record durable.
    fn sync(&mut self) -> Result<()>;
    /// The position the next append will get.
    fn next_position(&self) -> u64;
    /// Calls `f(position, payload)` for every durable record at or after `from`, in order.
    fn replay(&self, from: u64, f: &mut dyn FnMut(u64, &[u8])) -> Result<()>;
    /// Deletes whole segments whose records are all below `position`.
    fn remove_before(&mut self, position: u64) -> Result<()>;
}

/// What [`FileLog::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    /// Bytes cut from the end of the last segment (torn or corrupt tail).
    pub truncated_bytes: u64,
    /// Why the tail was cut, when it was.
    pub reason: Option<String>,
}

/// [`Log`] on local files.
pub struct FileLog {
    dir: PathBuf,
    segment_bytes: u64,
    /// First positions of all segments, ascending; the last one is active.
    segments: Vec<u64>,
    active: BufWriter<File>,
    active_len: u64,
    next: u64,
    /// A segment was created since the last sync: the directory needs an fsync too.
    dir_dirty: bool,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

/// Outcome of scanning one segment.
struct Scan {
    records: u64,
    /// Byte length of the valid prefix.
    good_len: u64,
    /// Why scanning stopped before the end of the file, if it did.
    bad: Option<String>,
}

/// Reads records from a segment, calling `f` for each valid one, until the end or the first
/// bad record.
fn scan_segment(path: &Path, first: u64, f: &mut dyn FnMut(u64, &[u8])) -> Result<Scan> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    let mut reader = io::BufReader::with_capacity(1 << 20, &mut file);
    let mut header = [0u8; HEADER_LEN as usize];
    if len < HEADER_LEN || reader.read_exact(&mut header).is_err() {
        return Ok(Scan {
            records: 0,
            good_len: 0,
            bad: Some("segment header is incomplete".into()),
        });
    }
    if &header[..8] != MAGIC
        || u64::from_le_bytes(header[8..16].try_into().unwrap_or_default()) != first
    {
        return Ok(Scan {
            records: 0,
            good_len: 0,
            bad: Some("segment header does not match its name".into()),
        });
    }
    let mut offset = HEADER_LEN;
    let mut records = 0u64;
    let mut payload = Vec::new();
    loop {
        if offset == len {
            return Ok(Scan {
                records,
                good_len: offset,
                bad: None,
            });
        }
        let mut rh = [0u8; RECORD_HEADER_LEN];
        if len - offset < RECORD_HEADER_LEN as u64 {
            return Ok(Scan {
                records,
                good_len: offset,
                bad: Some("record header is incomplete".into()),
            });
        }
        reader.read_exact(&mut rh).map_err(io_err(path))?;
        let rec_len = u32::from_le_bytes([rh[0], rh[1], rh[2], rh[3]]) as usize;
        let crc = u32::from_le_bytes([rh[4], rh[5], rh[6], rh[7]]);
        if rec_len > MAX_RECORD_BYTES {
            return Ok(Scan {
                records,
                good_len: offset,
                bad: Some(format!("record length {rec_len} is impossible")),
            });
        }
        if len - offset - (RECORD_HEADER_LEN as u64) < rec_len as u64 {
            return Ok(Scan {
                records,
                good_len: offset,
                bad: Some("record payload is incomplete".into()),
            });
        }
        payload.resize(rec_len, 0);
        reader.read_exact(&mut payload).map_err(io_err(path))?;
        if checksum(&rh[..4], &payload) != crc {
            return Ok(Scan {
                records,
                good_len: offset,
                bad: Some("record checksum mismatch".into()),
            });
        }
        f(first + records, &payload);
        records += 1;
        offset += (RECORD_HEADER_LEN + rec_len) as u64;
    }
}

fn checksum(len_bytes: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

impl FileLog {
    /// Opens the log in `dir` (creating it), repairing a torn tail. Segments roll over once
    /// they pass `segment_bytes`.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<(Self, Recovery)> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err(dir))? {
            let entry = entry.map_err(io_err(dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".wal")) else {
                continue;
            };
            if let Ok(first) = stem.parse::<u64>() {
                segments.push(first);
            }
        }
        segments.sort_unstable();
        let mut recovery = Recovery {
            segments: segments.len(),
            ..Recovery::default()
        };
        let Some(&last) = segments.last() else {
            let log = Self::create_segment(dir, segment_bytes, Vec::new(), 0)?;
            return Ok((log, recovery));
        };
        let path = segment_path(dir, last);
        let scan = scan_segment(&path, last, &mut |_, _| {})?;
        let file_len = fs::metadata(&path).map_err(io_err(&path))?.len();
        if scan.good_len < HEADER_LEN && file_len > HEADER_LEN {
            return Err(LogError::Corrupt {
                path,
                offset: 0,
                reason: scan.bad.unwrap_or_default(),
            });
        }
        if scan.good_len < HEADER_LEN {
            // Even the header is torn: the segment was being created when the crash hit and
            // holds nothing. Start it again.
            recovery.truncated_bytes = file_len;
            recovery.reason = scan.bad;
            fs::remove_file(&path).map_err(io_err(&path))?;
            segments.pop();
            let log = Self::create_segment(dir, segment_bytes, segments, last)?;
            return Ok((log, recovery));
        }
        if scan.good_len < file_len {
            recovery.truncated_bytes = file_len - scan.good_len;
            recovery.reason = scan.bad;
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if scan.good_len < file_len {
            file.set_len(scan.good_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let mut file = file;
        file.seek(SeekFrom::Start(scan.good_len))
            .map_err(io_err(&path))?;
        Ok((
            Self {
                dir: dir.to_path_buf(),
                segment_bytes,
                segments,
                active: BufWriter::with_capacity(1 << 20, file),
                active_len: scan.good_len,
                next: last + scan.records,
                dir_dirty: false,
            },
            recovery,
        ))
    }

    fn create_segment(
        dir: &Path,
        segment_bytes: u64,
        mut segments: Vec<u64>,
        first: u64,
    ) -> Result<Self> {
        let path = segment_path(dir, first);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..].copy_from_slice(&first.to_le_bytes());
        file.write_all(&header).map_err(io_err(&path))?;
        segments.push(first);
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            active: BufWriter::with_capacity(1 << 20, file),
            active_len: HEADER_LEN,
            next: first,
            dir_dirty: true,
        })
    }

    fn active_path(&self) -> PathBuf {
        segment_path(&self.dir, self.next_segment_first())
    }

    fn next_segment_first(&self) -> u64 {
        self.segments.last().copied().unwrap_or(0)
    }

    /// Closes the active segment durably and starts a new one at the next position.
    fn roll(&mut self) -> Result<()> {
        self.sync()?;
        let next = Self::create_segment(
            &self.dir,
            self.segment_bytes,
            std::mem::take(&mut self.segments),
            self.next,
        )?;
        *self = next;
        Ok(())
    }

    /// First positions of the segments on disk.
    pub fn segment_starts(&self) -> &[u64] {
        &self.segments
    }
}

impl Log for FileLog {
    fn append(&mut self, payload: &[u8]) -> Result<u64> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(LogError::TooLarge(payload.len()));
        }
        if self.active_len >= self.segment_bytes {
            self.roll()?;
        }
        let len_bytes = (payload.len() as u32).to_le_bytes();
        let crc = checksum(&len_bytes, payload);
        let path = self.active_path();
        self.active.write_all(&len_bytes).map_err(io_err(&path))?;
        self.active
            .write_all(&crc.to_le_bytes())
            .map_err(io_err(&path))?;
        self.active.write_all(payload).map_err(io_err(&path))?;
        self.active_len += (RECORD_HEADER_LEN + payload.len()) as u64;
        let pos = self.next;
        self.next += 1;
        Ok(pos)
    }

    fn sync(&mut self) -> Result<()> {
        let path = self.active_path();
        self.active.flush().map_err(io_err(&path))?;
        self.active.get_ref().sync_data().map_err(io_err(&path))?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        Ok(())
    }

    fn next_position(&self) -> u64 {
        self.next
    }

    fn replay(&self, from: u64, f: &mut dyn FnMut(u64, &[u8])) -> Result<()> {
        for (i, &first) in self.segments.iter().enumerate() {
            let end = self.segments.get(i + 1).copied().unwrap_or(u64::MAX);
            if end <= from {
                continue;
            }
            let path = segment_path(&self.dir, first);
            let is_last = i + 1 == self.segments.len();
            let scan = scan_segment(&path, first, &mut |pos, payload| {
                if pos >= from {
                    f(pos, payload)
                }
            })?;
            if let Some(reason) = scan.bad {
                if !is_last {
                    return Err(LogError::Corrupt {
                        path,
                        offset: scan.good_len,
                        reason,
                    });
                }
            }
        }
        Ok(())
    }

    fn remove_before(&mut self, position: u64) -> Result<()> {
        // Segment i holds [segments[i], segments[i+1]); the active one is never removed.
        while self.segments.len() > 1 && self.segments[1] <= position {
            let first = self.segments.remove(0);
            let path = segment_path(&self.dir, first);
            fs::remove_file(&path).map_err(io_err(&path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn records(log: &FileLog, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        log.replay(from, &mut |p, b| out.push((p, b.to_vec())))
            .unwrap();
        out
    }

    #[test]
    fn append_sync_reopen_replay() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, rec) = FileLog::open(dir.path(), 100).unwrap();
        assert_eq!(rec, Recovery::default());
        for i in 0..20u64 {
            assert_eq!(log.append(format!("record {i}").as_bytes()).unwrap(), i);
        }
        log.sync().unwrap();
        assert!(
            log.segment_starts().len() > 1,
            "small segments must roll over"
        );
        drop(log);
        let (log, rec) = FileLog::open(dir.path(), 100).unwrap();
        assert_eq!(rec.truncated_bytes, 0);
        assert_eq!(log.next_position(), 20);
        let got = records(&log, 7);
        assert_eq!(got.len(), 13);
        assert_eq!(got[0], (7, b"record 7".to_vec()));
    }

    #[test]
    fn remove_before_keeps_uncovered_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path(), 64).unwrap();
        for i in 0..30u64 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.sync().unwrap();
        log.remove_before(17).unwrap();
        let got = records(&log, 17);
        assert_eq!(got.first().map(|r| r.0), Some(17));
        assert_eq!(got.len(), 13);
        assert!(log.segment_starts()[0] <= 17);
        assert!(
            log.segment_starts()[0] > 0,
            "fully covered segments are deleted"
        );
    }

    #[test]
    fn corrupt_middle_segment_is_an_error_not_a_skip() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = FileLog::open(dir.path(), 64).unwrap();
        for i in 0..30u64 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.sync().unwrap();
        let first = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&first).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&first, bytes).unwrap();
        let (log, _) = FileLog::open(dir.path(), 64).unwrap();
        let err = log.replay(0, &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Cutting the log at any byte after a crash keeps exactly the records that were
        /// complete before the cut: every record synced before is still there unless the cut
        /// went through it, and nothing else appears.
        #[test]
        fn truncation_at_any_byte_keeps_exactly_the_prefix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..25),
            cut_frac in 0.0f64..1.0,
            flip in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = FileLog::open(dir.path(), 1 << 20).unwrap();
            let mut ends = Vec::new();
            let mut off = HEADER_LEN;
            for p in &payloads {
                log.append(p).unwrap();
                off += (RECORD_HEADER_LEN + p.len()) as u64;
                ends.push(off);
            }
            log.sync().unwrap();
            drop(log);
            let path = segment_path(dir.path(), 0);
            let total = fs::metadata(&path).unwrap().len();
            let cut = (cut_frac * total as f64) as u64;
            let f = OpenOptions::new().write(true).open(&path).unwrap();
            f.set_len(cut).unwrap();
            drop(f);
            let mut complete = ends.iter().take_while(|&&e| e <= cut).count();
            if flip && complete > 0 {
                // Also corrupt the last complete record's last byte: it must be dropped too.
                let mut bytes = fs::read(&path).unwrap();
                let at = (ends[complete - 1] - 1) as usize;
                bytes[at] ^= 0x5a;
                fs::write(&path, bytes).unwrap();
                complete -= 1;
            }
            let (mut log, _) = FileLog::open(dir.path(), 1 << 20).unwrap();
            let got = records(&log, 0);
            prop_assert_eq!(got.len(), complete);
            for (i, (pos, bytes)) in got.iter().enumerate() {
                prop_assert_eq!(*pos, i as u64);
                prop_assert_eq!(bytes, &payloads[i]);
            }
            // The log continues cleanly after the repair.
            prop_assert_eq!(log.append(b"after").unwrap(), complete as u64);
            log.sync().unwrap();
            drop(log);
            let (log, rec) = FileLog::open(dir.path(), 1 << 20).unwrap();
            prop_assert_eq!(rec.truncated_bytes, 0);
            prop_assert_eq!(records(&log, 0).len(), complete + 1);
        }
    }
}
