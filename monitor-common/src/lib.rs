//! Shared kernel/agent contract: flow-head budgets, the load-time capture settings, the flow
//! classifier both sides run on a flow's first bytes ([`KernelConfig::classify_head`],
//! [`FlowHead`]) and the `#[repr(C)]` ring-buffer records. Must never hold anything but
//! fixed-width integers and byte arrays (the kernel reads it too), nor code the verifier would
//! refuse (unbounded loops, panicking indexes); decoding on the agent side lives in [`decode`]
//! (feature `user`) and never trusts a length it did not check.
#![no_std]

pub mod classify;
#[cfg(feature = "user")]
pub mod decode;
pub mod walk;

pub use classify::{looks_like_client_hello, tls_content, FlowHead, FLOW_HEAD_LEN};

/// Bytes of payload captured per flow from client to server (large post-quantum ClientHellos).
pub const HEAD_BUDGET_CLIENT: u32 = 8 * 1024;
/// Bytes of payload captured per flow from server to client (TLS <= 1.2 certificate chains).
pub const HEAD_BUDGET_SERVER: u32 = 16 * 1024;
/// Most stream bytes captured from client to server while its TLS records are followed: a
/// ClientHello of up to 64 KiB (huge padding, many extensions, post-quantum key shares) in
/// several records, a client certificate chain ([`walk`]).
pub const HANDSHAKE_CAP_CLIENT: u32 = 96 * 1024;
/// Most stream bytes captured from server to client while its TLS records are followed: a
/// certificate chain of several hundred kilobytes and the ServerKeyExchange after it.
pub const HANDSHAKE_CAP_SERVER: u32 = 512 * 1024;
/// Most payload bytes carried by one ring-buffer record. A longer segment (GSO/TSO, jumbo) is
/// split into several records with consecutive sequence numbers.
pub const MAX_RECORD_PAYLOAD: usize = 2048;
/// Most records one packet may produce: a 64 KiB GSO/GRO packet in 2 KiB records (a flight
/// followed past the budget comes in such packets over loopback and veth).
pub const MAX_RECORDS_PER_PACKET: usize = 32;

/// Magic at the start of every record ("TLSM" little-endian).
pub const RECORD_MAGIC: u32 = 0x4d53_4c54;
/// Version of the record layout; bump on any change to the structs below.
pub const RECORD_VERSION: u16 = 3;

/// Record kinds.
pub mod kind {
    /// TCP payload (a flow head segment, or a chunk of one).
    pub const TCP_PAYLOAD: u16 = 1;
    /// TCP lifecycle: flags only (SYN/FIN/RST), no payload.
    pub const TCP_LIFECYCLE: u16 = 2;
    /// UDP/443 QUIC long-header Initial packet (the UDP payload).
    pub const QUIC_INITIAL: u16 = 3;
    /// UDP datagram of clear DTLS records, any port (the UDP payload):
    /// [`crate::classify::dtls_candidate`].
    pub const DTLS_RECORDS: u16 = 4;
}

/// Direction of a record relative to the hook (the agent decides client/server roles).
pub mod dir {
    pub const INGRESS: u8 = 0;
    pub const EGRESS: u8 = 1;
}

/// TCP flag bits as carried in [`RecordHeader::tcp_flags`] (the TCP header's own bit layout).
pub mod tcp_flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
}

/// Bits of [`RecordHeader::flags`].
pub mod record_flags {
    /// Bytes of the segment were not carried: cut by the budget, by `MAX_RECORDS_PER_PACKET`,
    /// or missing from the frame (snap length / short skb).
    pub const TRUNCATED: u8 = 0x01;
    /// The kernel stopped capturing this direction after this record (encrypted data seen).
    pub const DIR_DONE: u8 = 0x02;
}

