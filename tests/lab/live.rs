//! `tlsmon live` in the lab's mon namespace: start it in one attach mode, wait for its
//! "attached" line, collect its JSON events, stop it with SIGINT; plus a one-line readable form
//! of an event for the demo and test failure messages.
//! Must never leave tlsmon running: dropping a `Live` kills it.
use std::{
    io::{BufRead as _, BufReader},
    path::Path,
    process::{Child, ExitStatus, Stdio},
    sync::mpsc::{self, Receiver, RecvTimeoutError},
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context as _, Result};
use serde_json::Value;

use super::{servers::server_on, stopping, wait_timeout, Lab, MON_CLIENT_IF, MON_SERVER_IF};

/// How tlsmon attaches in the lab.
///
/// TC is attached to ONE interface, mon's server-side veth, ingress and egress: egress sees
/// client→server, ingress server→client, each packet once. XDP sees ingress only, so it is
/// attached to both of mon's veths: client→server arrives on the client side, server→client on
/// the server side, again each packet once. `TcBoth` attaches TC to both veths, as one would on
/// a router: every forwarded packet is then seen twice (ingress on one veth, egress on the
/// other), which must not change the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Tc,
    TcBoth,
    XdpSkb,
    XdpNative,
}

impl Mode {
    /// The word tlsmon prints in its "attached" line.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Tc | Mode::TcBoth => "tc",
            Mode::XdpSkb => "xdp-skb",
            Mode::XdpNative => "xdp-native",
        }
    }

    fn args(self) -> Vec<&'static str> {
        match self {
            Mode::Tc => vec!["--iface", MON_SERVER_IF],
            Mode::TcBoth => vec!["--iface", MON_CLIENT_IF, "--iface", MON_SERVER_IF],
            Mode::XdpSkb => vec!["--xdp", "--xdp-mode", "skb", "--iface", MON_CLIENT_IF, "--iface", MON_SERVER_IF],
            Mode::XdpNative => {
                vec!["--xdp", "--xdp-mode", "native", "--iface", MON_CLIENT_IF, "--iface", MON_SERVER_IF]
            }
        }
    }
}

/// Most time tlsmon may take to load, pass the verifier and attach.
const ATTACH_LIMIT: Duration = Duration::from_secs(60);
/// Most time tlsmon may take to exit after SIGINT.
const STOP_LIMIT: Duration = Duration::from_secs(30);

/// A running `tlsmon live`.
pub struct Live {
    child: Child,
    pub mode: Mode,
    /// The "tlsmon: live: attached …" line.
    pub attached: String,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    readers: Vec<JoinHandle<()>>,
    /// Every stderr line so far (for failure messages).
    pub stderr_lines: Vec<String>,
}

/// What `tlsmon live` printed after it was stopped.
pub struct Stopped {
    pub status: ExitStatus,
    /// JSON events not yet taken with [`Live::next_event`].
    pub events: Vec<Value>,
    pub stderr: Vec<String>,
}

impl Lab {
    /// Starts `BIN live --format json` plus `extra` in the mon namespace and waits for its
    /// "attached" line.
    pub fn start_live(&self, bin: &Path, mode: Mode, extra: &[&str]) -> Result<Live> {
        let mut args = vec!["live", "--format", "json"];
        args.extend(mode.args());
        args.extend(extra);
        let program = bin.to_str().context("tlsmon path is not UTF-8")?;
        let mut child = self
            .cmd(&self.mon_ns, program, &args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {program} live in {}", self.mon_ns))?;
        let (out_tx, stdout) = mpsc::channel();
        let (err_tx, stderr) = mpsc::channel();
        let out = child.stdout.take().context("tlsmon stdout")?;
        let err = child.stderr.take().context("tlsmon stderr")?;
        let readers = vec![
            thread::spawn(move || {
                BufReader::new(out).lines().map_while(Result::ok).try_for_each(|l| out_tx.send(l)).unwrap_or(())
            }),
            thread::spawn(move || {
                BufReader::new(err).lines().map_while(Result::ok).try_for_each(|l| err_tx.send(l)).unwrap_or(())
            }),
        ];
        let mut live = Live { child, mode, attached: String::new(), stdout, stderr, readers, stderr_lines: Vec::new() };
        live.wait_attached().with_context(|| format!("tlsmon live ({})", mode.label()))?;
        Ok(live)
    }
}

impl Live {
    fn wait_attached(&mut self) -> Result<()> {
        let deadline = Instant::now() + ATTACH_LIMIT;
        while Instant::now() < deadline && !stopping() {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let attached = line.starts_with("tlsmon: live: attached");
                    self.stderr_lines.push(line.clone());
                    if attached {
                        self.attached = line;
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = wait_timeout(&mut self.child, Duration::from_secs(5))?;
                    bail!(
                        "exited before attaching ({}); stderr:\n{}",
                        status.map_or("still running".into(), |s| s.to_string()),
                        self.stderr_lines.join("\n")
                    );
                }
            }
        }
        bail!("no \"attached\" line within {ATTACH_LIMIT:?}; stderr so far:\n{}", self.stderr_lines.join("\n"))
    }

