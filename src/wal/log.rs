//! The segmented, checksummed record log under the WAL: bytes in, positions out.
//!
//! It knows nothing about events; the committer puts stored events in it. The [`Log`] and
//! [`LogReader`] traits are the seam for a replicated log (NATS JetStream) later.
//!
//! Positions count records from 0 across all segments. They only ever grow: a position is never
//! given to two records, even when the newest records were lost (see [`Log::skip_to`]). A record
//! is durable once [`Log::sync`] has returned after its append; readers only ever see durable
//! records.
//!
//! Opening is strict (the format and the torn-tail rule are in `segment.rs`): a torn tail of the
//! newest segment is cut, any other damage is an error naming the file, the offset and how many
//! readable records follow it, and nothing is changed. `mcp-audit recover` is the explicit way
//! out of damage.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::checkpoint::{self, Checkpoint};
pub use super::segment::MAX_RECORD_BYTES;
use super::segment::{self, header, segment_path, ScanError, SegmentScan, HEADER_LEN};

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("wal i/o on {path}: {}", crate::error::describe_io(source))]
    Io { path: PathBuf, source: io::Error },
    #[error("wal segment {path} is damaged at byte {offset} ({reason}), and {good_after} readable records follow it")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
        good_after: u64,
    },
    #[error("wal record of {0} bytes is over the {MAX_RECORD_BYTES} byte limit")]
    TooLarge(usize),
    #[error("cannot build a wal record: {0}")]
    Encode(String),
}

impl LogError {
    /// Whether retrying later may succeed (a full disk, too many open files), as opposed to a
    /// log whose state is no longer known.
    pub fn is_resource(&self) -> bool {
        match self {
            LogError::Io { source, .. } => crate::error::is_resource_exhausted(source),
            _ => false,
        }
    }
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
    type Reader: LogReader;
    /// Appends one record (buffered, not yet durable) and returns its position.
    fn append(&mut self, payload: &[u8]) -> Result<u64>;
    /// Makes every appended record durable.
    fn sync(&mut self) -> Result<()>;
    /// Forgets every record appended since the last successful [`Log::sync`], after a failed
    /// append or sync, so the log is exactly its durable state again.
    fn rollback(&mut self) -> Result<()>;
    /// The position the next append will get.
    fn next_position(&self) -> u64;
    /// Continues at `position` (above [`Log::next_position`]): the positions in between were
    /// lost from the log but are already consumed, and must never be given out again.
    fn skip_to(&mut self, position: u64) -> Result<()>;
    /// Whether [`Log::remove_before`] would delete anything.
    fn removable(&self, position: u64) -> bool;
    /// Deletes whole segments whose records are all below `position`, after durably recording
    /// `base`: chain heads as of at least `position`, which the deleted records no longer give.
    fn remove_before(&mut self, position: u64, base: &Checkpoint) -> Result<()>;
    /// The last base recorded by [`Log::remove_before`] (empty before any deletion).
    fn base(&self) -> Result<Checkpoint>;
    /// Replaces durable records in place (erasure): each position of `records` that the log
    /// still holds gets the new payload; every other record stays as it is. Each segment
    /// changed is rewritten whole and swapped in atomically. Returns how many records changed.
    fn replace(&mut self, records: &BTreeMap<u64, Vec<u8>>) -> Result<u64>;
    /// A reader of the durable records, usable from other threads.
    fn reader(&self) -> Self::Reader;
}

/// Reads durable records, concurrently with the writer.
pub trait LogReader: Clone + Send + Sync + 'static {
    /// Calls `f(position, payload)` for every durable record in `[from, to)`, in order, until
    /// `f` returns false. Damage inside the range is an error, never a silent skip. Positions
    /// the log skipped (see [`Log::skip_to`]) are simply absent.
    fn read(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &[u8]) -> bool) -> Result<()>;
    /// The position after the last durable record.
    fn durable_end(&self) -> u64;
}

/// What [`FileLog::open`] found and repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovery {
    pub segments: usize,
    /// Bytes cut from the end of the newest segment (a torn tail).
    pub truncated_bytes: u64,
    /// Why the tail was cut, when it was.
    pub reason: Option<String>,
}

