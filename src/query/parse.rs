//! The `q` language's parser: text → syntax tree (positions kept for errors) → [`Expr`], with
//! field names resolved against the registry and values checked, so that every error names its
//! position and what to write instead. Nothing here may panic on user input.

use std::ops::Bound;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ast::{Cmp, Expr, FieldRef, Op, Scalar};
use super::text::{query_value, split_path, words};
use super::QueryError;
use crate::event::fields::{self, FieldDef, FieldType};

/// Deepest nesting of parentheses and `NOT`s.
const MAX_DEPTH: usize = 32;
/// Most field clauses and words in one query.
const MAX_CLAUSES: usize = 1024;
/// Longest query text, in bytes.
pub const MAX_QUERY_BYTES: usize = 64 * 1024;

/// A parsed query, before field names are resolved.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Clause(Clause),
}

#[derive(Debug, Clone, PartialEq)]
struct Clause {
    /// `None` for free text.
    pub field: Option<FieldName>,
    pub value: Value,
    /// Character position of the value, for error messages.
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct FieldName {
    /// As written, backslash escapes kept (they matter in `arguments.` paths).
    pub name: String,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Word(String),
    Phrase(String),
    /// `field:*`
    Exists,
    Range {
        lower: Bound<String>,
        upper: Bound<String>,
    },
}

fn err(reason: String) -> QueryError {
    QueryError::Invalid { reason }
}

/// Parses the syntax of query text; `Ok(None)` matches everything.
fn parse_syntax(text: &str) -> Result<Option<Node>, QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(err(format!(
            "the query is {} bytes long; the limit is {MAX_QUERY_BYTES}",
            text.len()
        )));
    }
    let mut p = Parser {
        s: text.chars().collect(),
        i: 0,
        clauses: 0,
    };
    p.skip_ws();
    if p.eof() {
        return Ok(None);
    }
    let node = p.parse_or(0, None)?;
    p.skip_ws();
    if !p.eof() {
        // parse_or only stops early at a `)` it does not own.
        return Err(err(format!(
            "unmatched `)` at position {}; remove it or add a `(` before it",
            p.i
        )));
    }
    Ok(match node {
        Node::All => None,
        n => Some(n),
    })
}

struct Parser {
    s: Vec<char>,
    /// Current position, in characters.
    i: usize,
    clauses: usize,
}

fn is_word_end(c: char) -> bool {
    c.is_whitespace() || c == '(' || c == ')' || c == '"'
}

