//! Source, kernel model: the embedded eBPF programs run on given frames with
//! BPF_PROG_TEST_RUN, never attached to an interface. The records they write come back in
//! order, so a capture can go through the real kernel code and then the same pipeline as
//! live capture (differential tests, `cargo xtask bench kernel`).
//! Must never attach a program or touch an interface; needs CAP_BPF (root).
use aya::maps::{HashMap, MapData, PerCpuArray, RingBuf};
use aya::programs::{SchedClassifier, TestRun as _, TestRunOptions, Xdp};
use aya::{Ebpf, EbpfLoader};
use monitor_common::{
    counter, Counters, FlowKey, FlowKey4, FlowValue, KernelConfig, CONFIG_GLOBAL, COUNTERS_MAP, FLOWS4_MAP, FLOWS_MAP,
    RING_MAP,
};

use crate::ebpf_obj::{EBPF_OBJECT, NOOP_TC_PROGRAM, NOOP_XDP_PROGRAM, TC_PROGRAM, XDP_PROGRAM};

/// Which program to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Tc,
    Xdp,
    /// The do-nothing TC baseline (benchmarks).
    NoopTc,
    /// The do-nothing XDP baseline (benchmarks).
    NoopXdp,
}

impl Hook {
    fn program(self) -> &'static str {
        match self {
            Hook::Tc => TC_PROGRAM,
            Hook::Xdp => XDP_PROGRAM,
            Hook::NoopTc => NOOP_TC_PROGRAM,
            Hook::NoopXdp => NOOP_XDP_PROGRAM,
        }
    }

    fn is_tc(self) -> bool {
        matches!(self, Hook::Tc | Hook::NoopTc)
    }

    /// The action every program must return: TC_ACT_UNSPEC (-1, TCX_NEXT: the chain goes on)
    /// or XDP_PASS (2).
    pub fn pass_action(self) -> u32 {
        if self.is_tc() {
            -1i32 as u32
        } else {
            2
        }
    }
}

