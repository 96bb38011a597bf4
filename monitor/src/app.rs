//! Wiring for the binary: sources → pipeline → sinks, progress, signals and exit codes.
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use monitor::capture::ebpf::{AttachMode, Capture, CaptureConfig, MAX_BATCH};
use monitor::cli::{
    AlertArgs, AuditArgs, AuditCommand, Cli, Command, Format, ListenArgs, LiveArgs, PipelineArgs, ReplayArgs,
    XdpModeArg,
};
use monitor::inspect::tls::trust::TrustStore;
use monitor::observation::Output;
use monitor::pipeline::{Pipeline, PipelineConfig};
use monitor::policy::Severity;
use monitor::sink::alertmanager::{AlertStats, Alerter};
use monitor::sink::audit::{self, AuditLog, SyncPolicy};
use monitor::sink::inventory::Inventory;
use monitor::sink::metrics::Mode;
use monitor::sink::published::Published;
use monitor::sink::{json, report, summary::Summary};
use monitor_common::KernelConfig;
use std::sync::Arc;

pub fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Command::Replay(a) => replay(a),
        Command::Live(a) => live(a),
        Command::Audit(AuditCommand::Verify { file }) => audit_verify(&file),
    }
}

/// `tlsmon audit verify FILE`: the verdict on stdout; 0 intact, 1 broken (2 on I/O errors).
fn audit_verify(file: &std::path::Path) -> Result<i32> {
    let verdict = audit::verify(file)?;
    println!("{verdict}");
    Ok(match verdict {
        audit::Verdict::Intact { .. } => 0,
        audit::Verdict::Broken { .. } => 1,
    })
}

/// The audit log asked for on the command line, opened (and its tail checked) before any work.
fn open_audit(a: &AuditArgs) -> Result<Option<AuditLog>> {
    let Some(path) = &a.audit_log else { return Ok(None) };
    let policy = SyncPolicy { every: Duration::from_secs(a.audit_fsync_secs), ..Default::default() };
    Ok(Some(AuditLog::open(path, policy)?))
}

/// Where judged handshakes go, for replay and live alike: JSON lines, the text summary, or
/// nowhere; every event to the audit log when there is one, and to Alertmanager when asked;
/// every one into the metrics and the posture inventory (for --report, /metrics, /inventory).
/// Remembers the worst severity (for --fail-on) and the first write error of each.
struct Emitter<W: Write> {
    format: Format,
    out: W,
    /// Flush after every JSON line (live: whoever reads the pipe sees events as they happen).
    flush_each: bool,
    summary: Summary,
    worst: Option<Severity>,
    write_err: Option<std::io::Error>,
    audit: Option<AuditLog>,
    audit_err: Option<audit::AuditError>,
    published: Arc<Published>,
    alerter: Option<Alerter>,
}

impl<W: Write> Emitter<W> {
    fn new(format: Format, out: W, flush_each: bool, audit: Option<AuditLog>, published: Arc<Published>) -> Self {
        let summary = Summary::default();
        let (worst, write_err, audit_err, alerter) = (None, None, None, None);
        Emitter { format, out, flush_each, summary, worst, write_err, audit, audit_err, published, alerter }
    }

    fn emit(&mut self, o: Output) {
        // Accepted risks do not fail a run (--fail-on); expired exceptions do not accept.
        self.worst = self.worst.max(o.findings.iter().filter(|f| !f.is_accepted()).map(|f| f.severity).max());
        self.published.metrics.observe(&o);
        self.published.inventory().add(&o);
        if let Some(a) = &mut self.alerter {
            a.observe(&o);
        }
        if let (Some(log), None) = (&mut self.audit, &self.audit_err) {
            self.audit_err = log.append(&json::any_event(&o)).err();
        }
        match self.format {
            Format::Json => {
                if self.write_err.is_some() {
                    return;
                }
                let ev = json::any_event(&o);
                let out = &mut self.out;
                let r = serde_json::to_writer(&mut *out, &ev)
                    .map_err(std::io::Error::from)
                    .and_then(|_| out.write_all(b"\n"))
                    .and_then(|_| if self.flush_each { out.flush() } else { Ok(()) });
                if let Err(e) = r {
                    self.write_err = Some(e);
                }
            }
            Format::Text => self.summary.add(&o),
            Format::None => {}
        }
    }

    fn emit_all(&mut self, outputs: impl IntoIterator<Item = Output>) {
        for o in outputs {
            self.emit(o);
        }
    }

