//! Command line: `tlsmon replay`, with help text that teaches. Parsing only; no work here.
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
    #[command(verbatim_doc_comment)]
    Replay(ReplayArgs),
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Capture files (pcap or pcapng, any supported link type); "-" reads standard input.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output: "text" (summary), "json" (one event per line), "none" (only the exit code).
    /// Default: text on a terminal, json when piped.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Exit with code 1 when any finding reaches this severity.
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Most flows tracked at once; the least recently seen are judged early when full.
    #[arg(long, default_value_t = 65_536)]
    pub max_flows: usize,
    /// Seconds of packet time after which an idle flow is judged and forgotten.
    #[arg(long, default_value_t = 120)]
    pub idle_timeout: u64,
    /// PEM bundle of trusted CAs: chains that do not lead to one are `tls.cert.untrusted`.
    /// Without it chains are not judged for trust (self-signed leaves are still flagged).
    #[arg(long, value_name = "PEM")]
    pub ca_bundle: Option<PathBuf>,
    /// Print the pipeline's counters (packets, bytes, skips, reassembly) on stderr at the end.
    #[arg(long)]
    pub stats: bool,
    /// Show progress on stderr (default: on a terminal, for files over 64 MB).
    #[arg(long, overrides_with = "no_progress")]
    pub progress: bool,
    /// Never show progress.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    None,
}
