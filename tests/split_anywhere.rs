//! A real ClientHello (the first client flight of a corpus capture, read at test time) cut at
//! every byte offset into two and three TCP segments, delivered in order and out of order,
//! must give exactly the same parsed ClientHello and fingerprints every time.
use std::path::Path;

use monitor::decode::{self, Addr, Packet, Transport};
use monitor::flow::reassembly::Head;
use monitor::pipeline::{Pipeline, PipelineConfig};

/// The client's first bytes of the first TLS flow in a capture (real captured bytes).
fn first_client_flight(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps").join(name);
    let file = std::fs::File::open(&path).expect("corpus capture present");
    let mut head = Head::new(8192);
    let mut out = Vec::new();
    let mut client: Option<(Addr, u16)> = None;
    monitor::capture::pcap::for_each_frame(std::io::BufReader::new(file), |f| {
        let Ok(p) = decode::decode(f.linktype, f.data) else { return };
        if p.transport != Transport::Tcp {
            return;
        }
        if client.is_none() && p.syn && !p.ack {
            client = Some((p.src, p.src_port));
            head.syn(p.seq);
        }
        // Captures that start mid-connection: the first ClientHello's sender is the client.
        if client.is_none() && p.payload.len() > 5 && p.payload[0] == 0x16 && p.payload[5] == 1 {
            client = Some((p.src, p.src_port));
        }
        if client == Some((p.src, p.src_port)) && !p.payload.is_empty() {
            head.insert(p.seq, p.payload, false, &mut |b| out.extend_from_slice(b));
        }
    })
    .expect("capture reads");
    // Keep exactly the handshake records that carry the ClientHello message.
    let (mut end, mut frag, mut need) = (0usize, 0usize, usize::MAX);
    while end + 9 <= out.len() && out[end] == 0x16 && frag < need {
        let len = u16::from_be_bytes([out[end + 3], out[end + 4]]) as usize;
        if need == usize::MAX {
            need = u32::from_be_bytes([0, out[end + 6], out[end + 7], out[end + 8]]) as usize + 4;
        }
        frag += len;
        end += 5 + len;
    }
    end = end.min(out.len());
    assert!(end > 300, "expected a real ClientHello of some size, got {end} bytes");
    out.truncate(end);
    out
}

fn packet(src: u16, seq: u32, syn: bool, payload: &[u8]) -> Packet<'_> {
    let (a, b) = (Addr::v4([192, 0, 2, 1]), Addr::v4([192, 0, 2, 2]));
    let (src_a, dst_a, sp, dp) = if src == 1 { (a, b, 50000, 443) } else { (b, a, 443, 50000) };
    Packet {
        src: src_a,
        dst: dst_a,
        src_port: sp,
        dst_port: dp,
        transport: Transport::Tcp,
        syn,
        ack: src != 1,
        fin: false,
        rst: false,
        seq,
        payload,
        truncated: false,
        local: None,
    }
}

/// Run the segments (offsets into `hello`) in the given order; return the parsed facts.
fn run(hello: &[u8], cuts: &[usize], order: &[usize], with_syn: bool) -> (String, String, Option<String>) {
    let mut p = Pipeline::new(PipelineConfig::default());
    let isn = 1_000_000u32;
    if with_syn {
        p.packet(1, &packet(1, isn, true, &[]));
    }
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(hello.len());
    for (i, &k) in order.iter().enumerate() {
        let (s, e) = (bounds[k], bounds[k + 1]);
        p.packet(2 + i as u64, &packet(1, isn + 1 + s as u32, false, &hello[s..e]));
    }
    p.finish();
    let outs: Vec<_> = p.drain_outputs().collect();
    assert_eq!(outs.len(), 1, "cuts {cuts:?} order {order:?}");
    let hs = outs[0].handshake().expect("a TLS handshake");
    let ch = hs.client_hello.as_ref().unwrap_or_else(|| panic!("no ClientHello for cuts {cuts:?} order {order:?}"));
    (format!("{ch:?}"), format!("{:?}{:?}", hs.ja3, hs.ja4), ch.sni.clone())
}

