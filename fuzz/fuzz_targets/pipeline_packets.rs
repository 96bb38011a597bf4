//! Fuzz target: arbitrary bytes as a sequence of TCP packets between clients and one server
//! (`tlsmon_fuzz::packets`) through the whole pipeline — flow table, reassembly, TLS and
//! plaintext inspection, policy — and every output as the JSON sink renders it. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::pipeline::Pipeline;

fuzz_target!(|data: &[u8]| {
    let mut pipeline = Pipeline::new(Default::default());
    tlsmon_fuzz::packets(data, |ts, p| pipeline.packet(ts, p));
    pipeline.finish();
    for o in pipeline.drain_outputs() {
        let _ = serde_json::to_vec(&monitor::sink::json::any_event(&o));
    }
});
