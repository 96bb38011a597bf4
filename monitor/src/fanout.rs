//! Fanout, parallel replay: the reading thread and N − 1 worker threads (N threads in all: on
//! a machine with N cores a further thread only takes turns with them). Each worker has its own
//! [`Pipeline`], fed by a direction-independent hash of the flow's 5-tuple (as Suricata's autofp
//! and Zeek's fanout do); their outputs are merged back into one stream in [`Order`] — the same
//! events, in the same order, for any number of workers. The reader inspects nothing itself: it
//! walks and decodes every packet, hands it on, and merges and writes what comes back, which
//! on 2 cores is as much work as the inspection (measured: a share of the flows kept by the
//! reader made 2 threads slower, 1.06–1.08× one thread against 1.32–1.41×). The reader keeps
//! the one clock of the whole input: idle sweeps are sent to every worker at the packet where a
//! single pipeline would sweep. When the output is JSON, a worker that keeps up with the reader
//! also renders each output's line (with the [`Render`] the caller passes: the emitter's own
//! writer and style), so that the merge only writes bytes; a worker behind leaves that to the
//! reader (the same bytes either way). Payloads of a mapped file are not copied: the batch
//! points into the mapping (kept alive with it).
//! Must never order the stream by which worker finished first, nor buffer without bound: the
//! reader waits when a worker's queue is full, and the merge holds only what workers returned.
use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use crate::capture::mapped::{self, Mapped};
use crate::decode::{Addr, Packet, Transport};
use crate::flow::sweep_due;
use crate::observation::{Output, PipelineStats};
use crate::pipeline::{Order, Pipeline, PipelineConfig};
use crate::run::{Sink, Stage};

/// Writes one output's line into the buffer; false when it could not (the emitter then
/// renders that output itself). Passed in by the caller: the sinks sit above this layer.
pub type Render = std::sync::Arc<dyn Fn(&Output, &mut Vec<u8>) -> bool + Send + Sync>;

/// Packets, and payload bytes, handed on between two rounds (whichever comes first): every
/// worker gets a batch (maybe empty) each round, so the merge knows how far each has come. With
/// [`DEPTH`], the bytes bound how far a worker may lag behind the reader in a mapped file
/// (`mapped::BEHIND` keeps that much mapped).
const ROUND: u64 = 4096;
const ROUND_BYTES: usize = 2 << 20;
/// Batches queued per worker before the reader waits for it.
const DEPTH: usize = 4;

const _: () = assert!(std::mem::size_of::<Item>() <= 80);

/// A packet without its payload, which sits at `start..start + len` in the batch's `data`, or
/// in its `map` when `in_map`. Kept small (80 bytes): the reader writes one per packet and the
/// worker reads it from the other core's cache. No local socket: a replayed packet has none.
struct Meta {
    index: u64,
    ts_ns: u64,
    start: usize,
    src: Addr,
    dst: Addr,
    seq: u32,
    len: u32,
    src_port: u16,
    dst_port: u16,
    transport: Transport,
    /// SYN, ACK, FIN, RST, truncated: bits 0 to 4.
    flags: u8,
    in_map: bool,
}

impl Meta {
    fn packet<'a>(&self, b: &'a Batch) -> Packet<'a> {
        let bit = |i: u8| self.flags & (1 << i) != 0;
        let data = match (&b.map, self.in_map) {
            (Some(map), true) => &map[..],
            _ => &b.data[..],
        };
        let (start, len) = (self.start, self.len as usize);
        Packet {
            src: self.src,
            dst: self.dst,
            src_port: self.src_port,
            dst_port: self.dst_port,
            transport: self.transport,
            syn: bit(0),
            ack: bit(1),
            fin: bit(2),
            rst: bit(3),
            seq: self.seq,
            payload: data.get(start..start + len).unwrap_or_default(),
            truncated: bit(4),
            local: None,
        }
    }
}

enum Item {
    /// The idle sweep before the packet at `index`, at the input's time `now_ns`.
    Sweep {
        index: u64,
        now_ns: u64,
    },
    Packet(Meta),
}

/// What the reader hands one worker per round.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
    /// The mapped file some payloads point into.
    map: Option<Mapped>,
    /// Every packet up to this index (of the whole input) has been handed on.
    upto: u64,
    /// End of input: judge every open flow.
    last: bool,
}

impl Batch {
    /// Room for a round's packets from the start: a batch grown by doubling instead copies
    /// itself a dozen times (a run's first rounds, before batches come back to be reused).
    fn new() -> Self {
        Batch { items: Vec::with_capacity(ROUND as usize), ..Batch::default() }
    }
}

/// An output in stream order, with its JSON line when the workers render them.
type Judged = (Order, Output, Option<Vec<u8>>);

