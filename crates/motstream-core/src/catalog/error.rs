//! Catalog errors: every problem found, each with file, line and field.

use std::fmt;

/// One thing wrong with a catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known (parse errors only).
    pub column: Option<usize>,
    /// The field's path, e.g. `experiences[0].mots[2].target`.
    pub field: String,
    pub message: String,
}

/// A catalog that cannot be used, with every problem found in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogError {
    pub origin: String,
    pub problems: Vec<Problem>,
}

impl fmt::Display for CatalogError {
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

impl std::error::Error for CatalogError {}
