//! Shared kernel/agent contract: flow-head budgets and the `#[repr(C)]` ring-buffer records.
//! Must never hold anything but fixed-width integers and byte arrays (the kernel reads it too).
#![no_std]

/// Bytes of payload captured per flow from client to server (large post-quantum ClientHellos).
pub const HEAD_BUDGET_CLIENT: u32 = 8 * 1024;
/// Bytes of payload captured per flow from server to client (TLS <= 1.2 certificate chains).
pub const HEAD_BUDGET_SERVER: u32 = 16 * 1024;
/// Most payload bytes carried by one ring-buffer record.
pub const MAX_RECORD_PAYLOAD: usize = 2048;

/// Magic at the start of every record ("TLSM" little-endian).
pub const RECORD_MAGIC: u32 = 0x4d53_4c54;
/// Version of the record layout; bump on any change to the structs below.
pub const RECORD_VERSION: u16 = 1;

/// Record kinds.
pub mod kind {
    /// TCP payload (a flow head segment).
    pub const TCP_PAYLOAD: u16 = 1;
    /// TCP lifecycle: flags only (SYN/FIN/RST), no payload.
    pub const TCP_LIFECYCLE: u16 = 2;
    /// UDP/443 QUIC long-header Initial packet.
    pub const QUIC_INITIAL: u16 = 3;
}

/// Direction of a record relative to the interface (the agent decides client/server roles).
pub mod dir {
    pub const INGRESS: u8 = 0;
    pub const EGRESS: u8 = 1;
}

/// TCP flag bits as carried in [`RecordHeader::tcp_flags`].
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const ACK: u8 = 0x10;
}

/// Fixed header of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    pub magic: u32,
    pub version: u16,
    pub kind: u16,
    /// Total record length in bytes including this header.
    pub len: u32,
    /// Payload bytes that follow the header (<= MAX_RECORD_PAYLOAD).
    pub payload_len: u16,
    /// IP version: 4 or 6.
    pub ip_version: u8,
    pub direction: u8,
    /// Addresses: IPv4 in the first 4 bytes, the rest zero.
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub tcp_flags: u8,
    pub _pad: [u8; 2],
    pub seq: u32,
    pub timestamp_ns: u64,
}

const _: () = assert!(core::mem::size_of::<RecordHeader>() == 72);

/// Header plus a full payload slot: the size reserved in the ring buffer.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record {
    pub header: RecordHeader,
    pub payload: [u8; MAX_RECORD_PAYLOAD],
}

const _: () = assert!(core::mem::size_of::<Record>() == 72 + MAX_RECORD_PAYLOAD);

/// Name of the ring buffer map shared by programs and agent.
pub const RING_MAP: &str = "EVENTS";
/// Name of the per-CPU counters map.
pub const COUNTERS_MAP: &str = "COUNTERS";

/// Indexes into the per-CPU counters array.
pub mod counter {
    pub const PACKETS: u32 = 0;
    pub const NOT_IP: u32 = 1;
    pub const NOT_TCP_UDP: u32 = 2;
    pub const IP_FRAGMENT: u32 = 3;
    pub const TRUNCATED_HEADER: u32 = 4;
    pub const NOT_CANDIDATE: u32 = 5;
    pub const BUDGET_EXHAUSTED: u32 = 6;
    pub const RINGBUF_FULL: u32 = 7;
    pub const RECORDS: u32 = 8;
    pub const PAYLOAD_TRUNCATED: u32 = 9;
    pub const COUNT: u32 = 16;
}
