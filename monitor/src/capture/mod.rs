//! Sources of frames: offline captures (pcap/pcapng) now; the eBPF ring buffer later.
pub mod pcap;
