//! Generator TLS sessions: turns a (client, server) pair into both sides' handshake bytes and a
//! TCP script — full and resumed handshakes for SSLv3 … TLS 1.3, failures, bulk, teardown.
//! Must never send bytes after ServerHello in TLS 1.3 other than CCS and opaque type-23 records.
use super::conn::{Act, Conn, Disorder};
use super::hello::{client_hello, server_hello, ClientHello, ServerHello};
use super::negotiate::{negotiate, Choice};
use super::rng::{Pool, Rng};
use super::tls::*;
use super::world::{Client, Server};

/// Counter slots (see `gen::KIND_NAMES`).
pub const K_SSL3: usize = 0;
pub const K_TLS13: usize = 4;
pub const K_FAILED: usize = 5;
pub const K_HTTP: usize = 6;

#[derive(Default)]
pub struct Built {
    pub pq: bool,
    pub resumed: bool,
    pub split: bool,
    pub disordered: bool,
}

fn kind_of(version: u16) -> usize {
    match version {
        SSL3 => K_SSL3,
        TLS10 => 1,
        TLS11 => 2,
        TLS12 => 3,
        _ => K_TLS13,
    }
}

/// Appends `len` bytes of `side`'s stream (already written to `conn.hs[side]` from `from`) as a Send act.
fn send(conn: &mut Conn, side: u8, from: usize, cuts: [u32; 2]) -> usize {
    let len = conn.hs[side as usize].len() - from;
    conn.script.push(Act::Send { side, len: len as u32, cuts });
    conn.hs[side as usize].len()
}

