//! Command line: `tlsmon live`, `tlsmon replay`, `tlsmon audit verify`, `tlsmon report`, with help text that teaches. Parsing only; no work here.
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::policy::Severity;

#[derive(Parser, Debug)]
#[command(
    name = "tlsmon",
    version,
    about = "Passive TLS monitor proving HIPAA transmission security (45 CFR 164.312(e)) from the wire",
    long_about = "tlsmon reads TLS handshakes off the wire (live via eBPF, or from pcap files) and flags \
legacy versions, weak cipher suites, missing forward secrecy, certificate problems and insecure \
renegotiation or compression. It never decrypts, blocks or stores payloads."
)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (e.g. "info", "tlsmon=debug"); also RUST_LOG.
    #[arg(long, global = true, default_value = "warn")]
    pub log: String,
    /// Read options from this TOML file (keys = the long flags without `--`; see
    /// tlsmon.example.toml). Flags given on the command line override the file. Exceptions
    /// (accepted risks, `[[exception]]` entries) come from this file only: there is no flag.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Replay pcap/pcapng captures through the same pipeline as live capture and judge every
    /// TLS handshake in them.
    ///
    /// Examples:
    ///   tlsmon replay capture.pcap                   readable summary with a verdict
    ///   tlsmon replay --format json a.pcap b.pcapng  one JSON event per handshake
    ///   tcpdump -w - -i eth0 port 443 | tlsmon replay -
    ///   tlsmon replay --fail-on high capture.pcap    exit 1 if any finding is high or worse
    ///   tlsmon replay --report markdown a.pcap > posture.md   per-server report with fixes
    ///   tlsmon replay --report html --report-out incident.html a.pcap   the same, as one HTML file
    #[command(verbatim_doc_comment)]
    Replay(ReplayArgs),
    /// Capture live with eBPF on network interfaces and judge every TLS handshake as it
    /// happens. Needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON.
    ///
    /// The kernel program copies only the first bytes of each flow (handshakes, candidate
    /// plaintext protocols) into a ring buffer; everything else passes untouched. Stop with
    /// Ctrl-C / SIGTERM or --duration: the programs are detached, open flows are judged, and
    /// their events are printed before exit.
    ///
    /// Examples:
    ///   tlsmon live --iface eth0                       JSON events on stdout, TC ingress+egress
    ///   tlsmon live --iface eth0 --iface eth1 --stats  two interfaces, counters at exit
    ///   tlsmon live --iface eth0 --xdp --xdp-mode native   XDP in the driver (ingress only)
    ///   tlsmon live --iface eth0 --duration 60 --format text   one minute, then a summary
    ///   tlsmon live --iface eth0 | jq 'select(.findings | length > 0)'
    #[command(verbatim_doc_comment)]
    Live(LiveArgs),
    /// Work with the tamper-evident audit log written by `--audit-log FILE`.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write a period report from audit logs, for an auditor: one self-contained HTML file
    /// (or Markdown, or JSON) with a verification stamp per agent, the posture per UTC day,
    /// the servers worst first with the fix to apply and the HIPAA reference, plaintext flows
    /// by protocol (counts only), certificates by expiry, accepted risks, and what could not
    /// be seen.
    ///
    /// Give one log, a rolled series (`audit.jsonl*`), or the logs of many agents collected
    /// in one directory per agent (`/srv/tlsmon/*/audit.jsonl*`): files are grouped by
    /// directory and log name, each group is verified as one hash chain, and the agent is
    /// named after its directory (the log lines carry no host name). Lines that are not
    /// events (e.g. signed checkpoints) are skipped and counted. The HTML has no script and
    /// fetches nothing; it prints to A4 with one section per page.
    ///
    /// Exits 0 when every chain is intact, 1 when one is broken (the report is still written
    /// and names the first bad file and line), 2 when a file cannot be read.
    ///
    /// Examples:
    ///   tlsmon report --out posture.html /var/lib/tlsmon/audit.jsonl*
    ///   tlsmon report --key audit.key.pub --out signed.html audit.jsonl*   checks the signatures
    ///   tlsmon report --since 2026-11-01 --until 2026-12-01 --out november.html audit.jsonl*
    ///   tlsmon report --format markdown /srv/tlsmon/*/audit.jsonl* > fleet.md
    ///   tlsmon report --format json audit.jsonl | jq '.days[] | {date, pfs_share}'
    #[command(verbatim_doc_comment)]
    Report(PeriodArgs),
    /// Print a shell completion script on stdout.
    ///
    /// Examples:
    ///   tlsmon completions bash > /etc/bash_completion.d/tlsmon
    ///   tlsmon completions zsh > "${fpath[1]}/_tlsmon"
    ///   tlsmon completions fish > ~/.config/fish/completions/tlsmon.fish
    #[command(verbatim_doc_comment)]
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages, generated from these very definitions: tlsmon.8 and one page per
    /// subcommand (tlsmon-live.8, tlsmon-replay.8, tlsmon-audit-verify.8, …).
    ///
    /// Example:
    ///   tlsmon man --out /usr/local/share/man/man8
    #[command(verbatim_doc_comment)]
    Man {
        /// Directory to write the pages into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// `tlsmon audit …` subcommands.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check an audit log's hash chain from the first line to the last, and with --key the
    /// signatures of its checkpoints.
    ///
    /// Every line carries `seq` (1, 2, 3 …), `prev` (the hash of the line before) and `hash`
    /// (SHA-256 over `prev` and the line's own bytes). Verify recomputes each hash and follows
    /// the chain, so it catches a changed byte (hash mismatch), a deleted or reordered line (seq
    /// gap, prev mismatch), a truncated last line (no final newline, not JSON), and a line
    /// inserted with a recomputed hash (its prev does not chain).
    ///
    /// A chain alone cannot tell a file rewritten with every hash recomputed, or cut short
    /// after a whole line, from the original. A log written with --audit-sign-key also holds
    /// checkpoint lines: the agent's Ed25519 signature over the head of the chain (seq, hash,
    /// time, host), every --audit-checkpoint-mins, as the last line of each rolled file and as
    /// the last line at a clean shutdown (reason "exit"). With --key KEY.pub verify checks each
    /// of them: a checkpoint that does not sign the hash of the line before it, or whose
    /// signature fails, means the lines before it were rewritten; one signed by a key not
    /// given is named with its key id. It then says which checkpoint verified last, and which
    /// lines at the end no signature covers.
    ///
    /// Output: the chain verdict ("OK: N lines, chain intact (…)" or "FAILED: line N …"), then
    /// what the signatures say ("signatures: …", "sealed: …" or "WARNING: …").
    ///
    /// Exit status:
    ///   0  chain intact; with --key also every checkpoint valid, every line covered by a
    ///      signature and the log closed by its exit checkpoint ("sealed")
    ///   1  tampering: a bad line, or a checkpoint that does not match the chain or whose
    ///      signature fails or is by another key (the line is named)
    ///   2  a file cannot be read, or a key file cannot be used
    ///   3  (--key only) WARNING: chain and signatures valid, but the log is not sealed: lines
    ///      after the last checkpoint (or all lines: no checkpoint) are not covered by a
    ///      signature, or the last checkpoint is not an exit one. Normal for the live file of
    ///      a running agent, and after a crash or kill; otherwise the tail was cut off or lines
    ///      were appended. Trust the lines up to the last verified checkpoint, and compare its
    ///      time with when the agent stopped.
    /// Without --key, signatures are not checked (said so when the log has checkpoints) and 0
    /// means the chain is intact.
    ///
    /// Several files (a log rolled over by --audit-rotate-mb / --audit-rotate-daily, e.g. a
    /// shell glob) are checked as one chain, put in order by the seq of their first lines:
    /// the first must start the chain, and each next file's first line must chain to the last
    /// line of the file before it, so a removed or edited file is named with its line.
    ///
    /// Examples:
    ///   tlsmon audit verify /var/lib/tlsmon/audit.jsonl
    ///   tlsmon audit verify /var/lib/tlsmon/audit.jsonl*    the live file and its rolled ones
    ///   tlsmon audit verify --key audit.key.pub audit.jsonl*   signatures too (from the auditor's copy of the .pub)
    ///   tlsmon audit verify --key old.pub --key new.pub audit.jsonl*   a log signed before and after a key change
    #[command(verbatim_doc_comment)]
    Verify {
        /// Public key to check checkpoint signatures with: the KEY.pub written next to the
        /// agent's --audit-sign-key (PEM, or 64 hex digits). Repeat for a log signed by
        /// several keys (a key change). Without it, signatures are not checked.
        #[arg(long = "key", value_name = "PUB")]
        keys: Vec<PathBuf>,
        /// The audit log to check, or every file of a rolled series.
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Create the audit signing key (or read an existing one) and print its key id and where
    /// its public key is.
    ///
    /// The agent creates its --audit-sign-key on first use too; creating it beforehand lets
    /// you hand KEY.pub to the auditor before the first event is logged. The private key is
    /// PKCS#8 PEM, written with mode 0600 (keep it so: a key open to group or others is
    /// refused); the public key is written to KEY.pub (PEM). An existing key is not replaced.
    ///
    /// Examples:
    ///   tlsmon audit key --out /var/lib/tlsmon/audit.key     then copy audit.key.pub to the auditor
    ///   openssl pkey -pubin -in /var/lib/tlsmon/audit.key.pub -noout -text
    #[command(verbatim_doc_comment)]
    Key {
        /// The private key file to create (its public key goes to FILE.pub).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

/// `tlsmon report`: the period report over audit logs.
#[derive(clap::Args, Debug)]
pub struct PeriodArgs {
    /// Audit logs: one file, a rolled series, or several agents' logs (one directory each).
    #[arg(value_name = "AUDIT_LOG", required = true)]
    pub files: Vec<PathBuf>,
    /// Leave out events before this time (event time, UTC): 2026-11-01 or
    /// 2026-11-01T08:00:00Z.
    #[arg(long, value_name = "TIME", value_parser = parse_report_time)]
    pub since: Option<i128>,
    /// Leave out events from this time on (exclusive; a day means its midnight UTC).
    #[arg(long, value_name = "TIME", value_parser = parse_report_time)]
    pub until: Option<i128>,
    /// "html" (one self-contained file), "markdown" or "json" (the same figures, stable names).
    #[arg(long, value_enum, default_value = "html", value_name = "FORMAT")]
    pub format: PeriodFormat,
    /// Write the report to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Most servers inventoried; events of further servers are counted, not kept.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_servers: usize,
    /// Check the signed checkpoints of every log with this Ed25519 public key (the KEY.pub
    /// written beside `--audit-sign-key`; repeat for a key change): the stamp then says whether
    /// the signatures are valid and the log sealed. Without it: "not checked".
    #[arg(long = "key", value_name = "PUB")]
    pub keys: Vec<PathBuf>,
}

/// Parse the RFC 3339 UTC time the events carry ("2026-11-30T08:00:00.123456Z"), or a day
/// ("2026-11-30", its midnight), to Unix nanoseconds.
pub fn parse_time(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes().all(|c| c.is_ascii_digit()).then(|| part.parse().ok())?
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(num(5..7)?).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(num(0..4)?).ok()?, month, u8::try_from(num(8..10)?).ok()?).ok()?;
    let (mut secs, mut frac_ns) = (0i64, 0i128);
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 20 || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (h, m, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if h > 23 || m > 59 || sec > 60 {
            return None;
        }
        secs = h * 3600 + m * 60 + sec;
        let rest = &s[19..];
        let rest = match rest.strip_prefix('.') {
            Some(f) => {
                let digits: String = f.chars().take_while(char::is_ascii_digit).collect();
                if digits.is_empty() || digits.len() > 9 {
                    return None;
                }
                frac_ns = format!("{digits:0<9}").parse().ok()?;
                &f[digits.len()..]
            }
            None => rest,
        };
        if !matches!(rest, "Z" | "z" | "+00:00") {
            return None;
        }
    }
    let midnight = date.midnight().assume_utc().unix_timestamp();
    Some(i128::from(midnight + secs) * 1_000_000_000 + frac_ns)
}

/// `--since` / `--until`: an RFC 3339 UTC time or a day, to Unix nanoseconds.
pub fn parse_report_time(s: &str) -> Result<i128, String> {
    parse_time(s).ok_or_else(|| format!("`{s}` is not a time: use 2026-11-01 or 2026-11-01T08:00:00Z (UTC)"))
}

/// How events are written: the same for live capture and replay.
#[derive(clap::Args, Debug, Default)]
pub struct EventArgs {
    /// Write events in the ECS schema only, without the pre-ECS field names they still carry
    /// in this release (type, timestamp, findings, quic, plaintext, ssh …, tls.client.ja4 …;
    /// README "Event schema" lists each with its ECS or tlsmon.* successor). The next release
    /// drops them for good. Also `legacy-fields = false` in the config file's [output].
    #[arg(long)]
    pub no_legacy_fields: bool,
}

/// The audit log: the same for live capture and replay.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    /// Also append every event, whatever --format says, to this hash-chained JSON-lines file
    /// (created if missing; an existing log is continued after its last line is checked). Check
    /// it with `tlsmon audit verify FILE`.
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Flush and fsync the audit log at least this often (also every 1000 lines and at exit);
    /// 0 syncs after every line.
    #[arg(long, value_name = "SECS", default_value_t = 1)]
    pub audit_fsync_secs: u64,
    /// Roll the audit log over before it grows past this many MiB: the file is renamed
    /// FILE.<seq of its first line, 10 digits> and a new FILE continues the chain (its first
    /// line's prev is the rolled file's last hash). Verify the series with
    /// `tlsmon audit verify FILE*`.
    #[arg(long, value_name = "MIB")]
    pub audit_rotate_mb: Option<u64>,
    /// Roll the audit log over at the first event of each new UTC day (as --audit-rotate-mb).
    #[arg(long)]
    pub audit_rotate_daily: bool,
    /// Sign checkpoints of the audit log with this Ed25519 key (PKCS#8 PEM or DER), so that a
    /// rewritten log or a cut tail can be told from the real one: `tlsmon audit verify --key
    /// KEY.pub`. Created on first use if missing (mode 0600, public key in KEY.pub: hand that
    /// to the auditor); a key readable or writable by group or others is refused. E.g.
    /// --audit-sign-key /var/lib/tlsmon/audit.key
    #[arg(long, value_name = "KEY")]
    pub audit_sign_key: Option<PathBuf>,
    /// With --audit-sign-key: sign a checkpoint at least this often while events come in (also
    /// before each roll-over and at exit); 0 signs only at roll-over and exit.
    #[arg(long, value_name = "MINS", default_value_t = 5)]
    pub audit_checkpoint_mins: u64,
}

#[derive(clap::Args, Debug)]
pub struct LiveArgs {
    /// Interface to capture on (repeat for several; see `ip link` for the names). Required,
    /// here or as `iface` in the config file's [live] section.
    #[arg(long = "iface", value_name = "IF")]
    pub ifaces: Vec<String>,
    /// Attach the XDP program instead of TC. XDP sees ingress only, so a host's own outgoing
    /// handshakes are missed; TC (the default) sees both directions.
    #[arg(long)]
    pub xdp: bool,
    /// XDP mode: "skb" (generic, works on every interface) or "native" (in the driver, faster,
    /// needs driver support).
    #[arg(long, value_enum, default_value_t = XdpModeArg::Skb)]
    pub xdp_mode: XdpModeArg,
    /// Output: "json" (one event per judged handshake, as `tlsmon replay --format json`),
    /// "text" (a summary at exit), "none" (nothing; use with --stats).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub events: EventArgs,
    /// Print the kernel counters (packets seen, records, ring-buffer drops, …), the record
    /// reader's and the pipeline's counters on stderr at exit.
    #[arg(long)]
    pub stats: bool,
    /// Stop after this many seconds (default: run until SIGINT / SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// The host's cgroup v2 root, where the socket hooks of process attribution attach (every
    /// process is below it) and whose tree names cgroups, containers, units and pods. Default:
    /// the cgroup2 mount of this mount namespace, else of the parent's (`ip netns exec`). In a
    /// container give the host's, mounted in: e.g. --cgroup-root /host/sys/fs/cgroup
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

/// The opt-in certificate prober: the same for live capture and replay.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Active certificate prober (off unless --probe)")]
pub struct ProbeArgs {
    /// Turn on the prober, the one active part of tlsmon. TLS 1.3 encrypts the server
    /// certificate, so for each server (IP, port, SNI) whose handshakes showed none, tlsmon
    /// connects once per --probe-interval, sends a TLS 1.2/1.3 ClientHello with the SNI the
    /// clients used, reads the certificate chain, sends no application data, and closes. The
    /// chain is judged like a passive one (`tls.cert.*`, in a `probe` event). Only servers
    /// inside --probe-allow are ever contacted; without an allow rule tlsmon refuses to start.
    #[arg(long)]
    pub probe: bool,
    /// Servers the prober may contact: CIDR[:PORTS] (repeat for several), e.g.
    /// `10.20.0.0/16:443,8443` or `[fd00::/64]:443`; no PORTS means every port. A server the
    /// pipeline sees outside every allow rule is never contacted.
    #[arg(long = "probe-allow", value_name = "CIDR[:PORTS]", value_parser = crate::probe::scope::Rule::parse)]
    pub probe_allow: Vec<crate::probe::scope::Rule>,
    /// Servers never to contact, even inside an allow rule (deny wins): CIDR[:PORTS], repeatable.
    #[arg(long = "probe-deny", value_name = "CIDR[:PORTS]", value_parser = crate::probe::scope::Rule::parse)]
    pub probe_deny: Vec<crate::probe::scope::Rule>,
    /// Probe each server again after this many seconds (wall clock) at the earliest.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    pub probe_interval: u64,
    /// Connections per second at most, over all servers (each try of --probe-versions counts).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub probe_rate: u32,
    /// Probes running at once at most.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub probe_concurrency: usize,
    /// Seconds the TCP connect may take, and then the TLS handshake.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    pub probe_timeout: u64,
    /// Also probe servers whose certificates were seen (TLS 1.2 and older), to confirm them.
    #[arg(long)]
    pub probe_all: bool,
    /// Also ask each probed server whether it still accepts SSL 3.0, TLS 1.0, TLS 1.1 or weak
    /// suites when a client offers only those (one short connection each, aborted after the
    /// ServerHello, within --probe-rate).
    #[arg(long)]
    pub probe_versions: bool,
}

impl Default for ProbeArgs {
    fn default() -> Self {
        ProbeArgs {
            probe: false,
            probe_allow: Vec::new(),
            probe_deny: Vec::new(),
            probe_interval: 86_400,
            probe_rate: 2,
            probe_concurrency: 4,
            probe_timeout: 5,
            probe_all: false,
            probe_versions: false,
        }
    }
}

/// The pipeline's bounds and trust anchors: the same for live capture and replay.
#[derive(clap::Args, Debug)]
pub struct PipelineArgs {
    /// Policy profile the handshakes are judged under: hipaa (TLS >= 1.2, AEAD suites with
    /// forward secrecy), nist-800-52r2, mozilla-modern, mozilla-intermediate or fips. Its name
    /// prefixes each finding's rule and heads the report.
    #[arg(long, value_enum, default_value = "hipaa", value_name = "NAME")]
    pub profile: crate::policy::Profile,
    /// Most flows tracked at once; the least recently seen are judged early when full.
    #[arg(long, default_value_t = 65_536)]
    pub max_flows: usize,
    /// Seconds without packets (packet time in replay) after which an unfinished flow is
    /// judged and forgotten.
    #[arg(long, default_value_t = 120)]
    pub idle_timeout: u64,
    /// Memory all tracked flows may hold, in MiB: their state, out-of-order segments, partial
    /// TLS records and clear bytes. When full, the least recently seen open flows are judged
    /// early with what they showed, and counted (summary, --stats, metrics, report).
    #[arg(long, value_name = "MIB", default_value_t = 128)]
    pub max_memory_mb: usize,
    /// PEM bundle of trusted CAs: chains that do not lead to one are `tls.cert.untrusted`.
    /// Without it chains are not judged for trust (self-signed leaves are still flagged).
    #[arg(long, value_name = "PEM")]
    pub ca_bundle: Option<PathBuf>,
    /// Accepted risks: only from the config file's `[[exception]]` entries (no flag).
    #[arg(skip)]
    pub exceptions: Vec<crate::policy::exceptions::Exception>,
    /// Servers that must require client certificates: only from the config file's
    /// `[[mtls-required]]` entries (no flag).
    #[arg(skip)]
    pub mtls_required: Vec<crate::policy::MtlsRequired>,
    /// Severity overrides: only from the config file's `[severity]` table (no flag).
    #[arg(skip)]
    pub severity_overrides: Vec<(String, Severity)>,
    /// Also follow flows on this port whatever their first bytes (repeat for several), e.g.
    /// an HL7 interface engine's MLLP port: live capture copies them, and replay and live alike
    /// inspect them for plaintext PHI. Built in: the STARTTLS ports (21, 25, 110, 143, 389,
    /// 587, SQL Server's 1433, 3306, 3389, 5432, XMPP's 5222 and 5269, IRC's 6667), SSH (22),
    /// HTTP (80, 8080), DICOM (104, 11112) and MLLP (2575); TLS is recognised on any port by its
    /// bytes, a SQL Server TDS PRELOGIN too.
    #[arg(long = "candidate-port", value_name = "PORT")]
    pub candidate_ports: Vec<u16>,
}

/// `--listen` and its companions.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListenArgs {
    /// Serve Prometheus metrics (/metrics), the posture inventory (/inventory) and a health check
    /// (/healthz) over HTTP; the flag alone listens on 127.0.0.1:9863.
    ///
    /// ADDR is IP:PORT (`0.0.0.0:9863` for every IPv4 interface), [IPv6]:PORT (`[::1]:9863`),
    /// or :PORT / PORT for 127.0.0.1:PORT. Write `--listen=ADDR` when a capture file follows,
    /// otherwise `--listen a.pcap` reads the file name as the address. Beyond loopback, add
    /// --listen-tls-cert/--listen-tls-key and --listen-auth-file; /healthz never asks for a
    /// password, so load balancers and Kubernetes probes work.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_LISTEN,
          value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Serve HTTPS (TLS 1.2/1.3 only) with this PEM certificate chain, server certificate first;
    /// goes with --listen-tls-key.
    #[arg(long, value_name = "PEM", requires = "listen", requires = "listen_tls_key")]
    pub listen_tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, PKCS#1 or SEC1) matching --listen-tls-cert.
    #[arg(long, value_name = "PEM", requires = "listen", requires = "listen_tls_cert")]
    pub listen_tls_key: Option<PathBuf>,
    /// Require HTTP basic auth on /metrics, /inventory and every path but /healthz. FILE holds
    /// lines `user:password` (`#` comments and blank lines allowed) and must be `chmod 600`.
    /// Refused without TLS unless ADDR is loopback, since the password would travel in clear.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub listen_auth_file: Option<PathBuf>,
}

/// Direct alerting to Alertmanager: the same for live capture and replay.
#[derive(clap::Args, Debug, Clone)]
pub struct AlertArgs {
    /// Also post findings as alerts to this Alertmanager (base URL, e.g.
    /// http://127.0.0.1:9093; alerts go to URL/api/v2/alerts). One alert per (server, finding),
    /// labelled alertname=TlsmonFinding, finding, severity, server, source=tlsmon; resent while
    /// the finding is seen, resolved when the server is judged without it or it is no longer
    /// seen. Posting never slows capture: a full queue or an unreachable Alertmanager drops
    /// alerts (counted), and active ones are re-posted at the next resend.
    #[arg(long, value_name = "URL")]
    pub alertmanager: Option<String>,
    /// Alert on findings of at least this severity (info findings such as tls.pq-hybrid are
    /// good news). Findings accepted by a config-file exception are never alerted.
    #[arg(long, value_enum, value_name = "SEVERITY", default_value = "medium")]
    pub alert_min_severity: Severity,
    /// Batches of alerts waiting for the poster at most; beyond, alerts are dropped (counted).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub alert_queue: usize,
    /// Resolve an alert when no handshake or flow raised it for this many seconds (wall clock).
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    pub alert_resolve_secs: u64,
    /// Re-post active alerts this often: Alertmanager forgets alerts that are not re-sent.
    /// Each carries endsAt = now + 4 × this, so a stopped agent's alerts expire by themselves.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub alert_resend_secs: u64,
}

impl Default for AlertArgs {
    fn default() -> Self {
        AlertArgs {
            alertmanager: None,
            alert_min_severity: Severity::Medium,
            alert_queue: 1024,
            alert_resolve_secs: 3600,
            alert_resend_secs: 60,
        }
    }
}

/// `--xdp-mode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XdpModeArg {
    Skb,
    Native,
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng, any supported link type); "-" reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output: "text" (summary), "json" (one event per line), "none" (only the exit code).
    /// Default: text on a terminal, json when piped; "none" when --report writes to stdout.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Write the per-server posture report (servers worst first, each finding with the fix to
    /// apply, a compliant / non-compliant verdict per server under the profile): "text",
    /// "json" (one document), "markdown", or "html" (the period report of `tlsmon report`,
    /// one self-contained file with charts per UTC day, for incident responders). On stdout, it is the whole output unless --format
    /// is also given (then it follows the events); with --report-out it goes to that file.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub report: Option<ReportFormat>,
    /// Write the --report to this file instead of stdout (events then follow --format as usual).
    #[arg(long, value_name = "FILE")]
    pub report_out: Option<PathBuf>,
    /// Exit with code 1 when any finding reaches this severity. Findings accepted by a
    /// config-file exception valid at the handshake's time do not count (expired ones do).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub audit: AuditArgs,
    #[command(flatten)]
    pub events: EventArgs,
    /// Print the pipeline's counters (packets, bytes, skips, reassembly) on stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Threads (default: the number of cores). With N > 1, one thread reads, decodes and
    /// writes; each flow goes, both ways, to one of the N − 1 others (a hash of its 5-tuple),
    /// each with its own pipeline and 1/(N − 1) of the flow, memory and clear-byte bounds.
    /// The events are the same
    /// bytes for any N: they come in the order their flows were judged — by the packet of
    /// the capture at which that happened (flows judged together by the idle sweep by first
    /// packet time, then addresses and ports), flows still open at the end last, oldest first.
    /// Only flows judged early because a per-worker bound filled may differ with N.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: Option<u16>,
    /// Read capture files instead of mapping them into memory. Mapping, the default for
    /// regular files, walks a file in place and hands payloads to the workers without copying
    /// them; but a file that shrinks while it is replayed (truncated by a log rotation) then
    /// stops tlsmon with SIGBUS (it says so on stderr). Use this for files another program may truncate meanwhile.
    /// Standard input is always read.
    #[arg(long)]
    pub no_mmap: bool,
    /// Write the final metrics in the Prometheus text format to this file (what /metrics would
    /// serve at the end: handshakes by version, cipher class, forward secrecy and PQ group,
    /// findings by id and severity, plaintext flows, drops …). With --listen they are also
    /// served during the replay and, after it, until SIGINT/SIGTERM.
    #[arg(long, value_name = "FILE")]
    pub metrics_out: Option<PathBuf>,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub alerts: AlertArgs,
    /// Show progress on stderr (default: on a terminal, for files over 64 MB).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never show progress.
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub probe: ProbeArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    Text,
    Json,
    None,
}