impl Parser {
    fn eof(&self) -> bool {
        self.i >= self.s.len()
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.i += 1;
        }
    }

    /// Whether an operator keyword (`AND`, `OR`, `NOT`) starts here as a word of its own.
    fn at_keyword(&self, kw: &str) -> bool {
        let n = kw.chars().count();
        self.s.len() >= self.i + n
            && self.s[self.i..self.i + n].iter().copied().eq(kw.chars())
            && self.s.get(self.i + n).is_none_or(|c| is_word_end(*c))
    }

    fn at_end_of_group(&self) -> bool {
        self.eof() || self.peek() == Some(')')
    }

    fn count_clause(&mut self) -> Result<(), QueryError> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(err(format!(
                "the query has more than {MAX_CLAUSES} terms; narrow it down"
            )));
        }
        Ok(())
    }

    fn parse_or(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, QueryError> {
        let mut items = vec![self.parse_and(depth, field)?];
        loop {
            self.skip_ws();
            if !self.at_keyword("OR") {
                break;
            }
            let at = self.i;
            self.i += 2;
            self.skip_ws();
            if self.at_end_of_group() || self.at_keyword("OR") || self.at_keyword("AND") {
                return Err(err(format!("`OR` at position {at} needs a term after it")));
            }
            items.push(self.parse_and(depth, field)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::Or(items)
        })
    }

    fn parse_and(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, QueryError> {
        let mut items = vec![self.parse_unary(depth, field)?];
        loop {
            self.skip_ws();
            if self.at_end_of_group() || self.at_keyword("OR") {
                break;
            }
            if self.at_keyword("AND") {
                let at = self.i;
                self.i += 3;
                self.skip_ws();
                if self.at_end_of_group() || self.at_keyword("OR") || self.at_keyword("AND") {
                    return Err(err(format!("`AND` at position {at} needs a term after it")));
                }
            }
            items.push(self.parse_unary(depth, field)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Node::And(items)
        })
    }

    fn parse_unary(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, QueryError> {
        self.skip_ws();
        let at = self.i;
        if depth >= MAX_DEPTH {
            return Err(err(format!(
                "the query nests `NOT`s and parentheses more than {MAX_DEPTH} deep at position {at}"
            )));
        }
        for kw in ["AND", "OR"] {
            if self.at_keyword(kw) {
                return Err(err(format!(
                    "`{kw}` at position {at} must stand between two terms"
                )));
            }
        }
        if self.at_keyword("NOT") {
            self.i += 3;
            self.skip_ws();
            if self.at_end_of_group() {
                return Err(err(format!("`NOT` at position {at} needs a term after it")));
            }
            return Ok(Node::Not(Box::new(self.parse_unary(depth + 1, field)?)));
        }
        match self.peek() {
            Some(sign @ ('-' | '+')) => {
                self.i += 1;
                if self.peek().is_none_or(|c| c.is_whitespace() || c == ')') {
                    return Err(err(format!(
                        "`{sign}` at position {at} must be directly followed by a term, \
                         e.g. {sign}tool:read_file"
                    )));
                }
                let node = self.parse_primary(depth, field)?;
                Ok(if sign == '-' {
                    Node::Not(Box::new(node))
                } else {
                    node
                })
            }
            _ => self.parse_primary(depth, field),
        }
    }

    fn parse_group(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, QueryError> {
        let at = self.i;
        if depth + 1 >= MAX_DEPTH {
            return Err(err(format!(
                "the query nests parentheses more than {MAX_DEPTH} deep at position {at}"
            )));
        }
        self.i += 1;
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(err(format!(
                "empty parentheses at position {at}; put a term inside or remove them"
            )));
        }
        let node = self.parse_or(depth + 1, field)?;
        self.skip_ws();
        if self.peek() != Some(')') {
            return Err(err(format!("unclosed `(` at position {at}; add a `)`")));
        }
        self.i += 1;
        Ok(node)
    }

    fn parse_primary(
        &mut self,
        depth: usize,
        field: Option<&FieldName>,
    ) -> Result<Node, QueryError> {
        let at = self.i;
        match self.peek() {
            Some('(') => self.parse_group(depth, field),
            Some(')') | None => Err(err(format!("expected a term at position {at}"))),
            Some('"') => {
                let phrase = self.read_phrase()?;
                self.clause(field.cloned(), Value::Phrase(phrase), at)
            }
            Some(_) => {
                // A field name is everything up to an unescaped `:`.
                let start = self.i;
                let raw = self.read_raw(|c| is_word_end(c) || c == ':');
                if self.peek() == Some(':') {
                    if raw.is_empty() {
                        return Err(err(format!(
                            "`:` at position {at} needs a field name before it, e.g. tool:read_file; \
                             to search text containing `:`, put it in quotes"
                        )));
                    }
                    self.i += 1;
                    let name = FieldName {
                        name: raw,
                        at: start,
                    };
                    return self.parse_value(depth, name);
                }
                if raw == "*" {
                    return Ok(match field {
                        Some(f) => Node::Clause(Clause {
                            field: Some(f.clone()),
                            value: Value::Exists,
                            at,
                        }),
                        None => Node::All,
                    });
                }
                self.clause(field.cloned(), Value::Word(unescape(&raw)), at)
            }
        }
    }

    fn clause(
        &mut self,
        field: Option<FieldName>,
        value: Value,
        at: usize,
    ) -> Result<Node, QueryError> {
        self.count_clause()?;
        Ok(Node::Clause(Clause { field, value, at }))
    }

    /// The value after `field:`.
    fn parse_value(&mut self, depth: usize, field: FieldName) -> Result<Node, QueryError> {
        let at = self.i;
        let name = &field.name;
        match self.peek() {
            None => Err(err(format!(
                "missing value after `{name}:` at position {at}; write e.g. {name}:value"
            ))),
            Some(c) if c.is_whitespace() || c == ')' => Err(err(format!(
                "missing value after `{name}:` at position {at}; write e.g. {name}:value \
                 (no space after `:`)"
            ))),
            Some('(') => self.parse_group(depth, Some(&field)),
            Some('"') => {
                let phrase = self.read_phrase()?;
                self.clause(Some(field), Value::Phrase(phrase), at)
            }
            Some(open @ ('[' | '{')) => {
                self.i += 1;
                self.skip_ws();
                let lower = self.read_bound(at, name)?;
                self.skip_ws();
                if !self.at_keyword("TO") {
                    return Err(err(format!(
                        "expected `TO` at position {} in the range starting at position {at}; \
                         write e.g. {name}:[100 TO 500]",
                        self.i
                    )));
                }
                self.i += 2;
                self.skip_ws();
                let upper = self.read_bound(at, name)?;
                self.skip_ws();
                let close = self.peek();
                if !matches!(close, Some(']' | '}')) {
                    return Err(err(format!(
                        "unclosed range at position {at}; end it with `]` (inclusive) or `}}` (exclusive)"
                    )));
                }
                self.i += 1;
                let bound = |v: String, inclusive: bool| match v.as_str() {
                    "*" => Bound::Unbounded,
                    _ if inclusive => Bound::Included(v),
                    _ => Bound::Excluded(v),
                };
                let value = Value::Range {
                    lower: bound(lower, open == '['),
                    upper: bound(upper, close == Some(']')),
                };
                self.clause(Some(field), value, at)
            }
            Some(op @ ('>' | '<')) => {
                self.i += 1;
                let inclusive = self.peek() == Some('=');
                if inclusive {
                    self.i += 1;
                }
                self.skip_ws();
                let v = if self.peek() == Some('"') {
                    self.read_phrase()?
                } else {
                    unescape(&self.read_raw(is_word_end))
                };
                if v.is_empty() {
                    return Err(err(format!(
                        "missing value after `{name}:{op}` at position {at}; write e.g. {name}:{op}100"
                    )));
                }
                let b = if inclusive {
                    Bound::Included(v)
                } else {
                    Bound::Excluded(v)
                };
                let value = if op == '>' {
                    Value::Range {
                        lower: b,
                        upper: Bound::Unbounded,
                    }
                } else {
                    Value::Range {
                        lower: Bound::Unbounded,
                        upper: b,
                    }
                };
                self.clause(Some(field), value, at)
            }
            Some(_) => {
                let raw = self.read_raw(is_word_end);
                let value = if raw == "*" {
                    Value::Exists
                } else {
                    Value::Word(unescape(&raw))
                };
                self.clause(Some(field), value, at)
            }
        }
    }

    /// One bound of a `[a TO b]` range: a quoted phrase or a word.
    fn read_bound(&mut self, range_at: usize, name: &str) -> Result<String, QueryError> {
        let v = if self.peek() == Some('"') {
            self.read_phrase()?
        } else {
            unescape(&self.read_raw(|c| c.is_whitespace() || matches!(c, ']' | '}' | '(' | ')')))
        };
        if v.is_empty() {
            return Err(err(format!(
                "missing bound in the range at position {range_at}; write e.g. {name}:[100 TO 500], \
                 with `*` for an open end"
            )));
        }
        Ok(v)
    }

    /// Characters up to (not including) the first unescaped one for which `stop` holds,
    /// escapes kept as written.
    fn read_raw(&mut self, stop: impl Fn(char) -> bool) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if c == '\\' {
                out.push(c);
                self.i += 1;
                if let Some(next) = self.peek() {
                    out.push(next);
                    self.i += 1;
                }
                continue;
            }
            if stop(c) {
                break;
            }
            out.push(c);
            self.i += 1;
        }
        out
    }

    fn read_phrase(&mut self) -> Result<String, QueryError> {
        let at = self.i;
        self.i += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(err(format!(
                        "unclosed quote at position {at}; add a closing `\"`"
                    )))
                }
                Some('"') => {
                    self.i += 1;
                    return Ok(out);
                }
                Some('\\') => {
                    self.i += 1;
                    if let Some(c) = self.peek() {
                        out.push(c);
                        self.i += 1;
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// Resolves `\x` to `x`.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
                continue;
            }
        }
        out.push(c);
    }
    out
}
/// Parses `q` text into an expression; an empty query (or `*`) is [`Expr::All`].
pub fn parse(text: &str) -> Result<Expr, QueryError> {
    match parse_syntax(text)? {
        None => Ok(Expr::All),
        Some(node) => resolve(node),
    }
}