/// What a worker hands back per batch: its outputs, how far it has come, its counters and the
/// emptied batch (reused).
struct Done {
    worker: usize,
    outputs: Vec<Judged>,
    upto: u64,
    stats: PipelineStats,
    batch: Batch,
}

/// A worker thread's lane (`tx` is `None` once it is closed).
struct Worker {
    tx: Option<SyncSender<Batch>>,
    join: Option<JoinHandle<()>>,
    filling: Batch,
    spare: Vec<Batch>,
    /// Outputs returned and not yet merged, in the worker's order.
    queue: VecDeque<Judged>,
    /// Every output up to this packet index has been returned.
    upto: u64,
    stats: PipelineStats,
}

/// N pipelines behind the run loop's [`Stage`].
pub struct Fanout {
    workers: Vec<Worker>,
    results: Receiver<Done>,
    /// Index of the last packet handed on (from 1).
    index: u64,
    last_sweep_ns: u64,
    since_round: u64,
    round_bytes: usize,
    /// The mapped file the packets' payloads borrow from, when they do.
    map: Option<Mapped>,
}

/// Each of `n` workers' share of the global bounds (flows, memory, clear bytes): they sum to
/// them.
pub fn worker_config(cfg: &PipelineConfig, n: usize) -> PipelineConfig {
    let n = n.max(1);
    PipelineConfig {
        max_flows: (cfg.max_flows / n).max(1),
        max_memory: cfg.max_memory / n,
        max_plain_bytes: cfg.max_plain_bytes / n,
        ..cfg.clone()
    }
}

/// The worker of a packet: a hash of its flow's key (the same both ways), spread over `n`.
fn worker_of(p: &Packet<'_>, n: usize) -> usize {
    // Each end hashed apart (its address as two words and its port, multiply-xor rounds as
    // FxHash does) and the two added: the same both ways, without ordering them.
    const K: u64 = 0xf135_7aea_2e62_a9c5;
    let end = |addr: &Addr, port: u16| {
        let [a, b] = [0, 8].map(|i| u64::from_ne_bytes(addr.bytes[i..i + 8].try_into().unwrap_or_default()));
        ((a.wrapping_mul(K) ^ b).wrapping_mul(K) ^ u64::from(port)).wrapping_mul(K)
    };
    let h = end(&p.src, p.src_port).wrapping_add(end(&p.dst, p.dst_port)) ^ u64::from(p.transport == Transport::Udp);
    // The high bits of the hash, scaled to the workers.
    ((u128::from(h) * n as u128) >> 64) as usize
}

/// An output and its line by `render`, when given one. The line is written into `scratch`
/// (reused: a line is about 4 KB, and a fresh buffer would grow to it a dozen times) and copied
/// out at its size.
fn judged((order, o): (Order, Output), render: Option<&Render>, scratch: &mut Vec<u8>) -> Judged {
    let line = render.and_then(|render| {
        scratch.clear();
        render(&o, scratch).then(|| scratch.as_slice().to_vec())
    });
    (order, o, line)
}

/// A worker's loop: inspect each batch, hand back what it judged. It renders the lines only
/// while it keeps up with the reader: when the next batch is already waiting, the reader renders
/// this batch's lines instead (the same bytes) — on 2 cores the inspection alone is as much
/// work as the reader's walk, so rendering follows whichever thread has time for it.
fn work(id: usize, mut pipeline: Pipeline, render: Option<Render>, rx: Receiver<Batch>, tx: Sender<Done>) {
    pipeline.set_external_clock();
    let mut scratch = Vec::new();
    let mut next = rx.recv().ok();
    while let Some(mut batch) = next.take() {
        for item in &batch.items {
            match item {
                Item::Sweep { index, now_ns } => pipeline.sweep_at(*index, *now_ns),
                Item::Packet(m) => pipeline.packet_at(m.index, m.ts_ns, &m.packet(&batch)),
            }
        }
        let upto = if batch.last {
            pipeline.finish();
            u64::MAX
        } else {
            batch.upto
        };
        // Empty, or the reader is gone: this batch's outputs still go back.
        let waiting = rx.try_recv().ok();
        let render = if waiting.is_some() { None } else { render.as_ref() };
        let outputs = pipeline.drain_ordered().map(|o| judged(o, render, &mut scratch)).collect();
        batch.items.clear();
        batch.data.clear();
        batch.map = None;
        let done = Done { worker: id, outputs, upto, stats: pipeline.stats, batch };
        if tx.send(done).is_err() || upto == u64::MAX {
            return;
        }
        next = waiting.or_else(|| rx.recv().ok());
    }
}

