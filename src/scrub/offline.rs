//! Offline scrubbing of JSON Lines (`mcp-audit scrub [FILE|-]`).
//!
//! The same scrubber as the live path, applied line by line. A line holding a JSON object (or
//! array) is walked generically, so any event-shaped line works, known fields or not: paths
//! are rooted at the line's own keys (`result`, `arguments.headers.Authorization`,
//! `labels.db_password`) and only the changed string tokens are rewritten. Any other line is
//! scrubbed as text (path `line`). Line endings are kept; bytes that are not UTF-8 are
//! replaced by U+FFFD.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};

use super::Scrubber;

/// What [`scrub_jsonl`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfflineSummary {
    /// Lines read.
    pub lines: u64,
    /// Lines in which at least one secret was replaced.
    pub lines_changed: u64,
    /// Secrets replaced, per kind.
    pub counts: BTreeMap<String, u64>,
}

impl fmt::Display for OfflineSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total: u64 = self.counts.values().sum();
        writeln!(
            f,
            "{} lines, {} changed, {} secrets redacted",
            self.lines, self.lines_changed, total
        )?;
        if self.counts.is_empty() {
            return Ok(());
        }
        let width = self
            .counts
            .keys()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max("kind".len());
        writeln!(f, "{:<width$}  {:>7}", "kind", "count")?;
        for (kind, count) in &self.counts {
            writeln!(f, "{kind:<width$}  {count:>7}")?;
        }
        Ok(())
    }
}

/// Scrubs JSON Lines from `input` to `output`, one output line per input line.
pub fn scrub_jsonl(
    scrubber: &Scrubber,
    mut input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<OfflineSummary> {
    let mut summary = OfflineSummary::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        summary.lines += 1;
        let ending_len = if buf.ends_with(b"\r\n") {
            2
        } else {
            usize::from(buf.ends_with(b"\n"))
        };
        let (body, ending) = buf.split_at(buf.len() - ending_len);
        let text = String::from_utf8_lossy(body);
        let (scrubbed, redactions) = scrubber.scrub_line(&text);
        if !redactions.is_empty() {
            summary.lines_changed += 1;
        }
        for r in redactions {
            *summary.counts.entry(r.kind).or_default() += u64::from(r.count);
        }
        output.write_all(scrubbed.as_deref().unwrap_or(&text).as_bytes())?;
        output.write_all(ending)?;
    }
    output.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scrub::{samples, ScrubConfig};

    fn scrubber() -> Scrubber {
        Scrubber::new(&ScrubConfig::default(), [7u8; 32]).unwrap()
    }

    #[test]
    fn scrubs_event_lines_and_text_lines() {
        let s = samples::all(1);
        let gh = s.iter().find(|x| x.kind == "github_token").unwrap();
        let event = serde_json::json!({
            "event_id": "e1",
            "tool": "run",
            "arguments": {"headers": {"Authorization": format!("token {}", gh.secret)}},
            "result": "{\"password\": \"hunter2hunter2\", \"rows\": 3}",
            "labels": {"db_password": "s3cr3t-value"},
        });
        let input = format!(
            "{event}\nplain text with {} in it\r\nnothing here\n\n",
            gh.secret
        );
        let mut out = Vec::new();
        let summary = scrub_jsonl(&scrubber(), input.as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains(&gh.secret), "{out}");
        assert!(!out.contains("hunter2hunter2"), "{out}");
        assert!(!out.contains("s3cr3t-value"), "{out}");
        assert!(out.contains("\r\nnothing here\n\n"), "{out:?}");
        let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
        assert_eq!(first["event_id"], "e1");
        assert_eq!(summary.lines, 4);
        assert_eq!(summary.lines_changed, 2);
        assert_eq!(summary.counts["github_token"], 2);
        assert_eq!(summary.counts["password_field"], 2);
        let table = summary.to_string();
        assert!(
            table.contains("github_token") && table.contains("4 lines, 2 changed"),
            "{table}"
        );
    }

    #[test]
    fn unchanged_input_is_copied_byte_for_byte() {
        let input = "{\"a\": 1,   \"b\": [\"x\"]}\nno secrets\n";
        let mut out = Vec::new();
        let summary = scrub_jsonl(&scrubber(), input.as_bytes(), &mut out).unwrap();
        assert_eq!(out, input.as_bytes());
        assert_eq!(summary.lines_changed, 0);
        assert!(summary.counts.is_empty());
    }
}
