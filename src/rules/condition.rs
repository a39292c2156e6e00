//! Sigma's `condition`: selections combined with `and`, `or`, `not`, parentheses and the
//! quantifiers `1 of sel*`, `all of them`, `N of pattern`.
//!
//! Precedence as in Sigma: `not` binds tighter than `and`, `and` tighter than `or`; keywords
//! are case-insensitive. Names are resolved against the detection's selections here, so an
//! error names the unknown selection and the ones that exist. Sigma's deprecated aggregation
//! syntax (`| count() by x > 10`) is refused with a pointer to correlation rules.

/// A parsed condition, over selection indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cond {
    Sel(usize),
    Not(Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
    Pipe,
}

fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' | ')' | '|' => {
                if !cur.is_empty() {
                    out.push((Tok::Word(std::mem::take(&mut cur)), start));
                }
                out.push((
                    match c {
                        '(' => Tok::Open,
                        ')' => Tok::Close,
                        _ => Tok::Pipe,
                    },
                    i,
                ));
            }
            c if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push((Tok::Word(std::mem::take(&mut cur)), start));
                }
            }
            c => {
                if cur.is_empty() {
                    start = i;
                }
                cur.push(c);
            }
        }
    }
    if !cur.is_empty() {
        out.push((Tok::Word(cur), start));
    }
    out
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    i: usize,
    names: &'a [String],
    text: &'a str,
}

/// Parses `text` over the selections `names` (in detection order).
pub fn parse(text: &str, names: &[String]) -> Result<Cond, String> {
    let mut p = Parser {
        toks: tokens(text),
        i: 0,
        names,
        text,
    };
    if p.toks.is_empty() {
        return Err("the condition is empty; name a selection, e.g. `condition: selection`".into());
    }
    let c = p.or(0)?;
    match p.toks.get(p.i) {
        None => Ok(c),
        Some((Tok::Pipe, at)) => Err(format!(
            "`|` at character {} starts a Sigma aggregation (`| count() by ...`), which this engine does not take; write a correlation rule (`correlation: {{type: event_count, ...}}`) instead",
            at + 1
        )),
        Some((Tok::Close, at)) => Err(format!(
            "unmatched `)` at character {} in {:?}",
            at + 1,
            p.text
        )),
        Some((Tok::Word(w), at)) => Err(format!(
            "`{w}` at character {} follows a complete condition; join them with `and` or `or`",
            at + 1
        )),
        Some((Tok::Open, at)) => Err(format!(
            "`(` at character {} follows a complete condition; join them with `and` or `or`",
            at + 1
        )),
    }
}

fn is_kw(t: Option<&(Tok, usize)>, kw: &str) -> bool {
    matches!(t, Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case(kw))
}

