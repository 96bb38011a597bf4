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