/// The syntax tree with field names and values checked. Every clause is checked, in the
/// order written, so the first error reported is the leftmost.
fn resolve(node: Node) -> Result<Expr, QueryError> {
    let all = |items: Vec<Node>| {
        items
            .into_iter()
            .map(resolve)
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(match node {
        Node::All => Expr::All,
        Node::And(items) => Expr::And(all(items)?),
        Node::Or(items) => Expr::Or(all(items)?),
        Node::Not(inner) => Expr::Not(Box::new(resolve(*inner)?)),
        Node::Clause(c) => clause(c)?,
    })
}

/// ` at position N`, or nothing for a name that did not come from query text.
struct Pos(Option<usize>);

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(at) => write!(f, " at position {at}"),
            None => Ok(()),
        }
    }
}

/// What a field name (`tool`, `arguments.a.b`, `labels.env`) refers to, as rules name fields.
pub fn field_ref(name: &str) -> Result<FieldRef, QueryError> {
    resolve_name(name, None)
}

fn resolve_name(name: &str, at: Option<usize>) -> Result<FieldRef, QueryError> {
    let pos = Pos(at);
    if name.chars().any(char::is_control) {
        return Err(err(format!(
            "the field name{pos} contains a control character"
        )));
    }
    if name == "tenant" {
        return Err(err(format!(
            "`tenant`{pos} cannot be queried: every search is limited to the caller's tenant; \
             remove it"
        )));
    }
    if let Some(path) = name.strip_prefix("arguments.") {
        if path.is_empty() {
            return Err(needs_key(name, &pos));
        }
        return Ok(FieldRef::Argument(split_path(path)));
    }
    if let Some(key) = name.strip_prefix("labels.") {
        if key.is_empty() {
            return Err(needs_key(name, &pos));
        }
        return Ok(FieldRef::Label(unescape(key)));
    }
    if name == "labels" {
        return Err(err(format!(
            "`labels`{pos} needs a key: write labels.<key>:value, e.g. labels.env:prod"
        )));
    }
    match fields::searchable().find(|f| f.name == name) {
        Some(f) if f.ty == FieldType::Json => Ok(FieldRef::AnyArgument),
        Some(f) => Ok(FieldRef::Field(f)),
        None => Err(err(unknown_field(name, &pos))),
    }
}