/// Why the kernel programs could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum TestRunError {
    #[error("loading the eBPF object")]
    Load(#[source] aya::EbpfError),
    #[error("program {0} is missing from the eBPF object")]
    MissingProgram(&'static str),
    #[error("map {0} is missing from the eBPF object")]
    MissingMap(&'static str),
    #[error("loading program {name} into the kernel")]
    Program {
        name: &'static str,
        #[source]
        source: aya::programs::ProgramError,
    },
    #[error("opening map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error("BPF_PROG_TEST_RUN of {name} on a {len}-byte frame")]
    Run {
        name: &'static str,
        len: usize,
        #[source]
        source: aya::programs::ProgramError,
    },
}

/// What one BPF_PROG_TEST_RUN returned.
#[derive(Clone, Copy, Debug)]
pub struct RunResult {
    pub action: u32,
    /// Average time per repetition, as the kernel measured it.
    pub ns_per_run: u64,
}

/// The loaded programs with their ring buffer and counters.
pub struct KernelModel {
    ebpf: Ebpf,
    ring: RingBuf<MapData>,
}

/// Largest frame BPF_PROG_TEST_RUN takes for TC (one page less skb overhead) and XDP (one page
/// less headroom and shared info); larger frames must be re-segmented by the caller.
pub const MAX_TEST_FRAME: usize = 3000;
/// Smallest frame BPF_PROG_TEST_RUN takes (an Ethernet header).
pub const MIN_TEST_FRAME: usize = 14;

impl KernelModel {
    /// Instructions the verifier processed to load the TC and the XDP capture program (kernel
    /// 5.16 and later report it): what loading the programs costs, and how close they are to
    /// the verifier's budget of one million.
    pub fn verified_instructions(&self) -> Vec<(&'static str, Option<u32>)> {
        [TC_PROGRAM, XDP_PROGRAM]
            .into_iter()
            .map(|name| {
                let count =
                    self.ebpf.program(name).and_then(|p| p.info().ok()).and_then(|i| i.verified_instruction_count());
                (name, count)
            })
            .collect()
    }

    /// Load the object with `cfg` and load (not attach) all four programs.
    pub fn load(cfg: &KernelConfig) -> Result<KernelModel, TestRunError> {
        Self::load_object(EBPF_OBJECT, cfg)
    }

    /// As [`KernelModel::load`], from another build of the kernel object (the kernel bench
    /// compares a before and an after object in one run).
    pub fn load_object(object: &[u8], cfg: &KernelConfig) -> Result<KernelModel, TestRunError> {
        let mut ebpf =
            EbpfLoader::new().override_global(CONFIG_GLOBAL, cfg, true).load(object).map_err(TestRunError::Load)?;
        for name in [TC_PROGRAM, NOOP_TC_PROGRAM] {
            let p: &mut SchedClassifier = ebpf
                .program_mut(name)
                .ok_or(TestRunError::MissingProgram(name))?
                .try_into()
                .map_err(|source| TestRunError::Program { name, source })?;
            p.load().map_err(|source| TestRunError::Program { name, source })?;
        }
        for name in [XDP_PROGRAM, NOOP_XDP_PROGRAM] {
            let p: &mut Xdp = ebpf
                .program_mut(name)
                .ok_or(TestRunError::MissingProgram(name))?
                .try_into()
                .map_err(|source| TestRunError::Program { name, source })?;
            p.load().map_err(|source| TestRunError::Program { name, source })?;
        }
        let map = ebpf.take_map(RING_MAP).ok_or(TestRunError::MissingMap(RING_MAP))?;
        let ring = RingBuf::try_from(map).map_err(|source| TestRunError::Map { name: RING_MAP, source })?;
        Ok(KernelModel { ebpf, ring })
    }

    /// Run `hook` on `frame` `repeat` times.
    pub fn run(&self, hook: Hook, frame: &[u8], repeat: u32) -> Result<RunResult, TestRunError> {
        let name = hook.program();
        let opts = TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() };
        let prog = self.ebpf.program(name).ok_or(TestRunError::MissingProgram(name))?;
        let res = if hook.is_tc() {
            let p: &SchedClassifier = prog.try_into().map_err(|source| TestRunError::Program { name, source })?;
            p.test_run(opts)
        } else {
            let p: &Xdp = prog.try_into().map_err(|source| TestRunError::Program { name, source })?;
            p.test_run(opts)
        };
        let r = res.map_err(|source| TestRunError::Run { name, len: frame.len(), source })?;
        Ok(RunResult { action: r.return_value, ns_per_run: r.duration.as_nanos() as u64 })
    }

    /// Hand every record waiting in the ring buffer to `f`, oldest first; returns how many.
    pub fn drain(&mut self, mut f: impl FnMut(&[u8])) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.next() {
            f(&item);
            n += 1;
        }
        n
    }

    /// Every counter summed over CPUs, indexed by `monitor_common::counter`.
    pub fn counters(&self) -> Result<[u64; counter::COUNT as usize], TestRunError> {
        let map = self.ebpf.map(COUNTERS_MAP).ok_or(TestRunError::MissingMap(COUNTERS_MAP))?;
        let err = |source| TestRunError::Map { name: COUNTERS_MAP, source };
        let mut out = [0u64; counter::COUNT as usize];
        match PerCpuArray::<_, Counters>::try_from(map) {
            Ok(array) => {
                for cpu in array.get(&0, 0).map_err(err)?.iter() {
                    for (slot, v) in out.iter_mut().zip(cpu.0) {
                        *slot += v;
                    }
                }
            }
            // An object built before the counters became one value per CPU (the kernel bench
            // times older builds): one u64 slot per counter.
            Err(_) => {
                let map = self.ebpf.map(COUNTERS_MAP).ok_or(TestRunError::MissingMap(COUNTERS_MAP))?;
                let array = PerCpuArray::<_, u64>::try_from(map).map_err(err)?;
                for (i, slot) in out.iter_mut().enumerate() {
                    *slot = array.get(&(i as u32), 0).map_err(err)?.iter().sum();
                }
            }
        }
        Ok(out)
    }

    /// Forget every flow in both flow maps, so the next capture starts as on a fresh load: a
    /// test that runs many captures loads the programs once (each load costs the verifier's
    /// time, about a second per program here).
    pub fn forget_flows(&mut self) -> Result<(), TestRunError> {
        let err = |name| move |source| TestRunError::Map { name, source };
        let map = self.ebpf.map_mut(FLOWS_MAP).ok_or(TestRunError::MissingMap(FLOWS_MAP))?;
        let mut flows = HashMap::<_, FlowKey, FlowValue>::try_from(map).map_err(err(FLOWS_MAP))?;
        let keys: Vec<FlowKey> = flows.keys().collect::<Result<_, _>>().map_err(err(FLOWS_MAP))?;
        for k in keys {
            flows.remove(&k).map_err(err(FLOWS_MAP))?;
        }
        let map = self.ebpf.map_mut(FLOWS4_MAP).ok_or(TestRunError::MissingMap(FLOWS4_MAP))?;
        let mut flows4 = HashMap::<_, FlowKey4, FlowValue>::try_from(map).map_err(err(FLOWS4_MAP))?;
        let keys: Vec<FlowKey4> = flows4.keys().collect::<Result<_, _>>().map_err(err(FLOWS4_MAP))?;
        for k in keys {
            flows4.remove(&k).map_err(err(FLOWS4_MAP))?;
        }
        Ok(())
    }

    /// Entries now in the IPv6 and the IPv4 flow map, counted as the live capture's census
    /// does (in batches), or `by_key` as its fallback does.
    pub fn flow_entries(&self, by_key: bool) -> Result<(u64, u64), TestRunError> {
        use crate::capture::ebpf::census::{count_entries, count_keys};
        let map = |name| self.ebpf.map(name).ok_or(TestRunError::MissingMap(name));
        let err = |name| move |source| TestRunError::Map { name, source };
        let flows = HashMap::<_, FlowKey, FlowValue>::try_from(map(FLOWS_MAP)?).map_err(err(FLOWS_MAP))?;
        let flows4 = HashMap::<_, FlowKey4, FlowValue>::try_from(map(FLOWS4_MAP)?).map_err(err(FLOWS4_MAP))?;
        let (v6, v4) = if by_key {
            (count_keys(&flows), count_keys(&flows4))
        } else {
            (count_entries(&flows), count_entries(&flows4))
        };
        Ok((v6.map_err(err(FLOWS_MAP))?, v4.map_err(err(FLOWS4_MAP))?))
    }
}

