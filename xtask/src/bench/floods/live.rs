//! `bench floods`, live half: a namespace `tlsmon-flood` holding one veth pair (tlsm-fl0 ↔
//! tlsm-fl1, 10.215.0.0/30), `tlsmon live --stats` on tlsm-fl1, tcpreplay of the flood onto
//! tlsm-fl0; VmHWM read just before SIGTERM, the counters from `--stats`.
//! Must never touch anything outside its namespace nor leave it, or its tlsmon, behind: both
//! are guards dropped on every exit path, and Ctrl-C only sets a flag the waits check.
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{parse_stats, Outcome};

const NS: &str = "tlsmon-flood";
const TX_IF: &str = "tlsm-fl0";
const RX_IF: &str = "tlsm-fl1";
/// Most time for tlsmon to attach, and to exit after SIGTERM (it judges every open flow).
const ATTACH_LIMIT: Duration = Duration::from_secs(60);
const EXIT_LIMIT: Duration = Duration::from_secs(300);
/// After tcpreplay, tlsmon has drained the ring buffer once it used under this much CPU in
/// [`SETTLE_STEP`] (the 1 s tick's idle sweep is well below), or [`SETTLE_LIMIT`] passed.
const SETTLE_STEP: Duration = Duration::from_millis(500);
const SETTLE_IDLE_TICKS: u64 = 3;
const SETTLE_LIMIT: Duration = Duration::from_secs(300);

static STOP: AtomicBool = AtomicBool::new(false);

