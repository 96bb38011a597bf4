//! Sinks: JSON-lines events, the hash-chained audit log and the replay summary.
pub mod audit;
pub mod json;
pub mod summary;
