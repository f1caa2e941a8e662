//! The files the traffic and the service start from: catalogs (or the built-in airline
//! example) and scenarios. Errors name the file, line and field.

use std::path::{Path, PathBuf};

use anyhow::Context;
use motstream_core::Catalog;
use motstream_sim::Scenario;

/// The airline example, built in so that the service runs without a catalog file.
pub const BUILTIN_CATALOG: &str = include_str!("../../../deploy/catalog/airline.yaml");

/// Loads the catalog at `path`, or the built-in one.
pub fn load_catalog_or_builtin(path: Option<&std::path::Path>) -> anyhow::Result<Catalog> {
    match path {
        Some(path) => load_catalog(path),
        None => Catalog::from_yaml(BUILTIN_CATALOG, "built-in airline catalog")
            .map_err(|e| anyhow::anyhow!("{e}")),
    }
}

/// Reads and validates a catalog file. The error text is `file:line: field: message`, one
/// problem per line.
pub fn load_catalog(path: &Path) -> anyhow::Result<Catalog> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading catalog {}", path.display()))?;
    Catalog::from_yaml(&text, &path.display().to_string()).map_err(|e| {
        let n = e.problems.len();
        anyhow::anyhow!(
            "{e}\n{n} problem{} in {}",
            if n == 1 { "" } else { "s" },
            e.origin
        )
    })
}

/// Loads a scenario file against the catalog, or the catalog's default scenario.
pub fn load_scenario(
    path: Option<&PathBuf>,
    catalog: &motstream_core::Catalog,
) -> anyhow::Result<Scenario> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading scenario {}", p.display()))?;
            Scenario::from_yaml(&text, &p.display().to_string(), catalog)
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
        None => Ok(Scenario::default_for(catalog)),
    }
}
