//! The tantivy back end of the query language: compiles a [`query::Expr`] into a tantivy
//! query against the day schema.
//!
//! The language itself (grammar, parser, AST, the in-memory matcher) is in `query/`, which
//! knows no tantivy. This module only decides which tantivy query expresses each comparison;
//! for a given `q` text it builds the same queries the index always has. Operators only the
//! matcher evaluates (`contains`, `re`, `cidr`...) are refused with a clear error.

use std::ops::Bound;

use tantivy::json_utils::convert_to_fast_value_and_append_to_json_term;
use tantivy::query::{
    AllQuery, BooleanQuery, ExistsQuery, Occur, PhraseQuery, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::Term;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::schema::{micros, Fields};
use super::IndexError;
use crate::event::fields::{FieldDef, FieldType};
use crate::query::text::join_path;
use crate::query::{self, Cmp, Expr, FieldRef, Op, QueryError, Scalar};

impl From<QueryError> for IndexError {
    fn from(e: QueryError) -> Self {
        IndexError::Query {
            reason: e.reason().to_string(),
        }
    }
}

fn unsupported(reason: String) -> QueryError {
    QueryError::Unsupported { reason }
}

/// Parses and compiles query text; `Ok(None)` matches everything.
pub(crate) fn compile_text(
    text: &str,
    fields: &Fields,
) -> Result<Option<Box<dyn Query>>, IndexError> {
    compile(&query::parse(text)?, fields)
}

/// Compiles an expression against the day schema; `Ok(None)` matches everything.
pub(crate) fn compile(expr: &Expr, fields: &Fields) -> Result<Option<Box<dyn Query>>, IndexError> {
    if matches!(expr, Expr::All) {
        return Ok(None);
    }
    let mut c = Compiler {
        fields,
        analyzer: fields.analyzer.clone(),
    };
    Ok(Some(c.expr(expr)?))
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

/// The word/phrase a term searches on a text field: words or nothing to search.
fn no_words(v: &str) -> QueryError {
    unsupported(query::no_words(v, 0).replacen(" at position 0", "", 1))
}

impl Compiler<'_> {
    fn expr(&mut self, expr: &Expr) -> Result<Box<dyn Query>, QueryError> {
        Ok(match expr {
            Expr::All => Box::new(AllQuery),
            Expr::And(items) => {
                let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
                for item in items {
                    match item {
                        Expr::All => {}
                        Expr::Not(inner) => clauses.push((Occur::MustNot, self.expr(inner)?)),
                        other => clauses.push((Occur::Must, self.expr(other)?)),
                    }
                }
                if !clauses.iter().any(|(o, _)| *o == Occur::Must) {
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                boolean(clauses)
            }
            Expr::Or(items) => {
                let queries = items
                    .iter()
                    .map(|i| self.expr(i))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.iter().any(|i| matches!(i, Expr::All)) {
                    return Ok(Box::new(AllQuery));
                }
                any_of(queries)
            }
            Expr::Not(inner) => boolean(vec![
                (Occur::Must, Box::new(AllQuery)),
                (Occur::MustNot, self.expr(inner)?),
            ]),
            Expr::Cmp(c) => self.cmp(c)?,
        })
    }

    fn cmp(&mut self, c: &Cmp) -> Result<Box<dyn Query>, QueryError> {
        let value = match &c.op {
            Op::Term(v) | Op::Phrase(v) => Some(v.as_str()),
            Op::Exists | Op::Range { .. } => None,
            other => {
                return Err(unsupported(format!(
                    "`{}` cannot be searched in the index; use a term, phrase, range or `*`",
                    other.name()
                )))
            }
        };
        match (&c.field, value) {
            (FieldRef::FreeText, Some(v)) => {
                let mut queries = Vec::new();
                for f in self.fields.free_text() {
                    if let Some(q) = self.text(v, |t| Term::from_field_text(f, t)) {
                        queries.push(q);
                    }
                }
                if queries.is_empty() {
                    return Err(no_words(v));
                }
                Ok(any_of(queries))
            }
            (FieldRef::AnyArgument, Some(v)) => {
                let f = self.fields.arguments_text;
                self.text(v, |t| Term::from_field_text(f, t))
                    .ok_or_else(|| no_words(v))
            }
            (FieldRef::Argument(path), Some(v)) => {
                let base =
                    Term::from_field_json_path(self.fields.arguments, &join_path(path), false);
                let mut queries = Vec::new();
                if let Some(q) = self.text(v, |t| {
                    let mut term = base.clone();
                    term.append_type_and_str(t);
                    term
                }) {
                    queries.push(q);
                }
                // Numbers, booleans and RFC 3339 times are indexed typed inside JSON.
                if let Some(term) = convert_to_fast_value_and_append_to_json_term(&base, v, true) {
                    queries.push(term_query(term));
                }
                if queries.is_empty() {
                    return Err(no_words(v));
                }
                Ok(any_of(queries))
            }
            (FieldRef::Label(key), Some(v)) => {
                // A label key is one JSON level: escape dots so they are not path separators.
                let mut term = Term::from_field_json_path(
                    self.fields.labels,
                    &join_path(std::slice::from_ref(key)),
                    false,
                );
                term.append_type_and_str(v);
                Ok(term_query(term))
            }
            (FieldRef::Field(def), _) => self.field(def, &c.op),
            (FieldRef::Host(_), _) => Err(unsupported(
                "the host of a URL cannot be searched in the index; search the URL's words instead"
                    .to_string(),
            )),
            (_, None) => Err(unsupported(format!(
                "`{}` works on the exact-match, number and time fields only",
                c.op.name()
            ))),
        }
    }

    fn field(&mut self, def: &FieldDef, op: &Op) -> Result<Box<dyn Query>, QueryError> {
        let name = def.name;
        let Some(f) = self.fields.field(def) else {
            return Err(unsupported(format!("`{name}` cannot be searched")));
        };
        match (op, def.ty) {
            (Op::Exists, FieldType::Exact | FieldType::Enum(_)) if !self.fields.is_fast(name) => {
                // No column to ask: any term of the field (empty values have none).
                Ok(Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_text(f, "")),
                    Bound::Unbounded,
                )))
            }
            (
                Op::Exists,
                FieldType::Exact | FieldType::Enum(_) | FieldType::U64 | FieldType::Time,
            ) => Ok(Box::new(ExistsQuery::new(name.to_string(), false))),
            (Op::Range { lower, upper }, ty @ (FieldType::U64 | FieldType::Time)) => {
                let lower = map_bound(lower, |s| scalar_term(name, f, ty, s))?;
                let upper = map_bound(upper, |s| scalar_term(name, f, ty, s))?;
                Ok(range_query(name, lower, upper))
            }
            (Op::Term(v) | Op::Phrase(v), ty) => match ty {
                FieldType::Exact | FieldType::Enum(_) => {
                    Ok(term_query(Term::from_field_text(f, v)))
                }
                FieldType::U64 => {
                    // Number fields are columns only: an exact value is a one-value range.
                    let t = Term::from_field_u64(f, query::parse_u64(name, v, 0)?);
                    Ok(Box::new(RangeQuery::new(
                        Bound::Included(t.clone()),
                        Bound::Included(t),
                    )))
                }
                FieldType::Time => {
                    let t = date_term(f, query::parse_time(name, v, 0)?);
                    Ok(Box::new(RangeQuery::new(
                        Bound::Included(t.clone()),
                        Bound::Included(t),
                    )))
                }
                FieldType::Hint => match v.as_str() {
                    "true" => Ok(term_query(Term::from_field_bool(f, true))),
                    "false" => Ok(term_query(Term::from_field_bool(f, false))),
                    _ => Err(unsupported(format!(
                        "`{name}` takes true or false, got `{}`",
                        query::shorten(v)
                    ))),
                },
                FieldType::Text => self
                    .text(v, |t| Term::from_field_text(f, t))
                    .ok_or_else(|| no_words(v)),
                FieldType::Json => {
                    let f = self.fields.arguments_text;
                    self.text(v, |t| Term::from_field_text(f, t))
                        .ok_or_else(|| no_words(v))
                }
                FieldType::Labels => Err(unsupported(
                    "`labels` needs a key: write labels.<key>:value, e.g. labels.env:prod".into(),
                )),
            },
            (op, _) => Err(unsupported(format!(
                "`{}` does not work on `{name}`",
                op.name()
            ))),
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

fn scalar_term(name: &str, f: Field, ty: FieldType, s: &Scalar) -> Result<Term, QueryError> {
    match (ty, s) {
        (FieldType::U64, Scalar::U64(n)) => Ok(Term::from_field_u64(f, *n)),
        (FieldType::Time, Scalar::Time(t))
            if (crate::event::MIN_TIME..=crate::event::MAX_TIME).contains(t) =>
        {
            Ok(date_term(f, *t))
        }
        (FieldType::Time, Scalar::Time(t)) => Err(unsupported(format!(
            "`{name}` takes a time from 1970 to 9999, got {}",
            t.format(&Rfc3339).unwrap_or_default()
        ))),
        // A time bound on a number field (or the reverse) is a caller's mistake.
        _ => Err(unsupported(format!(
            "`{name}` got a range bound of the wrong type"
        ))),
    }
}

fn map_bound(
    b: &Bound<Scalar>,
    f: impl Fn(&Scalar) -> Result<Term, QueryError>,
) -> Result<Bound<Term>, QueryError> {
    Ok(match b {
        Bound::Included(v) => Bound::Included(f(v)?),
        Bound::Excluded(v) => Bound::Excluded(f(v)?),
        Bound::Unbounded => Bound::Unbounded,
    })
}

fn date_term(field: Field, t: OffsetDateTime) -> Term {
    // Not `from_field_date_for_search`: ranges run on the microsecond fast field.
    Term::from_field_date(field, super::schema::tantivy_date(micros(t)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::query::MAX_QUERY_BYTES;

    fn query_error(q: &str) -> String {
        match compile_text(q, &Fields::new()) {
            Err(IndexError::Query { reason }) => reason,
            Err(other) => panic!("{q}: wrong error kind {other:?}"),
            Ok(_) => panic!("{q}: parsed"),
        }
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        let e = query_error("usr:alice");
        assert!(e.starts_with("unknown field `usr` at position 0 (did you mean `user`?); known fields: source, method, server, tool, user,"), "{e}");
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
        assert!(query_error("hash:1").contains("unknown field `hash`"));
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
            "trace_id:*",
            "NOT tool:x -tool:y a OR b (c d)",
            "passwd \"permission denied\"",
            "result:\"not found\" error:timeout",
            "tool:\"a b\"",
        ] {
            compile_text(q, &f).unwrap_or_else(|e| panic!("{q}: {e}"));
        }
    }

    #[test]
    fn matcher_only_operators_are_refused_with_their_name() {
        let f = Fields::new();
        let tool = crate::event::fields::field("tool").unwrap();
        let expr = Expr::Cmp(Cmp {
            field: FieldRef::Field(tool),
            op: Op::Contains {
                value: "x".into(),
                cased: false,
            },
        });
        match compile(&Expr::Not(Box::new(expr)), &f) {
            Err(IndexError::Query { reason }) => assert_eq!(
                reason,
                "`contains` cannot be searched in the index; use a term, phrase, range or `*`"
            ),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics(q in ".{0,60}") {
            let _ = compile_text(&q, &Fields::new());
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
            let _ = compile_text(&q, &Fields::new());
        }
    }
}
