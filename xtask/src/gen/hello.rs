//! Generator hellos: byte-exact ClientHello and ServerHello with their extensions.
//! Must never emit an extension whose length disagrees with its body.
use super::tls::{close, hs_close, hs_open, open, put16, put16s, TLS13};

pub struct ClientHello<'a> {
    pub legacy_version: u16,
    pub random: &'a [u8],
    pub session_id: &'a [u8],
    pub suites: &'a [u16],
    pub compression: &'a [u8],
    /// GREASE values (RFC 8701) for cipher, first/last extension, group, version; 0 = none.
    pub grease: [u16; 3],
    pub sni: Option<&'a str>,
    pub ems: bool,
    pub reneg_info: bool,
    pub groups: &'a [u16],
    pub ec_point_formats: bool,
    pub ticket: bool,
    pub alpn: &'a [&'a str],
    pub status_request: bool,
    pub sig_algs: &'a [u16],
    pub key_shares: &'a [(u16, &'a [u8])],
    pub psk_modes: bool,
    pub versions: &'a [u16],
    /// TLS 1.3 PSK (identity, binder): must be the last extension.
    pub psk: Option<(&'a [u8], &'a [u8])>,
}

fn ext_open(b: &mut Vec<u8>, typ: u16) -> usize {
    put16(b, typ);
    open(b, 2)
}

/// Appends a ClientHello handshake message (type 1) to `b`.
pub fn client_hello(b: &mut Vec<u8>, h: &ClientHello) {
    let m = hs_open(b, 1);
    put16(b, h.legacy_version);
    b.extend_from_slice(h.random);
    b.push(h.session_id.len() as u8);
    b.extend_from_slice(h.session_id);
    let p = open(b, 2);
    if h.grease[0] != 0 {
        put16(b, h.grease[0]);
    }
    put16s(b, h.suites);
    close(b, p, 2);
    b.push(h.compression.len() as u8);
    b.extend_from_slice(h.compression);
    let exts = open(b, 2);
    if h.grease[0] != 0 {
        let e = ext_open(b, h.grease[0]);
        close(b, e, 2);
    }
    if let Some(name) = h.sni {
        let e = ext_open(b, 0);
        let l = open(b, 2);
        b.push(0);
        put16(b, name.len() as u16);
        b.extend_from_slice(name.as_bytes());
        close(b, l, 2);
        close(b, e, 2);
    }
    if h.ems {
        let e = ext_open(b, 23);
        close(b, e, 2);
    }
    if h.reneg_info {
        let e = ext_open(b, 0xff01);
        b.push(0);
        close(b, e, 2);
    }
    if !h.groups.is_empty() {
        let e = ext_open(b, 10);
        let l = open(b, 2);
        if h.grease[1] != 0 {
            put16(b, h.grease[1]);
        }
        put16s(b, h.groups);
        close(b, l, 2);
        close(b, e, 2);
    }
    if h.ec_point_formats {
        let e = ext_open(b, 11);
        b.extend_from_slice(&[1, 0]);
        close(b, e, 2);
    }
    if h.ticket {
        let e = ext_open(b, 35);
        close(b, e, 2);
    }
    if !h.alpn.is_empty() {
        let e = ext_open(b, 16);
        let l = open(b, 2);
        for p in h.alpn {
            b.push(p.len() as u8);
            b.extend_from_slice(p.as_bytes());
        }
        close(b, l, 2);
        close(b, e, 2);
    }
    if h.status_request {
        let e = ext_open(b, 5);
        b.extend_from_slice(&[1, 0, 0, 0, 0]);
        close(b, e, 2);
    }
    if !h.sig_algs.is_empty() {
        let e = ext_open(b, 13);
        let l = open(b, 2);
        put16s(b, h.sig_algs);
        close(b, l, 2);
        close(b, e, 2);
    }
    if !h.key_shares.is_empty() {
        let e = ext_open(b, 51);
        let l = open(b, 2);
        if h.grease[1] != 0 {
            put16(b, h.grease[1]);
            put16(b, 1);
            b.push(0);
        }
        for (group, key) in h.key_shares {
            put16(b, *group);
            put16(b, key.len() as u16);
            b.extend_from_slice(key);
        }
        close(b, l, 2);
        close(b, e, 2);
    }
    if h.psk_modes {
        let e = ext_open(b, 45);
        b.extend_from_slice(&[1, 1]); // psk_dhe_ke
        close(b, e, 2);
    }
    if !h.versions.is_empty() {
        let e = ext_open(b, 43);
        let l = open(b, 1);
        if h.grease[2] != 0 {
            put16(b, h.grease[2]);
        }
        put16s(b, h.versions);
        close(b, l, 1);
        close(b, e, 2);
    }
    if h.grease[0] != 0 {
        let e = ext_open(b, h.grease[2]);
        b.push(0);
        close(b, e, 2);
    }
    if let Some((identity, binder)) = h.psk {
        let e = ext_open(b, 41);
        let ids = open(b, 2);
        put16(b, identity.len() as u16);
        b.extend_from_slice(identity);
        b.extend_from_slice(&0x0001_d4c0u32.to_be_bytes()); // obfuscated_ticket_age
        close(b, ids, 2);
        let bs = open(b, 2);
        b.push(binder.len() as u8);
        b.extend_from_slice(binder);
        close(b, bs, 2);
        close(b, e, 2);
    }
    if b.len() == exts + 2 {
        b.truncate(exts); // no extensions at all: omit the block (SSLv3 style)
    } else {
        close(b, exts, 2);
    }
    hs_close(b, m);
}

