//! Flow, table: bidirectional flow keys and a bounded table that expires flows by packet time.
//! Must never grow past its capacity (it evicts and counts instead) nor read the wall clock.
pub mod reassembly;

use rustc_hash::FxHashMap;

use crate::decode::Addr;

/// One endpoint of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Endpoint {
    pub addr: Addr,
    pub port: u16,
}

/// A bidirectional TCP/UDP flow key, endpoints in canonical order (`lo` < `hi`). Ordered
/// (endpoints, then transport) so flows judged at the same moment come out in a fixed order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    pub lo: Endpoint,
    pub hi: Endpoint,
    pub udp: bool,
}

impl FlowKey {
    /// The key and the direction of a packet from `src` to `dst`: 0 when `src` is `lo`.
    pub fn new(src: Endpoint, dst: Endpoint, udp: bool) -> (FlowKey, usize) {
        if src <= dst {
            (FlowKey { lo: src, hi: dst, udp }, 0)
        } else {
            (FlowKey { lo: dst, hi: src, udp }, 1)
        }
    }

    /// The sender of direction `dir`.
    pub fn sender(&self, dir: usize) -> Endpoint {
        if dir == 0 {
            self.lo
        } else {
            self.hi
        }
    }
}

/// A table entry: the flow's timing and the caller's per-flow state.
#[derive(Debug)]
pub struct Entry<T> {
    pub first_ns: u64,
    pub last_ns: u64,
    pub state: T,
}

/// Counters of the table's bounds at work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub created: u64,
    pub expired: u64,
    pub evicted: u64,
}

/// A bounded flow table. Flows idle longer than `idle_ns` (packet time) expire; when full,
/// the least recently seen eighth is evicted.
pub struct FlowTable<T> {
    map: FxHashMap<FlowKey, Entry<T>>,
    capacity: usize,
    idle_ns: u64,
    last_sweep_ns: u64,
    /// Sweeps for idle flows so far (each walks the whole table).
    sweeps: u64,
    /// Sweeps come only from [`FlowTable::sweep`] (a parallel replay's reader keeps the one
    /// clock every worker's table sweeps on), not from [`FlowTable::expire`].
    external_clock: bool,
    pub stats: TableStats,
}

/// Packet time between two sweeps for idle flows.
pub const SWEEP_NS: u64 = 1_000_000_000;

/// Whether a sweep is due at `now_ns` after one at `last_ns` (the rule [`FlowTable::expire`]
/// applies; a parallel replay's reader applies it to the whole capture's packet times).
pub fn sweep_due(now_ns: u64, last_ns: u64) -> bool {
    now_ns.saturating_sub(last_ns) >= SWEEP_NS
}

impl<T> FlowTable<T> {
    pub fn new(capacity: usize, idle_ns: u64) -> Self {
        FlowTable {
            map: FxHashMap::default(),
            capacity: capacity.max(8),
            idle_ns,
            last_sweep_ns: 0,
            sweeps: 0,
            external_clock: false,
            stats: TableStats::default(),
        }
    }

    /// Sweep only when [`FlowTable::sweep`] is called (the clock is kept outside).
    pub fn set_external_clock(&mut self) {
        self.external_clock = true;
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many times [`FlowTable::expire`] walked the table.
    pub fn sweeps(&self) -> u64 {
        self.sweeps
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey, &Entry<T>)> {
        self.map.iter()
    }

    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Entry<T>> {
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &FlowKey) -> Option<Entry<T>> {
        self.map.remove(key)
    }

    /// The entry of `key`; when there is none, a new flow with the state `new` gives (none:
    /// no flow is made). Flows pushed out to make room go to `evicted`. One hash lookup when
    /// the flow is known or the table has room.
    pub fn get_or_insert(
        &mut self,
        key: FlowKey,
        now_ns: u64,
        new: impl FnOnce() -> Option<T>,
        evicted: &mut impl FnMut(FlowKey, Entry<T>),
    ) -> Option<&mut Entry<T>> {
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            let state = new()?;
            self.insert(key, now_ns, state, evicted);
            return self.map.get_mut(&key);
        }
        match self.map.entry(key) {
            std::collections::hash_map::Entry::Occupied(o) => Some(o.into_mut()),
            std::collections::hash_map::Entry::Vacant(v) => {
                let state = new()?;
                self.stats.created += 1;
                Some(v.insert(Entry { first_ns: now_ns, last_ns: now_ns, state }))
            }
        }
    }

    /// Insert a new flow; flows pushed out to make room go to `evicted`.
    pub fn insert(&mut self, key: FlowKey, now_ns: u64, state: T, evicted: &mut impl FnMut(FlowKey, Entry<T>)) {
        if self.map.len() >= self.capacity {
            self.make_room(now_ns, evicted);
        }
        self.stats.created += 1;
        self.map.insert(key, Entry { first_ns: now_ns, last_ns: now_ns, state });
    }

    /// Expire idle flows, at most once per second of packet time: only when packet time moved
    /// at least a second past the last sweep. Time going backwards or standing still (even at
    /// `u64::MAX`) sweeps nothing, so whatever the timestamps do, a sweep never runs per packet.
    /// With an external clock this does nothing: sweeps come from [`FlowTable::sweep`].
    pub fn expire(&mut self, now_ns: u64, expired: &mut impl FnMut(FlowKey, Entry<T>)) {
        if !self.external_clock {
            self.expire_due(now_ns, expired);
        }
    }

