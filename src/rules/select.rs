//! Which rules look at an event, decided before any rule runs: the methods each rule requires
//! (read off its expressions once, kept as bit masks), and the input it is then evaluated with
//! (without the method test the mask already made). Most rules skip most events here.

use std::sync::Arc;

use super::{Kind, Rule};
use crate::query::{Expr, FieldRef};

/// The methods an expression requires (`None`: it may match any): a top-level `method`
/// equality, or an `or` of them, possibly inside an `and`.
fn expr_methods(e: &Expr) -> Option<Vec<String>> {
    let method = |c: &crate::query::Cmp| -> Option<String> {
        match (&c.field, &c.op) {
            (
                FieldRef::Field(def),
                crate::query::Op::Equals {
                    value,
                    cased: false,
                },
            ) if def.name == "method" => Some(value.to_ascii_lowercase()),
            _ => None,
        }
    };
    match e {
        Expr::Cmp(c) => method(c).map(|m| vec![m]),
        Expr::Or(items) => items
            .iter()
            .map(|i| match i {
                Expr::Cmp(c) => method(c),
                _ => None,
            })
            .collect(),
        Expr::And(items) => items.iter().find_map(expr_methods),
        _ => None,
    }
}

/// The rules' required methods as bits: each method any rule requires has one (up to 64), each
/// rule the mask of the methods it requires (`None`: it looks at any method). An event's method
/// is looked up once, instead of compared with every rule's list (which was a tenth of the
/// pack's time).
pub(super) struct MethodFilter {
    /// Lower-case; bit `i` is `names[i]`.
    names: Vec<String>,
    /// Parallel to the engine's rules.
    pub(super) masks: Vec<Option<u64>>,
    /// Parallel to the engine's rules: the input each is evaluated with once its mask let the
    /// event through, without the method test the mask stands for (most rules begin with one).
    pub(super) inputs: Vec<Option<Expr>>,
}

impl MethodFilter {
    pub(super) fn new(rules: &[Arc<Rule>]) -> MethodFilter {
        let mut names: Vec<String> = Vec::new();
        let masks: Vec<Option<u64>> = rules
            .iter()
            .map(|r| {
                let mut mask = 0u64;
                for m in rule_methods(r)? {
                    let i = match names.iter().position(|n| *n == m) {
                        Some(i) => i,
                        None => {
                            names.push(m);
                            names.len() - 1
                        }
                    };
                    // Past 64 methods a rule is simply not filtered.
                    mask |= 1u64.checked_shl(u32::try_from(i).ok()?)?;
                }
                Some(mask)
            })
            .collect();
        let inputs = rules
            .iter()
            .zip(&masks)
            .map(|(r, mask)| {
                let input = rule_input(r)?;
                Some(match mask {
                    Some(_) => without_methods(input),
                    None => input.clone(),
                })
            })
            .collect();
        MethodFilter {
            names,
            masks,
            inputs,
        }
    }

    /// The bit of `method` (compared as `Equals` does for ASCII), 0 when no rule requires it.
    pub(super) fn bit(&self, method: &str) -> u64 {
        self.names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(method))
            .and_then(|i| 1u64.checked_shl(u32::try_from(i).ok()?))
            .unwrap_or(0)
    }
}

/// The expressions the engine evaluates for a rule: its detection (a rule that only names a
/// correlation's step has none of its own) or input, its steps, its exceptions.
pub(super) fn evaluated(r: &Rule) -> Vec<&Expr> {
    let mut out: Vec<&Expr> = match &r.kind {
        Kind::Sequence { steps, .. } => steps.iter().map(|s| &s.detection).collect(),
        Kind::Match if !r.generate => Vec::new(),
        _ => rule_input(r).into_iter().collect(),
    };
    out.extend(r.exceptions.as_ref());
    out
}

/// What a rule matches events with before its kind does anything (`None` for a sequence, whose
/// steps do).
fn rule_input(r: &Rule) -> Option<&Expr> {
    match &r.kind {
        Kind::Match => r.detection.as_ref(),
        kind => kind.input(),
    }
}

/// `e` with the method test [`expr_methods`] read off it made always true: an event the
/// rule's mask let through passes it (its method equals one of them, ASCII case aside, so
/// `Equals` holds too).
fn without_methods(e: &Expr) -> Expr {
    match e {
        Expr::Cmp(_) | Expr::Or(_) if expr_methods(e).is_some() => Expr::All,
        Expr::And(items) => match items.iter().position(|i| expr_methods(i).is_some()) {
            Some(at) => {
                let mut items = items.clone();
                items[at] = without_methods(&items[at]);
                Expr::And(items)
            }
            None => e.clone(),
        },
        other => other.clone(),
    }
}

/// The methods a rule needs (see [`MethodFilter`]).
fn rule_methods(r: &Rule) -> Option<Vec<String>> {
    if let Kind::Sequence { steps, .. } = &r.kind {
        let mut all = Vec::new();
        for s in steps {
            all.extend(expr_methods(&s.detection)?);
        }
        return Some(all);
    }
    let mut m = expr_methods(rule_input(r)?)?;
    // Methods are compared case-insensitively by `Equals`: keep every spelling an event uses.
    m.dedup();
    Some(m)
}
