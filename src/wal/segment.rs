//! One WAL segment file: its on-disk format, and a strict scanner that tells a torn tail from
//! damage.
//!
//! ## On disk
//! ```text
//! <dir>/<first_position:020>.wal      one file per segment, named by its first position
//! segment = header record*
//! header  = b"MCPAWAL2" | first_position: u64 LE | previous_end: u64 LE          (24 bytes)
//! record  = len: u32 LE | crc: u32 LE | position: u64 LE | payload: len bytes
//!           crc = CRC-32 (IEEE) over the len bytes, the position bytes and the payload
//! ```
//! Records of a segment have consecutive positions from `first_position`. `previous_end` is
//! the position the previous segment ended at when this one was created; it equals
//! `first_position` unless positions were deliberately skipped (records lost and already
//! consumed, or salvaged around damage). So a segment that lost records at its end, cut at a
//! record boundary where no checksum can see it, is still found: the next segment says where
//! it should have ended. Version 1 segments (`b"MCPAWAL1" | first_position`, records without
//! the position) are still read.
//!
//! ## Torn tail or damage
//! A crash can leave the last record of the newest segment incomplete: its header or payload
//! runs past the end of the file, or its bytes never reached the disk (zeros, a bad checksum).
//! Nothing after the last fsync was acknowledged, so such a **torn tail** is cut on open. A bad
//! record with a good record anywhere after it is not a torn tail but **damage**: the scanner
//! re-synchronises on the next valid record (a plausible chain of lengths, then a matching
//! checksum) and reads on, so the caller can refuse to cut acknowledged events, name the file,
//! the offset and how many readable records follow, and salvage them at their own positions.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};

const MAGIC_V1: &[u8; 8] = b"MCPAWAL1";
const MAGIC_V2: &[u8; 8] = b"MCPAWAL2";
const HEADER_LEN_V1: u64 = 16;
/// Length of the header this version writes.
pub(crate) const HEADER_LEN: u64 = 24;
/// Largest payload a record may have; bigger lengths on disk can only be damage. Ingest keeps
/// stored events well below it.
pub const MAX_RECORD_BYTES: usize = 64 << 20;
/// How many record headers in a row must look plausible before a re-synchronisation
/// candidate's checksum is computed (keeps scanning garbage linear).
const RESYNC_CHAIN: usize = 4;

/// The two record layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `len | crc | payload`.
    V1,
    /// `len | crc | position | payload`.
    V2,
}

impl Version {
    pub(crate) fn record_header_len(self) -> usize {
        match self {
            Version::V1 => 8,
            Version::V2 => 16,
        }
    }
}

pub(crate) fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

/// The first position of a segment file name, `None` for any other file.
pub(crate) fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(".wal")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// The header of a new segment.
pub(crate) fn header(first: u64, previous_end: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC_V2);
    h[8..16].copy_from_slice(&first.to_le_bytes());
    h[16..24].copy_from_slice(&previous_end.to_le_bytes());
    h
}

/// Appends one record (current version) to `out`.
pub(crate) fn encode_record(out: &mut Vec<u8>, pos: u64, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let pos = pos.to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&pos);
    h.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&pos);
    out.extend_from_slice(payload);
}

/// One bad spot found while scanning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSpot {
    /// Byte offset in the file where the bad record starts.
    pub offset: u64,
    /// Bytes skipped until the next readable record (or the end of the file).
    pub len: u64,
    pub reason: String,
}

/// What a strict scan of one segment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentScan {
    pub path: PathBuf,
    pub version: Version,
    /// First position, from the header (equal to the file name's).
    pub first: u64,
    /// Where the previous segment ended when this one was created (`None` for version 1).
    pub previous_end: Option<u64>,
    pub header_len: u64,
    pub file_len: u64,
    /// Valid records before the first bad spot: positions `first..first + prefix_records`.
    pub prefix_records: u64,
    /// Byte length of that valid prefix (header included).
    pub prefix_len: u64,
    /// Bad spots, in file order. Empty for a clean segment.
    pub bad: Vec<BadSpot>,
    /// Valid records found after the first bad spot. Zero with one bad spot: a torn tail.
    pub records_after_bad: u64,
}

