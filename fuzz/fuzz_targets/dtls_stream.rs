//! Fuzz target: a sequence of UDP datagrams of one DTLS flow, each with its direction, through
//! the DTLS inspector (records, epochs, handshake fragment reassembly, HelloVerifyRequest, the
//! TLS hellos, certificate and key exchange), then its end.
//! Input: `tlsmon_fuzz::datagrams`. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::inspect::dtls::DtlsConn;

fuzz_target!(|data: &[u8]| {
    let mut c = DtlsConn::default();
    let mut ts = 1;
    tlsmon_fuzz::datagrams(data, |dir, d| {
        ts += 1;
        c.datagram(dir, d, ts);
    });
    let _ = (c.done(), c.held());
    c.finish();
});
