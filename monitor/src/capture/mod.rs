//! Sources of packets: capture files (pcap/pcapng, stdin) and the live eBPF ring buffer. Both
//! hand the run loop the same decoded [`Packet`]s and keep the same [`DecodeStats`], so the
//! pipeline after them cannot tell them apart.
//! Must never judge anything: sources decode and count, the pipeline decides.
pub mod ebpf;
pub mod files;
pub mod mapped;
pub mod pcap;
pub mod record;
#[cfg(feature = "testrun")]
pub mod testrun;
pub mod timestamp;

use monitor_common::counter;

use crate::decode::{self, Packet, Skip};
pub use crate::observation::DecodeStats;

impl DecodeStats {
    /// Decode one captured frame, counting it and, when it gives no packet, why.
    pub fn decode<'a>(&mut self, linktype: u32, data: &'a [u8]) -> Option<Packet<'a>> {
        self.packets += 1;
        self.bytes += data.len() as u64;
        let skip = match decode::decode(linktype, data) {
            Ok(p) => return Some(p),
            Err(skip) => skip,
        };
        *match skip {
            Skip::UnknownLinkType => &mut self.skipped_link,
            Skip::NotIp => &mut self.skipped_not_ip,
            Skip::NotTcpUdp => &mut self.skipped_not_tcp_udp,
            Skip::Fragment => &mut self.skipped_fragment,
            Skip::Malformed => &mut self.skipped_malformed,
        } += 1;
        None
    }

    /// The kernel program's counters (summed over CPUs, indexed like `monitor_common::counter`)
    /// in the same terms.
    pub fn from_kernel(get: impl Fn(u32) -> u64) -> Self {
        DecodeStats {
            packets: get(counter::PACKETS),
            bytes: get(counter::PACKET_BYTES),
            skipped_link: 0,
            skipped_not_ip: get(counter::NOT_IP),
            skipped_not_tcp_udp: get(counter::NOT_TCP_UDP),
            skipped_fragment: get(counter::IP_FRAGMENT),
            skipped_malformed: get(counter::TRUNCATED_HEADER),
            bad_timestamps: 0,
        }
    }
}

/// What one [`Source::drain`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Drained {
    /// Packets taken (0: nothing ready).
    Packets(usize),
    /// A part of the input failed (a file that cannot be opened, or corrupt part-way): this
    /// message says which and why; what came before it has been handed on, and the source goes
    /// on with the next part.
    Failed(String),
    /// No more input.
    End,
}

/// How far a source is through its input (capture files; nothing for live capture).
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// The file being read ("" between files).
    pub name: &'a str,
    /// Bytes read of it and its size (0 when unknown: stdin).
    pub read: u64,
    pub size: u64,
    pub files_done: usize,
    pub files_total: usize,
    /// Bytes read of all files, and their total size.
    pub read_all: u64,
    pub size_all: u64,
}

/// Where decoded packets come from.
#[allow(async_fn_in_trait)] // used through generics only, never as `dyn`
pub trait Source {
    type Error: std::error::Error + Send + Sync + 'static;
    /// Wait until packets may be drained (live: ring-buffer readiness; files: at once).
    async fn ready(&mut self) -> Result<(), Self::Error>;
    /// Hand up to `limit` packets to `f` as (time in ns since the Unix epoch, packet).
    fn drain(&mut self, limit: usize, f: impl FnMut(u64, &Packet<'_>)) -> Drained;
    /// What the source saw and decoded so far.
    fn decoded(&self) -> DecodeStats;
    /// Time now on the packets' clock, to judge idle flows when no packet comes (live); `None`
    /// when time is packet time only (files: a replay is deterministic).
    fn now_ns(&self) -> Option<u64>;
    /// How far through its input the source is, when that is known.
    fn progress(&self) -> Option<Progress<'_>> {
        None
    }
    /// The mapped file the packets' payloads borrow from, when they do (replay of a regular
    /// file): a stage may keep it and point into it rather than copy payloads.
    fn mapped(&self) -> Option<&mapped::Mapped> {
        None
    }
    /// The run is over: stop capturing. Returns how many more packets [`Source::drain`] may
    /// still hand on (live: what the ring buffer holds after detaching; files: none).
    fn close(&mut self) -> usize {
        0
    }
}