/// Fixed header of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    pub magic: u32,
    pub version: u16,
    pub kind: u16,
    /// Total record length in bytes including this header (= `HEADER_LEN + payload_len`).
    pub len: u32,
    /// Payload bytes that follow the header (<= MAX_RECORD_PAYLOAD).
    pub payload_len: u16,
    /// IP version: 4 or 6.
    pub ip_version: u8,
    /// [`dir::INGRESS`] or [`dir::EGRESS`].
    pub direction: u8,
    /// Addresses: IPv4 in the first 4 bytes, the rest zero.
    pub src_addr: [u8; 16],
    pub dst_addr: [u8; 16],
    /// Ports in host byte order.
    pub src_port: u16,
    pub dst_port: u16,
    /// IP protocol: 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// TCP flags byte ([`tcp_flags`]); 0 for UDP.
    pub tcp_flags: u8,
    /// [`record_flags`] bits.
    pub flags: u8,
    pub _pad: u8,
    /// TCP sequence number of the first payload byte of this record (host byte order).
    pub seq: u32,
    /// Explicit padding to the 8-byte alignment of `timestamp_ns`; always zero.
    pub _pad2: [u8; 4],
    /// `bpf_ktime_get_ns()` (CLOCK_MONOTONIC) when the packet was seen.
    pub timestamp_ns: u64,
    /// The sending socket's cookie (`bpf_get_socket_cookie`) when the packet leaves a socket of
    /// this host (TC egress); 0 otherwise (ingress, XDP, forwarded traffic). The key of
    /// [`OWNERS_MAP`]: unique per socket for the kernel's lifetime, never reused.
    pub socket_cookie: u64,
    /// The sending socket's cgroup v2 id (`bpf_skb_cgroup_id`), with the same rule; 0 otherwise.
    pub cgroup_id: u64,
}

/// Size of [`RecordHeader`] on the wire.
pub const HEADER_LEN: usize = 88;
const _: () = assert!(core::mem::size_of::<RecordHeader>() == HEADER_LEN);
const _: () = assert!(core::mem::offset_of!(RecordHeader, timestamp_ns) == 64);
const _: () = assert!(core::mem::offset_of!(RecordHeader, socket_cookie) == 72);

/// Header plus a full payload slot: the staging area the kernel fills before output.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record {
    pub header: RecordHeader,
    pub payload: [u8; MAX_RECORD_PAYLOAD],
}

const _: () = assert!(core::mem::size_of::<Record>() == HEADER_LEN + MAX_RECORD_PAYLOAD);

/// Most candidate ports in [`KernelConfig`].
pub const MAX_CANDIDATE_PORTS: usize = 32;
/// Most candidate payload signatures in [`KernelConfig`].
pub const MAX_SIGNATURES: usize = 16;
/// Longest signature prefix in bytes.
pub const SIGNATURE_LEN: usize = 8;

/// Load-time capture settings (a read-only global in the kernel object, set by the agent).
///
/// A TCP flow keeps being captured after its first payload when that payload is a TLS
/// handshake record or an SSLv2 ClientHello, starts with one of `signatures`, or either port
/// is in `ports`; otherwise it is marked ignored and counted as `NOT_CANDIDATE`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    /// Per-direction budgets (stream bytes from the start of the direction).
    pub client_budget: u32,
    pub server_budget: u32,
    /// Per-direction caps while a TLS direction's clear records are followed past its budget
    /// ([`walk::grant`]).
    pub client_cap: u32,
    pub server_cap: u32,
    /// Candidate ports (either end); the first `n_ports` entries count.
    pub ports: [u16; MAX_CANDIDATE_PORTS],
    pub n_ports: u32,
    /// Candidate first-payload prefixes; entry `i` is `signatures[i][..signature_lens[i]]`.
    pub signatures: [[u8; SIGNATURE_LEN]; MAX_SIGNATURES],
    pub signature_lens: [u8; MAX_SIGNATURES],
    pub n_signatures: u32,
    /// Forward UDP handshakes (1) or not (0): UDP/443 QUIC long-header Initial packets and
    /// clear DTLS records on any port.
    pub quic: u32,
}

const _: () = assert!(core::mem::size_of::<KernelConfig>() == 8 + 8 + 64 + 4 + 128 + 16 + 4 + 4);

