//! Sinks: JSON-lines events, the hash-chained audit log, the replay summary and the posture
//! inventory with its report.
pub mod audit;
pub mod inventory;
pub mod json;
pub mod report;
pub mod summary;
