//! Rewrites an index of an older on-disk format, once, when the collector starts.
//!
//! Builds up to `ffaa9c5` wrote tantivy's term dictionaries as FSTs; later ones write SSTables,
//! which cost much less to build for the unique terms every event carries (event, trace, span
//! and session ids: building their FSTs was ~12% of the collector's CPU when `ship` backfills).
//! tantivy reads only the format it was built for, so an index of the old format is rewritten
//! from its stored records: every index keeps each document's record in `_source` and its WAL
//! position in the `pos` column, which is all a document is made from.
//!
//! The new index is written beside the old one (`<name>.upgrading`), committed with the old
//! commit's payload (the WAL position it covers), then swapped in: the old folder is renamed to
//! `<name>.old-format`, the new one to `<name>`, and the old one removed. A crash at any point
//! leaves either the old index (the rewrite starts again) or the new one (the leftover is
//! removed): see [`recover`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tantivy::schema::document::Document;
use tantivy::schema::Value as _;
use tantivy::{IndexReader, IndexWriter, TantivyDocument};

use super::schema::{POS, SOURCE};
use super::{IndexError, Result};

/// Suffix of the folder a rewrite writes into.
const NEW: &str = "upgrading";
/// Suffix the old folder takes while the new one is moved into its place.
const OLD: &str = "old-format";

/// What tantivy says when it opens a term dictionary of the other format.
const OLD_FORMAT_ERROR: &str = "Unsupported dictionary type";

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// The index name a leftover of an interrupted rewrite belongs to (`2026-11-28.upgrading` →
/// `2026-11-28`); `None` for any other name.
pub(crate) fn leftover_of(name: &str) -> Option<&str> {
    name.strip_suffix(NEW)
        .or_else(|| name.strip_suffix(OLD))?
        .strip_suffix('.')
}

/// Finishes what an interrupted rewrite of the index at `path` left: a half-written new index
/// is removed (the old one is still in place and is rewritten again); an old index renamed
/// aside is removed once the new one is in place, or moved back if the crash came between the
/// two renames.
pub(crate) fn recover(path: &Path) -> Result<()> {
    let new = sibling(path, NEW);
    if new.exists() {
        fs::remove_dir_all(&new)?;
    }
    let old = sibling(path, OLD);
    if old.exists() {
        if path.exists() {
            fs::remove_dir_all(&old)?;
        } else {
            fs::rename(&old, path)?;
        }
    }
    Ok(())
}

/// True when a segment `reader` reads holds term dictionaries of the older format. Other
/// damage is not an old format: searches report it, as before.
pub(crate) fn is_old_format(reader: &IndexReader) -> bool {
    let searcher = reader.searcher();
    let schema = searcher.schema();
    searcher.segment_readers().iter().any(|segment| {
        schema.fields().any(|(field, entry)| {
            entry.is_indexed()
                && segment
                    .inverted_index(field)
                    .is_err_and(|e| e.to_string().contains(OLD_FORMAT_ERROR))
        })
    })
}

/// The error for a read-only opener (`verify`) that finds an index of the older format.
pub(crate) fn read_only_error(path: &Path) -> IndexError {
    IndexError::Tantivy(format!(
        "{} was written by an earlier mcp-audit (FST term dictionaries); start the collector \
         on this data dir once to rewrite it in the current format (this check changes nothing)",
        path.display()
    ))
}

/// Rewrites the index at `path`, of the older format, which `reader` reads: `create` makes
/// the new, empty index's writer in the folder it is given, and `document` makes a document
/// from a stored record and its WAL position.
pub(crate) fn rewrite<D: Document>(
    path: &Path,
    reader: IndexReader,
    create: impl FnOnce(&Path) -> Result<IndexWriter<D>>,
    document: impl FnMut(u64, &[u8]) -> Result<D>,
) -> Result<()> {
    let started = Instant::now();
    tracing::warn!(
        index = %path.display(),
        "index written by an earlier version (FST term dictionaries): rewriting it from its \
         stored records in the current format; this runs once"
    );
    let new = sibling(path, NEW);
    let count = copy(&reader, &new, create, document).map_err(|e| {
        let _ = fs::remove_dir_all(&new);
        IndexError::Tantivy(format!(
            "rewriting {} in the current format failed: {e}. The old index is untouched; \
             move it aside to start without its events",
            path.display()
        ))
    })?;
    drop(reader);
    let aside = sibling(path, OLD);
    fs::rename(path, &aside)?;
    fs::rename(&new, path)?;
    if let Some(parent) = path.parent() {
        File::open(parent)?.sync_all()?;
    }
    fs::remove_dir_all(&aside)?;
    tracing::info!(
        index = %path.display(),
        documents = count,
        took_ms = started.elapsed().as_millis() as u64,
        "index rewritten in the current format"
    );
    Ok(())
}

/// Writes every live document `old` reads into a new index in `new`, committed with the old
/// index's payload; the number of documents.
fn copy<D: Document>(
    old: &IndexReader,
    new: &Path,
    create: impl FnOnce(&Path) -> Result<IndexWriter<D>>,
    mut document: impl FnMut(u64, &[u8]) -> Result<D>,
) -> Result<u64> {
    if new.exists() {
        fs::remove_dir_all(new)?;
    }
    fs::create_dir_all(new)?;
    let mut writer = create(new)?;
    let missing = |what: &str| IndexError::Tantivy(format!("a document without `{what}`"));
    let searcher = old.searcher();
    let source = searcher
        .schema()
        .get_field(SOURCE)
        .map_err(|_| missing(SOURCE))?;
    let mut count = 0u64;
    for segment in searcher.segment_readers() {
        let pos = segment.fast_fields().u64(POS).map_err(|_| missing(POS))?;
        let store = segment.get_store_reader(1)?;
        for doc in segment.doc_ids_alive() {
            let stored: TantivyDocument = store.get(doc)?;
            let record = stored
                .get_first(source)
                .and_then(|v| v.as_bytes())
                .ok_or_else(|| missing(SOURCE))?;
            let at = pos.first(doc).ok_or_else(|| missing(POS))?;
            writer.add_document(document(at, record)?)?;
            count += 1;
        }
    }
    let mut prepared = writer.prepare_commit()?;
    if let Some(payload) = searcher.index().load_metas()?.payload {
        prepared.set_payload(&payload);
    }
    prepared.commit()?;
    writer.wait_merging_threads()?;
    Ok(count)
}
