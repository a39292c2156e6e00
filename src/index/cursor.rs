//! Search cursors: where the previous page ended, as an opaque URL-safe string.
//!
//! Hits are ordered newest first by `(timestamp, pos)`, a total order because WAL positions
//! are unique, so "the hits strictly after the last one returned" is well defined whatever
//! gets indexed in the meantime. The cursor is that last hit's sort key:
//! `base64url(version=1 | timestamp_micros: i64 BE | pos: u64 BE)`, 17 bytes, no padding.
//! It is not signed: a forged cursor can only select a different position in the caller's own
//! tenant.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use super::IndexError;

const VERSION: u8 = 1;
const LEN: usize = 17;

/// The sort key of one hit; hits are returned in descending order of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct SortKey {
    pub ts_micros: i64,
    pub pos: u64,
}

impl SortKey {
    pub fn encode(self) -> String {
        let mut b = [0u8; LEN];
        b[0] = VERSION;
        b[1..9].copy_from_slice(&self.ts_micros.to_be_bytes());
        b[9..].copy_from_slice(&self.pos.to_be_bytes());
        URL_SAFE_NO_PAD.encode(b)
    }

    pub fn decode(text: &str) -> Result<SortKey, IndexError> {
        let bad = |what: &str| {
            IndexError::Param {
            param: "cursor",
            reason: format!(
                "{what}; pass the `next_cursor` of the previous page unchanged, or omit `cursor` for the first page"
            ),
        }
        };
        if text.len() > 64 {
            return Err(bad("too long to be a cursor"));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| bad("not URL-safe base64"))?;
        if bytes.len() != LEN || bytes[0] != VERSION {
            return Err(bad("not a cursor from this server"));
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&bytes[1..9]);
        let mut pos = [0u8; 8];
        pos.copy_from_slice(&bytes[9..]);
        Ok(SortKey {
            ts_micros: i64::from_be_bytes(ts),
            pos: u64::from_be_bytes(pos),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip() {
        for key in [
            SortKey {
                ts_micros: 0,
                pos: 0,
            },
            SortKey {
                ts_micros: -5,
                pos: u64::MAX,
            },
            SortKey {
                ts_micros: 1_700_000_000_123_456,
                pos: 42,
            },
        ] {
            let s = key.encode();
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{s}"
            );
            assert_eq!(SortKey::decode(&s).unwrap(), key);
        }
    }

    #[test]
    fn garbage_is_a_cursor_param_error() {
        for s in [
            "",
            "abc",
            "!!!!",
            "AQ",
            &"A".repeat(100),
            &URL_SAFE_NO_PAD.encode([2u8; 17]),
        ] {
            match SortKey::decode(s) {
                Err(IndexError::Param {
                    param: "cursor",
                    reason,
                }) => {
                    assert!(reason.contains("next_cursor"), "{reason}")
                }
                other => panic!("{s:?}: {other:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(s in ".{0,80}") {
            let _ = SortKey::decode(&s);
        }

        #[test]
        fn decode_inverts_encode(ts in any::<i64>(), pos in any::<u64>()) {
            let key = SortKey { ts_micros: ts, pos };
            prop_assert_eq!(SortKey::decode(&key.encode()).unwrap(), key);
        }
    }
}
