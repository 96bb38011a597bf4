//! Configuration file: a strict TOML file whose keys mirror the command line's long flags,
//! merged under the flags actually given (defaults < file < command line). Reads one file and
//! the parsed command line; never opens captures, sinks or anything the options name.
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::ArgMatches;
use serde::Deserialize;

use crate::cli::{
    AlertArgs, AuditArgs, Cli, Command, Format, ListenArgs, LiveArgs, PipelineArgs, ProbeArgs, ReplayArgs, XdpModeArg,
};
use crate::policy::exceptions::{self, Exception, SniPattern};
use crate::policy::{MtlsRequired, Severity, FINDING_IDS};
use crate::probe::scope::Rule;
use crate::sink::report::ReportFormat;

pub use crate::policy::{Profile, KNOWN_PROFILES};

/// The whole file. Every key is optional: an absent key leaves the built-in default (or the
/// command line's value) alone.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    pub profile: Option<Profile>,
    pub pipeline: PipelineSection,
    pub output: OutputSection,
    pub audit: AuditSection,
    pub report: ReportSection,
    pub live: LiveSection,
    pub metrics: MetricsSection,
    pub alerts: AlertsSection,
    pub probe: ProbeSection,
    /// `[severity]`: a finding id → the severity it is reported with instead of the rule's.
    pub severity: std::collections::BTreeMap<String, Severity>,
    /// `[[exception]]`: accepted risks, in file order.
    pub exception: Vec<ExceptionEntry>,
    /// `[[mtls-required]]`: servers that must require client certificates (mutual TLS).
    pub mtls_required: Vec<MtlsRequiredEntry>,
}

/// One `[[mtls-required]]` entry as written; checked and compiled by `validate` / `mtls_required`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MtlsRequiredEntry {
    /// An IP or a CIDR, v4 or v6.
    pub server: String,
    pub port: Option<u16>,
    /// An exact server name or `*.example.org` (one label).
    pub sni: Option<String>,
}

/// One `[[exception]]` entry as written; checked and compiled by `validate` / `exceptions`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ExceptionEntry {
    /// Exactly one finding id (repeat the entry for another id).
    pub finding: String,
    /// An IP or a CIDR, v4 or v6.
    pub server: String,
    pub port: Option<u16>,
    /// An exact server name or `*.example.org` (one label).
    pub sni: Option<String>,
    pub reason: String,
    /// `YYYY-MM-DD`: the last day (UTC) the exception applies.
    pub expires: String,
}

/// `[pipeline]`: bounds and trust anchors (replay and live).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PipelineSection {
    pub max_flows: Option<usize>,
    pub idle_timeout: Option<u64>,
    pub max_memory_mb: Option<usize>,
    pub ca_bundle: Option<PathBuf>,
    pub candidate_port: Option<Vec<u16>>,
}

/// `[output]`: event format and schema (replay and live) and the failing severity (replay).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct OutputSection {
    pub format: Option<Format>,
    pub fail_on: Option<Severity>,
    /// `false` = `--no-legacy-fields`.
    pub legacy_fields: Option<bool>,
}

/// `[audit]`: the hash-chained audit log (replay and live).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AuditSection {
    pub audit_log: Option<PathBuf>,
    pub audit_fsync_secs: Option<u64>,
    pub audit_rotate_mb: Option<u64>,
    pub audit_rotate_daily: Option<bool>,
    pub audit_sign_key: Option<PathBuf>,
    pub audit_checkpoint_mins: Option<u64>,
}

/// `[report]`: the posture report (replay).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ReportSection {
    pub report: Option<ReportFormat>,
    pub report_out: Option<PathBuf>,
}

/// `[live]`: live capture.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LiveSection {
    pub iface: Option<Vec<String>>,
    pub xdp: Option<bool>,
    pub xdp_mode: Option<XdpModeArg>,
    /// Where wave 1 kept it; `[pipeline] candidate-port` (shared with replay) is used when both
    /// are given.
    pub candidate_port: Option<Vec<u16>>,
    pub duration: Option<u64>,
    pub stats: Option<bool>,
    pub cgroup_root: Option<PathBuf>,
}

/// `[metrics]`: the HTTP endpoint (replay and live) and the metrics file (replay).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct MetricsSection {
    pub listen: Option<std::net::SocketAddr>,
    pub listen_tls_cert: Option<PathBuf>,
    pub listen_tls_key: Option<PathBuf>,
    pub listen_auth_file: Option<PathBuf>,
    pub metrics_out: Option<PathBuf>,
}

