//! `bench floods`, report: the counters `tlsmon --stats` prints, parsed, and the per-flood
//! lines and closing table. Must never show a figure that was not in tlsmon's output or
//! measured by the bench.
use std::collections::BTreeMap;

use super::{Budget, Idle, Input, Outcome};

/// Counters shown for every run (`--stats` names; the kernel's only in live), in this order.
const SHOWN: &[&str] = &[
    "kernel.packets",
    "kernel.records",
    "kernel.ringbuf_full",
    "kernel.flow_map_full",
    "kernel.budget_exhausted",
    "reader.bad_records",
    "flows.created",
    "flows.expired",
    "flows.evicted",
    "head.out_of_order",
    "head.pending_dropped",
    "head.beyond_budget",
    "head.retransmitted",
    "head.overlaps",
    "plain_bytes_dropped",
    "handshakes",
];

/// Shown counters that count work done, not refused.
const NOT_REFUSALS: &[&str] = &["kernel.packets", "kernel.records", "flows.created", "head.out_of_order", "handshakes"];

/// Words that mark a counter of refused or lost work: counters added later (the memory budget)
/// show up without a change here (non-zero ones only; anything about memory too).
const LOSS_WORDS: &[&str] = &[
    "drop", "evict", "refus", "reject", "shed", "full", "budget", "lost", "over", "limit", "trim", "discard", "denied",
    "pressure", "mem",
];

/// The counters `tlsmon --stats` prints on stderr: the Debug-printed stats structs (keys are
/// field paths below the top struct, e.g. `head.pending_dropped`), live's kernel counters
/// (`kernel.NAME`) and reader line (`reader.NAME`). Lines it does not know are skipped.
pub fn parse_stats(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut path: Vec<String> = Vec::new();
    let mut kernel = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("tlsmon: live: kernel counters") {
            kernel = true;
            continue;
        }
        if let Some(rest) = t.strip_prefix("tlsmon: live: reader:") {
            kernel = false;
            for part in rest.split(',') {
                let words: Vec<&str> = part.split_whitespace().take_while(|w| !w.starts_with('(')).collect();
                if let Some((n, name)) = words.split_last().and_then(|(n, name)| Some((n.parse::<u64>().ok()?, name))) {
                    out.insert(format!("reader.{}", name.join("_")), n);
                }
            }
            continue;
        }
        if let Some(head) = t.strip_suffix('{') {
            kernel = false;
            // `DecodeStats {` opens a top struct (no key part); `head: HeadStats {` a field.
            path.push(head.split_once(':').map_or(String::new(), |(f, _)| f.trim().to_string()));
            continue;
        }
        if t.starts_with('}') {
            path.pop();
            continue;
        }
        if kernel {
            if let [name, v] = t.split_whitespace().collect::<Vec<_>>()[..] {
                if let Ok(n) = v.parse() {
                    out.insert(format!("kernel.{name}"), n);
                    continue;
                }
            }
            kernel = false;
        }
        if let Some((k, v)) = t.split_once(':') {
            if let (false, Ok(n)) = (path.is_empty(), v.trim().trim_end_matches(',').parse::<u64>()) {
                let mut key: Vec<&str> = path.iter().skip(1).map(String::as_str).collect();
                key.push(k.trim());
                out.entry(key.join(".")).or_insert(n);
            }
        }
    }
    out
}

