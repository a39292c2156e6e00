//! The query AST: what both back ends (the tantivy compiler in `index/` and [`super::matches`])
//! evaluate. The parser builds it from `q` text; the rule engine builds it from rule files.

use std::ops::Bound;

use time::OffsetDateTime;

use crate::event::fields::FieldDef;

/// A boolean expression over one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every event (an empty query, `*`).
    All,
    /// Every item matches (an empty list matches everything).
    And(Vec<Expr>),
    /// At least one item matches (an empty list matches nothing).
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp(Cmp),
}

/// One comparison: a field (or a place in the event) and what its value must satisfy.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmp {
    pub field: FieldRef,
    pub op: Op,
}

/// Where in the event a comparison looks.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef {
    /// A registry field (`tool`, `user`, `outcome`, `duration_ms`, `timestamp`, `destructive`,
    /// `redaction`, `result`...).
    Field(&'static FieldDef),
    /// `arguments.a.b`: the values at this path of the arguments JSON (arrays are looked
    /// through), one unescaped key per level.
    Argument(Vec<String>),
    /// `arguments:` without a path: every argument value.
    AnyArgument,
    /// `labels.k`: the value of one label.
    Label(String),
    /// Bare words and phrases: every argument value, the result and the error.
    FreeText,
    /// The host of every URL among the values of the inner place (rules' `host` modifier):
    /// lower-cased, IPv6 without brackets, IPv4 in dotted form whatever way the URL spelled it
    /// (`http://2130706433/` has host `127.0.0.1`). Values that are not URLs with a host
    /// yield nothing. Matcher only.
    Host(Box<FieldRef>),
}

/// What a value must satisfy.
///
/// `Term`, `Phrase`, `Exists` and `Range` are what the `q` language produces; both back ends
/// evaluate them with the same meaning. The others are for rules (Sigma modifiers) and are
/// evaluated by the matcher only: the index compiler refuses them with a [`super::QueryError`]
/// unless it can express them exactly (`Equals` with `cased` on exact fields and labels,
/// `Compare` on number fields).
#[derive(Debug, Clone)]
pub enum Op {
    /// On exact fields and labels: the whole value, case-sensitive. On number, time and hint
    /// fields: that value. On text (result, error, every argument, free text): the words of the
    /// text in a row, tokenized as the index does (letters and digits, lower-cased, words of 40
    /// bytes or more left out). On `arguments.<path>`: those words, or a number, `true`/`false`
    /// or RFC 3339 time equal to the value there.
    Term(String),
    /// A quoted value: the same as `Term` (a phrase is words in a row either way).
    Phrase(String),
    /// The field has a value (exact fields: non-empty; numbers and times: always).
    Exists,
    /// Numbers ([`Scalar::U64`]) or times ([`Scalar::Time`]) between the bounds.
    Range {
        lower: Bound<Scalar>,
        upper: Bound<Scalar>,
    },
    /// The whole value equals `value` (case-insensitive unless `cased`).
    Equals {
        value: String,
        cased: bool,
    },
    Contains {
        value: String,
        cased: bool,
    },
    StartsWith {
        value: String,
        cased: bool,
    },
    EndsWith {
        value: String,
        cased: bool,
    },
    /// The whole value matches a Sigma wildcard: `*` any run of characters, `?` one character,
    /// `\*` `\?` `\\` the character itself (a `\` before anything else is a backslash).
    Wildcard {
        pattern: String,
        cased: bool,
    },
    /// The regex matches somewhere in the value (unanchored, as Sigma `|re`).
    Regex(Pattern),
    /// The value is an IP address (`ip`, or `ip:port` / `[ip]:port`) inside one of the nets.
    Cidr(Vec<ipnet::IpNet>),
    /// The value is a number (a number field, a JSON number, or a string that parses as a
    /// finite number) and compares so with `value`.
    Compare {
        op: CmpOp,
        value: f64,
    },
}

impl PartialEq for Op {
    fn eq(&self, other: &Self) -> bool {
        use Op::*;
        match (self, other) {
            (Term(a), Term(b)) | (Phrase(a), Phrase(b)) => a == b,
            (Exists, Exists) => true,
            (
                Range {
                    lower: l1,
                    upper: u1,
                },
                Range {
                    lower: l2,
                    upper: u2,
                },
            ) => l1 == l2 && u1 == u2,
            (
                Equals {
                    value: a,
                    cased: c1,
                },
                Equals {
                    value: b,
                    cased: c2,
                },
            )
            | (
                Contains {
                    value: a,
                    cased: c1,
                },
                Contains {
                    value: b,
                    cased: c2,
                },
            )
            | (
                StartsWith {
                    value: a,
                    cased: c1,
                },
                StartsWith {
                    value: b,
                    cased: c2,
                },
            )
            | (
                EndsWith {
                    value: a,
                    cased: c1,
                },
                EndsWith {
                    value: b,
                    cased: c2,
                },
            )
            | (
                Wildcard {
                    pattern: a,
                    cased: c1,
                },
                Wildcard {
                    pattern: b,
                    cased: c2,
                },
            ) => a == b && c1 == c2,
            (Regex(a), Regex(b)) => a.as_str() == b.as_str(),
            (Cidr(a), Cidr(b)) => a == b,
            (Compare { op: o1, value: v1 }, Compare { op: o2, value: v2 }) => o1 == o2 && v1 == v2,
            _ => false,
        }
    }
}

