//! The query language of `q`, parsed by hand into tantivy queries.
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
//! The parser is its own (rather than tantivy's `QueryParser`) so that every error can say
//! where it is and what to write instead, so that `tenant` can never be queried (isolation is
//! enforced by the caller with a term filter), and so that bare words search every argument
//! value, which tantivy's JSON default fields do not. Nothing here may panic on user input.

use std::ops::Bound;

use tantivy::json_utils::convert_to_fast_value_and_append_to_json_term;
use tantivy::query::{
    AllQuery, BooleanQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{DateTime, Term};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::schema::{micros, FieldKind, Fields, QUERY_FIELDS};
use super::IndexError;

/// Deepest nesting of parentheses and `NOT`s.
const MAX_DEPTH: usize = 32;
/// Most field clauses and words in one query.
const MAX_CLAUSES: usize = 1024;
/// Longest query text, in bytes.
pub(crate) const MAX_QUERY_BYTES: usize = 64 * 1024;

/// A parsed query, before field names are resolved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    All,
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Clause(Clause),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Clause {
    /// `None` for free text.
    pub field: Option<FieldName>,
    pub value: Value,
    /// Character position of the value, for error messages.
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldName {
    /// As written, backslash escapes kept (they matter in `arguments.` paths).
    pub name: String,
    pub at: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Word(String),
    Phrase(String),
    /// `field:*`
    Exists,
    Range {
        lower: Bound<String>,
        upper: Bound<String>,
    },
}

fn err(reason: String) -> IndexError {
    IndexError::Query { reason }
}

/// Parses query text; `Ok(None)` matches everything.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, IndexError> {
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

    fn count_clause(&mut self) -> Result<(), IndexError> {
        self.clauses += 1;
        if self.clauses > MAX_CLAUSES {
            return Err(err(format!(
                "the query has more than {MAX_CLAUSES} terms; narrow it down"
            )));
        }
        Ok(())
    }

    fn parse_or(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, IndexError> {
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

    fn parse_and(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, IndexError> {
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

    fn parse_unary(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, IndexError> {
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

    fn parse_group(&mut self, depth: usize, field: Option<&FieldName>) -> Result<Node, IndexError> {
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
    ) -> Result<Node, IndexError> {
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
    ) -> Result<Node, IndexError> {
        self.count_clause()?;
        Ok(Node::Clause(Clause { field, value, at }))
    }

    /// The value after `field:`.
    fn parse_value(&mut self, depth: usize, field: FieldName) -> Result<Node, IndexError> {
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
    fn read_bound(&mut self, range_at: usize, name: &str) -> Result<String, IndexError> {
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

    fn read_phrase(&mut self) -> Result<String, IndexError> {
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

/// Parses and compiles query text against the day schema; `Ok(None)` matches everything.
pub(crate) fn compile(text: &str, fields: &Fields) -> Result<Option<Box<dyn Query>>, IndexError> {
    let Some(node) = parse(text)? else {
        return Ok(None);
    };
    let mut c = Compiler {
        fields,
        analyzer: fields.analyzer.clone(),
    };
    c.node(&node).map(Some)
}

struct Compiler<'a> {
    fields: &'a Fields,
    /// A copy of [`Fields::analyzer`] (tokenizing needs `&mut`).
    analyzer: TextAnalyzer,
}

fn boolean(clauses: Vec<(Occur, Box<dyn Query>)>) -> Box<dyn Query> {
    Box::new(BooleanQuery::new(clauses))
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

fn any_of(mut queries: Vec<Box<dyn Query>>) -> Box<dyn Query> {
    if queries.len() == 1 {
        return queries.remove(0);
    }
    boolean(queries.into_iter().map(|q| (Occur::Should, q)).collect())
}

impl Compiler<'_> {
    fn node(&mut self, node: &Node) -> Result<Box<dyn Query>, IndexError> {
        Ok(match node {
            Node::All => Box::new(AllQuery),
            Node::And(items) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for item in items {
                    match item {
                        Node::All => {}
                        Node::Not(inner) => clauses.push((Occur::MustNot, self.node(inner)?)),
                        other => clauses.push((Occur::Must, self.node(other)?)),
                    }
                }
                if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                boolean(clauses)
            }
            Node::Or(items) => {
                if items.contains(&Node::All) {
                    return Ok(Box::new(AllQuery));
                }
                let queries = items
                    .iter()
                    .map(|i| self.node(i))
                    .collect::<Result<Vec<_>, _>>()?;
                any_of(queries)
            }
            Node::Not(inner) => boolean(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.node(inner)?),
            ]),
            Node::Clause(c) => self.clause(c)?,
        })
    }

    fn clause(&mut self, c: &Clause) -> Result<Box<dyn Query>, IndexError> {
        let Some(field) = &c.field else {
            let text = match &c.value {
                Value::Word(w) | Value::Phrase(w) => w,
                // The parser only builds these after a field name.
                Value::Exists | Value::Range { .. } => return Ok(Box::new(AllQuery)),
            };
            let mut queries = Vec::new();
            for f in self.fields.free_text() {
                if let Some(q) = self.text(text, |t| Term::from_field_text(f, t)) {
                    queries.push(q);
                }
            }
            if queries.is_empty() {
                return Err(err(no_words(text, c.at)));
            }
            return Ok(any_of(queries));
        };
        let name = field.name.as_str();
        if name.chars().any(char::is_control) {
            return Err(err(format!(
                "the field name at position {} contains a control character",
                field.at
            )));
        }
        if name == "tenant" {
            return Err(err(format!(
                "`tenant` at position {} cannot be queried: every search is limited to the \
                 caller's tenant; remove it",
                field.at
            )));
        }
        let (kind, path) = if let Some(path) = name.strip_prefix("arguments.") {
            (FieldKind::ArgumentsPath(self.fields.arguments), path)
        } else if let Some(key) = name.strip_prefix("labels.") {
            (FieldKind::LabelsKey(self.fields.labels), key)
        } else if name == "labels" {
            return Err(err(format!(
                "`labels` at position {} needs a key: write labels.<key>:value, e.g. labels.env:prod",
                field.at
            )));
        } else {
            match self.fields.kind(name) {
                Some(kind) => (kind, ""),
                None => return Err(err(unknown_field(name, field.at))),
            }
        };
        if path.is_empty() && matches!(kind, FieldKind::ArgumentsPath(_) | FieldKind::LabelsKey(_))
        {
            return Err(err(format!(
                "`{name}` at position {} needs a key after the dot, e.g. {name}path:value",
                field.at
            )));
        }
        let at = c.at;
        let shown = |v: &str| shorten(v);
        match (&c.value, kind) {
            (
                Value::Exists,
                FieldKind::Raw(_) | FieldKind::Enum(..) | FieldKind::U64(_) | FieldKind::Date(_),
            ) => Ok(Box::new(ExistsQuery::new(name.to_string(), false))),
            (Value::Exists, _) => Err(err(format!(
                "`{name}:*` at position {at} is not supported: `field:*` works on the exact-match, \
                 number and time fields"
            ))),
            (Value::Range { lower, upper }, FieldKind::U64(f)) => {
                let lower = map_bound(lower, |v| {
                    parse_u64(name, v, at).map(|n| Term::from_field_u64(f, n))
                })?;
                let upper = map_bound(upper, |v| {
                    parse_u64(name, v, at).map(|n| Term::from_field_u64(f, n))
                })?;
                Ok(range_query(name, lower, upper))
            }
            (Value::Range { lower, upper }, FieldKind::Date(f)) => {
                let lower = map_bound(lower, |v| parse_time(name, v, at).map(|t| date_term(f, t)))?;
                let upper = map_bound(upper, |v| parse_time(name, v, at).map(|t| date_term(f, t)))?;
                Ok(range_query(name, lower, upper))
            }
            (Value::Range { .. }, _) => Err(err(format!(
                "`{name}` at position {} does not support ranges; comparisons and ranges work on \
                 duration_ms, result_bytes, seq and timestamp",
                field.at
            ))),
            (Value::Word(v) | Value::Phrase(v), kind) => match kind {
                FieldKind::Raw(f) => Ok(term_query(Term::from_field_text(f, v))),
                FieldKind::Enum(f, names) => {
                    if names.contains(&v.as_str()) {
                        Ok(term_query(Term::from_field_text(f, v)))
                    } else {
                        Err(err(format!(
                            "`{name}` has no value `{}` (position {at}); use one of: {}",
                            shown(v),
                            names.join(", ")
                        )))
                    }
                }
                FieldKind::U64(f) => {
                    // Number fields are columns only: an exact value is a one-value range.
                    let t = Term::from_field_u64(f, parse_u64(name, v, at)?);
                    Ok(Box::new(RangeQuery::new(
                        Bound::Included(t.clone()),
                        Bound::Included(t),
                    )))
                }
                FieldKind::Date(f) => {
                    let t = date_term(f, parse_time(name, v, at)?);
                    Ok(Box::new(RangeQuery::new(
                        Bound::Included(t.clone()),
                        Bound::Included(t),
                    )))
                }
                FieldKind::Bool(f) => match v.as_str() {
                    "true" => Ok(term_query(Term::from_field_bool(f, true))),
                    "false" => Ok(term_query(Term::from_field_bool(f, false))),
                    _ => Err(err(format!(
                        "`{name}` takes true or false, got `{}` at position {at}",
                        shown(v)
                    ))),
                },
                FieldKind::Text(f) => self
                    .text(v, |t| Term::from_field_text(f, t))
                    .ok_or_else(|| err(no_words(v, at))),
                FieldKind::ArgumentsPath(f) => {
                    let base = Term::from_field_json_path(f, path, false);
                    let mut queries = Vec::new();
                    if let Some(q) = self.text(v, |t| {
                        let mut term = base.clone();
                        term.append_type_and_str(t);
                        term
                    }) {
                        queries.push(q);
                    }
                    // Numbers, booleans and RFC 3339 times are indexed typed inside JSON.
                    if let Some(term) =
                        convert_to_fast_value_and_append_to_json_term(&base, v, true)
                    {
                        queries.push(term_query(term));
                    }
                    if queries.is_empty() {
                        return Err(err(no_words(v, at)));
                    }
                    Ok(any_of(queries))
                }
                FieldKind::LabelsKey(f) => {
                    // A label key is one JSON level: escape dots so they are not path separators.
                    let key = unescape(path).replace('\\', "\\\\").replace('.', "\\.");
                    let mut term = Term::from_field_json_path(f, &key, false);
                    term.append_type_and_str(v);
                    Ok(term_query(term))
                }
            },
        }
    }

    /// A term query for one token, a phrase query for several, `None` for none.
    fn text(&mut self, text: &str, term: impl Fn(&str) -> Term) -> Option<Box<dyn Query>> {
        let mut terms: Vec<(usize, Term)> = Vec::new();
        let mut stream = self.analyzer.token_stream(text);
        stream.process(&mut |token| terms.push((token.position, term(&token.text))));
        match terms.len() {
            0 => None,
            1 => terms.pop().map(|(_, t)| term_query(t)),
            _ => Some(Box::new(PhraseQuery::new_with_offset(terms))),
        }
    }
}

/// A range on a fast field; `[* TO *]` means "has a value" (tantivy's range needs a bound).
fn range_query(name: &str, lower: Bound<Term>, upper: Bound<Term>) -> Box<dyn Query> {
    if matches!((&lower, &upper), (Bound::Unbounded, Bound::Unbounded)) {
        return Box::new(ExistsQuery::new(name.to_string(), false));
    }
    Box::new(RangeQuery::new(lower, upper))
}

fn map_bound(
    b: &Bound<String>,
    f: impl Fn(&str) -> Result<Term, IndexError>,
) -> Result<Bound<Term>, IndexError> {
    Ok(match b {
        Bound::Included(v) => Bound::Included(f(v)?),
        Bound::Excluded(v) => Bound::Excluded(f(v)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn date_term(field: Field, t: OffsetDateTime) -> Term {
    // Not `from_field_date_for_search`: ranges run on the microsecond fast field.
    Term::from_field_date(field, DateTime::from_timestamp_micros(micros(t)))
}

fn parse_u64(name: &str, v: &str, at: usize) -> Result<u64, IndexError> {
    v.parse::<u64>().map_err(|_| {
        err(format!(
            "`{name}` takes a whole number, got `{}` at position {at}",
            shorten(v)
        ))
    })
}

fn parse_time(name: &str, v: &str, at: usize) -> Result<OffsetDateTime, IndexError> {
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

fn no_words(text: &str, at: usize) -> String {
    format!(
        "`{}` at position {at} has no searchable word (text is split into letters and digits; \
         words over 40 characters are not indexed): use an exact field such as \
         tool_description_hash:<value>, or remove it",
        shorten(text)
    )
}

/// At most 64 characters of user text for an error message.
fn shorten(v: &str) -> String {
    if v.chars().count() <= 64 {
        v.to_string()
    } else {
        let mut s: String = v.chars().take(61).collect();
        s.push_str("...");
        s
    }
}

fn unknown_field(name: &str, at: usize) -> String {
    let (head, rest) = match name.find('.') {
        Some(i) => (&name[..i], &name[i..]),
        None => (name, ""),
    };
    let candidates = QUERY_FIELDS
        .iter()
        .filter(|f| !f.contains('<'))
        .copied()
        .chain(["labels"]);
    let suggestion = candidates
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
        "unknown field `{}` at position {at}{}; known fields: {}{hint}",
        shorten(name),
        suggestion.unwrap_or_default(),
        QUERY_FIELDS.join(", ")
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn word(field: Option<&str>, v: &str) -> Node {
        Node::Clause(Clause {
            field: field.map(|f| FieldName {
                name: f.into(),
                at: 0,
            }),
            value: Value::Word(v.into()),
            at: 0,
        })
    }

    /// The tree with positions zeroed, for comparisons.
    fn shape(node: Node) -> Node {
        match node {
            Node::And(v) => Node::And(v.into_iter().map(shape).collect()),
            Node::Or(v) => Node::Or(v.into_iter().map(shape).collect()),
            Node::Not(n) => Node::Not(Box::new(shape(*n))),
            Node::Clause(mut c) => {
                c.at = 0;
                if let Some(f) = &mut c.field {
                    f.at = 0;
                }
                Node::Clause(c)
            }
            n => n,
        }
    }

    fn parsed(q: &str) -> Node {
        shape(parse(q).unwrap().unwrap())
    }

    fn query_error(q: &str) -> String {
        match compile(q, &Fields::new()) {
            Err(IndexError::Query { reason }) => reason,
            Err(other) => panic!("{q}: wrong error kind {other:?}"),
            Ok(_) => panic!("{q}: parsed"),
        }
    }

    #[test]
    fn empty_and_star_match_everything() {
        for q in ["", "   ", "*", " * "] {
            assert_eq!(parse(q).unwrap(), None, "{q:?}");
        }
    }

    #[test]
    fn precedence_not_and_or() {
        let q = parsed("a b OR NOT c AND d");
        assert_eq!(
            q,
            Node::Or(vec![
                Node::And(vec![word(None, "a"), word(None, "b")]),
                Node::And(vec![Node::Not(Box::new(word(None, "c"))), word(None, "d")]),
            ])
        );
        assert_eq!(
            parsed("-tool:x"),
            Node::Not(Box::new(word(Some("tool"), "x")))
        );
        assert_eq!(parsed("+tool:x"), word(Some("tool"), "x"));
        // Lower-case keywords are words.
        assert_eq!(
            parsed("a and b"),
            Node::And(vec![word(None, "a"), word(None, "and"), word(None, "b")])
        );
    }

    #[test]
    fn field_values_keep_colons_and_groups_apply_the_field() {
        assert_eq!(
            parsed("remote_addr:10.0.0.1:443"),
            word(Some("remote_addr"), "10.0.0.1:443")
        );
        assert_eq!(
            parsed("outcome:(error OR timeout)"),
            Node::Or(vec![
                word(Some("outcome"), "error"),
                word(Some("outcome"), "timeout")
            ])
        );
        assert_eq!(parsed(r"tool:a\ b"), word(Some("tool"), "a b"));
        assert_eq!(parsed(r"12\:30"), word(None, "12:30"));
    }

    #[test]
    fn ranges_and_comparisons() {
        let range = |lower, upper| {
            Node::Clause(Clause {
                field: Some(FieldName {
                    name: "duration_ms".into(),
                    at: 0,
                }),
                value: Value::Range { lower, upper },
                at: 0,
            })
        };
        use Bound::*;
        assert_eq!(
            parsed("duration_ms:>1000"),
            range(Excluded("1000".into()), Unbounded)
        );
        assert_eq!(
            parsed("duration_ms:>= 1000"),
            range(Included("1000".into()), Unbounded)
        );
        assert_eq!(
            parsed("duration_ms:<5"),
            range(Unbounded, Excluded("5".into()))
        );
        assert_eq!(
            parsed("duration_ms:<=5"),
            range(Unbounded, Included("5".into()))
        );
        assert_eq!(
            parsed("duration_ms:[1 TO 5]"),
            range(Included("1".into()), Included("5".into()))
        );
        assert_eq!(
            parsed("duration_ms:{1 TO *]"),
            range(Excluded("1".into()), Unbounded)
        );
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        let e = query_error("usr:alice");
        assert!(e.starts_with("unknown field `usr` at position 0 (did you mean `user`?); known fields: tool, user,"), "{e}");
        let e = query_error("tool:x AND label.env:prod");
        assert!(
            e.contains("`label.env` at position 11 (did you mean `labels.env`?)"),
            "{e}"
        );
        let e = query_error("https://example.com");
        assert!(e.contains("put it in quotes"), "{e}");
        assert!(query_error("tenant:other").contains("`tenant` at position 0 cannot be queried"));
        assert!(query_error("a AND tenant:(x)").contains("`tenant` at position 6"));
        assert!(query_error("_source:x").contains("unknown field `_source`"));
        assert!(query_error("pos:1").contains("unknown field `pos`"));
        assert!(query_error("(a").contains("unclosed `(` at position 0"));
        assert!(query_error("a)").contains("unmatched `)` at position 1"));
        assert!(query_error("\"abc").contains("unclosed quote at position 0"));
        assert!(query_error("a AND").contains("`AND` at position 2 needs a term after it"));
        assert!(query_error("OR a").contains("`OR` at position 0 must stand between two terms"));
        assert!(query_error("NOT").contains("`NOT` at position 0 needs a term"));
        assert!(query_error("a - b").contains("`-` at position 2 must be directly followed"));
        assert!(query_error("()").contains("empty parentheses at position 0"));
        assert!(query_error("tool:").contains("missing value after `tool:` at position 5"));
        assert!(query_error("tool: x").contains("no space after"));
        assert!(query_error(":x").contains("needs a field name"));
        assert!(query_error("duration_ms:abc")
            .contains("`duration_ms` takes a whole number, got `abc`"));
        assert!(query_error("duration_ms:>-1").contains("whole number"));
        assert!(query_error("duration_ms:[1 5]").contains("expected `TO`"));
        assert!(query_error("duration_ms:[1 TO 5").contains("unclosed range"));
        assert!(query_error("duration_ms:[ TO 5]").contains("expected `TO`"));
        assert!(query_error("duration_ms:[\"\" TO 5]").contains("missing bound"));
        assert!(query_error("tool:>a").contains("`tool` at position 0 does not support ranges"));
        assert!(query_error("timestamp:>yesterday").contains("RFC 3339"));
        assert!(query_error("destructive:yes").contains("takes true or false"));
        assert!(query_error("outcome:errr").contains("use one of: ok, error, denied"));
        assert!(query_error("labels:prod").contains("labels.<key>:value"));
        assert!(query_error("labels.:prod").contains("needs a key"));
        assert!(query_error("result:*").contains("not supported"));
        assert!(query_error("...").contains("no searchable word"));
        assert!(query_error(&"(".repeat(100)).contains("deep"));
        assert!(query_error(&"a ".repeat(2000)).contains("more than 1024 terms"));
        assert!(query_error(&"a".repeat(MAX_QUERY_BYTES + 1)).contains("bytes long"));
    }

    #[test]
    fn deep_nots_are_an_error_not_a_stack_overflow() {
        let q = format!("{}a", "NOT ".repeat(10_000));
        assert!(query_error(&q).contains("deep"));
        let q = format!("{}a", "-(".repeat(10_000));
        assert!(query_error(&q).contains("deep"));
    }

    #[test]
    fn every_documented_form_compiles() {
        let f = Fields::new();
        for q in [
            "tool:delete_file AND user:alice",
            "outcome:(error OR timeout)",
            "arguments.path:\"/etc/passwd\"",
            "arguments.count:5",
            "arguments.a\\.b.c:x",
            "arguments:passwd",
            "labels.env:prod",
            "labels.k8s.io/app:web",
            "duration_ms:>1000 seq:<=5",
            "result_bytes:[100 TO 500] result_bytes:{1 TO *}",
            "timestamp:>=2025-01-31T00:00:00Z",
            "timestamp:2025-01-31T00:00:00.123456Z",
            "destructive:true read_only:false",
            "redaction:github_token",
            "user:*",
            "NOT tool:x -tool:y a OR b (c d)",
            "passwd \"permission denied\"",
            "result:\"not found\" error:timeout",
            "tool:\"a b\"",
        ] {
            compile(q, &f).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics(q in ".{0,60}") {
            let _ = compile(&q, &Fields::new());
        }

        #[test]
        fn parser_never_panics_on_query_like_text(
            parts in proptest::collection::vec(prop_oneof![
                Just("tool:".to_string()), Just("arguments.".to_string()), Just("labels.".to_string()),
                Just("(".to_string()), Just(")".to_string()), Just("\"".to_string()), Just(" ".to_string()),
                Just("AND".to_string()), Just("OR".to_string()), Just("NOT".to_string()), Just("-".to_string()),
                Just("[".to_string()), Just("]".to_string()), Just("{".to_string()), Just("}".to_string()),
                Just(" TO ".to_string()), Just(">=".to_string()), Just("<".to_string()), Just("*".to_string()),
                Just("\\".to_string()), Just(":".to_string()), Just("duration_ms:".to_string()),
                Just("timestamp:".to_string()), "[a-z0-9.]{1,6}",
            ], 0..24)
        ) {
            let q: String = parts.concat();
            let _ = compile(&q, &Fields::new());
        }
    }
}
