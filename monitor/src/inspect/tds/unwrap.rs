//! Inspect, TDS, unwrapper: one direction of a TDS 7.x stream in, the TLS bytes it carries out
//! — the payloads of PRELOGIN packets that hold a handshake, then, once TLS records go raw on
//! the stream, every byte — plus a signal when the direction goes on in clear (LOGIN7, SQL,
//! results). Split anywhere, the bytes come out the same. Must never keep more than a packet
//! header, nor hand out a byte of a clear TDS message.
use super::{header, ptype, HEADER_LEN};

/// What the unwrapper hands on.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// TLS bytes, in stream order.
    Tls(&'a [u8]),
    /// A TDS message other than PRELOGIN (and the server's PRELOGIN answer) began in clear.
    Clear,
}

/// What the current message's payload is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Kind {
    /// A PRELOGIN message whose first payload byte has not come yet.
    #[default]
    Undecided,
    /// TLS handshake bytes (a PRELOGIN payload starting with a TLS record).
    Tls,
    /// Anything else: not handed on.
    Skip,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    /// TDS packets.
    #[default]
    Packets,
    /// TLS records raw on the stream: everything is handed on.
    Raw,
    /// Not TDS (a bad header): nothing more is handed on.
    Broken,
}

/// The unwrapper of one direction.
#[derive(Debug, Default)]
pub struct Unwrap {
    state: State,
    hdr: [u8; HEADER_LEN],
    /// Header bytes in `hdr` (0 between packets).
    have: usize,
    /// Payload bytes left in the current packet.
    left: usize,
    /// The current packet ends its message.
    eom: bool,
    /// The next packet opens a message.
    new_message: bool,
    kind: Kind,
    /// Messages finished.
    messages: u32,
}

impl Unwrap {
    pub fn new() -> Self {
        Unwrap { new_message: true, ..Unwrap::default() }
    }

    /// Did the direction stop being TDS (a header that is not one)?
    pub fn broken(&self) -> bool {
        self.state == State::Broken
    }

    /// Feed the next contiguous bytes of the direction; `out` gets what they carry, in order.
    pub fn feed<'a>(&mut self, data: &'a [u8], out: &mut dyn FnMut(Piece<'a>)) {
        let mut b = data;
        while !b.is_empty() {
            match self.state {
                State::Raw => return out(Piece::Tls(b)),
                State::Broken => return,
                State::Packets => {}
            }
            if self.left == 0 {
                if self.have == 0 && matches!(b[0], 20..=24) {
                    // Between packets, a TLS content type (never a TDS packet type).
                    self.state = State::Raw;
                    continue;
                }
                let take = (HEADER_LEN - self.have).min(b.len());
                self.hdr[self.have..self.have + take].copy_from_slice(&b[..take]);
                self.have += take;
                b = &b[take..];
                if self.have < HEADER_LEN {
                    return;
                }
                self.have = 0;
                let Some(h) = header(&self.hdr) else {
                    self.state = State::Broken;
                    return;
                };
                if self.new_message {
                    self.kind = match h.ptype {
                        ptype::PRELOGIN => Kind::Undecided,
                        // The server's answer to PRELOGIN is its first message.
                        ptype::TABULAR_RESULT if self.messages == 0 => Kind::Skip,
                        _ => {
                            out(Piece::Clear);
                            Kind::Skip
                        }
                    };
                }
                self.left = h.payload_len();
                self.eom = h.eom();
                self.new_message = false;
                if self.left == 0 {
                    self.end_packet();
                }
                continue;
            }
            let take = self.left.min(b.len());
            let chunk = &b[..take];
            if self.kind == Kind::Undecided {
                self.kind = if matches!(chunk[0], 20..=22) { Kind::Tls } else { Kind::Skip };
            }
            if self.kind == Kind::Tls {
                out(Piece::Tls(chunk));
            }
            self.left -= take;
            b = &b[take..];
            if self.left == 0 {
                self.end_packet();
            }
        }
    }

    fn end_packet(&mut self) {
        if self.eom {
            self.messages = self.messages.saturating_add(1);
            self.new_message = true;
        }
    }
}
