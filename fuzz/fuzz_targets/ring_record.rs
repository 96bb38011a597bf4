//! Fuzz target: arbitrary bytes as ring-buffer records (what a buggy or hostile kernel side
//! could hand the agent) through decoding and into the pipeline. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::capture::record;
use monitor::pipeline::Pipeline;
use monitor_common::decode::parse_record;

fuzz_target!(|data: &[u8]| {
    let mut pipeline = Pipeline::new(Default::default());
    // Several records per input: split at a length prefix so sequences of records (one flow's
    // head in pieces) are explored, not just single ones.
    let mut rest = data;
    let mut ts = 1_000_000_000u64;
    while rest.len() > 2 {
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (one, tail) = rest[2..].split_at(n);
        if let Ok(r) = parse_record(one) {
            pipeline.packet(ts, &record::packet(&r));
        }
        ts += 1_000_000;
        rest = tail;
    }
    pipeline.finish();
    // Every output as the sinks see it: the event of a TLS handshake or of a plaintext flow.
    for o in pipeline.drain_outputs() {
        let _ = monitor::sink::json::any_event(&o);
    }
});
