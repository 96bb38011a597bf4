//! Inspect, SSH, KEXINIT: the clear binary packets after a banner (RFC 4253 §6: u32 length,
//! padding length, payload, padding; no MAC before the first NEWKEYS) up to SSH_MSG_KEXINIT
//! (§7.1: cookie, ten name-lists, first_kex_packet_follows). Bounded: must never read past a
//! length it checked, accept a packet over [`MAX_PACKET`] or a name-list over [`MAX_NAME_LIST`],
//! nor keep a name outside the algorithm-name charset.
use md5::{Digest as _, Md5};

/// Largest KEXINIT packet we parse (RFC 4253 §6.1 asks for 35000-byte packets; a real
/// KEXINIT is 1–2 KiB, a post-quantum one too).
pub const MAX_PACKET: usize = 32 << 10;
/// Largest name-list we parse.
pub const MAX_NAME_LIST: usize = 8 << 10;
/// Most names kept per list.
pub const MAX_NAMES: usize = 64;
/// Longest algorithm name (RFC 4251 §6: 64 characters).
const MAX_NAME: usize = 64;
/// Packets looked at after the banner for the KEXINIT (IGNORE and DEBUG may come first).
const MAX_PACKETS: usize = 4;

const MSG_IGNORE: u8 = 2;
const MSG_DEBUG: u8 = 4;
const MSG_KEXINIT: u8 = 20;

/// One side's SSH_MSG_KEXINIT: its ten name-lists (§7.1 order) and flag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KexInit {
    pub kex: Vec<String>,
    pub host_key: Vec<String>,
    pub cipher_c2s: Vec<String>,
    pub cipher_s2c: Vec<String>,
    pub mac_c2s: Vec<String>,
    pub mac_s2c: Vec<String>,
    pub compression_c2s: Vec<String>,
    pub compression_s2c: Vec<String>,
    pub first_kex_follows: bool,
    /// HASSH over the client→server lists (`kex;cipher;mac;compression`, the name-lists as
    /// sent): the client fingerprint when this is the client's KEXINIT.
    pub hassh_c2s: String,
    /// The same over the server→client lists: HASSHServer when this is the server's.
    pub hassh_s2c: String,
    /// Names dropped: outside the charset, too long, or past [`MAX_NAMES`].
    pub names_dropped: u32,
}

/// Why no KEXINIT came out of a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KexError {
    /// The bytes end inside the packet (a head cut short, or the flow ended).
    Truncated,
    /// A packet length over [`MAX_PACKET`].
    Oversized,
    /// A name-list over [`MAX_NAME_LIST`].
    NameListOversized,
    /// Lengths that do not add up, or a message other than KEXINIT first.
    Malformed,
}

/// The KEXINIT among the first packets of `bytes` (stream bytes after the banner line).
pub fn parse(mut bytes: &[u8]) -> Result<KexInit, KexError> {
    for _ in 0..MAX_PACKETS {
        let len = u32::from_be_bytes(take::<4>(bytes).ok_or(KexError::Truncated)?) as usize;
        if len > MAX_PACKET {
            return Err(KexError::Oversized);
        }
        let pad = *bytes.get(4).ok_or(KexError::Truncated)? as usize;
        if len < pad + 2 {
            return Err(KexError::Malformed);
        }
        let packet = bytes.get(4..4 + len).ok_or(KexError::Truncated)?;
        let payload = &packet[1..len - pad];
        match payload[0] {
            MSG_KEXINIT => return kexinit(&payload[1..]),
            MSG_IGNORE | MSG_DEBUG => bytes = &bytes[4 + len..],
            _ => return Err(KexError::Malformed),
        }
    }
    Err(KexError::Malformed)
}

/// The first `N` bytes of `b`.
fn take<const N: usize>(b: &[u8]) -> Option<[u8; N]> {
    b.get(..N)?.try_into().ok()
}

/// The KEXINIT payload after the message number.
fn kexinit(p: &[u8]) -> Result<KexInit, KexError> {
    let mut at = 16; // cookie
    if p.len() < at {
        return Err(KexError::Malformed);
    }
    let mut raw: [&[u8]; 10] = [&[]; 10];
    for slot in raw.iter_mut() {
        let len = u32::from_be_bytes(take::<4>(&p[at..]).ok_or(KexError::Malformed)?) as usize;
        if len > MAX_NAME_LIST {
            return Err(KexError::NameListOversized);
        }
        *slot = p.get(at + 4..at + 4 + len).ok_or(KexError::Malformed)?;
        at += 4 + len;
    }
    let first_kex_follows = *p.get(at).ok_or(KexError::Malformed)? != 0;
    let mut dropped = 0u32;
    let mut list = |b: &[u8]| names(b, &mut dropped);
    let [kex, hk, enc_cs, enc_sc, mac_cs, mac_sc, cmp_cs, cmp_sc, _lang_cs, _lang_sc] = raw;
    Ok(KexInit {
        kex: list(kex),
        host_key: list(hk),
        cipher_c2s: list(enc_cs),
        cipher_s2c: list(enc_sc),
        mac_c2s: list(mac_cs),
        mac_s2c: list(mac_sc),
        compression_c2s: list(cmp_cs),
        compression_s2c: list(cmp_sc),
        first_kex_follows,
        hassh_c2s: hassh([kex, enc_cs, mac_cs, cmp_cs]),
        hassh_s2c: hassh([kex, enc_sc, mac_sc, cmp_sc]),
        names_dropped: dropped,
    })
}

