//! Fuzz target: arbitrary bytes as ring-buffer records (what a buggy or hostile kernel side
//! could hand the agent) through decoding and into the pipeline. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::capture::record;
use monitor::pipeline::Pipeline;
use monitor_common::decode::parse_record;

fuzz_target!(|data: &[u8]| {
    let mut pipeline = Pipeline::new(Default::default());
    // Several records per input, length-prefixed (`tlsmon_fuzz::chunks`), so sequences of
    // records (one flow's head in pieces) are explored, not just single ones.
    let mut ts = 1_000_000_000u64;
    for one in tlsmon_fuzz::chunks(data) {
        if let Ok(r) = parse_record(one) {
            pipeline.packet(ts, &record::packet(&r));
        }
        ts += 1_000_000;
    }
    pipeline.finish();
    // Every output as the sinks see it: the event of a TLS handshake or of a plaintext flow.
    for o in pipeline.drain_outputs() {
        let _ = serde_json::to_vec(&monitor::sink::json::any_event(&o, &monitor::sink::ecs::Style::default()));
    }
});