pub fn tls(conn: &mut Conn, c: &Client, s: &Server, rng: &mut Rng, pool: &Pool, m: &mut Vec<u8>) -> Built {
    let (cp, sp, chain) = (c.profile, s.profile, s.chain);
    let mut out = Built::default();
    let how = Choice { prefs: &s.prefs, client_order: s.client_order, chain, deflate: s.deflate };
    let neg = negotiate(cp, sp, &how);
    let version = neg.as_ref().map_or(0, |n| n.version);
    let resumed12 = neg.is_ok() && version <= TLS12 && rng.chance(120);
    let resumed13 = neg.is_ok() && version == TLS13 && cp.ticket && rng.chance(200);
    out.resumed = resumed12 || resumed13;

    // ClientHello.
    let grease = if cp.grease {
        let g = |k: u64| 0x0a0a + 0x1010 * k as u16;
        let k0 = rng.below(16);
        [g(k0), g(rng.below(16)), g((k0 + 1 + rng.below(15)) % 16)]
    } else {
        [0; 3]
    };
    let mut shares: [(u16, &[u8]); 2] = [(0, &[]); 2];
    for (slot, &g) in shares.iter_mut().zip(cp.shares) {
        *slot = (g, pool.bytes(rng, share_len(g, false)));
    }
    let sid = pool.bytes(rng, if resumed12 { 32 } else { cp.session_id_len });
    let ch = ClientHello {
        legacy_version: cp.legacy_version,
        random: pool.bytes(rng, 32),
        session_id: sid,
        suites: cp.suites,
        compression: cp.compression,
        grease,
        sni: cp.sni.then_some(s.name.as_str()),
        ems: cp.ems,
        reneg_info: cp.reneg_info,
        groups: cp.groups,
        ec_point_formats: cp.ec_point_formats,
        ticket: cp.ticket,
        alpn: cp.alpn,
        status_request: cp.status_request,
        sig_algs: cp.sig_algs,
        key_shares: &shares[..cp.shares.len().min(2)],
        psk_modes: cp.versions.contains(&TLS13),
        versions: cp.versions,
        psk: resumed13.then(|| (pool.bytes(rng, 186), pool.bytes(rng, 32))),
    };
    m.clear();
    client_hello(m, &ch);
    let hello_len = m.len();
    // A few hellos in two records, cut inside the handshake message.
    let rec_cut = if hello_len > 120 && rng.chance(15) { rng.range(40, hello_len as u64 - 40) as usize } else { 0 };
    records(&mut conn.hs[0], CT_HANDSHAKE, cp.record_version, m, &[rec_cut]);
    let wire = conn.hs[0].len() as u64;
    // A few hellos deliberately split across 2-3 TCP segments.
    let cuts = match rng.below(1000) {
        0..=14 => [5, 0], // the record header alone first
        15..=29 => [rng.range(6, wire - 6) as u32, 0],
        30..=39 => {
            let a = rng.range(6, wire / 2);
            [a as u32, rng.range(a + 1, wire - 1) as u32]
        }
        _ => [0, 0],
    };
    out.split = cuts[0] != 0 || wire > conn.mss as u64;
    out.pq = ch.key_shares.iter().any(|(g, _)| *g == X25519MLKEM768);
    if cuts[0] != 0 && rng.chance(300) {
        conn.force_swap = true;
    }
    if rng.chance(40) {
        conn.disorder = Disorder { swap: 30, retransmit: 20 };
    }
    out.disordered = conn.force_swap || conn.disorder.swap > 0;
    conn.script.extend_from_slice(&[Act::Syn, Act::SynAck, Act::Ack]);
    let mut c_at = send(conn, 0, 0, cuts);

    let n = match neg {
        Ok(n) => n,
        Err(desc) => {
            alert(&mut conn.hs[1], cp.record_version, 2, desc);
            send(conn, 1, 0, [0, 0]);
            conn.script.extend_from_slice(&[Act::Fin { side: 1 }, Act::Fin { side: 0 }, Act::AckFrom { side: 1 }]);
            conn.kind = K_FAILED;
            out.pq = false;
            return out;
        }
    };
    conn.kind = kind_of(version);
    let st = n.suite;
    let rec_version = version.min(TLS12);
    let tls13 = version == TLS13;
    let server_share = if tls13 { Some((n.group, pool.bytes(rng, share_len(n.group, true)))) } else { None };
    out.pq = n.group == X25519MLKEM768;
    let legacy = version == SSL3;
    let offers_reneg = cp.reneg_info || cp.suites.contains(&0x00ff);
    let sh = ServerHello {
        legacy_version: rec_version,
        random: pool.bytes(rng, 32),
        session_id: if tls13 || resumed12 { sid } else { pool.bytes(rng, 32) },
        suite: st.id,
        compression: n.compression,
        reneg_info: !tls13 && !legacy && s.reneg && offers_reneg,
        ems: !tls13 && !legacy && sp.ems && cp.ems,
        ec_point_formats: st.kx == Kx::Ecdhe && cp.ec_point_formats,
        ticket: !tls13 && !legacy && !resumed12 && sp.ticket && cp.ticket,
        alpn: if tls13 { None } else { n.alpn },
        tls13_share: server_share,
        psk: resumed13,
    };
    m.clear();
    server_hello(m, &sh);
    let mut bounds = [0usize; 4];
    bounds[0] = m.len();
    let fin_plain = if legacy { 40 } else { 16 };
    let hash = if st.id == 0x1302 { 48 } else { 32 };

    if tls13 {
        records(&mut conn.hs[1], CT_HANDSHAKE, TLS12, m, &[]);
        if !sid.is_empty() {
            change_cipher_spec(&mut conn.hs[1], TLS12);
        }
        // EncryptedExtensions, Certificate, CertificateVerify, Finished: sizes only, all opaque.
        let ee = 6 + n.alpn.map_or(0, |p| 7 + p.len());
        let (cert, cv) = if resumed13 {
            (0, 0)
        } else {
            (8 + chain.certs.iter().map(|d| 5 + d.len()).sum::<usize>(), 8 + chain.sig_len())
        };
        let msgs = [ee, cert, cv, 4 + hash];
        if s.pack {
            let len = msgs.iter().sum::<usize>() + 17;
            opaque_record(&mut conn.hs[1], CT_APP, TLS12, pool.bytes(rng, len));
        } else {
            for len in msgs.into_iter().filter(|&l| l > 0) {
                opaque_record(&mut conn.hs[1], CT_APP, TLS12, pool.bytes(rng, len + 17));
            }
        }
        let mut s_at = send(conn, 1, 0, [0, 0]);
        if !sid.is_empty() {
            change_cipher_spec(&mut conn.hs[0], TLS12);
        }
        opaque_record(&mut conn.hs[0], CT_APP, TLS12, pool.bytes(rng, 4 + hash + 17));
        c_at = send(conn, 0, c_at, [0, 0]);
        if sh.psk || cp.ticket {
            // Two NewSessionTickets, encrypted.
            for _ in 0..2 {
                opaque_record(&mut conn.hs[1], CT_APP, TLS12, pool.bytes(rng, 4 + 4 + 4 + 9 + 2 + 192 + 2 + 17));
            }
            s_at = send(conn, 1, s_at, [0, 0]);
        }
        let _ = s_at;
    } else if resumed12 {
        records(&mut conn.hs[1], CT_HANDSHAKE, rec_version, m, &[]);
        change_cipher_spec(&mut conn.hs[1], rec_version);
        opaque_record(&mut conn.hs[1], CT_HANDSHAKE, rec_version, pool.bytes(rng, sealed_len(st, version, fin_plain)));
        send(conn, 1, 0, [0, 0]);
        change_cipher_spec(&mut conn.hs[0], rec_version);
        opaque_record(&mut conn.hs[0], CT_HANDSHAKE, rec_version, pool.bytes(rng, sealed_len(st, version, fin_plain)));
        c_at = send(conn, 0, c_at, [0, 0]);
    } else {
        let chain_refs: [&[u8]; 2] = [chain.certs[0], chain.certs.get(1).copied().unwrap_or(&[])];
        certificate(m, &chain_refs[..chain.certs.len()]);
        bounds[1] = m.len();
        let scheme = (version == TLS12).then_some(if chain.ec { 0x0403 } else { 0x0804 });
        let sig = pool.bytes(rng, chain.sig_len());
        let mut p = [0u8; 256];
        let pn = sp.dhe_bytes.min(256);
        match st.kx {
            Kx::Ecdhe => ske_ecdhe(m, n.group, pool.bytes(rng, share_len(n.group, true)), scheme, sig),
            Kx::Dhe => {
                p[..pn].copy_from_slice(pool.bytes(rng, pn));
                p[0] |= 0x80;
                p[pn - 1] |= 1;
                ske_dhe(m, &p[..pn], pool.bytes(rng, pn), scheme, sig);
            }
            _ => {}
        }
        bounds[2] = m.len();
        server_hello_done(m);
        let cut_at: &[usize] = if s.pack { &[] } else { &bounds[..3] };
        records(&mut conn.hs[1], CT_HANDSHAKE, rec_version, m, cut_at);
        let mut s_at = send(conn, 1, 0, [0, 0]);

        m.clear();
        let key = match st.kx {
            Kx::Rsa => pool.bytes(rng, chain.rsa_bytes),
            Kx::Dhe => pool.bytes(rng, pn),
            _ => pool.bytes(rng, share_len(n.group, false)),
        };
        client_key_exchange(m, st.kx, version, key);
        records(&mut conn.hs[0], CT_HANDSHAKE, rec_version, m, &[]);
        change_cipher_spec(&mut conn.hs[0], rec_version);
        opaque_record(&mut conn.hs[0], CT_HANDSHAKE, rec_version, pool.bytes(rng, sealed_len(st, version, fin_plain)));
        c_at = send(conn, 0, c_at, [0, 0]);

        if sh.ticket {
            m.clear();
            let tl = rng.range(160, 220) as usize;
            new_session_ticket(m, pool.bytes(rng, tl));
            records(&mut conn.hs[1], CT_HANDSHAKE, rec_version, m, &[]);
        }
        change_cipher_spec(&mut conn.hs[1], rec_version);
        opaque_record(&mut conn.hs[1], CT_HANDSHAKE, rec_version, pool.bytes(rng, sealed_len(st, version, fin_plain)));
        s_at = send(conn, 1, s_at, [0, 0]);
        let _ = s_at;
    }

    // Application data: request/response rounds, mostly server → client.
    let plain = match rng.below(10) {
        0 => 1369,
        1 | 2 => 4096,
        _ => MAX_FRAGMENT,
    };
    let max_body = sealed_len(st, version, plain);
    for r in &mut conn.rec {
        r.set(false, CT_APP, rec_version, max_body);
    }
    let req_len = |rng: &mut Rng| sealed_len(st, version, rng.range(60, 700) as usize) as u64 + 5;
    plan_bulk(conn, rng, req_len);

    // close_notify from the client, then FIN/ACK (or a server RST).
    if tls13 {
        opaque_record(&mut conn.hs[0], CT_APP, TLS12, pool.bytes(rng, 2 + 17));
    } else {
        opaque_record(&mut conn.hs[0], CT_ALERT, rec_version, pool.bytes(rng, sealed_len(st, version, 2)));
    }
    send(conn, 0, c_at, [0, 0]);
    if rng.chance(40) {
        conn.script.push(Act::Rst { side: 1 });
    } else {
        conn.script.extend_from_slice(&[Act::Fin { side: 0 }, Act::Fin { side: 1 }, Act::AckFrom { side: 0 }]);
    }
    out
}

/// Adds request/response Bulk acts: a log-uniform total (a few huge transfers), some uploads.
pub fn plan_bulk(conn: &mut Conn, rng: &mut Rng, mut req_len: impl FnMut(&mut Rng) -> u64) {
    let total = if rng.chance(10) { rng.range(2_000_000, 20_000_000) } else { rng.log_uniform(500, 600_000) };
    let upload = rng.chance(80);
    let rounds = 1 + rng.below((total / 40_000).clamp(1, 8));
    for _ in 0..rounds {
        let (req, resp) = (req_len(rng), (total / rounds).max(64));
        if upload {
            conn.script.push(Act::Bulk { side: 0, bytes: resp });
            conn.script.push(Act::Bulk { side: 1, bytes: req });
        } else {
            conn.script.push(Act::Bulk { side: 0, bytes: req });
            conn.script.push(Act::Bulk { side: 1, bytes: resp });
        }
    }
}
