//! Inspect, TLS hellos: ClientHello (TLS and SSLv2-compatible), ServerHello, HelloRetryRequest.
//! Parses with tls-parser; must never panic on malformed input, only return `None`.
use tls_parser::{
    parse_tls_client_hello_extension, parse_tls_handshake_client_hello, parse_tls_handshake_server_hello,
    parse_tls_server_hello_extension, TlsExtension,
};

pub const EXT_SNI: u16 = 0x0000;
pub const EXT_ALPN: u16 = 0x0010;
pub const EXT_SUPPORTED_VERSIONS: u16 = 0x002b;
pub const EXT_KEY_SHARE: u16 = 0x0033;
pub const EXT_RENEGOTIATION_INFO: u16 = 0xff01;
pub const EXT_ECH: u16 = 0xfe0d;
pub const SCSV_RENEGO: u16 = 0x00ff;
pub const SCSV_FALLBACK: u16 = 0x5600;

/// SHA-256("HelloRetryRequest"): the ServerHello random that marks an HRR (RFC 8446 §4.1.3).
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11,
    0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// GREASE values (RFC 8701): 0x?a?a with both bytes equal.
pub fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// The facts of one ClientHello.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientHello {
    /// `legacy_version` (0x0002 for an SSLv2-format hello offering only SSLv2).
    pub version: u16,
    /// The hello came in an SSLv2-format record.
    pub sslv2_format: bool,
    pub ciphers: Vec<u16>,
    /// SSLv2 cipher kinds (3 bytes, first byte non-zero) of an SSLv2-format hello.
    pub sslv2_kinds: Vec<u32>,
    pub compression: Vec<u8>,
    /// Extension types in wire order, GREASE included.
    pub extensions: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    pub supported_versions: Vec<u16>,
    pub groups: Vec<u16>,
    pub point_formats: Vec<u8>,
    pub key_share_groups: Vec<u16>,
    pub sig_algs: Vec<u16>,
    pub renegotiation_info: bool,
    pub scsv: bool,
    pub fallback_scsv: bool,
    pub ech: bool,
}

impl ClientHello {
    /// Highest version offered: supported_versions (non-GREASE) if present, else legacy_version.
    pub fn max_version(&self) -> u16 {
        self.supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max_by_key(|v| version_rank(*v))
            .unwrap_or(self.version)
    }
}

/// The facts of one ServerHello or HelloRetryRequest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerHello {
    pub version: u16,
    pub selected_version: Option<u16>,
    pub cipher: u16,
    pub compression: u8,
    pub extensions: Vec<u16>,
    pub key_share_group: Option<u16>,
    pub alpn: Option<Vec<u8>>,
    pub renegotiation_info: bool,
    pub hello_retry: bool,
    /// SSLv2 ServerHello: the first cipher kind the server lists.
    pub sslv2_kind: Option<u32>,
}

impl ServerHello {
    pub fn negotiated_version(&self) -> u16 {
        self.selected_version.unwrap_or(self.version)
    }
}

/// Orders versions so that drafts of 1.3 and 1.3 itself sort above 1.2, SSLv2 below SSLv3,
/// and DTLS versions with the TLS versions they derive from.
pub fn version_rank(v: u16) -> u32 {
    match v {
        0x0002 => 1,
        0x0300..=0x03ff => 0x100 + (v as u32 & 0xff),
        0x7f00..=0x7fff | 0xfb00..=0xfbff => 0x104,
        // DTLS 1.0 is TLS 1.1's, 1.2 is 1.2's, 1.3 is 1.3's (RFC 6347, RFC 9147).
        0xfeff => 0x102,
        0xfefd => 0x103,
        0xfefc => 0x104,
        _ => 0,
    }
}