/// Bytes of appended records buffered before they are written to the file.
const WRITE_BUFFER: usize = 1 << 20;

/// [`Log`] on local files.
pub struct FileLog {
    dir: PathBuf,
    segment_bytes: u64,
    /// First positions of all segments, ascending; the last one is active.
    segments: Vec<u64>,
    /// The active segment, positioned at its end.
    file: File,
    /// Appended records not yet written to `file` (flushed at sync, or when it grows large).
    buf: Vec<u8>,
    /// Bytes of the active segment written (buffered ones included).
    active_len: u64,
    /// Bytes of the active segment known to be durable.
    synced_len: u64,
    next: u64,
    /// Shared with readers: the position after the last durable record.
    durable: Arc<AtomicU64>,
    /// A segment was created since the last sync: the directory needs an fsync too.
    dir_dirty: bool,
}

/// The first positions of the segment files in `dir`, ascending.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<u64>> {
    let mut segments = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Some(first) = entry
            .file_name()
            .to_str()
            .and_then(segment::parse_segment_name)
        {
            segments.push(first);
        }
    }
    segments.sort_unstable();
    Ok(segments)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Scans every segment of `dir` strictly, without changing anything: the log's records in
/// order, and what is wrong with it. [`FileLog::open`] and `verify` both stand on this.
pub fn inspect(dir: &Path, f: &mut dyn FnMut(segment::Found<'_>)) -> Result<Inspection> {
    let mut out = Inspection::default();
    for first in list_segments(dir)? {
        let path = segment_path(dir, first);
        match segment::scan(&path, first, f) {
            Ok(scan) => out.segments.push(scan),
            Err(ScanError::Io(e)) => return Err(io_err(&path)(e)),
            Err(ScanError::Header(reason)) => {
                let len = fs::metadata(&path).map_err(io_err(&path))?.len();
                out.bad_headers.push((path, len, reason));
            }
        }
    }
    Ok(out)
}

/// The result of [`inspect`].
#[derive(Debug, Default)]
pub struct Inspection {
    pub segments: Vec<SegmentScan>,
    /// Segment files whose header is unreadable: path, length, reason.
    pub bad_headers: Vec<(PathBuf, u64, String)>,
}

impl Inspection {
    /// The first problem that would lose acknowledged records, as the error `open` reports.
    /// A torn tail of the newest segment, and a newest segment whose header never got written,
    /// are not problems: a crash leaves them, and nothing in them was acknowledged.
    pub fn first_damage(&self) -> Option<LogError> {
        let last_first = self.segments.last().map(|s| s.first);
        if let Some((path, len, reason)) = self.bad_headers.iter().find(|(path, len, _)| {
            // An incomplete header on a file after every readable segment: created by a crash.
            !(*len <= HEADER_LEN && newest_file(path, last_first))
        }) {
            return Some(LogError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("{reason}, {len} bytes"),
                good_after: self.records_after(None),
            });
        }
        for (i, s) in self.segments.iter().enumerate() {
            let is_last = i + 1 == self.segments.len();
            if let Some(next) = self.segments.get(i + 1) {
                let expected = next.previous_end.unwrap_or(next.first);
                if s.is_clean() && s.prefix_end() != expected {
                    return Some(LogError::Corrupt {
                        path: s.path.clone(),
                        offset: s.file_len,
                        reason: format!(
                            "it ends at position {} but the next segment says it ended at {expected}: records are missing from its end",
                            s.prefix_end()
                        ),
                        good_after: self.records_after(Some(i)),
                    });
                }
            }
            if s.is_clean() || (is_last && s.torn_tail().is_some()) {
                continue;
            }
            let spot = &s.bad[0];
            return Some(LogError::Corrupt {
                path: s.path.clone(),
                offset: spot.offset,
                reason: spot.reason.clone(),
                good_after: s.records_after_bad + self.records_after(Some(i)),
            });
        }
        None
    }

    /// Readable records in the segments after segment `i` (all segments for `None`).
    fn records_after(&self, i: Option<usize>) -> u64 {
        let from = i.map_or(0, |i| i + 1);
        self.segments[from.min(self.segments.len())..]
            .iter()
            .map(|s| s.prefix_records + s.records_after_bad)
            .sum()
    }
}