/// A name-list's names that are algorithm names (RFC 4251 §6: printable US-ASCII, no comma or
/// space, at most 64 characters), at most [`MAX_NAMES`]; the rest counted in `dropped`.
fn names(list: &[u8], dropped: &mut u32) -> Vec<String> {
    let mut out = Vec::new();
    if list.is_empty() {
        return out;
    }
    for name in list.split(|&b| b == b',') {
        let ok = !name.is_empty() && name.len() <= MAX_NAME && name.iter().all(|b| (0x21..=0x7e).contains(b));
        if ok && out.len() < MAX_NAMES {
            out.push(String::from_utf8_lossy(name).into_owned());
        } else {
            *dropped += 1;
        }
    }
    out
}

/// HASSH / HASSHServer (salesforce/hassh): MD5 of `kex;enc;mac;cmp`, the name-lists as sent.
fn hassh(lists: [&[u8]; 4]) -> String {
    let mut h = Md5::new();
    for (i, l) in lists.iter().enumerate() {
        if i > 0 {
            h.update(b";");
        }
        h.update(l);
    }
    hex::encode(h.finalize())
}

/// A KEXINIT packet (for tests and fuzz seeds): the ten lists, the flag, a zero cookie and
/// `pad` bytes of padding.
pub fn build(lists: [&str; 10], first_kex_follows: bool, pad: u8) -> Vec<u8> {
    let mut payload = vec![MSG_KEXINIT];
    payload.extend_from_slice(&[0u8; 16]);
    for l in lists {
        payload.extend_from_slice(&(l.len() as u32).to_be_bytes());
        payload.extend_from_slice(l.as_bytes());
    }
    payload.push(u8::from(first_kex_follows));
    payload.extend_from_slice(&[0; 4]);
    let len = 1 + payload.len() + usize::from(pad);
    let mut out = (len as u32).to_be_bytes().to_vec();
    out.push(pad);
    out.extend_from_slice(&payload);
    out.extend(std::iter::repeat_n(0u8, usize::from(pad)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTS: [&str; 10] = [
        "curve25519-sha256,ext-info-c",
        "ssh-ed25519,rsa-sha2-256",
        "aes128-ctr,aes256-gcm@openssh.com",
        "aes128-ctr",
        "hmac-sha2-256",
        "hmac-sha2-256,hmac-sha1",
        "none,zlib@openssh.com",
        "none",
        "",
        "",
    ];

    #[test]
    fn parses_lists_and_hassh() {
        let k = parse(&build(LISTS, true, 7)).unwrap();
        assert_eq!(k.kex, ["curve25519-sha256", "ext-info-c"]);
        assert_eq!(k.cipher_c2s, ["aes128-ctr", "aes256-gcm@openssh.com"]);
        assert_eq!(k.mac_s2c, ["hmac-sha2-256", "hmac-sha1"]);
        assert_eq!(k.compression_c2s, ["none", "zlib@openssh.com"]);
        assert!(k.first_kex_follows);
        let want = hex::encode(Md5::digest(
            b"curve25519-sha256,ext-info-c;aes128-ctr,aes256-gcm@openssh.com;hmac-sha2-256;none,zlib@openssh.com",
        ));
        assert_eq!(k.hassh_c2s, want);
        assert_ne!(k.hassh_c2s, k.hassh_s2c);
    }

    #[test]
    fn skips_ignore_and_debug_first() {
        let ignore = [0, 0, 0, 12, 4, MSG_IGNORE, 0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0];
        let k = parse(&[ignore.as_slice(), &build(LISTS, false, 4)].concat()).unwrap();
        assert_eq!(k.host_key, ["ssh-ed25519", "rsa-sha2-256"]);
    }

    #[test]
    fn bounded_and_never_panics() {
        let p = build(LISTS, false, 4);
        for cut in 0..p.len() {
            assert_eq!(parse(&p[..cut]), Err(KexError::Truncated), "cut at {cut}");
        }
        assert_eq!(parse(&[0, 0, 0x81, 0, 4]), Err(KexError::Oversized));
        assert_eq!(parse(&[0, 0, 0, 5, 4, 0, 0, 0, 0]), Err(KexError::Malformed));
        assert_eq!(parse(&[0, 0, 0, 2, 200, 20]), Err(KexError::Malformed));
        // A service request first: not a KEXINIT.
        assert_eq!(parse(&[0, 0, 0, 6, 4, 5, 0, 0, 0, 0]), Err(KexError::Malformed));
        let huge = "a,".repeat(MAX_NAME_LIST / 2 + 1);
        let mut lists = LISTS;
        lists[3] = &huge;
        assert_eq!(parse(&build(lists, false, 4)), Err(KexError::NameListOversized));
        // A name-list longer than the packet.
        let mut bad = build(LISTS, false, 4);
        bad[4 + 1 + 1 + 16 + 3] = 0xff;
        assert_eq!(parse(&bad), Err(KexError::Malformed));
    }

    #[test]
    fn names_charset_and_count() {
        let many = (0..100).map(|i| format!("alg{i}")).collect::<Vec<_>>().join(",");
        let mut lists = LISTS;
        lists[0] = "good,bad name,,\u{e9}t\u{e9}";
        lists[1] = &many;
        let k = parse(&build(lists, false, 4)).unwrap();
        assert_eq!(k.kex, ["good"]);
        assert_eq!(k.host_key.len(), MAX_NAMES);
        assert_eq!(k.names_dropped, 3 + 36);
    }
}
