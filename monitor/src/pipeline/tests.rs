//! Pipeline tests: persistent clear flows, the all-flows plaintext cap, idle judging by the timer.
use super::*;
use crate::decode::Addr;

const S: u64 = 1_000_000_000;

/// A minimal TLS 1.2 ClientHello record: one suite (0xc02f), null compression, no extensions.
fn client_hello() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7u8; 32]);
    body.extend_from_slice(&[0, 0, 2, 0xc0, 0x2f, 1, 0]);
    let mut hs = vec![1, 0, 0, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1, 0, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

fn pkt(payload: &[u8], syn: bool, seq: u32) -> Packet<'_> {
    Packet {
        src: Addr::v4([10, 99, 0, 1]),
        dst: Addr::v4([10, 99, 0, 2]),
        src_port: 40_000,
        dst_port: 443,
        transport: Transport::Tcp,
        syn,
        ack: !syn,
        fin: false,
        rst: false,
        seq,
        payload,
        truncated: false,
        local: None,
    }
}

#[test]
fn persistent_clear_flow_is_judged_after_it_settles() {
    // An HL7 link that stays open: one message and its ACK, then another message 12 s later.
    let mut p = Pipeline::new(PipelineConfig::default());
    let msg = b"\x0bMSH|^~\\&|A|B|C|D|20250602||ADT^A01|1|P|2.5\r\x1c\r";
    let ack = b"\x0bMSH|^~\\&|C|D|A|B|20250602||ACK^A01|2|P|2.5\rMSA|AA|1\r\x1c\r";
    let hl7 = |payload: &'static [u8], from_client: bool, seq: u32| {
        let mut k = pkt(payload, false, seq);
        k.dst_port = 2575;
        if !from_client {
            std::mem::swap(&mut k.src, &mut k.dst);
            std::mem::swap(&mut k.src_port, &mut k.dst_port);
        }
        k
    };
    p.packet(100 * S, &hl7(msg, true, 1000));
    p.packet(100 * S + 1, &hl7(ack, false, 5000));
    p.packet(105 * S, &hl7(msg, true, 1000 + msg.len() as u32));
    assert_eq!(p.drain_outputs().count(), 0, "5 s in: still collecting");
    p.packet(112 * S, &hl7(msg, true, 1000 + 2 * msg.len() as u32));
    let out: Vec<Output> = p.drain_outputs().collect();
    assert_eq!(out.len(), 1, "judged 12 s in, without FIN or idle time");
    let flow = out[0].plaintext().expect("a plaintext flow");
    assert_eq!(flow.facts.protocol, Some(plaintext::Protocol::Hl7));
    assert_eq!(flow.server.port, 2575);
    assert_eq!(out[0].findings[0].id, "plaintext.phi");
    assert_eq!(p.stats.plaintext_flows, 1);
}

#[test]
fn all_flows_plaintext_cap_drops_and_counts_then_frees() {
    let mut p = Pipeline::new(PipelineConfig { max_plain_bytes: 10, ..Default::default() });
    let req: &'static [u8] = b"GET /index.html HTTP/1.1\r\n"; // 26 bytes, a candidate (signature)
    let get = |src_port: u16| {
        let mut k = pkt(req, false, 1000);
        (k.src_port, k.dst_port) = (src_port, 9000);
        k
    };
    p.packet(S, &get(40_001));
    assert_eq!(p.plain_bytes, 10, "kept up to the cap");
    assert_eq!(p.stats.plain_bytes_dropped, 16, "the rest is counted");
    p.packet(2 * S, &get(40_002));
    assert_eq!(p.stats.plain_bytes_dropped, 42, "a second flow gets nothing while the cap is full");
    p.finish();
    assert_eq!(p.plain_bytes, 0, "judged flows give their bytes back");
    assert_eq!(p.stats.plain_candidates, 2);
}

#[test]
fn advance_judges_idle_flows_without_packets() {
    let mut p = Pipeline::new(PipelineConfig { idle_timeout_s: 10, ..Default::default() });
    let hello = client_hello();
    p.packet(100 * S, &pkt(&[], true, 999));
    p.packet(101 * S, &pkt(&hello, false, 1000));
    assert_eq!(p.drain_outputs().count(), 0, "the server has not answered yet");
    p.advance(105 * S);
    assert_eq!(p.drain_outputs().count(), 0, "not idle long enough");
    p.advance(112 * S);
    let out: Vec<Output> = p.drain_outputs().collect();
    assert_eq!(out.len(), 1, "the idle flow is judged by the timer");
    assert_eq!(out[0].endpoints().1.port, 443);
    assert!(out[0].handshake().is_some_and(|h| h.client_hello.is_some()));
    assert_eq!(p.stats.flows.expired, 1);
    assert_eq!(p.stats.handshakes, 1);
    // Nothing left for the end of input.
    p.finish();
    assert_eq!(p.drain_outputs().count(), 0);
}

