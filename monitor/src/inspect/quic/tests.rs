//! QUIC Initial tests: the RFC 9001 and RFC 9369 Appendix A sample packets, a CRYPTO stream
//! split across three Initials in every order, coalesced packets, Retry, garbage.
use super::*;

fn unhex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// RFC 9001 A.1 / RFC 9369 A.1: the client's Destination Connection ID.
const DCID: &str = "8394c8f03e515708";

/// RFC 9001 A.2 (also RFC 9369 A.2): the client's CRYPTO frame (a ClientHello for
/// example.com), padded to a 1162-byte payload.
fn client_payload() -> Vec<u8> {
    let mut p = unhex(
        "060040f1010000ed0303ebf8fa56f12939b9584a3896472ec40bb863cfd3e868
         04fe3a47f06a2b69484c00000413011302010000c000000010000e00000b6578
         616d706c652e636f6dff01000100000a00080006001d00170018001000070005
         04616c706e000500050100000000003300260024001d00209370b2c9caa47fba
         baf4559fedba753de171fa71f50f1ce15d43e994ec74d748002b000302030400
         0d0010000e0403050306030203080408050806002d00020101001c0002400100
         3900320408ffffffffffffffff05048000ffff07048000ffff08011001048000
         75300901100f088394c8f03e51570806048000ffff",
    );
    p.resize(1162, 0);
    p
}

/// Protect a packet as a sender would (rustls: AEAD, then header protection), for tests.
fn protect(keys: &rustls::quic::DirectionalKeys, header: &[u8], payload: &[u8], pn: u64) -> Vec<u8> {
    let mut header = header.to_vec();
    let mut body = payload.to_vec();
    let tag = keys.packet.encrypt_in_place(pn, &header, &mut body).expect("seal");
    body.extend_from_slice(tag.as_ref());
    let pn_len = usize::from(header[0] & 3) + 1;
    let pn_at = header.len() - pn_len;
    let sample_at = 4 - pn_len;
    let (first, rest) = header.split_at_mut(1);
    keys.header
        .encrypt_in_place(&body[sample_at..sample_at + 16], &mut first[0], &mut rest[pn_at - 1..])
        .expect("mask");
    header.extend_from_slice(&body);
    header
}

fn client_initial(version: u32) -> Vec<u8> {
    let header = match version {
        packet::V1 => unhex("c300000001088394c8f03e5157080000449e00000002"),
        _ => unhex("d36b3343cf088394c8f03e5157080000449e00000002"),
    };
    let keys = InitialKeys::new(version, &unhex(DCID)).expect("keys");
    protect(keys.side(true), &header, &client_payload(), 2)
}

#[test]
fn rfc9001_a2_client_initial() {
    let pkt = client_initial(packet::V1);
    assert_eq!(pkt.len(), 1200);
    // The protected packet as RFC 9001 A.2 prints it (its first 80 bytes): the header mask
    // 437b9aec36 and the sample d1b1c98d... come from the client's key, iv and hp.
    let want = unhex(
        "c000000001088394c8f03e5157080000449e7b9aec34d1b1c98dd7689fb8ec11
         d242b123dc9bd8bab936b47d92ec356c0bab7df5976d27cd449f63300099f399
         1c260ec4c60d17b31f8429157bb35a12",
    );
    assert_eq!(&pkt[..want.len()], &want[..]);
    let mut q = QuicConn::default();
    q.datagram(1, &pkt, 7);
    assert_eq!(q.client, Some(1));
    assert_eq!(q.facts.version, Some(packet::V1));
    let ch = q.tls[1].facts.client_hello.as_ref().expect("ClientHello");
    assert_eq!(ch.sni.as_deref(), Some("example.com"));
    assert_eq!(ch.ciphers, [0x1301, 0x1302]);
    assert_eq!(ch.alpn, [b"alpn".to_vec()]);
    assert_eq!(ch.key_share_groups, [0x001d]);
    assert_eq!(q.stats.initials, 1);
}

#[test]
fn rfc9001_a3_server_initial() {
    let server = unhex(
        "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a
         5816b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3
         dbcba3f6ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84
         022f8ef4cdd93795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc4
         2158407dd074ee",
    );
    // The server's packet comes first (captured out of order): kept until the client is known.
    let mut q = QuicConn::default();
    q.datagram(0, &server, 1);
    assert_eq!(q.client, None);
    q.datagram(1, &client_initial(packet::V1), 2);
    assert_eq!(q.client, Some(1));
    let sh = q.tls[0].facts.server_hello.as_ref().expect("ServerHello");
    assert_eq!((sh.cipher, sh.negotiated_version(), sh.key_share_group), (0x1301, 0x0304, Some(0x001d)));
    assert!(q.done());
    assert_eq!((q.stats.initials, q.stats.undecryptable), (2, 0));
}