impl SegmentScan {
    pub fn is_clean(&self) -> bool {
        self.bad.is_empty()
    }

    /// A bad spot with no readable record after it: what a crash during a write leaves.
    pub fn torn_tail(&self) -> Option<&BadSpot> {
        match self.bad.as_slice() {
            [spot] if self.records_after_bad == 0 => Some(spot),
            _ => None,
        }
    }

    /// The position after the last record of the valid prefix.
    pub fn prefix_end(&self) -> u64 {
        self.first + self.prefix_records
    }
}

/// A record as the scanner hands it over.
pub struct Found<'a> {
    /// Its position: from the record itself (version 2), or counted in the valid prefix of a
    /// version 1 segment; `None` after damage in a version 1 segment.
    pub pos: Option<u64>,
    /// Whether it comes after a bad spot of its segment.
    pub after_damage: bool,
    /// Byte offset of its header in the file.
    pub offset: u64,
    pub payload: &'a [u8],
}

/// Why a segment could not be scanned at all.
#[derive(Debug)]
pub enum ScanError {
    Io(io::Error),
    /// The header is missing, incomplete or does not match the file name.
    Header(String),
}

/// An open segment positioned after its header.
pub(crate) struct Opened {
    pub file: File,
    pub file_len: u64,
    pub header_len: u64,
    pub version: Version,
    pub first: u64,
    pub previous_end: Option<u64>,
}

/// Opens a segment and checks its header against the position its name gives.
pub(crate) fn open(path: &Path, expected_first: u64) -> Result<Opened, ScanError> {
    let mut file = File::open(path).map_err(ScanError::Io)?;
    let file_len = file.metadata().map_err(ScanError::Io)?.len();
    let incomplete = || {
        ScanError::Header(format!(
            "the segment header is incomplete ({file_len} bytes)"
        ))
    };
    if file_len < HEADER_LEN_V1 {
        return Err(incomplete());
    }
    let mut magic = [0u8; HEADER_LEN_V1 as usize];
    file.read_exact(&mut magic).map_err(ScanError::Io)?;
    let mut first_bytes = [0u8; 8];
    first_bytes.copy_from_slice(&magic[8..16]);
    let first = u64::from_le_bytes(first_bytes);
    let (version, header_len, previous_end) = if &magic[..8] == MAGIC_V2 {
        if file_len < HEADER_LEN {
            return Err(incomplete());
        }
        let mut rest = [0u8; 8];
        file.read_exact(&mut rest).map_err(ScanError::Io)?;
        (Version::V2, HEADER_LEN, Some(u64::from_le_bytes(rest)))
    } else if &magic[..8] == MAGIC_V1 {
        (Version::V1, HEADER_LEN_V1, None)
    } else {
        return Err(ScanError::Header(
            "the file does not start with a WAL segment header".into(),
        ));
    };
    if first != expected_first {
        return Err(ScanError::Header(format!(
            "the header says the segment starts at position {first}, its name says {expected_first}"
        )));
    }
    Ok(Opened {
        file,
        file_len,
        header_len,
        version,
        first,
        previous_end,
    })
}

/// A record header as read from disk.
struct RecordHeader {
    len: usize,
    crc: u32,
    pos: Option<u64>,
}

fn parse_header(version: Version, h: &[u8]) -> RecordHeader {
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let pos = match version {
        Version::V1 => None,
        Version::V2 => {
            let mut p = [0u8; 8];
            p.copy_from_slice(&h[8..16]);
            Some(u64::from_le_bytes(p))
        }
    };
    RecordHeader {
        len: u32_at(0) as usize,
        crc: u32_at(4),
        pos,
    }
}

fn crc_of(version: Version, header: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&header[..4]);
    if version == Version::V2 {
        h.update(&header[8..16]);
    }
    h.update(payload);
    h.finalize()
}