/// `[alerts]`: direct alerts to Alertmanager (replay and live).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct AlertsSection {
    pub alertmanager: Option<String>,
    pub alert_min_severity: Option<Severity>,
    pub alert_queue: Option<usize>,
    pub alert_resolve_secs: Option<u64>,
    pub alert_resend_secs: Option<u64>,
}

/// `[probe]`: the opt-in certificate prober (replay and live). Off unless `probe = true`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct ProbeSection {
    pub probe: Option<bool>,
    pub probe_allow: Option<Vec<String>>,
    pub probe_deny: Option<Vec<String>>,
    pub probe_interval: Option<u64>,
    pub probe_rate: Option<u32>,
    pub probe_concurrency: Option<usize>,
    pub probe_timeout: Option<u64>,
    pub probe_all: Option<bool>,
    pub probe_versions: Option<bool>,
}

/// Most connections per second `probe-rate` may ask for.
pub const MAX_PROBE_RATE: u32 = 50;
/// Most probes at once `probe-concurrency` may ask for.
pub const MAX_PROBE_CONCURRENCY: usize = 64;

/// The rules of one `[probe]` list, or the first that does not parse as (`key[i]`, why).
fn probe_rules(key: &str, list: &Option<Vec<String>>) -> Result<Vec<Rule>, (String, String)> {
    let list = list.iter().flatten().enumerate();
    list.map(|(i, r)| Rule::parse(r).map_err(|e| (format!("probe.{key}[{i}]"), e))).collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type; `at` names the line and key.
    #[error("config file {}: {at}: {message}", .path.display())]
    Parse { path: PathBuf, at: String, message: String },
    /// A well-typed value that cannot work (`key` is `section.key`).
    #[error("config file {}: `{key}` {reason}", .path.display())]
    Invalid { path: PathBuf, key: String, reason: String },
    /// Options that do not go together once file and command line are merged.
    #[error("`{key}` {reason}")]
    Conflict { key: &'static str, reason: &'static str },
}

/// Smallest memory budget (`max-memory-mb`): the default flow table's entries take a few MiB.
pub const MIN_MEMORY_MB: usize = 16;

/// Read, parse and validate the file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    let cfg = parse(&text, path)?;
    cfg.validate(path)?;
    Ok(cfg)
}

/// Parse `text` (read from `path`, named in errors) without validating it.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        at: e.span().map(|s| locate(text, s.start)).unwrap_or_else(|| "?".into()),
        message: e.message().trim().to_string(),
    })
}

/// "line N, key `section.key`" for a byte offset into the file (the key is the one on that
/// line, or the table header it is).
fn locate(text: &str, offset: usize) -> String {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line_no = before.matches('\n').count() + 1;
    let mut lines = text.lines().map(str::trim);
    let section = lines.by_ref().take(line_no - 1).filter(|l| l.starts_with('[')).last().map(header);
    let line = lines.next().unwrap_or("");
    let key = if line.starts_with('[') {
        Some(header(line))
    } else {
        line.split_once('=').map(|(k, _)| match section {
            Some(s) => format!("{s}.{}", k.trim()),
            None => k.trim().to_string(),
        })
    };
    match key {
        Some(k) => format!("line {line_no}, key `{k}`"),
        None => format!("line {line_no}"),
    }
}

fn header(line: &str) -> String {
    line.trim_start_matches('[').split(']').next().unwrap_or("").trim().to_string()
}