/// Name of the read-only global holding the [`KernelConfig`].
pub const CONFIG_GLOBAL: &str = "TLSMON_CONFIG";

/// Ports whose protocols upgrade to TLS in band: FTP (AUTH TLS), SMTP, POP3, IMAP, LDAP,
/// submission, SQL Server (TDS PRELOGIN), MySQL, RDP, PostgreSQL, XMPP client-to-server and
/// server-to-server, IRC. The agent follows flows on them until TLS begins.
pub const STARTTLS_PORTS: [u16; 13] = [21, 25, 110, 143, 389, 587, 1433, 3306, 3389, 5432, 5222, 5269, 6667];

/// Ports of candidate clear-start protocols besides the STARTTLS ones: SSH (22: banners and
/// KEXINITs are in clear), HTTP (80, 8080), DICOM (104, 11112), HL7 MLLP (2575).
pub const PLAINTEXT_PORTS: [u16; 6] = [22, 80, 104, 2575, 8080, 11112];

/// First-payload prefixes of candidate plaintext protocols: HL7 (an MLLP start block before any
/// segment, or a raw MSH/FHS/BHS header with any field separator), DICOM A-ASSOCIATE-RQ (PDU
/// type 1, reserved 0), HTTP requests and responses (FHIR, DICOMweb, CDA, credentials), X12
/// ISA envelope, a SQL Server TDS 7.x PRELOGIN packet (type 0x12, EOM, length under 256),
/// SSH identification string (either side may speak first, on any port).
pub const DEFAULT_SIGNATURES: [&[u8]; 16] = [
    b"\x0b",
    b"MSH",
    b"FHS",
    b"BHS",
    b"\x01\x00",
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"PATCH ",
    b"OPTIONS ",
    b"HTTP/1.",
    b"ISA",
    b"\x12\x01\x00",
    b"SSH-",
];

impl KernelConfig {
    /// The default settings: the flow-head budgets, STARTTLS and plaintext ports, the
    /// plaintext signatures, QUIC on.
    pub const fn default_config() -> Self {
        let mut ports = [0u16; MAX_CANDIDATE_PORTS];
        let mut n = 0;
        let mut i = 0;
        while i < STARTTLS_PORTS.len() {
            ports[n] = STARTTLS_PORTS[i];
            n += 1;
            i += 1;
        }
        i = 0;
        while i < PLAINTEXT_PORTS.len() {
            ports[n] = PLAINTEXT_PORTS[i];
            n += 1;
            i += 1;
        }
        let mut signatures = [[0u8; SIGNATURE_LEN]; MAX_SIGNATURES];
        let mut signature_lens = [0u8; MAX_SIGNATURES];
        let mut s = 0;
        while s < DEFAULT_SIGNATURES.len() {
            let sig = DEFAULT_SIGNATURES[s];
            let mut j = 0;
            while j < sig.len() {
                signatures[s][j] = sig[j];
                j += 1;
            }
            signature_lens[s] = sig.len() as u8;
            s += 1;
        }
        KernelConfig {
            client_budget: HEAD_BUDGET_CLIENT,
            server_budget: HEAD_BUDGET_SERVER,
            client_cap: HANDSHAKE_CAP_CLIENT,
            server_cap: HANDSHAKE_CAP_SERVER,
            ports,
            n_ports: n as u32,
            signatures,
            signature_lens,
            n_signatures: DEFAULT_SIGNATURES.len() as u32,
            quic: 1,
        }
    }
}

impl KernelConfig {
    /// Add a candidate port (a port already listed is not added twice). Err(capacity) when
    /// the list is full.
    pub fn add_port(&mut self, port: u16) -> Result<(), usize> {
        let n = (self.n_ports as usize).min(MAX_CANDIDATE_PORTS);
        if self.ports[..n].contains(&port) {
            return Ok(());
        }
        if n == MAX_CANDIDATE_PORTS {
            return Err(MAX_CANDIDATE_PORTS);
        }
        self.ports[n] = port;
        self.n_ports = n as u32 + 1;
        Ok(())
    }
}

