//! The page, its scripts, styles and the vendored chart library, compiled into the binary:
//! nothing is read from disk or the network at run time, and no Node or npm is needed to
//! build. Each file under `assets/` that the page uses is listed here once.

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// Path under `/assets/`.
    pub path: &'static str,
    /// The `Content-Type` it is served with.
    pub mime: &'static str,
    pub body: &'static [u8],
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! asset {
    ($path:literal, $mime:expr) => {
        Asset {
            path: $path,
            mime: $mime,
            body: include_bytes!(concat!("../assets/", $path)),
        }
    };
}

/// The page itself, served at `/`.
pub(crate) const INDEX: &str = include_str!("../assets/index.html");

pub(crate) const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("app.js", JS),
    asset!("format.js", JS),
    asset!("dom.js", JS),
    asset!("views/enterprise.js", JS),
    asset!("views/experience.js", JS),
    asset!("views/funnel.js", JS),
    asset!("views/pager.js", JS),
    asset!("views/mot.js", JS),
    asset!("views/alerts.js", JS),
    asset!("views/unidentified.js", JS),
    asset!("vendor/uPlot.iife.min.js", JS),
    asset!("vendor/uPlot.min.css", CSS),
];

/// The embedded file at `path` (relative to `/assets/`), if any.
pub(crate) fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}
