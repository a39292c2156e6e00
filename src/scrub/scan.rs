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
const SPLIT_FROM: usize = 64;

/// The fewest digits a card number has.
const CARD_DIGITS: u32 = 13;

/// The most bytes a card number spans: 19 digits and 4 separators, with margin.
const CARD_SPAN: usize = 26;

/// Digits seen since the last byte that is neither a digit, a space nor a dash.
#[inline(always)]
fn digit_run(count: u32, b: u8) -> u32 {
    let digit = u32::from(b.wrapping_sub(b'0') < 10);
    let keep = digit | u32::from(b == b' ' || b == b'-');
    (count + digit) * keep
}

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

    /// Appends every keyword occurrence in `s` to `out`. Returns whether `s` has a run of 13
    /// or more digits (spaces and dashes allowed between them): only then can it hold a card
    /// number. Counting them here is nearly free, as the walk waits on its table lookups.
    pub(super) fn find(&self, s: &[u8], out: &mut Vec<Hit>) -> bool {
        let Ok(start) = self.dfa.start_state(Anchored::No) else {
            return true;
        };
        if s.len() < SPLIT_FROM {
            return self.walk(s, 0, (start, 0), 0, out);
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
        let [mut c0, mut c1, mut c2, mut c3] = [0u32; LANES];
        let mut digits = false;
        for (i, (((&b0, &b1), &b2), &b3)) in lanes.enumerate() {
            (c0, c1, c2, c3) = (
                digit_run(c0, b0),
                digit_run(c1, b1),
                digit_run(c2, b2),
                digit_run(c3, b3),
            );
            digits |= c0.max(c1).max(c2).max(c3) >= CARD_DIGITS;
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
        let count = [c0, c1, c2, c3];
        for k in 0..LANES {
            let at = begin[k] + steps;
            digits |= self.walk(&s[..end[k]], at, (sid[k], count[k]), from[k], out);
            // A digit run across the cut between two lanes is counted whole here (a card,
            // separators included, spans at most 23 bytes).
            if k > 0 && !digits {
                let window =
                    &s[from[k].saturating_sub(CARD_SPAN)..(from[k] + CARD_SPAN).min(s.len())];
                let mut c = 0;
                digits = window.iter().any(|&b| {
                    c = digit_run(c, b);
                    c >= CARD_DIGITS
                });
            }
        }
        out[before..].sort_unstable_by_key(|h| (h.1, h.2, h.0));
        digits
    }

    /// Walks `s[at..]` from a state and digit count, reporting keywords that end after
    /// `from`; returns whether it saw a card-length digit run.
    fn walk(
        &self,
        s: &[u8],
        at: usize,
        state: (StateID, u32),
        from: usize,
        out: &mut Vec<Hit>,
    ) -> bool {
        let (mut sid, mut count) = state;
        let mut digits = false;
        for (i, &b) in s.iter().enumerate().skip(at) {
            count = digit_run(count, b);
            digits |= count >= CARD_DIGITS;
            sid = self.dfa.next_state(Anchored::No, sid, b);
            if self.dfa.is_special(sid) {
                self.report(sid, i + 1, from, out);
            }
        }
        digits
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
        for len in [0, 1, 7, 63, 64, 65, 127, 255, 1000, 4099] {
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

    #[test]
    fn card_length_digit_runs_are_seen_anywhere() {
        let k = Keywords::new(&["ghp_".to_string()]).unwrap();
        let card = "4111 1111 1111 1111";
        for len in [20, 127, 200, 1000] {
            for at in (0..len).step_by(7) {
                let mut text = "x".repeat(len);
                text.insert_str(at, card);
                assert!(
                    k.find(text.as_bytes(), &mut Vec::new()),
                    "len {len} at {at}"
                );
            }
            let short = "x".repeat(len) + "1234 5678 9012";
            assert!(!k.find(short.as_bytes(), &mut Vec::new()), "len {len}");
        }
    }
}
