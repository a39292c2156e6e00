//! The in-memory back end: whether one stored event matches an expression.
//!
//! For `Term`, `Phrase`, `Exists` and `Range` it gives the index's answer exactly (words,
//! positions, typed JSON values: see `text.rs`; a property test in `index/` compares the two on
//! random events and queries). The Sigma-style operators look at every string value the field
//! yields (see [`for_each_string`]). It never fails: a comparison that cannot hold (a bound of
//! the wrong type, a field without a value) is false.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::ast::{Cmp, Expr, FieldRef, Op, Pattern, Scalar};
use super::guard::ArgumentGuard;
use super::text::{
    for_each_at_path, number_leaf, query_value, string_leaf, words, FieldText, Typed,
    MAX_EXACT_BYTES,
};
use crate::event::fields::{for_each_leaf, FieldType, FieldValue, Leaf};
use crate::event::{unix_micros, StoredEvent};

/// Whether `ev` matches `expr`.
pub fn matches(expr: &Expr, ev: &StoredEvent) -> bool {
    matches_in(expr, &EventView::new(ev))
}

/// One event as the matcher reads it, with what several comparisons would each work out
/// again kept after its first use: every argument value as text, and the hosts of those that
/// are URLs. A rule set asks the same event many questions (every injection rule looks at
/// every argument value); evaluating them all on one view walks the arguments once.
pub struct EventView<'a> {
    ev: &'a StoredEvent,
    leaves: std::cell::OnceCell<Vec<Cow<'a, str>>>,
    hosts: std::cell::OnceCell<Vec<String>>,
    guard: Option<&'a ArgumentGuard>,
    /// Whether the guard found something in some argument value.
    guard_hit: std::cell::OnceCell<bool>,
}

impl<'a> EventView<'a> {
    pub fn new(ev: &'a StoredEvent) -> EventView<'a> {
        EventView::guarded(ev, None)
    }

    /// A view whose regexes over every argument value ask `guard` first (see
    /// [`ArgumentGuard`]).
    pub fn guarded(ev: &'a StoredEvent, guard: Option<&'a ArgumentGuard>) -> EventView<'a> {
        EventView {
            ev,
            leaves: std::cell::OnceCell::new(),
            hosts: std::cell::OnceCell::new(),
            guard,
            guard_hit: std::cell::OnceCell::new(),
        }
    }

    /// Whether the guard answers `p` over the argument values: no value can match it.
    fn ruled_out(&self, p: &Pattern) -> bool {
        self.guard.is_some_and(|g| {
            g.covers(p)
                && !*self
                    .guard_hit
                    .get_or_init(|| self.leaves().iter().any(|s| g.may_match(s)))
        })
    }

    pub fn event(&self) -> &'a StoredEvent {
        self.ev
    }

    /// Every argument value as text ([`for_each_string`] of `arguments`), in walk order.
    fn leaves(&self) -> &[Cow<'a, str>] {
        self.leaves.get_or_init(|| {
            let mut out = Vec::new();
            for_each_leaf(&self.ev.event.arguments, &mut |l| {
                out.push(match l {
                    Leaf::Str(s) => Cow::Borrowed(s),
                    Leaf::Number(n) => Cow::Owned(n.to_string()),
                    Leaf::Bool(b) => Cow::Borrowed(if b { "true" } else { "false" }),
                })
            });
            out
        })
    }

    /// The hosts of the argument values that are URLs with a host.
    fn argument_hosts(&self) -> &[String] {
        self.hosts
            .get_or_init(|| self.leaves().iter().filter_map(|s| url_host(s)).collect())
    }
}

/// Whether the event of `view` matches `expr`.
pub fn matches_in(expr: &Expr, view: &EventView<'_>) -> bool {
    match expr {
        Expr::All => true,
        Expr::And(items) => items.iter().all(|e| matches_in(e, view)),
        Expr::Or(items) => items.iter().any(|e| matches_in(e, view)),
        Expr::Not(inner) => !matches_in(inner, view),
        Expr::Cmp(c) => cmp(c, view),
    }
}