pub struct ServerHello<'a> {
    pub legacy_version: u16,
    pub random: &'a [u8],
    pub session_id: &'a [u8],
    pub suite: u16,
    pub compression: u8,
    pub reneg_info: bool,
    pub ems: bool,
    pub ec_point_formats: bool,
    pub ticket: bool,
    pub alpn: Option<&'a str>,
    /// TLS 1.3: supported_versions = 0x0304 and this key share.
    pub tls13_share: Option<(u16, &'a [u8])>,
    pub psk: bool,
}

/// Appends a ServerHello handshake message (type 2) to `b`.
pub fn server_hello(b: &mut Vec<u8>, h: &ServerHello) {
    let m = hs_open(b, 2);
    put16(b, h.legacy_version);
    b.extend_from_slice(h.random);
    b.push(h.session_id.len() as u8);
    b.extend_from_slice(h.session_id);
    put16(b, h.suite);
    b.push(h.compression);
    let exts = open(b, 2);
    if let Some((group, key)) = h.tls13_share {
        let e = ext_open(b, 51);
        put16(b, group);
        put16(b, key.len() as u16);
        b.extend_from_slice(key);
        close(b, e, 2);
        if h.psk {
            let e = ext_open(b, 41);
            put16(b, 0);
            close(b, e, 2);
        }
        let e = ext_open(b, 43);
        put16(b, TLS13);
        close(b, e, 2);
    }
    if h.reneg_info {
        let e = ext_open(b, 0xff01);
        b.push(0);
        close(b, e, 2);
    }
    if h.ems {
        let e = ext_open(b, 23);
        close(b, e, 2);
    }
    if h.ec_point_formats {
        let e = ext_open(b, 11);
        b.extend_from_slice(&[1, 0]);
        close(b, e, 2);
    }
    if h.ticket {
        let e = ext_open(b, 35);
        close(b, e, 2);
    }
    if let Some(p) = h.alpn {
        let e = ext_open(b, 16);
        let l = open(b, 2);
        b.push(p.len() as u8);
        b.extend_from_slice(p.as_bytes());
        close(b, l, 2);
        close(b, e, 2);
    }
    if b.len() == exts + 2 {
        b.truncate(exts);
    } else {
        close(b, exts, 2);
    }
    hs_close(b, m);
}
