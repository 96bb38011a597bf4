//! Wiring for the binary: a source (capture files or the live ring buffer) → the one run loop →
//! the emitter's sinks; what each command prints at the end, and its exit code.
//! Must never drive packets itself: `monitor::run::run` is the only loop.
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use monitor::attribution::cgroup::CgroupIndex;
use monitor::attribution::Attributor;
use monitor::capture::ebpf::{privileges, AttachMode, Capture, CaptureConfig};
use monitor::capture::files::FileSource;
use monitor::capture::{Progress, Source};
use monitor::cli::{
    AlertArgs, AuditArgs, AuditCommand, Cli, Command, Format, ListenArgs, LiveArgs, PipelineArgs, ProbeArgs,
    ReplayArgs, XdpModeArg,
};
use monitor::fanout::Engine;
use monitor::inspect::tls::trust::TrustStore;
use monitor::observation::{losses, DecodeStats, Loss, PipelineStats};
use monitor::pipeline::{Pipeline, PipelineConfig};
use monitor::probe::queue::QueueConfig;
use monitor::probe::{ProbeConfig, Prober};
use monitor::run::{self, Stage, Stop, Stopper};
use monitor::sink::alertmanager::{AlertStats, Alerter};
use monitor::sink::audit::{self, AuditLog, RotatePolicy, SyncPolicy};
use monitor::sink::ecs::{Observer, Style};
use monitor::sink::inventory::Inventory;
use monitor::sink::metrics::Mode;
use monitor::sink::published::Published;
use monitor::sink::report;
use monitor_common::KernelConfig;

use crate::emitter::Emitter;

pub fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Command::Replay(a) => replay(a),
        Command::Live(a) => live(a),
        Command::Audit(AuditCommand::Verify { keys, files }) => audit_verify(&keys, &files),
        Command::Audit(AuditCommand::Key { out }) => audit_key(&out),
        Command::Report(a) => period_report(&a),
        Command::Completions { shell } => crate::manual::completions(shell),
        Command::Man { out } => crate::manual::man(&out),
    }
}

/// `tlsmon audit verify [--key PUB]… FILE…`: the verdict on stdout; 0 intact (and sealed, with
/// keys), 1 broken, 3 signed but not sealed (2 on I/O and key errors). One file keeps its
/// one-file verdict line; several are checked as one rolled series.
fn audit_verify(keys: &[std::path::PathBuf], files: &[std::path::PathBuf]) -> Result<i32> {
    let keys = keys
        .iter()
        .map(|k| audit::PublicKey::from_file(k))
        .collect::<Result<Vec<_>, _>>()
        .context("reading the public key (--key)")?;
    let verdict = audit::verify_series_keyed(files, &keys)?;
    println!("{verdict}");
    Ok(verdict.exit_code())
}

/// `tlsmon audit key --out FILE`: create (or read) the signing key; say where its public key is.
fn audit_key(out: &std::path::Path) -> Result<i32> {
    let (signer, created) = audit::Signer::load_or_create(out)?;
    let public = audit::pub_path(out);
    let what = if created { "created" } else { "exists" };
    println!(
        "{what}: {} (key id {}); public key: {} (give it to whoever verifies the log: tlsmon audit verify --key {} FILE…)",
        out.display(),
        signer.public_key().key_id(),
        public.display(),
        public.display()
    );
    Ok(0)
}