fn cmp(c: &Cmp, view: &EventView<'_>) -> bool {
    let ev = view.ev;
    match &c.op {
        Op::Term(v) | Op::Phrase(v) => term(&c.field, v, ev),
        Op::Exists => exists(&c.field, ev),
        Op::Range { lower, upper } => range(&c.field, lower, upper, ev),
        op => match &c.field {
            FieldRef::AnyArgument => {
                if matches!(op, Op::Regex(p) if view.ruled_out(p)) {
                    return false;
                }
                view.leaves().iter().any(|s| string_op(op, s))
            }
            FieldRef::FreeText => {
                let e = &ev.event;
                view.leaves().iter().any(|s| string_op(op, s))
                    || [&e.result, &e.error]
                        .iter()
                        .any(|s| !s.is_empty() && string_op(op, s))
            }
            FieldRef::Host(inner) if **inner == FieldRef::AnyArgument => {
                view.argument_hosts().iter().any(|h| string_op(op, h))
            }
            field => {
                let mut hit = false;
                for_each_string(field, ev, &mut |s| {
                    hit = hit || string_op(op, s);
                });
                hit
            }
        },
    }
}

/// A whole-value (raw token) match: an empty or over-long value has no term in the index.
fn exact_eq(value: &str, query: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_EXACT_BYTES && value == query
}

fn text_has(text: &str, query: &[(usize, String)]) -> bool {
    let mut t = FieldText::default();
    t.push(text);
    t.has_phrase(query)
}

/// Every argument value as text, as the index's free text over arguments holds them.
fn arguments_text(args: &serde_json::Value) -> FieldText {
    let mut t = FieldText::default();
    for_each_leaf(args, &mut |leaf| match leaf {
        Leaf::Str(s) => t.push(s),
        Leaf::Number(n) => t.push(&n.to_string()),
        Leaf::Bool(b) => t.push(if b { "true" } else { "false" }),
    });
    t
}

fn same(a: Option<Typed>, b: Option<Typed>) -> bool {
    matches!((a, b), (Some(x), Some(y)) if x == y)
}

fn term(field: &FieldRef, v: &str, ev: &StoredEvent) -> bool {
    let e = &ev.event;
    match field {
        FieldRef::Field(def) => match (def.ty, def.value(ev)) {
            (FieldType::Text, FieldValue::Str(s)) => text_has(s, &words(v)),
            (_, FieldValue::Str(s)) => exact_eq(s, v),
            (_, FieldValue::Strs(list)) => list.iter().any(|s| exact_eq(s, v)),
            (_, FieldValue::U64(n)) => v.parse::<u64>() == Ok(n),
            (_, FieldValue::Time(t)) => {
                OffsetDateTime::parse(v, &Rfc3339).is_ok_and(|q| unix_micros(q) == unix_micros(t))
            }
            (_, FieldValue::Bool(b)) => v == if b { "true" } else { "false" },
            (_, FieldValue::Json(_)) => term(&FieldRef::AnyArgument, v, ev),
            (_, FieldValue::Labels(map)) => {
                map.values().any(|s| s.len() <= MAX_EXACT_BYTES && s == v)
            }
        },
        FieldRef::AnyArgument => arguments_text(&e.arguments).has_phrase(&words(v)),
        FieldRef::Argument(path) => {
            let wanted = query_value(v);
            let mut typed = false;
            let mut text = FieldText::default();
            for_each_at_path(&e.arguments, path, &mut |leaf| match leaf {
                serde_json::Value::String(s) => match string_leaf(s) {
                    Some(t) => typed |= same(Some(t), wanted),
                    None => text.push(s),
                },
                serde_json::Value::Number(n) => typed |= same(number_leaf(n), wanted),
                serde_json::Value::Bool(b) => typed |= same(Some(Typed::Bool(*b)), wanted),
                _ => {}
            });
            typed || text.has_phrase(&words(v))
        }
        FieldRef::Label(k) => {
            // The index leaves out keys holding U+0000.
            !k.contains('\0')
                && e.labels
                    .get(k)
                    .is_some_and(|s| s.len() <= MAX_EXACT_BYTES && s == v)
        }
        FieldRef::Host(inner) => {
            let mut hit = false;
            for_each_host(inner, ev, &mut |h| hit = hit || h.eq_ignore_ascii_case(v));
            hit
        }
        FieldRef::FreeText => {
            let w = words(v);
            arguments_text(&e.arguments).has_phrase(&w)
                || text_has(&e.result, &w)
                || text_has(&e.error, &w)
        }
    }
}

fn any_leaf(v: &serde_json::Value) -> bool {
    let mut any = false;
    for_each_leaf(v, &mut |_| any = true);
    any
}