/// Whether `path` names a segment after every readable one (so it was the newest file).
fn newest_file(path: &Path, last_readable: Option<u64>) -> bool {
    let first = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(segment::parse_segment_name);
    match (first, last_readable) {
        (Some(f), Some(l)) => f > l,
        (Some(_), None) => true,
        _ => false,
    }
}

impl FileLog {
    /// Opens the log in `dir` (creating it), calling `f(position, payload)` for every record
    /// it holds. A torn tail of the newest segment is cut; any other damage is an error and
    /// nothing is changed. Segments roll over once they pass `segment_bytes`.
    pub fn open(
        dir: &Path,
        segment_bytes: u64,
        f: &mut dyn FnMut(u64, &[u8]),
    ) -> Result<(Self, Recovery)> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let inspection = inspect(dir, &mut |found| {
            if let (Some(pos), false) = (found.pos, found.after_damage) {
                f(pos, found.payload);
            }
        })?;
        if let Some(e) = inspection.first_damage() {
            return Err(e);
        }
        let mut recovery = Recovery {
            segments: inspection.segments.len() + inspection.bad_headers.len(),
            ..Recovery::default()
        };
        // A newest segment whose header never reached the disk: created by a crash, empty.
        for (path, len, reason) in &inspection.bad_headers {
            recovery.truncated_bytes += len;
            recovery.reason = Some(reason.clone());
            fs::remove_file(path).map_err(io_err(path))?;
        }
        let segments: Vec<u64> = inspection.segments.iter().map(|s| s.first).collect();
        let Some(last) = inspection.segments.last() else {
            // Nothing readable: start where the removed empty segment started, or at 0.
            let first = inspection
                .bad_headers
                .iter()
                .filter_map(|(p, _, _)| {
                    p.file_name()?
                        .to_str()
                        .and_then(segment::parse_segment_name)
                })
                .min()
                .unwrap_or(0);
            let log = Self::create_segment(dir, segment_bytes, Vec::new(), first, first)?;
            return Ok((log, recovery));
        };
        let path = last.path.clone();
        let good_len = last.prefix_len;
        if let Some(spot) = last.torn_tail() {
            recovery.truncated_bytes += last.file_len - good_len;
            recovery.reason = Some(spot.reason.clone());
        }
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        if good_len < last.file_len {
            file.set_len(good_len).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        let mut file = file;
        file.seek(SeekFrom::Start(good_len))
            .map_err(io_err(&path))?;
        let next = last.prefix_end();
        Ok((
            Self {
                dir: dir.to_path_buf(),
                segment_bytes,
                segments,
                file,
                buf: Vec::with_capacity(WRITE_BUFFER),
                active_len: good_len,
                synced_len: good_len,
                next,
                durable: Arc::new(AtomicU64::new(next)),
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
        previous_end: u64,
    ) -> Result<Self> {
        let path = segment_path(dir, first);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.write_all(&header(first, previous_end))
            .map_err(io_err(&path))?;
        segments.push(first);
        Ok(Self {
            dir: dir.to_path_buf(),
            segment_bytes,
            segments,
            file,
            buf: Vec::with_capacity(WRITE_BUFFER),
            active_len: HEADER_LEN,
            synced_len: HEADER_LEN,
            next: first,
            durable: Arc::new(AtomicU64::new(first)),
            dir_dirty: true,
        })
    }

    fn active_path(&self) -> PathBuf {
        segment_path(&self.dir, self.segments.last().copied().unwrap_or(0))
    }

    /// Closes the active segment durably and starts a new one at `first`.
    fn start_segment(&mut self, first: u64) -> Result<()> {
        self.sync()?;
        let mut next = Self::create_segment(
            &self.dir,
            self.segment_bytes,
            self.segments.clone(),
            first,
            self.next,
        )?;
        // Readers hold the shared counter.
        next.durable = self.durable.clone();
        *self = next;
        self.sync()
    }

    /// Writes the buffered records to the file (not yet durable).
    fn write_out(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.active_path();
        self.file.write_all(&self.buf).map_err(io_err(&path))?;
        self.buf.clear();
        Ok(())
    }

    /// First positions of the segments on disk.
    pub fn segment_starts(&self) -> &[u64] {
        &self.segments
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Log for FileLog {
    type Reader = FileLogReader;

    fn append(&mut self, payload: &[u8]) -> Result<u64> {
        if payload.len() > MAX_RECORD_BYTES {
            return Err(LogError::TooLarge(payload.len()));
        }
        if self.active_len >= self.segment_bytes {
            self.start_segment(self.next)?;
        }
        let before = self.buf.len();
        segment::encode_record(&mut self.buf, self.next, payload);
        self.active_len += (self.buf.len() - before) as u64;
        if self.buf.len() >= WRITE_BUFFER {
            self.write_out()?;
        }
        let pos = self.next;
        self.next += 1;
        Ok(pos)
    }

    fn sync(&mut self) -> Result<()> {
        self.write_out()?;
        let path = self.active_path();
        self.file.sync_data().map_err(io_err(&path))?;
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.synced_len = self.active_len;
        self.durable.store(self.next, Ordering::Release);
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        let path = self.active_path();
        self.buf.clear();
        self.file
            .set_len(self.synced_len)
            .and_then(|()| self.file.seek(SeekFrom::Start(self.synced_len)).map(|_| ()))
            .and_then(|()| self.file.sync_all())
            .map_err(io_err(&path))?;
        self.active_len = self.synced_len;
        self.next = self.durable.load(Ordering::Acquire);
        Ok(())
    }

    fn next_position(&self) -> u64 {
        self.next
    }

    fn skip_to(&mut self, position: u64) -> Result<()> {
        if position <= self.next {
            return Ok(());
        }
        self.start_segment(position)
    }

    fn removable(&self, position: u64) -> bool {
        self.segments.len() > 1 && self.segments[1] <= position
    }

    fn remove_before(&mut self, position: u64, base: &Checkpoint) -> Result<()> {
        if !self.removable(position) {
            return Ok(());
        }
        let path = self.dir.join(checkpoint::BASE_FILE);
        checkpoint::write(&path, base).map_err(io_err(&path))?;
        // Segment i holds [segments[i], segments[i+1]); the active one is never removed.
        while self.segments.len() > 1 && self.segments[1] <= position {
            let first = self.segments[0];
            let path = segment_path(&self.dir, first);
            fs::remove_file(&path).map_err(io_err(&path))?;
            self.segments.remove(0);
        }
        Ok(())
    }

    fn base(&self) -> Result<Checkpoint> {
        let path = self.dir.join(checkpoint::BASE_FILE);
        checkpoint::read(&path).map_err(io_err(&path))
    }

    fn reader(&self) -> FileLogReader {
        FileLogReader {
            dir: self.dir.clone(),
            durable: self.durable.clone(),
        }
    }

    fn replace(&mut self, records: &BTreeMap<u64, Vec<u8>>) -> Result<u64> {
        if records.is_empty() {
            return Ok(0);
        }
        // Nothing buffered: the active segment on disk is the whole of it.
        self.sync()?;
        let mut changed = 0;
        let last = self.segments.len().saturating_sub(1);
        for (i, &first) in self.segments.clone().iter().enumerate() {
            let end = self.segments.get(i + 1).copied().unwrap_or(self.next);
            if records.range(first..end).next().is_none() {
                continue;
            }
            let path = segment_path(&self.dir, first);
            let (bytes, n) = rewritten(&path, first, records)?;
            if n == 0 {
                continue;
            }
            // Readers that opened the old file keep reading it whole; new readers get the new.
            let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
            tmp_name.push(".tmp");
            let tmp = self.dir.join(tmp_name);
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&bytes).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
            drop(f);
            fs::rename(&tmp, &path).map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            if i == last {
                // Appends go on in the new file.
                let mut file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                let len = bytes.len() as u64;
                file.seek(SeekFrom::Start(len)).map_err(io_err(&path))?;
                self.file = file;
                self.active_len = len;
                self.synced_len = len;
            }
            changed += n;
        }
        Ok(changed)
    }
}

/// The bytes of segment `path` with the records of `records` replaced, and how many were
/// (records already equal to their replacement do not count). Any damage is an error: a
/// segment is only ever rewritten whole.
fn rewritten(path: &Path, first: u64, records: &BTreeMap<u64, Vec<u8>>) -> Result<(Vec<u8>, u64)> {
    let mut seg = match segment::open(path, first) {
        Ok(seg) => seg,
        Err(ScanError::Io(e)) => return Err(io_err(path)(e)),
        Err(ScanError::Header(reason)) => {
            return Err(LogError::Corrupt {
                path: path.to_path_buf(),
                offset: 0,
                reason,
                good_after: 0,
            })
        }
    };
    let previous_end = seg.previous_end.unwrap_or(first);
    let mut out = header(first, previous_end).to_vec();
    let mut n = 0;
    let prefix = segment::read_prefix(&mut seg, &mut |pos, _, payload| {
        match records.get(&pos) {
            Some(new) if new.as_slice() != payload => {
                segment::encode_record(&mut out, pos, new);
                n += 1;
            }
            _ => segment::encode_record(&mut out, pos, payload),
        }
        true
    })
    .map_err(io_err(path))?;
    if let Some(reason) = prefix.bad {
        return Err(LogError::Corrupt {
            path: path.to_path_buf(),
            offset: prefix.end,
            reason: format!("{reason}; run `mcp-audit recover` before erasing"),
            good_after: 0,
        });
    }
    Ok((out, n))
}

/// Reads the durable records of a [`FileLog`] from its files.
#[derive(Clone)]
pub struct FileLogReader {
    dir: PathBuf,
    durable: Arc<AtomicU64>,
}

impl FileLogReader {
    /// A reader of a log nobody writes (offline tools): everything on disk counts as durable.
    pub fn offline(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            durable: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }
}

impl LogReader for FileLogReader {
    fn read(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &[u8]) -> bool) -> Result<()> {
        let to = to.min(self.durable_end());
        if from >= to {
            return Ok(());
        }
        let segments = list_segments(&self.dir)?;
        for (i, &first) in segments.iter().enumerate() {
            let end = segments.get(i + 1).copied().unwrap_or(u64::MAX);
            if end <= from {
                continue;
            }
            if first >= to {
                break;
            }
            let path = segment_path(&self.dir, first);
            let mut seg = match segment::open(&path, first) {
                Ok(seg) => seg,
                Err(ScanError::Io(e)) => return Err(io_err(&path)(e)),
                Err(ScanError::Header(reason)) => {
                    return Err(LogError::Corrupt {
                        path,
                        offset: 0,
                        reason,
                        good_after: 0,
                    })
                }
            };
            let mut stopped = false;
            let prefix = segment::read_prefix(&mut seg, &mut |pos, _, payload| {
                if pos >= to {
                    stopped = true;
                    return false;
                }
                if pos >= from && !f(pos, payload) {
                    stopped = true;
                    return false;
                }
                true
            })
            .map_err(io_err(&path))?;
            if stopped {
                return Ok(());
            }
            let reached = first + prefix.records;
            if let Some(reason) = prefix.bad {
                if reached < to.min(end) {
                    return Err(LogError::Corrupt {
                        path,
                        offset: prefix.end,
                        reason,
                        good_after: 0,
                    });
                }
            }
        }
        Ok(())
    }

    fn durable_end(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Record header length of the current format.
    const RH: usize = 16;

    fn open(dir: &Path, seg: u64) -> Result<(FileLog, Recovery)> {
        FileLog::open(dir, seg, &mut |_, _| {})
    }

    fn records(log: &FileLog, from: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        log.reader()
            .read(from, u64::MAX, &mut |p, b| {
                out.push((p, b.to_vec()));
                true
            })
            .unwrap();
        out
    }

    #[test]
    fn append_sync_reopen_read() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, rec) = open(dir.path(), 100).unwrap();
        assert_eq!(rec, Recovery::default());
        for i in 0..20u64 {
            assert_eq!(log.append(format!("record {i}").as_bytes()).unwrap(), i);
        }
        assert!(records(&log, 0).len() < 20, "unsynced records are not read");
        log.sync().unwrap();
        assert!(
            log.segment_starts().len() > 1,
            "small segments must roll over"
        );
        drop(log);
        let mut seen = 0;
        let (log, rec) = FileLog::open(dir.path(), 100, &mut |_, _| seen += 1).unwrap();
        assert_eq!(seen, 20);
        assert_eq!(rec.truncated_bytes, 0);
        assert_eq!(log.next_position(), 20);
        let got = records(&log, 7);
        assert_eq!(got.len(), 13);
        assert_eq!(got[0], (7, b"record 7".to_vec()));
    }

    #[test]
    fn remove_before_keeps_uncovered_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 64).unwrap();
        for i in 0..30u64 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.sync().unwrap();
        log.remove_before(17, &Checkpoint::default()).unwrap();
        let got = records(&log, 17);
        assert_eq!(got.first().map(|r| r.0), Some(17));
        assert_eq!(got.len(), 13);
        assert!(log.segment_starts()[0] <= 17);
        assert!(
            log.segment_starts()[0] > 0,
            "fully covered segments are deleted"
        );
        drop(log);
        assert!(open(dir.path(), 64).is_ok(), "a pruned log opens");
    }