/// `tlsmon report AUDIT_LOG…`: the period report to --out or stdout; 0 when every chain is
/// intact, 1 when one is broken (the report says where), 2 on I/O errors.
fn period_report(a: &monitor::cli::PeriodArgs) -> Result<i32> {
    use monitor::sink::period::{self, Period};
    let started = Instant::now();
    let names: Vec<String> = a.files.iter().map(|f| f.display().to_string()).collect();
    let mut p = Period::new(Inventory::new("", a.max_servers), names, a.since, a.until);
    let keys = a
        .keys
        .iter()
        .map(|k| audit::PublicKey::from_file(k))
        .collect::<Result<Vec<_>, _>>()
        .context("reading the public key (--key)")?;
    period::read_logs(&a.files, &keys, &mut p).context("reading the audit logs")?;
    // The title names the agents; the stamps list their files.
    p.sources = p.stamps.iter().map(|s| s.agent.clone()).collect();
    if p.inventory.profile.is_empty() {
        p.inventory.profile = "unknown (no finding names its rule)".into();
    }
    let doc = period::render(a.format, &p);
    match &a.out {
        Some(path) => std::fs::write(path, doc).with_context(|| format!("writing the report to {}", path.display()))?,
        None => std::io::stdout().lock().write_all(doc.as_bytes()).context("writing the report")?,
    }
    tracing::info!(
        events = p.events,
        agents = p.stamps.len(),
        secs = started.elapsed().as_secs_f64(),
        "report written"
    );
    Ok(if p.stamps.iter().any(|s| s.first_bad.is_some()) { 1 } else { 0 })
}

/// The audit log asked for on the command line, opened (and its tail checked) before any work.
fn open_audit(a: &AuditArgs) -> Result<Option<AuditLog>> {
    let Some(path) = &a.audit_log else { return Ok(None) };
    let policy = SyncPolicy { every: Duration::from_secs(a.audit_fsync_secs), ..Default::default() };
    let rotate =
        RotatePolicy { max_bytes: a.audit_rotate_mb.map(|mb| mb.saturating_mul(1 << 20)), daily: a.audit_rotate_daily };
    // The key first: a refused key stops the run before the log is touched.
    let signer = match &a.audit_sign_key {
        None => None,
        Some(key) => {
            let (signer, created) = audit::Signer::load_or_create(key)?;
            if created {
                eprintln!(
                    "tlsmon: created the audit signing key {} (key id {}); give {} to the auditor",
                    key.display(),
                    signer.public_key().key_id(),
                    audit::pub_path(key).display()
                );
            }
            Some(signer)
        }
    };
    let log = AuditLog::open_rotating(path, policy, rotate)?;
    let Some(signer) = signer else { return Ok(Some(log)) };
    let every = (a.audit_checkpoint_mins > 0).then(|| Duration::from_secs(a.audit_checkpoint_mins.saturating_mul(60)));
    Ok(Some(log.sign(signer, every)))
}

/// The pipeline settings both commands take from the command line (the CA bundle is read here),
/// candidate ports included: live loads the kernel program with the same ones.
fn pipeline_config(a: &PipelineArgs) -> Result<PipelineConfig> {
    let trust = match &a.ca_bundle {
        Some(p) => Some(Arc::new(TrustStore::from_pem_file(p)?)),
        None => None,
    };
    let policy = monitor::policy::Policy {
        profile: a.profile,
        exceptions: a.exceptions.clone(),
        severity_overrides: a.severity_overrides.clone(),
        mtls_required: a.mtls_required.clone(),
        ..Default::default()
    };
    let mut candidates = KernelConfig::default();
    for &port in &a.candidate_ports {
        candidates.add_port(port).map_err(|max| {
            anyhow::anyhow!("too many candidate ports: the kernel program takes {max} in all, built-in ones included")
        })?;
    }
    Ok(PipelineConfig {
        max_flows: a.max_flows,
        idle_timeout_s: a.idle_timeout,
        max_memory: a.max_memory_mb.saturating_mul(1 << 20),
        trust,
        policy,
        candidates,
        ..Default::default()
    })
}

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

