//! Run loop: the one drive loop for every source (capture files, the live ring buffer).
//! Packets go into the pipeline and judged flows out to a sink; about once a period a tick
//! judges idle flows (on the source's clock) and lets the caller publish counters; the run ends
//! with the input, a signal, a deadline, or a sink that cannot go on, and always finishes the
//! same way: what the source still holds is taken, every open flow is judged and emitted.
//! Must never judge, format or write anything itself.
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

use crate::capture::files::FileSource;
use crate::capture::mapped::Mapped;
use crate::capture::{Drained, Source};
use crate::decode::Packet;
use crate::observation::{DecodeStats, Output, PipelineStats};
use crate::pipeline::Pipeline;

/// Most packets handed on per batch; timers and signals are served between batches.
pub const MAX_BATCH: usize = 4096;

/// Where judged flows go.
pub trait Sink {
    fn emit(&mut self, o: Output);
    /// `o` with its JSON line already rendered (by a replay worker, in the style the sink
    /// was given for it), when there is one: a sink that writes JSON may write it as is.
    fn emit_line(&mut self, o: Output, line: Option<Vec<u8>>) {
        let _ = line;
        self.emit(o);
    }
    /// A part of the input failed (see [`Drained::Failed`]).
    fn failed(&mut self, message: &str);
    /// Why the run must stop (output closed, audit log failing), if it must.
    fn broken(&self) -> Option<&'static str>;
}

/// What the loop drives: one pipeline, or a parallel replay's workers behind one face
/// (the `fanout` module's `Fanout`).
pub trait Stage {
    fn packet(&mut self, ts_ns: u64, p: &Packet<'_>);
    /// Time passed without packets (live capture): judge idle flows.
    fn advance(&mut self, now_ns: u64);
    /// End of input: judge every open flow.
    fn finish(&mut self);
    /// Hand the outputs judged so far (and ready to go, in stream order) to `sink`.
    fn emit_to(&mut self, sink: &mut impl Sink);
    /// The counters so far (summed over workers).
    fn counters(&self) -> PipelineStats;
    /// The mapped file the next packets' payloads may borrow from (see [`Source::mapped`]).
    fn input(&mut self, _map: Option<&Mapped>) {}
}

impl Stage for Pipeline {
    fn packet(&mut self, ts_ns: u64, p: &Packet<'_>) {
        Pipeline::packet(self, ts_ns, p);
    }
    fn advance(&mut self, now_ns: u64) {
        Pipeline::advance(self, now_ns);
    }
    fn finish(&mut self) {
        Pipeline::finish(self);
    }
    fn emit_to(&mut self, sink: &mut impl Sink) {
        for o in self.drain_outputs() {
            sink.emit(o);
        }
    }
    fn counters(&self) -> PipelineStats {
        self.stats
    }
}

/// Why a run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// The input ended.
    End,
    /// SIGINT or SIGTERM.
    Signal(&'static str),
    /// The run's deadline (`--duration`).
    Deadline,
    /// The sink could not go on.
    Sink(&'static str),
}

impl Stop {
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::End => "end of input",
            Stop::Signal(s) => s,
            Stop::Deadline => "--duration",
            Stop::Sink(why) => why,
        }
    }
}

/// What ends a run besides its input, set up before the source is opened (so a signal while
/// attaching still ends in a clean shutdown).
pub struct Stopper {
    signals: Option<(Signal, Signal)>,
    deadline: Option<Duration>,
}

impl Stopper {
    /// Install SIGINT/SIGTERM handlers when `signals` (call inside the runtime).
    pub fn new(signals: bool, deadline: Option<Duration>) -> std::io::Result<Self> {
        let signals =
            if signals { Some((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)) } else { None };
        Ok(Stopper { signals, deadline })
    }

