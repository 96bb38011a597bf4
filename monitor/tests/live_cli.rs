//! Privileged CLI tests of `tlsmon live`: the messages for a missing interface and for an XDP
//! hook owned by another program, a clean attach/detach on loopback (by --duration and by
//! SIGINT), a live TLS handshake on loopback printed while the capture is still running, and
//! SIGTERM under load (tcpreplay of the generated mix) with an audit log that a restart continues.
//! Must never be skipped: they need root (CI runs as root) and fail loudly without it. Traffic
//! stays on loopback or in a network namespace the test makes and always deletes.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const TLSMON: &str = env!("CARGO_BIN_EXE_tlsmon");

fn require_root() {
    let missing = monitor::capture::ebpf::missing_capabilities();
    assert!(
        missing.is_empty(),
        "live_cli attaches eBPF programs and needs root (or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON), missing {missing:?}; \
         run it through `cargo xtask test` as root, as CI does"
    );
}

/// A child process that is killed and reaped on every exit path, with its stderr (and
/// optionally stdout) read line by line on threads.
struct Proc {
    child: Child,
    stderr: Receiver<String>,
    stdout: Option<Receiver<String>>,
    seen_err: Vec<String>,
}

fn lines_of(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    fn spawn(cmd: &mut Command, capture_stdout: bool) -> Proc {
        cmd.stdin(Stdio::null()).stderr(Stdio::piped());
        cmd.stdout(if capture_stdout { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        let stderr = lines_of(child.stderr.take().expect("stderr is piped"));
        let stdout = child.stdout.take().map(lines_of);
        Proc { child, stderr, stdout, seen_err: Vec::new() }
    }

    /// Wait for a stderr line containing `needle`; panics with everything seen on timeout.
    fn wait_stderr(&mut self, needle: &str, within: Duration) -> String {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.seen_err.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no stderr line with {needle:?} within {within:?}; stderr so far: {:#?}", self.seen_err);
    }

    /// Wait for a stdout line satisfying `pred`; `Err` holds the lines seen instead.
    fn wait_stdout(&mut self, within: Duration, pred: impl Fn(&str) -> bool) -> Result<String, Vec<String>> {
        let rx = self.stdout.as_ref().expect("stdout is captured");
        let end = Instant::now() + within;
        let mut seen = Vec::new();
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return Ok(line),
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        Err(seen)
    }

    /// Exit status within `within`, or a panic (the drop guard then kills the process).
    fn wait(&mut self, within: Duration) -> std::process::ExitStatus {
        let end = Instant::now() + within;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(20)),
                Ok(None) => panic!("process did not exit within {within:?}"),
                Err(e) => panic!("waiting for the process: {e}"),
            }
        }
    }

    /// All stderr lines read so far plus whatever is left once the process has exited.
    fn all_stderr(&mut self) -> String {
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            self.seen_err.push(line);
        }
        self.seen_err.join("\n")
    }

    fn signal(&self, sig: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: kill(2) with our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A network namespace with one veth pair, deleted on every exit path.
struct Netns {
    name: String,
}

impl Netns {
    fn new(tag: &str, iface: &str) -> Netns {
        let name = format!("tlsmon-{tag}-{}", std::process::id());
        run(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        // A veth pair (dummy interfaces need a module this kernel may lack); generic XDP
        // attaches to either end.
        let peer = format!("{iface}p");
        run(&["ip", "-n", &ns.name, "link", "add", iface, "type", "veth", "peer", "name", &peer]);
        run(&["ip", "-n", &ns.name, "link", "set", iface, "up"]);
        run(&["ip", "-n", &ns.name, "link", "set", &peer, "up"]);
        ns
    }

    /// `tlsmon ARGS` inside the namespace.
    fn tlsmon(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, TLSMON]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A scratch directory removed on drop.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("tlsmon-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn missing_interface_is_named() {
    let out = Command::new(TLSMON).args(["live", "--iface", "does-not-exist0"]).output().expect("run tlsmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("interface `does-not-exist0` does not exist"), "stderr: {err}");
    assert!(err.contains("ip link"), "stderr: {err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn layer3_interface_is_refused_with_the_reason() {
    require_root();
    // A tun device (no Ethernet header) inside a private namespace; the veth stays unused.
    let ns = Netns::new("livel3", "l3veth0");
    run(&["ip", "netns", "exec", &ns.name, "ip", "tuntap", "add", "dev", "l3tun0", "mode", "tun"]);
    let out = ns.tlsmon(&["live", "--iface", "l3tun0", "--duration", "1"]).output().expect("run tlsmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("interface `l3tun0` carries no Ethernet header (link type 65534"), "stderr: {err}");
    assert!(!err.contains("attached"), "stderr: {err}");
}

#[test]
fn without_capabilities_it_says_what_it_needs() {
    require_root();
    // Root, but with BPF, SYS_ADMIN, PERFMON and NET_ADMIN out of the bounding set.
    let out = Command::new("setpriv")
        .args(["--inh-caps=-all", "--bounding-set=-bpf,-sys_admin,-perfmon,-net_admin", TLSMON])
        .args(["live", "--iface", "lo", "--duration", "1"])
        .output()
        .expect("run setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.contains("permission denied"), "stderr: {err}");
    assert!(err.contains("needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON"), "stderr: {err}");
    assert!(err.contains("missing: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON"), "stderr: {err}");
    assert!(!err.contains("attached"), "stderr: {err}");
}

#[test]
fn loopback_attaches_and_stops_after_duration() {
    require_root();
    let t0 = Instant::now();
    let mut p = Proc::spawn(Command::new(TLSMON).args(["live", "--iface", "lo", "--duration", "1", "--stats"]), true);
    let line = p.wait_stderr("tlsmon: live:", Duration::from_secs(20));
    assert_eq!(line, "tlsmon: live: attached tc to lo (ingress+egress)");
    let status = p.wait(Duration::from_secs(20));
    let err = p.all_stderr();
    assert!(status.success(), "exit {status}; stderr: {err}");
    assert!(t0.elapsed() >= Duration::from_secs(1), "--duration 1 stopped early");
    // --stats: every kernel counter by name, then the reader's line.
    for name in monitor_common::counter::NAMES {
        assert!(err.lines().any(|l| l.split_whitespace().next() == Some(name)), "counter {name} missing: {err}");
    }
    assert!(err.contains("tlsmon: live: reader: records"), "{err}");
}

/// `tlsmon ARGS` (live) in `ns` while the python3 `script` runs there; the process once it has
/// exited successfully, and its stderr.
fn live_while(ns: &Netns, args: &[&str], capture_stdout: bool, script: &str) -> (Proc, String) {
    live_while_then(ns, args, capture_stdout, script, |_| {})
}

/// As [`live_while`], running `then` on the running process after the exchange.
fn live_while_then(
    ns: &Netns,
    args: &[&str],
    capture_stdout: bool,
    script: &str,
    then: impl FnOnce(&mut Proc),
) -> (Proc, String) {
    let mut p = Proc::spawn(&mut ns.tlsmon(args), capture_stdout);
    p.wait_stderr("tlsmon: live: attached", Duration::from_secs(20));
    let mut py = Command::new("ip");
    py.args(["netns", "exec", &ns.name, "timeout", "10", "python3", "-c", script]);
    let out = py.output().expect("run python3");
    assert!(out.status.success(), "exchange: {}", String::from_utf8_lossy(&out.stderr));
    then(&mut p);
    let status = p.wait(Duration::from_secs(20));
    let err = p.all_stderr();
    assert!(status.success(), "exit {status}: {err}");
    (p, err)
}

/// A kernel counter from `--stats` (`  name  value` lines).
fn kernel_counter(stderr: &str, name: &str) -> u64 {
    let line = stderr.lines().find(|l| l.split_whitespace().next() == Some(name));
    line.and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {stderr}"))
}

/// A plaintext exchange that matches no built-in candidate (port 6661, "hello there") is
/// ignored by the kernel, unless `--candidate-port 6661` says to capture it. In a private
/// namespace, so no other test's traffic on the host's loopback counts.
#[test]
fn candidate_port_makes_the_kernel_capture_a_flow() {
    require_root();
    let ns = Netns::new("livecand", "candveth0");
    run(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
    const EXCHANGE: &str = "import socket, threading\n\
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('127.0.0.1', 6661)); s.listen(1)\n\
def serve():\n    c, _ = s.accept(); c.recv(100); c.sendall(b'ok\\r\\n'); c.close()\n\
t = threading.Thread(target=serve); t.start()\n\
c = socket.create_connection(('127.0.0.1', 6661)); c.sendall(b'hello there\\r\\n'); c.recv(100); c.close()\n\
t.join()\n";
    let counter = kernel_counter;
    for extra in [&[][..], &["--candidate-port", "6661"][..]] {
        let mut args = vec!["live", "--iface", "lo", "--duration", "3", "--stats", "--format", "none"];
        args.extend_from_slice(extra);
        let (_, err) = live_while(&ns, &args, false, EXCHANGE);
        let (ignored, records) = (counter(&err, "not_candidate"), counter(&err, "records"));
        // Header-only (lifecycle) records are a bare header; TC on lo sees each packet twice.
        let payload_bytes = counter(&err, "record_bytes") - monitor_common::HEADER_LEN as u64 * records;
        if extra.is_empty() {
            assert_eq!(ignored, 1, "{err}");
            assert!(records > 0, "the SYNs still go out: {err}");
            assert_eq!(payload_bytes, 0, "no payload of an ignored flow: {err}");
        } else {
            assert_eq!(ignored, 0, "{err}");
            // "hello there\r\n" and "ok\r\n", each seen on egress and ingress.
            assert_eq!(payload_bytes, 2 * (13 + 4), "{err}");
        }
    }
}

/// A clear HL7 exchange on port 6661 after a server banner ("READY"): neither a built-in candidate
/// port nor a first-payload signature. `tlsmon live --candidate-port 6661` and `tlsmon replay
/// --candidate-port 6661` over tcpdump's capture of the same exchange report the same event
/// (all but its timestamp: the kernel's and tcpdump's clocks differ); replay without the flag
/// reports nothing. Live `--stats` and /metrics show the source counters every source has,
/// taken from the kernel's (packets and bytes seen).
#[test]
fn replay_finds_what_live_finds_with_the_same_candidate_port() {
    require_root();
    let ns = Netns::new("livepar", "parveth0");
    run(&["ip", "-n", &ns.name, "link", "set", "lo", "up"]);
    let dir = TempDir::new("livepar");
    let pcap = dir.0.join("exchange.pcap");
    let pcap_s = pcap.to_str().expect("utf-8 path");
    let mut dump = Command::new("ip");
    dump.args(["netns", "exec", &ns.name, "tcpdump", "-i", "lo", "-U", "-n", "-w", pcap_s, "tcp port 6661"]);
    let mut dump = Proc::spawn(&mut dump, false);
    dump.wait_stderr("listening on", Duration::from_secs(20));
    const EXCHANGE: &str = "import socket, threading\n\
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
s.bind(('127.0.0.1', 6661)); s.listen(1)\n\
def serve():\n    c, _ = s.accept(); c.sendall(b'READY\\r\\n'); c.recv(1000)\n    c.sendall(b'MSH|^~\\\\&|EHR|H|LAB|H|20250101||ACK^A01|2|P|2.5\\rMSA|AA|1\\r'); c.close()\n\
t = threading.Thread(target=serve); t.start()\n\
c = socket.create_connection(('127.0.0.1', 6661)); c.recv(100)\n\
c.sendall(b'MSH|^~\\\\&|LAB|H|EHR|H|20250101||ADT^A01|1|P|2.5\\rPID|1||55555^^^H||TESTPATIENT^SYNTHETIC\\r')\n\
c.recv(1000); c.close()\n\
t.join()\n";
    let args = [
        "live",
        "--iface",
        "lo",
        "--duration",
        "8",
        "--stats",
        "--format",
        "json",
        "--candidate-port",
        "6661",
        "--listen",
        "127.0.0.1:0",
    ];
    // While it runs, /metrics has the source counters (published each second), the same
    // figures as the kernel's own packet counters in the same scrape.
    let mut scraped = String::new();
    let scrape = |p: &mut Proc| {
        let line = p.seen_err.iter().find(|l| l.contains("serving metrics on")).cloned().expect("serving line");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("URL").to_string();
        let value = |text: &str, series: &str| -> Option<u64> {
            text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        };
        for _ in 0..50 {
            let out = Command::new("ip").args(["netns", "exec", &ns.name, "curl", "-s", &url]).output().expect("curl");
            scraped = String::from_utf8_lossy(&out.stdout).into_owned();
            if value(&scraped, "tlsmon_packets_total ").is_some_and(|n| n >= 10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let packets = value(&scraped, "tlsmon_packets_total ").expect("tlsmon_packets_total");
        assert!(packets >= 10, "{scraped}");
        let kernel = value(&scraped, "tlsmon_kernel_counter_total{counter=\"packets\"} ");
        assert_eq!(Some(packets), kernel, "{scraped}");
        let bytes = value(&scraped, "tlsmon_packet_bytes_total ");
        assert_eq!(bytes, value(&scraped, "tlsmon_kernel_counter_total{counter=\"packet_bytes\"} "), "{scraped}");
        assert!(bytes > Some(0), "{scraped}");
        assert!(scraped.contains("tlsmon_packets_skipped_total{reason=\"not_ip\"}"), "{scraped}");
    };
    let (mut live, err) = live_while_then(&ns, &args, true, EXCHANGE, scrape);
    let rx = live.stdout.take().expect("stdout captured");
    let live_events: Vec<String> = rx.iter().collect();
    dump.signal(libc::SIGINT);
    assert!(dump.wait(Duration::from_secs(10)).success(), "tcpdump exit");

    // The source counters are the kernel's packets and bytes, in the same fields as replay's.
    let kernel = |name: &str| kernel_counter(&err, name);
    let field = |name: &str| -> u64 {
        let line = err.lines().find(|l| l.trim_start().starts_with(&format!("{name}: ")));
        line.and_then(|l| l.trim().trim_end_matches(',').rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("DecodeStats {name}: {err}"))
    };
    assert!(field("packets") >= 10, "SYN, banner, message, reply, FINs, each seen twice on lo: {err}");
    assert_eq!((field("packets"), field("bytes")), (kernel("packets"), kernel("packet_bytes")), "{err}");

    let replay = |extra: &[&str]| -> Vec<String> {
        let out = Command::new(TLSMON)
            .args(["replay", "--format", "json"])
            .args(extra)
            .arg(&pcap)
            .output()
            .expect("run tlsmon replay");
        assert!(out.status.success(), "replay: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
    };
    let without_time = |lines: &[String]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).expect("JSON event");
                let o = v.as_object_mut().expect("an object");
                o.remove("timestamp");
                o.remove("@timestamp");
                v
            })
            .collect()
    };
    let replayed = replay(&["--candidate-port", "6661"]);
    assert_eq!(live_events.len(), 1, "one plaintext event live: {live_events:?}\n{err}");
    // Live names the local processes (both ends are this test's Python on loopback); replay
    // has no process facts. The rest is the same.
    let mut live = without_time(&live_events);
    let named = live[0]["process"]["name"] == "python3"
        && live[0]["tlsmon"]["local"]["side"] == "both"
        && live[0]["tlsmon"]["local"]["server_process"]["name"] == "python3";
    assert!(named, "live names the processes of both local ends: {}", live[0]);
    for field in ["process", "container", "service", "orchestrator"] {
        assert!(replayed.iter().all(|l| !l.contains(&format!("\"{field}\""))), "replay has no {field}");
        live[0].as_object_mut().expect("an object").remove(field);
    }
    live[0]["tlsmon"].as_object_mut().expect("tlsmon").remove("local");
    // Live names this host and the one interface it watches; replay names no host.
    assert!(live[0]["observer"]["hostname"].is_string(), "live observer: {}", live[0]);
    assert_eq!(live[0]["observer"]["ingress"]["interface"]["name"], "lo", "{}", live[0]);
    for o in ["hostname", "ingress"] {
        live[0]["observer"].as_object_mut().expect("observer").remove(o);
    }
    assert_eq!(without_time(&replayed), live, "replay of tcpdump's capture vs live");
    let ev = &without_time(&live_events)[0];
    assert_eq!(ev["type"], "plaintext", "{ev}");
    assert_eq!(ev["destination"]["port"], 6661, "{ev}");
    assert!(live_events[0].contains("plaintext.phi") && !live_events[0].contains("TESTPATIENT"), "{ev}");
    assert!(replay(&[]).is_empty(), "without the flag replay skips the flow, as the kernel would");
}

/// Once attached, tlsmon holds no capability (and cannot regain one), yet still reads the
/// ring buffer and counters and detaches cleanly.
#[test]
fn capabilities_are_dropped_after_attach() {
    require_root();
    let mut p = Proc::spawn(Command::new(TLSMON).args(["live", "--iface", "lo", "--duration", "2", "--stats"]), false);
    p.wait_stderr("tlsmon: live: attached tc to lo", Duration::from_secs(20));
    let status_file = format!("/proc/{}/status", p.child.id());
    let mut caps = Vec::new();
    // The drop follows the attached line at once; allow it a moment.
    for _ in 0..50 {
        let status = std::fs::read_to_string(&status_file).expect("read the child's status");
        caps = status
            .lines()
            .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs"))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if caps.iter().any(|l| l == "CapEff: 0000000000000000") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(caps.contains(&format!("{set}: 0000000000000000")), "{set} not empty: {caps:?}");
    }
    assert!(caps.contains(&"NoNewPrivs: 1".to_string()), "{caps:?}");
    let status = p.wait(Duration::from_secs(20));
    let err = p.all_stderr();
    assert!(status.success(), "exit {status}: {err}");
    assert!(err.contains("tlsmon: live: kernel counters"), "counters still readable: {err}");
}

#[test]
fn sigint_detaches_and_exits_zero() {
    require_root();
    let mut p = Proc::spawn(Command::new(TLSMON).args(["live", "--iface", "lo", "--format", "none"]), false);
    p.wait_stderr("tlsmon: live: attached tc to lo", Duration::from_secs(20));
    p.signal(libc::SIGINT);
    let status = p.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status} after SIGINT; stderr: {}", p.all_stderr());
}

#[test]
fn xdp_owned_by_another_program_is_explained() {
    require_root();
    let ns = Netns::new("livecli", "xdpbusy0");
    let mut first = Proc::spawn(&mut ns.tlsmon(&["live", "--xdp", "--iface", "xdpbusy0", "--duration", "5"]), false);
    let line = first.wait_stderr("tlsmon: live:", Duration::from_secs(20));
    assert_eq!(line, "tlsmon: live: attached xdp-skb to xdpbusy0 (ingress)");
    let out = ns.tlsmon(&["live", "--xdp", "--iface", "xdpbusy0", "--duration", "1"]).output().expect("second tlsmon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "the second attach must fail; stderr: {err}");
    assert!(err.contains("`xdpbusy0` already has an XDP program attached"), "stderr: {err}");
    assert!(err.contains("ip link set dev xdpbusy0 xdp off"), "stderr: {err}");
    assert!(!err.contains("tlsmon: live: attached"), "stderr: {err}");
    // The first one is untouched by the failed attempt and still exits cleanly.
    let status = first.wait(Duration::from_secs(20));
    assert!(status.success(), "first tlsmon exit {status}; stderr: {}", first.all_stderr());
}

/// `openssl s_server` on 127.0.0.1 with a fresh self-signed P-256 certificate for `live.test`.
struct TlsServer {
    port: u16,
    _server: Proc,
    _dir: TempDir,
}

impl TlsServer {
    fn start(tag: &str) -> TlsServer {
        let dir = TempDir::new(tag);
        let (key, cert) = (dir.0.join("key.pem"), dir.0.join("cert.pem"));
        let gen = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=live.test", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("run openssl req");
        assert!(gen.status.success(), "openssl req: {}", String::from_utf8_lossy(&gen.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let server = Proc::spawn(
            Command::new("openssl")
                .args(["s_server", "-quiet", "-accept", &format!("127.0.0.1:{port}")])
                .arg("-cert")
                .arg(&cert)
                .arg("-key")
                .arg(&key),
            false,
        );
        TlsServer { port, _server: server, _dir: dir }
    }

    /// One complete TLS 1.3 handshake with SNI `live.test`. The server needs a moment to
    /// listen, so the client is retried (a refused connect returns at once).
    fn handshake(&self) {
        for _ in 0..50 {
            let out = Command::new("timeout")
                .args(["10", "openssl", "s_client", "-connect", &format!("127.0.0.1:{}", self.port)])
                .args(["-servername", "live.test", "-tls1_3"])
                .stdin(Stdio::null())
                .output()
                .expect("run openssl s_client");
            if String::from_utf8_lossy(&out.stdout).contains("TLSv1.3") {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("openssl s_client never completed a handshake with port {}", self.port);
    }

    /// Is this JSON line the event of a handshake with this server?
    fn is_event(&self, line: &str) -> bool {
        line.contains(&format!("\"port\":{}", self.port)) && line.contains("live.test")
    }
}

/// The event line of `server`'s handshake from `mon`, or a panic with tlsmon's stats.
fn expect_event(mon: &mut Proc, server: &TlsServer, what: &str) -> String {
    match mon.wait_stdout(Duration::from_secs(15), |l| server.is_event(l)) {
        Ok(line) => line,
        Err(seen) => {
            mon.signal(libc::SIGTERM);
            let _ = mon.wait(Duration::from_secs(10));
            panic!(
                "{what}: no event for port {} within 15 s\nstdout: {seen:#?}\nstderr:\n{}",
                server.port,
                mon.all_stderr()
            );
        }
    }
}

fn live_on_lo() -> Proc {
    let mut mon =
        Proc::spawn(Command::new(TLSMON).args(["live", "--iface", "lo", "--duration", "30", "--stats"]), true);
    mon.wait_stderr("tlsmon: live: attached tc to lo", Duration::from_secs(20));
    mon
}

#[test]
fn loopback_handshake_is_printed_while_running() {
    require_root();
    let mut mon = live_on_lo();
    let server = TlsServer::start("livecli-pki");
    server.handshake();
    // The event comes out while tlsmon still runs (flushed per line), long before --duration.
    let line = expect_event(&mut mon, &server, "tlsmon on lo");
    assert!(mon.child.try_wait().expect("try_wait").is_none(), "tlsmon should still be running");
    let ev: serde_json::Value = serde_json::from_str(&line).expect("event is JSON");
    assert_eq!(ev["type"], "tls");
    assert_eq!(ev["destination"]["ip"], "127.0.0.1");
    assert_eq!(ev["destination"]["port"], server.port);
    assert_eq!(ev["tls"]["version"], "1.3");
    assert_eq!(ev["tls"]["client"]["server_name"], "live.test");
    assert_eq!(ev["tls"]["established"], true);
    // Wall-clock timestamp from the kernel's monotonic time: within a minute of now.
    let ts = ev["timestamp"].as_str().expect("timestamp string");
    let date = Command::new("date").args(["-u", "-d", ts, "+%s"]).output().expect("run date");
    let when: u64 = String::from_utf8_lossy(&date.stdout).trim().parse().expect("date +%s prints seconds");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs();
    assert!(now.abs_diff(when) < 60, "event time {ts} is not within a minute of now");
    mon.signal(libc::SIGTERM);
    let status = mon.wait(Duration::from_secs(10));
    assert!(status.success(), "exit {status}; stderr: {}", mon.all_stderr());
}

/// Fail open towards other TCX programs: one attached after tlsmon on the same hook must still
/// run. (A TCX program that returns anything but TCX_NEXT / TC_ACT_UNSPEC ends the chain.)
#[test]
fn later_tcx_programs_still_run() {
    require_root();
    let mut first = live_on_lo();
    let mut second = live_on_lo();
    let server = TlsServer::start("livecli-chain");
    server.handshake();
    expect_event(&mut first, &server, "the first tlsmon attached to lo");
    expect_event(
        &mut second,
        &server,
        "the second tlsmon attached to lo (after the first in the TCX chain; the first one's \
         program must return TCX_NEXT, not TC_ACT_PIPE, or the chain stops there)",
    );
    for mon in [&mut first, &mut second] {
        mon.signal(libc::SIGINT);
        let status = mon.wait(Duration::from_secs(10));
        assert!(status.success(), "exit {status}; stderr: {}", mon.all_stderr());
    }
}

/// The 30 MB mix `cargo xtask test` generates (target/test-data, or $TLSMON_TEST_DATA).
fn test_mix() -> std::path::PathBuf {
    let dir = match std::env::var_os("TLSMON_TEST_DATA") {
        Some(d) if !d.is_empty() => std::path::PathBuf::from(d),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-data"),
    };
    let mix = dir.join("mix.pcap");
    assert!(
        mix.is_file(),
        "{} missing: `cargo xtask test` generates it (or `cargo xtask gen --size-mb 30 --out {0}`)",
        mix.display()
    );
    mix
}

/// Lines of the audit log at `path` (0 if it does not exist yet).
fn audit_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("an audit line is JSON")).collect()
}

/// Complete lines in the audit log so far (the writer's buffer may end mid-line on disk).
fn audit_line_count(path: &std::path::Path) -> usize {
    std::fs::read(path).unwrap_or_default().iter().filter(|&&b| b == b'\n').count()
}

/// `tlsmon audit verify`: exit 0 and "OK: N lines, chain intact (last seq N, …".
fn assert_verifies(path: &std::path::Path, lines: usize) {
    let out = Command::new(TLSMON).args(["audit", "verify"]).arg(path).output().expect("run tlsmon audit verify");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with(&format!("OK: {lines} lines, chain intact (last seq {lines}, hash ")), "{text}");
}

/// SIGTERM while tcpreplay loops the generated mix onto the veth: tlsmon detaches and exits 0
/// within a few seconds, every event it printed is in the audit log (the last ones flushed at
/// exit) and the log verifies. A second tlsmon on the same log, under the same load, chains on
/// from the first run's last line (seq continues, prev = its hash) and the whole file verifies.
#[test]
fn sigterm_under_load_flushes_the_audit_log_and_a_restart_chains_on() {
    require_root();
    let ns = Netns::new("sig", "sigveth0");
    // The mix has 1518-byte frames (VLAN-tagged full-size segments).
    for dev in ["sigveth0", "sigveth0p"] {
        run(&["ip", "-n", &ns.name, "link", "set", dev, "mtu", "9000"]);
    }
    let dir = TempDir::new("livesig");
    let audit = dir.0.join("audit.jsonl");
    let audit_s = audit.to_str().expect("utf-8 path");
    // About 5 MB/s, bounded in loops and time; the guard stops it at the end.
    let mut replay = Command::new("ip");
    replay.args(["netns", "exec", &ns.name, "tcpreplay", "--intf1", "sigveth0p", "--mbps", "40", "--loop", "10"]);
    replay.args(["--duration", "120", "--no-flow-stats"]).arg(test_mix());
    let mut load = Proc::spawn(&mut replay, false);

    let mut runs = Vec::new();
    for round in 1..=2 {
        let before = audit_lines(&audit).len();
        let args = ["live", "--iface", "sigveth0", "--format", "json", "--audit-log", audit_s];
        let mut mon = Proc::spawn(&mut ns.tlsmon(&args), true);
        mon.wait_stderr("tlsmon: live: attached tc to sigveth0", Duration::from_secs(20));
        // Under load: lines reach the log (synced each second) while it runs.
        let end = Instant::now() + Duration::from_secs(15);
        while audit_line_count(&audit) < before + 20 {
            assert!(Instant::now() < end, "round {round}: no audit lines within 15 s; stderr: {}", mon.all_stderr());
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(load.child.try_wait().expect("try_wait").is_none(), "tcpreplay still sending at the SIGTERM");
        let t0 = Instant::now();
        mon.signal(libc::SIGTERM);
        let status = mon.wait(Duration::from_secs(10));
        let took = t0.elapsed();
        assert!(status.success(), "round {round}: exit {status} after SIGTERM; stderr: {}", mon.all_stderr());
        assert!(took < Duration::from_secs(5), "round {round}: SIGTERM to exit took {took:?}");
        let printed = mon.stdout.take().expect("stdout captured").iter().count();
        let lines = audit_lines(&audit);
        assert!(printed > 0, "round {round}: no events");
        assert_eq!(lines.len() - before, printed, "round {round}: every event printed is in the audit log");
        assert_verifies(&audit, lines.len());
        eprintln!(
            "round {round}: SIGTERM under load, exit 0 in {took:?}; {printed} events, audit log now {} lines",
            lines.len()
        );
        runs.push((before, lines));
    }
    let (_, first) = &runs[0];
    let (before, all) = &runs[1];
    assert_eq!(*before, first.len());
    assert_eq!(&all[..first.len()], &first[..], "the restart rewrote nothing");
    let (last, next) = (&first[first.len() - 1], &all[first.len()]);
    assert_eq!(next["seq"].as_u64(), Some(first.len() as u64 + 1), "seq continues across the restart");
    assert_eq!(next["prev"], last["hash"], "the restart's first line chains to the first run's last");
}
