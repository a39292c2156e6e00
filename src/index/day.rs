//! One day index on disk: its folder name, its reader and writer, its commit payload; and the
//! checkpoint file.
//!
//! A day's commit payload is `{"wal_next": P}`: the day holds exactly those of its events whose
//! WAL position is below `P` (a commit always carries a `P` above every position added before
//! it, and nothing reaches disk as committed any other way).

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy};
use time::{Date, Month};

use super::doc::EventDoc;
use super::layout::Layout;
use super::schema::Fields;
use super::{IndexConfig, IndexError, Result};
use crate::wal::{Checkpoint, Entry};

/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// tantivy's bounds on a writer thread's memory arena, and on its thread count.
const WRITER_MEMORY_MIN: usize = 15_000_000;
const WRITER_MEMORY_MAX: usize = u32::MAX as usize - 1_000_000;
const WRITER_THREADS_MAX: usize = 8;
/// The writer's memory when a day is rewritten in the current format.
const REWRITE_MEMORY: usize = 64_000_000;

pub(crate) const CHECKPOINT_FILE: &str = "checkpoint.json";

/// `YYYY-MM-DD` of a day number (days since the epoch).
pub(crate) fn folder_name(day: i32) -> String {
    match Date::from_julian_day(day.saturating_add(UNIX_EPOCH_JULIAN_DAY)) {
        Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        // Out of `time`'s range: never produced by `day_of`, but keep a unique name.
        Err(_) => format!("day{day}"),
    }
}

/// The day number of a `YYYY-MM-DD` folder name; `None` for anything else.
pub(crate) fn parse_folder_name(name: &str) -> Option<i32> {
    let mut parts = name.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let date = Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()?;
    Some(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY)
}

/// The searchable side of a day: shared with every search.
pub(crate) struct Day {
    pub path: PathBuf,
    pub index: Index,
    /// Reloaded by hand right after each commit.
    pub reader: IndexReader,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    wal_next: u64,
}

impl Day {
    /// Opens (or creates) the day's index; one of an older on-disk format is rewritten first
    /// (see [`super::upgrade`]).
    pub fn open(dir: &Path, day: i32, fields: &Arc<Fields>, layout: &Layout) -> Result<Day> {
        let path = dir.join(folder_name(day));
        fs::create_dir_all(&path)?;
        let context = |e: tantivy::TantivyError| {
            IndexError::Tantivy(format!(
                "day index {}: {e}; if it was made by another version, delete the folder to \
                 rebuild it from the WAL",
                path.display()
            ))
        };
        let directory = MmapDirectory::open(&path).map_err(|e| context(e.into()))?;
        let index = Index::builder()
            .schema(fields.schema.clone())
            .settings(layout.settings())
            .open_or_create(directory)
            .map_err(context)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(super::layout::DOCSTORE_CACHE_BLOCKS)
            .try_into()
            .map_err(context)?;
        if super::upgrade::is_old_format(&reader) {
            drop(index);
            rewrite(&path, reader, fields, layout)?;
            return Day::open(dir, day, fields, layout);
        }
        Ok(Day {
            path,
            index,
            reader,
        })
    }

    /// Opens an existing day index for reading only, creating and writing nothing.
    pub fn open_existing(dir: &Path, day: i32) -> Result<Day> {
        let path = dir.join(folder_name(day));
        let context = |e: tantivy::TantivyError| {
            IndexError::Tantivy(format!("day index {}: {e}", path.display()))
        };
        let directory = MmapDirectory::open(&path).map_err(|e| context(e.into()))?;
        let index = Index::open(directory).map_err(context)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(super::layout::DOCSTORE_CACHE_BLOCKS)
            .try_into()
            .map_err(context)?;
        if super::upgrade::is_old_format(&reader) {
            return Err(super::upgrade::read_only_error(&path));
        }
        Ok(Day {
            path,
            index,
            reader,
        })
    }

    /// The `wal_next` of the last commit (0 for a day never committed).
    pub fn committed_wal_next(&self) -> Result<u64> {
        let meta = self.index.load_metas()?;
        match meta.payload.as_deref() {
            None | Some("") => Ok(0),
            Some(p) => serde_json::from_str::<Payload>(p)
                .map(|p| p.wal_next)
                .map_err(|e| {
                    IndexError::Tantivy(format!(
                        "day index {}: bad commit payload {p:?}: {e}",
                        self.path.display()
                    ))
                }),
        }
    }
}

