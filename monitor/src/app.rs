//! Wiring for the binary: sources → pipeline → sinks, progress and exit codes.
use std::io::{IsTerminal, Write};
use std::time::Instant;

use anyhow::{Context, Result};
use monitor::cli::{Cli, Command, Format, ReplayArgs};
use monitor::pipeline::{Output, Pipeline, PipelineConfig};
use monitor::policy::Severity;
use monitor::sink::{json, summary::Summary};

pub fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Command::Replay(a) => replay(a),
    }
}

const PROGRESS_MIN_BYTES: u64 = 64 << 20;

fn replay(a: ReplayArgs) -> Result<i32> {
    let stdout = std::io::stdout();
    let format = a.format.unwrap_or(if stdout.is_terminal() { Format::Text } else { Format::Json });
    let trust = match &a.ca_bundle {
        Some(p) => Some(std::sync::Arc::new(monitor::inspect::tls::trust::TrustStore::from_pem_file(p)?)),
        None => None,
    };
    let cfg = PipelineConfig { max_flows: a.max_flows, idle_timeout_s: a.idle_timeout, trust, ..Default::default() };
    let mut pipeline = Pipeline::new(cfg);
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut summary = Summary::default();
    let mut worst: Option<Severity> = None;
    let mut write_err: Option<std::io::Error> = None;
    let mut failed = 0usize;
    let start = Instant::now();
    let mut emit = |o: Output, out: &mut dyn Write| {
        worst = worst.max(o.findings.iter().map(|f| f.severity).max());
        match format {
            Format::Json => {
                let ev = json::event(&o.handshake, &o.findings);
                let r = serde_json::to_writer(&mut *out, &ev)
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n"));
                if let Err(e) = r {
                    write_err.get_or_insert(e);
                }
            }
            Format::Text => summary.add(&o),
            Format::None => {}
        }
    };
    for path in &a.files {
        let name = path.display().to_string();
        let (reader, size): (Box<dyn std::io::Read>, u64) = if name == "-" {
            (Box::new(std::io::stdin().lock()), 0)
        } else {
            let f = std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?;
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            (Box::new(f), size)
        };
        let show = !a.no_progress && (a.progress || (std::io::stderr().is_terminal() && size >= PROGRESS_MIN_BYTES));
        let t0 = Instant::now();
        let mut last = t0;
        let tick = |s: &monitor::capture::pcap::SourceStats| {
            if show && last.elapsed().as_millis() >= 500 {
                last = Instant::now();
                let pct = if size > 0 { 100.0 * s.bytes as f64 / size as f64 } else { 0.0 };
                let rate = s.bytes as f64 / 1e6 / t0.elapsed().as_secs_f64().max(1e-9);
                eprint!("\r{name}: {pct:5.1}%  {} MB  {rate:.0} MB/s   ", s.bytes / 1_000_000);
            }
        };
        let res = monitor::replay::feed(&mut pipeline, reader, |o| emit(o, &mut out), tick);
        if show {
            eprintln!();
        }
        if let Err(e) = res {
            // Finish what was gathered before reporting the bad file.
            failed += 1;
            out.flush().ok();
            eprintln!("tlsmon: error: {name}: {e}");
        }
    }
    pipeline.finish();
    let rest: Vec<Output> = pipeline.drain_outputs().collect();
    for o in rest {
        emit(o, &mut out);
    }
    if format == Format::Text {
        let text = summary.render(&pipeline.stats, a.files.len(), start.elapsed().as_secs_f64());
        out.write_all(text.as_bytes()).ok();
    }
    out.flush().context("writing output")?;
    if let Some(e) = write_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e).context("writing output");
        }
    }
    if a.stats {
        eprintln!("{:#?}", pipeline.stats);
    }
    if failed > 0 {
        return Ok(2);
    }
    Ok(match (a.fail_on, worst) {
        (Some(t), Some(w)) if w >= t => 1,
        _ => 0,
    })
}