impl Config {
    /// Reject values that cannot work, naming the key.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Invalid { path: path.to_path_buf(), key: key.into(), reason: reason.into() })
        };
        if self.pipeline.max_flows == Some(0) {
            return bad("pipeline.max-flows", "must be at least 1");
        }
        if self.pipeline.idle_timeout == Some(0) {
            return bad("pipeline.idle-timeout", "must be at least 1 (seconds)");
        }
        if self.pipeline.max_memory_mb.is_some_and(|m| m < MIN_MEMORY_MB) {
            return bad("pipeline.max-memory-mb", &format!("must be at least {MIN_MEMORY_MB} (MiB)"));
        }
        if self.pipeline.candidate_port.iter().flatten().any(|&p| p == 0) {
            return bad("pipeline.candidate-port", "has port 0");
        }
        let live = &self.live;
        if live.xdp_mode.is_some() && live.xdp != Some(true) {
            return bad("live.xdp-mode", "needs `xdp = true` in [live] (TC, the default, has no mode)");
        }
        if live.iface.iter().flatten().any(|i| i.is_empty()) {
            return bad("live.iface", "has an empty interface name");
        }
        if live.candidate_port.iter().flatten().any(|&p| p == 0) {
            return bad("live.candidate-port", "has port 0");
        }
        if self.alerts.alert_queue == Some(0) {
            return bad("alerts.alert-queue", "must be at least 1");
        }
        if self.alerts.alert_resend_secs == Some(0) {
            return bad("alerts.alert-resend-secs", "must be at least 1 (seconds)");
        }
        if live.duration == Some(0) {
            return bad("live.duration", "must be at least 1 (seconds); leave it out to run until SIGINT / SIGTERM");
        }
        let pr = &self.probe;
        for (key, list) in [("probe-allow", &pr.probe_allow), ("probe-deny", &pr.probe_deny)] {
            if let Err((key, why)) = probe_rules(key, list) {
                return bad(&key, &why);
            }
        }
        if pr.probe == Some(true) && pr.probe_allow.as_ref().is_none_or(|l| l.is_empty()) {
            return bad(
                "probe.probe",
                "is true but `probe-allow` names no network: the prober contacts only allowlisted servers",
            );
        }
        if pr.probe_rate.is_some_and(|r| r == 0 || r > MAX_PROBE_RATE) {
            return bad("probe.probe-rate", &format!("must be 1 to {MAX_PROBE_RATE} (connections per second)"));
        }
        if pr.probe_concurrency.is_some_and(|c| c == 0 || c > MAX_PROBE_CONCURRENCY) {
            return bad("probe.probe-concurrency", &format!("must be 1 to {MAX_PROBE_CONCURRENCY}"));
        }
        if pr.probe_timeout == Some(0) {
            return bad("probe.probe-timeout", "must be at least 1 (seconds)");
        }
        if pr.probe_interval == Some(0) {
            return bad("probe.probe-interval", "must be at least 1 (seconds)");
        }
        if let Some(id) = self.severity.keys().find(|id| !FINDING_IDS.contains(&id.as_str())) {
            let why = format!("names unknown finding id `{id}`; known ids: {}", FINDING_IDS.join(", "));
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                key: format!("severity.\"{id}\""),
                reason: why,
            });
        }
        self.exceptions()
            .map(drop)
            .and_then(|_| self.mtls_required().map(drop))
            .map_err(|(key, reason)| ConfigError::Invalid { path: path.to_path_buf(), key, reason })
    }

    /// The `[[mtls-required]]` entries compiled, or the first bad one as
    /// (`mtls-required[i].key`, why). Servers, ports and SNI read as in `[[exception]]`.
    pub fn mtls_required(&self) -> Result<Vec<MtlsRequired>, (String, String)> {
        let mut out = Vec::with_capacity(self.mtls_required.len());
        for (i, e) in self.mtls_required.iter().enumerate() {
            let bad = |key: &str, why: String| (format!("mtls-required[{i}].{key}"), why);
            let server = exceptions::parse_server(&e.server)
                .ok_or_else(|| bad("server", format!("`{}` is not an IP address or CIDR", e.server)))?;
            if e.port == Some(0) {
                return Err(bad("port", "is 0".into()));
            }
            let sni = match &e.sni {
                Some(s) => Some(SniPattern::parse(s).ok_or_else(|| {
                    bad("sni", format!("`{s}` is neither a server name nor a `*.example.org` pattern"))
                })?),
                None => None,
            };
            out.push(MtlsRequired { server, port: e.port, sni });
        }
        Ok(out)
    }

    /// The `[[exception]]` entries compiled, or the first bad one as (`exception[i].key`, why).
    pub fn exceptions(&self) -> Result<Vec<Exception>, (String, String)> {
        let mut out = Vec::with_capacity(self.exception.len());
        for (i, e) in self.exception.iter().enumerate() {
            let bad = |key: &str, why: String| (format!("exception[{i}].{key}"), why);
            if !FINDING_IDS.contains(&e.finding.as_str()) {
                let why = format!("names unknown finding id `{}`; known ids: {}", e.finding, FINDING_IDS.join(", "));
                return Err(bad("finding", why));
            }
            let server = exceptions::parse_server(&e.server)
                .ok_or_else(|| bad("server", format!("`{}` is not an IP address or CIDR", e.server)))?;
            if e.port == Some(0) {
                return Err(bad("port", "is 0".into()));
            }
            let sni = match &e.sni {
                Some(s) => Some(SniPattern::parse(s).ok_or_else(|| {
                    bad("sni", format!("`{s}` is neither a server name nor a `*.example.org` pattern"))
                })?),
                None => None,
            };
            if e.reason.trim().is_empty() {
                return Err(bad("reason", "is empty: say why the risk is accepted".into()));
            }
            let expires = exceptions::parse_date(&e.expires)
                .ok_or_else(|| bad("expires", format!("`{}` is not a date YYYY-MM-DD", e.expires)))?;
            let reason = e.reason.trim().to_string();
            out.push(Exception { finding: e.finding.clone(), server, port: e.port, sni, reason, expires });
        }
        Ok(out)
    }

    /// Fill every option of `cli` that was not given on the command line from the file.
    pub fn apply(&self, cli: &mut Cli, matches: &ArgMatches) {
        match &mut cli.cmd {
            Command::Replay(a) => {
                if let Some(m) = matches.subcommand_matches("replay") {
                    self.apply_replay(a, m);
                }
            }
            Command::Live(a) => {
                if let Some(m) = matches.subcommand_matches("live") {
                    self.apply_live(a, m);
                }
            }
            Command::Audit(_) | Command::Report(_) | Command::Completions { .. } | Command::Man { .. } => {}
        }
    }

    fn apply_replay(&self, a: &mut ReplayArgs, m: &ArgMatches) {
        take(m, "format", &mut a.format, self.output.format.map(Some));
        take(m, "fail_on", &mut a.fail_on, self.output.fail_on.map(Some));
        take(m, "no_legacy_fields", &mut a.events.no_legacy_fields, self.output.legacy_fields.map(|on| !on));
        take(m, "report", &mut a.report, self.report.report.map(Some));
        take(m, "report_out", &mut a.report_out, self.report.report_out.clone().map(Some));
        take(m, "metrics_out", &mut a.metrics_out, self.metrics.metrics_out.clone().map(Some));
        self.apply_pipeline(&mut a.pipeline, m);
        self.apply_audit(&mut a.audit, m);
        self.apply_listen(&mut a.listen, m);
        self.apply_alerts(&mut a.alerts, m);
        self.apply_probe(&mut a.probe, m);
    }

    fn apply_live(&self, a: &mut LiveArgs, m: &ArgMatches) {
        let l = &self.live;
        take(m, "format", &mut a.format, self.output.format);
        take(m, "no_legacy_fields", &mut a.events.no_legacy_fields, self.output.legacy_fields.map(|on| !on));
        take(m, "ifaces", &mut a.ifaces, l.iface.clone());
        take(m, "xdp", &mut a.xdp, l.xdp);
        take(m, "xdp_mode", &mut a.xdp_mode, l.xdp_mode);
        take(m, "duration", &mut a.duration, l.duration.map(Some));
        take(m, "stats", &mut a.stats, l.stats);
        take(m, "cgroup_root", &mut a.cgroup_root, l.cgroup_root.clone().map(Some));
        self.apply_pipeline(&mut a.pipeline, m);
        self.apply_audit(&mut a.audit, m);
        self.apply_listen(&mut a.listen, m);
        self.apply_alerts(&mut a.alerts, m);
        self.apply_probe(&mut a.probe, m);
    }

    fn apply_listen(&self, l: &mut ListenArgs, m: &ArgMatches) {
        let f = &self.metrics;
        take(m, "listen", &mut l.listen, f.listen.map(Some));
        take(m, "listen_tls_cert", &mut l.listen_tls_cert, f.listen_tls_cert.clone().map(Some));
        take(m, "listen_tls_key", &mut l.listen_tls_key, f.listen_tls_key.clone().map(Some));
        take(m, "listen_auth_file", &mut l.listen_auth_file, f.listen_auth_file.clone().map(Some));
    }

    fn apply_alerts(&self, a: &mut AlertArgs, m: &ArgMatches) {
        let f = &self.alerts;
        take(m, "alertmanager", &mut a.alertmanager, f.alertmanager.clone().map(Some));
        take(m, "alert_min_severity", &mut a.alert_min_severity, f.alert_min_severity);
        take(m, "alert_queue", &mut a.alert_queue, f.alert_queue);
        take(m, "alert_resolve_secs", &mut a.alert_resolve_secs, f.alert_resolve_secs);
        take(m, "alert_resend_secs", &mut a.alert_resend_secs, f.alert_resend_secs);
    }

    fn apply_pipeline(&self, p: &mut PipelineArgs, m: &ArgMatches) {
        take(m, "max_flows", &mut p.max_flows, self.pipeline.max_flows);
        take(m, "idle_timeout", &mut p.idle_timeout, self.pipeline.idle_timeout);
        take(m, "max_memory_mb", &mut p.max_memory_mb, self.pipeline.max_memory_mb);
        take(m, "ca_bundle", &mut p.ca_bundle, self.pipeline.ca_bundle.clone().map(Some));
        let ports = self.pipeline.candidate_port.clone().or_else(|| self.live.candidate_port.clone());
        take(m, "candidate_ports", &mut p.candidate_ports, ports);
        take(m, "profile", &mut p.profile, self.profile);
        // `load` (validate) has already refused a file with a bad entry.
        p.exceptions = self.exceptions().unwrap_or_default();
        p.mtls_required = self.mtls_required().unwrap_or_default();
        p.severity_overrides = self.severity.iter().map(|(id, s)| (id.clone(), *s)).collect();
    }

    fn apply_probe(&self, p: &mut ProbeArgs, m: &ArgMatches) {
        let f = &self.probe;
        take(m, "probe", &mut p.probe, f.probe);
        // `validate` has already refused a file with a rule that does not parse.
        take(
            m,
            "probe_allow",
            &mut p.probe_allow,
            probe_rules("probe-allow", &f.probe_allow).ok().filter(|_| f.probe_allow.is_some()),
        );
        take(
            m,
            "probe_deny",
            &mut p.probe_deny,
            probe_rules("probe-deny", &f.probe_deny).ok().filter(|_| f.probe_deny.is_some()),
        );
        take(m, "probe_interval", &mut p.probe_interval, f.probe_interval);
        take(m, "probe_rate", &mut p.probe_rate, f.probe_rate);
        take(m, "probe_concurrency", &mut p.probe_concurrency, f.probe_concurrency);
        take(m, "probe_timeout", &mut p.probe_timeout, f.probe_timeout);
        take(m, "probe_all", &mut p.probe_all, f.probe_all);
        take(m, "probe_versions", &mut p.probe_versions, f.probe_versions);
    }

    fn apply_audit(&self, a: &mut AuditArgs, m: &ArgMatches) {
        take(m, "audit_log", &mut a.audit_log, self.audit.audit_log.clone().map(Some));
        take(m, "audit_fsync_secs", &mut a.audit_fsync_secs, self.audit.audit_fsync_secs);
        take(m, "audit_rotate_mb", &mut a.audit_rotate_mb, self.audit.audit_rotate_mb.map(Some));
        take(m, "audit_rotate_daily", &mut a.audit_rotate_daily, self.audit.audit_rotate_daily);
        take(m, "audit_sign_key", &mut a.audit_sign_key, self.audit.audit_sign_key.clone().map(Some));
        take(m, "audit_checkpoint_mins", &mut a.audit_checkpoint_mins, self.audit.audit_checkpoint_mins);
    }
}

