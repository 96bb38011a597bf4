//! SSH inspector tests over real OpenSSH 9.2p1 (Debian 12) handshakes: the banner line and the
//! KEXINIT packet of each side, cut from `tcpdump -i lo` captures of `ssh` to `sshd` (modern:
//! the stock config; legacy: `KexAlgorithms diffie-hellman-group1-sha1`, `Ciphers 3des-cbc`,
//! `MACs hmac-sha1`, `HostKeyAlgorithms ssh-rsa` with a client allowing them). HASSH values
//! cross-checked with tshark 4.0 (`-d tcp.port==2222,ssh -T fields -e ssh.kex.hassh -e
//! ssh.kex.hasshserver`).
use super::*;

const MODERN_CLIENT: &[u8] = include_bytes!("testdata/modern-client.bin");
const MODERN_SERVER: &[u8] = include_bytes!("testdata/modern-server.bin");
const LEGACY_CLIENT: &[u8] = include_bytes!("testdata/legacy-client.bin");
const LEGACY_SERVER: &[u8] = include_bytes!("testdata/legacy-server.bin");

#[test]
fn modern_openssh_session() {
    let f = inspect(MODERN_CLIENT, MODERN_SERVER);
    assert!(f.anomalies.is_empty(), "{:?}", f.anomalies);
    let cb = f.client.banner.as_ref().unwrap();
    assert_eq!((cb.proto.as_str(), cb.software.as_str()), ("2.0", "OpenSSH_9.2p1"));
    assert_eq!(cb.comments.as_deref(), Some("Debian-2+deb12u10"));
    assert_eq!(f.hassh(), Some("472b5de333ad665af5cbf10ff892c4df"));
    assert_eq!(f.hassh_server(), Some("425d29fe50d8e4f5e37efb6e24bcf660"));
    let n = f.negotiated.as_ref().unwrap();
    assert_eq!(n.kex.as_deref(), Some("sntrup761x25519-sha512"));
    assert_eq!(n.host_key.as_deref(), Some("ssh-ed25519"));
    assert_eq!(n.cipher_c2s.as_deref(), Some("chacha20-poly1305@openssh.com"));
    assert_eq!(n.cipher_s2c.as_deref(), Some("chacha20-poly1305@openssh.com"));
    assert_eq!((n.mac_c2s.as_deref(), n.mac_s2c.as_deref()), (None, None), "AEAD: no MAC");
    assert_eq!(n.compression_c2s.as_deref(), Some("none"));
    assert!(n.strict_kex && n.failed.is_empty());
    assert!(f.pq());
    assert_eq!(f.kex_class(), "pq-hybrid");
}

#[test]
fn legacy_openssh_session() {
    let f = inspect(LEGACY_CLIENT, LEGACY_SERVER);
    assert!(f.anomalies.is_empty(), "{:?}", f.anomalies);
    assert_eq!(f.hassh(), Some("60be353391f41a6e1c9b5a424b21fb90"));
    assert_eq!(f.hassh_server(), Some("d125690d9f70f500a38541d4a88a70e6"));
    let s = f.server.kexinit.as_ref().unwrap();
    assert_eq!(s.kex, ["diffie-hellman-group1-sha1", "kex-strict-s-v00@openssh.com"]);
    let n = f.negotiated.as_ref().unwrap();
    assert_eq!(n.kex.as_deref(), Some("diffie-hellman-group1-sha1"));
    assert_eq!(n.host_key.as_deref(), Some("ssh-rsa"));
    assert_eq!(n.cipher_c2s.as_deref(), Some("3des-cbc"));
    assert_eq!(n.mac_s2c.as_deref(), Some("hmac-sha1"));
    assert_eq!(f.kex_class(), "weak");
    assert!(!f.pq());
}

/// Both heads cut at every offset: never a panic; a cut inside a KEXINIT is a truncation
/// anomaly, a cut right after the banner is none.
#[test]
fn every_cut_is_bounded() {
    for cut in 0..MODERN_SERVER.len() {
        let f = inspect(&MODERN_CLIENT[..cut.min(MODERN_CLIENT.len())], &MODERN_SERVER[..cut]);
        assert!(f.negotiated.is_none() || cut >= MODERN_CLIENT.len().min(MODERN_SERVER.len()));
        for a in &f.anomalies {
            assert!(a.ends_with("-truncated"), "cut {cut}: {a}");
        }
    }
    let banner_end = MODERN_SERVER.iter().position(|&b| b == b'\n').unwrap() + 1;
    assert!(inspect(MODERN_CLIENT, &MODERN_SERVER[..banner_end]).anomalies.is_empty());
}

#[test]
fn hostile_heads() {
    let f = inspect(b"SSH-2.0-x\r\n\xff\xff\xff\xff\x04", b"SSH-1.5-old\r\n\0\0\0\x05");
    assert_eq!(f.anomalies, ["client-kexinit-oversized"]);
    assert!(f.server.banner.as_ref().unwrap().speaks_v1() && f.server.kexinit.is_none());
    let f = inspect(b"SSH-2.0OpenSSH\r\n", b"");
    assert_eq!(f.anomalies, ["client-banner-malformed"]);
    assert!(is_ssh(b"SSH-2.0-x", b"") && is_ssh(b"", b"SSH-") && !is_ssh(b"GET /", b"HTTP/1.1"));
}

/// A cheap stand-in for the fuzz target in the unit tests: the real heads with bytes flipped,
/// lengths rewritten and cuts, 20 000 times (fixed seed). Never a panic, and every fact that
/// comes out stays inside its bounds.
#[test]
fn mutated_heads_stay_bounded() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..20_000 {
        let (mut c, mut s) = (LEGACY_CLIENT.to_vec(), MODERN_SERVER.to_vec());
        let buf = if i % 2 == 0 { &mut c } else { &mut s };
        for _ in 0..1 + next() % 4 {
            let at = (next() as usize) % buf.len();
            buf[at] = match next() % 4 {
                0 => 0xff,
                1 => 0,
                2 => b',',
                _ => next() as u8,
            };
        }
        let cut = (next() as usize) % (buf.len() + 1);
        buf.truncate(cut.max(buf.len() / 2));
        let f = inspect(&c, &s);
        for side in [&f.client, &f.server] {
            if let Some(b) = &side.banner {
                assert!(b.software.len() <= 64 && b.comments.as_ref().is_none_or(|c| c.len() <= 64));
            }
            if let Some(k) = &side.kexinit {
                for l in [&k.kex, &k.host_key, &k.cipher_c2s, &k.mac_s2c, &k.compression_c2s] {
                    assert!(l.len() <= kexinit::MAX_NAMES);
                    assert!(l
                        .iter()
                        .all(|n| !n.is_empty() && n.len() <= 64 && n.bytes().all(|b| b.is_ascii_graphic())));
                }
            }
        }
    }
}
