//! A guard over the regexes a rule set runs on every argument value.
//!
//! The injection rules (shell, SQL, path traversal...) each run their regex over each argument
//! value of nearly every call; on short values a regex call costs its setup more than its
//! scan, and nearly every answer is no. The guard joins all of those regexes into one
//! alternation, run once per value per event: when it finds nothing, no regex it stands for can
//! match any value either, and each is answered without running. When it finds something, each
//! runs as before. The answer is always the one the regexes alone would give.

use super::ast::{Cmp, Expr, FieldRef, Op, Pattern};

/// The largest joined regex (compiled size); past it there is no guard.
const SIZE_LIMIT: usize = 32 << 20;

#[derive(Debug)]
pub struct ArgumentGuard {
    pattern: Pattern,
    /// The ids of the patterns it stands for, sorted.
    covers: Vec<u64>,
}

impl ArgumentGuard {
    /// A guard for every regex over any argument value in `exprs`; `None` for fewer than two,
    /// or when they do not compile together.
    pub fn new<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Option<ArgumentGuard> {
        let mut patterns: Vec<&Pattern> = Vec::new();
        for e in exprs {
            collect(e, &mut patterns);
        }
        patterns.sort_by_key(|p| p.id());
        patterns.dedup_by_key(|p| p.id());
        if patterns.len() < 2 {
            return None;
        }
        // Each pattern carries its flags inline, so each keeps its meaning inside a group.
        let joined = patterns
            .iter()
            .map(|p| format!("(?:{})", p.as_str()))
            .collect::<Vec<_>>()
            .join("|");
        let re = regex::RegexBuilder::new(&joined)
            .size_limit(SIZE_LIMIT)
            .build()
            .ok()?;
        Some(ArgumentGuard {
            pattern: Pattern::new(re),
            covers: patterns.iter().map(|p| p.id()).collect(),
        })
    }

    /// Whether the guard stands for `p`.
    pub(super) fn covers(&self, p: &Pattern) -> bool {
        self.covers.binary_search(&p.id()).is_ok()
    }

    /// Whether some pattern it stands for may match `text`.
    pub(super) fn may_match(&self, text: &str) -> bool {
        self.pattern.is_match(text)
    }
}

fn collect<'a>(e: &'a Expr, out: &mut Vec<&'a Pattern>) {
    match e {
        Expr::All => {}
        Expr::And(items) | Expr::Or(items) => items.iter().for_each(|i| collect(i, out)),
        Expr::Not(inner) => collect(inner, out),
        Expr::Cmp(Cmp {
            field: FieldRef::AnyArgument,
            op: Op::Regex(p),
        }) => out.push(p),
        Expr::Cmp(_) => {}
    }
}
