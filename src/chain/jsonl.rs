//! Append-only JSON Lines files that survive a crash: each append is written whole and
//! fsynced before it returns, so a crash can only leave a last line without its newline (a
//! torn write, never acknowledged). Readers skip such a line; the appender cuts it on open.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{io_err, ChainError};

/// What [`read`] found.
pub struct Lines<T> {
    /// Each complete line: its number (from 1) and the value, or why it is not one.
    pub lines: Vec<(usize, Result<T, String>)>,
    /// Bytes after the last newline (a torn write), when there are any.
    pub torn_bytes: usize,
}

/// Reads every line of `path`; a missing file has none. Changes nothing.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Lines<T>, ChainError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io_err(path)(e)),
    };
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines = bytes[..complete]
        .split(|&b| b == b'\n')
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_slice(l).map_err(|e| e.to_string())))
        .collect();
    Ok(Lines {
        lines,
        torn_bytes: bytes.len() - complete,
    })
}

/// Appends lines durably.
pub struct Appender {
    path: PathBuf,
    file: File,
}

impl Appender {
    /// Opens (or creates) `path` for appending, cutting a torn last line.
    pub fn open(path: &Path) -> Result<Self, ChainError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(io_err(path))?;
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = bytes.len() - complete,
                "chain: cut a torn last line left by a crash (never acknowledged)"
            );
            file.set_len(complete as u64).map_err(io_err(path))?;
            file.sync_all().map_err(io_err(path))?;
        }
        if !existed {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(dir))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Writes every value as a line, then fsyncs.
    pub fn append<T: Serialize>(&mut self, values: &[T]) -> Result<(), ChainError> {
        let mut buf = Vec::new();
        for v in values {
            serde_json::to_writer(&mut buf, v).map_err(|e| ChainError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            })?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf).map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_line_is_skipped_by_readers_and_cut_by_the_appender() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let mut a = Appender::open(&path).unwrap();
        a.append(&[1u32, 2]).unwrap();
        drop(a);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"tor").unwrap();
        let r: Lines<u32> = read(&path).unwrap();
        assert_eq!(r.lines.len(), 2);
        assert_eq!(r.torn_bytes, 5);
        let mut a = Appender::open(&path).unwrap();
        a.append(&[3u32]).unwrap();
        let r: Lines<u32> = read(&path).unwrap();
        let got: Vec<u32> = r.lines.into_iter().map(|(_, v)| v.unwrap()).collect();
        assert_eq!(got, vec![1, 2, 3]);
        assert_eq!(r.torn_bytes, 0);
    }
}
