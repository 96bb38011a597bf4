//! Generator round-trip tests: a generated capture is re-read with etherparse, its TCP streams
//! reassembled and every TLS record and handshake message parsed with tls-parser / x509-parser.
use std::collections::HashMap;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use tls_parser::{
    parse_tls_client_hello_extensions, parse_tls_message_handshake, parse_tls_server_hello_extensions, TlsExtension,
    TlsMessage, TlsMessageHandshake,
};

use super::pcap::PcapWriter;
use super::{certs, fill, Summary, START_US};

fn capture(mb: u64, seed: u64) -> (Vec<u8>, Summary) {
    let w = PcapWriter::new(Vec::new()).expect("header");
    let (w, sum) = fill(w, mb * 1_000_000, seed, false).expect("fill");
    (w.finish().expect("finish"), sum)
}

type Key = ([u8; 16], u16, [u8; 16], u16);

#[derive(Default)]
struct Streams {
    isn: HashMap<Key, u32>,
    segs: HashMap<Key, HashMap<u32, Vec<u8>>>,
    frames: usize,
    vlan: usize,
    v6: usize,
}

fn split(pcap: &[u8]) -> Streams {
    assert_eq!(&pcap[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "classic LE µs magic");
    assert_eq!(u32::from_le_bytes(pcap[20..24].try_into().expect("4")), 1, "LINKTYPE_ETHERNET");
    let mut st = Streams::default();
    let mut off = 24;
    let mut last_ts = 0u64;
    while off < pcap.len() {
        let h = &pcap[off..off + 16];
        let u = |i: usize| u64::from(u32::from_le_bytes(h[i..i + 4].try_into().expect("4")));
        let (ts, incl, orig) = (u(0) * 1_000_000 + u(4), u(8) as usize, u(12) as usize);
        assert!(u(4) < 1_000_000 && ts >= last_ts && ts >= START_US, "timestamps µs and monotonic");
        assert_eq!(incl, orig);
        last_ts = ts;
        let frame = &pcap[off + 16..off + 16 + incl];
        off += 16 + incl;
        st.frames += 1;
        let p = SlicedPacket::from_ethernet(frame).expect("frame parses");
        st.vlan += usize::from(p.vlan().is_some());
        let (src, dst) = match p.net.as_ref().expect("ip") {
            NetSlice::Ipv4(ip) => {
                let h = ip.header();
                assert_eq!(usize::from(h.total_len()), h.slice().len() + ip.payload().payload.len());
                let mut s = [0u8; 16];
                let mut d = [0u8; 16];
                s[..4].copy_from_slice(&h.source());
                d[..4].copy_from_slice(&h.destination());
                (s, d)
            }
            NetSlice::Ipv6(ip) => {
                st.v6 += 1;
                assert_eq!(usize::from(ip.header().payload_length()), ip.payload().payload.len());
                (ip.header().source(), ip.header().destination())
            }
            NetSlice::Arp(_) => panic!("no ARP generated"),
        };
        let Some(TransportSlice::Tcp(tcp)) = p.transport else {
            continue;
        };
        let key = (src, tcp.source_port(), dst, tcp.destination_port());
        if tcp.syn() {
            st.isn.insert(key, tcp.sequence_number().wrapping_add(1));
        } else if !tcp.payload().is_empty() {
            let segs = st.segs.entry(key).or_default();
            if let Some(prev) = segs.insert(tcp.sequence_number(), tcp.payload().to_vec()) {
                assert_eq!(prev, tcp.payload(), "a retransmission carries the same bytes");
            }
        }
    }
    st
}

fn reassemble(isn: u32, segs: &HashMap<u32, Vec<u8>>) -> Vec<u8> {
    let mut order: Vec<u32> = segs.keys().copied().collect();
    order.sort_by_key(|s| s.wrapping_sub(isn));
    let mut out = Vec::new();
    for s in order {
        assert_eq!(s.wrapping_sub(isn) as usize, out.len(), "no gap in the stream");
        out.extend_from_slice(&segs[&s]);
    }
    out
}

#[derive(Default)]
struct Tally {
    versions: [u64; 5],
    hellos: u64,
    pq_hellos: u64,
    certs: u64,
    alerts: u64,
}

fn be16(d: &[u8], i: usize) -> usize {
    usize::from(u16::from_be_bytes([d[i], d[i + 1]]))
}

/// The body of a u16-length-prefixed vector that must fill `d` exactly.
fn vec16(d: &[u8]) -> &[u8] {
    assert_eq!(be16(d, 0), d.len() - 2, "u16 vector length");
    &d[2..]
}

fn vec8(d: &[u8]) -> &[u8] {
    assert_eq!(usize::from(d[0]), d.len() - 1, "u8 vector length");
    &d[1..]
}

/// Checks an extension block byte by byte (tls-parser tolerates trailing bytes inside
/// an extension; the monitor's parser may not). Returns (type, data) pairs.
fn strict_extensions(block: &[u8], server: bool) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut d = block;
    while !d.is_empty() {
        let (typ, len) = (be16(d, 0) as u16, be16(d, 2));
        let e = &d[4..4 + len];
        d = &d[4 + len..];
        match (typ, server) {
            (0, false) => {
                let l = vec16(e);
                assert_eq!(l[0], 0, "host_name");
                assert_eq!(be16(l, 1), l.len() - 3, "server name length");
            }
            (10 | 13, _) => assert_eq!(vec16(e).len() % 2, 0),
            (11 | 45 | 0xff01, _) => {
                vec8(e);
            }
            (16, _) => {
                let mut l = vec16(e);
                while !l.is_empty() {
                    l = &l[1 + usize::from(l[0])..];
                }
            }
            (43, false) => assert_eq!(vec8(e).len() % 2, 0),
            (43, true) | (41, true) => assert_eq!(e.len(), 2),
            (51, false) => {
                let mut l = vec16(e);
                while !l.is_empty() {
                    l = &l[4 + be16(l, 2)..];
                }
            }
            (51, true) => assert_eq!(be16(e, 2), e.len() - 4, "server key share"),
            (41, false) => {
                let ids = be16(e, 0);
                vec16(&e[2 + ids..]);
                assert!(d.is_empty(), "pre_shared_key is the last extension");
            }
            (5, false) => assert_eq!(e, [1, 0, 0, 0, 0]),
            (23 | 35, _) => assert!(e.is_empty()),
            (t, _) if t & 0x0f0f == 0x0a0a => {}
            (t, s) => panic!("unexpected extension {t:#06x} (server: {s})"),
        }
        out.push((typ, e));
    }
    out
}

