//! Fuzz target: arbitrary bytes as a sequence of TCP packets between clients and one server
//! (`tlsmon_fuzz::packets`) through the whole pipeline — flow table, reassembly, TLS and
//! plaintext inspection, policy — and every output as the JSON sink renders it. Bounds are tiny
//! (8 flows, 16 KiB of memory) so table eviction and the memory budget run too. Must never
//! panic, and every judged flow must give back what it was charged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::pipeline::{Pipeline, PipelineConfig};

fuzz_target!(|data: &[u8]| {
    let cfg = PipelineConfig { max_flows: 8, max_memory: 16 << 10, ..Default::default() };
    let mut pipeline = Pipeline::new(cfg);
    tlsmon_fuzz::packets(data, |ts, p| pipeline.packet(ts, p));
    pipeline.finish();
    assert_eq!(pipeline.stats.memory.held, 0, "every judged flow gives its bytes back");
    for o in pipeline.drain_outputs() {
        let _ = serde_json::to_vec(&monitor::sink::json::any_event(&o, &monitor::sink::ecs::Style::default()));
    }
});
