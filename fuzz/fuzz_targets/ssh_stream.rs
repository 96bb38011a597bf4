//! Fuzz target: arbitrary bytes as the client and server heads of an SSH session through the
//! SSH inspector (banners, binary packets, KEXINIT name-lists, negotiation, HASSH) and the SSH
//! rules. Input: `tlsmon_fuzz::halves`, tag unused. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (_, client, server) = tlsmon_fuzz::halves(data);
    let facts = monitor::inspect::ssh::inspect(client, server);
    let addr = monitor::decode::Addr::v4([192, 0, 2, 1]);
    let ep = |port| monitor::observation::Endpoint { addr, port };
    let flow = monitor::observation::SshFlow { ts_ns: 1, client: ep(50_000), server: ep(22), facts };
    let _ = monitor::policy::Policy::default().evaluate_ssh(&flow);
});
