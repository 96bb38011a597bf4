//! Bench lab shared by the live benches (floods, compare --live, soak): a network namespace
//! with one veth pair, `ip netns exec` children killed with this process, `tlsmon live` reaped
//! with its rusage, per-process CPU and memory from /proc, and Ctrl-C as a flag the waits check.
//! Must never touch anything outside the namespace it made nor leave it, or a child, behind:
//! all are guards dropped on every exit path, Ctrl-C included.
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

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

/// A namespace and its veth pair `tx` ↔ `rx`, addresses `net`.1/30 and `net`.2/30, no IPv6
/// (no neighbour discovery among the bench's packets); deleted (with the pair) on drop.
pub struct Netns {
    pub name: &'static str,
    pub tx: &'static str,
    pub rx: &'static str,
}

impl Netns {
    /// `net` is the first three octets of a private /30, e.g. "10.215.0".
    pub fn create(name: &'static str, tx: &'static str, rx: &'static str, net: &str) -> Result<Netns> {
        if Path::new("/run/netns").join(name).exists() {
            // Left by an earlier run of this bench that was killed: ours by name.
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
        ip(&["netns", "add", name])?;
        let ns = Netns { name, tx, rx };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        let _ = ns
            .exec(Path::new("sysctl"))
            .args(["-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"])
            .status();
        ip(&["-n", name, "link", "add", tx, "type", "veth", "peer", "name", rx])?;
        for (dev, host) in [(tx, 1), (rx, 2)] {
            ip(&["-n", name, "addr", "add", &format!("{net}.{host}/30"), "dev", dev])?;
            ip(&["-n", name, "link", "set", dev, "up"])?;
        }
        Ok(ns)
    }

    /// `tlsmon live --iface RX --format none --stats EXTRA…` in the namespace, stderr to
    /// `err_path`, once it says it attached (within [`ATTACH_LIMIT`]).
    pub fn start_live(&self, tlsmon: &Path, extra: &[&str], err_path: &Path) -> Result<Reaped> {
        let err = fs::File::create(err_path).with_context(|| format!("creating {}", err_path.display()))?;
        let child = self
            .exec(tlsmon)
            .args(["live", "--iface", self.rx, "--format", "none", "--stats"])
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(err)
            .spawn()
            .context("starting tlsmon live")?;
        let mut mon = Reaped::new(child);
        wait_attached(&mut mon, err_path, ATTACH_LIMIT)?;
        Ok(mon)
    }

    /// `ip netns exec NS PROGRAM …`; killed with this process (PR_SET_PDEATHSIG). `ip netns
    /// exec` execs the program: the child's pid is the program's own.
    pub fn exec(&self, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.name]).arg(program).stdin(Stdio::null());
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// Packets dropped on the pair so far: the sender's tx and the receiver's rx drops.
    pub fn drops(&self) -> Result<u64> {
        let mut n = 0;
        for (dev, dir) in [(self.tx, "tx"), (self.rx, "rx")] {
            let out = Command::new("ip").args(["-n", self.name, "-s", "-j", "link", "show", "dev", dev]).output();
            let out = out.context("running ip -s link")?;
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("ip -s -j link output")?;
            n += v[0]["stats64"][dir]["dropped"].as_u64().context("no drop counter in ip -s -j link")?;
        }
        Ok(n)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", self.name]).stderr(Stdio::null()).status();
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A child SIGKILLed (by its pid) and reaped on drop unless already reaped; waited for with
/// wait4 for its rusage.
pub struct Reaped {
    pub child: Child,
    reaped: bool,
}

/// How a [`Reaped`] child ended.
pub struct Ended {
    /// Exit code, or -signal.
    pub code: i32,
    pub max_rss_kib: u64,
    /// User + system CPU time.
    pub cpu: Duration,
}

impl Reaped {
    pub fn new(child: Child) -> Reaped {
        Reaped { child, reaped: false }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    /// Waits (wait4) up to `limit`, looking every 20 ms.
    pub fn wait(&mut self, limit: Duration) -> Result<Option<Ended>> {
        self.wait_every(limit, Duration::from_millis(20))
    }

    /// Waits (wait4) up to `limit`, looking every `step` (short when the time to exit is
    /// itself the figure).
    pub fn wait_every(&mut self, limit: Duration, step: Duration) -> Result<Option<Ended>> {
        if self.reaped {
            bail!("pid {} was already reaped", self.pid());
        }
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
                let tv = |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
                let cpu = tv(ru.ru_utime) + tv(ru.ru_stime);
                return Ok(Some(Ended { code, max_rss_kib: ru.ru_maxrss.max(0) as u64, cpu }));
            }
            if r < 0 {
                return Err(std::io::Error::last_os_error()).context("wait4 on a bench child");
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            sleep(step);
        }
    }

    /// SIGTERM (to the pid; no effect once reaped).
    pub fn terminate(&self) {
        self.signal(libc::SIGTERM);
    }

    /// `sig` to the pid (no effect once reaped), e.g. SIGINT, on which tcpreplay stops and
    /// prints its summary.
    pub fn signal(&self, sig: libc::c_int) {
        if !self.reaped {
            // SAFETY: plain syscall on our own unreaped child's pid.
            unsafe { libc::kill(self.pid(), sig) };
        }
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: plain syscall on our own unreaped child's pid.
            unsafe { libc::kill(self.pid(), libc::SIGKILL) };
            let _ = self.wait(Duration::from_secs(10));
        }
    }
}

/// Most time `tlsmon live` may take to attach (loading and verifying the programs).
pub const ATTACH_LIMIT: Duration = Duration::from_secs(60);

/// `tlsmon live` writes this line on stderr once its programs are attached.
pub const ATTACHED: &str = "tlsmon: live: attached";

/// Waits until `err_path` (tlsmon's stderr) says it attached, or fails with that stderr.
pub fn wait_attached(mon: &mut Reaped, err_path: &Path, limit: Duration) -> Result<()> {
    let stderr = || fs::read_to_string(err_path).unwrap_or_default();
    let deadline = Instant::now() + limit;
    while !stderr().lines().any(|l| l.starts_with(ATTACHED)) {
        check_stop()?;
        if let Some(e) = mon.wait(Duration::ZERO)? {
            bail!("tlsmon live exited ({}) before attaching; its stderr:\n{}", e.code, stderr());
        }
        if Instant::now() >= deadline {
            bail!("tlsmon live did not attach within {limit:?}; its stderr:\n{}", stderr());
        }
        sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Waits until `pid` used under `idle_ticks` of CPU in `step` (it has drained its input), or
/// `limit` passed.
pub fn wait_idle(pid: libc::pid_t, step: Duration, idle_ticks: u64, limit: Duration) -> Result<()> {
    let start = Instant::now();
    let mut last = cpu_ticks(pid).unwrap_or(0);
    loop {
        check_stop()?;
        sleep(step);
        let now = cpu_ticks(pid).unwrap_or(last);
        if now.saturating_sub(last) < idle_ticks || start.elapsed() >= limit {
            return Ok(());
        }
        last = now;
    }
}

/// `name:   N kB` from /proc/PID/status, in KiB.
pub fn status_kib(pid: libc::pid_t, name: &str) -> Option<u64> {
    status_kib_of(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?, name)
}

fn status_kib_of(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].trim_start_matches(':').split_whitespace().next()?.parse().ok()
}

/// utime + stime of PID, clock ticks.
pub fn cpu_ticks(pid: libc::pid_t) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second (for [`cpu_ticks`]).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// The machine's CPU time from /proc/stat's `cpu` line, clock ticks: (busy, softirq, total).
pub fn host_ticks() -> Option<(u64, u64, u64)> {
    let text = fs::read_to_string("/proc/stat").ok()?;
    host_ticks_of(text.lines().find(|l| l.starts_with("cpu "))?)
}

fn host_ticks_of(line: &str) -> Option<(u64, u64, u64)> {
    let f: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>().ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice, already in user/nice]
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3)? + f.get(4)?;
    Some((total - idle, *f.get(6)?, total))
}

