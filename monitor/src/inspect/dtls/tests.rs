//! DTLS tests over a real capture (tests/captures/openssl-3.0.19-dtls1_2-hello-verify.pcap:
//! `openssl s_server -dtls1_2` and `s_client -dtls1_2 -servername dtls.lab.test`, OpenSSL
//! 3.0.19, recorded with tcpdump between two network namespaces): the HelloVerifyRequest
//! exchange, a ClientHello split into three fragments in every order, garbage and cuts.
use super::reassembly::MAX_HANDSHAKE;
use super::*;

const CAPTURE: &[u8] = include_bytes!("../../../../tests/captures/openssl-3.0.19-dtls1_2-hello-verify.pcap");

/// The capture's UDP payloads: (direction 0 = client → server, bytes). Classic pcap,
/// Ethernet, IPv4 without options.
fn datagrams() -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 24;
    let mut client_port = None;
    while at + 16 <= CAPTURE.len() {
        let incl = u32::from_le_bytes(CAPTURE[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        let frame = &CAPTURE[at + 16..at + 16 + incl];
        at += 16 + incl;
        let udp = &frame[14 + 20..];
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let client = *client_port.get_or_insert(sport);
        out.push((usize::from(sport != client), udp[8..].to_vec()));
    }
    out
}

fn run(dgrams: &[(usize, Vec<u8>)]) -> DtlsConn {
    let mut c = DtlsConn::default();
    for (i, (dir, d)) in dgrams.iter().enumerate() {
        c.datagram(*dir, d, i as u64);
    }
    c
}

#[test]
fn capture_with_hello_verify_request() {
    let d = datagrams();
    assert_eq!(d.len(), 12);
    assert!(looks_like_dtls(&d[0].1));
    let mut c = run(&d);
    assert!(c.done());
    c.finish();
    assert_eq!(c.client, Some(0));
    let ch = c.tls[0].facts.client_hello.as_ref().expect("client hello");
    assert_eq!(ch.version, 0xfefd);
    assert_eq!(ch.sni.as_deref(), Some("dtls.lab.test"));
    let sh = c.tls[1].facts.server_hello.as_ref().expect("server hello");
    assert_eq!((sh.version, sh.cipher), (0xfefd, 0xc02c));
    assert_eq!(c.tls[1].facts.certs.len(), 1);
    assert_eq!(c.tls[1].facts.certs[0].subject_cn.as_deref(), Some("dtls.lab.test"));
    assert_eq!(c.tls[1].facts.kx.named_group, Some(0x001d));
    assert!(c.tls[1].facts.server_hello_done);
    assert!(c.tls[0].facts.ccs && c.tls[1].facts.ccs);
    assert!(c.facts.hello_verify);
    // OpenSSL sends its first hello in a DTLS 1.0 record (RFC 6347 §4.1 allows it).
    assert_eq!(c.facts.record_version, Some(0xfeff));
    // The counted hello is the second one, with the server's 20-byte cookie.
    assert_eq!(c.facts.cookie_len, Some(20));
    assert_eq!(c.stats.hello_verify, 1);
    assert_eq!((c.stats.malformed, c.stats.dropped, c.stats.retransmitted), (0, 0, 0));
    assert!(c.stats.encrypted > 0);
    assert!(c.tls.iter().all(|t| t.facts.anomalies.is_empty()));
}

#[test]
fn first_hello_does_not_count_after_hello_verify() {
    let d = datagrams();
    // Only the first hello and the HelloVerifyRequest: the hello read is reset.
    let c = run(&d[..2]);
    assert!(c.facts.hello_verify);
    assert!(c.tls[0].facts.client_hello.is_none());
    // The first hello alone: it counts, without a cookie.
    let c = run(&d[..1]);
    assert_eq!(c.facts.cookie_len, Some(0));
    assert!(c.tls[0].facts.client_hello.is_some());
}

/// One record holding one fragment of message `seq` of `msg` (`[off, off + len)`).
fn fragment_datagram(rec_seq: u8, ty: u8, seq: u16, msg: &[u8], off: usize, len: usize) -> Vec<u8> {
    let mut body = vec![ty];
    body.extend_from_slice(&(msg.len() as u32).to_be_bytes()[1..]);
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&(off as u32).to_be_bytes()[1..]);
    body.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    body.extend_from_slice(&msg[off..off + len]);
    let mut rec = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, rec_seq];
    rec.extend_from_slice(&(body.len() as u16).to_be_bytes());
    rec.extend_from_slice(&body);
    rec
}

/// The body of the capture's second ClientHello (message_seq 1, one fragment).
fn second_hello() -> (u8, u16, Vec<u8>) {
    let d = &datagrams()[2].1;
    let h = &d[13..25];
    let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
    (h[0], u16::from_be_bytes([h[4], h[5]]), d[25..25 + len].to_vec())
}

