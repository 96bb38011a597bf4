//! What crossed the wire, seen from the server's side: tcpdump on the server namespace's veth
//! (every TCP connection opened towards the servers, by whom), and a generated capture of many
//! TLS 1.3 handshakes (ClientHello, ServerHello, no certificate in clear) for `tlsmon replay`.
//! Must never capture anywhere but inside the lab's server namespace, nor write outside the
//! lab dir.
use std::{
    collections::BTreeMap,
    fs,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _, Result};
use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TcpHeader, TransportSlice};

use super::{check_stop, hello::client_hello, Lab, SERVER_IF};

/// Most time tcpdump may take to start listening.
const CAPTURE_READY: Duration = Duration::from_secs(20);

/// One TCP connection attempt (a SYN without ACK), by its four-tuple.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Syn {
    pub src: IpAddr,
    pub src_port: u16,
    pub dst: IpAddr,
    pub dst_port: u16,
}

impl Lab {
    /// Starts tcpdump on the server namespace's veth (every TCP packet, to `dir/NAME.pcap`,
    /// written packet by packet) and waits until it listens.
    pub fn start_server_capture(&mut self, name: &str) -> Result<PathBuf> {
        let path = self.dir.join(format!("{name}.pcap"));
        let file = path.to_str().context("lab dir is not UTF-8")?.to_string();
        let ns = self.server_ns.clone();
        self.spawn(name, &ns, "tcpdump", &["-i", SERVER_IF, "--immediate-mode", "-U", "-n", "-w", &file, "tcp"])?;
        let deadline = Instant::now() + CAPTURE_READY;
        while !self.log(name).contains("listening on") {
            check_stop()?;
            self.check_children()?;
            if Instant::now() >= deadline {
                bail!("tcpdump in {ns} not listening after {CAPTURE_READY:?}: {}", self.log(name));
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(path)
    }

    /// Stops the capture started as `name` (SIGINT: tcpdump flushes and exits) and returns every
    /// connection attempt in it, each four-tuple once (a retransmitted SYN is the same attempt),
    /// with the kernel's time of its first SYN, in capture order.
    pub fn stop_server_capture(&mut self, name: &str, path: &Path) -> Result<Vec<(Syn, Duration)>> {
        self.stop_child(name, libc::SIGINT, Duration::from_secs(10))?;
        let bytes = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let all = syns(&bytes).with_context(|| format!("parsing {}", path.display()))?;
        let mut seen = std::collections::BTreeSet::new();
        Ok(all.into_iter().filter(|(s, _)| seen.insert(*s)).collect())
    }
}

/// SYNs (without ACK) and their capture times (since the Unix epoch) in a classic
/// little-endian µs pcap of Ethernet frames, as tcpdump writes.
pub fn syns(pcap: &[u8]) -> Result<Vec<(Syn, Duration)>> {
    if pcap.len() < 24 || pcap[..4] != [0xd4, 0xc3, 0xb2, 0xa1] {
        bail!("not a little-endian pcap file");
    }
    if u32::from_le_bytes([pcap[20], pcap[21], pcap[22], pcap[23]]) != 1 {
        bail!("link type is not Ethernet");
    }
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let word = |k: usize| u32::from_le_bytes([pcap[at + k], pcap[at + k + 1], pcap[at + k + 2], pcap[at + k + 3]]);
        let time = Duration::from_secs(word(0).into()) + Duration::from_micros(word(4).into());
        let incl = word(8) as usize;
        let Some(frame) = pcap.get(at + 16..at + 16 + incl) else { break };
        at += 16 + incl;
        let Ok(p) = SlicedPacket::from_ethernet(frame) else { continue };
        let (src, dst) = match &p.net {
            Some(NetSlice::Ipv4(ip)) => {
                (IpAddr::V4(ip.header().source_addr()), IpAddr::V4(ip.header().destination_addr()))
            }
            Some(NetSlice::Ipv6(ip)) => {
                (IpAddr::V6(ip.header().source_addr()), IpAddr::V6(ip.header().destination_addr()))
            }
            _ => continue,
        };
        if let Some(TransportSlice::Tcp(tcp)) = &p.transport {
            if tcp.syn() && !tcp.ack() {
                out.push((Syn { src, src_port: tcp.source_port(), dst, dst_port: tcp.destination_port() }, time));
            }
        }
    }
    Ok(out)
}

/// Connection attempts counted by (source, destination address, destination port).
pub fn count_syns(syns: &[(Syn, Duration)]) -> BTreeMap<(IpAddr, IpAddr, u16), usize> {
    let mut m = BTreeMap::new();
    for (s, _) in syns {
        *m.entry((s.src, s.dst, s.dst_port)).or_insert(0) += 1;
    }
    m
}

/// One handshake of the generated capture.
pub struct Handshake {
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub sni: String,
}

/// A classic pcap (Ethernet, µs) holding, for each handshake, a full TCP exchange: SYN,
/// SYN-ACK, ACK, a TLS 1.3 ClientHello with the SNI, a ServerHello selecting TLS 1.3
/// (supported_versions, x25519 key share), ChangeCipherSpec and one opaque application-data
/// record, then FIN both ways. Packet times start now, 1 ms apart.
pub fn tls13_handshakes_pcap(handshakes: &[Handshake]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // Global header: magic, v2.4, zone 0, sigfigs 0, snaplen 262144, Ethernet.
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
        out.extend(v.to_le_bytes());
    }
    let start = SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?;
    let mut t_us = start.as_micros() as u64;
    for (i, h) in handshakes.iter().enumerate() {
        let hello = client_hello(&h.sni, 0, 0x5eed ^ i as u64);
        let mut server = server_hello(i as u64);
        // ChangeCipherSpec, then one record standing for the encrypted flight.
        server.extend([0x14, 0x03, 0x03, 0x00, 0x01, 0x01]);
        server.extend([0x17, 0x03, 0x03, 0x00, 0x40]);
        server.extend((0..0x40u8).map(|b| b.wrapping_mul(29) ^ i as u8));
        let (cs, ss) = (1_000_000u32.wrapping_mul(i as u32 + 1), 2_000_000u32.wrapping_mul(i as u32 + 7));
        let c_data = hello.len() as u32;
        let s_data = server.len() as u32;
        let seg = |from_client, seq, ack, syn, fin, payload| Seg { from_client, seq, ack, syn, fin, payload };
        let script = [
            seg(true, cs, None, true, false, &[][..]),
            seg(false, ss, Some(cs + 1), true, false, &[]),
            seg(true, cs + 1, Some(ss + 1), false, false, &[]),
            seg(true, cs + 1, Some(ss + 1), false, false, &hello),
            seg(false, ss + 1, Some(cs + 1 + c_data), false, false, &server),
            seg(true, cs + 1 + c_data, Some(ss + 1 + s_data), false, true, &[]),
            seg(false, ss + 1 + s_data, Some(cs + 2 + c_data), false, true, &[]),
            seg(true, cs + 2 + c_data, Some(ss + 2 + s_data), false, false, &[]),
        ];
        for sg in &script {
            let frame = frame(h, sg)?;
            out.extend(((t_us / 1_000_000) as u32).to_le_bytes());
            out.extend(((t_us % 1_000_000) as u32).to_le_bytes());
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend((frame.len() as u32).to_le_bytes());
            out.extend(frame);
            t_us += 1000;
        }
    }
    Ok(out)
}