impl Fanout {
    /// Start `n` worker threads, each with its share of `cfg`'s bounds ([`worker_config`]);
    /// with `render`, they render each output's line with it too.
    pub fn new(cfg: &PipelineConfig, n: usize, render: Option<Render>) -> std::io::Result<Self> {
        let n = n.max(1);
        let (done_tx, results) = mpsc::channel();
        let mut workers = Vec::with_capacity(n);
        for id in 0..n {
            let (tx, rx) = mpsc::sync_channel(DEPTH);
            let pipeline = Pipeline::new(worker_config(cfg, n));
            let done_tx = done_tx.clone();
            let render = render.clone();
            let join = std::thread::Builder::new()
                .name(format!("tlsmon-worker-{}", id + 1))
                .spawn(move || work(id, pipeline, render, rx, done_tx))?;
            workers.push(Worker {
                tx: Some(tx),
                join: Some(join),
                filling: Batch::new(),
                spare: Vec::new(),
                queue: VecDeque::new(),
                upto: 0,
                stats: PipelineStats::default(),
            });
        }
        Ok(Fanout { workers, results, index: 0, last_sweep_ns: 0, since_round: 0, round_bytes: 0, map: None })
    }

    /// The workers' counters, summed.
    pub fn stats(&self) -> PipelineStats {
        let mut s = PipelineStats::default();
        for w in &self.workers {
            s.add(&w.stats);
        }
        s
    }

    /// Hand every worker what it was given since the last round.
    fn round(&mut self, last: bool) {
        self.since_round = 0;
        self.round_bytes = 0;
        for w in &mut self.workers {
            let Some(tx) = &w.tx else { continue };
            let next = w.spare.pop().unwrap_or_else(Batch::new);
            let mut batch = std::mem::replace(&mut w.filling, next);
            batch.upto = self.index;
            batch.last = last;
            if tx.send(batch).is_err() {
                // The worker is gone (it panicked): what it held is lost; do not wait for it.
                tracing::error!("a replay worker stopped; its flows are not reported");
                w.tx = None;
                w.upto = u64::MAX;
            }
        }
        if last {
            for w in &mut self.workers {
                w.tx = None;
            }
        }
        while let Ok(d) = self.results.try_recv() {
            self.take(d);
        }
    }

    fn take(&mut self, d: Done) {
        let w = &mut self.workers[d.worker];
        w.queue.extend(d.outputs);
        w.upto = w.upto.max(d.upto);
        w.stats = d.stats;
        w.spare.push(d.batch);
    }

    /// Count a packet handed on (`bytes` of payload batched); a round when either bound is
    /// reached.
    fn next_round(&mut self, bytes: usize) {
        self.since_round += 1;
        self.round_bytes += bytes;
        if self.since_round >= ROUND || self.round_bytes >= ROUND_BYTES {
            self.round(false);
        }
    }

    /// Hand on, in stream order, every output no worker can still precede.
    fn merge(&mut self, sink: &mut impl Sink) {
        loop {
            let mut best: Option<(usize, &Order)> = None;
            for (i, w) in self.workers.iter().enumerate() {
                if let Some((o, _, _)) = w.queue.front() {
                    if best.is_none_or(|(_, b)| o < b) {
                        best = Some((i, o));
                    }
                }
            }
            let Some((i, o)) = best else { return };
            // A worker with nothing queued may still judge a flow at a packet after `upto`.
            let safe = self.workers.iter().all(|w| !w.queue.is_empty() || w.upto >= o.index);
            if !safe {
                return;
            }
            if let Some((_, out, line)) = self.workers[i].queue.pop_front() {
                sink.emit_line(out, line);
            }
        }
    }
}

impl Stage for Fanout {
    fn packet(&mut self, ts_ns: u64, p: &Packet<'_>) {
        self.index += 1;
        let index = self.index;
        if sweep_due(ts_ns, self.last_sweep_ns) {
            self.last_sweep_ns = ts_ns;
            for w in &mut self.workers {
                w.filling.items.push(Item::Sweep { index, now_ns: ts_ns });
            }
        }
        let id = worker_of(p, self.workers.len());
        let b = &mut self.workers[id].filling;
        // Point into the mapping (a batch holds one); copy what lies elsewhere.
        let map = self
            .map
            .as_ref()
            .filter(|m| mapped::holds(m, p.payload) && b.map.as_ref().is_none_or(|held| Mapped::ptr_eq(held, m)));
        let (in_map, start) = match map {
            Some(m) => {
                b.map.get_or_insert_with(|| m.clone());
                (true, p.payload.as_ptr() as usize - m.as_ptr() as usize)
            }
            None => {
                b.data.extend_from_slice(p.payload);
                (false, b.data.len() - p.payload.len())
            }
        };
        debug_assert!(p.local.is_none(), "fanout is replay only: no packet names a local socket");
        let flags = u8::from(p.syn)
            | u8::from(p.ack) << 1
            | u8::from(p.fin) << 2
            | u8::from(p.rst) << 3
            | u8::from(p.truncated) << 4;
        b.items.push(Item::Packet(Meta {
            index,
            ts_ns,
            start,
            src: p.src,
            dst: p.dst,
            seq: p.seq,
            // A frame's captured length is a u32 in both capture formats.
            len: p.payload.len() as u32,
            src_port: p.src_port,
            dst_port: p.dst_port,
            transport: p.transport,
            flags,
            in_map,
        }));
        self.next_round(p.payload.len());
    }