fn check_capture(name: &str) {
    let hello = first_client_flight(name);
    let want = run(&hello, &[], &[0], true);
    assert!(want.2.is_some(), "reference hello has an SNI");
    let n = hello.len();
    for i in 1..n {
        assert_eq!(run(&hello, &[i], &[0, 1], true), want, "2 segments in order, cut at {i}");
        assert_eq!(run(&hello, &[i], &[1, 0], true), want, "2 segments reversed, cut at {i}");
        let j = i + (n - i) / 2;
        if j > i && j < n {
            for order in [[0, 1, 2], [2, 1, 0], [1, 0, 2], [0, 2, 1]] {
                assert_eq!(run(&hello, &[i, j], &order, true), want, "3 segments {order:?}, cuts {i},{j}");
            }
            assert_eq!(run(&hello, &[i, i + 1], &[2, 0, 1], true), want, "1-byte middle, cut at {i}");
        }
    }
    // Without the SYN, in-order delivery still reassembles (the first segment sets byte 0).
    for i in (1..n).step_by(37) {
        assert_eq!(run(&hello, &[i], &[0, 1], false), want, "no SYN, cut at {i}");
    }
}

#[test]
fn clienthello_cut_anywhere_ja4_capture() {
    check_capture("ja4__tls-non-ascii-alpn.pcapng");
}

#[test]
fn post_quantum_clienthello_cut_anywhere() {
    // Two records' worth with a 1.2 KB ML-KEM key share (Arkime's split ClientHello capture).
    check_capture("arkime__tls-split-client-hello.pcap");
}

/// An SSH client's banner and KEXINIT (real OpenSSH 9.2p1 bytes, `monitor/src/inspect/ssh/
/// testdata`) cut at every offset into two segments, in order and reversed, with the server's
/// whole: the same banners, lists, negotiated algorithms and HASSH every time. And the server's
/// cut the same way.
#[test]
fn ssh_kexinit_cut_anywhere() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/inspect/ssh/testdata");
    let read = |n: &str| std::fs::read(dir.join(n)).expect("ssh fixture");
    let (client, server) = (read("modern-client.bin"), read("modern-server.bin"));
    let run = |c: &[u8], c_cut: Option<usize>, s_cut: Option<usize>, reversed: bool| -> String {
        let mut p = Pipeline::new(PipelineConfig::default());
        let (ci, si) = (7_000u32, 9_000_000u32);
        p.packet(1, &ssh_packet(true, ci, true, &[]));
        p.packet(2, &ssh_packet(false, si, true, &[]));
        let mut t = 3;
        let mut send = |from_client: bool, isn: u32, bytes: &[u8], cut: Option<usize>| {
            let k = cut.unwrap_or(bytes.len());
            let mut segs = vec![(0, &bytes[..k]), (k, &bytes[k..])];
            if reversed {
                segs.reverse();
            }
            for (off, seg) in segs.into_iter().filter(|(_, s)| !s.is_empty()) {
                p.packet(t, &ssh_packet(from_client, isn + 1 + off as u32, false, seg));
                t += 1;
            }
        };
        send(false, si, &server, s_cut);
        send(true, ci, c, c_cut);
        p.finish();
        let outs: Vec<_> = p.drain_outputs().collect();
        assert_eq!(outs.len(), 1, "cuts {c_cut:?}/{s_cut:?}");
        let s = outs[0].ssh().expect("an SSH session");
        assert_eq!((s.server.port, s.client.port), (22, 50_000));
        format!("{:?}", s.facts)
    };
    let want = run(&client, None, None, false);
    assert!(want.contains("sntrup761x25519-sha512") && want.contains("472b5de333ad665af5cbf10ff892c4df"));
    for i in 1..client.len() {
        assert_eq!(run(&client, Some(i), None, false), want, "client cut at {i}");
        assert_eq!(run(&client, Some(i), None, true), want, "client cut at {i}, reversed");
    }
    for i in 1..server.len() {
        assert_eq!(run(&client, None, Some(i), i % 2 == 0), want, "server cut at {i}");
    }
}

fn ssh_packet(from_client: bool, seq: u32, syn: bool, payload: &[u8]) -> Packet<'_> {
    let (a, b) = (Addr::v4([192, 0, 2, 1]), Addr::v4([192, 0, 2, 2]));
    let (src, dst, src_port, dst_port) = if from_client { (a, b, 50_000, 22) } else { (b, a, 22, 50_000) };
    Packet {
        src,
        dst,
        src_port,
        dst_port,
        transport: Transport::Tcp,
        syn,
        ack: !from_client,
        fin: false,
        rst: false,
        seq,
        payload,
        truncated: false,
        local: None,
    }
}