/// A frame of a TCP flow between 10.99.0.1:40000 (the client) and 10.99.0.2:`port`, for
/// tests and benchmarks (it only ever goes through BPF_PROG_TEST_RUN). `flags` letters:
/// S(YN) A(CK) F(IN) R(ST) P(SH).
pub fn tcp_frame(from_client: bool, port: u16, seq: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if from_client {
        ([10, 99, 0, 1], [10, 99, 0, 2], 40_000, port)
    } else {
        ([10, 99, 0, 2], [10, 99, 0, 1], port, 40_000)
    };
    let mut b = etherparse::PacketBuilder::ethernet2(REFRAME_SRC, REFRAME_DST)
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 64_000);
    for f in flags.chars() {
        b = match f {
            'S' => b.syn(),
            'A' => b.ack(1),
            'F' => b.fin(),
            'R' => b.rst(),
            'P' => b.psh(),
            _ => b,
        };
    }
    let mut out = Vec::with_capacity(54 + payload.len());
    // Writing into a Vec fails only for payloads over 64 KiB, which no caller builds.
    let _ = b.write(&mut out, payload);
    out
}

/// A TLS record of content type `ct` with a `len`-byte body whose first byte is `first` (the
/// handshake type for handshake records), the rest filler.
pub fn tls_record(ct: u8, len: usize, first: u8) -> Vec<u8> {
    let mut r = vec![ct, 3, 3, (len >> 8) as u8, len as u8, first];
    r.resize(5 + len, 0x5a);
    r
}

