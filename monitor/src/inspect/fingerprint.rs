//! Inspect, fingerprints: JA3/JA3S (Salesforce, MD5 over the decimal string) and JA4 (FoxIO's
//! public BSD-3 JA4 TLS client spec). Pure functions of the parsed hellos.

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::tls::hello::{is_grease, ClientHello, ServerHello, EXT_ALPN, EXT_SNI};

/// `v` in decimal (what `{v}` writes, without the formatting machinery: fingerprints are
/// built for every handshake).
fn push_dec(s: &mut String, v: u16) {
    s.push_str(itoa::Buffer::new().format(v));
}

/// `v` as four lowercase hex digits (`{v:04x}`).
fn push_hex4(s: &mut String, v: u16) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for shift in [12, 8, 4, 0] {
        s.push(char::from(HEX[usize::from((v >> shift) & 0xf)]));
    }
}

/// `bytes` in lowercase hex (what `hex::encode` writes, without a `char` at a time).
fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    s.reserve(2 * bytes.len());
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 * bytes.len());
    push_hex(&mut s, bytes);
    s
}

fn dash_join(s: &mut String, it: impl Iterator<Item = u16>) {
    for (i, v) in it.enumerate() {
        if i > 0 {
            s.push('-');
        }
        push_dec(s, v);
    }
}

/// (JA3 string, JA3 MD5) of a ClientHello. GREASE values are left out everywhere.
pub fn ja3(ch: &ClientHello) -> (String, String) {
    let mut s = String::with_capacity(8 + 6 * (ch.ciphers.len() + ch.extensions.len() + ch.groups.len()));
    push_dec(&mut s, ch.version);
    s.push(',');
    dash_join(&mut s, ch.ciphers.iter().copied().filter(|c| !is_grease(*c)));
    s.push(',');
    dash_join(&mut s, ch.extensions.iter().copied().filter(|e| !is_grease(*e)));
    s.push(',');
    dash_join(&mut s, ch.groups.iter().copied().filter(|g| !is_grease(*g)));
    s.push(',');
    dash_join(&mut s, ch.point_formats.iter().map(|&p| u16::from(p)));
    let h = hex(&Md5::digest(s.as_bytes()));
    (s, h)
}

/// (JA3S string, JA3S MD5) of a ServerHello.
pub fn ja3s(sh: &ServerHello) -> (String, String) {
    let mut s = String::with_capacity(16 + 6 * sh.extensions.len());
    push_dec(&mut s, sh.version);
    s.push(',');
    push_dec(&mut s, sh.cipher);
    s.push(',');
    dash_join(&mut s, sh.extensions.iter().copied().filter(|e| !is_grease(*e)));
    let h = hex(&Md5::digest(s.as_bytes()));
    (s, h)
}

/// Transport the hello came over, the first character of JA4.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ja4Transport {
    Tcp,
    Quic,
    Dtls,
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// First and last characters of the first ALPN value, each replaced by '9' when it is not
/// ASCII alphanumeric (as FoxIO's reference implementations do); "00" without ALPN.
fn ja4_alpn(alpn: Option<&Vec<u8>>) -> [char; 2] {
    let Some(a) = alpn.filter(|a| !a.is_empty()) else { return ['0', '0'] };
    let c = |b: u8| if b.is_ascii_alphanumeric() { b as char } else { '9' };
    [c(a[0]), c(a[a.len() - 1])]
}

/// The first 12 hex digits of the SHA-256 of `s`, appended; twelve zeros for nothing.
fn push_sha12(out: &mut String, s: &str) {
    if s.is_empty() {
        out.push_str("000000000000");
    } else {
        push_hex(out, &Sha256::digest(s.as_bytes())[..6]);
    }
}

fn hex_list(v: impl IntoIterator<Item = u16>) -> String {
    let v = v.into_iter();
    let mut s = String::with_capacity(v.size_hint().0 * 5);
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push(',');
        }
        push_hex4(&mut s, x);
    }
    s
}

