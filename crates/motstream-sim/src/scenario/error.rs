//! Scenario errors: every problem found, each with file, line and field, like the catalog's.

use std::fmt;

/// One thing wrong with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioProblem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known (parse errors only).
    pub column: Option<usize>,
    /// The field's path, e.g. `incidents[0].mot` or `mots.bag-drop.visit`; empty for a
    /// problem with the file as a whole.
    pub field: String,
    pub message: String,
}

/// A scenario that cannot be used, with every problem found in it, sorted by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or name) the scenario was loaded from.
    pub origin: String,
    pub problems: Vec<ScenarioProblem>,
}

impl fmt::Display for ScenarioError {
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

impl std::error::Error for ScenarioError {}