    async fn signalled(&mut self) -> &'static str {
        match &mut self.signals {
            Some((int, term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            None => std::future::pending().await,
        }
    }
}

/// Drive `source` through `pipeline` into `sink` until the input ends or something in
/// `stopper` does. `tick` runs every `period` of wall-clock time and once at the end, after
/// idle flows were judged: publish counters, show progress, let sinks do periodic work.
pub async fn run<S: Source, P: Stage, K: Sink>(
    source: &mut S,
    pipeline: &mut P,
    sink: &mut K,
    mut stopper: Stopper,
    period: Duration,
    mut tick: impl FnMut(&S, &P, &mut K),
) -> Result<Stop, S::Error> {
    let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = stopper.deadline;
    let deadline = async move {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let stop = loop {
        tokio::select! {
            biased;
            why = stopper.signalled() => break Stop::Signal(why),
            _ = &mut deadline => break Stop::Deadline,
            _ = timer.tick() => {
                // Also a safety net should a ring-buffer wakeup ever be missed.
                if step(source, pipeline, sink) {
                    break Stop::End;
                }
                if let Some(now) = source.now_ns() {
                    pipeline.advance(now);
                }
                emit(pipeline, sink);
                tick(source, pipeline, sink);
            }
            r = source.ready() => {
                r?;
                if step(source, pipeline, sink) {
                    break Stop::End;
                }
            }
        }
        emit(pipeline, sink);
        if let Some(why) = sink.broken() {
            break Stop::Sink(why);
        }
    };
    let mut left = source.close();
    while left > 0 {
        pipeline.input(source.mapped());
        let Drained::Packets(n) = source.drain(MAX_BATCH.min(left), |ts, p| pipeline.packet(ts, p)) else { break };
        emit(pipeline, sink);
        if n < MAX_BATCH {
            break;
        }
        left = left.saturating_sub(n);
    }
    pipeline.finish();
    emit(pipeline, sink);
    tick(source, pipeline, sink);
    Ok(stop)
}

/// One batch from the source into the pipeline; a failed part of the input is reported after
/// what came before it. True at the end of the input.
fn step(source: &mut impl Source, pipeline: &mut impl Stage, sink: &mut impl Sink) -> bool {
    pipeline.input(source.mapped());
    match source.drain(MAX_BATCH, |ts, p| pipeline.packet(ts, p)) {
        Drained::Packets(_) => false,
        Drained::Failed(m) => {
            emit(pipeline, sink);
            sink.failed(&m);
            false
        }
        Drained::End => true,
    }
}

fn emit(pipeline: &mut impl Stage, sink: &mut impl Sink) {
    pipeline.emit_to(sink);
}

/// Collects outputs in memory (tests, small captures).
#[derive(Default)]
pub struct Collect {
    pub outputs: Vec<Output>,
    /// Messages of the parts of the input that failed.
    pub failures: Vec<String>,
}

impl Sink for Collect {
    fn emit(&mut self, o: Output) {
        self.outputs.push(o);
    }
    fn failed(&mut self, message: &str) {
        self.failures.push(message.to_string());
    }
    fn broken(&self) -> Option<&'static str> {
        None
    }
}

/// Replay capture files through a default pipeline with the run loop, into memory (tests,
/// small captures). Returns the outputs and the pipeline (its counters), plus the source's.
pub fn replay_files(files: Vec<std::path::PathBuf>) -> (Collect, Pipeline, DecodeStats) {
    let mut pipeline = Pipeline::new(Default::default());
    let mut source = FileSource::new(files);
    let mut sink = Collect::default();
    match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(rt) => {
            let stopper = Stopper { signals: None, deadline: None };
            let period = Duration::from_secs(1);
            let Ok(_) = rt.block_on(run(&mut source, &mut pipeline, &mut sink, stopper, period, |_, _, _| {}));
        }
        Err(e) => sink.failures.push(format!("cannot start the async runtime: {e}")),
    }
    let stats = source.decoded();
    (sink, pipeline, stats)
}

/// One capture file through [`replay_files`]: the outputs and the pipeline, or the outputs
/// before the error and its message.
pub fn replay_path(path: &std::path::Path) -> Result<(Vec<Output>, Pipeline), (Vec<Output>, String)> {
    let (mut c, pipeline, _) = replay_files(vec![path.to_path_buf()]);
    match c.failures.pop() {
        None => Ok((c.outputs, pipeline)),
        Some(e) => Err((c.outputs, e)),
    }
}
