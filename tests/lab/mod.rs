//! Test lab: three network namespaces, client — mon — server, joined by veth pairs, with TLS
//! servers of known posture in `server`, clients in `client` and `tlsmon live` in `mon` (which
//! routes between the two). Shared by the privileged end-to-end tests (tests/live_lab.rs) and
//! `cargo xtask demo`.
//! Must never touch the host's interfaces or send traffic anywhere but between the namespaces it
//! made, and must tear them down (and every process started in them) on every exit path.
//!
//! Addresses ([`Plan::DEFAULT`]): client 10.99.X.2/24 and fd99:X::2/64, mon 10.99.X.1 /
//! fd99:X::1 towards the client and 10.99.X+1.1 / fd99:X+1::1 towards the server, server
//! 10.99.X+1.2 / fd99:X+1::2, with X distinct per lab. Namespaces are named
//! `tlsmon-<pid>-<n>-{client,mon,server}`; a lab whose process died (killed test, Ctrl-C'd demo)
//! is cleaned up by the next lab created. [`Plan::PROBE`] (the prober's tests) is the same
//! shape in 10.214.0.0/16 and fd14:214::/64 (one /80 per subnet), named `tlsmon-prb-<pid>-…`.
// Each user (a test binary, xtask) uses part of the module.
#![allow(dead_code, unused_imports)]

pub mod crowd;
mod hello;
pub mod irc;
mod live;
pub mod plain;
pub mod probe;
mod servers;
pub mod ssh;
pub mod wire;
pub mod xmpp;

pub use hello::{big_flight, huge_hello, large_hello, BigFlight, LargeHello, BIG_FLIGHT_PORT, BIG_FLIGHT_SNI};
pub use live::{summary, Live, Mode};
pub use servers::{ClientRun, Posture, ServerSpec, CA_CN, EXPIRED_NOT_AFTER, SERVERS};