    fn expire_due(&mut self, now_ns: u64, expired: &mut impl FnMut(FlowKey, Entry<T>)) {
        if sweep_due(now_ns, self.last_sweep_ns) {
            self.sweep(now_ns, expired);
        }
    }

    /// Expire flows idle at `now_ns` now (the caller decided a sweep is due).
    pub fn sweep(&mut self, now_ns: u64, expired: &mut impl FnMut(FlowKey, Entry<T>)) {
        self.last_sweep_ns = now_ns;
        self.sweeps += 1;
        let idle = self.idle_ns;
        let keys: Vec<FlowKey> =
            self.map.iter().filter(|(_, e)| now_ns.saturating_sub(e.last_ns) > idle).map(|(k, _)| *k).collect();
        for k in keys {
            if let Some(e) = self.map.remove(&k) {
                self.stats.expired += 1;
                expired(k, e);
            }
        }
    }

    fn make_room(&mut self, now_ns: u64, evicted: &mut impl FnMut(FlowKey, Entry<T>)) {
        self.last_sweep_ns = 0;
        let before = self.stats.expired;
        self.expire_due(now_ns, evicted);
        if self.stats.expired > before {
            return;
        }
        let mut ages: Vec<(u64, FlowKey)> = self.map.iter().map(|(k, e)| (e.last_ns, *k)).collect();
        let n = (ages.len() / 8).max(1);
        ages.select_nth_unstable_by_key(n - 1, |(t, _)| *t);
        for (_, k) in ages.into_iter().take(n) {
            if let Some(e) = self.map.remove(&k) {
                self.stats.evicted += 1;
                evicted(k, e);
            }
        }
    }

    /// Remove every flow (end of input), oldest first (ties by key).
    pub fn drain(&mut self) -> Vec<(FlowKey, Entry<T>)> {
        let mut all: Vec<(FlowKey, Entry<T>)> = self.map.drain().collect();
        all.sort_unstable_by_key(|(k, e)| (e.first_ns, *k));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(last: u8, port: u16) -> Endpoint {
        Endpoint { addr: Addr::v4([10, 0, 0, last]), port }
    }

    #[test]
    fn key_is_symmetric() {
        let (k1, d1) = FlowKey::new(ep(1, 5000), ep(2, 443), false);
        let (k2, d2) = FlowKey::new(ep(2, 443), ep(1, 5000), false);
        assert_eq!(k1, k2);
        assert_ne!(d1, d2);
        assert_eq!(k1.sender(d1), ep(1, 5000));
    }

    #[test]
    fn capacity_is_enforced_and_counted() {
        let mut t: FlowTable<u32> = FlowTable::new(16, u64::MAX);
        let mut gone = 0;
        for i in 0..100u16 {
            let (k, _) = FlowKey::new(ep(1, i), ep(2, 443), false);
            t.insert(k, i as u64, 0, &mut |_, _| gone += 1);
        }
        assert!(t.len() <= 16);
        assert_eq!(t.stats.evicted, gone);
        assert_eq!(t.len() as u64 + gone, 100);
    }

    #[test]
    fn idle_flows_expire() {
        let mut t: FlowTable<u32> = FlowTable::new(16, 10);
        let (k, _) = FlowKey::new(ep(1, 1), ep(2, 443), false);
        t.insert(k, 0, 0, &mut |_, _| {});
        let mut gone = Vec::new();
        t.expire(2_000_000_000, &mut |k, _| gone.push(k));
        assert_eq!(gone, vec![k]);
        assert!(t.is_empty());
    }

    #[test]
    fn hostile_times_never_sweep_per_packet() {
        let mut t: FlowTable<u32> = FlowTable::new(64, 10);
        let s = SWEEP_NS;
        let mut gone = 0;
        let mut packet = |t: &mut FlowTable<u32>, now: u64, port: u16| {
            t.expire(now, &mut |_, _| gone += 1);
            let (k, _) = FlowKey::new(ep(1, port), ep(2, 443), false);
            if t.get_mut(&k).is_none() {
                t.insert(k, now, 0, &mut |_, _| gone += 1);
            }
        };
        packet(&mut t, 5 * s, 1);
        assert_eq!(t.sweeps(), 1);
        // Time stuck at the very end of u64, then wandering back: one sweep, no more.
        for i in 0..1000u16 {
            packet(&mut t, u64::MAX, i % 32);
        }
        assert_eq!(t.sweeps(), 2);
        for i in 0..1000u16 {
            packet(&mut t, u64::MAX - 1 - u64::from(i), i % 32);
            packet(&mut t, u64::from(i), i % 32);
        }
        assert_eq!(t.sweeps(), 2);
        // Within the last second of u64 time nothing sweeps either.
        for i in 0..1000u64 {
            packet(&mut t, u64::MAX - s + i, 7);
        }
        assert_eq!(t.sweeps(), 2);
        // A second going by on a fresh table: a sweep per second of packet time, not per packet.
        let mut t: FlowTable<u32> = FlowTable::new(64, 10);
        for i in 0..10_000u64 {
            packet(&mut t, 1_700_000_000 * s + i * (s / 1000), (i % 32) as u16);
        }
        assert_eq!(t.sweeps(), 10);
    }
}