/// Ethernet addresses of re-framed frames (locally administered).
const REFRAME_DST: [u8; 6] = [2, 0, 0, 0, 0, 2];
const REFRAME_SRC: [u8; 6] = [2, 0, 0, 0, 0, 1];
/// Payload bytes per segment when a capture's oversized TCP segment is cut up.
const RESEGMENT_MSS: usize = 1400;

/// The frames a TC or XDP hook on an Ethernet interface would see for one captured frame.
///
/// Ethernet frames with at most two VLAN tags pass unchanged. Other link types (BSD loopback,
/// raw IP, Linux cooked, PPP, Cisco HDLC) and encapsulations the kernel parser does not walk (PPPoE, more than
/// two tags, 0x9100 tags) get a plain Ethernet header in front of their IP packet. A TCP
/// segment larger than [`MAX_TEST_FRAME`] (captured before TSO/after GRO) is cut into
/// MSS-sized segments with consecutive sequence numbers, as they were on the wire; a UDP
/// datagram that large is cut at [`MAX_TEST_FRAME`]. Frames with no IP packet pass unchanged
/// (the kernel counts them); unknown link types give nothing.
pub fn hook_frames(linktype: u32, frame: &[u8], out: &mut Vec<Vec<u8>>) {
    use crate::decode::linktype as lt;
    let ip: &[u8] = match linktype {
        lt::ETHERNET => match ethernet_ip(frame) {
            None => return push_cut(frame, out),
            Some((0, _)) => {
                if frame.len() <= MAX_TEST_FRAME {
                    out.push(frame.to_vec());
                    return;
                }
                &frame[ethernet_ip(frame).map(|(_, off)| off).unwrap_or(14)..]
            }
            Some((_, off)) => &frame[off..],
        },
        lt::NULL | lt::LOOP => frame.get(4..).unwrap_or_default(),
        lt::RAW | lt::RAW_OLD_12 | lt::RAW_OLD_14 | lt::IPV4 | lt::IPV6 => frame,
        lt::LINUX_SLL => frame.get(16..).unwrap_or_default(),
        lt::LINUX_SLL2 => frame.get(20..).unwrap_or_default(),
        lt::C_HDLC => frame.get(4..).unwrap_or_default(),
        // Optional address/control bytes, then the PPP protocol (1 byte when compressed).
        lt::PPP | lt::PPP_HDLC => match frame.strip_prefix(&[0xff, 0x03][..]).unwrap_or(frame) {
            [p, rest @ ..] if p & 1 == 1 => rest,
            [_, _, rest @ ..] => rest,
            _ => return,
        },
        _ => return,
    };
    let ethertype: u16 = match ip.first().map(|b| b >> 4) {
        Some(4) => 0x0800,
        Some(6) => 0x86dd,
        _ => return,
    };
    let mut eth = Vec::with_capacity(14 + ip.len());
    eth.extend_from_slice(&REFRAME_DST);
    eth.extend_from_slice(&REFRAME_SRC);
    eth.extend_from_slice(&ethertype.to_be_bytes());
    eth.extend_from_slice(ip);
    if eth.len() <= MAX_TEST_FRAME {
        out.push(eth);
    } else if !resegment(&eth, out) {
        push_cut(&eth, out);
    }
}

fn push_cut(frame: &[u8], out: &mut Vec<Vec<u8>>) {
    out.push(frame[..frame.len().min(MAX_TEST_FRAME)].to_vec());
}