/// `name value` pairs worth showing: [`SHOWN`], then other non-zero loss counters.
fn shown(c: &BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = SHOWN.iter().filter_map(|k| c.get(*k).map(|n| (k.to_string(), *n))).collect();
    for (k, n) in c {
        let loss = LOSS_WORDS.iter().any(|w| k.contains(w));
        if loss && *n > 0 && !SHOWN.contains(&k.as_str()) && !k.ends_with("bytes") {
            v.push((k.clone(), *n));
        }
    }
    v
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub(super) fn print_flood(
    input: &Input,
    replay: Option<&Outcome>,
    live: Option<&Outcome>,
    budget: &Budget,
    overhead: u64,
) {
    println!(
        "\nflood {}: {} flows, {} packets, {:.1} MB ({})",
        input.flood.name(),
        input.flows,
        input.packets,
        input.bytes as f64 / 1e6,
        input.path.display()
    );
    if let Some(r) = replay {
        println!(
            "  replay: {:.2} s, exit {}, peak RSS {:.1} MiB ({})",
            r.secs,
            r.code,
            mib(r.max_rss_kib),
            budget.verdict(overhead, r.max_rss_kib)
        );
        print_counters(&r.counters);
    }
    if let Some(l) = live {
        let hwm = l.hwm_kib.unwrap_or(0);
        println!(
            "  live:   {}; VmHWM {:.1} MiB before SIGTERM ({}), peak RSS {:.1} MiB at exit (code {})",
            l.sent,
            mib(hwm),
            budget.verdict(overhead, hwm),
            mib(l.max_rss_kib),
            l.code
        );
        print_counters(&l.counters);
        println!("          {}", accounting(l));
    }
}

/// Live: does every packet sent and every record emitted show up somewhere?
fn accounting(l: &Outcome) -> String {
    let c = |k: &str| l.counters.get(k).copied();
    let seen = match (l.sent_packets, c("kernel.packets")) {
        (Some(s), Some(k)) if s == k => format!("kernel saw all {s} packets sent"),
        (Some(s), Some(k)) => format!("kernel saw {k} packets of {s} sent (others on the veth: neighbour traffic)"),
        _ => "packets sent / seen unknown".into(),
    };
    let read = match (c("kernel.records"), c("reader.records"), c("kernel.ringbuf_full")) {
        (Some(k), Some(r), Some(f)) if k == r => {
            format!("agent read all {r} records emitted; {f} not emitted (ring buffer full)")
        }
        (Some(k), Some(r), _) => format!("agent read {r} of {k} records emitted: {} unaccounted", k.abs_diff(r)),
        _ => "records emitted / read unknown".into(),
    };
    format!("accounting: {seen}; {read}")
}

fn print_counters(c: &BTreeMap<String, u64>) {
    let items: Vec<String> = shown(c).into_iter().map(|(k, n)| format!("{k} {n}")).collect();
    for chunk in items.chunks(6) {
        println!("          {}", chunk.join(", "));
    }
}

/// Non-zero refusals of a run, compact: what the closing note quotes.
fn refusals(c: &BTreeMap<String, u64>) -> String {
    let v: Vec<String> = shown(c)
        .into_iter()
        .filter(|(k, n)| *n > 0 && !NOT_REFUSALS.contains(&k.as_str()))
        .map(|(k, n)| format!("{} {n}", k.rsplit('.').next().unwrap_or(&k)))
        .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// MiB, and the verdict against the budget if there is one.
fn rss_cell(kib: u64, budget: &Budget, overhead: u64) -> String {
    match budget.mb {
        Some(_) => format!("{:.0} ({})", mib(kib), budget.verdict(overhead, kib)),
        None => format!("{:.0}", mib(kib)),
    }
}

pub(super) fn print_table(
    rows: &[(Input, Option<Outcome>, Option<Outcome>)],
    budget: &Budget,
    overhead: u64,
    idle: &Idle,
) {
    println!("\n{}; {}", budget.describe(overhead), idle.describe());
    println!(
        "| flood | flows | packets | MB | replay s | replay peak RSS MiB | replay refusals | tcpreplay s | live VmHWM MiB | live refusals |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|---:|---|");
    for (i, r, l) in rows {
        let (rs, rrss, rref) = match r {
            Some(r) => (format!("{:.2}", r.secs), rss_cell(r.max_rss_kib, budget, overhead), refusals(&r.counters)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let (ls, lhwm, lref) = match l {
            Some(l) => {
                (format!("{:.1}", l.secs), rss_cell(l.hwm_kib.unwrap_or(0), budget, overhead), refusals(&l.counters))
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {:.0} | {rs} | {rrss} | {rref} | {ls} | {lhwm} | {lref} |",
            i.flood.name(),
            i.flows,
            i.packets,
            i.bytes as f64 / 1e6
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_replay_and_live_stats() {
        let text = "tlsmon: live: kernel counters (all CPUs):\n  packets              12\n  ringbuf_full         3\n\
                    tlsmon: live: reader: records 9 (900 bytes), bad records 1, capped batches 0\n\
                    DecodeStats {\n    packets: 12,\n    bytes: 900,\n}\nPipelineStats {\n    udp_packets: 0,\n    \
                    plain_bytes_dropped: 5,\n    head: HeadStats {\n        pending_dropped: 7,\n    },\n    \
                    flows: TableStats {\n        created: 4,\n        evicted: 2,\n    },\n    memory: MemStats {\n        \
                    flows_shed: 6,\n        note: Some(3),\n    },\n}\n";
        let c = parse_stats(text);
        let get = |k: &str| c.get(k).copied();
        assert_eq!(get("kernel.packets"), Some(12));
        assert_eq!(get("kernel.ringbuf_full"), Some(3));
        assert_eq!(get("reader.records"), Some(9));
        assert_eq!(get("reader.bad_records"), Some(1));
        assert_eq!(get("packets"), Some(12));
        assert_eq!(get("plain_bytes_dropped"), Some(5));
        assert_eq!(get("head.pending_dropped"), Some(7));
        assert_eq!(get("flows.evicted"), Some(2));
        assert_eq!(get("memory.flows_shed"), Some(6));
        assert_eq!(get("memory.note"), None);
        assert_eq!(
            refusals(&c),
            "ringbuf_full 3, bad_records 1, evicted 2, pending_dropped 7, plain_bytes_dropped 5, flows_shed 6"
        );
    }
}