    /// Fsync the audit log if its interval has passed, and let the Alertmanager sink resend or
    /// resolve (call about once a second).
    fn periodic(&mut self) {
        if let Some(a) = &mut self.alerter {
            a.tick();
        }
        if let (Some(log), None) = (&mut self.audit, &self.audit_err) {
            self.audit_err = log.sync_if_due().err();
        }
    }

    /// Write `tail` (the text report), flush, and return the worst severity seen. Output
    /// closed by the reader (broken pipe) is not an error.
    fn close(mut self, tail: Option<String>) -> Result<Option<Severity>> {
        if let Some(e) = self.audit_err.take() {
            return Err(e).context("writing the audit log");
        }
        if let Some(log) = self.audit.take() {
            log.close().context("closing the audit log")?;
        }
        if let Some(a) = self.alerter.take() {
            a.finish(ALERT_FINISH);
        }
        let mut r = match tail {
            Some(t) => self.out.write_all(t.as_bytes()),
            None => Ok(()),
        };
        r = r.and_then(|_| self.out.flush());
        if let Some(e) = self.write_err.take().or(r.err()) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(e).context("writing output");
            }
        }
        Ok(self.worst)
    }
}

/// The pipeline settings both commands take from the command line (the CA bundle is read here).
fn pipeline_config(a: &PipelineArgs) -> Result<PipelineConfig> {
    let trust = match &a.ca_bundle {
        Some(p) => Some(std::sync::Arc::new(TrustStore::from_pem_file(p)?)),
        None => None,
    };
    let policy = monitor::policy::Policy {
        profile: a.profile,
        exceptions: a.exceptions.clone(),
        severity_overrides: a.severity_overrides.clone(),
        ..Default::default()
    };
    Ok(PipelineConfig { max_flows: a.max_flows, idle_timeout_s: a.idle_timeout, trust, policy, ..Default::default() })
}

const PROGRESS_MIN_BYTES: u64 = 64 << 20;
/// How long the Alertmanager sink may take at exit to post what is queued.
const ALERT_FINISH: Duration = Duration::from_secs(5);

/// Start the HTTP endpoint when `--listen` asks for it, and say where it listens.
fn serve(args: &ListenArgs, published: &Arc<Published>) -> Result<Option<monitor::serve::Server>> {
    let provider: Arc<dyn monitor::serve::Provider> = published.clone();
    let Some(server) = monitor::serve::spawn(args, provider)? else { return Ok(None) };
    published.http.set(server.stats.clone()).ok();
    let scheme = if args.listen_tls_cert.is_some() { "https" } else { "http" };
    eprintln!("tlsmon: serving metrics on {scheme}://{}/metrics (also /inventory, /healthz)", server.addr);
    Ok(Some(server))
}

/// Start the Alertmanager sink when `--alertmanager` asks for it.
fn alerter(args: &AlertArgs, published: &Arc<Published>) -> Result<Option<Alerter>> {
    let stats = Arc::new(AlertStats::default());
    let a = Alerter::start(args, stats.clone())?;
    if a.is_some() {
        published.alerts.set(stats).ok();
    }
    Ok(a)
}

/// Wait for SIGINT or SIGTERM (replay --listen: the final figures stay up until then).
fn wait_for_signal() -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().context("starting the async runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
        }
        Ok(())
    })
}

