//! Capture, live, flow-map census: counts the entries of the kernel's two LRU flow maps from
//! userspace and derives how many flows the maps evicted, which the kernel cannot count itself
//! (an LRU map evicts silently): evicted = `flows_opened` - `flows_closed` - entries now in
//! FLOWS and FLOWS4.
//! Must never walk a map without a bound, walk more often than [`CENSUS_PERIOD`] (plus once at
//! exit), nor lower the derived figure (it is exported as a counter).
//!
//! The figure is exact when nothing changes during the census, approximate under concurrent
//! change: the counters are read before the walk, so flows opened during it make the entry
//! count too high and the figure too low (corrected by the next census); entries closed or
//! evicted in buckets the walk had not reached yet, or added to buckets it had passed, go
//! the other way, by at most the flows that changed during the walk (a few milliseconds in
//! batches). A key-by-key walk whose current key is deleted under it restarts at the first
//! bucket (the kernel's get-next-key does) and may count entries twice, so each map's count is
//! capped at its capacity.
//!
//! It counts every entry the maps pushed out, finished or not: a flow the program did not
//! remove (it removes only reset flows; FIN-closed and ignored flows stay until evicted) is
//! evicted once the map is full, so at a steady state over `FLOWS_MAX` flows the figure grows
//! with the rate of new flows. A SYN flood or a scan shows as evictions far above that rate.
//! Telling evictions of flows whose head was not captured yet apart from finished ones would
//! need the program to mark a flow finished (both directions encrypted, past their budget or
//! FIN'd, or the flow ignored) and count those marks, closes of marked flows and marked
//! entries at census time; the budget and FIN marks sit on paths data packets take, and the
//! census would read values too. Not done: the plain figure is exact and costs nothing per
//! packet; the comparison with `flows_opened` is what tells a flood from churn.
use std::borrow::Borrow;
use std::io;
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::time::{Duration, Instant};

use aya::maps::{HashMap, IterableMap as _, MapData, MapError};
use aya::Pod;
use monitor_common::{counter, FlowValue, FLOWS_MAX};

/// Least time between two censuses from the live tick. A census blocks the live loop (no ring
/// buffer draining) while it runs: measured here with FLOWS4 full and FLOWS empty, 35 ms in
/// batches and 67 ms key by key (the fallback); see the flow_evictions test.
pub const CENSUS_PERIOD: Duration = Duration::from_secs(10);

/// Entries of one flow map, at most `FLOWS_MAX`: in batches (BPF_MAP_LOOKUP_BATCH, kernels
/// since 5.6; the walk covers every bucket, empty or not), else key by key
/// (BPF_MAP_GET_NEXT_KEY: one syscall per entry, about twice as slow for a full map).
pub fn count_entries<T: Borrow<MapData>, K: Pod>(map: &HashMap<T, K, FlowValue>) -> Result<u64, MapError> {
    let fd = map.map().fd().as_fd().as_raw_fd();
    match count_in_batches(fd, size_of::<K>(), size_of::<FlowValue>()) {
        Ok(n) => Ok(n),
        Err(e) => {
            tracing::debug!(error = %e, "BPF_MAP_LOOKUP_BATCH failed; counting key by key");
            count_keys(map)
        }
    }
}

/// Entries of one flow map counted key by key, at most `FLOWS_MAX` (the fallback).
pub fn count_keys<T: Borrow<MapData>, K: Pod>(map: &HashMap<T, K, FlowValue>) -> Result<u64, MapError> {
    let mut n = 0u64;
    for key in map.keys().take(FLOWS_MAX as usize) {
        key?;
        n += 1;
    }
    Ok(n)
}

