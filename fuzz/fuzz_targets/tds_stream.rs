//! Fuzz target: arbitrary bytes as the client and server heads of a SQL Server session through
//! the TDS inspector (packet headers, PRELOGIN option tables, LOGIN7 detection, negotiation)
//! and the plaintext rules, and each head through the TDS unwrapper into the TLS stream parser,
//! cut in chunks of the tag's size. Input: `tlsmon_fuzz::halves`. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::inspect::tds::{analyse, Piece, Unwrap};
use monitor::inspect::tls::TlsStream;

fuzz_target!(|data: &[u8]| {
    let (tag, client, server) = tlsmon_fuzz::halves(data);
    if analyse(client, server).is_some() {
        let facts = monitor::inspect::plaintext::inspect(client, server, 1433);
        let addr = monitor::decode::Addr::v4([192, 0, 2, 1]);
        let ep = |port| monitor::observation::Endpoint { addr, port };
        let flow = monitor::observation::PlainFlow { ts_ns: 1, client: ep(50_000), server: ep(1433), facts };
        let _ = monitor::policy::Policy::default().evaluate_plain(&flow);
    }
    let step = usize::from(tag).max(1);
    for head in [client, server] {
        let (mut u, mut tls) = (Unwrap::new(), TlsStream::default());
        for chunk in head.chunks(step) {
            u.feed(chunk, &mut |p| match p {
                Piece::Tls(b) => tls.feed(b, 1),
                Piece::Clear => tls.mark_clear(),
            });
        }
        tls.finish();
    }
});