use std::{
    fs::{self, File},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::unix::{io::AsRawFd as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicBool, AtomicUsize, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

/// Prefix of every namespace and temp dir a lab creates.
pub const PREFIX: &str = "tlsmon-";
/// Prefix of a lab's temp dir (certificates, logs).
const DIR_PREFIX: &str = "tlsmon-lab-";
/// Interface names (inside the namespaces only; the host never sees them).
pub const CLIENT_IF: &str = "veth-c";
pub const MON_CLIENT_IF: &str = "veth-mc";
pub const MON_SERVER_IF: &str = "veth-ms";
pub const SERVER_IF: &str = "veth-s";

/// Labs created by this process (part of the names and of the address plan).
static LABS: AtomicUsize = AtomicUsize::new(0);
/// Set by SIGINT/SIGTERM once [`stop_on_signals`] ran; every wait loop of the lab checks it.
static STOP: AtomicBool = AtomicBool::new(false);

/// Names and addresses of a lab: the default one (tests of the passive pipeline, the demo) or
/// the prober's (its own name tag and networks, so its labs are told apart at a glance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Put after `tlsmon-` in namespace and temp dir names ("" or "prb-").
    pub tag: &'static str,
    /// First two octets of every IPv4 address; subnet X is `A.B.X.0/24`.
    pub v4: [u8; 2],
    /// IPv6 subnets: X is `P:X::/64`, or `P0:P1::X:0:0:0/80` inside the /64 `P0:P1::`.
    pub v6: V6Plan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum V6Plan {
    /// fd99:X::/64.
    PerSubnet64(u16),
    /// fd14:214::X:0:0:0/80 — every lab inside one /64.
    Within64([u16; 2]),
}

impl Plan {
    pub const DEFAULT: Plan = Plan { tag: "", v4: [10, 99], v6: V6Plan::PerSubnet64(0xfd99) };
    pub const PROBE: Plan = Plan { tag: "prb-", v4: [10, 214], v6: V6Plan::Within64([0xfd14, 0x214]) };
    /// Tags of every plan (to recognise a dead process's leftovers).
    const TAGS: [&'static str; 1] = ["prb-"];

    fn v4_addr(&self, net: u8, host: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.v4[0], self.v4[1], net, host)
    }

    fn v6_addr(&self, net: u8, host: u16) -> Ipv6Addr {
        match self.v6 {
            V6Plan::PerSubnet64(p) => Ipv6Addr::new(p, net as u16, 0, 0, 0, 0, 0, host),
            V6Plan::Within64([a, b]) => Ipv6Addr::new(a, b, 0, 0, net as u16, 0, 0, host),
        }
    }

    fn v6_len(&self) -> u8 {
        match self.v6 {
            V6Plan::PerSubnet64(_) => 64,
            V6Plan::Within64(_) => 80,
        }
    }
}

/// IPv4 or IPv6: the lab is dual-stack and every case runs over both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];
    pub fn label(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

/// One lab: its namespaces, addresses, temp dir and the processes started in it.
pub struct Lab {
    pub client_ns: String,
    pub mon_ns: String,
    pub server_ns: String,
    /// Certificates, keys and per-process logs; removed on drop.
    pub dir: PathBuf,
    /// Names and networks.
    pub plan: Plan,
    /// Third octet (IPv4) / subnet number (IPv6) of the client-side subnet; the server side is +1.
    subnet: u8,
    /// Namespaces created so far (deleted on drop, in reverse order).
    created: Vec<String>,
    /// Servers and other long-running processes (killed on drop).
    children: Vec<(String, Child)>,
}

impl Lab {
    /// Creates the three namespaces, the two veth pairs, addresses and routes, and turns on
    /// forwarding in `mon` only. Cleans up labs left behind by dead processes first.
    pub fn create() -> Result<Lab> {
        Lab::create_with(Plan::DEFAULT)
    }

    /// [`Lab::create`] with the names and networks of `plan`.
    pub fn create_with(plan: Plan) -> Result<Lab> {
        ensure_root()?;
        cleanup_stale();
        let pid = std::process::id();
        let n = LABS.fetch_add(1, Ordering::SeqCst);
        let tag = plan.tag;
        let base = format!("{PREFIX}{tag}{pid}-{n}");
        let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{tag}{pid}-{n}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let slot = ((pid as usize).wrapping_mul(4).wrapping_add(n) % 120) as u8;
        let mut lab = Lab {
            client_ns: format!("{base}-client"),
            mon_ns: format!("{base}-mon"),
            server_ns: format!("{base}-server"),
            dir,
            plan,
            subnet: slot * 2,
            created: Vec::new(),
            children: Vec::new(),
        };
        lab.build_topology().context("building the lab topology")?;
        Ok(lab)
    }

    fn build_topology(&mut self) -> Result<()> {
        for ns in [self.client_ns.clone(), self.mon_ns.clone(), self.server_ns.clone()] {
            ip(&["netns", "add", &ns])?;
            self.created.push(ns.clone());
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let (c, m, s) = (&self.client_ns, &self.mon_ns, &self.server_ns);
        // Both ends are created directly inside their namespaces.
        ip(&["link", "add", CLIENT_IF, "netns", c, "type", "veth", "peer", "name", MON_CLIENT_IF, "netns", m])?;
        ip(&["link", "add", SERVER_IF, "netns", s, "type", "veth", "peer", "name", MON_SERVER_IF, "netns", m])?;
        let (x, y) = (self.subnet, self.subnet + 1);
        let p = self.plan;
        let len = p.v6_len();
        for (ns, dev, v4, v6) in [
            (c, CLIENT_IF, format!("{}/24", p.v4_addr(x, 2)), format!("{}/{len}", p.v6_addr(x, 2))),
            (m, MON_CLIENT_IF, format!("{}/24", p.v4_addr(x, 1)), format!("{}/{len}", p.v6_addr(x, 1))),
            (m, MON_SERVER_IF, format!("{}/24", p.v4_addr(y, 1)), format!("{}/{len}", p.v6_addr(y, 1))),
            (s, SERVER_IF, format!("{}/24", p.v4_addr(y, 2)), format!("{}/{len}", p.v6_addr(y, 2))),
        ] {
            ip(&["-n", ns, "addr", "add", &v4, "dev", dev])?;
            ip(&["-n", ns, "-6", "addr", "add", &v6, "dev", dev, "nodad"])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        ip(&["-n", c, "route", "add", "default", "via", &p.v4_addr(x, 1).to_string()])?;
        ip(&["-n", c, "-6", "route", "add", "default", "via", &p.v6_addr(x, 1).to_string()])?;
        ip(&["-n", s, "route", "add", "default", "via", &p.v4_addr(y, 1).to_string()])?;
        ip(&["-n", s, "-6", "route", "add", "default", "via", &p.v6_addr(y, 1).to_string()])?;
        let out = self
            .cmd(m, "sysctl", &["-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
            .output()
            .context("running sysctl in the mon namespace")?;
        if !out.status.success() {
            bail!("sysctl in {m} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    pub fn client_addr(&self, f: Family) -> IpAddr {
        self.addr(f, self.subnet, 2)
    }

    pub fn server_addr(&self, f: Family) -> IpAddr {
        self.addr(f, self.subnet + 1, 2)
    }

    /// Mon's address on the server side: where connections mon itself opens (the prober's)
    /// come from, as the server sees them.
    pub fn mon_server_side_addr(&self, f: Family) -> IpAddr {
        self.addr(f, self.subnet + 1, 1)
    }

    /// Host `host` of the server-side subnet (the server itself is 2).
    pub fn server_subnet_addr(&self, f: Family, host: u8) -> IpAddr {
        self.addr(f, self.subnet + 1, host)
    }

    /// The server-side subnet's prefix length for `f` (24, or 64 / 80 per [`Plan`]).
    pub fn server_prefix_len(&self, f: Family) -> u8 {
        match f {
            Family::V4 => 24,
            Family::V6 => self.plan.v6_len(),
        }
    }

    fn addr(&self, f: Family, net: u8, host: u8) -> IpAddr {
        match f {
            Family::V4 => IpAddr::V4(self.plan.v4_addr(net, host)),
            Family::V6 => IpAddr::V6(self.plan.v6_addr(net, host as u16)),
        }
    }

    /// `ip netns exec NS PROGRAM ARGS`, in its own process group (a terminal's Ctrl-C goes to
    /// the lab's owner, which tears down in order) and killed if the thread that started it dies.
    pub fn cmd(&self, ns: &str, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, program]).args(args).stdin(Stdio::null()).process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        cmd
    }

    /// Starts a long-running process in `ns` (stdout and stderr to `dir/<name>.log`); it is
    /// killed when the lab is dropped.
    pub fn spawn(&mut self, name: &str, ns: &str, program: &str, args: &[&str]) -> Result<()> {
        let log = self.log_file(name)?;
        let child = self
            .cmd(ns, program, args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {program} ({name}) in {ns}"))?;
        self.children.push((name.to_string(), child));
        Ok(())
    }

    /// Runs a short command in `ns` to completion (bounded by `limit`), output to
    /// `dir/<name>.log`. Returns its exit status.
    pub fn run(&self, name: &str, ns: &str, program: &str, args: &[&str], limit: Duration) -> Result<ExitStatus> {
        let log = self.log_file(name)?;
        let mut child = self
            .cmd(ns, program, args)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {program} ({name}) in {ns}"))?;
        match wait_timeout(&mut child, limit)? {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                check_stop()?;
                bail!("{name} ({program} in {ns}) did not finish within {limit:?}")
            }
        }
    }

    /// The log written by [`Lab::spawn`] / [`Lab::run`] for `name` (empty if none).
    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn log_file(&self, name: &str) -> Result<File> {
        let path = self.dir.join(format!("{name}.log"));
        File::create(&path).with_context(|| format!("creating {}", path.display()))
    }

    /// Fails if a process started with [`Lab::spawn`] has exited (a server that died).
    pub fn check_children(&mut self) -> Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let log = fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
                bail!("{name} exited ({status}); its log:\n{log}");
            }
        }
        Ok(())
    }

    /// Stops the process started as `name` with `signal` and waits (at most `limit`, then
    /// SIGKILL) for it to exit, so what it writes is complete (a capture file). It is no longer
    /// a lab child afterwards.
    pub fn stop_child(&mut self, name: &str, signal: libc::c_int, limit: Duration) -> Result<()> {
        let i = self.children.iter().position(|(n, _)| n == name).with_context(|| format!("no lab process {name}"))?;
        let (_, mut child) = self.children.remove(i);
        // SAFETY: plain syscall on our own child (`ip netns exec` execs the program in place).
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        if wait_timeout(&mut child, limit)?.is_none() {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} did not exit within {limit:?} of signal {signal} (killed)");
        }
        Ok(())
    }

    /// Runs `f` on a thread that has entered `ns`'s network namespace (sockets it opens live
    /// there); the calling thread's namespace is unchanged.
    pub fn in_netns<T: Send>(&self, ns: &str, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        let path = format!("/run/netns/{ns}");
        thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).with_context(|| format!("opening {path}"))?;
                // SAFETY: plain syscall on a valid fd; it only changes this (scoped) thread.
                if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    bail!("setns({path}): {}", std::io::Error::last_os_error());
                }
                f()
            })
            .join()
            .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
        })
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.created.iter().rev() {
            delete_namespace(ns);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Fails loudly unless running as root: the lab needs namespaces, veth and eBPF.
pub fn ensure_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the network-namespace lab needs root (namespaces, veth, eBPF); CI runs as root");
    }
    Ok(())
}

