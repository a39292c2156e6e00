//! The one query language: the `q` text of search, histogram, terms and the live tail, parsed
//! into an AST ([`Expr`]) that two back ends evaluate with the same meaning: the tantivy
//! compiler in `index/` (searches) and [`matches`], an in-memory matcher over one
//! [`StoredEvent`](crate::event::StoredEvent) (the live tail, rules).
//!
//! ```text
//! tool:delete_file AND user:alice          exact match on a field (case-sensitive, whole value)
//! outcome:(error OR timeout)               a field applied to a group
//! arguments.path:"/etc/passwd"             words inside one argument (dots separate levels)
//! arguments:passwd                         words in any argument value
//! labels.env:prod                          one label, exact
//! duration_ms:>1000   seq:<=5              comparisons on numbers and `timestamp`
//! result_bytes:[100 TO 500]  {a TO b}      ranges: [ ] inclusive, { } exclusive, * open
//! timestamp:>=2025-01-31T00:00:00Z         times are RFC 3339
//! destructive:true   redaction:github_token
//! user:*                                   the field has a value
//! NOT tool:x   -tool:x   a OR b   (a b)    boolean logic; adjacent terms are ANDed
//! passwd   "permission denied"             free text / phrases over arguments, result, error
//! ```
//! `NOT` binds tighter than `AND`, `AND` tighter than `OR`; the keywords are upper case.
//! `\` escapes the next character. An empty query (or `*`) matches everything.
//!
//! Words are what the index makes of text: runs of letters and digits, lower-cased, words of
//! 40 bytes or more left out; a phrase (or a value of several words) matches them in a row
//! within one value. `arguments.<path>:v` also matches a number, `true`/`false` or RFC 3339
//! time equal to `v` there. The fields and their types come from the registry
//! ([`crate::event::fields`]).
//!
//! The parser is our own (rather than tantivy's `QueryParser`) so that every error can say
//! where it is and what to write instead, so that `tenant` can never be queried (isolation is
//! enforced by the caller with a term filter), and so that bare words search every argument
//! value. The AST also carries the Sigma-style operators of rules (`contains`, `re`, `cidr`...),
//! which only the matcher evaluates. This module knows no tantivy and never touches the index;
//! how the index reads text is mirrored in `text.rs` and checked against tantivy by `index/`'s
//! tests. Nothing here may panic on user input.

mod ast;
mod guard;
mod matcher;
mod parse;
#[cfg(test)]
mod tests;
pub mod text;

pub use ast::{Cmp, CmpOp, Expr, FieldRef, Op, Pattern, Scalar};
pub use guard::ArgumentGuard;
pub use matcher::{for_each_string, matches, matches_in, EventView};
pub use parse::{field_ref, parse, MAX_QUERY_BYTES};

pub(crate) use parse::{no_words, parse_time, parse_u64, shorten};

/// Why a query cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The text is not a valid query; the reason names the position and what to write.
    #[error("invalid query: {reason}")]
    Invalid { reason: String },
    /// A valid expression a back end cannot evaluate (the index and `contains`, say).
    #[error("invalid query: {reason}")]
    Unsupported { reason: String },
}

impl QueryError {
    /// What is wrong and what to do, without the "invalid query" prefix.
    pub fn reason(&self) -> &str {
        match self {
            QueryError::Invalid { reason } | QueryError::Unsupported { reason } => reason,
        }
    }
}
