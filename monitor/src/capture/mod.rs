//! Sources of packets: offline captures (pcap/pcapng) and the live eBPF ring buffer.
pub mod ebpf;
pub mod pcap;
pub mod record;
#[cfg(feature = "testrun")]
pub mod testrun;