/// (JA4, JA4_r) of a ClientHello.
pub fn ja4(ch: &ClientHello, transport: Ja4Transport) -> (String, String) {
    let t = match transport {
        Ja4Transport::Tcp => 't',
        Ja4Transport::Quic => 'q',
        Ja4Transport::Dtls => 'd',
    };
    let version = if ch.sslv2_format && ch.version == 0x0002 { "s2" } else { ja4_version(ch.max_version()) };
    let sni = if ch.extensions.contains(&EXT_SNI) { 'd' } else { 'i' };
    // Sized up front: `collect` cannot size a filtered list, and would grow these a few times.
    let mut ciphers = Vec::with_capacity(ch.ciphers.len());
    ciphers.extend(ch.ciphers.iter().copied().filter(|c| !is_grease(*c)));
    let exts = ch.extensions.iter().copied().filter(|e| !is_grease(*e));
    let mut sorted_exts = Vec::with_capacity(ch.extensions.len());
    sorted_exts.extend(exts.clone().filter(|e| *e != EXT_SNI && *e != EXT_ALPN));
    // `a`: t13d1516h2 (transport, version, SNI, counts to 99, ALPN).
    let mut a = String::with_capacity(10);
    a.push(t);
    a.push_str(version);
    a.push(sni);
    for n in [ciphers.len(), exts.count()] {
        let n = n.min(99) as u8;
        a.push(char::from(b'0' + n / 10));
        a.push(char::from(b'0' + n % 10));
    }
    a.extend(ja4_alpn(ch.alpn.first()));
    ciphers.sort_unstable();
    sorted_exts.sort_unstable();
    let b_raw = hex_list(ciphers);
    let mut c_raw = hex_list(sorted_exts.iter().copied());
    let mut sigs = ch.sig_algs.iter().copied().filter(|s| !is_grease(*s)).peekable();
    if sigs.peek().is_some() {
        c_raw.push('_');
        c_raw.push_str(&hex_list(sigs));
    }
    let mut ja4 = String::with_capacity(a.len() + 26);
    ja4.push_str(&a);
    ja4.push('_');
    push_sha12(&mut ja4, &b_raw);
    ja4.push('_');
    if sorted_exts.is_empty() {
        ja4.push_str("000000000000");
    } else {
        push_sha12(&mut ja4, &c_raw);
    }
    let mut ja4_r = String::with_capacity(a.len() + b_raw.len() + c_raw.len() + 2);
    for part in [a.as_str(), "_", &b_raw, "_", &c_raw] {
        ja4_r.push_str(part);
    }
    (ja4, ja4_r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JA4 spec's worked example (JA4.md: a Chrome ClientHello, whose JA4_r lists the
    /// values below).
    #[test]
    fn ja4_spec_example() {
        let ch = ClientHello {
            version: 0x0303,
            ciphers: vec![
                0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d,
                0x002f, 0x0035,
            ],
            extensions: vec![
                0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023, 0x0012, 0x002b, 0xff01,
                0x000b, 0x000a, 0x0015,
            ],
            supported_versions: vec![0x0304, 0x0303],
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            sig_algs: vec![0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601],
            ..Default::default()
        };
        let (ja4, ja4_r) = ja4(&ch, Ja4Transport::Tcp);
        assert_eq!(ja4, "t13d1516h2_8daaf6152771_e5627efa2ab1");
        assert_eq!(
            ja4_r,
            "t13d1516h2_002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9_\
             0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01_\
             0403,0804,0401,0503,0805,0501,0806,0601"
        );
    }

    #[test]
    fn alpn_non_alphanumeric_becomes_9() {
        assert_eq!(ja4_alpn(Some(&b"h2".to_vec())), ['h', '2']);
        assert_eq!(ja4_alpn(Some(&vec![0xab, 0xcd])), ['9', '9']);
        assert_eq!(ja4_alpn(Some(&vec![b'h', 0xcd])), ['h', '9']);
        assert_eq!(ja4_alpn(Some(&b"x".to_vec())), ['x', 'x']);
        assert_eq!(ja4_alpn(None), ['0', '0']);
    }

    #[test]
    fn ja3_skips_grease() {
        let ch = ClientHello {
            version: 771,
            ciphers: vec![0x0a0a, 4865],
            extensions: vec![0x1a1a, 0, 10],
            groups: vec![0x2a2a, 29],
            point_formats: vec![0],
            ..Default::default()
        };
        assert_eq!(ja3(&ch).0, "771,4865,0-10,29,0");
    }
}