/// Where reading the valid prefix of a segment stopped.
pub(crate) struct Prefix {
    pub records: u64,
    /// Byte offset after the last valid record.
    pub end: u64,
    /// Why reading stopped before the end of the file (`None`: the end, or `f` said stop).
    pub bad: Option<String>,
}

/// Streams the valid records of an opened segment from its header on, calling
/// `f(position, offset, payload)` until the end, a bad record, or `f` returning false.
pub(crate) fn read_prefix(
    seg: &mut Opened,
    f: &mut dyn FnMut(u64, u64, &[u8]) -> bool,
) -> io::Result<Prefix> {
    let version = seg.version;
    let rh_len = version.record_header_len();
    let file_len = seg.file_len;
    let first = seg.first;
    let mut reader = io::BufReader::with_capacity(1 << 20, &mut seg.file);
    let mut p = Prefix {
        records: 0,
        end: seg.header_len,
        bad: None,
    };
    let mut rh = [0u8; 16];
    let mut payload = Vec::new();
    loop {
        let offset = p.end;
        if offset == file_len {
            return Ok(p);
        }
        if file_len - offset < rh_len as u64 {
            p.bad = Some("the record header is incomplete".into());
            return Ok(p);
        }
        reader.read_exact(&mut rh[..rh_len])?;
        let h = parse_header(version, &rh[..rh_len]);
        if h.len > MAX_RECORD_BYTES {
            p.bad = Some(format!("the record length {} is impossible", h.len));
            return Ok(p);
        }
        if file_len - offset - (rh_len as u64) < h.len as u64 {
            p.bad = Some(format!(
                "the record's {} bytes run past the end of the file",
                h.len
            ));
            return Ok(p);
        }
        payload.resize(h.len, 0);
        reader.read_exact(&mut payload)?;
        if crc_of(version, &rh[..rh_len], &payload) != h.crc {
            p.bad = Some("the record checksum does not match".into());
            return Ok(p);
        }
        let expected = first + p.records;
        if h.pos.is_some_and(|pos| pos != expected) {
            p.bad = Some(format!(
                "the record says position {}, its place says {expected}",
                h.pos.unwrap_or_default()
            ));
            return Ok(p);
        }
        let go_on = f(expected, offset, &payload);
        p.records += 1;
        p.end = offset + (rh_len + h.len) as u64;
        if !go_on {
            return Ok(p);
        }
    }
}

