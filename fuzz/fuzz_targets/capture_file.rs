//! Fuzz target: arbitrary bytes as a pcap or pcapng file (what `tlsmon replay` opens) through
//! the reader and into frame decoding. Must never panic, nor crawl on a huge claimed length.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::capture::pcap::for_each_frame;
use monitor::decode::decode;

fuzz_target!(|data: &[u8]| {
    let _ = for_each_frame(data, |f| {
        let _ = decode(f.linktype, f.data);
    });
});
