//! Finds the line of a node in block-style YAML from its path (`experiences[0].mots[2].target`),
//! so that checks made after parsing can point at the line like parse errors do. Shared by the
//! catalog and the simulator's scenario files.
//!
//! This reads indentation only, which is exact for block-style YAML (how catalogs are written);
//! for flow style (`{a: 1}`) or a key that is absent (an inherited default), it answers with the
//! line of the deepest ancestor it found.
//!
//! Also the error both file kinds report: every problem found, each with file, line and field.

use std::fmt;

/// One thing wrong with a YAML file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known (parse errors only).
    pub column: Option<usize>,
    /// The field's path, e.g. `experiences[0].mots[2].target`; empty for a problem with the
    /// file as a whole.
    pub field: String,
    pub message: String,
}

/// A YAML file that cannot be used, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// The file (or name) it was loaded from.
    pub origin: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for FileError {
    /// One problem per line, as `file:line:column: field: message`, so editors can jump to it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.origin)?;
            if let Some(l) = p.line {
                write!(f, ":{l}")?;
                if let Some(c) = p.column {
                    write!(f, ":{c}")?;
                }
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for FileError {}

/// The error for a file that does not parse: serde's message, with its line and column (or,
/// for an unknown field, the line of the field itself rather than of its mapping).
pub fn parse_error(e: &serde_norway::Error, text: &str, origin: &str) -> FileError {
    let mut message = e.to_string();
    // The location is reported in its own fields; keep the message itself short.
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    let mut line = e.location().map(|l| l.line());
    let mut column = e.location().map(|l| l.column());
    // serde points an unknown field at the start of its mapping; point at the field itself.
    if let Some((path, rest)) = message.split_once(": unknown field `") {
        let field = rest.split('`').next().unwrap_or_default();
        if let Some(mut segs) = parse_path(path) {
            segs.push(Seg::Key(field));
            if let Some(l) = locate(text, &segs).filter(|_| segs.len() > 1) {
                (line, column) = (Some(l), None);
            }
        }
    }
    FileError {
        origin: origin.to_owned(),
        problems: vec![Problem {
            line,
            column,
            field: String::new(),
            message,
        }],
    }
}

/// One step of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

struct Line<'a> {
    no: usize,
    /// Column of the first non-blank character.
    indent: usize,
    /// Column of the key on this line (after any `- ` prefixes), and the key itself.
    key_col: usize,
    key: Option<&'a str>,
    dashes: Vec<usize>,
}

fn lines(src: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    for (i, text) in src.lines().enumerate() {
        let trimmed = text.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
            continue;
        }
        let indent = text.len() - trimmed.len();
        let mut col = indent;
        let mut rest = trimmed;
        let mut dashes = Vec::new();
        while let Some(r) = rest
            .strip_prefix("- ")
            .or_else(|| (rest == "-").then_some(""))
        {
            dashes.push(col);
            let r2 = r.trim_start();
            col += 2 + (r.len() - r2.len());
            rest = r2;
        }
        let key = rest
            .split_once(':')
            .map(|(k, _)| k.trim().trim_matches(|c| c == '"' || c == '\''))
            .filter(|k| !k.is_empty() && !k.contains(' ') && !k.starts_with('{'));
        out.push(Line {
            no: i + 1,
            indent,
            key_col: col,
            key,
            dashes,
        });
    }
    out
}

/// The 1-based line of `path` in `src`, or of its deepest ancestor found; `None` when not even
/// the first step is found.
pub fn locate(src: &str, path: &[Seg<'_>]) -> Option<usize> {
    let all = lines(src);
    // The node's children live in all[lo..hi]; `first_dash` marks that the node is a sequence
    // item whose first key shares the line of its dash.
    let (mut lo, mut hi) = (0, all.len());
    let mut found = None;
    for seg in path {
        let region = all.get(lo..hi)?;
        let Some(first) = region.first() else { break };
        match *seg {
            Seg::Key(k) => {
                let col = first.key_col;
                let Some(pos) = region
                    .iter()
                    .position(|l| l.key_col == col && l.key == Some(k))
                else {
                    break;
                };
                let at = lo + pos;
                found = Some(all[at].no);
                let end = all[at + 1..hi]
                    .iter()
                    .position(|l| l.indent <= col && l.key_col <= col)
                    .map_or(hi, |p| at + 1 + p);
                (lo, hi) = (at + 1, end);
            }
            Seg::Index(n) => {
                let Some(dash_col) = first.dashes.first().copied() else {
                    break;
                };
                let items: Vec<usize> = region
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.dashes.first() == Some(&dash_col))
                    .map(|(i, _)| lo + i)
                    .collect();
                let Some(&at) = items.get(n) else { break };
                found = Some(all[at].no);
                let end = items.get(n + 1).copied().unwrap_or(hi);
                // The item's first key is on the dash line itself.
                (lo, hi) = (at, end);
            }
        }
    }
    found
}

/// Reads a serde error path such as `experiences[0].mots[1]` or `mots.bag-drop` back into
/// steps; `None` if an index is not a number.
pub fn parse_path(p: &str) -> Option<Vec<Seg<'_>>> {
    let mut out = Vec::new();
    for part in p.split('.') {
        let (key, rest) = part.split_once('[').unwrap_or((part, ""));
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            out.push(Seg::Index(idx.trim_end_matches(']').parse().ok()?));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::Seg::{Index as I, Key as K};
    use super::*;

    const SRC: &str = "\
version: 1
defaults:
  target: 0.95
experiences:
  # the first
  - id: a
    name: A
    mots:
      - id: m1
        target: 0.9
      - id: m2
        owner:
          team: t
        target: 1.5
  - id: b
    mots: []
";

    #[test]
    fn finds_keys_and_items_at_any_depth() {
        assert_eq!(locate(SRC, &[K("defaults"), K("target")]), Some(3));
        assert_eq!(locate(SRC, &[K("experiences"), I(0)]), Some(6));
        assert_eq!(locate(SRC, &[K("experiences"), I(0), K("name")]), Some(7));
        assert_eq!(
            locate(SRC, &[K("experiences"), I(0), K("mots"), I(1), K("target")]),
            Some(14)
        );
        assert_eq!(
            locate(SRC, &[K("experiences"), I(0), K("mots"), I(0), K("target")]),
            Some(10)
        );
        assert_eq!(locate(SRC, &[K("experiences"), I(1), K("id")]), Some(15));
    }

    #[test]
    fn absent_key_answers_with_the_deepest_ancestor() {
        assert_eq!(
            locate(
                SRC,
                &[K("experiences"), I(0), K("mots"), I(0), K("runbook")]
            ),
            Some(9)
        );
        assert_eq!(locate(SRC, &[K("nope")]), None);
    }
}