/// Rewrites the day's index at `path`, of an older format, which `reader` reads.
fn rewrite(path: &Path, reader: IndexReader, fields: &Arc<Fields>, layout: &Layout) -> Result<()> {
    super::upgrade::rewrite(
        path,
        reader,
        |new| {
            let index = Index::builder()
                .schema(fields.schema.clone())
                .settings(layout.settings())
                .create_in_dir(new)?;
            Ok(index.writer_with_num_threads(1, REWRITE_MEMORY)?)
        },
        |pos, record| {
            let entry = Entry::decode(pos, record)
                .map_err(|e| IndexError::Tantivy(format!("a stored record at {pos}: {e}")))?;
            Ok(EventDoc::new(fields.clone(), Arc::new(entry)))
        },
    )
}

/// The writing side of a day: owned by the indexing thread.
pub(crate) struct DayWriter {
    pub writer: IndexWriter<EventDoc>,
    /// The day holds every one of its events below this WAL position.
    pub committed: u64,
    /// Documents added since the last commit.
    pub dirty: bool,
    pub last_add: Instant,
}

impl DayWriter {
    pub fn open(day: &Day, cfg: &IndexConfig) -> Result<DayWriter> {
        let threads = cfg.writer_threads.clamp(1, WRITER_THREADS_MAX);
        let per_thread =
            (cfg.writer_memory_bytes / threads).clamp(WRITER_MEMORY_MIN, WRITER_MEMORY_MAX);
        let writer = day
            .index
            .writer_with_num_threads(threads, per_thread * threads)?;
        writer.set_merge_policy(cfg.layout.merge_policy());
        Ok(DayWriter {
            writer,
            committed: day.committed_wal_next()?,
            dirty: false,
            last_add: Instant::now(),
        })
    }

    /// Commits with payload `wal_next`, never below what the day already holds (a commit of
    /// deletions alone may come with an older position).
    pub fn commit(&mut self, wal_next: u64) -> Result<()> {
        let wal_next = wal_next.max(self.committed);
        let payload = serde_json::to_string(&Payload { wal_next })
            .map_err(|e| IndexError::Tantivy(e.to_string()))?;
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.committed = wal_next;
        self.dirty = false;
        Ok(())
    }
}

pub(crate) fn read_checkpoint(dir: &Path) -> Result<Checkpoint> {
    let path = dir.join(CHECKPOINT_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            IndexError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is corrupt ({e}); delete it to replay the WAL from the start \
                     (day indexes skip what they already hold)",
                    path.display()
                ),
            ))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Checkpoint::default()),
        Err(e) => Err(e.into()),
    }
}

/// Writes the checkpoint atomically: tmp file, fsync, rename, fsync of the folder.
pub(crate) fn write_checkpoint(dir: &Path, checkpoint: &Checkpoint) -> Result<()> {
    let bytes = serde_json::to_vec(checkpoint).map_err(|e| IndexError::Tantivy(e.to_string()))?;
    let tmp = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, dir.join(CHECKPOINT_FILE))?;
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_round_trip() {
        assert_eq!(folder_name(0), "1970-01-01");
        assert_eq!(folder_name(20_000), "2024-10-04");
        assert_eq!(folder_name(-1), "1969-12-31");
        for day in [-1, 0, 1, 19_999, 20_000, 40_000] {
            assert_eq!(parse_folder_name(&folder_name(day)), Some(day));
        }
        for bad in [
            "",
            "checkpoint.json",
            "2024-1-01",
            "2024-13-01",
            "2024-02-30",
            "2024-01-01-x",
            "abcd-ef-gh",
        ] {
            assert_eq!(parse_folder_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn checkpoint_round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), Checkpoint::default());
        let mut cp = Checkpoint {
            wal_next: 7,
            ..Default::default()
        };
        cp.heads.insert(
            "t".into(),
            crate::wal::ChainHead {
                seq: 3,
                hash: "ab".into(),
            },
        );
        write_checkpoint(dir.path(), &cp).unwrap();
        assert_eq!(read_checkpoint(dir.path()).unwrap(), cp);
        fs::write(dir.path().join(CHECKPOINT_FILE), b"{").unwrap();
        assert!(read_checkpoint(dir.path())
            .unwrap_err()
            .to_string()
            .contains("corrupt"));
    }
}