/// For an Ethernet frame carrying IP: (needs re-framing: 1, else 0; offset of the IP header).
/// `None` when it carries no IP packet.
fn ethernet_ip(frame: &[u8]) -> Option<(u8, usize)> {
    let be16 = |off: usize| frame.get(off..off + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut et = be16(12)?;
    let mut off = 14;
    let mut tags = 0;
    let mut odd = false;
    while matches!(et, 0x8100 | 0x88a8 | 0x9100) && tags < 4 {
        odd |= et == 0x9100;
        et = be16(off + 2)?;
        off += 4;
        tags += 1;
    }
    if et == 0x8864 {
        // PPPoE session: 6-byte header, then the PPP protocol (IPv4 0x0021, IPv6 0x0057).
        return matches!(be16(off + 6)?, 0x0021 | 0x0057).then_some((1, off + 8));
    }
    if et != 0x0800 && et != 0x86dd {
        return None;
    }
    Some((u8::from(odd || tags > 2), off))
}

/// Cut an oversized Ethernet/IP/TCP frame into segments of RESEGMENT_MSS payload bytes.
fn resegment(eth: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
    use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
    let Ok(p) = SlicedPacket::from_ethernet(eth) else { return false };
    let Some(TransportSlice::Tcp(tcp)) = &p.transport else { return false };
    let payload = tcp.payload();
    for (i, chunk) in payload.chunks(RESEGMENT_MSS).enumerate() {
        let last = (i + 1) * RESEGMENT_MSS >= payload.len();
        let seq = tcp.sequence_number().wrapping_add((i * RESEGMENT_MSS) as u32);
        let builder = PacketBuilder::ethernet2(REFRAME_SRC, REFRAME_DST);
        let ip = match &p.net {
            Some(NetSlice::Ipv4(v4)) => {
                let h = v4.header();
                builder.ipv4(h.source(), h.destination(), h.ttl())
            }
            Some(NetSlice::Ipv6(v6)) => {
                let h = v6.header();
                builder.ipv6(h.source(), h.destination(), h.hop_limit())
            }
            _ => return false,
        };
        let mut b = ip.tcp(tcp.source_port(), tcp.destination_port(), seq, tcp.window_size());
        if tcp.ack() {
            b = b.ack(tcp.acknowledgment_number());
        }
        if tcp.syn() && i == 0 {
            b = b.syn();
        }
        if last && tcp.fin() {
            b = b.fin();
        }
        if last && tcp.rst() {
            b = b.rst();
        }
        if last && tcp.psh() {
            b = b.psh();
        }
        let mut f = Vec::with_capacity(80 + chunk.len());
        if b.write(&mut f, chunk).is_err() {
            return false;
        }
        out.push(f);
    }
    !payload.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_v4(payload_len: usize, vlan_tags: usize) -> Vec<u8> {
        let mut f = Vec::new();
        let b = etherparse::PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 8])
            .ipv4([10, 99, 0, 1], [10, 99, 0, 2], 64)
            .tcp(40_000, 443, 7, 1000)
            .ack(1)
            .fin();
        b.write(&mut f, &vec![0x5a; payload_len]).unwrap();
        for _ in 0..vlan_tags {
            f.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
        }
        f
    }

    #[test]
    fn ethernet_passes_and_deep_vlans_are_reframed() {
        let mut out = Vec::new();
        hook_frames(crate::decode::linktype::ETHERNET, &tcp_v4(10, 2), &mut out);
        assert_eq!(out, vec![tcp_v4(10, 2)]);
        out.clear();
        hook_frames(crate::decode::linktype::ETHERNET, &tcp_v4(10, 3), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(&out[0][12..14], &[0x08, 0x00]);
        assert_eq!(&out[0][14..], &tcp_v4(10, 0)[14..]);
    }

    #[test]
    fn raw_ip_gets_an_ethernet_header() {
        let f = tcp_v4(10, 0);
        let mut out = Vec::new();
        hook_frames(crate::decode::linktype::RAW, &f[14..], &mut out);
        assert_eq!(&out[0][14..], &f[14..]);
        assert_eq!(&out[0][12..14], &[0x08, 0x00]);
    }

    #[test]
    fn oversized_segment_is_cut_with_consecutive_seqs_and_fin_last() {
        let mut out = Vec::new();
        hook_frames(crate::decode::linktype::ETHERNET, &tcp_v4(5000, 0), &mut out);
        let segs: Vec<(u32, usize, bool)> = out
            .iter()
            .map(|f| {
                let p = crate::decode::decode(crate::decode::linktype::ETHERNET, f).unwrap();
                (p.seq, p.payload.len(), p.fin)
            })
            .collect();
        assert_eq!(segs, vec![(7, 1400, false), (1407, 1400, false), (2807, 1400, false), (4207, 800, true)]);
    }
}
