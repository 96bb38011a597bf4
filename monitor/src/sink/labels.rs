//! Sink, JSON labels: how an event writes the codes a handshake carries — versions, groups,
//! signature algorithms, times — as the strings the schema names, without allocating for the
//! names tlsmon knows. Pure functions of their input; must never name a value differently
//! from the formatting they replace (the unit tests compare both).
use std::borrow::Cow;

use serde::Serialize;

use crate::inspect::names::{group_label, group_name, version_parts};
use crate::inspect::tls::hello::is_grease;

/// A wire version as `tls1.2`, `dtls1.0` …, else `0xNNNN` (the names without an allocation).
pub(super) fn version_label(v: u16) -> Cow<'static, str> {
    match version_parts(v) {
        Some(("ssl", "2.0")) => "ssl2.0".into(),
        Some(("ssl", "3.0")) => "ssl3.0".into(),
        Some(("tls", "1.0")) => "tls1.0".into(),
        Some(("tls", "1.1")) => "tls1.1".into(),
        Some(("tls", "1.2")) => "tls1.2".into(),
        Some(("tls", "1.3")) => "tls1.3".into(),
        Some(("dtls", "1.0")) => "dtls1.0".into(),
        Some(("dtls", "1.2")) => "dtls1.2".into(),
        Some(("dtls", "1.3")) => "dtls1.3".into(),
        Some((p, n)) => format!("{p}{n}").into(),
        None => format!("0x{v:04x}").into(),
    }
}

/// A named group's IANA name, else `0xNNNN` ([`group_label`] without an allocation).
pub(super) fn group_cow(g: u16) -> Cow<'static, str> {
    match group_name(g) {
        Some(n) => n.into(),
        None => group_label(g).into(),
    }
}

/// The values of a hello's list but GREASE, each labelled (allocated once: `collect` cannot
/// size a filtered list, and grows it a few times for a client's dozens of suites).
pub(super) fn labels<T>(values: &[u16], label: impl Fn(u16) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    out.extend(values.iter().copied().filter(|v| !is_grease(*v)).map(label));
    out
}

/// A 16-bit code as `0xNNNN` (lowercase hex), written without a `String`.
#[derive(Clone, Copy)]
pub struct Hex4(pub u16);

impl Serialize for Hex4 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut b = *b"0x0000";
        for (i, shift) in [12, 8, 4, 0].into_iter().enumerate() {
            b[2 + i] = HEX[usize::from((self.0 >> shift) & 0xf)];
        }
        s.serialize_str(std::str::from_utf8(&b).unwrap_or_default())
    }
}

/// `v` in decimal into all of `out`, zero-padded (the digits that do not fit are dropped).
pub(super) fn put_digits(out: &mut [u8], mut v: u64) {
    for d in out.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of `secs` after the epoch into the first 19 bytes of `b` (years up
/// to 9999 fit).
pub(super) fn put_datetime(b: &mut [u8], secs: u64) {
    let (days, sod) = (secs / 86_400, secs % 86_400);
    // Days to civil date (H. Hinnant's `civil_from_days`, for days >= 0).
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    put_digits(&mut b[0..4], year);
    put_digits(&mut b[5..7], month);
    put_digits(&mut b[8..10], day);
    put_digits(&mut b[11..13], sod / 3600);
    put_digits(&mut b[14..16], sod / 60 % 60);
    put_digits(&mut b[17..19], sod % 60);
}

/// An event's RFC 3339 UTC time with microseconds ([`super::json::rfc3339`]), kept inline: copied, never
/// allocated.
#[derive(Clone, Copy)]
pub struct Stamp([u8; 27]);

impl Stamp {
    /// `ns` after the epoch, as [`rfc3339`] writes it (a u64 of nanoseconds ends in 2554).
    pub fn new(ns: u64) -> Self {
        let mut b = *b"0000-00-00T00:00:00.000000Z";
        put_datetime(&mut b, ns / 1_000_000_000);
        put_digits(&mut b[20..26], (ns % 1_000_000_000) / 1000);
        Stamp(b)
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        let hex = |v| serde_json::to_string(&Hex4(v)).unwrap();
        assert_eq!([hex(0x0403), hex(0xabcd), hex(0)], ["\"0x0403\"", "\"0xabcd\"", "\"0x0000\""]);
        for v in [0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0x7f1c, 0xfb1a, 0xfeff, 0xfefd, 0xfefc, 0x1234] {
            let old = match version_parts(v) {
                Some((p, n)) => format!("{p}{n}"),
                None => format!("0x{v:04x}"),
            };
            assert_eq!(version_label(v), old);
        }
        for g in [23, 29, 0x11ec, 0x0a0a, 0x1234] {
            assert_eq!(group_cow(g), group_label(g));
        }
    }
}
