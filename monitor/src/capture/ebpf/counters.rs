//! Capture, live, kernel counters: the eBPF program's per-CPU counters summed over CPUs, and
//! the figures the agent derives from them, under their stable names.
//! Must never invent a name outside `counter::NAMES` and `counter::DERIVED` (they are label
//! values of a closed set).
use monitor_common::counter;

/// The kernel's per-CPU counters, summed over CPUs, indexed like `monitor_common::counter`,
/// and the figures derived from them (`counter::DERIVED`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub values: [u64; counter::COUNT as usize],
    /// Flows the LRU flow maps evicted, as of the last [`super::census`] (at most
    /// [`super::census::CENSUS_PERIOD`] old; approximate under concurrent change).
    pub flows_evicted: u64,
}

impl KernelCounters {
    /// One counter (`monitor_common::counter::*`); 0 for an unknown index.
    pub fn get(&self, index: u32) -> u64 {
        self.values.get(index as usize).copied().unwrap_or(0)
    }

    /// `(name, value)` pairs with the stable names of `counter::NAMES`, then the derived
    /// figures of `counter::DERIVED`.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let derived = counter::DERIVED.iter().copied().zip([self.flows_evicted]);
        counter::NAMES.iter().copied().zip(self.values.iter().copied()).chain(derived)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named() {
        let mut c = KernelCounters::default();
        c.values[counter::RINGBUF_FULL as usize] = 3;
        assert_eq!(c.get(counter::RINGBUF_FULL), 3);
        assert_eq!(c.get(9999), 0);
        assert!(c.named().any(|(n, v)| n == "ringbuf_full" && v == 3));
        assert_eq!(c.named().count(), counter::COUNT as usize + counter::DERIVED.len());
        c.flows_evicted = 7;
        assert_eq!(c.named().last(), Some(("flows_evicted", 7)));
    }
}