fn be16(b: &[u8], o: usize) -> Option<u16> {
    b.get(o..o + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

/// Parse a ClientHello handshake body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let (_, ch) = parse_tls_handshake_client_hello(body).ok()?;
    let mut out = ClientHello {
        version: ch.version.0,
        ciphers: ch.ciphers.iter().map(|c| c.0).collect(),
        compression: ch.comp.iter().map(|c| c.0).collect(),
        ..Default::default()
    };
    out.scsv = out.ciphers.contains(&SCSV_RENEGO);
    out.fallback_scsv = out.ciphers.contains(&SCSV_FALLBACK);
    if let Some(ext) = ch.ext {
        for_each_extension(ext, |ty, raw| {
            out.extensions.push(ty);
            client_extension(&mut out, ty, raw);
        });
    }
    Some(out)
}

/// Walk an extension block: calls `f(type, raw)` where `raw` includes the 4-byte header.
/// Stops quietly at the first malformed length.
fn for_each_extension(mut b: &[u8], mut f: impl FnMut(u16, &[u8])) {
    while b.len() >= 4 {
        let (Some(ty), Some(len)) = (be16(b, 0), be16(b, 2)) else { return };
        let end = 4 + len as usize;
        let Some(raw) = b.get(..end) else { return };
        f(ty, raw);
        b = &b[end..];
    }
}

fn client_extension(out: &mut ClientHello, ty: u16, raw: &[u8]) {
    match ty {
        EXT_RENEGOTIATION_INFO => out.renegotiation_info = true,
        EXT_ECH => out.ech = true,
        EXT_KEY_SHARE => out.key_share_groups = client_key_share_groups(&raw[4..]),
        _ => {}
    }
    let Ok((_, ext)) = parse_tls_client_hello_extension(raw) else { return };
    match ext {
        TlsExtension::SNI(names) => {
            out.sni = names.iter().find(|(t, _)| t.0 == 0).map(|(_, n)| String::from_utf8_lossy(n).into_owned());
        }
        TlsExtension::ALPN(protos) => out.alpn = protos.iter().map(|p| p.to_vec()).collect(),
        TlsExtension::SupportedVersions(v) => out.supported_versions = v.iter().map(|v| v.0).collect(),
        TlsExtension::EllipticCurves(g) => out.groups = g.iter().map(|g| g.0).collect(),
        TlsExtension::EcPointFormats(p) => out.point_formats = p.to_vec(),
        TlsExtension::SignatureAlgorithms(s) => out.sig_algs = s,
        _ => {}
    }
}

/// KeyShareClientHello: u16 list length, then (group u16, u16 length, key) entries.
fn client_key_share_groups(b: &[u8]) -> Vec<u16> {
    let mut groups = Vec::new();
    let mut i = 2usize;
    let end = (be16(b, 0).unwrap_or(0) as usize + 2).min(b.len());
    while i + 4 <= end {
        let (Some(g), Some(l)) = (be16(b, i), be16(b, i + 2)) else { break };
        groups.push(g);
        i += 4 + l as usize;
    }
    groups
}

/// Parse a ServerHello handshake body; recognises HelloRetryRequest by its random, and the
/// TLS 1.3 draft formats (no session id nor compression, version 0x7fxx).
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let version = be16(body, 0)?;
    if matches!(version, 0xfeff | 0xfefd) {
        // DTLS (RFC 6347 §4.2.1): the TLS 1.1/1.2 ServerHello under another version number.
        let mut tls = body.to_vec();
        tls[..2].copy_from_slice(&[3, if version == 0xfeff { 2 } else { 3 }]);
        return parse_server_hello(&tls).map(|sh| ServerHello { version, ..sh });
    }
    let mut out = ServerHello { version, ..Default::default() };
    let ext: Option<&[u8]> = if (0x7f00..0x7f16).contains(&version) {
        // draft-ietf-tls-tls13 -18..-21: version, random, cipher_suite, extensions
        out.cipher = be16(body, 34)?;
        body.get(38..)
    } else {
        let (rest, sh) = parse_tls_handshake_server_hello(body).ok()?;
        out.cipher = sh.cipher.0;
        out.compression = sh.compression.0;
        out.hello_retry = sh.random == HRR_RANDOM;
        // tls-parser reads no extensions for SSLv3, but SSLv3 servers do send
        // renegotiation_info (RFC 5746 §4.5): take the trailing block ourselves.
        sh.ext.or_else(|| {
            let len = be16(rest, 0)? as usize;
            rest.get(2..2 + len)
        })
    };
    if let Some(ext) = ext {
        for_each_extension(ext, |ty, raw| {
            out.extensions.push(ty);
            server_extension(&mut out, ty, raw);
        });
    }
    Some(out)
}

/// A draft-era HelloRetryRequest (handshake type 6): version, [cipher,] extensions.
pub fn parse_draft_hello_retry(body: &[u8]) -> Option<ServerHello> {
    let version = be16(body, 0)?;
    let mut out = ServerHello { version, hello_retry: true, ..Default::default() };
    let ext_off = if version >= 0x7f13 { 4 } else { 2 };
    if version >= 0x7f13 {
        out.cipher = be16(body, 2)?;
    }
    if let Some(ext) = body.get(ext_off + 2..) {
        for_each_extension(ext, |ty, raw| {
            out.extensions.push(ty);
            server_extension(&mut out, ty, raw);
        });
    }
    Some(out)
}

