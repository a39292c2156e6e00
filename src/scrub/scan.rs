//! The keyword pass: every byte of every string goes through here once.
//!
//! An Aho-Corasick DFA (standard semantics, so overlapping keywords are all reported) costs
//! one dependent table lookup per byte, which makes a single walk latency-bound. Long strings
//! are therefore cut into [`LANES`] chunks walked in lock-step, so the CPU overlaps the
//! lookups of independent walks. Each walk starts `max keyword length - 1` bytes before its
//! chunk (to see keywords that straddle the cut) and reports only keywords that end inside
//! its chunk, so every occurrence is reported exactly once. Hits come back sorted by start.

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::{Anchored, BuildError, MatchKind};

/// Walks in lock-step for long strings.
const LANES: usize = 4;

/// Strings shorter than this are walked in one piece.
const SPLIT_FROM: usize = 256;

/// A keyword occurrence: (keyword index, start, end).
pub(super) type Hit = (u32, usize, usize);

pub(super) struct Keywords {
    dfa: DFA,
    overlap: usize,
}

impl Keywords {
    /// All keywords, matched ASCII case-insensitively.
    pub(super) fn new(patterns: &[String]) -> Result<Self, BuildError> {
        let dfa = DFA::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .prefilter(false)
            .build(patterns)?;
        let overlap = dfa.max_pattern_len().saturating_sub(1);
        Ok(Self { dfa, overlap })
    }

    /// Appends every keyword occurrence in `s` to `out`.
    pub(super) fn find(&self, s: &[u8], out: &mut Vec<Hit>) {
        let Ok(start) = self.dfa.start_state(Anchored::No) else {
            return;
        };
        if s.len() < SPLIT_FROM {
            self.walk(s, 0, start, 0, out);
            return;
        }
        let before = out.len();
        let chunk = s.len().div_ceil(LANES);
        let from = [0, chunk, 2 * chunk, 3 * chunk];
        let begin = from.map(|f| f.saturating_sub(self.overlap));
        let end = [chunk, 2 * chunk, 3 * chunk, s.len()];
        let steps = (0..LANES).map(|k| end[k] - begin[k]).min().unwrap_or(0);
        // Four independent walks in lock-step; their states stay in registers.
        let mut sid = [start; LANES];
        let lanes = s[begin[0]..begin[0] + steps]
            .iter()
            .zip(&s[begin[1]..begin[1] + steps])
            .zip(&s[begin[2]..begin[2] + steps])
            .zip(&s[begin[3]..begin[3] + steps]);
        let [mut s0, mut s1, mut s2, mut s3] = sid;
        for (i, (((&b0, &b1), &b2), &b3)) in lanes.enumerate() {
            s0 = self.dfa.next_state(Anchored::No, s0, b0);
            s1 = self.dfa.next_state(Anchored::No, s1, b1);
            s2 = self.dfa.next_state(Anchored::No, s2, b2);
            s3 = self.dfa.next_state(Anchored::No, s3, b3);
            if self.dfa.is_special(s0)
                | self.dfa.is_special(s1)
                | self.dfa.is_special(s2)
                | self.dfa.is_special(s3)
            {
                for (k, state) in [s0, s1, s2, s3].into_iter().enumerate() {
                    self.report(state, begin[k] + i + 1, from[k], out);
                }
            }
        }
        sid = [s0, s1, s2, s3];
        for k in 0..LANES {
            let at = begin[k] + steps;
            self.walk(&s[..end[k]], at, sid[k], from[k], out);
        }
        out[before..].sort_unstable_by_key(|h| (h.1, h.2, h.0));
    }

    /// Walks `s[at..]` from state `sid`, reporting keywords that end after `from`.
    fn walk(&self, s: &[u8], at: usize, mut sid: StateID, from: usize, out: &mut Vec<Hit>) {
        for (i, &b) in s.iter().enumerate().skip(at) {
            sid = self.dfa.next_state(Anchored::No, sid, b);
            if self.dfa.is_special(sid) {
                self.report(sid, i + 1, from, out);
            }
        }
    }

    /// Reports the keywords that end at `end` in state `sid`, if it is a match state.
    #[cold]
    fn report(&self, sid: StateID, end: usize, from: usize, out: &mut Vec<Hit>) {
        if !self.dfa.is_match(sid) || end <= from {
            return;
        }
        for i in 0..self.dfa.match_len(sid) {
            let pid = self.dfa.match_pattern(sid, i);
            out.push((pid.as_u32(), end - self.dfa.pattern_len(pid), end));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aho_corasick::AhoCorasick;

    #[test]
    fn lanes_report_what_a_plain_overlapping_search_reports() {
        let patterns: Vec<String> = ["pass", "password", "word", "ghp_", "://", "ab", "b"]
            .map(String::from)
            .to_vec();
        let k = Keywords::new(&patterns).unwrap();
        let reference = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&patterns)
            .unwrap();
        let mut rng = crate::scrub::samples::Rng::new(3);
        for len in [0, 1, 7, 255, 256, 257, 1000, 4099] {
            let text = rng.chars("abPASSWORDgh_p:/ xyz", len);
            let mut got = Vec::new();
            k.find(text.as_bytes(), &mut got);
            let mut want: Vec<Hit> = reference
                .find_overlapping_iter(&text)
                .map(|m| (m.pattern().as_u32(), m.start(), m.end()))
                .collect();
            want.sort_unstable_by_key(|h| (h.1, h.2, h.0));
            assert_eq!(got, want, "len {len}");
        }
    }
}
