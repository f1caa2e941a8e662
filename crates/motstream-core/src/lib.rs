//! The motstream domain: interaction events, their JSON and protobuf codecs and validation, the
//! catalog of experiences and Moments of Truth, and SMOTO classification.
//!
//! Everything here is a plain function over borrowed data: no I/O (the catalog loader takes the
//! file's text, not a path to open), no clock reads (`now_ms` is passed in), no async, and no
//! panics on any input.

pub mod catalog;
pub mod codec;
pub mod error;
pub mod event;
pub mod limits;
pub mod smoto;
pub mod units;
pub mod yaml;

pub use catalog::{Catalog, CatalogError, ExpIdx, MotIdx};
pub use codec::{Decoder, Encoding};
pub use error::EventError;
pub use event::{InteractionEvent, Outcome};
pub use limits::Limits;
pub use smoto::{Classification, Verdict, Why, classify};
