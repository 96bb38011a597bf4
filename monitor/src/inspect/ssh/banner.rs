//! Inspect, SSH, banners: the identification string (RFC 4253 §4.2,
//! `SSH-protoversion-softwareversion SP comments CR LF`), after at most a bounded number of
//! other lines (which the RFC allows the server to send first). Must never keep a byte of the
//! other lines, nor a banner field outside its charset and length bound.

/// Bytes of lines before the banner we look through (OpenSSH's client reads up to 1024 lines;
/// a real pre-banner message is a few lines).
pub const MAX_PREFIX: usize = 8 << 10;
/// Longest identification line (RFC 4253 §4.2: 255 characters with CR LF).
pub const MAX_LINE: usize = 255;
/// Longest software version / comment we report.
const MAX_FIELD: usize = 64;

/// One side's identification string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Banner {
    /// `2.0`, `1.99`, `1.5` (digits and dots, at most 8).
    pub proto: String,
    /// `OpenSSH_9.2p1` (printable ASCII without spaces, at most 64; `?` replaces the rest).
    pub software: String,
    /// `Debian-2+deb12u6` (printable ASCII, at most 64), absent when none.
    pub comments: Option<String>,
    /// Lines the side sent before the banner.
    pub lines_before: u32,
}

/// Why no banner came out of a direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BannerError {
    /// The bytes end before the banner's line feed.
    Truncated,
    /// No `SSH-` line within [`MAX_PREFIX`] bytes, an over-long or malformed banner line.
    Malformed,
}

/// The banner of one direction and the offset of the first byte after its line.
pub fn parse(bytes: &[u8]) -> Result<(Banner, usize), BannerError> {
    let mut at = 0;
    let mut lines_before = 0u32;
    loop {
        let rest = &bytes[at..];
        let window = &rest[..rest.len().min(if rest.starts_with(b"SSH-") { MAX_LINE } else { MAX_PREFIX })];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            // All there is fits the window: the line may yet end.
            return Err(if window.len() == rest.len() && at + rest.len() < MAX_PREFIX {
                BannerError::Truncated
            } else {
                BannerError::Malformed
            });
        };
        let line = &rest[..nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(id) = line.strip_prefix(b"SSH-") {
            return Ok((identification(id, lines_before)?, at + nl + 1));
        }
        at += nl + 1;
        lines_before += 1;
        if at >= MAX_PREFIX {
            return Err(BannerError::Malformed);
        }
    }
}

/// `protoversion-softwareversion[ SP comments]` after `SSH-`.
fn identification(id: &[u8], lines_before: u32) -> Result<Banner, BannerError> {
    let dash = id.iter().position(|&b| b == b'-').ok_or(BannerError::Malformed)?;
    let proto = &id[..dash];
    if proto.is_empty() || proto.len() > 8 || !proto.iter().all(|b| b.is_ascii_digit() || *b == b'.') {
        return Err(BannerError::Malformed);
    }
    let rest = &id[dash + 1..];
    let (software, comments) = match rest.iter().position(|&b| b == b' ') {
        Some(sp) => (&rest[..sp], Some(&rest[sp + 1..])),
        None => (rest, None),
    };
    let software = clean(software, |b| (0x21..=0x7e).contains(&b));
    let comments = comments.map(|c| clean(c, |b| (0x20..=0x7e).contains(&b))).filter(|c| !c.is_empty());
    Ok(Banner { proto: String::from_utf8_lossy(proto).into_owned(), software, comments, lines_before })
}

/// At most [`MAX_FIELD`] bytes, each outside `ok` replaced by `?`.
fn clean(field: &[u8], ok: impl Fn(u8) -> bool) -> String {
    field.iter().take(MAX_FIELD).map(|&b| if ok(b) { b as char } else { '?' }).collect()
}

impl Banner {
    /// SSH protocol 1 (`1.x`), or a server that still accepts it (`1.99`).
    pub fn speaks_v1(&self) -> bool {
        self.proto.starts_with("1.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_variants() {
        let (b, end) = parse(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n\0\0\0\x14").unwrap();
        assert_eq!((b.proto.as_str(), b.software.as_str()), ("2.0", "OpenSSH_9.2p1"));
        assert_eq!(b.comments.as_deref(), Some("Debian-2+deb12u6"));
        assert_eq!(end, 40);
        // LF only, no comments, lines before it (server side).
        let (b, end) = parse(b"Welcome\r\nauthorised use only\nSSH-1.99-Cisco-1.25\nrest").unwrap();
        assert_eq!((b.proto.as_str(), b.software.as_str(), b.lines_before), ("1.99", "Cisco-1.25", 2));
        assert!(b.speaks_v1());
        assert_eq!(end, 49);
        let (b, _) = parse(b"SSH-1.5-1.2.27\n").unwrap();
        assert!(b.speaks_v1() && b.comments.is_none());
        // Control bytes are replaced, long fields cut.
        let long = [b"SSH-2.0-".as_slice(), &[b'A'; 100], b"\x01 \xff\n"].concat();
        let (b, _) = parse(&long).unwrap();
        assert_eq!(b.software.len(), 64);
        assert_eq!(b.comments.as_deref(), Some("?"));
        let (b, _) = parse(b"SSH-2.0-x\x07y\r\n").unwrap();
        assert_eq!(b.software, "x?y");
    }

    #[test]
    fn banner_errors() {
        assert_eq!(parse(b"SSH-2.0-OpenSSH_9"), Err(BannerError::Truncated));
        assert_eq!(parse(b"SS"), Err(BannerError::Truncated));
        assert_eq!(parse(b""), Err(BannerError::Truncated));
        assert_eq!(parse(b"SSH-2.0OpenSSH\r\n"), Err(BannerError::Malformed));
        assert_eq!(parse(b"SSH-x.0-OpenSSH\r\n"), Err(BannerError::Malformed));
        assert_eq!(parse(b"SSH--OpenSSH\r\n"), Err(BannerError::Malformed));
        // An identification line longer than 255 bytes.
        let long = [b"SSH-2.0-".as_slice(), &[b'A'; 300], b"\r\n"].concat();
        assert_eq!(parse(&long), Err(BannerError::Malformed));
        // More than MAX_PREFIX bytes of other lines.
        let many = b"hello\n".repeat(MAX_PREFIX / 6 + 2);
        assert_eq!(parse(&[many.as_slice(), b"SSH-2.0-x\n"].concat()), Err(BannerError::Malformed));
        // A line without end that is not a banner start and is long.
        assert_eq!(parse(&[b'x'; MAX_PREFIX + 10]), Err(BannerError::Malformed));
    }
}