fn exists(field: &FieldRef, ev: &StoredEvent) -> bool {
    let e = &ev.event;
    match field {
        FieldRef::Field(def) => match def.value(ev) {
            FieldValue::Str(s) => !s.is_empty(),
            FieldValue::Strs(list) => !list.is_empty(),
            FieldValue::U64(_) | FieldValue::Time(_) | FieldValue::Bool(_) => true,
            FieldValue::Json(v) => any_leaf(v),
            FieldValue::Labels(map) => !map.is_empty(),
        },
        FieldRef::Argument(path) => {
            let mut any = false;
            for_each_at_path(&e.arguments, path, &mut |_| any = true);
            any
        }
        FieldRef::AnyArgument => any_leaf(&e.arguments),
        FieldRef::Label(k) => e.labels.contains_key(k),
        FieldRef::FreeText => any_leaf(&e.arguments) || !e.result.is_empty() || !e.error.is_empty(),
        FieldRef::Host(inner) => {
            let mut any = false;
            for_each_host(inner, ev, &mut |_| any = true);
            any
        }
    }
}

fn in_range<T: PartialOrd>(
    v: T,
    lower: &Bound<Scalar>,
    upper: &Bound<Scalar>,
    of: impl Fn(&Scalar) -> Option<T>,
) -> bool {
    let lower_ok = match lower {
        Bound::Unbounded => true,
        Bound::Included(b) => of(b).is_some_and(|b| v >= b),
        Bound::Excluded(b) => of(b).is_some_and(|b| v > b),
    };
    let upper_ok = match upper {
        Bound::Unbounded => true,
        Bound::Included(b) => of(b).is_some_and(|b| v <= b),
        Bound::Excluded(b) => of(b).is_some_and(|b| v < b),
    };
    lower_ok && upper_ok
}

fn range(field: &FieldRef, lower: &Bound<Scalar>, upper: &Bound<Scalar>, ev: &StoredEvent) -> bool {
    let FieldRef::Field(def) = field else {
        return false;
    };
    match def.value(ev) {
        FieldValue::U64(n) => in_range(n, lower, upper, |s| match s {
            Scalar::U64(b) => Some(*b),
            Scalar::Time(_) => None,
        }),
        FieldValue::Time(t) => in_range(unix_micros(t), lower, upper, |s| match s {
            Scalar::Time(b) => Some(unix_micros(*b)),
            Scalar::U64(_) => None,
        }),
        _ => false,
    }
}

/// Calls `f` with every string value `field` yields in `ev`, for the Sigma-style operators:
/// exact and text fields their value when not empty, the redaction kinds each, numbers in
/// decimal, hints `true`/`false`, times in RFC 3339; arguments every leaf at the path (or
/// everywhere), numbers and booleans as their JSON text; a label its value; free text every
/// argument leaf, the result and the error.
pub fn for_each_string(field: &FieldRef, ev: &StoredEvent, f: &mut dyn FnMut(&str)) {
    let e = &ev.event;
    let leaf = |f: &mut dyn FnMut(&str), leaf: Leaf<'_>| match leaf {
        Leaf::Str(s) => f(s),
        Leaf::Number(n) => f(&n.to_string()),
        Leaf::Bool(b) => f(if b { "true" } else { "false" }),
    };
    match field {
        FieldRef::Field(def) => match def.value(ev) {
            FieldValue::Str(s) => {
                if !s.is_empty() {
                    f(s)
                }
            }
            FieldValue::Strs(list) => list.iter().for_each(|s| f(s)),
            FieldValue::U64(n) => f(itoa::Buffer::new().format(n)),
            FieldValue::Time(t) => {
                if let Ok(s) = t.format(&Rfc3339) {
                    f(&s)
                }
            }
            FieldValue::Bool(b) => f(if b { "true" } else { "false" }),
            FieldValue::Json(v) => for_each_leaf(v, &mut |l| leaf(f, l)),
            FieldValue::Labels(map) => map.values().for_each(|s| f(s)),
        },
        FieldRef::Argument(path) => for_each_at_path(&e.arguments, path, &mut |v| match v {
            serde_json::Value::String(s) => f(s),
            serde_json::Value::Number(n) => f(&n.to_string()),
            serde_json::Value::Bool(b) => f(if *b { "true" } else { "false" }),
            _ => {}
        }),
        FieldRef::AnyArgument => for_each_leaf(&e.arguments, &mut |l| leaf(f, l)),
        FieldRef::Label(k) => {
            if let Some(s) = e.labels.get(k) {
                f(s)
            }
        }
        FieldRef::FreeText => {
            for_each_leaf(&e.arguments, &mut |l| leaf(f, l));
            for s in [&e.result, &e.error] {
                if !s.is_empty() {
                    f(s)
                }
            }
        }
        FieldRef::Host(inner) => for_each_host(inner, ev, f),
    }
}

