//! Source, offline: capture time units (pcap µs or ns, pcapng any `if_tsresol` — powers of 10
//! and of 2 — plus `if_tsoffset`) → ns since the Unix epoch.
//! Must never overflow nor wrap: a time outside [1970, 2200) is refused, never clamped.
//!
//! The arithmetic is exact in i128 (a pcapng timestamp is at most 2^64 − 1 units and the offset
//! a signed 64-bit count of seconds, so every intermediate stays under 2^96). The window ends in
//! 2200 rather than at `u64::MAX` ns (2554) so that packet time plus any idle timeout or sweep
//! interval stays far inside u64.

const NS_PER_S: u64 = 1_000_000_000;

/// The first instant refused: 2200-01-01T00:00:00Z, in ns since the Unix epoch. A capture
/// claiming a later time (or one before 1970) is corrupt or hostile, not a recording.
pub const END_NS: u64 = 7_258_118_400 * NS_PER_S;

/// Units per second of a pcapng `if_tsresol`: 10^n, or 2^n when the top bit is set (n < 128).
/// Powers of 10 past 10^38 do not fit u128; they are taken as 10^38, which gives the same
/// times: any 64-bit timestamp is then under 1 ns past the interface's offset.
pub fn units_per_s(tsresol: u8) -> u128 {
    let n = u32::from(tsresol & 0x7f);
    if tsresol & 0x80 == 0 {
        10u128.pow(n.min(38))
    } else {
        1u128 << n
    }
}

/// A classic pcap record's time: seconds and the fraction in µs (or ns when `nanos`). The
/// fraction is not reduced modulo a second (a writer's 1 000 000 µs is one more second).
pub fn pcap_ns(ts_sec: u32, ts_frac: u32, nanos: bool) -> Option<u64> {
    let per_s = if nanos { NS_PER_S } else { 1_000_000 };
    ns_since_epoch(i128::from(ts_sec), u128::from(ts_frac), u128::from(per_s))
}

/// A pcapng packet's time: `units` at `per_s` units per second (see [`units_per_s`]) after the
/// interface's `offset_s` seconds.
pub fn pcapng_ns(units: u64, per_s: u128, offset_s: i64) -> Option<u64> {
    // The usual resolutions, µs (the default) and ns, in 64-bit arithmetic by constants: the
    // same results, without two 128-bit divisions per packet.
    match per_s {
        1_000_000 => return whole_ns(units, 1_000_000, offset_s),
        NS_PER_S_128 => return whole_ns(units, NS_PER_S, offset_s),
        _ => {}
    }
    exact_ns(units, per_s, offset_s)
}

const NS_PER_S_128: u128 = NS_PER_S as u128;

/// [`pcapng_ns`] for a resolution that divides a second into whole ns.
#[inline(always)]
fn whole_ns(units: u64, per_s: u64, offset_s: i64) -> Option<u64> {
    // units / per_s < 2^64 / 10^6 < 2^63: it fits i64.
    let secs = i64::try_from(units / per_s).ok()?.checked_add(offset_s)?;
    let frac_ns = units % per_s * (NS_PER_S / per_s);
    let ns = u64::try_from(secs).ok()?.checked_mul(NS_PER_S)?.checked_add(frac_ns)?;
    (ns < END_NS).then_some(ns)
}

/// [`pcapng_ns`] for any resolution, in i128.
fn exact_ns(units: u64, per_s: u128, offset_s: i64) -> Option<u64> {
    let per_s = per_s.max(1);
    let units = u128::from(units);
    // units / per_s ≤ 2^64 − 1: the conversion cannot fail, 0 keeps it total anyway.
    let secs = i128::try_from(units / per_s).unwrap_or(0) + i128::from(offset_s);
    ns_since_epoch(secs, units % per_s, per_s)
}

