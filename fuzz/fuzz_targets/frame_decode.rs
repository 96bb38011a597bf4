//! Fuzz target: arbitrary bytes as one captured frame, decoded under every link type the
//! decoder knows. Must never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use monitor::decode::{decode, linktype};

fuzz_target!(|data: &[u8]| {
    for lt in linktype::ALL {
        let _ = decode(lt, data);
    }
});
