//! Sinks: JSON-lines events (TLS, plaintext, SSH), the hash-chained audit log, the replay summary and the posture
//! inventory with its report.
pub mod alertmanager;
pub mod audit;
pub mod compact;
pub mod ecs;
pub mod inventory;
pub mod json;
pub mod labels;
pub mod local_event;
pub mod metrics;
pub mod period;
pub mod published;
pub mod report;
pub mod ssh_event;
pub mod summary;
