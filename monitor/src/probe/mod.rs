//! Probe: the one active part of tlsmon (issue 14, in progress). TLS 1.3 encrypts the server
//! certificate; the opt-in prober will connect, at a bounded rate, only to allowlisted servers
//! the pipeline saw without certificate facts, complete a handshake with the SNI clients used,
//! read the chain, send no application data and close. This module holds its safety core so
//! far: the scope (allow and deny rules) and the queue (once per interval, rate, concurrency).
//! Must never contact anything outside the scope; every refusal is counted.
pub mod queue;
pub mod scope;
pub mod sweep;
