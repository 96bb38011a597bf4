//! Sinks: JSON-lines events and the replay summary.
pub mod json;
pub mod summary;