/// One TCP segment of a generated handshake; no `ack`: the ACK flag is off.
struct Seg<'a> {
    from_client: bool,
    seq: u32,
    ack: Option<u32>,
    syn: bool,
    fin: bool,
    payload: &'a [u8],
}

fn frame(h: &Handshake, sg: &Seg) -> Result<Vec<u8>> {
    let (src, dst) = if sg.from_client { (h.client, h.server) } else { (h.server, h.client) };
    let Seg { seq, ack, syn, fin, payload, .. } = *sg;
    let mut tcp = TcpHeader::new(src.port(), dst.port(), seq, 64_240);
    tcp.syn = syn;
    tcp.fin = fin;
    tcp.psh = !payload.is_empty();
    if let Some(a) = ack {
        tcp.ack = true;
        tcp.acknowledgment_number = a;
    }
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let b = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64).tcp_header(tcp),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64).tcp_header(tcp),
        _ => bail!("{src} → {dst}: mixed address families"),
    };
    let mut out = Vec::with_capacity(b.size(payload.len()));
    b.write(&mut out, payload).context("building a frame")?;
    Ok(out)
}

/// A ServerHello record selecting TLS 1.3 with TLS_AES_128_GCM_SHA256 and an x25519 share.
fn server_hello(seed: u64) -> Vec<u8> {
    let filler = |n: usize, k: u64| -> Vec<u8> { (0..n).map(|i| (i as u64 * 131 + k * 7 + 3) as u8).collect() };
    let mut body = vec![0x03, 0x03];
    body.extend(filler(32, seed)); // random
    body.push(32);
    body.extend(filler(32, seed + 1)); // legacy_session_id_echo
    body.extend([0x13, 0x01, 0x00]); // cipher suite, compression
    let mut ext = vec![0x00, 0x2b, 0x00, 0x02, 0x03, 0x04]; // supported_versions: TLS 1.3
    ext.extend([0x00, 0x33, 0x00, 0x24, 0x00, 0x1d, 0x00, 0x20]); // key_share: x25519, 32 bytes
    ext.extend(filler(32, seed + 2));
    body.extend((ext.len() as u16).to_be_bytes());
    body.extend(ext);
    let mut hs = vec![2u8];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut record = vec![0x16, 0x03, 0x03];
    record.extend((hs.len() as u16).to_be_bytes());
    record.extend(hs);
    record
}