/// `--report` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportFormat {
    Text,
    Json,
    Markdown,
    Html,
}

/// `tlsmon report --format` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeriodFormat {
    Html,
    Markdown,
    Json,
}

/// Documented default port (`--listen` alone means 127.0.0.1:9863).
pub const DEFAULT_PORT: u16 = 9863;
/// What `--listen` alone means.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9863";
/// `--listen` values: IP:PORT, [v6]:PORT, :PORT or PORT (the last two on 127.0.0.1).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let port = s.strip_prefix(':').unwrap_or(s);
    if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
        return port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("`{s}`: port must be 0 to 65535"));
    }
    s.parse().map_err(|_| {
        format!(
            "`{s}` is not a listen address: use IP:PORT, [IPv6]:PORT, :PORT or PORT (no host names); \
             if it is a capture file, write --listen=ADDR or put --listen after it"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        listen: ListenArgs,
        files: Vec<String>,
    }

    fn lo(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen("9100"), Ok(lo(9100)));
        assert_eq!(parse_listen(":9100"), Ok(lo(9100)));
        assert_eq!(parse_listen("0.0.0.0:9863"), Ok("0.0.0.0:9863".parse().unwrap()));
        assert_eq!(parse_listen("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        assert_eq!(parse_listen(DEFAULT_LISTEN), Ok(lo(DEFAULT_PORT)));
        for bad in ["", ":", "70000", ":70000", "localhost:9100", "a.pcap", "::1:80", "1.2.3.4"] {
            assert!(parse_listen(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_listen("a.pcap").unwrap_err().contains("--listen=ADDR"));
    }

    #[test]
    fn listen_flag_forms() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("t").chain(args.iter().copied()));
        assert_eq!(parse(&[]).unwrap().listen.listen, None);
        assert_eq!(parse(&["--listen"]).unwrap().listen.listen, Some(lo(DEFAULT_PORT)));
        let c = parse(&["--listen=:9100", "a.pcap"]).unwrap();
        assert_eq!((c.listen.listen, c.files), (Some(lo(9100)), vec!["a.pcap".to_string()]));
        let c = parse(&["a.pcap", "--listen"]).unwrap();
        assert_eq!((c.listen.listen, c.files.len()), (Some(lo(DEFAULT_PORT)), 1));
        assert!(parse(&["--listen", "a.pcap"]).is_err());
        assert!(parse(&["--listen", "--listen-tls-cert", "c.pem"]).is_err(), "cert without key");
        assert!(parse(&["--listen-auth-file", "f"]).is_err(), "auth without --listen");
    }
}
