//! Seed corpora for the fuzz targets (fuzz/), from real captures: `fuzz_seeds OUT MAX_LEN DIR...`
//! writes `OUT/<target>/seed-*` (whole small captures, frames, flow heads, DER certificates, ring
//! records, packet sequences), each input in its target's own format (fuzz/src/lib.rs, included
//! here so the two cannot drift). Built with the tests on stable, so the fuzz crate's nightly
//! sanitizer build is the only extra one. Deterministic: the same captures give the same files.
//! Must never copy a capture anywhere but under OUT, nor remove what libFuzzer added there.
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use monitor::capture::pcap::for_each_frame;
use monitor::decode::{decode, Packet, Transport};
use monitor::flow::reassembly::Head;
use monitor::flow::{Endpoint, FlowKey};
use monitor::inspect::dtls::looks_like_dtls;
use monitor_common::decode::write_record;
use monitor_common::{dir, kind, tcp_flags, RecordHeader, HEADER_LEN, MAX_RECORD_PAYLOAD, STARTTLS_PORTS};
// The readers in there are the targets'; this uses the writers (its tests check both).
#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod formats;
use formats::{push_chunk, push_datagram, write_halves, PacketWriter};

/// Frames kept per capture for `frame_decode`; flows per capture for the flow-based targets.
const FRAMES_PER_FILE: usize = 16;
const FLOWS_PER_FILE: usize = 32;

/// One TCP packet of a flow, owned.
struct Seg {
    ts: u64,
    dir: usize,
    seq: u32,
    syn: bool,
    ack: bool,
    fin: bool,
    rst: bool,
    v6: bool,
    payload: Vec<u8>,
}

/// Seeds of one target: distinct contents, named in the order they were found.
struct Target {
    dir: PathBuf,
    seen: HashSet<Vec<u8>>,
}

impl Target {
    fn add(&mut self, stem: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        if bytes.is_empty() || self.seen.contains(&bytes) {
            return Ok(());
        }
        let path = self.dir.join(format!("seed-{stem}-{}", self.seen.len()));
        std::fs::write(path, &bytes)?;
        self.seen.insert(bytes);
        Ok(())
    }
}

