//! Inspect, TDS, PRELOGIN: the option table both sides send first (VERSION, ENCRYPTION), what
//! the two ENCRYPTION values negotiate (MS-TDS 2.2.6.5), and a walk over both clear heads that
//! says whether LOGIN7 or SQL went in clear. Must never keep a byte of a LOGIN7, a batch or a
//! result: the walk looks at packet types and one length field of LOGIN7, nothing else.
use serde::Serialize;

use super::{header, ptype, tls_record_start, Header, HEADER_LEN};

pub(super) const OPT_VERSION: u8 = 0x00;
const OPT_ENCRYPTION: u8 = 0x01;
const OPT_TERMINATOR: u8 = 0xff;
/// Most options read from one table (MS-TDS defines 8; room for future ones).
const MAX_OPTIONS: usize = 32;
/// Most bytes of a PRELOGIN option message put together across packets.
const MAX_OPTIONS_MESSAGE: usize = 4096;
/// Most packets looked at per direction.
const MAX_PACKETS: usize = 256;
/// ENCRYPTION bit a client sets to ask for certificate authentication (TDS 7.4+).
const ENCRYPT_CLIENT_CERT: u8 = 0x80;

/// One side's ENCRYPTION option (the low bits; [`ENCRYPT_CLIENT_CERT`] apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Encryption {
    /// ENCRYPT_OFF (0x00): encryption available but off.
    Off,
    /// ENCRYPT_ON (0x01): encryption available and on.
    On,
    /// ENCRYPT_NOT_SUP (0x02): encryption not available.
    NotSupported,
    /// ENCRYPT_REQ (0x03): encryption required.
    Required,
}

impl Encryption {
    /// The option byte's mode, `None` for a value outside the table.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b & !ENCRYPT_CLIENT_CERT {
            0 => Some(Encryption::Off),
            1 => Some(Encryption::On),
            2 => Some(Encryption::NotSupported),
            3 => Some(Encryption::Required),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Encryption::Off => "off",
            Encryption::On => "on",
            Encryption::NotSupported => "not-supported",
            Encryption::Required => "required",
        }
    }
}

/// What the PRELOGIN exchange leaves encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Negotiated {
    /// TLS for the whole session.
    Full,
    /// TLS for the LOGIN7 packet only; queries and results follow in clear.
    LoginOnly,
    /// No TLS at all: LOGIN7, queries and results in clear.
    None,
    /// One side requires what the other cannot do: the connection ends.
    Terminated,
}

impl Negotiated {
    pub fn as_str(self) -> &'static str {
        match self {
            Negotiated::Full => "full",
            Negotiated::LoginOnly => "login-only",
            Negotiated::None => "none",
            Negotiated::Terminated => "terminated",
        }
    }

    /// Do queries and results travel in clear?
    pub fn clear_data(self) -> bool {
        matches!(self, Negotiated::LoginOnly | Negotiated::None)
    }
}

/// MS-TDS 2.2.6.5: the client's ENCRYPTION value against the server's answer.
pub fn negotiate(client: Encryption, server: Encryption) -> Negotiated {
    use Encryption::*;
    match (client, server) {
        (NotSupported, On | Required) => Negotiated::Terminated,
        (_, On | Required) => Negotiated::Full,
        (Off, Off) => Negotiated::LoginOnly,
        (NotSupported, Off | NotSupported) | (Off, NotSupported) => Negotiated::None,
        (On | Required, Off | NotSupported) => Negotiated::Terminated,
    }
}

/// What a TDS session's clear start showed. Option values from closed tables, the server's
/// version numbers, and flags; never a value from LOGIN7 or a query.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TdsMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_encryption: Option<Encryption>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_encryption: Option<Encryption>,
    /// The client set ENCRYPT_CLIENT_CERT (certificate authentication).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub client_cert: bool,
    /// What the two options negotiate (both seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<Negotiated>,
    /// The server's PRELOGIN VERSION: `major.minor.build` (e.g. `16.0.1000` for SQL Server 2022).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The client's TLS handshake travelled in PRELOGIN packets (TDS 7.x encryption).
    pub tls_in_prelogin: bool,
    /// A LOGIN7 packet went in clear (user name, host and application names, and the
    /// password or SSPI token, readable by anyone on the path).
    pub login7_in_clear: bool,
    /// That LOGIN7 carried a SQL Server password (SQL authentication: obfuscated, not
    /// encrypted).
    #[serde(skip)]
    pub login7_password: bool,
    /// SQL batches, RPCs or bulk loads went in clear after the login.
    pub sql_in_clear: bool,
}

/// An option table's values of interest.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    version: Option<[u8; 6]>,
    encryption: Option<u8>,
}