impl Default for KernelConfig {
    fn default() -> Self {
        Self::default_config()
    }
}

#[cfg(feature = "user")]
// SAFETY: KernelConfig is #[repr(C)], made only of integers and byte arrays, with no padding
// (the size assert above), so any bit pattern is valid and it can be copied into the object.
unsafe impl aya::Pod for KernelConfig {}

/// Name of the ring buffer map shared by programs and agent.
pub const RING_MAP: &str = "EVENTS";
/// Name of the per-CPU counters map.
pub const COUNTERS_MAP: &str = "COUNTERS";
/// Name of the LRU flow map for IPv6 flows ([`FlowKey`]).
pub const FLOWS_MAP: &str = "FLOWS";
/// Name of the LRU flow map for IPv4 flows ([`FlowKey4`]).
pub const FLOWS4_MAP: &str = "FLOWS4";
/// Entries of each LRU flow map.
pub const FLOWS_MAX: u32 = 65_536;
/// Name of the LRU map from socket cookie to the process that opened, accepted or sent on the
/// socket ([`Owner`]).
pub const OWNERS_MAP: &str = "OWNERS";
/// Entries of [`OWNERS_MAP`]: sockets opened since the agent started (and those found at
/// start), least recently written first out.
pub const OWNERS_MAX: u32 = 16_384;

/// Who owns a socket: the task that connected it, bound it or first sent a datagram on it from
/// an unconnected socket, as the kernel saw it then; for an accepted connection, the owner of
/// the listener; for sockets that existed before the agent started, the agent's own scan of
/// `/proc` and `sock_diag` ([`owner_source`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// Process id (thread group id) in the initial PID namespace.
    pub tgid: u32,
    /// Thread id.
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    /// The task's cgroup v2 id at that moment (`bpf_get_current_cgroup_id`).
    pub cgroup_id: u64,
    /// The task's `comm` (thread name, NUL-padded).
    pub comm: [u8; 16],
    /// [`owner_source`] value.
    pub source: u8,
    pub _pad: [u8; 7],
}

const _: () = assert!(core::mem::size_of::<Owner>() == 48);

/// Where an [`Owner`] entry came from.
pub mod owner_source {
    pub const CONNECT: u8 = 1;
    /// An accepted connection: the owner of the listener bound to its port.
    pub const ACCEPT: u8 = 2;
    pub const UDP_SEND: u8 = 3;
    /// The agent's scan of sockets that existed before it started.
    pub const SCAN: u8 = 4;
    /// bind(): a listener, or a client bound to a fixed port.
    pub const BIND: u8 = 5;
}

/// Name of the LRU map from (network namespace, TCP port) to the owner of the socket bound to
/// it: accepted connections take their listener's owner from it.
pub const LISTENERS_MAP: &str = "LISTENERS";
/// Entries of [`LISTENERS_MAP`].
pub const LISTENERS_MAX: u32 = 4096;

/// Key of [`LISTENERS_MAP`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ListenerKey {
    /// `bpf_get_netns_cookie` / `SO_NETNS_COOKIE`.
    pub netns: u64,
    /// Local TCP port, host byte order.
    pub port: u16,
    pub _pad: [u8; 6],
}

const _: () = assert!(core::mem::size_of::<ListenerKey>() == 16);

// SAFETY: #[repr(C)], integers and byte arrays only, explicit padding (the size assert).
#[cfg(feature = "user")]
unsafe impl aya::Pod for ListenerKey {}

// SAFETY: #[repr(C)], integers and byte arrays only, explicit padding (the size assert).
#[cfg(feature = "user")]
unsafe impl aya::Pod for Owner {}

/// Key of the kernel's IPv6 LRU flow map: the two endpoints in canonical order (`a` is the one
/// with the smaller address, then port), so both directions of a flow share one entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey {
    pub addr_a: [u8; 16],
    pub addr_b: [u8; 16],
    pub port_a: u16,
    pub port_b: u16,
    pub protocol: u8,
    pub _pad: [u8; 3],
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 40);