impl Parser<'_> {
    fn or(&mut self, depth: usize) -> Result<Cond, String> {
        let mut items = vec![self.and(depth)?];
        while is_kw(self.toks.get(self.i), "or") {
            self.i += 1;
            items.push(self.and(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::Or(items)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Cond, String> {
        let mut items = vec![self.not(depth)?];
        while is_kw(self.toks.get(self.i), "and") {
            self.i += 1;
            items.push(self.not(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Cond::And(items)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Cond, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the condition nests deeper than {MAX_DEPTH} levels"
            ));
        }
        if is_kw(self.toks.get(self.i), "not") {
            self.i += 1;
            return Ok(Cond::Not(Box::new(self.not(depth + 1)?)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Cond, String> {
        let Some((tok, at)) = self.toks.get(self.i).cloned() else {
            return Err(format!(
                "the condition {:?} ends where a selection name is expected",
                self.text
            ));
        };
        self.i += 1;
        match tok {
            Tok::Open => {
                let c = self.or(depth + 1)?;
                match self.toks.get(self.i) {
                    Some((Tok::Close, _)) => {
                        self.i += 1;
                        Ok(c)
                    }
                    _ => Err(format!(
                        "`(` at character {} is never closed; add a `)`",
                        at + 1
                    )),
                }
            }
            Tok::Close => Err(format!(
                "`)` at character {} where a selection name is expected",
                at + 1
            )),
            Tok::Pipe => Err(format!(
                "`|` at character {}: Sigma aggregations are not supported; write a correlation rule",
                at + 1
            )),
            Tok::Word(w) => {
                let lower = w.to_ascii_lowercase();
                let quantity = match lower.as_str() {
                    "all" => Some(None),
                    "any" => Some(Some(1)),
                    n => n.parse::<usize>().ok().map(Some),
                };
                if let (Some(q), true) = (quantity, is_kw(self.toks.get(self.i), "of")) {
                    self.i += 1;
                    return self.quantified(q, at);
                }
                if ["and", "or", "of"].contains(&lower.as_str()) {
                    return Err(format!(
                        "`{w}` at character {} where a selection name is expected",
                        at + 1
                    ));
                }
                self.names
                    .iter()
                    .position(|n| *n == w)
                    .map(Cond::Sel)
                    .ok_or_else(|| self.unknown(&w))
            }
        }
    }

    /// `N of pattern` / `all of pattern` / `... of them`.
    fn quantified(&mut self, q: Option<usize>, at: usize) -> Result<Cond, String> {
        let Some((Tok::Word(pattern), _)) = self.toks.get(self.i).cloned() else {
            return Err(format!(
                "the quantifier at character {} needs a selection pattern (`sel*`) or `them`",
                at + 1
            ));
        };
        self.i += 1;
        let picked: Vec<usize> = if pattern.eq_ignore_ascii_case("them") {
            // Sigma: `them` means every selection not starting with an underscore.
            (0..self.names.len())
                .filter(|&i| !self.names[i].starts_with('_'))
                .collect()
        } else {
            (0..self.names.len())
                .filter(|&i| glob(&pattern, &self.names[i]))
                .collect()
        };
        if picked.is_empty() {
            return Err(format!(
                "`{pattern}` matches no selection; the selections are {}",
                self.names.join(", ")
            ));
        }
        let items: Vec<Cond> = picked.iter().map(|&i| Cond::Sel(i)).collect();
        Ok(match q {
            None => Cond::And(items),
            Some(0) => {
                return Err(format!(
                    "`0 of` at character {} matches always; remove it",
                    at + 1
                ))
            }
            Some(1) => Cond::Or(items),
            Some(n) if n > items.len() => {
                return Err(format!(
                    "`{n} of {pattern}` asks for more selections than the {} it matches",
                    items.len()
                ))
            }
            Some(n) => {
                // At least n of them: the OR over every combination of n.
                let mut combos = Vec::new();
                combinations(&picked, n, &mut Vec::new(), &mut combos);
                if combos.len() > 1000 {
                    return Err(format!(
                        "`{n} of {pattern}` has too many combinations; split the rule"
                    ));
                }
                Cond::Or(
                    combos
                        .into_iter()
                        .map(|c| Cond::And(c.into_iter().map(Cond::Sel).collect()))
                        .collect(),
                )
            }
        })
    }

    fn unknown(&self, name: &str) -> String {
        format!(
            "the condition names `{name}`, which is not a selection of this detection; the selections are {}",
            self.names.join(", ")
        )
    }
}

fn combinations(items: &[usize], n: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    if cur.len() == n {
        out.push(cur.clone());
        return;
    }
    for (i, &x) in items.iter().enumerate() {
        cur.push(x);
        combinations(&items[i + 1..], n, cur, out);
        cur.pop();
        if out.len() > 1000 {
            return;
        }
    }
}

/// Sigma's name patterns: `*` matches any run of characters.
fn glob(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i + 1 == parts.len() {
            return rest.ends_with(part);
        } else if let Some(at) = rest.find(part) {
            rest = &rest[at + part.len()..];
        } else {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["sel_a", "sel_b", "filter", "_hidden"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn precedence_and_quantifiers() {
        let n = names();
        assert_eq!(
            parse("sel_a or sel_b and not filter", &n).unwrap(),
            Cond::Or(vec![
                Cond::Sel(0),
                Cond::And(vec![Cond::Sel(1), Cond::Not(Box::new(Cond::Sel(2)))])
            ])
        );
        assert_eq!(
            parse("1 of sel* AND NOT filter", &n).unwrap(),
            Cond::And(vec![
                Cond::Or(vec![Cond::Sel(0), Cond::Sel(1)]),
                Cond::Not(Box::new(Cond::Sel(2)))
            ])
        );
        assert_eq!(
            parse("all of them", &n).unwrap(),
            Cond::And(vec![Cond::Sel(0), Cond::Sel(1), Cond::Sel(2)])
        );
        assert_eq!(
            parse("(sel_a or sel_b) and filter", &n).unwrap(),
            Cond::And(vec![
                Cond::Or(vec![Cond::Sel(0), Cond::Sel(1)]),
                Cond::Sel(2)
            ])
        );
        assert!(matches!(parse("2 of sel*", &n).unwrap(), Cond::Or(v) if v.len() == 1));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let n = names();
        assert!(parse("sel_c", &n)
            .unwrap_err()
            .contains("selections are sel_a"));
        assert!(parse("sel_a | count() > 5", &n)
            .unwrap_err()
            .contains("correlation"));
        assert!(parse("(sel_a", &n).unwrap_err().contains("never closed"));
        assert!(parse("sel_a sel_b", &n)
            .unwrap_err()
            .contains("and` or `or"));
        assert!(parse("1 of nothing*", &n)
            .unwrap_err()
            .contains("matches no selection"));
        assert!(parse("", &n).is_err());
        assert!(parse(&"not ".repeat(100), &n).is_err());
    }
}