/// Parse a PRELOGIN option table (offsets relative to the table's start). `None` when it is
/// not one: an entry or value out of bounds, no terminator, too many entries.
fn options(data: &[u8]) -> Option<Options> {
    let mut o = Options::default();
    for i in 0..MAX_OPTIONS {
        let at = i * 5;
        let token = *data.get(at)?;
        if token == OPT_TERMINATOR {
            return Some(o);
        }
        if i == 0 && token != OPT_VERSION {
            return None;
        }
        let e = data.get(at + 1..at + 5)?;
        let (off, len) = (usize::from(u16::from_be_bytes([e[0], e[1]])), usize::from(u16::from_be_bytes([e[2], e[3]])));
        let v = data.get(off..off + len)?;
        match token {
            OPT_VERSION if len >= 6 => o.version = Some([v[0], v[1], v[2], v[3], v[4], v[5]]),
            OPT_ENCRYPTION if len >= 1 => o.encryption = Some(v[0]),
            _ => {}
        }
    }
    None
}

/// One step of a walk over a direction's clear head.
enum Step<'a> {
    /// A packet: its header and payload (cut short only for the last packet of the head).
    Packet(Header, &'a [u8]),
    /// TLS records raw on the stream from here (TDS 7.x after the handshake).
    Tls,
}

/// The packets at the start of `b`, up to raw TLS or a bad header; the last one may be cut by
/// the end of the head (what the head holds depends on where segments ended: a packet's type
/// and first payload byte must tell the same whatever the cut).
fn walk(b: &[u8]) -> impl Iterator<Item = Step<'_>> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let rest = b.get(pos..)?;
        if tls_record_start(rest) {
            pos = b.len();
            return Some(Step::Tls);
        }
        let h = header(rest)?;
        let end = usize::from(h.length).min(rest.len());
        pos += usize::from(h.length);
        Some(Step::Packet(h, &rest[HEADER_LEN..end]))
    })
    .take(MAX_PACKETS)
}

/// The first message of a direction, if it is of type `want`: its packets' payloads put
/// together (bounded), and the packets it took.
fn first_message(b: &[u8], want: u8) -> Option<(Vec<u8>, usize)> {
    let mut msg = Vec::new();
    for (n, step) in walk(b).enumerate() {
        let Step::Packet(h, payload) = step else { return None };
        let cut = payload.len() < h.payload_len();
        if cut || h.ptype != want || msg.len() + payload.len() > MAX_OPTIONS_MESSAGE {
            return None;
        }
        msg.extend_from_slice(payload);
        if h.eom() {
            return Some((msg, n + 1));
        }
    }
    None
}

/// LOGIN7 (MS-TDS 2.2.6.4): the password's length (cchPassword, little-endian at offset 46 of
/// the message) says SQL authentication. Nothing else of the packet is read.
fn login7_has_password(payload: &[u8]) -> bool {
    payload.get(46..48).is_some_and(|c| u16::from_le_bytes([c[0], c[1]]) > 0)
}

/// The TDS session in the clear heads of a flow (client's first): `None` unless the client
/// began with a PRELOGIN option table.
pub fn analyse(client: &[u8], server: &[u8]) -> Option<TdsMeta> {
    let (req, used) = first_message(client, ptype::PRELOGIN)?;
    let copts = options(&req)?;
    let mut m = TdsMeta::default();
    if let Some(b) = copts.encryption {
        m.client_encryption = Encryption::from_byte(b);
        m.client_cert = b & ENCRYPT_CLIENT_CERT != 0;
    }
    if let Some((resp, _)) = first_message(server, ptype::TABULAR_RESULT) {
        if let Some(sopts) = options(&resp) {
            m.server_encryption = sopts.encryption.and_then(Encryption::from_byte);
            m.server_version = sopts.version.map(|v| format!("{}.{}.{}", v[0], v[1], u16::from_be_bytes([v[2], v[3]])));
        }
    }
    if let (Some(c), Some(s)) = (m.client_encryption, m.server_encryption) {
        m.negotiated = Some(negotiate(c, s));
    }
    let mut first_of_message = true;
    for step in walk(client).skip(used) {
        let Step::Packet(h, payload) = step else { break };
        if first_of_message {
            match h.ptype {
                ptype::PRELOGIN => m.tls_in_prelogin |= payload.first().is_some_and(|&b| matches!(b, 20..=22)),
                ptype::LOGIN7 => {
                    m.login7_in_clear = true;
                    m.login7_password |= login7_has_password(payload);
                }
                ptype::SQL_BATCH | ptype::RPC | ptype::BULK_LOAD => m.sql_in_clear = true,
                _ => {}
            }
        }
        first_of_message = h.eom();
    }
    Some(m)
}