#[test]
fn client_hello_in_three_fragments_in_every_order() {
    let (ty, seq, msg) = second_hello();
    let whole = {
        let mut c = DtlsConn::default();
        c.datagram(0, &fragment_datagram(0, ty, seq, &msg, 0, msg.len()), 0);
        c.tls[0].facts.client_hello.clone().expect("whole hello")
    };
    let cuts = [(0, 70), (70, 90), (160, msg.len() - 160)];
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    for order in orders {
        let mut c = DtlsConn::default();
        for (i, &k) in order.iter().enumerate() {
            let (off, len) = cuts[k];
            assert!(c.tls[0].facts.client_hello.is_none(), "{order:?}: complete before its last fragment");
            c.datagram(0, &fragment_datagram(i as u8, ty, seq, &msg, off, len), i as u64);
        }
        assert_eq!(c.tls[0].facts.client_hello.as_ref(), Some(&whole), "{order:?}");
        assert_eq!(c.client, Some(0));
        // Overlapping retransmissions change nothing.
        c.datagram(0, &fragment_datagram(9, ty, seq, &msg, 10, 100), 9);
        assert_eq!(c.tls[0].facts.client_hello.as_ref(), Some(&whole), "{order:?}");
        assert_eq!(c.stats.retransmitted + c.reasm[0].stats.retransmitted, 1);
    }
    // Several fragments in one datagram, last first.
    let mut d = fragment_datagram(1, ty, seq, &msg, 160, msg.len() - 160);
    d.extend(fragment_datagram(0, ty, seq, &msg, 0, 160));
    let mut c = DtlsConn::default();
    c.datagram(0, &d, 0);
    assert_eq!(c.tls[0].facts.client_hello.as_ref(), Some(&whole));
}

#[test]
fn nothing_read_past_a_change_of_epoch() {
    let (ty, seq, msg) = second_hello();
    let mut d = vec![20, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
    d.extend(fragment_datagram(1, ty, seq, &msg, 0, msg.len()));
    let mut c = DtlsConn::default();
    c.datagram(0, &d, 0);
    assert!(c.tls[0].facts.client_hello.is_none());
    let mut e = fragment_datagram(1, ty, seq, &msg, 0, msg.len());
    e[4] = 1; // epoch 1
    let mut c = DtlsConn::default();
    c.datagram(1, &e, 0);
    assert!(c.tls[1].facts.client_hello.is_none());
    assert_eq!(c.stats.encrypted, 1);
}

#[test]
fn garbage_and_every_cut_are_counted_never_a_panic() {
    for (dir, d) in datagrams() {
        // Where records end: a cut there is a shorter datagram, not a malformed one.
        let mut ends = vec![0];
        while let Some(h) = d.get(ends[ends.len() - 1]..).filter(|r| r.len() >= 13) {
            ends.push(ends[ends.len() - 1] + 13 + usize::from(u16::from_be_bytes([h[11], h[12]])));
        }
        for n in 0..d.len() {
            let mut c = DtlsConn::default();
            c.datagram(dir, &d[..n], 0);
            c.finish();
            if !ends.contains(&n) && !c.encrypted[dir] {
                assert!(c.stats.malformed > 0, "cut at {n}");
            }
        }
    }
    let mut c = DtlsConn::default();
    let mut x: u32 = 0x1234_5678;
    for i in 0..2000u64 {
        let d: Vec<u8> = (0..(i % 97))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let mut g = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0];
        g.extend_from_slice(&(d.len() as u16).to_be_bytes());
        g.extend_from_slice(&d);
        c.datagram((i & 1) as usize, &g, i);
        c.datagram((i & 1) as usize, &d, i);
    }
    c.finish();
    assert!(c.stats.malformed > 0);
}

#[test]
fn handshake_bytes_are_bounded_per_direction() {
    let big = vec![0u8; 1000];
    let mut c = DtlsConn::default();
    // A 16 MiB message announced: refused, counted.
    let mut d = fragment_datagram(0, 11, 0, &big, 0, 1000);
    d[14..17].copy_from_slice(&[0xff, 0xff, 0xff]);
    c.datagram(1, &d, 0);
    // Messages of 1000 bytes up to the cap, then refused.
    for seq in 1..=80u16 {
        c.datagram(1, &fragment_datagram(0, 11, seq, &big, 0, 999), 0);
    }
    assert!(c.held() <= MAX_HANDSHAKE + 64 * 1024);
    c.finish();
    assert!(c.stats.dropped >= 1000, "{:?}", c.stats);
}

/// DTLS 1.3 (RFC 9147): the ServerHello keeps legacy_version 0xfefd and selects 0xfefc in
/// supported_versions; the rest is encrypted, so the flow is done at the ServerHello.
#[test]
fn dtls13_is_done_at_the_server_hello() {
    let (ty, seq, msg) = second_hello();
    let mut sh = vec![0xfe, 0xfd];
    sh.extend_from_slice(&[9; 32]);
    sh.extend_from_slice(&[0, 0x13, 0x01, 0, 0, 6, 0, 43, 0, 2, 0xfe, 0xfc]);
    let mut c = DtlsConn::default();
    c.datagram(0, &fragment_datagram(0, ty, seq, &msg, 0, msg.len()), 0);
    assert!(!c.done());
    c.datagram(1, &fragment_datagram(0, 2, 0, &sh, 0, sh.len()), 1);
    assert!(c.done());
    let got = c.tls[1].facts.server_hello.as_ref().expect("server hello");
    assert_eq!((got.negotiated_version(), got.cipher), (0xfefc, 0x1301));
    assert_eq!(crate::inspect::names::version_name(got.negotiated_version()), "DTLS 1.3");
}