fn needs_key(name: &str, pos: &Pos) -> QueryError {
    err(format!(
        "`{name}`{pos} needs a key after the dot, e.g. {name}path:value"
    ))
}

/// One clause with its field resolved and its value checked against the field's type. (Free
/// text never has a range or `*`: the syntax only builds those after a field name.)
fn clause(c: Clause) -> Result<Expr, QueryError> {
    let at = c.at;
    let Some(field) = c.field else {
        let (text, phrase) = match c.value {
            Value::Word(w) => (w, false),
            Value::Phrase(w) => (w, true),
            Value::Exists | Value::Range { .. } => return Ok(Expr::All),
        };
        if words(&text).is_empty() {
            return Err(err(no_words(&text, at)));
        }
        let op = if phrase {
            Op::Phrase(text)
        } else {
            Op::Term(text)
        };
        return Ok(Expr::Cmp(Cmp {
            field: FieldRef::FreeText,
            op,
        }));
    };
    let name = field.name.as_str();
    let target = resolve_name(name, Some(field.at))?;
    let def = match &target {
        FieldRef::Field(def) => Some(*def),
        _ => None,
    };
    let ty = def.map(|d| d.ty);
    let op = match c.value {
        Value::Exists => match ty {
            Some(FieldType::Exact | FieldType::Enum(_) | FieldType::U64 | FieldType::Time) => {
                Op::Exists
            }
            _ => {
                return Err(err(format!(
                    "`{name}:*` at position {at} is not supported: `field:*` works on the \
                     exact-match, number and time fields"
                )))
            }
        },
        Value::Range { lower, upper } => {
            let scalar = |v: &str| -> Result<Scalar, QueryError> {
                match ty {
                    Some(FieldType::U64) => parse_u64(name, v, at).map(Scalar::U64),
                    _ => parse_time(name, v, at).map(Scalar::Time),
                }
            };
            if !matches!(ty, Some(FieldType::U64 | FieldType::Time)) {
                return Err(err(format!(
                    "`{name}` at position {} does not support ranges; comparisons and ranges \
                     work on duration_ms, result_bytes, seq and timestamp",
                    field.at
                )));
            }
            Op::Range {
                lower: map_bound(lower, scalar)?,
                upper: map_bound(upper, scalar)?,
            }
        }
        Value::Word(v) => {
            check_value(&target, def, name, &v, at)?;
            Op::Term(v)
        }
        Value::Phrase(v) => {
            check_value(&target, def, name, &v, at)?;
            Op::Phrase(v)
        }
    };
    Ok(Expr::Cmp(Cmp { field: target, op }))
}