fn server_extension(out: &mut ServerHello, ty: u16, raw: &[u8]) {
    let data = &raw[4..];
    match ty {
        EXT_RENEGOTIATION_INFO => out.renegotiation_info = true,
        // ServerHello: one KeyShareEntry; HelloRetryRequest: just the selected group.
        EXT_KEY_SHARE => out.key_share_group = be16(data, 0),
        EXT_SUPPORTED_VERSIONS => out.selected_version = be16(data, 0),
        _ => {}
    }
    if ty == EXT_ALPN {
        if let Ok((_, TlsExtension::ALPN(p))) = parse_tls_server_hello_extension(raw) {
            out.alpn = p.first().map(|p| p.to_vec());
        }
    }
}

/// SSLv2 CLIENT-HELLO (RFC 6101 appendix E / SSLv2 spec): `body` starts at the message type.
pub fn parse_sslv2_client_hello(body: &[u8]) -> Option<ClientHello> {
    if *body.first()? != 1 {
        return None;
    }
    let version = be16(body, 1)?;
    let spec_len = be16(body, 3)? as usize;
    let sid_len = be16(body, 5)? as usize;
    let chal_len = be16(body, 7)? as usize;
    let specs = body.get(9..9 + spec_len)?;
    body.get(9 + spec_len + sid_len..9 + spec_len + sid_len + chal_len)?;
    let mut out = ClientHello { version, sslv2_format: true, compression: vec![0], ..Default::default() };
    for s in specs.chunks_exact(3) {
        if s[0] == 0 {
            out.ciphers.push(u16::from_be_bytes([s[1], s[2]]));
        } else {
            out.sslv2_kinds.push(u32::from_be_bytes([0, s[0], s[1], s[2]]));
        }
    }
    out.scsv = out.ciphers.contains(&SCSV_RENEGO);
    out.fallback_scsv = out.ciphers.contains(&SCSV_FALLBACK);
    Some(out)
}

/// SSLv2 SERVER-HELLO: `body` starts at the message type (4).
pub fn parse_sslv2_server_hello(body: &[u8]) -> Option<ServerHello> {
    if *body.first()? != 4 {
        return None;
    }
    let version = be16(body, 3)?;
    let cert_len = be16(body, 5)? as usize;
    let specs_len = be16(body, 7)? as usize;
    let specs = body.get(11 + cert_len..11 + cert_len + specs_len)?;
    let kind = specs.get(..3).map(|s| u32::from_be_bytes([0, s[0], s[1], s[2]]));
    Some(ServerHello { version, sslv2_kind: kind, ..Default::default() })
}

/// The SSLv2 certificate carried in an SSLv2 SERVER-HELLO, if any.
pub fn sslv2_server_certificate(body: &[u8]) -> Option<&[u8]> {
    let cert_len = be16(body, 5)? as usize;
    body.get(11..11 + cert_len).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grease() {
        assert!(is_grease(0x0a0a) && is_grease(0xfafa));
        assert!(!is_grease(0x0a1a) && !is_grease(0x1301));
    }

    #[test]
    fn sslv2_hello() {
        // type 1, version 3.1, 6 bytes of specs, no session id, 16-byte challenge
        let mut b = vec![1, 3, 1, 0, 6, 0, 0, 0, 16];
        b.extend_from_slice(&[0x01, 0x00, 0x80, 0x00, 0x00, 0x2f]);
        b.extend_from_slice(&[7u8; 16]);
        let ch = parse_sslv2_client_hello(&b).unwrap();
        assert_eq!(ch.version, 0x0301);
        assert_eq!(ch.ciphers, vec![0x002f]);
        assert_eq!(ch.sslv2_kinds, vec![0x010080]);
        assert!(parse_sslv2_client_hello(&b[..20]).is_none());
    }

    #[test]
    fn malformed_hellos_are_none() {
        for n in 0..60 {
            let b = vec![3u8; n];
            let _ = parse_client_hello(&b);
            let _ = parse_server_hello(&b);
            let _ = parse_draft_hello_retry(&b);
        }
    }
}