/// `secs` + `frac` / `per_s` seconds → ns since the epoch, `None` outside [0, [`END_NS`]).
/// Callers keep |secs| < 2^66 and frac < 2^64, so nothing here can overflow.
fn ns_since_epoch(secs: i128, frac: u128, per_s: u128) -> Option<u64> {
    let frac_ns = i128::try_from(frac * u128::from(NS_PER_S) / per_s).ok()?;
    let ns = secs.checked_mul(i128::from(NS_PER_S))?.checked_add(frac_ns)?;
    u64::try_from(ns).ok().filter(|ns| *ns < END_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NS_PER_S;

    #[test]
    fn end_is_2200() {
        // 230 years from 1970, 56 of them leap (2000 is one, 2100 is not).
        assert_eq!(END_NS, (230 * 365 + 56) * 86_400 * S);
    }

    #[test]
    fn resolutions() {
        assert_eq!(units_per_s(0), 1);
        assert_eq!(units_per_s(1), 10);
        assert_eq!(units_per_s(6), 1_000_000);
        assert_eq!(units_per_s(9), 1_000_000_000);
        assert_eq!(units_per_s(0x80 | 10), 1024);
        assert_eq!(units_per_s(0x80 | 127), 1 << 127);
        assert_eq!(units_per_s(127), 10u128.pow(38));
    }

    #[test]
    fn classic_pcap_units() {
        assert_eq!(pcap_ns(100, 5, false), Some(100 * S + 5_000));
        assert_eq!(pcap_ns(100, 5, true), Some(100 * S + 5));
        // The largest classic time (2106) is inside the window, its fraction unreduced.
        assert_eq!(pcap_ns(u32::MAX, u32::MAX, false), Some(u64::from(u32::MAX) * S + u64::from(u32::MAX) * 1000));
    }

    #[test]
    fn pcapng_units_at_their_edges() {
        let t = 1_700_000_000u64;
        assert_eq!(pcapng_ns(t, units_per_s(0), 0), Some(t * S));
        assert_eq!(pcapng_ns(t * 10 + 3, units_per_s(1), 0), Some(t * S + 300_000_000));
        assert_eq!(pcapng_ns(t * 1_000_000 + 7, units_per_s(6), 0), Some(t * S + 7_000));
        assert_eq!(pcapng_ns(t * S + 7, units_per_s(9), 0), Some(t * S + 7));
        assert_eq!(pcapng_ns((t << 10) + 512, units_per_s(0x80 | 10), 0), Some(t * S + 500_000_000));
        assert_eq!(pcapng_ns(t * S, units_per_s(9), 3600), Some((t + 3600) * S));
        // The probe: 2^63 s, 2^64 − 1 tenths of a second.
        assert_eq!(pcapng_ns(1 << 63, units_per_s(0), 0), None);
        assert_eq!(pcapng_ns(u64::MAX, units_per_s(1), 0), None);
        for per_s in [0, 1, 9, 19, 0x80, 0x80 | 63, 0x80 | 64, 127, 255].map(units_per_s) {
            for units in [0, 1, 1 << 63, u64::MAX] {
                for offset in [i64::MIN, -1, 0, 1, i64::MAX] {
                    if let Some(ns) = pcapng_ns(units, per_s, offset) {
                        assert!(ns < END_NS);
                    }
                }
            }
        }
        // Before 1970 and from 2200 on: refused.
        assert_eq!(pcapng_ns(0, units_per_s(6), -1), None);
        assert_eq!(pcapng_ns(u64::MAX, units_per_s(9), i64::MIN), None);
        assert_eq!(pcapng_ns(0, units_per_s(9), i64::MAX), None);
        assert_eq!(pcapng_ns(END_NS, units_per_s(9), 0), None);
        assert_eq!(pcapng_ns(END_NS - 1, units_per_s(9), 0), Some(END_NS - 1));
        // A resolution finer than the timestamp's range: everything within 1 ns of the offset.
        assert_eq!(pcapng_ns(u64::MAX, units_per_s(0x80 | 127), t as i64), Some(t * S));
        assert_eq!(pcapng_ns(u64::MAX, units_per_s(100), 0), Some(0));
    }

    #[test]
    fn usual_resolutions_match_the_exact_path() {
        let t = 1_700_000_000u64;
        let units = [0, 1, 999_999, 1_000_000, t * 1_000_000 + 7, t * S + 7, END_NS - 1, END_NS, 1 << 63, u64::MAX];
        let offsets = [i64::MIN, -(t as i64), -1, 0, 1, 3600, t as i64, i64::MAX];
        for per_s in [units_per_s(6), units_per_s(9)] {
            for u in units {
                for o in offsets {
                    assert_eq!(pcapng_ns(u, per_s, o), exact_ns(u, per_s, o), "{u} units at {per_s}/s, offset {o}");
                }
            }
        }
    }
}
