//! Fuzz target: arbitrary bytes as one direction of a TLS flow head (records, handshake
//! messages, certificates), fed in two pieces cut anywhere, as the pipeline feeds it.
//! Input: `tlsmon_fuzz::halves`, tag bit 0 = the flow may upgrade (STARTTLS). Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::inspect::tls::TlsStream;

fuzz_target!(|data: &[u8]| {
    let (tag, a, b) = tlsmon_fuzz::halves(data);
    let mut s = TlsStream::default();
    s.upgradable = tag & 1 != 0;
    s.feed(a, 1);
    s.feed(b, 2);
    s.finish();
});
