//! tlsmon: a passive TLS and plaintext-PHI monitor proving HIPAA transmission security from
//! the wire. The library is the sans-IO core (decode → flow → inspect → policy) plus sinks;
//! the `tlsmon` binary wires it to captures.
pub mod attribution;
pub mod capture;
pub mod cli;
pub mod config;
pub mod decode;
pub mod ebpf_obj;
pub mod fanout;
pub mod flow;
pub mod inspect;
pub mod observation;
pub mod pipeline;
pub mod policy;
pub mod probe;
pub mod run;
pub mod serve;
pub mod sink;