/// Checks a word or phrase against what the field holds.
fn check_value(
    target: &FieldRef,
    def: Option<&FieldDef>,
    name: &str,
    v: &str,
    at: usize,
) -> Result<(), QueryError> {
    let shown = shorten(v);
    match (target, def.map(|d| d.ty)) {
        (_, Some(FieldType::Enum(names))) if !names.contains(&v) => Err(err(format!(
            "`{name}` has no value `{shown}` (position {at}); use one of: {}",
            names.join(", ")
        ))),
        (_, Some(FieldType::U64)) => parse_u64(name, v, at).map(drop),
        (_, Some(FieldType::Time)) => parse_time(name, v, at).map(drop),
        (_, Some(FieldType::Hint)) if v != "true" && v != "false" => Err(err(format!(
            "`{name}` takes true or false, got `{shown}` at position {at}"
        ))),
        (FieldRef::AnyArgument, _) | (_, Some(FieldType::Text)) if words(v).is_empty() => {
            Err(err(no_words(v, at)))
        }
        (FieldRef::Argument(_), _) if words(v).is_empty() && query_value(v).is_none() => {
            Err(err(no_words(v, at)))
        }
        _ => Ok(()),
    }
}

fn map_bound(
    b: Bound<String>,
    f: impl Fn(&str) -> Result<Scalar, QueryError>,
) -> Result<Bound<Scalar>, QueryError> {
    Ok(match b {
        Bound::Included(v) => Bound::Included(f(&v)?),
        Bound::Excluded(v) => Bound::Excluded(f(&v)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

pub(crate) fn parse_u64(name: &str, v: &str, at: usize) -> Result<u64, QueryError> {
    v.parse::<u64>().map_err(|_| {
        err(format!(
            "`{name}` takes a whole number, got `{}` at position {at}",
            shorten(v)
        ))
    })
}

/// An RFC 3339 time between [`crate::event::MIN_TIME`] and [`crate::event::MAX_TIME`].
pub(crate) fn parse_time(name: &str, v: &str, at: usize) -> Result<OffsetDateTime, QueryError> {
    let t = OffsetDateTime::parse(v, &Rfc3339).map_err(|_| {
        err(format!(
            "`{name}` takes an RFC 3339 time such as 2025-01-31T12:00:00Z, got `{}` at position {at}",
            shorten(v)
        ))
    })?;
    if !(crate::event::MIN_TIME..=crate::event::MAX_TIME).contains(&t) {
        return Err(err(format!(
            "`{name}` takes a time from 1970 to 9999, got `{}` at position {at}",
            shorten(v)
        )));
    }
    Ok(t)
}

pub(crate) fn no_words(text: &str, at: usize) -> String {
    format!(
        "`{}` at position {at} has no searchable word (text is split into letters and digits; \
         words over 40 characters are not indexed): use an exact field such as \
         tool_description_hash:<value>, or remove it",
        shorten(text)
    )
}

/// At most 64 characters of user text for an error message.
pub(crate) fn shorten(v: &str) -> String {
    if v.chars().count() <= 64 {
        v.to_string()
    } else {
        let mut s: String = v.chars().take(61).collect();
        s.push_str("...");
        s
    }
}

/// The field names queries may use, as error messages list them.
pub(crate) fn known_fields() -> String {
    fields::searchable()
        .map(|f| match f.ty {
            FieldType::Json => "arguments, arguments.<path>",
            FieldType::Labels => "labels.<key>",
            _ => f.name,
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_field(name: &str, pos: &Pos) -> String {
    let (head, rest) = match name.find('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let suggestion = fields::searchable()
        .map(|f| f.name)
        .map(|c| (edit_distance(&head.to_lowercase(), c), c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min()
        .map(|(_, c)| {
            let rest = if rest.is_empty() && c == "labels" {
                ".<key>"
            } else {
                rest
            };
            format!(" (did you mean `{c}{rest}`?)")
        });
    let hint = match &suggestion {
        Some(_) => "",
        None => "; to search text containing `:`, put it in quotes",
    };
    format!(
        "unknown field `{}`{pos}{}; known fields: {}{hint}",
        shorten(name),
        suggestion.unwrap_or_default(),
        known_fields()
    )
}

/// Levenshtein distance, for "did you mean" (inputs are short field names).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().take(64).enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