#[test]
fn memory_budget_judges_oldest_flows_early_and_counts_them() {
    // 2 000 flows, each a SYN and then 32 segments past a missing first byte: 1 000 bytes of
    // out-of-order data apiece would hold ~64 MB; the budget is 1 MiB.
    let limit = 1 << 20;
    let mut p = Pipeline::new(PipelineConfig { max_memory: limit, ..Default::default() });
    let data = [0x16u8; 1000];
    let mut ts = 100 * S;
    for flow in 0..2_000u16 {
        let mut syn = pkt(&[], true, 999);
        syn.src_port = 10_000 + flow;
        p.packet(ts, &syn);
        for i in 0..32u32 {
            let mut k = pkt(&data, false, 1000 + 500 + i * 1000);
            k.src_port = 10_000 + flow;
            ts += 1000;
            p.packet(ts, &k);
            assert!(p.stats.memory.held <= limit as u64, "held {} over the budget", p.stats.memory.held);
        }
    }
    let m = p.stats.memory;
    assert_eq!(m.limit, limit as u64);
    assert!(m.peak > limit as u64 * 7 / 8, "the flood filled the budget: peak {}", m.peak);
    assert!(m.peak <= limit as u64 + 2 * 1024 + data.len() as u64, "over by at most one segment: {}", m.peak);
    assert!(m.evicted_flows > 1_000, "most flows were judged early: {}", m.evicted_flows);
    assert!(m.evicted_bytes > 16 * m.evicted_flows * data.len() as u64 / 2, "{m:?}");
    // Oldest first: the newest flow is still open, the first one went long ago.
    let newest = FlowKey::new(Endpoint { addr: Addr::v4([10, 99, 0, 1]), port: 11_999 }, server(), false).0;
    let first = FlowKey::new(Endpoint { addr: Addr::v4([10, 99, 0, 1]), port: 10_000 }, server(), false).0;
    assert!(p.table.get_mut(&newest).is_some() && p.table.get_mut(&first).is_none());
    p.finish();
    assert_eq!((p.charged, p.stats.memory.held), (0, 0), "every judged flow gives its bytes back");
}

#[test]
fn memory_charge_follows_the_flow_and_is_returned() {
    let mut p = Pipeline::new(PipelineConfig::default());
    let hello = client_hello();
    p.packet(100 * S, &pkt(&[], true, 999));
    let opened = p.stats.memory.held;
    assert!(opened > 0, "an open flow is charged its state");
    p.packet(100 * S + 1, &pkt(&hello[..20], false, 1000));
    assert!(p.stats.memory.held > opened, "a partial record is charged");
    p.packet(100 * S + 2, &pkt(&hello[20..], false, 1020));
    p.finish();
    assert_eq!((p.charged, p.stats.memory.held, p.stats.memory.evicted_flows), (0, 0, 0));
    assert_eq!(p.stats.handshakes, 1);
}

fn server() -> Endpoint {
    Endpoint { addr: Addr::v4([10, 99, 0, 2]), port: 443 }
}

#[test]
fn fixed_costs_are_small() {
    // What every tracked flow and every open flow is charged before any buffer: the README's
    // "a flow keeps only its table entry once judged" depends on these staying small
    // (73 B and 1 472 B when written).
    const { assert!(ENTRY_COST <= 96) };
    const { assert!(std::mem::size_of::<state::Active>() <= 2048) };
}

fn udp(payload: &[u8], src_port: u16, dst_port: u16) -> Packet<'_> {
    Packet { transport: Transport::Udp, src_port, dst_port, syn: false, ack: false, seq: 0, ..pkt(payload, false, 0) }
}

#[test]
fn udp_garbage_is_counted_never_judged() {
    let mut p = Pipeline::new(PipelineConfig::default());
    // DNS and a short header on 443: no flow at all.
    p.packet(S, &udp(b"\x12\x34\x01\x00\x00\x01", 40_000, 53));
    p.packet(S, &udp(b"\x40\x01\x02\x03", 40_001, 443));
    assert_eq!(p.table.len(), 0);
    // Long headers on 443: an unknown version, a known one cut short, one that opens no key.
    let mut x: u32 = 9;
    let mut forged = vec![0xc0, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0x44, 0xb1, 0];
    forged.extend((0..1200).map(|_| {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        (x >> 16) as u8
    }));
    p.packet(2 * S, &udp(b"\xc0\x0a\x0a\x0a\x0a\x00\x00", 40_002, 443));
    p.packet(2 * S, &udp(&forged[..30], 40_003, 443));
    for i in 0..6 {
        p.packet(3 * S + i, &udp(&forged, 40_004, 443));
    }
    assert_eq!(p.table.len(), 3);
    assert!(p.stats.memory.held > 0);
    p.finish();
    assert_eq!(p.drain_outputs().count(), 0, "nothing TLS: no event");
    let q = p.stats.quic;
    assert_eq!((p.stats.udp_packets, q.datagrams), (10, 8));
    assert_eq!((q.unknown_version, q.malformed, q.undecryptable), (1, 1, 6), "{q:?}");
    assert_eq!((p.charged, p.stats.memory.held), (0, 0));
}

