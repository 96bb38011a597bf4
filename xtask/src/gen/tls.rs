//! Generator TLS wire format: byte-exact records and handshake messages (RFC 5246 / 8446 /
//! 6101 layouts). Must never produce a length field that disagrees with what follows it.

pub const SSL3: u16 = 0x0300;
pub const TLS10: u16 = 0x0301;
pub const TLS11: u16 = 0x0302;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

pub const CT_CCS: u8 = 20;
pub const CT_ALERT: u8 = 21;
pub const CT_HANDSHAKE: u8 = 22;
pub const CT_APP: u8 = 23;

pub const MAX_FRAGMENT: usize = 16_384;

pub const X25519: u16 = 0x001d;
pub const SECP256R1: u16 = 0x0017;
pub const SECP384R1: u16 = 0x0018;
pub const X25519MLKEM768: u16 = 0x11ec;

/// Public key share sizes (client, server) per named group.
pub fn share_len(group: u16, server: bool) -> usize {
    match (group, server) {
        (X25519, _) => 32,
        (SECP256R1, _) => 65,
        (SECP384R1, _) => 97,
        (X25519MLKEM768, false) => 1184 + 32, // ML-KEM-768 encapsulation key + X25519
        (X25519MLKEM768, true) => 1088 + 32,  // ML-KEM-768 ciphertext + X25519
        _ => 32,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kx {
    Rsa,
    Dhe,
    Ecdhe,
    Tls13,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Auth {
    Rsa,
    Ecdsa,
    Any,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cipher {
    Gcm,
    Chacha,
    CbcSha,
    CbcSha256,
    Des3,
    Rc4Sha,
    Rc4Md5,
}

pub struct Suite {
    pub id: u16,
    pub kx: Kx,
    pub auth: Auth,
    pub cipher: Cipher,
    /// Lowest protocol version that may negotiate it.
    pub min: u16,
}

const fn s(id: u16, kx: Kx, auth: Auth, cipher: Cipher, min: u16) -> Suite {
    Suite { id, kx, auth, cipher, min }
}

use {Auth as A, Cipher as C, Kx as K};
pub const SUITES: &[Suite] = &[
    s(0x1301, K::Tls13, A::Any, C::Gcm, TLS13),
    s(0x1302, K::Tls13, A::Any, C::Gcm, TLS13),
    s(0x1303, K::Tls13, A::Any, C::Chacha, TLS13),
    s(0xc02b, K::Ecdhe, A::Ecdsa, C::Gcm, TLS12),
    s(0xc02c, K::Ecdhe, A::Ecdsa, C::Gcm, TLS12),
    s(0xc02f, K::Ecdhe, A::Rsa, C::Gcm, TLS12),
    s(0xc030, K::Ecdhe, A::Rsa, C::Gcm, TLS12),
    s(0xcca8, K::Ecdhe, A::Rsa, C::Chacha, TLS12),
    s(0xcca9, K::Ecdhe, A::Ecdsa, C::Chacha, TLS12),
    s(0xc027, K::Ecdhe, A::Rsa, C::CbcSha256, TLS12),
    s(0xc009, K::Ecdhe, A::Ecdsa, C::CbcSha, TLS10),
    s(0xc013, K::Ecdhe, A::Rsa, C::CbcSha, TLS10),
    s(0xc014, K::Ecdhe, A::Rsa, C::CbcSha, TLS10),
    s(0x009e, K::Dhe, A::Rsa, C::Gcm, TLS12),
    s(0x0033, K::Dhe, A::Rsa, C::CbcSha, SSL3),
    s(0x0016, K::Dhe, A::Rsa, C::Des3, SSL3),
    s(0x009c, K::Rsa, A::Rsa, C::Gcm, TLS12),
    s(0x009d, K::Rsa, A::Rsa, C::Gcm, TLS12),
    s(0x003c, K::Rsa, A::Rsa, C::CbcSha256, TLS12),
    s(0x002f, K::Rsa, A::Rsa, C::CbcSha, SSL3),
    s(0x0035, K::Rsa, A::Rsa, C::CbcSha, SSL3),
    s(0x000a, K::Rsa, A::Rsa, C::Des3, SSL3),
    s(0x0005, K::Rsa, A::Rsa, C::Rc4Sha, SSL3),
    s(0x0004, K::Rsa, A::Rsa, C::Rc4Md5, SSL3),
];

pub fn suite(id: u16) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.id == id)
}

/// Size on the wire of `n` plaintext bytes sealed under `suite` at `version`.
pub fn sealed_len(suite: &Suite, version: u16, n: usize) -> usize {
    let explicit_iv = version >= TLS11;
    let cbc = |block: usize, mac: usize| {
        let body = (n + mac + 1).div_ceil(block) * block;
        body + if explicit_iv { block } else { 0 }
    };
    if version >= TLS13 {
        return n + 1 + 16;
    }
    match suite.cipher {
        Cipher::Gcm => n + 8 + 16,
        Cipher::Chacha => n + 16,
        Cipher::CbcSha => cbc(16, 20),
        Cipher::CbcSha256 => cbc(16, 32),
        Cipher::Des3 => cbc(8, 20),
        Cipher::Rc4Sha => n + 20,
        Cipher::Rc4Md5 => n + 16,
    }
}

/// Reserves a big-endian length field of `width` bytes; pair with [`close`].
pub fn open(b: &mut Vec<u8>, width: usize) -> usize {
    let pos = b.len();
    b.resize(pos + width, 0);
    pos
}

/// Fills the length field reserved at `pos` with the number of bytes written after it.
pub fn close(b: &mut [u8], pos: usize, width: usize) {
    let n = b.len() - pos - width;
    assert!(width == 4 || n < 1 << (8 * width), "length {n} does not fit in {width} bytes");
    for i in 0..width {
        b[pos + i] = (n >> (8 * (width - 1 - i))) as u8;
    }
}

pub fn put16(b: &mut Vec<u8>, v: u16) {
    b.extend_from_slice(&v.to_be_bytes());
}

pub fn put16s(b: &mut Vec<u8>, vs: &[u16]) {
    for &v in vs {
        put16(b, v);
    }
}

/// Starts a handshake message of `typ`; returns the position for [`hs_close`].
pub fn hs_open(b: &mut Vec<u8>, typ: u8) -> usize {
    b.push(typ);
    open(b, 3)
}

pub fn hs_close(b: &mut [u8], pos: usize) {
    close(b, pos, 3);
}

/// Wraps `body` in records of content type `ct`, cutting after each offset in `cuts`
/// (ascending, inside `body`) and at the 2^14 fragment limit.
pub fn records(out: &mut Vec<u8>, ct: u8, version: u16, body: &[u8], cuts: &[usize]) {
    let mut start = 0;
    let mut cut_iter = cuts.iter().copied().filter(|&c| c > 0 && c < body.len());
    let mut next_cut = cut_iter.next();
    while start < body.len() {
        let mut end = body.len().min(start + MAX_FRAGMENT);
        while next_cut.is_some_and(|c| c <= start) {
            next_cut = cut_iter.next();
        }
        if let Some(c) = next_cut.filter(|&c| c <= end) {
            end = c;
            next_cut = cut_iter.next();
        }
        out.push(ct);
        put16(out, version);
        put16(out, (end - start) as u16);
        out.extend_from_slice(&body[start..end]);
        start = end;
    }
}

/// One record whose body is `len` opaque (encrypted-looking) bytes.
pub fn opaque_record(out: &mut Vec<u8>, ct: u8, version: u16, body: &[u8]) {
    assert!(body.len() <= MAX_FRAGMENT + 2048, "record body too long");
    out.push(ct);
    put16(out, version);
    put16(out, body.len() as u16);
    out.extend_from_slice(body);
}

pub fn change_cipher_spec(out: &mut Vec<u8>, version: u16) {
    out.extend_from_slice(&[CT_CCS]);
    put16(out, version);
    out.extend_from_slice(&[0, 1, 1]);
}

/// A plaintext alert record (fatal = level 2).
pub fn alert(out: &mut Vec<u8>, version: u16, level: u8, desc: u8) {
    out.push(CT_ALERT);
    put16(out, version);
    out.extend_from_slice(&[0, 2, level, desc]);
}

/// Certificate (type 11, TLS <= 1.2 layout): u24 list of u24-prefixed DER certificates.
pub fn certificate(b: &mut Vec<u8>, chain: &[&[u8]]) {
    let m = hs_open(b, 11);
    let l = open(b, 3);
    for der in chain {
        let c = open(b, 3);
        b.extend_from_slice(der);
        close(b, c, 3);
    }
    close(b, l, 3);
    hs_close(b, m);
}

/// The ServerKeyExchange signature tail: [SignatureScheme (TLS 1.2)] + u16 length + bytes.
fn ske_signature(b: &mut Vec<u8>, scheme: Option<u16>, sig: &[u8]) {
    if let Some(s) = scheme {
        put16(b, s);
    }
    put16(b, sig.len() as u16);
    b.extend_from_slice(sig);
}

/// ServerKeyExchange (type 12) for ECDHE: named_curve params + point + signature.
pub fn ske_ecdhe(b: &mut Vec<u8>, group: u16, point: &[u8], scheme: Option<u16>, sig: &[u8]) {
    let m = hs_open(b, 12);
    b.push(3); // named_curve
    put16(b, group);
    b.push(point.len() as u8);
    b.extend_from_slice(point);
    ske_signature(b, scheme, sig);
    hs_close(b, m);
}

/// ServerKeyExchange (type 12) for DHE: dh_p, dh_g, dh_Ys (u16-prefixed each) + signature.
pub fn ske_dhe(b: &mut Vec<u8>, p: &[u8], ys: &[u8], scheme: Option<u16>, sig: &[u8]) {
    let m = hs_open(b, 12);
    put16(b, p.len() as u16);
    b.extend_from_slice(p);
    b.extend_from_slice(&[0, 1, 2]); // g = 2
    put16(b, ys.len() as u16);
    b.extend_from_slice(ys);
    ske_signature(b, scheme, sig);
    hs_close(b, m);
}

pub fn server_hello_done(b: &mut Vec<u8>) {
    b.extend_from_slice(&[14, 0, 0, 0]);
}

/// ClientKeyExchange (type 16). RSA: u16-prefixed encrypted premaster, except SSLv3 which
/// sends it bare; ECDHE: u8-prefixed point; DHE: u16-prefixed Yc.
pub fn client_key_exchange(b: &mut Vec<u8>, kx: Kx, version: u16, key: &[u8]) {
    let m = hs_open(b, 16);
    match kx {
        Kx::Ecdhe => b.push(key.len() as u8),
        Kx::Rsa if version == SSL3 => {}
        _ => put16(b, key.len() as u16),
    }
    b.extend_from_slice(key);
    hs_close(b, m);
}

/// NewSessionTicket (type 4, RFC 5077): u32 lifetime hint + u16-prefixed ticket.
pub fn new_session_ticket(b: &mut Vec<u8>, ticket: &[u8]) {
    let m = hs_open(b, 4);
    b.extend_from_slice(&7200u32.to_be_bytes());
    put16(b, ticket.len() as u16);
    b.extend_from_slice(ticket);
    hs_close(b, m);
}
