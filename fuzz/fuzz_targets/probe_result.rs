//! Fuzz target: what a hostile server can answer the prober — bytes to the sweep's answer
//! reader, and bytes plus a "certificate" to the judging of a probe (the record parser, the
//! certificate parser, the policy). Input: `tlsmon_fuzz::halves`: the server's bytes, then
//! the DER of the chain's one certificate; the tag picks the outcome and where to cut.
//! Must never panic, and a sweep answer decided on a prefix stays the answer of the whole.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::observation::VersionTry;
use monitor::probe::conn::{Outcome, Record};
use monitor::probe::queue::Target;
use monitor::probe::sweep::judge_answer;
use monitor::probe::{judge, ProbeConfig};

fuzz_target!(|data: &[u8]| {
    let (tag, server, der) = tlsmon_fuzz::halves(data);
    let cut = usize::from(tag >> 2) % (server.len() + 1);
    if let Some(early) = judge_answer(&server[..cut]) {
        assert_eq!(judge_answer(server), Some(early), "an answer decided on a prefix changed");
    }
    let outcome = Outcome::ALL[usize::from(tag & 3)];
    let rec = Record {
        outcome: Some(outcome),
        server_bytes: server.to_vec(),
        chain: vec![der.to_vec()],
        chain_sent: 1,
        ..Default::default()
    };
    let t = Target { ip: [10, 0, 0, 1].into(), port: 443, sni: Some("fuzz.lab".into()), why: "fuzz" };
    let cfg = ProbeConfig {
        allow: Vec::new(),
        deny: Vec::new(),
        queue: Default::default(),
        timeout: std::time::Duration::from_secs(1),
        all: false,
        versions: true,
        policy: Default::default(),
        trust: None,
    };
    let tries = vec![VersionTry {
        offered: "TLS 1.0",
        accepted: Some((0x0301, u16::from_be_bytes([tag as u8, 0x2f]))),
        refused: None,
    }];
    let _ = judge(&t, &rec, tries, 1_700_000_000_000_000_000, &cfg);
});
