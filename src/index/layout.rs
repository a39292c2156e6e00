//! How a day index is laid out on disk: its merge policy and its document store (compression
//! and block size). The defaults were chosen by measurement against the alternatives (README,
//! "Index layout"); they are settings so that comparison can be re-run on other hardware.
//!
//! The document store settings apply to day indexes created from then on (tantivy records them
//! in each index's meta); the merge policy applies to every day the writer opens.

use tantivy::indexer::{LogMergePolicy, MergePolicy, NoMergePolicy};
use tantivy::store::{Compressor, ZstdCompressor};
use tantivy::IndexSettings;

/// Decompressed document store blocks a segment reader keeps (tantivy's default is 100). Old
/// days' readers live as long as the collector, so this bounds what fetching hits leaves in
/// memory: 16 blocks, 256 KiB per segment with the default 16 KiB blocks.
pub(crate) const DOCSTORE_CACHE_BLOCKS: usize = 16;

/// Which segments tantivy merges in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Merge {
    /// tantivy's log merge policy with its defaults: merge 8 segments of a similar size.
    Log,
    /// The log merge policy tuned for fewer, larger segments: merge as soon as 4 of a level
    /// are there, and treat everything under 100,000 documents as one level.
    Fewer,
    /// Never merge (one segment per writer thread and commit).
    None,
}

/// The layout settings of [`super::IndexConfig`].
#[derive(Debug, Clone)]
pub struct Layout {
    pub merge: Merge,
    pub docstore: Compressor,
    pub docstore_block_bytes: usize,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            merge: Merge::Log,
            docstore: Compressor::Lz4,
            docstore_block_bytes: 16 * 1024,
        }
    }
}

impl Layout {
    /// Settings for a day index created now.
    pub(crate) fn settings(&self) -> IndexSettings {
        IndexSettings {
            docstore_compression: self.docstore,
            docstore_blocksize: self.docstore_block_bytes,
            ..IndexSettings::default()
        }
    }

    pub(crate) fn merge_policy(&self) -> Box<dyn MergePolicy> {
        match self.merge {
            Merge::Log => Box::new(LogMergePolicy::default()),
            Merge::Fewer => {
                let mut p = LogMergePolicy::default();
                p.set_min_num_segments(4);
                p.set_min_layer_size(100_000);
                Box::new(p)
            }
            Merge::None => Box::new(NoMergePolicy),
        }
    }
}

/// Parses `index.merge_policy`.
pub fn parse_merge(s: &str) -> Result<Merge, String> {
    match s {
        "log" => Ok(Merge::Log),
        "fewer" => Ok(Merge::Fewer),
        "none" => Ok(Merge::None),
        _ => Err(format!(
            "unknown merge policy {s:?}: use log, fewer or none"
        )),
    }
}

/// Parses `index.docstore_compression`: `lz4`, `none`, `zstd` or `zstd3` (any level 1–21).
pub fn parse_compression(s: &str) -> Result<Compressor, String> {
    match s {
        "lz4" => Ok(Compressor::Lz4),
        "none" => Ok(Compressor::None),
        "zstd" => Ok(Compressor::Zstd(ZstdCompressor::default())),
        _ => {
            let level = s
                .strip_prefix("zstd")
                .and_then(|l| l.parse::<i32>().ok())
                .filter(|l| (1..=21).contains(l))
                .ok_or_else(|| {
                    format!("unknown compression {s:?}: use lz4, none, zstd or zstd1 … zstd21")
                })?;
            Ok(Compressor::Zstd(ZstdCompressor {
                compression_level: Some(level),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_bad_names_say_what_is_allowed() {
        assert_eq!(parse_merge("fewer"), Ok(Merge::Fewer));
        assert!(parse_merge("tiered")
            .unwrap_err()
            .contains("log, fewer or none"));
        assert!(matches!(parse_compression("lz4"), Ok(Compressor::Lz4)));
        assert!(matches!(
            parse_compression("zstd9"),
            Ok(Compressor::Zstd(ZstdCompressor {
                compression_level: Some(9)
            }))
        ));
        assert!(parse_compression("zstd0").is_err());
        assert!(parse_compression("brotli")
            .unwrap_err()
            .contains("lz4, none, zstd"));
    }
}