/// Calls `f` with the host of every value of `field` that is a URL with a host.
fn for_each_host(field: &FieldRef, ev: &StoredEvent, f: &mut dyn FnMut(&str)) {
    for_each_string(field, ev, &mut |s| {
        if let Some(h) = url_host(s) {
            f(&h)
        }
    });
}

thread_local! {
    /// The last value read as a URL on this thread, and its host. Within one event the
    /// [`EventView`] already reads each argument's host once; this answers the same URL met
    /// again in the next events (an agent fetching one endpoint over and over), and a question
    /// outside a view. Comparing a value costs far less than parsing a URL; removing the memo
    /// made `rules_cpu` 3–6% slower (five alternated runs). Keyed by the whole text, so a hit
    /// is always the same answer.
    static LAST_HOST: std::cell::RefCell<(String, Option<String>)> =
        const { std::cell::RefCell::new((String::new(), None)) };
}

/// The host of `s` read as a URL (`scheme://host...`), as [`FieldRef::Host`] describes.
pub fn url_host(s: &str) -> Option<String> {
    let s = s.trim();
    // Cheap refusal first: most values are not URLs.
    if !s.contains("://") || s.len() > 8192 {
        return None;
    }
    LAST_HOST.with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return parse_host(s);
        };
        if last.0 != s {
            last.0.clear();
            last.0.push_str(s);
            last.1 = parse_host(s);
        }
        last.1.clone()
    })
}

fn parse_host(s: &str) -> Option<String> {
    let url = url::Url::parse(s).ok()?;
    let host = match url.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    Some(host)
}

/// Lower-cased unless `cased`; borrowed when nothing changes.
fn fold(s: &str, cased: bool) -> Cow<'_, str> {
    if cased || (s.is_ascii() && !s.bytes().any(|b| b.is_ascii_uppercase())) {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// `s == value`, without case unless `cased` (as [`fold`] would compare them; ASCII text,
/// nearly all of it, compared in place without looking at either twice).
fn equals(s: &str, value: &str, cased: bool) -> bool {
    if s == value {
        return true;
    }
    if cased {
        return false;
    }
    if value.is_ascii() && s.is_ascii() {
        return s.eq_ignore_ascii_case(value);
    }
    fold(s, false) == fold(value, false)
}

fn string_op(op: &Op, s: &str) -> bool {
    match op {
        Op::Equals { value, cased } => equals(s, value, *cased),
        Op::Contains { value, cased } => fold(s, *cased).contains(&*fold(value, *cased)),
        Op::StartsWith { value, cased } => fold(s, *cased).starts_with(&*fold(value, *cased)),
        Op::EndsWith { value, cased } => fold(s, *cased).ends_with(&*fold(value, *cased)),
        Op::Wildcard { pattern, cased } => wildcard(&fold(pattern, *cased), &fold(s, *cased)),
        Op::Regex(re) => re.is_match(s),
        Op::Cidr(nets) => ip_of(s).is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
        Op::Compare { op, value } => s
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .is_some_and(|x| op.holds(x, *value)),
        Op::Term(_) | Op::Phrase(_) | Op::Exists | Op::Range { .. } => false,
    }
}

/// The address of `ip`, `ip:port` or `[ip]:port` (IPv4-mapped IPv6 as IPv4).
fn ip_of(s: &str) -> Option<IpAddr> {
    let ip = s
        .parse::<IpAddr>()
        .or_else(|_| s.parse::<SocketAddr>().map(|a| a.ip()))
        .ok()?;
    Some(ip.to_canonical())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Glob {
    Star,
    One,
    Char(char),
}

/// Whether the whole of `s` matches a Sigma wildcard pattern.
fn wildcard(pattern: &str, s: &str) -> bool {
    let mut pat = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        pat.push(match c {
            '*' => Glob::Star,
            '?' => Glob::One,
            '\\' => match chars.peek() {
                Some(&next @ ('*' | '?' | '\\')) => {
                    chars.next();
                    Glob::Char(next)
                }
                _ => Glob::Char('\\'),
            },
            c => Glob::Char(c),
        });
    }
    let text: Vec<char> = s.chars().collect();
    // Greedy with one backtrack point: the last `*` seen (linear in practice, O(n·m) worst).
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(Glob::One) => {
                p += 1;
                t += 1;
            }
            Some(Glob::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Glob::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|g| *g == Glob::Star)
}
