//! Large handshakes. The large ClientHello client: a hand-built TLS 1.3 ClientHello of several
//! kilobytes (an X25519MLKEM768 key share of 1216 bytes, an x25519 one, a padding extension,
//! and the SNI as the very last extension) sent to the modern server from the client
//! namespace. It is larger than the lab MTU (1500), so it spans several TCP segments; tlsmon
//! has only seen all of it if the event shows both key shares and the SNI. The huge one is
//! 60 KiB in four records. The big-flight server sends a certificate of some 160 KB (8 000
//! names) before its ServerKeyExchange: tlsmon has only followed it if the event shows the
//! certificate and the curve.
//! Must never connect anywhere but the lab's servers.
use std::{
    io::{Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpStream},
    thread,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context as _, Result};

use super::{servers::modern, Family, Lab};

/// The big-flight server: `openssl s_server -tls1_2` with a self-signed P-256 certificate of
/// [`BIG_NAMES`] subject alternative names, on this port of the server namespace.
pub const BIG_FLIGHT_PORT: u16 = 4436;
pub const BIG_FLIGHT_SNI: &str = "big.lab.test";
/// DNS names in its certificate (about 20 bytes each in DER: some 160 KB).
const BIG_NAMES: usize = 8_000;

/// What the big-flight client got.
#[derive(Debug)]
pub struct BigFlight {
    pub family: Family,
    /// Bytes of the server's flight (ServerHello to ServerHelloDone).
    pub flight_len: usize,
}