#[test]
fn rfc9369_a2_a3_v2_initials() {
    let pkt = client_initial(packet::V2);
    // RFC 9369 A.2: sample ffe67b6a..., mask 94a0c95e80, protected header d76b3343cf...a0c95e82.
    let want = unhex(
        "d76b3343cf088394c8f03e5157080000449ea0c95e82ffe67b6abcdb4298b485
         dd04de806071bf03dceebfa162e75d6c96058bdbfb127cdfcbf903388e99ad04
         9f9a3dd4425ae4d0992cfff18ecf0fdb5a842d09747052f17ac2053d21f57c5d",
    );
    assert_eq!(&pkt[..want.len()], &want[..]);
    // RFC 9369 A.3: the server's Initial (v2 packet type bits, quicv2 labels).
    let server = unhex(
        "dc6b3343cf0008f067a5502a4262b5004075d92faaf16f05d8a4398c47089698
         baeea26b91eb761d9b89237bbf87263017915358230035f7fd3945d88965cf17
         f9af6e16886c61bfc703106fbaf3cb4cfa52382dd16a393e42757507698075b2
         c984c707f0a0812d8cd5a6881eaf21ceda98f4bd23f6fe1a3e2c43edd9ce7ca8
         4bed8521e2e140",
    );
    let mut q = QuicConn::default();
    q.datagram(0, &pkt, 1);
    q.datagram(1, &server, 2);
    assert_eq!(q.facts.version, Some(packet::V2));
    assert_eq!(q.tls[0].facts.client_hello.as_ref().and_then(|c| c.sni.as_deref()), Some("example.com"));
    assert_eq!(q.tls[1].facts.server_hello.as_ref().map(|s| s.cipher), Some(0x1301));
    assert!(q.done());
}

/// A post-quantum-sized ClientHello (X25519MLKEM768 key share, 1216 + 32 bytes of keys) as
/// one handshake message.
fn big_client_hello() -> Vec<u8> {
    let ext = |ty: u16, body: &[u8]| {
        let mut e = ty.to_be_bytes().to_vec();
        e.extend_from_slice(&(body.len() as u16).to_be_bytes());
        e.extend_from_slice(body);
        e
    };
    let mut exts = ext(0, &[0, 13, 0, 0, 10, b'p', b'q', b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e']);
    exts.extend(ext(0x2b, &[2, 3, 4]));
    exts.extend(ext(0x0a, &[0, 4, 0x11, 0xec, 0, 0x1d]));
    let mut ks = Vec::new();
    for (g, n) in [(0x11ecu16, 1216usize), (0x001d, 32)] {
        ks.extend_from_slice(&g.to_be_bytes());
        ks.extend_from_slice(&(n as u16).to_be_bytes());
        ks.extend(std::iter::repeat_n(0x5a, n));
    }
    let mut share = (ks.len() as u16).to_be_bytes().to_vec();
    share.extend(ks);
    exts.extend(ext(0x33, &share));
    exts.extend(ext(0x10, &[0, 3, 2, b'h', b'3']));
    exts.extend(ext(0x0d, &[0, 4, 4, 3, 8, 4]));
    exts.extend(ext(0x39, &[1, 2, 0x40, 0x64]));
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x11; 32]);
    body.extend_from_slice(&[0, 0, 6, 0x13, 1, 0x13, 2, 0x13, 3, 1, 0]);
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend(exts);
    let mut msg = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    msg.extend(body);
    msg
}

/// One client Initial carrying `frames` (padded to 1200 bytes), packet number `pn`.
fn initial_with(keys: &InitialKeys, frames: &[u8], pn: u8) -> Vec<u8> {
    let mut payload = frames.to_vec();
    payload.resize(1200 - 26 - 16, 0);
    let len = (payload.len() + 16 + 1) as u16 | 0x4000;
    let mut header = vec![0xc0, 0, 0, 0, 1, 8];
    header.extend_from_slice(&keys.dcid);
    header.extend_from_slice(&[0, 0]);
    header.extend_from_slice(&len.to_be_bytes());
    header.push(pn);
    protect(keys.side(true), &header, &payload, u64::from(pn))
}

fn crypto_frame(offset: usize, data: &[u8]) -> Vec<u8> {
    let mut f = vec![6, 0x40 | (offset >> 8) as u8, offset as u8, 0x40 | (data.len() >> 8) as u8, data.len() as u8];
    f.extend_from_slice(data);
    f
}