const TARGETS: [&str; 12] = [
    "capture_file",
    "frame_decode",
    "ring_record",
    "tls_stream",
    "certificate",
    "plaintext",
    "pipeline_packets",
    "probe_result",
    "ssh_stream",
    "tds_stream",
    "quic_initial",
    "dtls_stream",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, max_len, dirs @ ..] = args.as_slice() else {
        return Err("usage: fuzz_seeds OUT MAX_LEN CAPTURE_DIR...".into());
    };
    let max_len: usize = max_len.parse()?;
    let mut t: BTreeMap<&str, Target> = BTreeMap::new();
    for name in TARGETS {
        let dir = Path::new(out).join(name);
        std::fs::create_dir_all(&dir)?;
        // Seeds of an earlier run go (the captures may have changed); libFuzzer's finds stay.
        for e in std::fs::read_dir(&dir)? {
            let e = e?;
            if e.file_name().to_string_lossy().starts_with("seed-") {
                std::fs::remove_file(e.path())?;
            }
        }
        t.insert(name, Target { dir, seen: HashSet::new() });
    }
    let mut files = Vec::new();
    for d in dirs {
        for e in std::fs::read_dir(d)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "pcap" || x == "pcapng") {
                files.push(p);
            }
        }
    }
    files.sort();
    for path in &files {
        let bytes = std::fs::read(path)?;
        let stem = path.file_stem().unwrap_or_default().to_string_lossy().into_owned();
        t.get_mut("capture_file").ok_or("target")?.add(&stem, bytes[..bytes.len().min(max_len)].to_vec())?;
        let mut frames = Vec::new();
        // In order of appearance (few per capture: a linear search is enough).
        let mut flows: Vec<(FlowKey, Vec<Seg>)> = Vec::new();
        // UDP flows (QUIC or DTLS seeds): the datagrams in [`formats::datagrams`] form, per
        // flow, with the target they seed.
        let mut udp: Vec<(FlowKey, &str, Vec<u8>)> = Vec::new();
        let _ = for_each_frame(bytes.as_slice(), |f| {
            if frames.len() < FRAMES_PER_FILE {
                frames.push(f.data.to_vec());
            }
            let Ok(p) = decode(f.linktype, f.data) else { return };
            if p.transport != Transport::Tcp {
                let (key, dir) = FlowKey::new(
                    Endpoint { addr: p.src, port: p.src_port },
                    Endpoint { addr: p.dst, port: p.dst_port },
                    true,
                );
                let target = if p.payload.first().is_some_and(|b| b & 0x80 != 0) {
                    "quic_initial"
                } else if looks_like_dtls(p.payload) {
                    "dtls_stream"
                } else {
                    ""
                };
                let i = match udp.iter().position(|(k, _, _)| *k == key) {
                    Some(i) => i,
                    None if udp.len() < FLOWS_PER_FILE && !target.is_empty() => {
                        udp.push((key, target, Vec::new()));
                        udp.len() - 1
                    }
                    None => return,
                };
                if udp[i].2.len() + p.payload.len() < max_len {
                    push_datagram(&mut udp[i].2, dir, p.payload);
                }
                return;
            }
            let (key, dir) = FlowKey::new(
                Endpoint { addr: p.src, port: p.src_port },
                Endpoint { addr: p.dst, port: p.dst_port },
                false,
            );
            if let Some(i) = flows.iter().position(|(k, _)| *k == key) {
                flows[i].1.push(seg(f.ts_ns, dir, &p));
            } else if flows.len() < FLOWS_PER_FILE {
                flows.push((key, vec![seg(f.ts_ns, dir, &p)]));
            }
        });
        for f in frames {
            t.get_mut("frame_decode").ok_or("target")?.add(&stem, f)?;
        }
        for (key, segs) in &flows {
            flow_seeds(&mut t, &stem, key, segs, max_len)?;
        }
        for (_, target, datagrams) in udp {
            t.get_mut(target).ok_or("target")?.add(&stem, datagrams)?;
        }
    }
    for (name, target) in &t {
        println!("seeds: {name}: {} inputs", target.seen.len());
    }
    Ok(())
}

fn seg(ts: u64, dir: usize, p: &Packet<'_>) -> Seg {
    Seg {
        ts,
        dir,
        seq: p.seq,
        syn: p.syn,
        ack: p.ack,
        fin: p.fin,
        rst: p.rst,
        v6: p.src.v6,
        payload: p.payload.to_vec(),
    }
}

/// The seeds one TCP flow gives every flow-level target.
fn flow_seeds(
    t: &mut BTreeMap<&str, Target>,
    stem: &str,
    key: &FlowKey,
    segs: &[Seg],
    max_len: usize,
) -> std::io::Result<()> {
    // The client sent the SYN; without one, the first packet's sender.
    let client = segs.iter().find(|s| s.syn && !s.ack).or(segs.first()).map_or(0, |s| s.dir);
    let server = 1 - client;
    let server_port = key.sender(server).port;
    let heads = [0, 1].map(|d| head(segs, d, max_len));
    let (ch, sh) = (&heads[client], &heads[server]);
    let upgradable = u16::from(STARTTLS_PORTS.contains(&server_port));
    let add = |t: &mut BTreeMap<&str, Target>, name: &str, bytes: Vec<u8>| match t.get_mut(name) {
        Some(target) => target.add(stem, bytes),
        None => Ok(()),
    };
    for h in [ch, sh].into_iter().filter(|h| !h.is_empty()) {
        add(t, "tls_stream", write_halves(upgradable, &h[..h.len() / 2], &h[h.len() / 2..]))?;
    }
    if !ch.is_empty() || !sh.is_empty() {
        add(t, "plaintext", write_halves(server_port, ch, sh))?;
    }
    if ch.starts_with(b"SSH-") || sh.starts_with(b"SSH-") {
        add(t, "ssh_stream", write_halves(0, ch, sh))?;
    }
    if monitor::inspect::tds::is_prelogin(ch) {
        // Whole heads, then in 7-byte steps (records and packets cut mid-header).
        add(t, "tds_stream", write_halves(u16::MAX, ch, sh))?;
        add(t, "tds_stream", write_halves(7, ch, sh))?;
    }
    let ders = certificates(sh);
    if !sh.is_empty() {
        add(t, "probe_result", write_halves(0, sh, ders.first().map_or(&[][..], Vec::as_slice)))?;
    }
    for der in ders {
        add(t, "certificate", der)?;
    }
    let mut packets = PacketWriter::new(server_port);
    let mut records = Vec::new();
    let mut buf = vec![0u8; HEADER_LEN + MAX_RECORD_PAYLOAD];
    for s in segs {
        let p = Packet {
            src: key.sender(s.dir).addr,
            dst: key.sender(1 - s.dir).addr,
            src_port: key.sender(s.dir).port,
            dst_port: key.sender(1 - s.dir).port,
            transport: Transport::Tcp,
            syn: s.syn,
            ack: s.ack,
            fin: s.fin,
            rst: s.rst,
            seq: s.seq,
            payload: &s.payload,
            truncated: false,
            local: None,
        };
        if packets.len() + s.payload.len() < max_len {
            packets.push(s.ts, s.dir == server, &p);
        }
        if records.len() + HEADER_LEN + s.payload.len() < max_len {
            if let Some(n) = write_record(record_header(s, &p), &s.payload, &mut buf) {
                push_chunk(&mut records, &buf[..n]);
            }
        }
    }
    add(t, "pipeline_packets", packets.into_bytes())?;
    add(t, "ring_record", records)
}

