//! Test capture `tls/cert-expiring-7d.pcap` (written by `cargo xtask test`): one clean TLS 1.2
//! ECDHE-ECDSA-AES128-GCM handshake whose leaf certificate expires 2025-06-05, under 3 days
//! after the packet time (2025-06-02 08:00), so `tlsmon_certificates_expiring{within="7d"}`
//! has a server to count. Must never read the clock or OS randomness: same bytes every run.
//!
//! Included from `test.rs` with `#[path]` (the `gen` module keeps its parts private).
use std::io;

use crate::gen::hello::{client_hello, server_hello, ClientHello, ServerHello};
use crate::gen::pcap::{Endpoints, Ips, PcapWriter, Seg, ACK, FIN, PSH, SYN};
use crate::gen::tls::{
    certificate, change_cipher_spec, client_key_exchange, opaque_record, records, server_hello_done, ske_ecdhe, Kx,
    CT_APP, CT_HANDSHAKE, SECP256R1, TLS10, TLS12, X25519,
};
use crate::gen::START_US;

/// Leaf CN/SAN ris.hospital.example, EC P-256, valid 2025-03-06 .. 2025-06-05, issued by
/// "Hospital Example Lab CA" (`certs/make-certs.sh expiring-7d`).
const LEAF: &[u8] = include_bytes!("certs/expiring-7d.der");
const LAB_CA: &[u8] = include_bytes!("certs/lab-ca.der");

pub const FILE: &str = "cert-expiring-7d.pcap";
const SNI: &str = "ris.hospital.example";
const MSS: usize = 1448;

/// Deterministic filler bytes (randoms, key shares, ciphertext).
fn bytes(n: usize, k: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(37).wrapping_add(k) ^ 0x5c).collect()
}

/// The client's and the server's TLS byte streams, flight by flight.
fn flights() -> [(usize, Vec<u8>); 4] {
    let random = bytes(32, 1);
    let share = bytes(32, 2);
    let ch = ClientHello {
        legacy_version: TLS12,
        random: &random,
        session_id: &[],
        suites: &[0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8],
        compression: &[0],
        grease: [0; 3],
        sni: Some(SNI),
        ems: true,
        reneg_info: true,
        groups: &[X25519, SECP256R1],
        ec_point_formats: true,
        ticket: false,
        alpn: &["http/1.1"],
        status_request: false,
        sig_algs: &[0x0403, 0x0804, 0x0401],
        key_shares: &[],
        psk_modes: false,
        versions: &[],
        psk: None,
    };
    let mut m = Vec::new();
    client_hello(&mut m, &ch);
    let mut c1 = Vec::new();
    records(&mut c1, CT_HANDSHAKE, TLS10, &m, &[]);

    let sid = bytes(32, 3);
    let srandom = bytes(32, 4);
    let sh = ServerHello {
        legacy_version: TLS12,
        random: &srandom,
        session_id: &sid,
        suite: 0xc02b,
        compression: 0,
        reneg_info: true,
        ems: true,
        ec_point_formats: true,
        ticket: false,
        alpn: Some("http/1.1"),
        tls13_share: None,
        psk: false,
    };
    m.clear();
    server_hello(&mut m, &sh);
    certificate(&mut m, &[LEAF, LAB_CA]);
    ske_ecdhe(&mut m, X25519, &bytes(32, 5), Some(0x0403), &bytes(71, 6));
    server_hello_done(&mut m);
    let mut s1 = Vec::new();
    records(&mut s1, CT_HANDSHAKE, TLS12, &m, &[]);

    m.clear();
    client_key_exchange(&mut m, Kx::Ecdhe, TLS12, &share);
    let mut c2 = Vec::new();
    records(&mut c2, CT_HANDSHAKE, TLS12, &m, &[]);
    change_cipher_spec(&mut c2, TLS12);
    // Finished (16 bytes) sealed with AES-128-GCM: 8-byte explicit nonce + 16-byte tag.
    opaque_record(&mut c2, CT_HANDSHAKE, TLS12, &bytes(16 + 24, 7));
    opaque_record(&mut c2, CT_APP, TLS12, &bytes(180 + 24, 8));

    let mut s2 = Vec::new();
    change_cipher_spec(&mut s2, TLS12);
    opaque_record(&mut s2, CT_HANDSHAKE, TLS12, &bytes(16 + 24, 9));
    opaque_record(&mut s2, CT_APP, TLS12, &bytes(900 + 24, 10));
    [(0, c1), (1, s1), (0, c2), (1, s2)]
}

/// The whole capture: TCP handshake, the TLS flights (MSS-sized segments, each flight ACKed),
/// FIN teardown, 2 ms apart from 2025-06-02 08:00:00 UTC.
pub fn capture() -> io::Result<Vec<u8>> {
    let ep = Endpoints {
        vlan: 0,
        mac: [[0x02, 0x7d, 0, 0, 0, 0x21], [0x02, 0x7d, 0, 0, 1, 0x05]],
        ips: Ips::V4 { client: [10, 78, 0, 33], server: [10, 78, 1, 5] },
        port: [51_234, 443],
        ttl: [64, 64],
    };
    let mut w = PcapWriter::new(Vec::with_capacity(8_192))?;
    let mut t = START_US;
    let mut next = [0x4c1d_2e00u32, 0x9a3b_7100u32];
    let mut ip_id = [0x2200u16, 0x6600u16];
    let mut pkt = |side: usize, flags: u8, payload: &[u8]| -> io::Result<()> {
        t += 2_000;
        let ms = (t / 1_000) as u32;
        let seg = Seg {
            side,
            seq: next[side],
            ack: if flags & ACK != 0 { next[1 - side] } else { 0 },
            flags,
            ip_id: ip_id[side],
            tsval: ms,
            tsecr: if flags == SYN { 0 } else { ms.wrapping_sub(2) },
            payload,
        };
        ip_id[side] = ip_id[side].wrapping_add(1);
        next[side] = next[side].wrapping_add(payload.len() as u32 + u32::from(flags & (SYN | FIN) != 0));
        w.tcp(t, &ep, &seg)
    };
    pkt(0, SYN, &[])?;
    pkt(1, SYN | ACK, &[])?;
    pkt(0, ACK, &[])?;
    for (side, data) in flights() {
        let chunks: Vec<&[u8]> = data.chunks(MSS).collect();
        for (i, c) in chunks.iter().enumerate() {
            pkt(side, if i + 1 == chunks.len() { PSH | ACK } else { ACK }, c)?;
        }
        pkt(1 - side, ACK, &[])?;
    }
    pkt(0, FIN | ACK, &[])?;
    pkt(1, FIN | ACK, &[])?;
    pkt(0, ACK, &[])?;
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_deterministic_and_carries_the_chain() {
        let (a, b) = (capture().unwrap(), capture().unwrap());
        assert!(a == b, "two runs differ");
        let has = |needle: &[u8]| a.windows(needle.len()).any(|w| w == needle);
        // The leaf is 512 bytes: it fits one segment with the ServerHello, so it is contiguous.
        assert!(has(LEAF) && has(LAB_CA) && has(SNI.as_bytes()));
        assert_eq!(&a[..4], &0xa1b2_c3d4u32.to_le_bytes());
    }
}
