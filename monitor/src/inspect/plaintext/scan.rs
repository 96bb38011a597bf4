//! Inspect, plaintext, byte scanning: bounded searches and validators the inspectors share.
//! Must never allocate more than the validated value it returns.

/// First position of `needle` in `hay` (exact bytes).
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    find_by(hay, needle, |a, b| a == b)
}

/// First position of `needle` in `hay`, ASCII case-insensitive.
pub(super) fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    find_by(hay, needle, |a, b| a.eq_ignore_ascii_case(&b))
}

/// First position where every byte of `needle` matches `hay` under `eq`: a scan for the
/// first byte, then the rest compared (a window compared at every position costs several
/// times more, and the inspectors search kilobytes of clear bytes per flow).
fn find_by(hay: &[u8], needle: &[u8], eq: impl Fn(u8, u8) -> bool) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last = hay.len().checked_sub(needle.len())?;
    let mut from = 0;
    while from <= last {
        let at = from + hay[from..=last].iter().position(|&b| eq(b, first))?;
        if hay[at + 1..at + needle.len()].iter().zip(rest).all(|(&h, &n)| eq(h, n)) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Does `s` start with `prefix`, ASCII case-insensitive?
pub(super) fn starts_ci(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A validated string: `s` is 1..=`max` bytes, all accepted by `ok`.
pub(super) fn validated(s: &[u8], max: usize, ok: impl Fn(u8) -> bool) -> Option<String> {
    if s.is_empty() || s.len() > max || !s.iter().all(|&b| ok(b)) {
        return None;
    }
    // All bytes passed an ASCII predicate, so this is valid UTF-8.
    std::str::from_utf8(s).ok().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first window equal to the needle, as `windows().position()` finds it.
    #[test]
    fn finds_the_first_window() {
        let hay = b"xxISAisa ISA*00*ISx\r\nIS";
        for n in 0..=hay.len() {
            for needle in [&b"ISA"[..], b"isa", b"IS", b"S", b"x", b"A*0", b"IS\r", b"", b"zz", &hay[..], &hay[n..]] {
                let h = &hay[..n];
                let exact = (!needle.is_empty() && needle.len() <= h.len())
                    .then(|| h.windows(needle.len()).position(|w| w == needle))
                    .flatten();
                let ci = (!needle.is_empty() && needle.len() <= h.len())
                    .then(|| h.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle)))
                    .flatten();
                assert_eq!(find(h, needle), exact, "{n} {needle:?}");
                assert_eq!(find_ci(h, needle), ci, "{n} {needle:?}");
            }
        }
    }
}