#[test]
fn udp_and_tcp_on_one_four_tuple_are_two_flows() {
    let mut p = Pipeline::new(PipelineConfig::default());
    p.packet(S, &pkt(&[], true, 999));
    p.packet(S, &udp(b"\xc0\x00\x00\x00\x01\x00\x00", 40_000, 443));
    assert_eq!(p.table.len(), 2);
}

/// A real DTLS 1.2 handshake (OpenSSL 3.0.19 s_server/s_client in a netns lab, UDP 4433,
/// HelloVerifyRequest) through the pipeline: one flow, judged once both sides went encrypted,
/// with JA4's `d`, the DTLS facts and counters; later datagrams are only counted.
#[test]
fn dtls_flow_on_any_port_is_judged_once() {
    let cap: &[u8] = include_bytes!("../../../tests/captures/openssl-3.0.19-dtls1_2-hello-verify.pcap");
    let mut p = Pipeline::new(PipelineConfig::default());
    let mut outs = Vec::new();
    // Classic pcap, Ethernet (link type 1): 24-byte file header, 16-byte record headers.
    let mut at = 24;
    while at + 16 <= cap.len() {
        let word = |o: usize| u64::from(u32::from_le_bytes([cap[o], cap[o + 1], cap[o + 2], cap[o + 3]]));
        let (ts_ns, incl) = (word(at) * S + word(at + 4) * 1000, word(at + 8) as usize);
        let pk = crate::decode::decode(1, &cap[at + 16..at + 16 + incl]).expect("decodes");
        p.packet(ts_ns, &pk);
        outs.extend(p.drain_outputs());
        at += 16 + incl;
    }
    assert_eq!(outs.len(), 1, "judged before the end of input");
    p.finish();
    assert_eq!(p.drain_outputs().count(), 0);
    let Observed::Tls { handshake: hs, .. } = &outs[0].observed else { panic!("a tls handshake") };
    assert_eq!(hs.server.port, 4433);
    assert!(hs.quic.is_none());
    let d = hs.dtls.as_ref().expect("dtls facts");
    assert!(d.hello_verify);
    assert_eq!(d.cookie_len, Some(20));
    assert_eq!(hs.version(), Some(0xfefd));
    assert!(hs.established);
    assert!(hs.ja4.as_ref().is_some_and(|(j, _)| j.starts_with("dd2d")), "{:?}", hs.ja4);
    let s = p.stats.dtls;
    assert_eq!((p.stats.udp_packets, s.datagrams, s.hello_verify, s.malformed), (12, 10, 1, 0), "{s:?}");
    assert_eq!((p.charged, p.stats.memory.held), (0, 0));
}

#[test]
fn dtls_garbage_is_counted_never_judged() {
    let mut p = Pipeline::new(PipelineConfig::default());
    // Not DTLS: TLS over UDP, a DTLS record of application data, too short to be a hello.
    p.packet(
        S,
        &udp(&[22, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 30, 1, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 20, 9], 40_000, 5000),
    );
    p.packet(S, &udp(&[23, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9], 40_001, 5000));
    p.packet(S, &udp(&[22, 0xfe, 0xfd, 0, 0], 40_002, 5000));
    assert_eq!(p.table.len(), 0);
    // A DTLS handshake record that announces more than it carries; then random bytes.
    let mut cut = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    cut.extend([1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 3, 3, 7, 7, 7]);
    p.packet(S, &udp(&cut, 40_003, 5000));
    p.packet(S, &udp(&[0x55; 40], 40_003, 5000));
    assert_eq!(p.table.len(), 1);
    p.finish();
    assert_eq!(p.drain_outputs().count(), 0, "no hello: no event");
    assert_eq!((p.stats.dtls.datagrams, p.stats.dtls.malformed), (2, 2), "{:?}", p.stats.dtls);
    assert_eq!((p.charged, p.stats.memory.held), (0, 0));
}

/// One segment of a client (port 40000) — server (port 5222) session.
fn xmpp_seg(payload: &[u8], from_client: bool, syn: bool, seq: u32) -> Packet<'_> {
    let mut k = pkt(payload, syn, seq);
    k.dst_port = 5222;
    if !from_client {
        std::mem::swap(&mut k.src, &mut k.dst);
        std::mem::swap(&mut k.src_port, &mut k.dst_port);
    }
    k.ack = !(syn && from_client);
    k
}