fn replay(a: ReplayArgs) -> Result<i32> {
    let stdout = std::io::stdout();
    let format = match (a.format, a.report, &a.report_out) {
        (Some(f), _, _) => f,
        // The report on stdout is the output.
        (None, Some(_), None) => Format::None,
        _ if stdout.is_terminal() => Format::Text,
        _ => Format::Json,
    };
    let names = capture_names(&a.files);
    let inventory = Inventory::new(a.pipeline.profile.name(), monitor::sink::inventory::MAX_SERVERS);
    let published = Arc::new(Published::new(Mode::Replay, inventory, names.clone()));
    let cfg = pipeline_config(&a.pipeline)?;
    let mut pipeline = Pipeline::new(cfg);
    let audit = open_audit(&a.audit)?;
    let server = serve(&a.listen, &published)?;
    let out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut em = Emitter::new(format, out, false, audit, published.clone());
    em.alerter = alerter(&a.alerts, &published)?;
    let mut failed = 0usize;
    let start = Instant::now();
    let sizes: Vec<u64> = a.files.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).collect();
    let metrics = &published.metrics;
    metrics.replay_files(sizes.iter().sum(), a.files.len(), 0, false);
    let mut read_before = 0u64;

    for (done, path) in a.files.iter().enumerate() {
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
        // The sink and the progress tick take turns with the emitter (never at once).
        let emitter = std::cell::RefCell::new(&mut em);
        let tick = |s: &monitor::capture::pcap::SourceStats, p: &Pipeline| {
            metrics.replay_read(read_before + s.bytes);
            metrics.pipeline(&p.stats);
            // Audit fsync interval, Alertmanager resends and inactivity resolution.
            emitter.borrow_mut().periodic();
            if show && last.elapsed().as_millis() >= 500 {
                last = Instant::now();
                let pct = if size > 0 { 100.0 * s.bytes as f64 / size as f64 } else { 0.0 };
                let rate = s.bytes as f64 / 1e6 / t0.elapsed().as_secs_f64().max(1e-9);
                eprint!("\r{name}: {pct:5.1}%  {} MB  {rate:.0} MB/s   ", s.bytes / 1_000_000);
            }
        };
        let res = monitor::replay::feed(&mut pipeline, reader, |o| emitter.borrow_mut().emit(o), tick);
        if show {
            eprintln!();
        }
        match res {
            Ok(s) => read_before += s.bytes,
            Err(e) => {
                // Finish what was gathered before reporting the bad file.
                failed += 1;
                em.out.flush().ok();
                eprintln!("tlsmon: error: {name}: {e}");
            }
        }
        metrics.replay_read(read_before);
        metrics.pipeline(&pipeline.stats);
        metrics.replay_files(sizes.iter().sum(), a.files.len(), done + 1, false);
    }
    pipeline.finish();
    em.emit_all(pipeline.drain_outputs());
    metrics.pipeline(&pipeline.stats);
    metrics.replay_files(sizes.iter().sum(), a.files.len(), a.files.len(), true);
    published.finish();
    let mut text = (format == Format::Text)
        .then(|| em.summary.render(&pipeline.stats, a.files.len(), start.elapsed().as_secs_f64()));
    if let Some(f) = a.report {
        let doc = report::render(f, &published.inventory(), &names);
        match &a.report_out {
            Some(p) => std::fs::write(p, doc).with_context(|| format!("writing the report to {}", p.display()))?,
            None => text.get_or_insert_with(String::new).push_str(&doc),
        }
    }
    let worst = em.close(text)?;
    if let Some(p) = &a.metrics_out {
        std::fs::write(p, published.metrics_text())
            .with_context(|| format!("writing the metrics to {}", p.display()))?;
    }
    if a.stats {
        eprintln!("{:#?}", pipeline.stats);
    }
    if let Some(server) = server {
        eprintln!("tlsmon: replay done; serving the final metrics on {} until SIGINT/SIGTERM", server.addr);
        wait_for_signal()?;
        server.stop();
    }
    if failed > 0 {
        return Ok(2);
    }
    Ok(match (a.fail_on, worst) {
        (Some(t), Some(w)) if w >= t => 1,
        _ => 0,
    })
}

/// The captures' file names for the report title ("stdin" for "-").
fn capture_names(files: &[std::path::PathBuf]) -> Vec<String> {
    let name = |p: &std::path::PathBuf| match p.file_name() {
        _ if p.as_os_str() == "-" => "stdin".to_string(),
        Some(n) => n.to_string_lossy().into_owned(),
        None => p.display().to_string(),
    };
    files.iter().map(name).collect()
}

/// Most records taken from the ring after detaching (it holds at most its own size anyway).
const FINAL_DRAIN_MAX: usize = 1 << 20;

fn live(a: LiveArgs) -> Result<i32> {
    let mut cfg = pipeline_config(&a.pipeline)?;
    let mode = match (a.xdp, a.xdp_mode) {
        (false, _) => AttachMode::Tc,
        (true, XdpModeArg::Skb) => AttachMode::XdpSkb,
        (true, XdpModeArg::Native) => AttachMode::XdpNative,
    };
    let mut kernel = KernelConfig::default();
    for &port in &a.candidate_ports {
        kernel.add_port(port).map_err(|max| {
            anyhow::anyhow!("too many candidate ports: the kernel program takes {max} in all, built-in ones included")
        })?;
    }
    // The pipeline judges plaintext candidates by the same settings the kernel is loaded with.
    cfg.candidates = kernel;
    let capture = CaptureConfig { ifaces: a.ifaces.clone(), mode, kernel };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the async runtime")?;
    let audit = open_audit(&a.audit)?;
    // The inventory is always kept in live mode (served at /inventory, counted in /metrics).
    let inventory = Inventory::new(a.pipeline.profile.name(), monitor::sink::inventory::MAX_SERVERS);
    let published = Arc::new(Published::new(Mode::Live, inventory, Vec::new()));
    let server = serve(&a.listen, &published)?;
    let alerter = alerter(&a.alerts, &published)?;
    let code = rt.block_on(live_loop(&a, &capture, Pipeline::new(cfg), audit, &published, alerter));
    published.finish();
    if let Some(server) = server {
        server.stop();
    }
    code
}

