//! Fuzz target: a sequence of UDP datagrams of one QUIC flow, each with its direction, through
//! the QUIC Initial inspector (long headers, Initial keys, header protection, AEAD, frames,
//! CRYPTO reassembly, Retry, Version Negotiation, the TLS hellos), then its end.
//! Input: `tlsmon_fuzz::datagrams`. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::inspect::quic::QuicConn;

fuzz_target!(|data: &[u8]| {
    let mut q = QuicConn::default();
    let mut ts = 1;
    tlsmon_fuzz::datagrams(data, |dir, d| {
        ts += 1;
        q.datagram(dir, d, ts);
    });
    let _ = (q.done(), q.held());
    q.finish();
});
