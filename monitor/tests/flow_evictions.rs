//! Privileged kernel test: the LRU flow maps evict silently, so the program counts entries it
//! opens and closes and the agent derives evictions as opened - closed - entries (the census
//! of `capture::ebpf::census`). Runs the TC program through BPF_PROG_TEST_RUN on more distinct
//! IPv4 flows than FLOWS4 holds and checks the derived figure against what the kernel's LRU
//! can have done; a flow reset by RST is closed, not evicted.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
use std::time::Instant;

use monitor::capture::ebpf::census;
use monitor::capture::testrun::{tcp_frame, Hook, KernelModel};
use monitor_common::{counter, KernelConfig, FLOWS_MAX};

/// Free nodes a CPU moves at a time from the LRU's global free list to its own, and nodes one
/// shrink evicts at a time (LOCAL_FREE_TARGET in kernel/bpf/bpf_lru_list.c; kernels from 6.16
/// lower it for small maps, not for one of 65 536 entries on a few CPUs).
const LRU_LOCAL_FREE_TARGET: u64 = 128;

fn load() -> KernelModel {
    let missing = monitor::capture::ebpf::missing_capabilities();
    assert!(
        missing.is_empty(),
        "flow_evictions loads eBPF programs (BPF_PROG_TEST_RUN) and needs root (or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON), missing {missing:?}"
    );
    KernelModel::load(&KernelConfig::default()).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)))
}

/// A frame of flow `i`: client 10.16.0.0 + i, port 40000, to 10.99.0.2:443 (`flags` as in
/// `tcp_frame`). Distinct `i` (< 2^20) give distinct flows.
fn frame(i: u32, flags: &str) -> Vec<u8> {
    let mut f = tcp_frame(true, 443, 1, flags, &[]);
    let src = (10u32 << 24) | (16 << 16) | i;
    f[26..30].copy_from_slice(&src.to_be_bytes());
    // IPv4 header checksum over the 20-byte header, recomputed after the change.
    f[24..26].copy_from_slice(&[0, 0]);
    let sum: u32 = f[14..34].chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    let folded = (sum & 0xffff) + (sum >> 16);
    let folded = (folded & 0xffff) + (folded >> 16);
    f[24..26].copy_from_slice(&(!(folded as u16)).to_be_bytes());
    f
}

fn send(k: &mut KernelModel, f: &[u8]) {
    let r = k.run(Hook::Tc, f, 1).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)));
    assert_eq!(r.action, Hook::Tc.pass_action());
    k.drain(|_| {});
}

/// (opened, closed, entries in FLOWS4, derived evictions); FLOWS (IPv6) stays empty here.
fn figures(k: &KernelModel) -> (u64, u64, u64, u64) {
    let c = k.counters().expect("counters");
    let (v6, v4) = k.flow_entries(false).expect("flow map census");
    assert_eq!(v6, 0, "no IPv6 flow was sent");
    assert_eq!(k.flow_entries(true).expect("key walk"), (v6, v4), "batches and the key walk agree");
    (c[counter::FLOWS_OPENED as usize], c[counter::FLOWS_CLOSED as usize], v4, census::evicted(&c, v6 + v4))
}

#[test]
fn a_reset_flow_is_closed_not_evicted() {
    let mut k = load();
    for i in 0..10 {
        send(&mut k, &frame(i, "S"));
    }
    assert_eq!(figures(&k), (10, 0, 10, 0));
    send(&mut k, &frame(3, "AR"));
    assert_eq!(figures(&k), (10, 1, 9, 0), "the reset flow left the map as closed");
    // A second RST finds no entry: nothing opened, nothing closed twice.
    send(&mut k, &frame(3, "R"));
    assert_eq!(figures(&k), (10, 1, 9, 0));
    // A SYN reusing a live flow's 4-tuple resets it in place: no new entry.
    send(&mut k, &frame(4, "S"));
    assert_eq!(figures(&k), (10, 1, 9, 0));
    assert_eq!(k.counters().unwrap()[counter::FLOW_MAP_FULL as usize], 0);
}

/// 70 000 SYNs of distinct flows into a 65 536-entry map: every one is opened, and the derived
/// evictions are at least the overflow and at most the overflow plus the free nodes the LRU
/// keeps per CPU (it evicts a batch at a time, and may evict while other CPUs still hold free
/// nodes, so the map can be that much short of full).
#[test]
fn flows_past_the_map_capacity_are_counted_as_evicted() {
    const N: u32 = 70_000;
    let mut k = load();
    let frames: Vec<Vec<u8>> = (0..N).map(|i| frame(i, "S")).collect();
    let t = Instant::now();
    for f in &frames {
        send(&mut k, f);
    }
    let run_time = t.elapsed();
    let (opened, closed, entries, evicted) = figures(&k);
    let t = Instant::now();
    k.flow_entries(false).expect("census");
    let batch_time = t.elapsed();
    let t = Instant::now();
    k.flow_entries(true).expect("key walk");
    let walk_time = t.elapsed();
    let cpus = aya::util::nr_cpus().expect("possible CPUs") as u64;
    let overflow = u64::from(N) - u64::from(FLOWS_MAX);
    let slack = LRU_LOCAL_FREE_TARGET * cpus;
    eprintln!(
        "{N} SYNs in {run_time:?}: opened {opened}, closed {closed}, entries {entries}, evicted {evicted} \
         (overflow {overflow}, +{} beyond it; allowed {slack} on {cpus} CPUs); census of both maps: {batch_time:?} in batches, {walk_time:?} key by key",
        evicted - overflow.min(evicted),
    );
    assert_eq!((opened, closed), (u64::from(N), 0), "every distinct flow is opened exactly once");
    assert_eq!(k.counters().unwrap()[counter::FLOW_MAP_FULL as usize], 0, "an LRU map never refuses");
    assert_eq!(opened - closed - entries, evicted, "nothing else leaves the map");
    assert!(
        (overflow..=overflow + slack).contains(&evicted),
        "evicted {evicted}, expected {overflow}..={}",
        overflow + slack
    );
    // Resetting flows still in the map closes them; the evictions stay what they were.
    let live: Vec<u32> = (N - 100..N).collect();
    for &i in &live {
        send(&mut k, &frame(i, "AR"));
    }
    let (opened2, closed2, entries2, evicted2) = figures(&k);
    assert_eq!((opened2, closed2, evicted2), (opened, 100, evicted), "the 100 newest flows were in the map");
    assert_eq!(entries2, entries - 100);
}
