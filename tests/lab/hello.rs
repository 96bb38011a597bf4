//! The large ClientHello client: a hand-built TLS 1.3 ClientHello of several kilobytes (an
//! X25519MLKEM768 key share of 1216 bytes, an x25519 one, a padding extension, and the SNI as
//! the very last extension) sent to the modern server from the client namespace. It is larger
//! than the lab MTU (1500), so it spans several TCP segments; tlsmon has only seen all of it if
//! the event shows both key shares and the SNI.
//! Must never connect anywhere but the lab's server.
use std::{
    io::{Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpStream},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _, Result};

use super::{servers::modern, Family, Lab};

/// Size of the TLS record carrying the ClientHello (header included).
pub const HELLO_RECORD_LEN: usize = 3600;
/// IANA group code points.
const X25519MLKEM768: u16 = 0x11ec;
const X25519: u16 = 0x001d;
/// An ML-KEM-768 encapsulation key (1184 bytes) followed by an x25519 share (32 bytes).
const MLKEM_SHARE_LEN: usize = 1216;

/// What the large-hello client sent and got.
#[derive(Debug)]
pub struct LargeHello {
    pub family: Family,
    /// The SNI it sent (distinct per run, so its event can be told apart).
    pub sni: String,
    /// Written in several pieces (one TCP segment each) rather than in one write.
    pub split: bool,
    /// Bytes of the record sent.
    pub len: usize,
}

/// Sends a large ClientHello to the modern server over `family`, reads the ServerHello and
/// closes. `split`: three writes with TCP_NODELAY and a pause between, so the hello is three
/// segments whatever the offloads; otherwise one write (a GSO packet on the veth, cut into
/// MTU-sized segments wherever it must be).
pub fn large_hello(lab: &Lab, family: Family, split: bool) -> Result<LargeHello> {
    let how = if split { "split" } else { "whole" };
    let sni = format!("large-{how}-{}.lab.test", if family == Family::V4 { "v4" } else { "v6" });
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let hello = client_hello(&sni, HELLO_RECORD_LEN, seed ^ u64::from(std::process::id()));
    let target = SocketAddr::new(lab.server_addr(family), modern().port);
    let bytes = &hello;
    lab.in_netns(&lab.client_ns, move || {
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .with_context(|| format!("connecting to {target}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        if split {
            s.set_nodelay(true)?;
            for chunk in [&bytes[..1000], &bytes[1000..2200], &bytes[2200..]] {
                s.write_all(chunk)?;
                thread::sleep(Duration::from_millis(30));
            }
        } else {
            s.write_all(bytes)?;
        }
        // The server answers with a ServerHello record (then encrypted records we ignore).
        let mut reply = [0u8; 6];
        s.read_exact(&mut reply).with_context(|| format!("reading the reply of {target}"))?;
        if reply[0] != 0x16 || reply[5] != 2 {
            bail!("{target} answered the large ClientHello with {reply:02x?}, not a ServerHello");
        }
        let _ = s.shutdown(Shutdown::Both);
        Ok(())
    })?;
    Ok(LargeHello { family, sni, split, len: hello.len() })
}

/// A TLS 1.3 ClientHello record of exactly `record_len` bytes with the SNI last.
pub fn client_hello(sni: &str, record_len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed | 1);
    let mut ext = Vec::new();
    // supported_versions: TLS 1.3
    push_ext(&mut ext, 0x002b, &[2, 0x03, 0x04]);
    // supported_groups: X25519MLKEM768, x25519
    push_ext(&mut ext, 0x000a, &be16s(&[4, X25519MLKEM768, X25519]));
    // signature_algorithms: rsa_pss_rsae_sha256/384, ecdsa_secp256r1_sha256, rsa_pkcs1_sha256
    push_ext(&mut ext, 0x000d, &be16s(&[8, 0x0804, 0x0805, 0x0403, 0x0401]));
    // psk_key_exchange_modes: psk_dhe_ke
    push_ext(&mut ext, 0x002d, &[1, 1]);
    // key_share: X25519MLKEM768 (1216 bytes), x25519 (32 bytes)
    let mut shares = Vec::new();
    for (group, len) in [(X25519MLKEM768, MLKEM_SHARE_LEN), (X25519, 32)] {
        shares.extend(be16s(&[group, len as u16]));
        shares.extend(rng.bytes(len));
    }
    let mut ks = be16s(&[shares.len() as u16]);
    ks.extend(shares);
    push_ext(&mut ext, 0x0033, &ks);
    // server_name, appended after the padding below.
    let mut name = vec![0u8];
    name.extend(be16s(&[sni.len() as u16]));
    name.extend(sni.as_bytes());
    let mut sni_ext = be16s(&[name.len() as u16]);
    sni_ext.extend(name);

    let mut body = vec![0x03, 0x03];
    body.extend(rng.bytes(32)); // random
    body.push(32);
    body.extend(rng.bytes(32)); // legacy_session_id
    body.extend(be16s(&[6, 0x1301, 0x1302, 0x1303]));
    body.extend([1, 0]); // compression: null
                         // record header 5 + handshake header 4 + body + extensions length 2 + ext + padding ext
                         // header 4 + padding + SNI ext header 4 + SNI ext.
    let fixed = 5 + 4 + body.len() + 2 + ext.len() + 4 + 4 + sni_ext.len();
    let padding = record_len.saturating_sub(fixed);
    push_ext(&mut ext, 0x0015, &vec![0u8; padding]);
    push_ext(&mut ext, 0x0000, &sni_ext);
    body.extend(be16s(&[ext.len() as u16]));
    body.extend(ext);

    let mut hs = vec![1u8];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(be16s(&[hs.len() as u16]));
    record.extend(hs);
    record
}

fn push_ext(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend(be16s(&[kind, data.len() as u16]));
    out.extend(data);
}

fn be16s(v: &[u16]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

/// Key shares and randoms need no real entropy, only not to repeat between runs.
struct XorShift(u64);

impl XorShift {
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                (self.0 >> 24) as u8
            })
            .collect()
    }
}