/// The prober's settings when `--probe` asks for it (the merged options already hold an allow
/// rule): judged under the pipeline's policy and CA bundle.
fn probe_config(a: &ProbeArgs, cfg: &PipelineConfig) -> Option<ProbeConfig> {
    if !a.probe {
        return None;
    }
    let queue = QueueConfig {
        interval_ms: a.probe_interval.saturating_mul(1000),
        rate_per_s: a.probe_rate,
        max_in_flight: a.probe_concurrency,
        ..Default::default()
    };
    Some(ProbeConfig {
        allow: a.probe_allow.clone(),
        deny: a.probe_deny.clone(),
        queue,
        timeout: Duration::from_secs(a.probe_timeout),
        all: a.probe_all,
        versions: a.probe_versions,
        policy: cfg.policy.clone(),
        trust: cfg.trust.clone(),
    })
}

/// Start the prober's thread, and say what it may do.
fn start_prober(pc: Option<ProbeConfig>) -> Result<Option<Prober>> {
    let Some(pc) = pc else { return Ok(None) };
    let line = format!(
        "tlsmon: probe: on for {} allow rule(s), {} deny rule(s); at most {}/s, {} at once, each server once per {} s",
        pc.allow.len(),
        pc.deny.len(),
        pc.queue.rate_per_s,
        pc.queue.max_in_flight,
        pc.queue.interval_ms / 1000
    );
    let p = Prober::start(pc).map_err(|e| anyhow::anyhow!("--probe: {e}"))?;
    eprintln!("{line}");
    Ok(Some(p))
}

/// Replay with --probe: the capture is read; wait for the probes it queued (progress on
/// stderr every few seconds), writing their results, until none is left or SIGINT/SIGTERM.
fn await_probes<W: Write>(rt: &tokio::runtime::Runtime, em: &mut Emitter<W>) -> Result<()> {
    let Some(p) = &em.prober else { return Ok(()) };
    if p.idle() {
        return Ok(());
    }
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
        let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        let mut last = Instant::now();
        loop {
            em.probe_results();
            let Some(p) = &em.prober else { break };
            if p.idle() {
                break;
            }
            if last.elapsed() >= PROBE_PROGRESS {
                let s = p.stats();
                eprintln!("tlsmon: probe: {} waiting, {} running, {} done", s.pending, s.in_flight, s.ended.iter().sum::<u64>());
                last = Instant::now();
            }
            tokio::select! {
                _ = sigint.recv() => { eprintln!("tlsmon: probe: stopped by SIGINT; probes not run are counted"); break }
                _ = sigterm.recv() => { eprintln!("tlsmon: probe: stopped by SIGTERM; probes not run are counted"); break }
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
        anyhow::Ok(())
    })?;
    em.stop_prober();
    Ok(())
}

/// The losses with the prober's added (and its counters into the metrics).
fn with_probes<W: Write>(mut lost: Vec<Loss>, em: &Emitter<W>) -> Vec<Loss> {
    if let Some(s) = em.probe_stats() {
        lost.extend(monitor::probe::losses(&s));
    }
    lost
}

/// The prober's counters into the metrics.
fn publish_probes<W: Write>(published: &Published, em: &Emitter<W>) {
    if let Some(s) = em.probe_stats() {
        published.metrics.probes(&s);
    }
}

/// How often replay says how the probes are going while it waits for them.
const PROBE_PROGRESS: Duration = Duration::from_secs(5);

/// The runtime the run loop and the signal handlers live on.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("starting the async runtime")
}