/// Scans a whole segment, calling `f` for every readable record (also those after damage).
pub fn scan(
    path: &Path,
    expected_first: u64,
    f: &mut dyn FnMut(Found<'_>),
) -> Result<SegmentScan, ScanError> {
    let mut seg = open(path, expected_first)?;
    let version = seg.version;
    let prefix = read_prefix(&mut seg, &mut |pos, offset, payload| {
        f(Found {
            pos: Some(pos),
            after_damage: false,
            offset,
            payload,
        });
        true
    })
    .map_err(ScanError::Io)?;
    let mut scan = SegmentScan {
        path: path.to_path_buf(),
        version,
        first: seg.first,
        previous_end: seg.previous_end,
        header_len: seg.header_len,
        file_len: seg.file_len,
        prefix_records: prefix.records,
        prefix_len: prefix.end,
        bad: Vec::new(),
        records_after_bad: 0,
    };
    let Some(mut reason) = prefix.bad else {
        return Ok(scan);
    };

    // Damage or a torn tail: read the rest and look for readable records after it.
    let offset = prefix.end;
    let mut rest = Vec::new();
    seg.file
        .seek(io::SeekFrom::Start(offset))
        .map_err(ScanError::Io)?;
    seg.file.read_to_end(&mut rest).map_err(ScanError::Io)?;
    let rh_len = version.record_header_len();
    // Positions only grow: a candidate that goes back is garbage that happens to check out.
    let mut last_pos = scan.prefix_end().checked_sub(1);
    let mut at = 0usize; // offset in `rest` of the bad record
    loop {
        let resume =
            (at + 1..rest.len()).find(|&o| valid_at(version, &rest, o, last_pos).is_some());
        let end = resume.unwrap_or(rest.len());
        scan.bad.push(BadSpot {
            offset: offset + at as u64,
            len: (end - at) as u64,
            reason: std::mem::take(&mut reason),
        });
        let Some(mut o) = resume else {
            return Ok(scan);
        };
        // Read valid records until the end or the next bad one.
        loop {
            if o == rest.len() {
                return Ok(scan);
            }
            match record_at(version, &rest, o, last_pos) {
                Ok((len, pos)) => {
                    f(Found {
                        pos,
                        after_damage: true,
                        offset: offset + o as u64,
                        payload: &rest[o + rh_len..o + rh_len + len],
                    });
                    scan.records_after_bad += 1;
                    last_pos = pos.or(last_pos);
                    o += rh_len + len;
                }
                Err(why) => {
                    reason = why;
                    at = o;
                    break;
                }
            }
        }
    }
}

/// The payload length and position of a valid record at `o`, or why it is not one. A version
/// 2 record must also come after `after` (the last position seen).
fn record_at(
    version: Version,
    buf: &[u8],
    o: usize,
    after: Option<u64>,
) -> Result<(usize, Option<u64>), String> {
    let rh_len = version.record_header_len();
    let Some(raw) = buf.get(o..o + rh_len) else {
        return Err("the record header is incomplete".into());
    };
    let h = parse_header(version, raw);
    if h.len > MAX_RECORD_BYTES {
        return Err(format!("the record length {} is impossible", h.len));
    }
    let Some(payload) = buf.get(o + rh_len..o + rh_len + h.len) else {
        return Err(format!(
            "the record's {} bytes run past the end of the file",
            h.len
        ));
    };
    if crc_of(version, raw, payload) != h.crc {
        return Err("the record checksum does not match".into());
    }
    if let (Some(pos), Some(after)) = (h.pos, after) {
        if pos <= after {
            return Err(format!("the record says position {pos}, not after {after}"));
        }
    }
    Ok((h.len, h.pos))
}

/// Whether a valid record starts at `o`. The lengths of the records that would follow must be
/// plausible before the checksum is computed: a cheap filter that keeps scanning garbage linear.
fn valid_at(version: Version, buf: &[u8], o: usize, after: Option<u64>) -> Option<usize> {
    let rh_len = version.record_header_len();
    let mut p = o;
    for _ in 0..RESYNC_CHAIN {
        if p == buf.len() {
            break;
        }
        let h = buf.get(p..p + 4)?;
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len > MAX_RECORD_BYTES || p + rh_len + len > buf.len() {
            return None;
        }
        p += rh_len + len;
    }
    record_at(version, buf, o, after).ok().map(|(len, _)| len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_segment(path: &Path, first: u64, payloads: &[Vec<u8>]) -> Vec<u64> {
        let mut bytes = header(first, first).to_vec();
        let mut offsets = Vec::new();
        for (i, p) in payloads.iter().enumerate() {
            offsets.push(bytes.len() as u64);
            encode_record(&mut bytes, first + i as u64, p);
        }
        std::fs::write(path, bytes).unwrap();
        offsets
    }

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| format!("{{\"event\":{i},\"text\":\"{}\"}}", "x".repeat(i % 50)).into_bytes())
            .collect()
    }

    type Records = Vec<(Option<u64>, Vec<u8>)>;

    fn scan_all(path: &Path, first: u64) -> (SegmentScan, Records) {
        let mut got = Vec::new();
        let s = scan(path, first, &mut |r| got.push((r.pos, r.payload.to_vec()))).unwrap();
        (s, got)
    }

    const RH: usize = 16;

    #[test]
    fn a_clean_segment_reads_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 7);
        let p = payloads(20);
        write_segment(&path, 7, &p);
        let (s, got) = scan_all(&path, 7);
        assert!(s.is_clean());
        assert_eq!(s.prefix_records, 20);
        assert_eq!(s.prefix_end(), 27);
        assert_eq!(got[3], (Some(10), p[3].clone()));
    }

    #[test]
    fn a_zero_byte_in_the_middle_is_damage_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let p = payloads(100);
        let offsets = write_segment(&path, 0, &p);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = offsets[40] as usize + RH + 3;
        bytes[at] = 0;
        std::fs::write(&path, &bytes).unwrap();
        let (s, got) = scan_all(&path, 0);
        assert_eq!(s.prefix_records, 40);
        assert_eq!(s.bad.len(), 1);
        assert_eq!(s.bad[0].offset, offsets[40]);
        assert_eq!(s.records_after_bad, 59);
        assert!(s.torn_tail().is_none());
        assert_eq!(got.len(), 99);
        // Records after the damage keep their own positions.
        assert_eq!(got[40], (Some(41), p[41].clone()));
    }

    #[test]
    fn a_damaged_length_still_resynchronises() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let p = payloads(30);
        let offsets = write_segment(&path, 0, &p);
        let mut bytes = std::fs::read(&path).unwrap();
        let o = offsets[10] as usize;
        bytes[o..o + 4].copy_from_slice(&[0xff, 0xff, 0, 0]);
        std::fs::write(&path, &bytes).unwrap();
        let (s, got) = scan_all(&path, 0);
        assert_eq!(s.prefix_records, 10);
        assert_eq!(s.records_after_bad, 19);
        assert_eq!(got.last().unwrap(), &(Some(29), p[29].clone()));
    }

    #[test]
    fn a_cut_or_zeroed_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let p = payloads(10);
        let offsets = write_segment(&path, 0, &p);
        let full = std::fs::read(&path).unwrap();
        std::fs::write(&path, &full[..full.len() - 5]).unwrap();
        let (s, _) = scan_all(&path, 0);
        assert_eq!(s.prefix_records, 9);
        assert_eq!(s.torn_tail().unwrap().offset, offsets[9]);
        // The last record's bytes never reached the disk.
        let mut zeroed = full.clone();
        for b in &mut zeroed[offsets[9] as usize + RH..] {
            *b = 0;
        }
        std::fs::write(&path, &zeroed).unwrap();
        let (s, _) = scan_all(&path, 0);
        assert_eq!(s.prefix_records, 9);
        assert!(s.torn_tail().is_some());
    }

    #[test]
    fn random_garbage_finds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 0);
        let mut bytes = header(0, 0).to_vec();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..(1 << 20) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let (s, got) = scan_all(&path, 0);
        assert!(got.is_empty());
        assert_eq!(s.records_after_bad, 0);
        assert!(s.torn_tail().is_some());
    }

    #[test]
    fn version_1_segments_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 3);
        let mut bytes = MAGIC_V1.to_vec();
        bytes.extend_from_slice(&3u64.to_le_bytes());
        for p in payloads(5) {
            let len = (p.len() as u32).to_le_bytes();
            let mut h = crc32fast::Hasher::new();
            h.update(&len);
            h.update(&p);
            bytes.extend_from_slice(&len);
            bytes.extend_from_slice(&h.finalize().to_le_bytes());
            bytes.extend_from_slice(&p);
        }
        std::fs::write(&path, &bytes).unwrap();
        let (s, got) = scan_all(&path, 3);
        assert!(s.is_clean());
        assert_eq!(s.version, Version::V1);
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].0, Some(7));
    }

    #[test]
    fn headers_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 5);
        write_segment(&path, 5, &payloads(2));
        assert!(matches!(
            scan(&path, 6, &mut |_| {}),
            Err(ScanError::Header(_))
        ));
        std::fs::write(&path, b"MCPAW").unwrap();
        assert!(matches!(
            scan(&path, 5, &mut |_| {}),
            Err(ScanError::Header(_))
        ));
        assert_eq!(parse_segment_name("00000000000000000005.wal"), Some(5));
        assert_eq!(parse_segment_name("5.wal"), None);
        assert_eq!(parse_segment_name("00000000000000000005.wal.bak"), None);
    }
}