/// Makes SIGINT and SIGTERM set a flag that every lab wait loop checks (see [`stopping`]).
pub fn stop_on_signals() {
    extern "C" fn on_signal(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

/// True once SIGINT/SIGTERM arrived (after [`stop_on_signals`]).
pub fn stopping() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Fails with "interrupted" once a stop signal arrived.
pub fn check_stop() -> Result<()> {
    if stopping() {
        bail!("interrupted");
    }
    Ok(())
}

/// Waits for `child` at most `limit`; None if it is still running (or a stop signal arrived).
pub fn wait_timeout(child: &mut Child, limit: Duration) -> Result<Option<ExitStatus>> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().context("waiting for a child process")? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline || stopping() {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Kills every process still inside `ns`, then deletes it (best effort: used on teardown).
fn delete_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: plain syscall; the pid was just listed as a member of our namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    let _ = Command::new("ip").args(["netns", "del", ns]).stderr(Stdio::null()).status();
}

/// Deletes namespaces named `tlsmon-<pid>-…` and temp files `tlsmon-lab-<pid>-…` whose process
/// is gone.
pub fn cleanup_stale() {
    let dead = |name: &str, prefix: &str| -> bool {
        let Some(rest) = name.strip_prefix(prefix) else { return false };
        let rest = Plan::TAGS.iter().find_map(|t| rest.strip_prefix(t)).unwrap_or(rest);
        match rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) {
            Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
            None => false,
        }
    };
    if let Ok(entries) = fs::read_dir("/run/netns") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if dead(&name, PREFIX) {
                delete_namespace(&name);
            }
        }
    }
    if let Ok(entries) = fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // The lab dir, and the event dump a failed test leaves beside it.
            if dead(&name, DIR_PREFIX) {
                let _ = if e.path().is_dir() { fs::remove_dir_all(e.path()) } else { fs::remove_file(e.path()) };
            }
        }
    }
}