/// Whether the option with clap id `id` was given on the command line (not defaulted).
fn on_cli(m: &ArgMatches, id: &str) -> bool {
    m.value_source(id) == Some(ValueSource::CommandLine)
}

/// The file's value, unless the command line gave one.
fn take<T>(m: &ArgMatches, id: &str, slot: &mut T, file: Option<T>) {
    if let Some(v) = file {
        if !on_cli(m, id) {
            *slot = v;
        }
    }
}

/// The command line merged over `file`, then checked as a whole (what clap's `requires` and
/// `required` did before a file could supply the other half).
pub fn merge(file: &Config, mut cli: Cli, matches: &ArgMatches) -> Result<Cli, ConfigError> {
    file.apply(&mut cli, matches);
    let conflict = |key, reason| Err(ConfigError::Conflict { key, reason });
    let (pipeline, audit, listen, probe, sub) = match (&cli.cmd, matches.subcommand()) {
        (Command::Replay(a), Some((_, m))) => {
            if a.report_out.is_some() && a.report.is_none() {
                return conflict("report-out", "needs a report format (--report, or `report` in [report])");
            }
            (&a.pipeline, &a.audit, &a.listen, &a.probe, m)
        }
        (Command::Live(a), Some((_, m))) => {
            if a.ifaces.is_empty() {
                return conflict("iface", "is required: give --iface IF, or `iface = [\"eth0\"]` in [live]");
            }
            if !a.xdp && on_cli(m, "xdp_mode") {
                return conflict("xdp-mode", "needs XDP (--xdp, or `xdp = true` in [live])");
            }
            (&a.pipeline, &a.audit, &a.listen, &a.probe, m)
        }
        _ => return Ok(cli),
    };
    if listen.listen.is_none() {
        if listen.listen_tls_cert.is_some() || listen.listen_tls_key.is_some() {
            return conflict("listen-tls-cert", "needs an address to serve on (--listen, or `listen` in [metrics])");
        }
        if listen.listen_auth_file.is_some() {
            return conflict("listen-auth-file", "needs an address to serve on (--listen, or `listen` in [metrics])");
        }
    }
    if listen.listen_tls_cert.is_some() != listen.listen_tls_key.is_some() {
        return conflict("listen-tls-cert", "and `listen-tls-key` go together: give both or neither");
    }
    if pipeline.max_flows == 0 {
        return conflict("max-flows", "must be at least 1");
    }
    if pipeline.idle_timeout == 0 {
        return conflict("idle-timeout", "must be at least 1 (seconds)");
    }
    if pipeline.max_memory_mb < MIN_MEMORY_MB {
        const _: () = assert!(MIN_MEMORY_MB == 16, "the message below names it");
        return conflict("max-memory-mb", "must be at least 16 (MiB): the flow table alone needs a few");
    }
    if probe.probe && probe.probe_allow.is_empty() {
        return conflict(
            "probe-allow",
            "is required with --probe: name the servers the prober may contact, e.g. --probe-allow 10.0.0.0/8:443 \
             (the prober never contacts anything outside its allowlist)",
        );
    }
    let probe_flags =
        ["probe_allow", "probe_deny", "probe_interval", "probe_rate", "probe_concurrency", "probe_timeout"];
    if !probe.probe
        && (probe_flags.iter().any(|f| on_cli(sub, f)) || on_cli(sub, "probe_all") || on_cli(sub, "probe_versions"))
    {
        return conflict("probe", "is off: the --probe-* options need --probe (or `probe = true` in [probe])");
    }
    if probe.probe_rate == 0 || probe.probe_rate > MAX_PROBE_RATE {
        const _: () = assert!(MAX_PROBE_RATE == 50, "the message below names it");
        return conflict("probe-rate", "must be 1 to 50 (connections per second)");
    }
    if probe.probe_concurrency == 0 || probe.probe_concurrency > MAX_PROBE_CONCURRENCY {
        const _: () = assert!(MAX_PROBE_CONCURRENCY == 64, "the message below names it");
        return conflict("probe-concurrency", "must be 1 to 64");
    }
    if probe.probe_timeout == 0 || probe.probe_interval == 0 {
        return conflict("probe-timeout", "and `probe-interval` must be at least 1 (seconds)");
    }
    // A file may tune the interval for logs turned on per run; the flag alone is a mistake.
    if audit.audit_log.is_none() && on_cli(sub, "audit_fsync_secs") {
        return conflict("audit-fsync-secs", "needs an audit log (--audit-log, or `audit-log` in [audit])");
    }
    for (key, id) in [
        ("audit-rotate-mb", "audit_rotate_mb"),
        ("audit-rotate-daily", "audit_rotate_daily"),
        ("audit-sign-key", "audit_sign_key"),
        ("audit-checkpoint-mins", "audit_checkpoint_mins"),
    ] {
        if audit.audit_log.is_none() && on_cli(sub, id) {
            return conflict(key, "needs an audit log (--audit-log, or `audit-log` in [audit])");
        }
    }
    if audit.audit_sign_key.is_none() && on_cli(sub, "audit_checkpoint_mins") {
        return conflict(
            "audit-checkpoint-mins",
            "needs a signing key (--audit-sign-key, or `audit-sign-key` in [audit])",
        );
    }
    if audit.audit_rotate_mb == Some(0) {
        return conflict("audit-rotate-mb", "must be at least 1 (MiB)");
    }
    Ok(cli)
}

/// The command line merged over the file named by `--config` (if any): what `main` runs.
pub fn resolve(cli: Cli, matches: &ArgMatches) -> Result<Cli, ConfigError> {
    let file = match &cli.config {
        Some(p) => load(p)?,
        None => Config::default(),
    };
    merge(&file, cli, matches)
}

#[cfg(test)]
mod tests;