/// From here on SIGINT/SIGTERM set a flag: the bench unwinds through its guards.
pub fn stop_on_signals() {
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only stores to an atomic (async-signal-safe).
    unsafe {
        libc::signal(libc::SIGINT, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
    }
}

pub fn check_stop() -> Result<()> {
    if STOP.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// The namespace and its veth pair; deleted (with the pair) on drop.
struct Netns;

impl Netns {
    fn create() -> Result<Netns> {
        if Path::new("/run/netns").join(NS).exists() {
            // Left by an earlier run of this bench that was killed: ours by name.
            let _ = Command::new("ip").args(["netns", "del", NS]).status();
        }
        ip(&["netns", "add", NS])?;
        let ns = Netns;
        ip(&["-n", NS, "link", "set", "lo", "up"])?;
        // No IPv6 on the pair: no neighbour discovery packets among the flood's.
        let _ = in_ns(Path::new("sysctl"))
            .args(["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            .status();
        ip(&["-n", NS, "link", "add", TX_IF, "type", "veth", "peer", "name", RX_IF])?;
        for (dev, addr) in [(TX_IF, "10.215.0.1/30"), (RX_IF, "10.215.0.2/30")] {
            ip(&["-n", NS, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", NS, "link", "set", dev, "up"])?;
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", NS]).stderr(Stdio::null()).status();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// `ip netns exec NS PROGRAM …`; killed with this process (PR_SET_PDEATHSIG).
fn in_ns(program: &Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", NS]).arg(program).stdin(Stdio::null());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// tlsmon live; SIGKILLed (by its pid) and reaped on drop unless already reaped.
struct Tlsmon {
    child: Child,
    reaped: bool,
}

impl Tlsmon {
    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Waits (wait4) up to `limit`; returns (exit code or -signal, peak RSS KiB).
    fn wait(&mut self, limit: Duration) -> Result<Option<(i32, u64)>> {
        let deadline = Instant::now() + limit;
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: rusage is plain data filled by wait4.
            let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: our own unreaped child; pointers to live locals.
            let r = unsafe { libc::wait4(self.pid(), &mut status, libc::WNOHANG, &mut ru) };
            if r == self.pid() {
                self.reaped = true;
                let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
                return Ok(Some((code, ru.ru_maxrss.max(0) as u64)));
            }
            if r < 0 {
                return Err(std::io::Error::last_os_error()).context("wait4 on tlsmon");
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tlsmon {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: plain syscall on our own unreaped child's pid.
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
            let _ = self.wait(Duration::from_secs(10));
        }
    }
}

/// A child killed (by its pid) and reaped on drop unless it finished.
struct Reaped {
    child: Child,
    done: bool,
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `name:   N kB` from /proc/PID/status, in KiB.
fn status_kib(pid: libc::pid_t, name: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()
}

/// utime + stime of PID, clock ticks.
fn cpu_ticks(pid: libc::pid_t) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Runs the live half for one flood file.
pub fn run(bin: &Path, pcap: &Path, extra: &[String], mbps: Option<f64>) -> Result<Outcome> {
    let _ns = Netns::create().context("creating the flood namespace")?;
    let err_path = pcap.with_extension("live.stderr");
    let err = fs::File::create(&err_path).with_context(|| format!("creating {}", err_path.display()))?;
    let child = in_ns(bin)
        .args(["live", "--iface", RX_IF, "--format", "none", "--stats"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .context("starting tlsmon live")?;
    let mut mon = Tlsmon { child, reaped: false };
    eprintln!("bench: tlsmon live --iface {RX_IF} in {NS} (pid {}, stderr: {})", mon.pid(), err_path.display());
    let stderr = || fs::read_to_string(&err_path).unwrap_or_default();
    let deadline = Instant::now() + ATTACH_LIMIT;
    while !stderr().lines().any(|l| l.starts_with("tlsmon: live: attached")) {
        check_stop()?;
        if let Some((code, _)) = mon.wait(Duration::ZERO)? {
            bail!("tlsmon live exited ({code}) before attaching; its stderr:\n{}", stderr());
        }
        if Instant::now() >= deadline {
            bail!("tlsmon live did not attach within {ATTACH_LIMIT:?}; its stderr:\n{}", stderr());
        }
        sleep(Duration::from_millis(50));
    }
    // `ip netns exec` execs the program: the pid is tlsmon's own.
    let exe = fs::read_link(format!("/proc/{}/exe", mon.pid())).unwrap_or_default();
    if exe.file_name() != bin.file_name() {
        bail!("pid {} runs {}, not tlsmon: cannot read its memory", mon.pid(), exe.display());
    }

    let rate = mbps.map_or("--topspeed".to_string(), |m| format!("--mbps={m}"));
    let mut tr = in_ns(Path::new("tcpreplay"));
    tr.args(["-i", TX_IF, &rate]).arg(pcap);
    eprintln!("bench: tcpreplay -i {TX_IF} {rate} {}", pcap.display());
    let tr_path = pcap.with_extension("tcpreplay.out");
    let tr_out = fs::File::create(&tr_path).with_context(|| format!("creating {}", tr_path.display()))?;
    let started = Instant::now();
    let child = tr
        .stdout(tr_out.try_clone()?)
        .stderr(tr_out)
        .spawn()
        .context("running tcpreplay (apt package tcpreplay; cargo xtask setup installs it)")?;
    let mut sender = Reaped { child, done: false };
    let status = loop {
        if let Some(status) = sender.child.try_wait().context("waiting for tcpreplay")? {
            sender.done = true;
            break status;
        }
        check_stop()?;
        sleep(Duration::from_millis(50));
    };
    let secs = started.elapsed().as_secs_f64();
    let said = fs::read_to_string(&tr_path).unwrap_or_default();
    if !status.success() {
        bail!("tcpreplay failed ({status}):\n{said}");
    }
    let pick = |prefix: &str| {
        let line = said.lines().map(str::trim).find(|l| l.starts_with(prefix)).unwrap_or("");
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let actual = pick("Actual:");
    let sent_packets = actual.split_whitespace().nth(1).and_then(|n| n.parse().ok());
    let sent = format!("tcpreplay {:.1} s: {}; {}", secs, actual, pick("Failed packets:"));

    // Wait until tlsmon has drained the ring buffer (its CPU time stops growing).
    let settle_start = Instant::now();
    let mut last = cpu_ticks(mon.pid()).unwrap_or(0);
    loop {
        check_stop()?;
        sleep(SETTLE_STEP);
        let now = cpu_ticks(mon.pid()).unwrap_or(last);
        if now.saturating_sub(last) < SETTLE_IDLE_TICKS || settle_start.elapsed() >= SETTLE_LIMIT {
            break;
        }
        last = now;
    }
    let hwm = status_kib(mon.pid(), "VmHWM");
    // SAFETY: plain syscall on our own unreaped child's pid.
    unsafe { libc::kill(mon.pid(), libc::SIGTERM) };
    let Some((code, max_rss_kib)) = mon.wait(EXIT_LIMIT)? else {
        bail!("tlsmon live did not exit within {EXIT_LIMIT:?} of SIGTERM");
    };
    let text = stderr();
    if code != 0 {
        bail!("tlsmon live exited with {code}; its stderr:\n{text}");
    }
    Ok(Outcome { secs, max_rss_kib, hwm_kib: hwm, code, counters: parse_stats(&text), sent, sent_packets })
}
