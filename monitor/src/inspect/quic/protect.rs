//! Inspect, QUIC Initial protection: Initial keys from a Destination Connection ID (RFC 9001
//! §5.2, RFC 9369 §3.3) through rustls' QUIC support (ring), header protection removal and
//! AEAD decryption of one long-header packet. No cipher, KDF or mask is written here.
//! Must never decrypt anything but Initial packets, nor panic on a short or forged packet.
use rustls::quic::{DirectionalKeys, Keys, Version};
use rustls::Side;

use super::packet::{decode_pn, DRAFTS, V1, V2};

/// Initial keys for both sides, derived from the client's Destination Connection ID.
pub struct InitialKeys {
    pub version: u32,
    pub dcid: Vec<u8>,
    keys: Keys,
}

impl InitialKeys {
    /// Keys for `version` (v1, v2 or drafts 29–32); `None` for any other version.
    pub fn new(version: u32, dcid: &[u8]) -> Option<Self> {
        let v = match version {
            V1 => Version::V1,
            V2 => Version::V2,
            v if DRAFTS.contains(&v) => Version::V1Draft,
            _ => return None,
        };
        // Initial packets always use TLS_AES_128_GCM_SHA256 (RFC 9001 §5.2).
        let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256.tls13()?.quic_suite()?;
        // Side::Client: `local` holds the client's keys, `remote` the server's.
        Some(InitialKeys { version, dcid: dcid.to_vec(), keys: suite.keys(dcid, Side::Client, v) })
    }

    /// The keys one side protects its Initial packets with.
    pub fn side(&self, client: bool) -> &DirectionalKeys {
        if client {
            &self.keys.local
        } else {
            &self.keys.remote
        }
    }
}

/// Remove header protection and decrypt the packet in `buf` (one whole packet, header first,
/// as a mutable copy) whose packet number starts at `pn_offset`. Returns the packet number and
/// the plaintext payload (frames), or `None` when the keys do not open it.
pub fn open<'a>(
    keys: &DirectionalKeys,
    buf: &'a mut [u8],
    pn_offset: usize,
    largest: Option<u64>,
) -> Option<(u64, &'a [u8])> {
    let sample_len = keys.header.sample_len();
    let at = pn_offset.checked_add(4)?;
    let mut sample = [0u8; 32];
    sample.get_mut(..sample_len)?.copy_from_slice(buf.get(at..at.checked_add(sample_len)?)?);
    let (head, rest) = buf.split_at_mut(pn_offset);
    let first = head.first_mut()?;
    keys.header.decrypt_in_place(&sample[..sample_len], first, rest.get_mut(..4)?).ok()?;
    let pn_len = usize::from(*first & 0x03) + 1;
    let truncated = rest[..pn_len].iter().fold(0u64, |v, b| v << 8 | u64::from(*b));
    let pn = decode_pn(largest, truncated, 8 * pn_len as u32);
    let (header, payload) = buf.split_at_mut(pn_offset + pn_len);
    let plain = keys.packet.decrypt_in_place(pn, header, payload).ok()?;
    Some((pn, plain))
}
