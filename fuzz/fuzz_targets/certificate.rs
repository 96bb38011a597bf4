//! Fuzz target: arbitrary bytes as a DER certificate (what a server's Certificate message
//! carries) through the X.509 facts and the checks on them. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::inspect::tls::cert::parse_cert;

fuzz_target!(|data: &[u8]| {
    if let Some(c) = parse_cert(data) {
        let _ = (c.weak_signature(), c.matches_host("www.example.org"));
    }
});
