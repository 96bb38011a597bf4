//! Inspect, TDS (SQL Server, MS-TDS): the 8-byte packet header, the PRELOGIN option table and
//! what the two ENCRYPTION options negotiate, LOGIN7 and SQL sent in clear, and the unwrapper
//! that hands the TLS handshake TDS 7.x carries inside PRELOGIN packets to the TLS stream
//! parser. Must never keep or return a byte of a LOGIN7, a SQL batch, an RPC or a result (user,
//! password, host, application, database, query, rows): only packet types, option bytes from
//! closed tables and the server's version numbers.
mod prelogin;
#[cfg(test)]
mod tests;
mod unwrap;

pub use prelogin::{analyse, negotiate, Encryption, Negotiated, TdsMeta};
pub use unwrap::{Piece, Unwrap};

/// Length of a TDS packet header.
pub const HEADER_LEN: usize = 8;
/// Largest TDS packet (the negotiated packet size is at most 32 767; 65 535 fits the field).
pub const MAX_PACKET: usize = u16::MAX as usize;

/// Packet types (MS-TDS 2.2.3.1.1).
pub mod ptype {
    pub const SQL_BATCH: u8 = 0x01;
    pub const PRE_TDS7_LOGIN: u8 = 0x02;
    pub const RPC: u8 = 0x03;
    pub const TABULAR_RESULT: u8 = 0x04;
    pub const ATTENTION: u8 = 0x06;
    pub const BULK_LOAD: u8 = 0x07;
    pub const FEDAUTH_TOKEN: u8 = 0x08;
    pub const TRANSACTION_MANAGER: u8 = 0x0e;
    pub const LOGIN7: u8 = 0x10;
    pub const SSPI: u8 = 0x11;
    pub const PRELOGIN: u8 = 0x12;
}

/// Status bit: last packet of the message (EOM).
pub const STATUS_EOM: u8 = 0x01;

/// A TDS packet header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ptype: u8,
    pub status: u8,
    /// Packet length, header included (8..=65 535).
    pub length: u16,
}

impl Header {
    /// Payload bytes the packet carries after its header.
    pub fn payload_len(&self) -> usize {
        usize::from(self.length) - HEADER_LEN
    }

    pub fn eom(&self) -> bool {
        self.status & STATUS_EOM != 0
    }
}

/// Is `t` a TDS 7.x packet type a client or server sends?
pub fn known_type(t: u8) -> bool {
    use ptype::*;
    matches!(
        t,
        SQL_BATCH
            | PRE_TDS7_LOGIN
            | RPC
            | TABULAR_RESULT
            | ATTENTION
            | BULK_LOAD
            | FEDAUTH_TOKEN
            | TRANSACTION_MANAGER
            | LOGIN7
            | SSPI
            | PRELOGIN
    )
}

/// The header at the start of `b`: a known type, status bits within 0x1f (EOM, ignore, event
/// notification, reset connection, reset keeping the transaction), a length of at least the
/// header. `None` when fewer than 8 bytes or not a TDS header.
pub fn header(b: &[u8]) -> Option<Header> {
    let h = b.get(..HEADER_LEN)?;
    let length = u16::from_be_bytes([h[2], h[3]]);
    (known_type(h[0]) && h[1] & !0x1f == 0 && usize::from(length) >= HEADER_LEN).then_some(Header {
        ptype: h[0],
        status: h[1],
        length,
    })
}

/// Does a flow's first payload open a TDS 7.x PRELOGIN message (type 0x12, status EOM or
/// continued, a length with room for an option table, and the VERSION option first when the
/// payload shows it)? Decides, on whatever prefix arrived, whether the flow's directions go
/// through an [`Unwrap`].
pub fn is_prelogin(first: &[u8]) -> bool {
    let ok = |i: usize, f: &dyn Fn(u8) -> bool| first.get(i).is_none_or(|&b| f(b));
    first.first() == Some(&ptype::PRELOGIN)
        && ok(1, &|s| s & !0x1f == 0)
        && match first.get(2..4) {
            Some(l) => usize::from(u16::from_be_bytes([l[0], l[1]])) >= HEADER_LEN + 6,
            None => true,
        }
        && ok(HEADER_LEN, &|t| t == prelogin::OPT_VERSION)
}

/// Does `b` start with a TLS record header (content type 20..=24, major version 3)? After the
/// handshake TDS 7.x sends TLS records raw on the stream; a TDS packet never starts so (types
/// 20..=24 are not TDS types).
fn tls_record_start(b: &[u8]) -> bool {
    matches!(b, [20..=24, 3, ..])
}