impl Op {
    /// The operator's name in messages (`contains`, `re`...), as rules spell the modifiers.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Term(_) => "term",
            Op::Phrase(_) => "phrase",
            Op::Exists => "exists",
            Op::Range { .. } => "range",
            Op::Equals { .. } => "equals",
            Op::Contains { .. } => "contains",
            Op::StartsWith { .. } => "startswith",
            Op::EndsWith { .. } => "endswith",
            Op::Wildcard { .. } => "wildcard",
            Op::Regex(_) => "re",
            Op::Cidr(_) => "cidr",
            Op::Compare { op, .. } => op.name(),
        }
    }
}

/// A bound of a range: a whole number or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    U64(u64),
    Time(OffsetDateTime),
}

/// A numeric comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Gt => "gt",
            CmpOp::Gte => "gte",
            CmpOp::Lt => "lt",
            CmpOp::Lte => "lte",
        }
    }

    /// Whether `a <op> b`.
    pub fn holds(self, a: f64, b: f64) -> bool {
        match self {
            CmpOp::Gt => a > b,
            CmpOp::Gte => a >= b,
            CmpOp::Lt => a < b,
            CmpOp::Lte => a <= b,
        }
    }
}

/// A compiled regex and what a cheap look at a text rules out before the regex runs.
#[derive(Debug, Clone)]
pub struct Pattern {
    re: regex::Regex,
    /// Every match holds a non-ASCII character, so ASCII text (most of it) cannot match: a
    /// pattern for hidden Unicode skips it at memory speed instead of running its automaton.
    non_ascii: bool,
    /// Names this pattern in the long-text memo (clones share it: same regex, same answer).
    id: u64,
}

/// Texts at least this long have their answers remembered (see [`Pattern::is_match`]).
pub const MEMO_MIN_BYTES: usize = 1024;
/// The most text one thread's memo holds; past it the memo starts again empty.
const MEMO_MAX_BYTES: usize = 2 << 20;

/// Long texts seen on one thread, each with the answers patterns gave for it.
#[derive(Default)]
struct Memo {
    answers: std::collections::HashMap<Box<str>, Vec<(u64, bool)>, foldhash::fast::RandomState>,
    bytes: usize,
}

thread_local! {
    static MEMO: std::cell::RefCell<Memo> = std::cell::RefCell::new(Memo::default());
}

impl Pattern {
    pub fn new(re: regex::Regex) -> Pattern {
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let hir = regex_syntax::parse(re.as_str()).ok();
        let non_ascii = hir.as_ref().is_some_and(needs_non_ascii);
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Pattern { re, non_ascii, id }
    }

    /// Whether the regex matches somewhere in `text`.
    ///
    /// The answer for a text of [`MEMO_MIN_BYTES`] or more is remembered on this thread, keyed
    /// by the whole text (compared in full, so a hit is always the same answer): long values
    /// repeat (every session's `tools/list` returns the same descriptions, the same page is
    /// fetched again), and comparing and hashing a text costs a fraction of running an
    /// automaton over it (≈ 1.5 ns a byte on this project's machine).
    pub fn is_match(&self, text: &str) -> bool {
        if self.non_ascii && text.is_ascii() {
            return false;
        }
        if text.len() < MEMO_MIN_BYTES {
            return self.re.is_match(text);
        }
        MEMO.with(|memo| {
            let Ok(mut memo) = memo.try_borrow_mut() else {
                return self.re.is_match(text);
            };
            if let Some(answers) = memo.answers.get_mut(text) {
                if let Some(&(_, hit)) = answers.iter().find(|(id, _)| *id == self.id) {
                    return hit;
                }
                let hit = self.re.is_match(text);
                answers.push((self.id, hit));
                return hit;
            }
            let hit = self.re.is_match(text);
            if memo.bytes + text.len() > MEMO_MAX_BYTES {
                memo.answers.clear();
                memo.bytes = 0;
            }
            if text.len() <= MEMO_MAX_BYTES {
                memo.bytes += text.len();
                memo.answers.insert(text.into(), vec![(self.id, hit)]);
            }
            hit
        })
    }

    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }

    /// Names this pattern (its clones share it).
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether ASCII text can never match (see [`Pattern::is_match`]).
    pub fn needs_non_ascii(&self) -> bool {
        self.non_ascii
    }
}

/// Whether every string `h` matches holds a non-ASCII character. `false` when unsure.
fn needs_non_ascii(h: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::{Class, HirKind};
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Literal(l) => !l.0.is_ascii(),
        HirKind::Class(Class::Unicode(c)) => c.ranges().iter().all(|r| !r.start().is_ascii()),
        HirKind::Class(Class::Bytes(c)) => c.ranges().iter().all(|r| !r.start().is_ascii()),
        HirKind::Repetition(r) => r.min > 0 && needs_non_ascii(&r.sub),
        HirKind::Capture(c) => needs_non_ascii(&c.sub),
        HirKind::Concat(items) => items.iter().any(needs_non_ascii),
        HirKind::Alternation(items) => items.iter().all(needs_non_ascii),
    }
}