impl Lab {
    /// Makes the big certificate and starts the big-flight server; waits until it accepts.
    pub fn start_big_flight_server(&mut self) -> Result<()> {
        let names: String = (1..=BIG_NAMES).map(|i| format!("DNS.{} = n{i}.big.lab.test\n", i + 1)).collect();
        let cnf = format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = v3\n[dn]\nCN = {BIG_FLIGHT_SNI}\n\
             [v3]\nbasicConstraints = CA:FALSE\nsubjectAltName = @alt\n[alt]\nDNS.1 = {BIG_FLIGHT_SNI}\n{names}"
        );
        std::fs::write(self.dir.join("big.cnf"), cnf)?;
        let status = std::process::Command::new("openssl")
            .current_dir(&self.dir)
            .args(["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
            .args(["-keyout", "big.key", "-out", "big.pem", "-days", "365", "-config", "big.cnf"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .context("running openssl req for the big certificate")?;
        if !status.success() {
            bail!("openssl req for the big certificate failed: {status}");
        }
        let d = |f: &str| self.dir.join(f).to_string_lossy().into_owned();
        let (cert, key, port) = (d("big.pem"), d("big.key"), BIG_FLIGHT_PORT.to_string());
        let ns = self.server_ns.clone();
        let args = ["s_server", "-accept", &port, "-www", "-quiet", "-cert", &cert, "-key", &key, "-tls1_2"];
        self.spawn("server-big-flight", &ns, "openssl", &args)?;
        let targets: Vec<SocketAddr> =
            Family::BOTH.iter().map(|&f| SocketAddr::new(self.server_addr(f), BIG_FLIGHT_PORT)).collect();
        self.wait_accepting(&targets)
    }
}

/// Sends a TLS 1.2 ClientHello to the big-flight server, reads its whole flight (up to the
/// ServerHelloDone) and closes.
pub fn big_flight(lab: &Lab, family: Family) -> Result<BigFlight> {
    let target = SocketAddr::new(lab.server_addr(family), BIG_FLIGHT_PORT);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let hello = client_hello_tls12(BIG_FLIGHT_SNI, seed);
    let flight_len = lab.in_netns(&lab.client_ns, move || {
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .with_context(|| format!("connecting to {target}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(&hello)?;
        // OpenSSL writes each handshake message in records of its own: the flight ends with
        // a ServerHelloDone record (type 14, empty).
        let mut flight = Vec::new();
        let mut buf = [0u8; 65_536];
        while !flight.ends_with(&[0x16, 0x03, 0x03, 0x00, 0x04, 0x0e, 0, 0, 0]) {
            let n = s.read(&mut buf).with_context(|| format!("reading the flight of {target}"))?;
            if n == 0 || flight.len() > 1 << 20 {
                bail!("{target} ended its flight after {} bytes without a ServerHelloDone", flight.len());
            }
            flight.extend_from_slice(&buf[..n]);
        }
        let _ = s.shutdown(Shutdown::Both);
        Ok(flight.len())
    })?;
    Ok(BigFlight { family, flight_len })
}

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
    send_hello(lab, family, if split { "split" } else { "whole" }, HELLO_RECORD_LEN, split)
}

/// Sends a ClientHello of [`HUGE_HELLO_LEN`] bytes in four TLS records, in one write (GSO
/// packets of up to 64 KiB on the veth): far past the client's flow-head budget, captured
/// whole because the kernel follows its records.
pub fn huge_hello(lab: &Lab, family: Family) -> Result<LargeHello> {
    send_hello(lab, family, "huge", HUGE_HELLO_LEN, false)
}

/// Size of the huge ClientHello on the wire (the extensions block nearly full, padding mostly).
pub const HUGE_HELLO_LEN: usize = 60 * 1024;

fn send_hello(lab: &Lab, family: Family, how: &str, total_len: usize, split: bool) -> Result<LargeHello> {
    let sni = format!("large-{how}-{}.lab.test", if family == Family::V4 { "v4" } else { "v6" });
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1);
    let hello = client_hello(&sni, total_len, seed ^ u64::from(std::process::id()));
    let target = SocketAddr::new(lab.server_addr(family), modern().port);
    let bytes = &hello;
    lab.in_netns(&lab.client_ns, move || {
        let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(5))
            .with_context(|| format!("connecting to {target}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        if split {
            s.set_nodelay(true)?;
            let third = bytes.len() / 3;
            for chunk in [&bytes[..third], &bytes[third..2 * third], &bytes[2 * third..]] {
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

/// Largest TLS record fragment (RFC 8446 §5.1).
const MAX_FRAGMENT: usize = 16_384;

/// A TLS 1.3 ClientHello of exactly `total_len` bytes on the wire with the SNI last: one
/// record, or as many as a hello larger than a record takes.
pub fn client_hello(sni: &str, total_len: usize, seed: u64) -> Vec<u8> {
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
    // The message fills the records less their 5-byte headers.
    let records = total_len.div_ceil(5 + MAX_FRAGMENT);
    let message_len = total_len - 5 * records;
    records_of(&hello_message(&mut rng, &[0x1301, 0x1302, 0x1303], ext, sni, Some(message_len)))
}

/// A TLS 1.2 ClientHello (ECDHE-ECDSA with AES-GCM, x25519 or P-256, secure renegotiation).
pub fn client_hello_tls12(sni: &str, seed: u64) -> Vec<u8> {
    let mut rng = XorShift(seed | 1);
    let mut ext = Vec::new();
    push_ext(&mut ext, 0x000a, &be16s(&[4, X25519, 0x0017]));
    push_ext(&mut ext, 0x000b, &[1, 0]);
    push_ext(&mut ext, 0x000d, &be16s(&[6, 0x0403, 0x0804, 0x0401]));
    push_ext(&mut ext, 0xff01, &[0]);
    records_of(&hello_message(&mut rng, &[0xc02b, 0xc02c], ext, sni, None))
}

/// A ClientHello handshake message: `ext`, then a padding extension that makes the message
/// `pad_to` bytes long (when given), then the SNI.
fn hello_message(rng: &mut XorShift, suites: &[u16], mut ext: Vec<u8>, sni: &str, pad_to: Option<usize>) -> Vec<u8> {
    let mut name = vec![0u8];
    name.extend(be16s(&[sni.len() as u16]));
    name.extend(sni.as_bytes());
    let mut sni_ext = be16s(&[name.len() as u16]);
    sni_ext.extend(name);

    let mut body = vec![0x03, 0x03];
    body.extend(rng.bytes(32)); // random
    body.push(32);
    body.extend(rng.bytes(32)); // legacy_session_id
    body.extend(be16s(&[2 * suites.len() as u16]));
    body.extend(be16s(suites));
    body.extend([1, 0]); // compression: null
    if let Some(len) = pad_to {
        // handshake header 4 + body + extensions length 2 + ext + padding ext header 4 +
        // padding + SNI ext header 4 + SNI ext.
        let fixed = 4 + body.len() + 2 + ext.len() + 4 + 4 + sni_ext.len();
        push_ext(&mut ext, 0x0015, &vec![0u8; len.saturating_sub(fixed)]);
    }
    push_ext(&mut ext, 0x0000, &sni_ext);
    body.extend(be16s(&[ext.len() as u16]));
    body.extend(ext);

    let mut hs = vec![1u8];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    hs
}

/// A handshake message in TLS handshake records of at most [`MAX_FRAGMENT`] bytes each.
fn records_of(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for fragment in message.chunks(MAX_FRAGMENT) {
        out.extend([0x16, 0x03, 0x01]);
        out.extend(be16s(&[fragment.len() as u16]));
        out.extend(fragment);
    }
    out
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