/// Checks one handshake message's body exactly (every length field adds up to the end).
fn strict_message(typ: u8, b: &[u8]) {
    match typ {
        1 | 2 => {
            let sid = usize::from(b[34]);
            let mut i = 35 + sid;
            if typ == 1 {
                i += 2 + be16(b, i);
                i += 1 + usize::from(b[i]);
            } else {
                i += 3;
            }
            if i < b.len() {
                strict_extensions(vec16(&b[i..]), typ == 2);
            } else {
                assert_eq!(i, b.len(), "hello ends after compression");
            }
        }
        11 => {
            let total = (usize::from(b[0]) << 16) | be16(b, 1);
            assert_eq!(total, b.len() - 3, "certificate_list length");
            let mut l = &b[3..];
            while !l.is_empty() {
                l = &l[3 + ((usize::from(l[0]) << 16) | be16(l, 1))..];
            }
        }
        12 => {
            // ECDHE: curve_type 3, group, u8 point; DHE: u16 p, u16 g, u16 Ys. Then an optional
            // SignatureScheme and a u16 signature that must end the message.
            let params = if b[0] == 3 {
                4 + usize::from(b[3])
            } else {
                let p = 2 + be16(b, 0);
                let g = p + 2 + be16(b, p);
                g + 2 + be16(b, g)
            };
            let sig = &b[params..];
            let exact = |o: usize| sig.len() >= o + 2 && be16(sig, o) == sig.len() - o - 2;
            assert!(exact(0) || exact(2), "ServerKeyExchange signature length");
        }
        14 => assert!(b.is_empty()),
        4 => assert_eq!(be16(b, 4), b.len() - 6, "ticket length"),
        16 => {} // RSA premaster is bare in SSLv3; checked by tshark
        t => panic!("unexpected plaintext handshake type {t}"),
    }
}