/// Wait for SIGINT or SIGTERM (replay --listen: the final figures stay up until then).
fn wait_for_signal() -> Result<()> {
    runtime()?.block_on(async {
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

/// `--stats`: the source's and the pipeline's counters, the same fields for live and replay,
/// then what was not inspected.
fn print_stats(source: &DecodeStats, pipeline: &PipelineStats, losses: &[Loss]) {
    eprintln!("{source:#?}");
    eprintln!("{pipeline:#?}");
    let mut s = String::new();
    monitor::sink::summary::loss_lines(&mut s, losses);
    eprint!("{}", if s.is_empty() { "Not inspected: nothing (no bound was hit, nothing dropped)\n" } else { &s });
}

/// Files over this size show progress on a terminal.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;
/// Replay's tick: progress, metrics and periodic sink work.
const REPLAY_TICK: Duration = Duration::from_millis(500);
/// Live capture's tick: idle flows, metrics, periodic sink work.
const LIVE_TICK: Duration = Duration::from_secs(1);

/// The progress line on stderr: one per file, rewritten in place.
struct ProgressLine {
    /// Always / only for files of at least [`PROGRESS_MIN_BYTES`] on a terminal / never.
    mode: Option<bool>,
    file: String,
    started: Instant,
    shown: bool,
}

impl ProgressLine {
    fn new(a: &ReplayArgs) -> Self {
        let mode = match (a.no_progress, a.progress) {
            (true, _) => None,
            (false, true) => Some(true),
            (false, false) => std::io::stderr().is_terminal().then_some(false),
        };
        ProgressLine { mode, file: String::new(), started: Instant::now(), shown: false }
    }

    fn update(&mut self, p: &Progress<'_>) {
        if p.name != self.file {
            self.end();
            self.file = p.name.to_string();
            self.started = Instant::now();
        }
        let wanted = match self.mode {
            Some(always) => !p.name.is_empty() && (always || p.size >= PROGRESS_MIN_BYTES),
            None => false,
        };
        if wanted {
            let pct = if p.size > 0 { 100.0 * p.read as f64 / p.size as f64 } else { 0.0 };
            let rate = p.read as f64 / 1e6 / self.started.elapsed().as_secs_f64().max(1e-9);
            eprint!("\r{}: {pct:5.1}%  {} MB  {rate:.0} MB/s   ", p.name, p.read / 1_000_000);
            self.shown = true;
        }
    }

    fn end(&mut self) {
        if std::mem::take(&mut self.shown) {
            eprintln!();
        }
    }
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
    let prober = start_prober(probe_config(&a.probe, &cfg))?;
    let threads = a.threads.map_or_else(default_threads, usize::from);
    let style = monitor::sink::json::Style { legacy: !a.events.no_legacy_fields, ..Default::default() };
    // Workers render the JSON lines with the emitter's writer and style (the same bytes, off
    // the merge).
    let render = (format == Format::Json).then(|| {
        let style = style.clone();
        let render: monitor::fanout::Render =
            Arc::new(move |o, line| monitor::sink::json::write_line(o, &style, line).is_ok());
        render
    });
    let mut pipeline = Engine::new(cfg, threads, render).context("starting the replay workers")?;
    let audit = open_audit(&a.audit)?;
    let server = serve(&a.listen, &published)?;
    let out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if a.report == Some(monitor::cli::ReportFormat::Html) {
        let inv = Inventory::new(a.pipeline.profile.name(), monitor::sink::inventory::MAX_SERVERS);
        published.start_period(monitor::sink::period::Period::new(inv, names.clone(), None, None));
    }
    let mut em = Emitter::new(format, out, false, audit, published.clone());
    em.style = style;
    em.alerter = alerter(&a.alerts, &published)?;
    em.prober = prober;
    let mut source = FileSource::new(a.files.clone()).mmap(!a.no_mmap);
    let metrics = &published.metrics;
    metrics.replay_files(source.total_size(), a.files.len(), 0, false);
    let start = Instant::now();
    let mut progress = ProgressLine::new(&a);
    let rt = runtime()?;
    let stop = rt.block_on(async {
        let stopper = Stopper::new(true, None).context("installing the SIGINT/SIGTERM handlers")?;
        let tick = |src: &FileSource, p: &Engine, em: &mut Emitter<_>| {
            if let Some(pr) = src.progress() {
                metrics.replay_read(pr.read_all);
                metrics.replay_files(pr.size_all, pr.files_total, pr.files_done, false);
                progress.update(&pr);
            }
            let decoded = src.decoded();
            let stats = p.counters();
            metrics.source(&decoded);
            metrics.pipeline(&stats);
            published.set_losses(with_probes(losses(&decoded, &stats, [], 0), em));
            // Audit fsync interval, Alertmanager resends and inactivity resolution.
            em.periodic();
            publish_probes(&published, em);
        };
        let Ok(stop) = run::run(&mut source, &mut pipeline, &mut em, stopper, REPLAY_TICK, tick).await;
        anyhow::Ok(stop)
    })?;
    progress.end();
    if let Stop::Signal(sig) = stop {
        eprintln!("tlsmon: replay stopped by {sig}: the output covers what was read until then");
        em.stop_prober();
    }
    await_probes(&rt, &mut em)?;
    publish_probes(&published, &em);
    metrics.replay_files(source.total_size(), a.files.len(), a.files.len(), true);
    published.finish();
    let decoded = source.decoded();
    let stats = pipeline.counters();
    drop(pipeline);
    let lost = with_probes(losses(&decoded, &stats, [], 0), &em);
    published.set_losses(lost.clone());
    let secs = start.elapsed().as_secs_f64();
    let mut text = (format == Format::Text).then(|| em.summary.render(&decoded, &stats, &lost, a.files.len(), secs));
    if let Some(f) = a.report {
        let doc = match published.take_period() {
            Some(mut p) => {
                p.inventory.losses = lost.clone();
                monitor::sink::period::html::render(&p)
            }
            None => report::render(f, &published.inventory(), &names),
        };
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
        print_stats(&decoded, &stats, &lost);
    }
    if let Some(server) = server {
        eprintln!("tlsmon: replay done; serving the final metrics on {} until SIGINT/SIGTERM", server.addr);
        wait_for_signal()?;
        server.stop();
    }
    if source.failed > 0 {
        return Ok(2);
    }
    Ok(match (a.fail_on, worst) {
        (Some(t), Some(w)) if w >= t => 1,
        _ => 0,
    })
}

/// `--threads` by default: the cores this process may use.
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
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

fn live(a: LiveArgs) -> Result<i32> {
    let cfg = pipeline_config(&a.pipeline)?;
    let mode = match (a.xdp, a.xdp_mode) {
        (false, _) => AttachMode::Tc,
        (true, XdpModeArg::Skb) => AttachMode::XdpSkb,
        (true, XdpModeArg::Native) => AttachMode::XdpNative,
    };
    // The kernel program is loaded with the settings the pipeline judges candidates by.
    let capture_cfg =
        CaptureConfig { ifaces: a.ifaces.clone(), mode, kernel: cfg.candidates, cgroup_root: a.cgroup_root.clone() };
    let rt = runtime()?;
    let audit = open_audit(&a.audit)?;
    // The inventory is always kept in live mode (served at /inventory, counted in /metrics).
    let inventory = Inventory::new(a.pipeline.profile.name(), monitor::sink::inventory::MAX_SERVERS);
    let published = Arc::new(Published::new(Mode::Live, inventory, Vec::new()));
    let server = serve(&a.listen, &published)?;
    let alerter = alerter(&a.alerts, &published)?;
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut em = Emitter::new(a.format, out, true, audit, published.clone());
    em.style = Style { legacy: !a.events.no_legacy_fields, observer: Observer::live(&a.ifaces) };
    em.alerter = alerter;
    let probe = probe_config(&a.probe, &cfg);
    let code = rt.block_on(live_run(&a, &capture_cfg, Pipeline::new(cfg), em, &published, probe));
    published.finish();
    if let Some(server) = server {
        server.stop();
    }
    code
}

/// Attach, then run until a signal or --duration; the run loop detaches, takes what is left in
/// the ring, judges every open flow and emits; then report.
async fn live_run<W: Write>(
    a: &LiveArgs,
    capture_cfg: &CaptureConfig,
    mut pipeline: Pipeline,
    mut em: Emitter<W>,
    published: &Arc<Published>,
    probe: Option<ProbeConfig>,
) -> Result<i32> {
    // Handlers first, so a signal while attaching still ends in a clean shutdown.
    let stopper =
        Stopper::new(true, a.duration.map(Duration::from_secs)).context("installing the SIGINT/SIGTERM handlers")?;
    let mut capture = Capture::open(capture_cfg)?;
    eprintln!("tlsmon: live: {}", capture.describe());
    if let Some(mut owners) = capture.take_owners() {
        eprintln!(
            "tlsmon: live: process attribution: {}/{} socket hooks, {} existing sockets named",
            owners.attached,
            monitor::capture::ebpf::owners::HOOKS.len(),
            owners.scan.owned
        );
        let cgroups = owners.cgroup_root.take().map_or_else(CgroupIndex::new, CgroupIndex::open_dir);
        em.attributor = Some(Attributor::new(Box::new(move |c| owners.get(c)), cgroups));
    }
    // Attached: from here on no capability is needed (STYLE: no full root after attach).
    if !privileges::links_are_descriptors() {
        tracing::info!("kernel before 6.6: keeping CAP_NET_ADMIN to detach the netlink TC filters at exit");
    } else if let Err(e) = privileges::drop_all() {
        tracing::warn!(error = %e, "could not drop capabilities after attaching; running on with them");
    } else {
        tracing::info!("dropped every capability after attaching");
    }
    // Started after the drop: the prober's thread holds no capability either.
    em.prober = start_prober(probe)?;
    let start = Instant::now();
    let publish = |capture: &Capture, pipeline: &Pipeline, em: &mut Emitter<W>| {
        let m = &published.metrics;
        m.pipeline(&pipeline.stats);
        m.reader(capture.stats.records, capture.stats.bad_records);
        if let Some(a) = &em.attributor {
            m.attribution(&a.stats);
        }
        match capture.counters() {
            Ok(c) => {
                m.kernel(c.named());
                let decoded = DecodeStats::from_kernel(|i| c.get(i));
                m.source(&decoded);
                let lost = losses(&decoded, &pipeline.stats, c.named(), capture.stats.bad_records);
                published.set_losses(with_probes(lost, em));
            }
            Err(e) => tracing::debug!(error = %e, "reading the kernel counters"),
        }
        published.turned();
        em.periodic();
        publish_probes(published, em);
    };
    let stop = run::run(&mut capture, &mut pipeline, &mut em, stopper, LIVE_TICK, publish).await?;
    tracing::info!(reason = stop.as_str(), "stopped live capture");
    let secs = start.elapsed().as_secs_f64();
    em.stop_prober();
    publish_probes(published, &em);
    let lost = with_probes(live_losses(&capture, &pipeline), &em);
    published.set_losses(lost.clone());
    let ifaces = capture_cfg.ifaces.join(",");
    let text = (a.format == Format::Text).then(|| em.summary.render_live(&ifaces, capture.stats.records, &lost, secs));
    em.close(text)?;
    if a.stats {
        live_stats(&capture, &pipeline, published, &lost);
    }
    Ok(0)
}

/// What live capture could not inspect: the pipeline's bounds, the kernel's drops (when its
/// counters can be read) and the reader's.
fn live_losses(capture: &Capture, pipeline: &Pipeline) -> Vec<Loss> {
    let named: Vec<(&str, u64)> = capture.counters().map(|c| c.named().collect()).unwrap_or_default();
    losses(&capture.decoded(), &pipeline.stats, named, capture.stats.bad_records)
}

/// `tlsmon live --stats`: inventory size, kernel counters, the reader's, then the counters every
/// source has.
fn live_stats(capture: &Capture, pipeline: &Pipeline, published: &Published, lost: &[Loss]) {
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
    print_stats(&capture.decoded(), &pipeline.stats, lost);
}
