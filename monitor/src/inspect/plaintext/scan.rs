//! Inspect, plaintext, byte scanning: bounded searches and validators the inspectors share.
//! Must never allocate more than the validated value it returns.

/// First position of `needle` in `hay` (exact bytes).
pub(super) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// First position of `needle` in `hay`, ASCII case-insensitive.
pub(super) fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w.eq_ignore_ascii_case(needle))
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