    /// Replay only: time is the packets' (a live capture runs one pipeline).
    fn advance(&mut self, _now_ns: u64) {}

    fn input(&mut self, map: Option<&Mapped>) {
        self.map = map.cloned();
    }

    fn finish(&mut self) {
        self.round(true);
        while self.workers.iter().any(|w| w.upto != u64::MAX) {
            match self.results.recv() {
                Ok(d) => self.take(d),
                Err(_) => break,
            }
        }
        for w in &mut self.workers {
            w.upto = u64::MAX;
            if let Some(j) = w.join.take() {
                if j.join().is_err() {
                    tracing::error!("a replay worker panicked");
                }
            }
        }
    }

    fn emit_to(&mut self, sink: &mut impl Sink) {
        while let Ok(d) = self.results.try_recv() {
            self.take(d);
        }
        self.merge(sink);
    }
    fn counters(&self) -> PipelineStats {
        self.stats()
    }
}

impl Drop for Fanout {
    fn drop(&mut self) {
        // Closing the queues ends the workers (a run stopped early); wait for them.
        for w in &mut self.workers {
            w.tx = None;
        }
        while self.results.try_recv().is_ok() {}
        for w in &mut self.workers {
            if let Some(j) = w.join.take() {
                let _ = j.join();
            }
        }
    }
}

/// A replay's stage: one pipeline (one thread), or N workers.
pub enum Engine {
    One(Box<Pipeline>),
    Many(Fanout),
}

impl Engine {
    /// One pipeline for `threads` ≤ 1, else the reader and a [`Fanout`] of `threads` − 1
    /// worker threads (rendering each output's line with `render` when given one: the sink's
    /// own writer and style).
    pub fn new(cfg: PipelineConfig, threads: usize, render: Option<Render>) -> std::io::Result<Self> {
        Ok(if threads <= 1 {
            Engine::One(Box::new(Pipeline::new(cfg)))
        } else {
            Engine::Many(Fanout::new(&cfg, threads - 1, render)?)
        })
    }
}

impl Stage for Engine {
    fn packet(&mut self, ts_ns: u64, p: &Packet<'_>) {
        match self {
            Engine::One(s) => Stage::packet(s.as_mut(), ts_ns, p),
            Engine::Many(s) => s.packet(ts_ns, p),
        }
    }
    fn advance(&mut self, now_ns: u64) {
        match self {
            Engine::One(s) => Stage::advance(s.as_mut(), now_ns),
            Engine::Many(s) => s.advance(now_ns),
        }
    }
    fn finish(&mut self) {
        match self {
            Engine::One(s) => Stage::finish(s.as_mut()),
            Engine::Many(s) => Stage::finish(s),
        }
    }
    fn emit_to(&mut self, sink: &mut impl Sink) {
        match self {
            Engine::One(s) => s.emit_to(sink),
            Engine::Many(s) => s.emit_to(sink),
        }
    }
    fn counters(&self) -> PipelineStats {
        match self {
            Engine::One(s) => s.stats,
            Engine::Many(s) => s.stats(),
        }
    }
    fn input(&mut self, map: Option<&Mapped>) {
        if let Engine::Many(s) = self {
            s.input(map);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(src: Addr, src_port: u16, dst: Addr, dst_port: u16, transport: Transport) -> Packet<'static> {
        Packet {
            src,
            dst,
            src_port,
            dst_port,
            transport,
            syn: false,
            ack: true,
            fin: false,
            rst: false,
            seq: 0,
            payload: &[],
            truncated: false,
            local: None,
        }
    }

    /// Both directions of a flow go to one worker, and flows spread over all of them.
    #[test]
    fn a_flow_has_one_worker_and_flows_spread() {
        let n = 4;
        let mut seen = [0usize; 4];
        for i in 0..1000u16 {
            let client = Addr::v4([10, 0, (i >> 8) as u8, i as u8]);
            let server = Addr::v6([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
            for transport in [Transport::Tcp, Transport::Udp] {
                let there = worker_of(&packet(client, 40000 + i, server, 443, transport), n);
                let back = worker_of(&packet(server, 443, client, 40000 + i, transport), n);
                assert_eq!(there, back, "flow {i} {transport:?}");
                seen[there] += 1;
            }
        }
        // 2000 flows over 4 workers: each gets a fair share (500 expected).
        assert!(seen.iter().all(|&k| (350..=650).contains(&k)), "{seen:?}");
    }
}