/// Walks the records of one direction; parses every plaintext handshake message.
fn walk(stream: &[u8], t: &mut Tally) {
    let mut hs = Vec::new();
    let mut i = 0;
    let mut plaintext = true;
    while i < stream.len() {
        let (ct, ver, len) = (
            stream[i],
            u16::from_be_bytes([stream[i + 1], stream[i + 2]]),
            usize::from(u16::from_be_bytes([stream[i + 3], stream[i + 4]])),
        );
        assert!((20..=23).contains(&ct) && (0x0300..=0x0303).contains(&ver), "record header at {i}");
        assert!(i + 5 + len <= stream.len(), "record complete");
        match ct {
            22 if plaintext => hs.extend_from_slice(&stream[i + 5..i + 5 + len]),
            21 if plaintext => t.alerts += 1,
            20 | 23 => plaintext = false,
            _ => {}
        }
        i += 5 + len;
    }
    let mut rest = &hs[..];
    while !rest.is_empty() {
        let len = (usize::from(rest[1]) << 16) | be16(rest, 2);
        strict_message(rest[0], &rest[4..4 + len]);
        let (r, msg) = parse_tls_message_handshake(rest).expect("handshake message parses");
        rest = r;
        let TlsMessage::Handshake(m) = msg else { panic!("handshake") };
        match m {
            TlsMessageHandshake::ClientHello(ch) => {
                t.hellos += 1;
                let (r, exts) = parse_tls_client_hello_extensions(ch.ext.unwrap_or(&[])).expect("extensions");
                assert!(r.is_empty());
                for e in exts {
                    if let TlsExtension::KeyShare(ks) = e {
                        let mut k = &ks[2..];
                        assert_eq!(usize::from(u16::from_be_bytes([ks[0], ks[1]])), k.len());
                        while !k.is_empty() {
                            let (g, l) =
                                (u16::from_be_bytes([k[0], k[1]]), usize::from(u16::from_be_bytes([k[2], k[3]])));
                            t.pq_hellos += u64::from(g == 0x11ec && l == 1216);
                            k = &k[4 + l..];
                        }
                    }
                }
            }
            TlsMessageHandshake::ServerHello(sh) => {
                let (r, exts) = parse_tls_server_hello_extensions(sh.ext.unwrap_or(&[])).expect("extensions");
                assert!(r.is_empty());
                let mut v = sh.version.0;
                for e in exts {
                    if let TlsExtension::SupportedVersions(vs) = e {
                        v = vs[0].0;
                    }
                }
                t.versions[usize::from(v - 0x0300)] += 1;
            }
            TlsMessageHandshake::Certificate(c) => {
                for der in c.cert_chain {
                    x509_parser::parse_x509_certificate(der.data).expect("certificate parses");
                    t.certs += 1;
                }
            }
            _ => {}
        }
    }
}

#[test]
fn capture_round_trips_through_parsers() {
    let (pcap, sum) = capture(4, 7);
    let st = split(&pcap);
    assert_eq!(st.frames as u64, sum.packets);
    assert_eq!(pcap.len() as u64, sum.bytes);
    assert!(st.vlan > 0 && st.v6 > 0, "some VLAN-tagged and IPv6 traffic");
    let mut t = Tally::default();
    for (key, segs) in &st.segs {
        let stream = reassemble(st.isn[key], segs);
        if key.1 != 80 && key.3 != 80 {
            walk(&stream, &mut t);
        }
    }
    let tls_conns: u64 = sum.conns[..6].iter().sum();
    assert_eq!(t.hellos, tls_conns);
    assert_eq!(t.versions.to_vec(), sum.conns[..5].to_vec(), "negotiated versions");
    assert_eq!(t.alerts, sum.conns[5], "one fatal alert per failed handshake");
    assert!(t.versions.iter().all(|&n| n > 0), "every version present: {:?}", t.versions);
    assert!(t.pq_hellos > 0 && t.certs > 0);
}

#[test]
fn same_seed_same_bytes() {
    let (a, _) = capture(1, 3);
    let (b, _) = capture(1, 3);
    let (c, _) = capture(1, 4);
    assert!(a == b, "deterministic");
    assert!(a != c, "seed matters");
}

#[test]
fn embedded_certificates_have_the_advertised_flaws() {
    use x509_parser::prelude::*;
    let start = ASN1Time::from_timestamp((START_US / 1_000_000) as i64).expect("time");
    let parse = |c: &certs::Chain| parse_x509_certificate(c.certs[0]).expect("der").1;
    assert!(parse(&certs::EC_VALID).validity().is_valid_at(start));
    assert!(parse(&certs::RSA_EXPIRED).validity().not_after < start);
    let legacy = parse(&certs::LEGACY);
    assert_eq!(legacy.subject(), legacy.issuer(), "self-signed");
    assert_eq!(legacy.public_key().parsed().expect("key").key_size(), 1024);
    let device = parse(&certs::DEVICE);
    assert_eq!(device.subject().iter_common_name().next().and_then(|c| c.as_str().ok()), Some("localhost"));
}
