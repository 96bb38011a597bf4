//! Inspect, QUIC frames of a decrypted Initial packet (RFC 9000 §19): PADDING, PING, ACK,
//! CRYPTO and CONNECTION_CLOSE; anything else ends the walk (Initial packets carry no other).
//! Must never read past the payload: a frame cut short ends the walk as malformed.
use super::packet::varint;

/// A frame that carries something tlsmon keeps.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    Crypto { offset: u64, data: &'a [u8] },
    Close { code: u64, application: bool },
}

/// How a walk over a packet's frames ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Walk {
    /// Every frame was read.
    Complete,
    /// A frame type an Initial packet may not carry (the walk stopped there).
    Unexpected(u64),
    /// A frame was cut short or its lengths did not fit.
    Malformed,
}

/// Walk the frames of `p`, handing CRYPTO and CONNECTION_CLOSE frames to `f`.
pub fn walk<'a>(p: &'a [u8], mut f: impl FnMut(Frame<'a>)) -> Walk {
    let mut pos = 0;
    while pos < p.len() {
        let Some(ty) = varint(p, &mut pos) else { return Walk::Malformed };
        let ok = match ty {
            0x00 | 0x01 => Some(()),
            0x02 | 0x03 => ack(p, &mut pos, ty == 0x03),
            0x06 => crypto(p, &mut pos).map(|(offset, data)| f(Frame::Crypto { offset, data })),
            0x1c | 0x1d => close(p, &mut pos, ty == 0x1d).map(|code| f(Frame::Close { code, application: ty == 0x1d })),
            other => return Walk::Unexpected(other),
        };
        if ok.is_none() {
            return Walk::Malformed;
        }
    }
    Walk::Complete
}

/// CRYPTO: offset, length, data.
fn crypto<'a>(p: &'a [u8], pos: &mut usize) -> Option<(u64, &'a [u8])> {
    let offset = varint(p, pos)?;
    let len = usize::try_from(varint(p, pos)?).ok()?;
    let data = p.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some((offset, data))
}

/// CONNECTION_CLOSE: error code, [the frame type that caused it,] reason phrase (skipped,
/// never kept); returns the code.
fn close(p: &[u8], pos: &mut usize, application: bool) -> Option<u64> {
    let code = varint(p, pos)?;
    if !application {
        varint(p, pos)?;
    }
    let len = usize::try_from(varint(p, pos)?).ok()?;
    p.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(code)
}

/// ACK / ACK_ECN: largest, delay, range count, first range, (gap, length) per range, [3 ECN
/// counts].
fn ack(p: &[u8], pos: &mut usize, ecn: bool) -> Option<()> {
    varint(p, pos)?;
    varint(p, pos)?;
    let ranges = varint(p, pos)?;
    varint(p, pos)?;
    for _ in 0..ranges {
        // Each range is at least two bytes: a forged count cannot spin past the payload.
        varint(p, pos)?;
        varint(p, pos)?;
    }
    if ecn {
        for _ in 0..3 {
            varint(p, pos)?;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_frames() {
        // PING, ACK (largest 5, delay 0, 1 more range), CRYPTO at 3 "abc", PADDING, CLOSE 0x0a.
        let p = [1, 2, 5, 0, 1, 0, 1, 1, 6, 3, 3, b'a', b'b', b'c', 0, 0, 0x1c, 0x0a, 0, 0];
        let mut seen = Vec::new();
        assert_eq!(walk(&p, |f| seen.push(format!("{f:?}"))), Walk::Complete);
        assert_eq!(seen, ["Crypto { offset: 3, data: [97, 98, 99] }", "Close { code: 10, application: false }"]);
        assert_eq!(walk(&[6, 0, 9, 1], |_| ()), Walk::Malformed);
        assert_eq!(walk(&[0, 0x08, 1], |_| ()), Walk::Unexpected(8));
        // A range count far past the payload ends as malformed, at once.
        assert_eq!(walk(&[2, 0, 0, 0xbf, 0xff, 0xff, 0xff, 0], |_| ()), Walk::Malformed);
    }
}