/// An XMPP c2s STARTTLS exchange (RFC 6120 §5.4), each direction's clear bytes cut at every
/// offset into two TCP segments, the server's delivered out of order, then the ClientHello:
/// always one TLS output upgraded from XMPP with offered, requested and accepted.
#[test]
fn xmpp_starttls_split_anywhere() {
    use crate::inspect::plaintext::xmpp_fixtures::{C_HEADER, C_STARTTLS, S_FEATURES, S_PROCEED};
    let client: Vec<u8> = [C_HEADER, C_STARTTLS].concat();
    let server: Vec<u8> = [S_FEATURES, S_PROCEED].concat();
    let hello = client_hello();
    let (cs, ss) = (1000u32, 9000u32);
    for cut in 0..=client.len().max(server.len()) {
        let (c1, c2) = client.split_at(cut.min(client.len()));
        let (s1, s2) = server.split_at(cut.min(server.len()));
        let mut p = Pipeline::new(PipelineConfig::default());
        let mut t = S;
        let mut send = |p: &mut Pipeline, k: Packet<'_>| {
            t += 1000;
            p.packet(t, &k);
        };
        send(&mut p, xmpp_seg(&[], true, true, cs - 1));
        send(&mut p, xmpp_seg(&[], false, true, ss - 1));
        for (part, at) in [(c1, cs), (c2, cs + c1.len() as u32)] {
            if !part.is_empty() {
                send(&mut p, xmpp_seg(part, true, false, at));
            }
        }
        for (part, at) in [(s2, ss + s1.len() as u32), (s1, ss)] {
            if !part.is_empty() {
                send(&mut p, xmpp_seg(part, false, false, at));
            }
        }
        send(&mut p, xmpp_seg(&hello, true, false, cs + client.len() as u32));
        p.finish();
        let out: Vec<Output> = p.drain_outputs().collect();
        assert_eq!(out.len(), 1, "cut {cut}");
        let Observed::Tls { handshake, upgrade } = &out[0].observed else { panic!("cut {cut}: not TLS") };
        assert!(handshake.client_hello.is_some(), "cut {cut}: the ClientHello after the upgrade was read");
        let up = upgrade.as_ref().expect("upgrade facts");
        assert_eq!(up.protocol, Some(plaintext::Protocol::Xmpp), "cut {cut}");
        let st = up.starttls.expect("starttls facts");
        assert!(st.offered && st.requested && st.accepted == Some(true) && !st.cleartext_after_offer, "cut {cut}");
        assert!(up.xmpp.is_some_and(|x| x.tls_required), "cut {cut}");
    }
}

/// Live: a new socket (another cookie) sending on a 4-tuple whose flow is still open is a new
/// connection that reused the port: the old flow is judged with its own socket, and the new
/// one starts clean with the new socket; neither names the other's.
#[test]
fn another_socket_on_the_same_tuple_is_a_new_connection() {
    use crate::decode::LocalSocket;
    let mut p = Pipeline::new(PipelineConfig::default());
    let hello = client_hello();
    let (a, b) = (LocalSocket { cookie: 11, cgroup_id: 7 }, LocalSocket { cookie: 22, cgroup_id: 8 });
    let from = |s: LocalSocket, syn: bool, payload: &'static [u8], seq: u32| Packet {
        local: Some(s),
        ..pkt(payload, syn, seq)
    };
    let hello: &'static [u8] = hello.leak();
    p.packet(S, &from(a, true, &[], 999));
    p.packet(S + 1, &from(a, false, hello, 1000));
    // No FIN or RST of the first connection was seen; the port is taken again.
    p.packet(2 * S, &from(b, true, &[], 5999));
    p.packet(2 * S + 1, &from(b, false, hello, 6000));
    let first: Vec<Output> = p.drain_outputs().collect();
    assert_eq!(first.len(), 1, "the first connection is judged when the second begins");
    assert_eq!(first[0].local.sockets, [Some(a), None]);
    assert_eq!(p.stats.socket_reuse, 1);
    p.finish();
    let second: Vec<Output> = p.drain_outputs().collect();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].local.sockets, [Some(b), None]);
    let h = second[0].handshake().expect("a handshake");
    assert!(h.client_hello.is_some() && h.ts_ns == 2 * S + 1, "{:?} at {}", h.client_hello.is_some(), h.ts_ns);
    // The same socket again changes nothing; records without a socket (ingress) neither.
    let mut q = Pipeline::new(PipelineConfig::default());
    q.packet(S, &from(a, true, &[], 999));
    q.packet(S + 1, &pkt(&[], false, 1000));
    q.packet(S + 2, &from(a, false, hello, 1000));
    assert_eq!(q.drain_outputs().count(), 0);
    assert_eq!(q.stats.socket_reuse, 0);
}