/// Attach, then feed records to the pipeline until a signal or --duration; then detach, take
/// what is left in the ring, judge every open flow, emit, and report.
async fn live_loop(
    a: &LiveArgs,
    capture_cfg: &CaptureConfig,
    mut pipeline: Pipeline,
    audit: Option<AuditLog>,
    published: &Arc<Published>,
    alerter: Option<Alerter>,
) -> Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    // Handlers first, so a signal while attaching still ends in a clean shutdown.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut capture = Capture::open(capture_cfg)?;
    eprintln!("tlsmon: live: {}", capture.describe());
    // Attached: from here on no capability is needed (STYLE: no full root after attach).
    use monitor::capture::ebpf::privileges;
    if !privileges::links_are_descriptors() {
        tracing::info!("kernel before 6.6: keeping CAP_NET_ADMIN to detach the netlink TC filters at exit");
    } else if let Err(e) = privileges::drop_all() {
        tracing::warn!(error = %e, "could not drop capabilities after attaching; running on with them");
    } else {
        tracing::info!("dropped every capability after attaching");
    }
    let start = Instant::now();
    let clock = capture.clock();
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut em = Emitter::new(a.format, out, true, audit, published.clone());
    em.alerter = alerter;
    let publish = |pipeline: &Pipeline, capture: &Capture| {
        let m = &published.metrics;
        m.pipeline(&pipeline.stats);
        m.reader(capture.stats.records, capture.stats.bad_records);
        match capture.counters() {
            Ok(c) => m.kernel(c.named()),
            Err(e) => tracing::debug!(error = %e, "reading the kernel counters"),
        }
        published.turned();
    };
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = async {
        match a.duration {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(deadline);
    let why = loop {
        tokio::select! {
            r = capture.wait() => {
                r?;
                capture.drain(MAX_BATCH, |ts, p| pipeline.packet(ts, p));
            }
            _ = tick.tick() => {
                // Also a safety net should a ring-buffer wakeup ever be missed.
                capture.drain(MAX_BATCH, |ts, p| pipeline.packet(ts, p));
                pipeline.advance(clock.now_ns());
                publish(&pipeline, &capture);
            }
            _ = sigint.recv() => break "SIGINT",
            _ = sigterm.recv() => break "SIGTERM",
            _ = &mut deadline => break "--duration",
        }
        em.emit_all(pipeline.drain_outputs());
        em.periodic();
        if em.write_err.is_some() {
            break "standard output closed";
        }
        if em.audit_err.is_some() {
            break "audit log write failed";
        }
    };
    tracing::info!(reason = why, "stopping live capture");
    capture.detach();
    let mut taken = 0;
    while taken < FINAL_DRAIN_MAX {
        let n = capture.drain(MAX_BATCH, |ts, p| pipeline.packet(ts, p));
        em.emit_all(pipeline.drain_outputs());
        taken += n;
        if n < MAX_BATCH {
            break;
        }
    }
    pipeline.finish();
    em.emit_all(pipeline.drain_outputs());
    publish(&pipeline, &capture);
    let secs = start.elapsed().as_secs_f64();
    let text = (a.format == Format::Text)
        .then(|| em.summary.render_live(&capture_cfg.ifaces.join(","), capture.stats.records, secs));
    em.close(text)?;
    if a.stats {
        let inv = published.inventory();
        eprintln!(
            "tlsmon: live: inventory: {} servers ({} non-compliant), {} handshakes of servers past the limit",
            inv.servers.len(),
            inv.non_compliant(),
            inv.servers_dropped
        );
        drop(inv);
        match capture.counters() {
            Ok(c) => {
                eprintln!("tlsmon: live: kernel counters (all CPUs):");
                for (name, v) in c.named() {
                    eprintln!("  {name:<20} {v}");
                }
            }
            Err(e) => eprintln!("tlsmon: live: {e:#}"),
        }
        let s = capture.stats;
        eprintln!(
            "tlsmon: live: reader: records {} ({} bytes), bad records {}, capped batches {}",
            s.records, s.record_bytes, s.bad_records, s.capped_batches
        );
        eprintln!("{:#?}", pipeline.stats);
    }
    Ok(0)
}