/// Key of the kernel's IPv4 flow map (TCP only): a 12-byte key hashes faster than
/// [`FlowKey`]'s 40 bytes on the per-packet path. Canonical order as in [`FlowKey`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowKey4 {
    pub addr_a: [u8; 4],
    pub addr_b: [u8; 4],
    pub port_a: u16,
    pub port_b: u16,
}

const _: () = assert!(core::mem::size_of::<FlowKey4>() == 12);

// SAFETY (both): #[repr(C)] structs of integers and byte arrays with explicit padding (the
// size asserts above), so any bit pattern is valid; the agent reads the flow maps' keys.
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowKey4 {}

/// What the kernel decided about a flow ([`FlowValue::kind`]).
pub mod flow_kind {
    /// Opened by a SYN; no payload seen yet.
    pub const NEW: u8 = 0;
    /// First payload was a TLS record or an SSLv2 hello: captured, record layer followed.
    pub const TLS: u8 = 1;
    /// First payload matched a plaintext signature or port: captured up to the budget.
    pub const PLAINTEXT: u8 = 2;
    /// First payload was neither: not captured any more.
    pub const IGNORED: u8 = 3;
}

/// Per-direction bits of [`FlowValue::dir_flags`].
pub mod dir_flags {
    /// `base` holds stream byte 0.
    pub const BASE: u8 = 0x01;
    /// Encrypted data seen: nothing more is captured in this direction.
    pub const DONE: u8 = 0x02;
    /// `next_record` holds the sequence number of the next TLS record header.
    pub const RECORD: u8 = 0x04;
    /// The record layer could not be followed (SSLv2, garbage): only the budget applies.
    pub const NO_WALK: u8 = 0x08;
    /// The budget was decided: client (with `CLIENT`) or server.
    pub const BUDGET: u8 = 0x10;
    pub const CLIENT: u8 = 0x20;
}

/// Value of the kernel's LRU flow map. Index 0 is the direction from `addr_a` to `addr_b`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowValue {
    pub kind: u8,
    /// Direction whose sender sent the SYN (0 or 1), or [`NO_DIR`].
    pub syn_dir: u8,
    pub dir_flags: [u8; 2],
    pub base: [u32; 2],
    pub next_record: [u32; 2],
    /// The first bytes of a record header cut by the end of its segment, per direction
    /// ([`walk::Walk`]), and how many.
    pub part: [[u8; 4]; 2],
    pub part_len: [u8; 2],
    pub _pad: [u8; 2],
}

/// [`FlowValue::syn_dir`] before a SYN was seen.
pub const NO_DIR: u8 = 0xff;

const _: () = assert!(core::mem::size_of::<FlowValue>() == 32);

// SAFETY: #[repr(C)], integers and byte arrays only, explicit padding (32 = 1 + 1 + 2 + 8 + 8
// + 8 + 2 + 2).
#[cfg(feature = "user")]
unsafe impl aya::Pod for FlowValue {}

/// One CPU's kernel counters, indexed by [`counter`]: the single value of the per-CPU
/// `COUNTERS` map, so one lookup serves every counter a packet touches.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters(pub [u64; counter::COUNT as usize]);

impl Default for Counters {
    fn default() -> Self {
        Counters([0; counter::COUNT as usize])
    }
}

// SAFETY: #[repr(C)] around an array of u64: no padding, any bit pattern is valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for Counters {}

