//! Privileged end-to-end test of process attribution (issue 17): `tlsmon live` (TC on both of
//! mon's veths) names the process, PID, task name and cgroup of every flow whose socket lives
//! on the monitored host (the mon namespace). Clients are Python programs, each in a cgroup v2
//! directory this test creates (moved there before exec), that speak TLS 1.0 to an `openssl
//! s_server -tls1` in the server namespace:
//! - two clients in two cgroups, over IPv4 and IPv6;
//! - a connection opened before `tlsmon live` started (its TLS handshake after), named by the
//!   agent's start-up scan of existing sockets;
//! - a client port reused by another process right after the first closed (RST, no TIME_WAIT):
//!   each connection names its own process;
//! - an inbound connection from the client namespace to an `openssl s_server` in mon: the
//!   accepting server process is named (`tlsmon.local.side` = `server`).
//!
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it; the
//! cgroups, processes and namespaces it made are removed on every exit path.
mod ecs_check;
mod lab;

use std::{
    fs,
    io::{BufRead as _, BufReader, Write as _},
    os::unix::{fs::MetadataExt as _, io::AsRawFd as _, process::CommandExt as _},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use lab::{Family, Lab, Mode};
use serde_json::Value;

/// The client program: set the task name, join nothing else (the cgroup is set before exec),
/// connect (from a fixed port when asked), optionally wait for a line on stdin, speak TLS 1.0,
/// close (with a reset when asked: no TIME_WAIT, so the port can be taken again at once) and
/// stay alive a while so the agent can read /proc.
const CLIENT: &str = r#"
import socket, ssl, struct, sys, time, warnings
warnings.simplefilter("ignore")
socket.setdefaulttimeout(10)
name, host, port, mode, bind_port, hold = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
with open("/proc/self/comm", "w") as f:
    f.write(name)
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
s = socket.socket(fam, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if bind_port:
    s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", bind_port))
s.connect((host, port))
if mode == "pre":
    print("connected", flush=True)
    sys.stdin.readline()
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
ctx.minimum_version = ssl.TLSVersion.TLSv1
ctx.maximum_version = ssl.TLSVersion.TLSv1
t = ctx.wrap_socket(s, server_hostname="legacy.lab.test")
t.sendall(b"GET / HTTP/1.0\r\n\r\n")
t.recv(100)
if mode == "reset":
    t.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
t.close()
print("done", flush=True)
time.sleep(hold)
"#;

const SERVER_PORT: u16 = 4440;
const INBOUND_PORT: u16 = 4441;
const REUSED_PORT: u16 = 45_678;
const EVENT_WAIT: Duration = Duration::from_secs(20);
const CLIENT_LIMIT: Duration = Duration::from_secs(15);
/// How long each client stays alive after closing (the agent reads /proc while it does).
const HOLD: &str = "4";

/// A cgroup v2 directory made for the test; removed (after its processes are gone) on drop.
struct Cgroup {
    dir: PathBuf,
    /// Its path under the cgroup v2 root, as /proc/PID/cgroup writes it.
    rel: String,
    /// Its id: the directory's inode number, which is what the kernel reports.
    id: u64,
}

impl Cgroup {
    fn create(root: &Path, rel: &str) -> Result<Cgroup> {
        let dir = root.join(rel.trim_start_matches('/'));
        fs::create_dir_all(&dir).with_context(|| format!("creating cgroup {}", dir.display()))?;
        let id = fs::metadata(&dir)?.ino();
        Ok(Cgroup { dir, rel: rel.to_string(), id })
    }

    /// Put the child of `cmd` into this cgroup between fork and exec.
    fn enter(&self, cmd: &mut Command) -> Result<()> {
        let procs = fs::OpenOptions::new().write(true).open(self.dir.join("cgroup.procs"))?;
        // SAFETY: write(2) is async-signal-safe; the descriptor stays open (moved into the
        // closure) until the command is dropped.
        unsafe {
            cmd.pre_exec(move || {
                if libc::write(procs.as_raw_fd(), b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Ok(())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        // Any process left is killed (the test's own are killed before; this is the net).
        if let Ok(pids) = fs::read_to_string(self.dir.join("cgroup.procs")) {
            for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
                // SAFETY: plain syscall on a process in the test's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The cgroup v2 mount point (from /proc/self/mountinfo).
fn cgroup2_root() -> Result<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo")?;
    info.lines()
        .find_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            (right.split_whitespace().next()? == "cgroup2")
                .then(|| PathBuf::from(left.split_whitespace().nth(4).unwrap()))
        })
        .context("no cgroup v2 hierarchy is mounted (the test needs one to make cgroups)")
}

/// Children the test started itself (killed on drop).
#[derive(Default)]
struct Procs(Vec<(String, Child)>);

impl Drop for Procs {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A client started in `ns`, inside `cg`. Returns its PID (`ip netns exec` execs in place).
fn client(
    lab: &Lab,
    procs: &mut Procs,
    cg: &Cgroup,
    name: &str,
    target: (std::net::IpAddr, u16),
    mode: &str,
    bind_port: u16,
) -> Result<(u32, Option<ChildStdin>, BufReader<std::process::ChildStdout>)> {
    let script = lab.dir.join("client.py");
    let (host, port, bind) = (target.0.to_string(), target.1.to_string(), bind_port.to_string());
    let args = [script.to_str().unwrap(), name, &host, &port, mode, &bind, HOLD];
    let mut cmd = lab.cmd(&lab.mon_ns, "python3", &args);
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(fs::File::create(lab.dir.join(format!("{name}.log")))?);
    cg.enter(&mut cmd)?;
    let mut child = cmd.spawn().with_context(|| format!("starting client {name}"))?;
    let pid = child.id();
    let stdin = child.stdin.take();
    let stdout = BufReader::new(child.stdout.take().context("client stdout")?);
    procs.0.push((name.to_string(), child));
    Ok((pid, stdin, stdout))
}

/// Wait (bounded) for `word` on a client's stdout.
fn expect_line(out: &mut BufReader<std::process::ChildStdout>, word: &str, lab: &Lab, name: &str) -> Result<()> {
    let mut line = String::new();
    // The client's own timeouts bound this read: it exits (EOF) on any failure.
    out.read_line(&mut line)?;
    if line.trim() != word {
        bail!("client {name} printed {line:?}, not {word:?}; its log:\n{}", lab.log(name));
    }
    Ok(())
}

fn get<'a>(ev: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(ev, |v, k| &v[k])
}

/// The events whose `process.name` is `name`.
fn by_name<'a>(events: &'a [Value], name: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| get(e, "process.name") == name).collect()
}

fn check(events: &[Value], name: &str, pid: u32, cg: &Cgroup, side: &str) -> Result<()> {
    let found = by_name(events, name);
    let [ev] = found[..] else {
        bail!("want one event named {name}, got {}: {}", found.len(), dump(events));
    };
    let want = [
        ("process.pid", Value::from(pid)),
        ("process.user.id", Value::from("0")),
        ("tlsmon.local.side", Value::from(side)),
        ("tlsmon.local.cgroup.id", Value::from(cg.id)),
        ("tlsmon.local.cgroup.path", Value::from(cg.rel.clone())),
        ("tls.version", Value::from("1.0")),
    ];
    for (path, v) in want {
        if get(ev, path) != &v {
            bail!("{name}: {path} is {}, want {v}: {ev}", get(ev, path));
        }
    }
    Ok(())
}

fn dump(events: &[Value]) -> String {
    events.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n")
}

fn tlsmon_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tlsmon"))
}

#[test]
fn flows_name_their_local_processes() -> Result<()> {
    lab::ensure_root()?;
    lab::stop_on_signals();
    let root = cgroup2_root()?;
    let mut lab = Lab::create()?;
    let tag = format!("tlsmon-attr-{}", std::process::id());
    let top = Cgroup::create(&root, &format!("/{tag}"))?;
    let (cg_a, cg_b, cg_srv) = (
        Cgroup::create(&root, &format!("/{tag}/client-a"))?,
        Cgroup::create(&root, &format!("/{tag}/client-b"))?,
        Cgroup::create(&root, &format!("/{tag}/server"))?,
    );
    let mut procs = Procs::default();
    let result = run(&mut lab, &mut procs, [&cg_a, &cg_b, &cg_srv]);
    drop(procs);
    drop((cg_a, cg_b, cg_srv));
    drop(top);
    result
}

fn run(lab: &mut Lab, procs: &mut Procs, [cg_a, cg_b, cg_srv]: [&Cgroup; 3]) -> Result<()> {
    fs::write(lab.dir.join("client.py"), CLIENT)?;
    let dir = lab.dir.to_string_lossy().into_owned();
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
        .args([
            "-keyout",
            &format!("{dir}/attr.key"),
            "-out",
            &format!("{dir}/attr.pem"),
            "-subj",
            "/CN=legacy.lab.test",
        ])
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "openssl req failed");
    let tls10 = ["-cert", "attr.pem", "-key", "attr.key", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-www", "-quiet"];
    let (pem, key) = (format!("{dir}/attr.pem"), format!("{dir}/attr.key"));
    let tls10: Vec<&str> = tls10
        .iter()
        .map(|a| {
            if *a == "attr.pem" {
                pem.as_str()
            } else if *a == "attr.key" {
                key.as_str()
            } else {
                a
            }
        })
        .collect();
    let port = SERVER_PORT.to_string();
    let server_ns = lab.server_ns.clone();
    lab.spawn("server", &server_ns, "openssl", &[&["s_server", "-accept", &port][..], &tls10].concat())?;
    // The inbound server runs on the monitored host (mon), in its own cgroup.
    let inbound = INBOUND_PORT.to_string();
    let mut cmd = lab.cmd(&lab.mon_ns, "openssl", &[&["s_server", "-accept", &inbound][..], &tls10].concat());
    cmd.stdout(Stdio::null()).stderr(fs::File::create(lab.dir.join("inbound.log"))?);
    cg_srv.enter(&mut cmd)?;
    let inbound_server = cmd.spawn().context("starting the inbound server")?;
    let inbound_pid = inbound_server.id();
    procs.0.push(("inbound-server".into(), inbound_server));
    let v4 = (lab.server_addr(Family::V4), SERVER_PORT);
    let v6 = (lab.server_addr(Family::V6), SERVER_PORT);
    let mon_v4 = lab.mon_server_side_addr(Family::V4);
    lab.wait_accepting(&[std::net::SocketAddr::new(v4.0, v4.1), std::net::SocketAddr::new(v6.0, v6.1)])?;
    lab.wait_accepting(&[std::net::SocketAddr::new(mon_v4, INBOUND_PORT)])?;

    // Opened before tlsmon starts; its handshake comes after.
    let (pre_pid, mut pre_in, mut pre_out) = client(lab, procs, cg_a, "pre-client", v4, "pre", 0)?;
    expect_line(&mut pre_out, "connected", lab, "pre-client")?;

    let mut live = lab.start_live(&tlsmon_bin(), Mode::TcBoth, &[])?;
    let attribution = live.stderr_lines.iter().find(|l| l.contains("process attribution")).cloned();
    writeln!(pre_in.take().context("pre-client stdin")?, "go")?;
    expect_line(&mut pre_out, "done", lab, "pre-client")?;

    let (a_pid, _, mut a_out) = client(lab, procs, cg_a, "legacy-a", v4, "now", 0)?;
    expect_line(&mut a_out, "done", lab, "legacy-a")?;
    let (b_pid, _, mut b_out) = client(lab, procs, cg_b, "legacy-b", v6, "now", 0)?;
    expect_line(&mut b_out, "done", lab, "legacy-b")?;
    // The same client port, right after the first connection was reset.
    let (ra_pid, _, mut ra_out) = client(lab, procs, cg_a, "reuse-a", v4, "reset", REUSED_PORT)?;
    expect_line(&mut ra_out, "done", lab, "reuse-a")?;
    let (rb_pid, _, mut rb_out) = client(lab, procs, cg_b, "reuse-b", v4, "reset", REUSED_PORT)?;
    expect_line(&mut rb_out, "done", lab, "reuse-b")?;
    // Inbound: a client in the client namespace to the server on mon.
    let target = format!("{mon_v4}:{INBOUND_PORT}");
    let status = lab.run(
        "inbound-client",
        &lab.client_ns,
        "openssl",
        &["s_client", "-connect", &target, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0", "-servername", "legacy.lab.test"],
        CLIENT_LIMIT,
    )?;
    anyhow::ensure!(status.success(), "inbound s_client failed: {}", lab.log("inbound-client"));

    // Collect until every expected event is in (bounded), then stop.
    let want = ["pre-client", "legacy-a", "legacy-b", "reuse-a", "reuse-b", "openssl"];
    let mut events = Vec::new();
    let deadline = Instant::now() + EVENT_WAIT;
    while Instant::now() < deadline && !want.iter().all(|n| !by_name(&events, n).is_empty()) {
        if let Some(ev) = live.next_event(Duration::from_millis(200))? {
            events.push(ev);
        }
    }
    let stopped = live.stop()?;
    events.extend(stopped.events);
    let tls: Vec<Value> = events.into_iter().filter(|e| e["type"] == "tls").collect();
    let context = || {
        format!("attribution line: {attribution:?}\nevents:\n{}\nstderr:\n{}", dump(&tls), stopped.stderr.join("\n"))
    };
    check(&tls, "pre-client", pre_pid, cg_a, "client").with_context(context)?;
    check(&tls, "legacy-a", a_pid, cg_a, "client").with_context(context)?;
    check(&tls, "legacy-b", b_pid, cg_b, "client").with_context(context)?;
    check(&tls, "reuse-a", ra_pid, cg_a, "client").with_context(context)?;
    check(&tls, "reuse-b", rb_pid, cg_b, "client").with_context(context)?;
    check(&tls, "openssl", inbound_pid, cg_srv, "server").with_context(context)?;
    // The reused port: two connections, each named by its own process.
    let reused: Vec<&Value> = tls.iter().filter(|e| get(e, "source.port") == REUSED_PORT).collect();
    anyhow::ensure!(reused.len() == 2, "two connections from port {REUSED_PORT}: {}", context());
    // The inbound event is about mon's server, seen from its side.
    let inbound = by_name(&tls, "openssl")[0];
    anyhow::ensure!(get(inbound, "destination.port") == INBOUND_PORT, "inbound: {inbound}");
    // Flows between the client and server namespaces only (none here) would carry no process;
    // every event here is local, and none names a process it should not.
    let b_v6 = by_name(&tls, "legacy-b")[0];
    anyhow::ensure!(get(b_v6, "destination.ip").as_str().is_some_and(|ip| ip.contains(':')), "IPv6: {b_v6}");
    // The process, container and observer fields are ECS (tests/ecs_check).
    let (reference, legacy) = (ecs_check::reference(), ecs_check::documented_legacy());
    for ev in &tls {
        let problems = ecs_check::problems(&reference, ev, Some(&legacy));
        anyhow::ensure!(problems.is_empty(), "not ECS: {problems:?} in {ev}");
        anyhow::ensure!(ev["observer"]["hostname"].is_string(), "live events name the observer's host: {ev}");
    }
    Ok(())
}
