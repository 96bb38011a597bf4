//! Kernel object: the compiled monitor-ebpf ELF (TC `tlsmon_tc`, XDP `tlsmon_xdp`, maps
//! `EVENTS` and `COUNTERS`), embedded at build time by build.rs.
//! Must never be read from disk at run time: the agent ships as one binary.

/// The eBPF object file, 8-byte aligned as aya's ELF parser requires.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/monitor-ebpf"));

/// Name of the TC classifier program in [`EBPF_OBJECT`].
pub const TC_PROGRAM: &str = "tlsmon_tc";
/// Name of the XDP program in [`EBPF_OBJECT`].
pub const XDP_PROGRAM: &str = "tlsmon_xdp";
/// Name of the do-nothing TC program (benchmark baseline, never attached).
pub const NOOP_TC_PROGRAM: &str = "tlsmon_noop_tc";
/// Name of the do-nothing XDP program (benchmark baseline, never attached).
pub const NOOP_XDP_PROGRAM: &str = "tlsmon_noop_xdp";