    #[test]
    fn rollback_forgets_unsynced_records() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 1 << 20).unwrap();
        log.append(b"kept").unwrap();
        log.sync().unwrap();
        log.append(b"lost-1").unwrap();
        log.append(b"lost-2").unwrap();
        log.rollback().unwrap();
        assert_eq!(log.next_position(), 1);
        assert_eq!(log.append(b"after").unwrap(), 1);
        log.sync().unwrap();
        drop(log);
        let (log, rec) = open(dir.path(), 1 << 20).unwrap();
        assert_eq!(rec.truncated_bytes, 0);
        let got: Vec<Vec<u8>> = records(&log, 0).into_iter().map(|r| r.1).collect();
        assert_eq!(got, vec![b"kept".to_vec(), b"after".to_vec()]);
    }

    #[test]
    fn skip_to_never_reuses_positions() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 1 << 20).unwrap();
        for i in 0..5u64 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.sync().unwrap();
        log.skip_to(100).unwrap();
        assert_eq!(log.append(b"x").unwrap(), 100);
        log.sync().unwrap();
        drop(log);
        let (log, _) = open(dir.path(), 1 << 20).unwrap();
        assert_eq!(log.next_position(), 101);
        let got: Vec<u64> = records(&log, 3).into_iter().map(|r| r.0).collect();
        assert_eq!(got, vec![3, 4, 100]);
    }

    #[test]
    fn damage_in_an_older_segment_refuses_to_open_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 64).unwrap();
        for i in 0..30u64 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        let first = segment_path(dir.path(), 0);
        let mut bytes = fs::read(&first).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&first, &bytes).unwrap();
        let before: Vec<_> = list_segments(dir.path()).unwrap();
        let err = open(dir.path(), 64).err().unwrap();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("readable records follow"), "{err}");
        assert_eq!(list_segments(dir.path()).unwrap(), before);
        assert_eq!(fs::read(&first).unwrap(), bytes);
    }

    #[test]
    fn a_segment_cut_at_a_record_boundary_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 64).unwrap();
        for i in 0..30u64 {
            log.append(&i.to_le_bytes()).unwrap();
        }
        log.sync().unwrap();
        drop(log);
        // Drop the last record of the first segment exactly at its boundary.
        let first = segment_path(dir.path(), 0);
        let bytes = fs::read(&first).unwrap();
        fs::write(&first, &bytes[..bytes.len() - (RH + 8)]).unwrap();
        let err = open(dir.path(), 64).err().unwrap();
        assert!(err.to_string().contains("records are missing"), "{err}");
    }

    #[test]
    fn replace_rewrites_records_in_place_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = open(dir.path(), 200).unwrap();
        for i in 0..30u64 {
            log.append(format!("record {i:02}").as_bytes()).unwrap();
        }
        log.sync().unwrap();
        let segments = log.segment_starts().to_vec();
        assert!(segments.len() > 2);
        let mut new = BTreeMap::new();
        new.insert(3u64, b"gone".to_vec());
        new.insert(29u64, b"gone too".to_vec());
        new.insert(99u64, b"never there".to_vec());
        assert_eq!(log.replace(&new).unwrap(), 2);
        assert_eq!(log.replace(&new).unwrap(), 0, "already replaced");
        assert_eq!(log.append(b"after").unwrap(), 30);
        log.sync().unwrap();
        drop(log);
        let (log, rec) = open(dir.path(), 200).unwrap();
        assert_eq!(rec.truncated_bytes, 0);
        assert_eq!(log.segment_starts(), &segments[..]);
        let got = records(&log, 0);
        assert_eq!(got.len(), 31);
        assert_eq!(got[3].1, b"gone");
        assert_eq!(got[4].1, b"record 04");
        assert_eq!(got[29].1, b"gone too");
        assert_eq!(got[30], (30, b"after".to_vec()));
        assert!(!dir.path().join("00000000000000000000.wal.tmp").exists());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Cutting the newest segment at any byte after a crash keeps exactly the records that
        /// were complete before the cut, and the log continues cleanly.
        #[test]
        fn truncation_at_any_byte_keeps_exactly_the_prefix(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..25),
            cut_frac in 0.0f64..1.0,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = open(dir.path(), 1 << 20).unwrap();
            let mut ends = Vec::new();
            let mut off = HEADER_LEN;
            for p in &payloads {
                log.append(p).unwrap();
                off += (RH + p.len()) as u64;
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
            let complete = ends.iter().take_while(|&&e| e <= cut).count();
            let (mut log, _) = open(dir.path(), 1 << 20).unwrap();
            let got = records(&log, 0);
            prop_assert_eq!(got.len(), complete);
            for (i, (pos, bytes)) in got.iter().enumerate() {
                prop_assert_eq!(*pos, i as u64);
                prop_assert_eq!(bytes, &payloads[i]);
            }
            prop_assert_eq!(log.append(b"after").unwrap(), complete as u64);
            log.sync().unwrap();
            drop(log);
            let (log, rec) = open(dir.path(), 1 << 20).unwrap();
            prop_assert_eq!(rec.truncated_bytes, 0);
            prop_assert_eq!(records(&log, 0).len(), complete + 1);
        }

        /// Flipping a byte of a record that has complete records after it is damage: opening
        /// refuses and names how many readable records follow, and the file is left as it was.
        #[test]
        fn a_flipped_byte_before_good_records_is_never_cut(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 3..25),
            victim_frac in 0.0f64..1.0,
            byte_frac in 0.0f64..1.0,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let (mut log, _) = open(dir.path(), 1 << 20).unwrap();
            let mut starts = Vec::new();
            let mut off = HEADER_LEN;
            for p in &payloads {
                starts.push(off);
                log.append(p).unwrap();
                off += (RH + p.len()) as u64;
            }
            log.sync().unwrap();
            drop(log);
            // Any record but the last.
            let victim = ((victim_frac * (payloads.len() - 1) as f64) as usize).min(payloads.len() - 2);
            let rec_len = RH + payloads[victim].len();
            let at = starts[victim] as usize + ((byte_frac * rec_len as f64) as usize).min(rec_len - 1);
            let path = segment_path(dir.path(), 0);
            let mut bytes = fs::read(&path).unwrap();
            bytes[at] ^= 0x41;
            fs::write(&path, &bytes).unwrap();
            let err = open(dir.path(), 1 << 20).err();
            match err {
                Some(LogError::Corrupt { offset, good_after, .. }) => {
                    prop_assert_eq!(offset, starts[victim]);
                    prop_assert!(good_after >= 1);
                    prop_assert!(good_after <= (payloads.len() - victim - 1) as u64);
                }
                other => prop_assert!(false, "expected damage, got {:?}", other.map(|e| e.to_string())),
            }
            prop_assert_eq!(fs::read(&path).unwrap(), bytes);
        }
    }
}