/// Entries per BPF_MAP_LOOKUP_BATCH call (16 calls for a full map). A hash map returns whole
/// buckets, so this must exceed the longest bucket (ENOSPC otherwise: the key walk then counts).
const BATCH: usize = 4096;
/// `BPF_MAP_LOOKUP_BATCH` (enum bpf_cmd in uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// The `batch` member of `union bpf_attr` (uapi/linux/bpf.h).
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Count a hash map's entries with BPF_MAP_LOOKUP_BATCH (keys and values are copied to a
/// scratch buffer and dropped). The batch token of a hash map is a bucket index (u32).
fn count_in_batches(fd: i32, key_size: usize, value_size: usize) -> io::Result<u64> {
    let mut keys = vec![0u8; BATCH * key_size];
    let mut values = vec![0u8; BATCH * value_size];
    let (mut token_in, mut token_out) = (0u64, 0u64);
    let mut n = 0u64;
    for call in 0..=(FLOWS_MAX as usize).div_ceil(BATCH) {
        let mut attr = BatchAttr {
            in_batch: if call == 0 { 0 } else { &raw const token_in as u64 },
            out_batch: &raw mut token_out as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: BATCH as u32,
            map_fd: fd as u32,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` is a valid bpf_attr prefix for this command; the kernel writes at most
        // `count` keys and values into buffers sized for that many, the next token into an
        // 8-byte slot (it writes 4), and the number copied back into `attr.count`.
        let r = unsafe {
            libc::syscall(libc::SYS_bpf, BPF_MAP_LOOKUP_BATCH, &raw mut attr, size_of::<BatchAttr>() as libc::c_uint)
        };
        let err = (r < 0).then(io::Error::last_os_error);
        n += u64::from(attr.count.min(BATCH as u32));
        match err {
            None => {}
            // The end of the map: the last entries (if any) were counted above.
            Some(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(n.min(u64::from(FLOWS_MAX))),
            Some(e) => return Err(e),
        }
        token_in = token_out;
    }
    Ok(n.min(u64::from(FLOWS_MAX)))
}

/// Flows the maps evicted: opened - closed - entries (saturating: 0 when the census raced ahead
/// of the counters). `values` are the summed kernel counters.
pub fn evicted(values: &[u64; counter::COUNT as usize], entries: u64) -> u64 {
    let opened = values[counter::FLOWS_OPENED as usize];
    let closed = values[counter::FLOWS_CLOSED as usize];
    opened.saturating_sub(closed).saturating_sub(entries)
}

/// The last census: when, and the figure it derived (never lowered).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Census {
    at: Option<Instant>,
    /// Count again at the next read, whatever the period (set when the capture detaches, so
    /// the last figure is taken after the last packet).
    pub(super) due: bool,
    pub(super) evicted: u64,
}

impl Census {
    /// Is a census due at `now`?
    pub(super) fn is_due(&self, now: Instant) -> bool {
        self.due || self.at.is_none_or(|at| now.duration_since(at) >= CENSUS_PERIOD)
    }

    /// Record a census at `now` that derived `evicted` (kept only if higher than the last).
    pub(super) fn record(&mut self, now: Instant, evicted: u64) {
        self.at = Some(now);
        self.due = false;
        self.evicted = self.evicted.max(evicted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicted_is_opened_less_closed_less_entries_saturating() {
        let mut v = [0u64; counter::COUNT as usize];
        v[counter::FLOWS_OPENED as usize] = 70_000;
        v[counter::FLOWS_CLOSED as usize] = 10;
        assert_eq!(evicted(&v, 65_536), 70_000 - 10 - 65_536);
        assert_eq!(evicted(&v, 69_999), 0, "a census ahead of the counters gives 0, not a wrap");
        v[counter::FLOWS_CLOSED as usize] = u64::MAX;
        assert_eq!(evicted(&v, 0), 0);
    }

    #[test]
    fn census_is_periodic_forced_after_detach_and_never_lowers() {
        let t0 = Instant::now();
        let mut c = Census::default();
        assert!(c.is_due(t0), "the first read counts");
        c.record(t0, 100);
        assert!(!c.is_due(t0 + Duration::from_secs(9)));
        assert!(c.is_due(t0 + CENSUS_PERIOD));
        c.due = true;
        assert!(c.is_due(t0), "forced");
        c.record(t0, 40);
        assert_eq!(c.evicted, 100, "a lower figure (a racing census) does not lower the counter");
        assert!(!c.due);
        c.record(t0, 150);
        assert_eq!(c.evicted, 150);
    }
}