#[test]
fn crypto_split_across_three_initials_in_every_order() {
    let hello = big_client_hello();
    assert!(hello.len() > 1300, "more than one Initial holds: {}", hello.len());
    let keys = InitialKeys::new(packet::V1, &unhex(DCID)).expect("keys");
    let cuts = [0, 500, 1000, hello.len()];
    let packets: Vec<Vec<u8>> =
        (0..3).map(|i| initial_with(&keys, &crypto_frame(cuts[i], &hello[cuts[i]..cuts[i + 1]]), i as u8)).collect();
    let whole = crate::inspect::tls::hello::parse_client_hello(&hello[4..]).expect("parses");
    assert_eq!(whole.key_share_groups, [0x11ec, 0x001d]);
    for order in [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] {
        let mut q = QuicConn::default();
        for i in order {
            q.datagram(0, &packets[i], 1 + i as u64);
        }
        assert_eq!(q.tls[0].facts.client_hello.as_ref(), Some(&whole), "order {order:?}");
        assert_eq!(q.stats.undecryptable, 0, "order {order:?}");
    }
    // Two of the three packets coalesced in one datagram, the third later.
    let mut q = QuicConn::default();
    q.datagram(0, &[packets[2].clone(), packets[0].clone()].concat(), 1);
    assert!(q.tls[0].facts.client_hello.is_none());
    q.datagram(0, &packets[1], 2);
    assert_eq!(q.tls[0].facts.client_hello.as_ref(), Some(&whole));
}

#[test]
fn retry_gives_new_keys() {
    let keys = InitialKeys::new(packet::V1, &unhex(DCID)).expect("keys");
    let hello = big_client_hello();
    let mut q = QuicConn::default();
    q.datagram(0, &initial_with(&keys, &crypto_frame(0, &hello[..900]), 0), 1);
    // Retry from the server: SCID 0xf067a5502a4262b5, token "token", a 16-byte tag.
    let mut retry = unhex("f0000000010008f067a5502a4262b5");
    retry.extend_from_slice(b"token");
    retry.extend_from_slice(&[0xaa; 16]);
    q.datagram(1, &retry, 2);
    assert!(q.facts.retry);
    // The client starts over with the Retry's SCID as DCID.
    let keys2 = InitialKeys::new(packet::V1, &unhex("f067a5502a4262b5")).expect("keys");
    q.datagram(0, &initial_with(&keys2, &crypto_frame(0, &hello[..900]), 1), 3);
    q.datagram(0, &initial_with(&keys2, &crypto_frame(900, &hello[900..]), 2), 4);
    assert!(q.tls[0].facts.client_hello.is_some());
    assert_eq!(q.stats.undecryptable, 0);
}

#[test]
fn version_negotiation_and_garbage_never_panic() {
    let mut q = QuicConn::default();
    q.datagram(0, &client_initial(packet::V1), 1);
    let mut vn = unhex("80000000000008f067a5502a4262b5"); // no DCID, an 8-byte SCID
    vn.extend_from_slice(&[0xff, 0, 0, 0x1d, 0, 0, 0, 1]);
    q.datagram(1, &vn, 2);
    assert!(q.stats.version_negotiations == 1);
    let mut x: u32 = 3;
    let good = client_initial(packet::V1);
    for n in 0..1300 {
        // Truncated and corrupted copies of a real Initial, and random bytes.
        let mut bad = good[..n.min(good.len())].to_vec();
        if n < good.len() && !bad.is_empty() {
            let i = n * 7 % bad.len();
            bad[i] ^= 0x20;
        }
        let rand: Vec<u8> = (0..n % 97)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let mut q = QuicConn::default();
        q.datagram(0, &bad, 1);
        q.datagram(1, &rand, 2);
        let mut with_header = vec![0xc0, 0, 0, 0, 1];
        with_header.extend_from_slice(&rand);
        q.datagram(1, &with_header, 3);
        q.finish();
    }
}

#[test]
fn crypto_cut_at_every_offset_gives_the_same_hello() {
    // Split-anywhere, QUIC flavour: the ClientHello cut at every offset both pieces fit an
    // Initial, the pieces sent in either order.
    let hello = big_client_hello();
    let whole = crate::inspect::tls::hello::parse_client_hello(&hello[4..]).expect("parses");
    let keys = InitialKeys::new(packet::V1, &unhex(DCID)).expect("keys");
    let room = 1200 - 26 - 16 - 5;
    for cut in hello.len() - room..=room {
        let a = initial_with(&keys, &crypto_frame(0, &hello[..cut]), 0);
        let b = initial_with(&keys, &crypto_frame(cut, &hello[cut..]), 1);
        for (first, second) in [(&a, &b), (&b, &a)] {
            let mut q = QuicConn::default();
            q.datagram(0, first, 1);
            q.datagram(0, second, 2);
            assert_eq!(q.tls[0].facts.client_hello.as_ref(), Some(&whole), "cut at {cut}");
        }
    }
}