/// The ring-buffer record header the kernel would write for this packet.
fn record_header(s: &Seg, p: &Packet<'_>) -> RecordHeader {
    let bit = |on: bool, b: u8| if on { b } else { 0 };
    RecordHeader {
        kind: if s.payload.is_empty() { kind::TCP_LIFECYCLE } else { kind::TCP_PAYLOAD },
        ip_version: if s.v6 { 6 } else { 4 },
        direction: if s.dir == 0 { dir::EGRESS } else { dir::INGRESS },
        src_addr: p.src.bytes,
        dst_addr: p.dst.bytes,
        src_port: p.src_port,
        dst_port: p.dst_port,
        protocol: 6,
        tcp_flags: bit(s.syn, tcp_flags::SYN)
            | bit(s.ack, tcp_flags::ACK)
            | bit(s.fin, tcp_flags::FIN)
            | bit(s.rst, tcp_flags::RST),
        seq: s.seq,
        timestamp_ns: s.ts,
        ..Default::default()
    }
}

/// The first `limit` bytes of direction `dir`, reassembled as the pipeline does.
fn head(segs: &[Seg], dir: usize, limit: usize) -> Vec<u8> {
    let mut h = Head::new(limit as u32);
    let mut out = Vec::new();
    for s in segs.iter().filter(|s| s.dir == dir) {
        if s.syn {
            h.syn(s.seq);
        }
        if !s.payload.is_empty() {
            h.insert(s.seq, &s.payload, false, &mut |b| out.extend_from_slice(b));
        }
    }
    out
}

/// DER certificates of the TLS <= 1.2 Certificate messages in a server's head.
fn certificates(head: &[u8]) -> Vec<Vec<u8>> {
    // Handshake bytes: the fragments of the handshake records, in order.
    let mut hs = Vec::new();
    let mut rest = head;
    while let [22, 3, _, l0, l1, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        hs.extend_from_slice(&tail[..n]);
        rest = &tail[n..];
    }
    let u24 = |b: &[u8]| usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]);
    let mut ders = Vec::new();
    let mut msgs = hs.as_slice();
    while let [typ, a, b, c, tail @ ..] = msgs {
        let n = u24(&[*a, *b, *c]).min(tail.len());
        if *typ == 11 {
            // u24 list length, then (u24 length, DER)*.
            let mut list = tail.get(3..n).unwrap_or_default();
            while let [a, b, c, more @ ..] = list {
                let m = u24(&[*a, *b, *c]).min(more.len());
                ders.push(more[..m].to_vec());
                list = &more[m..];
            }
        }
        msgs = &tail[n..];
    }
    ders
}