/// Busy and softirq time between two [`host_ticks`] readings, % of all cores.
pub fn host_share(a: (u64, u64, u64), b: (u64, u64, u64)) -> (f64, f64) {
    let total = b.2.saturating_sub(a.2).max(1) as f64;
    (b.0.saturating_sub(a.0) as f64 / total * 100.0, b.1.saturating_sub(a.1) as f64 / total * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ticks_of_a_proc_stat_line() {
        // /proc/stat of the bench machine (kernel 6.18, 2 cores): guest columns are not added.
        let line = "cpu  4705 150 1950 80000 300 0 800 20 7 0";
        assert_eq!(host_ticks_of(line), Some((4705 + 150 + 1950 + 800 + 20, 800, 87925)));
        assert_eq!(host_ticks_of("cpu  1 2"), None);
        let (busy, soft) = host_share((100, 10, 1000), (600, 110, 2000));
        assert!((busy - 50.0).abs() < 1e-9 && (soft - 10.0).abs() < 1e-9);
    }

    #[test]
    fn status_fields() {
        let s = "Name:\ttlsmon\nVmHWM:\t   20480 kB\nVmRSS:\t   18000 kB\nThreads:\t4\n";
        assert_eq!(status_kib_of(s, "VmRSS"), Some(18000));
        assert_eq!(status_kib_of(s, "VmHWM"), Some(20480));
        assert_eq!(status_kib_of(s, "Threads"), Some(4));
        assert_eq!(status_kib_of(s, "VmSwap"), None);
    }
}