    /// The next JSON event, waiting at most `limit`; None when none came (or tlsmon exited).
    /// A stdout line that is not JSON is an error.
    pub fn next_event(&mut self, limit: Duration) -> Result<Option<Value>> {
        match self.stdout.recv_timeout(limit) {
            Ok(line) => {
                serde_json::from_str(&line).map(Some).with_context(|| format!("stdout line is not JSON: {line}"))
            }
            Err(_) => Ok(None),
        }
    }

    /// Stderr lines that arrived since the last call (also kept in `stderr_lines`).
    pub fn drain_stderr(&mut self) -> Vec<String> {
        let new: Vec<String> = self.stderr.try_iter().collect();
        self.stderr_lines.extend(new.iter().cloned());
        new
    }

    /// Sends SIGINT, waits (bounded) for tlsmon to exit, and returns what it printed last.
    pub fn stop(mut self) -> Result<Stopped> {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: plain syscall on our own child (`ip netns exec` execs tlsmon in place).
        unsafe { libc::kill(pid, libc::SIGINT) };
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if start.elapsed() >= STOP_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.drain_stderr();
                bail!(
                    "tlsmon live did not exit within {STOP_LIMIT:?} of SIGINT (killed); stderr:\n{}",
                    self.stderr_lines.join("\n")
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            r.join().map_err(|_| anyhow!("tlsmon output reader panicked"))?;
        }
        let events = self
            .stdout
            .try_iter()
            .map(|l| serde_json::from_str(&l).with_context(|| format!("stdout line is not JSON: {l}")))
            .collect::<Result<Vec<Value>>>()?;
        self.drain_stderr();
        Ok(Stopped { status, events, stderr: std::mem::take(&mut self.stderr_lines) })
    }
}

impl Stopped {
    /// Losses on the way, as problems: ring-buffer overflow, failed copies, a full flow map or
    /// flows evicted from it, nothing seen or recorded, or a record the reader could not decode.
    pub fn loss_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, want_zero) in [
            ("packets", false),
            ("records", false),
            ("ringbuf_full", true),
            ("load_failed", true),
            ("flow_map_full", true),
            ("flows_evicted", true),
        ] {
            match self.counter(name) {
                Some(v) if (v == 0) == want_zero => {}
                v => problems
                    .push(format!("kernel counter {name} = {v:?}, expected {}", if want_zero { "0" } else { "> 0" })),
            }
        }
        if self.bad_records() != Some(0) {
            problems.push(format!("reader bad records = {:?}, expected 0", self.bad_records()));
        }
        problems
    }

    /// A kernel counter from the `--stats` report on stderr ("  ringbuf_full   0").
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.stderr.iter().find_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some(name)).then(|| words.next()?.parse().ok()).flatten()
        })
    }

    /// "bad records N" from the `--stats` reader line.
    pub fn bad_records(&self) -> Option<u64> {
        self.stderr.iter().find_map(|l| l.split("bad records ").nth(1)?.split([',', ' ']).next()?.parse().ok())
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One readable line per event: lab server, family, version, cipher, SNI, finding ids with
/// severities; for a plaintext event its protocol, confidence and metadata.
pub fn summary(ev: &Value) -> String {
    let s = |p: &str| ev.pointer(p).and_then(Value::as_str).unwrap_or("-").to_string();
    let port = ev.pointer("/destination/port").and_then(Value::as_u64).unwrap_or(0);
    let server = server_on(port as u16)
        .map(|s| s.name)
        .or_else(|| super::probe::probe_server_on(port as u16).map(|s| s.name))
        .unwrap_or("?");
    let dst = s("/destination/ip");
    let dst = if dst.contains(':') { format!("[{dst}]:{port}") } else { format!("{dst}:{port}") };
    let findings: Vec<String> = ev
        .get("findings")
        .and_then(Value::as_array)
        .map(|f| f.iter().map(|f| format!("{} ({})", s_of(f, "id"), s_of(f, "severity"))).collect())
        .unwrap_or_default();
    let findings = if findings.is_empty() { "none".to_string() } else { findings.join(", ") };
    if ev.get("type").and_then(Value::as_str) == Some("probe") {
        // What the prober found when it connected itself (TLS 1.3 hides the certificate).
        return format!(
            "{server:<8} {dst:<22} PROBED result={:<11} sni={:<24} not_after={} findings: {findings}",
            s("/probe/result"),
            s("/probe/server_name"),
            s("/tls/server/x509/not_after"),
        );
    }
    if ev.get("type").and_then(Value::as_str) == Some("plaintext") {
        // Protocol metadata only (what tlsmon reports is already PHI-free).
        let meta = ev.pointer("/plaintext").map(|p| {
            let mut p = p.clone();
            if let Some(o) = p.as_object_mut() {
                o.remove("protocol");
                o.remove("confidence");
            }
            p.to_string()
        });
        return format!(
            "{:<8} {dst:<22} IN CLEAR confidence={:<6} {} findings: {findings}",
            s("/plaintext/protocol"),
            s("/plaintext/confidence"),
            meta.unwrap_or_default(),
        );
    }
    format!(
        "{server:<8} {dst:<22} {} {:<4} {:<40} sni={:<24} findings: {}",
        s("/tls/version_protocol").to_uppercase(),
        s("/tls/version"),
        s("/tls/cipher"),
        s("/tls/client/server_name"),
        findings
    )
}

fn s_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}