/// Indexes into [`Counters`].
pub mod counter {
    /// Every packet the program saw.
    pub const PACKETS: u32 = 0;
    /// Bytes of every packet the program saw (frame length).
    pub const PACKET_BYTES: u32 = 1;
    pub const NOT_IP: u32 = 2;
    pub const NOT_TCP_UDP: u32 = 3;
    /// IPv4/IPv6 non-first fragments (no transport header).
    pub const IP_FRAGMENT: u32 = 4;
    pub const TRUNCATED_HEADER: u32 = 5;
    /// Flows whose first payload was not a candidate: ignored from then on.
    pub const NOT_CANDIDATE: u32 = 6;
    /// Payload packets of ignored or untracked flows (the bulk of traffic).
    pub const FLOW_IGNORED: u32 = 7;
    /// Payload packets past the direction's budget.
    pub const BUDGET_EXHAUSTED: u32 = 8;
    /// Payload packets after the direction turned encrypted.
    pub const DIR_DONE: u32 = 9;
    /// Records lost because the ring buffer was full.
    pub const RINGBUF_FULL: u32 = 10;
    /// Records written.
    pub const RECORDS: u32 = 11;
    /// Bytes written to the ring buffer (record headers included).
    pub const RECORD_BYTES: u32 = 12;
    /// Records whose payload was cut (budget, record count, short frame).
    pub const PAYLOAD_TRUNCATED: u32 = 13;
    /// New flows that could not be inserted into the flow map. An LRU map makes room by
    /// evicting its least recently used entries instead, so this stays 0 in practice: see
    /// [`FLOWS_OPENED`] and [`FLOWS_CLOSED`] for evictions.
    pub const FLOW_MAP_FULL: u32 = 14;
    /// UDP packets that are neither QUIC Initials on port 443 nor clear DTLS records.
    pub const UDP_SKIPPED: u32 = 15;
    /// QUIC Initial packets forwarded.
    pub const QUIC_INITIAL: u32 = 16;
    /// bpf_skb_load_bytes / bpf_xdp_load_bytes failures.
    pub const LOAD_FAILED: u32 = 17;
    /// TCP packets without payload and without SYN/FIN/RST (pure ACKs).
    pub const TCP_NO_PAYLOAD: u32 = 18;
    /// Entries the program inserted into a flow map (FLOWS or FLOWS4). Counted on the insert
    /// path only, never per data packet. A SYN that reuses an entry's 4-tuple resets the entry
    /// in place and counts neither here nor in [`FLOWS_CLOSED`].
    pub const FLOWS_OPENED: u32 = 19;
    /// Entries the program removed from a flow map itself (a flow reset by RST), counted only
    /// when the delete found the entry (not when an eviction took it first).
    ///
    /// Every opened entry is either still in a map, closed, or evicted by the LRU map (which
    /// does so silently), so evicted = opened - closed - entries now in both maps: the agent
    /// derives that figure ([`DERIVED`]) by counting the maps' keys.
    pub const FLOWS_CLOSED: u32 = 20;
    /// UDP datagrams of clear DTLS records forwarded.
    pub const DTLS_RECORDS: u32 = 21;
    /// Socket owners written to the owners map by the socket hooks (connect, bind, accept,
    /// first datagram sent).
    pub const OWNERS_RECORDED: u32 = 22;
    /// Socket owners the hooks could not write (no cookie, map update failed), and accepted
    /// connections whose listener had no known owner.
    pub const OWNER_FAILED: u32 = 23;
    pub const COUNT: u32 = 24;

    /// Stable names (Prometheus label values, `--stats`), indexed like the constants.
    pub const NAMES: [&str; COUNT as usize] = [
        "packets",
        "packet_bytes",
        "not_ip",
        "not_tcp_udp",
        "ip_fragment",
        "truncated_header",
        "not_candidate",
        "flow_ignored",
        "budget_exhausted",
        "dir_done",
        "ringbuf_full",
        "records",
        "record_bytes",
        "payload_truncated",
        "flow_map_full",
        "udp_skipped",
        "quic_initial",
        "load_failed",
        "tcp_no_payload",
        "flows_opened",
        "flows_closed",
        "dtls_records",
        "owners_recorded",
        "owner_failed",
    ];

    /// Figures the agent derives from these counters and the flow maps, exported beside
    /// [`NAMES`] under the same label (they are no slot of the counters array):
    /// `flows_evicted` = [`FLOWS_OPENED`] - [`FLOWS_CLOSED`] - entries in FLOWS and FLOWS4.
    pub const DERIVED: [&str; 1] = ["flows_evicted"];
}

/// Byte equality of two strings in a `const` context (compile-time checks of names both sides
/// must agree on).
pub const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}
