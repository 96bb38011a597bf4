//! Sources of packets: capture files (pcap/pcapng, stdin) and the live eBPF ring buffer. Both
//! hand the run loop the same decoded [`Packet`]s and keep the same [`DecodeStats`], so the
//! pipeline after them cannot tell them apart.
//! Must never judge anything: sources decode and count, the pipeline decides.
pub mod ebpf;
pub mod files;
pub mod pcap;
pub mod record;
pub mod testrun;

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
        }
    }
}
