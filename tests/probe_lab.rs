//! Privileged end-to-end tests of the opt-in certificate prober (issue 14) in network-namespace
//! labs (`tlsmon-prb-…`, 10.214.0.0/16 and fd14:214::/64): real TLS 1.3 servers whose
//! certificates a passive monitor cannot see, stock clients, `tlsmon live --probe` in mon
//! (which routes between them), and `tlsmon replay --probe` of a generated capture of 200
//! handshakes. What the prober did is proven from the servers' side — tcpdump in the server
//! namespace, or the test's own listeners timing every accept — not only from tlsmon's events.
//! Must never be skipped (root, as in CI) nor leave a namespace, process or thread behind: the
//! lab and every server handle clean up on drop, on every exit path.
mod ecs_check;
mod lab;

use std::{
    collections::BTreeMap,
    fs::{self, File},
    net::{IpAddr, SocketAddr},
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{bail, ensure, Context as _, Result};
use lab::{
    crowd::{self, Crowd},
    plain::phi_leaks,
    probe::{Face, Kind, ProbeServer, TwoFaced, EXPIRED_SNI},
    wire::{self, Handshake},
    Family, Lab, Live, Mode, Plan,
};
use serde_json::Value;

fn tlsmon() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_tlsmon"))
}

/// Clients per target in the scope test: the prober must still connect once.
const CONNECTIONS: usize = 3;
/// Most time from a client's first handshake to the probe event about that server.
const PROBE_LATENCY_LIMIT: Duration = Duration::from_secs(5);
/// Most time to wait for the probe events a test expects.
const EVENT_WAIT: Duration = Duration::from_secs(20);

/// Events with when they arrived.
type Events = Vec<(Instant, Value)>;

/// `tlsmon live` and every event it printed, with when it arrived.
struct Watch {
    live: Live,
    got: Events,
}

impl Watch {
    fn new(live: Live) -> Watch {
        Watch { live, got: Vec::new() }
    }

    /// Takes every event available, waiting at most `wait` for the first.
    fn pump(&mut self, wait: Duration) -> Result<()> {
        let mut w = wait;
        while let Some(ev) = self.live.next_event(w)? {
            self.got.push((Instant::now(), ev));
            w = Duration::ZERO;
        }
        Ok(())
    }

    /// Pumps until `done` holds or `limit` passed; whether it holds.
    fn until(&mut self, limit: Duration, done: impl Fn(&[(Instant, Value)]) -> bool) -> Result<bool> {
        let deadline = Instant::now() + limit;
        while !done(&self.got) {
            if Instant::now() >= deadline {
                return Ok(false);
            }
            lab::check_stop()?;
            self.pump(Duration::from_millis(50))?;
        }
        Ok(true)
    }

    /// SIGINT; every event (late ones stamped now), stderr, and a check that tlsmon exited
    /// cleanly and never panicked.
    fn stop(self) -> Result<(Events, Vec<String>)> {
        let mut got = self.got;
        let stopped = self.live.stop()?;
        let now = Instant::now();
        got.extend(stopped.events.into_iter().map(|e| (now, e)));
        let stderr = stopped.stderr;
        ensure!(
            stopped.status.success(),
            "tlsmon live exited with {} after SIGINT; stderr:\n{}",
            stopped.status,
            stderr.join("\n")
        );
        ensure!(!stderr.iter().any(|l| l.contains("panicked")), "tlsmon panicked; stderr:\n{}", stderr.join("\n"));
        Ok((got, stderr))
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn is_probe(ev: &Value) -> bool {
    str_at(ev, "/type") == Some("probe")
}

fn is_tls(ev: &Value) -> bool {
    str_at(ev, "/type") == Some("tls")
}

fn addr_at(ev: &Value, side: &str) -> Option<SocketAddr> {
    let ip: IpAddr = str_at(ev, &format!("/{side}/ip"))?.parse().ok()?;
    let port = ev.pointer(&format!("/{side}/port")).and_then(Value::as_u64)?;
    Some(SocketAddr::new(ip, u16::try_from(port).ok()?))
}

fn finding_ids(ev: &Value) -> Vec<&str> {
    ev.get("findings").and_then(Value::as_array).into_iter().flatten().filter_map(|f| str_at(f, "/id")).collect()
}

fn finding<'a>(ev: &'a Value, id: &str) -> Option<&'a Value> {
    ev.get("findings").and_then(Value::as_array)?.iter().find(|f| str_at(f, "/id") == Some(id))
}

/// Probe events about `target`.
fn probes_of(got: &[(Instant, Value)], target: SocketAddr) -> Vec<(Instant, &Value)> {
    got.iter().filter(|(_, e)| is_probe(e) && addr_at(e, "destination") == Some(target)).map(|(t, e)| (*t, e)).collect()
}
/// Probe events are ECS too (tests/ecs_check), under event.dataset tlsmon.probe: one line per
/// event that is not.
fn not_ecs(got: &[(Instant, Value)]) -> Vec<String> {
    let (reference, legacy) = (ecs_check::reference(), ecs_check::documented_legacy());
    let mut problems = Vec::new();
    for (_, ev) in got {
        let mut bad = ecs_check::problems(&reference, ev, Some(&legacy));
        if is_probe(ev)
            && (str_at(ev, "/event/dataset") != Some("tlsmon.probe") || ev.pointer("/tlsmon/probe").is_none())
        {
            bad.push("a probe event without event.dataset tlsmon.probe and tlsmon.probe".to_string());
        }
        if !bad.is_empty() {
            problems.push(format!("not ECS: {bad:?} in {ev}"));
        }
    }
    problems
}

/// The events as JSON lines (for the PHI check and failure messages).
fn dump(got: &[(Instant, Value)]) -> String {
    got.iter().map(|(_, e)| format!("{e}\n")).collect()
}

/// `CIDR:PORTS` for one address (brackets for IPv6).
fn rule(ip: IpAddr, ports: &str) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}/32:{ports}"),
        IpAddr::V6(a) => format!("[{a}/128]:{ports}"),
    }
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().context("lab dir path is not UTF-8")
}

/// Drops the lab and checks its namespaces and dir are gone.
fn teardown(lab: Lab) -> Result<()> {
    let names = [lab.client_ns.clone(), lab.mon_ns.clone(), lab.server_ns.clone()];
    ensure!(names.iter().all(|n| n.starts_with("tlsmon-prb-")), "probe labs are named tlsmon-prb-…: {names:?}");
    let dir = lab.dir.clone();
    drop(lab);
    for n in &names {
        ensure!(!Path::new("/run/netns").join(n).exists(), "{n} left behind");
    }
    ensure!(!dir.exists(), "{} left behind", dir.display());
    Ok(())
}

/// One server of the scope test and whether the prober may contact it.
struct Target {
    label: &'static str,
    addr: SocketAddr,
    sni: &'static str,
    in_scope: bool,
}

/// Issue 14, "must show" 1, 2 and 7. TLS 1.3 servers with an expired self-signed certificate
/// and with a valid lab-CA chain, each reached by several clients over IPv4 and IPv6: the
/// prober reports `tls.cert.expired` and `tls.cert.self-signed` for the first, no `tls.cert.*`
/// for the second, within seconds, each server once. Servers seen passively outside the
/// allowlist (another address, another port) or inside it but denied are never contacted:
/// tcpdump in the server namespace sees exactly the clients' connections there, and exactly
/// one connection from mon (the prober) per allowed server. No fake PHI in the output.
#[test]
fn probe_reports_hidden_tls13_certificates_once_and_only_in_scope() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create_with(Plan::PROBE)?;
    lab.make_probe_certs()?;
    let servers = [
        ProbeServer { name: "expired", kind: Kind::Expired, port: 8443, sni: EXPIRED_SNI },
        ProbeServer { name: "valid", kind: Kind::Valid, port: 9443, sni: "valid.lab.test" },
        ProbeServer { name: "denied", kind: Kind::Valid, port: 9444, sni: "other.lab.test" },
        ProbeServer { name: "outside-port", kind: Kind::Valid, port: 7443, sni: "other.lab.test" },
    ];
    for s in &servers {
        lab.start_probe_server(s, false)?;
    }
    // A second server address, outside the allow rules (which name the first one only).
    lab.add_server_addr(3)?;
    let mut targets = Vec::new();
    for f in Family::BOTH {
        let (main, other) = (lab.server_addr(f), lab.server_subnet_addr(f, 3));
        for s in &servers {
            targets.push(Target {
                label: s.name,
                addr: SocketAddr::new(main, s.port),
                sni: s.sni,
                in_scope: s.port != 9444 && s.port != 7443,
            });
        }
        targets.push(Target {
            label: "outside-addr",
            addr: SocketAddr::new(other, 8443),
            sni: EXPIRED_SNI,
            in_scope: false,
        });
    }
    let addrs: Vec<SocketAddr> = targets.iter().map(|t| t.addr).collect();
    lab.wait_accepting(&addrs)?;
    // From here every connection to the servers is recorded on their side.
    let capture = lab.start_server_capture("capture")?;

    let ca = lab.dir.join("ca.pem");
    let mut args = vec!["--probe".to_string()];
    for f in Family::BOTH {
        args.extend(["--probe-allow".into(), rule(lab.server_addr(f), "8443,9443-9444")]);
        args.extend(["--probe-deny".into(), rule(lab.server_addr(f), "9444")]);
    }
    args.extend(["--ca-bundle".into(), path_str(&ca)?.into(), "--listen".into(), "127.0.0.1:9864".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut watch = Watch::new(lab.start_live(tlsmon(), Mode::Tc, &args)?);
    let attached = start.elapsed();

    // Every target gets CONNECTIONS clients, one target after the other.
    let mut first_client = BTreeMap::new();
    for t in &targets {
        for k in 0..CONNECTIONS {
            if k == 0 {
                first_client.insert(t.addr, Instant::now());
            }
            lab.s_client13(&format!("client-{}-{}-{k}", t.label, t.addr.ip()), t.addr, t.sni, &[])?;
            watch.pump(Duration::ZERO)?;
        }
    }
    let clients_done = start.elapsed();
    let want_probes: Vec<SocketAddr> = targets.iter().filter(|t| t.in_scope).map(|t| t.addr).collect();
    let all_in = watch.until(EVENT_WAIT, |got| want_probes.iter().all(|&a| !probes_of(got, a).is_empty()))?;
    // Long enough for a second probe of the same server to show, were there one.
    watch.pump(Duration::from_secs(3))?;
    let metrics = lab
        .cmd(&lab.mon_ns, "curl", &["-sS", "--max-time", "5", "http://127.0.0.1:9864/metrics"])
        .output()
        .context("curl in mon")?;
    let metrics = String::from_utf8_lossy(&metrics.stdout).into_owned();
    let (got, stderr) = watch.stop()?;
    let syns = lab.stop_server_capture("capture", &capture)?;

    let mut problems = Vec::new();
    if !all_in {
        problems.push(format!("not every in-scope server was probed within {EVENT_WAIT:?}"));
    }
    let mut latencies = Vec::new();
    for t in &targets {
        let probes = probes_of(&got, t.addr);
        let want = usize::from(t.in_scope);
        if probes.len() != want {
            problems.push(format!("{} {}: {} probe event(s), expected {want}", t.label, t.addr, probes.len()));
        }
        // Every client handshake was seen passively.
        let client = lab.client_addr(if t.addr.is_ipv4() { Family::V4 } else { Family::V6 });
        let passive = got
            .iter()
            .filter(|(_, e)| is_tls(e) && addr_at(e, "destination") == Some(t.addr))
            .filter(|(_, e)| addr_at(e, "source").map(|s| s.ip()) == Some(client))
            .count();
        if passive != CONNECTIONS {
            problems.push(format!(
                "{} {}: {passive} passive tls event(s) from the client, expected {CONNECTIONS}",
                t.label, t.addr
            ));
        }
        let Some(&(arrived, ev)) = probes.first() else { continue };
        let latency = arrived.duration_since(first_client[&t.addr]);
        latencies.push(format!("{} {}: {:.2} s", t.label, t.addr, latency.as_secs_f64()));
        if latency > PROBE_LATENCY_LIMIT {
            problems.push(format!(
                "{} {}: probe event {latency:?} after the first client (limit {PROBE_LATENCY_LIMIT:?})",
                t.label, t.addr
            ));
        }
        problems.extend(check_scope_probe(t, ev).into_iter().map(|p| format!("{} {}: {p}", t.label, t.addr)));
    }

    // The servers' side: every connection attempt, by whom.
    let mut want_syns = BTreeMap::new();
    for t in &targets {
        let f = if t.addr.is_ipv4() { Family::V4 } else { Family::V6 };
        want_syns.insert((lab.client_addr(f), t.addr.ip(), t.addr.port()), CONNECTIONS);
        if t.in_scope {
            want_syns.insert((lab.mon_server_side_addr(f), t.addr.ip(), t.addr.port()), 1);
        }
    }
    let seen_syns = wire::count_syns(&syns);
    if seen_syns != want_syns {
        problems.push(format!(
            "connections seen by the servers (tcpdump in {}) differ:\n    seen {seen_syns:?}\n    want {want_syns:?}",
            lab.server_ns
        ));
    }

    let ok_probes = metric(&metrics, "tlsmon_probes_total{result=\"ok\"}");
    if ok_probes != Some(want_probes.len() as f64) {
        problems.push(format!("tlsmon_probes_total{{result=\"ok\"}} = {ok_probes:?}, expected {}", want_probes.len()));
    }
    problems.extend(not_ecs(&got));
    let text = dump(&got);
    let leaks = phi_leaks(&text);
    if !leaks.is_empty() {
        problems.push(format!("fake PHI in the events: {leaks:?}"));
    }
    // The capture sees the prober's own connections too: they are not traffic to report.
    let own = got
        .iter()
        .filter(|(_, e)| {
            let src = addr_at(e, "source").map(|s| s.ip());
            is_tls(e) && Family::BOTH.iter().any(|&f| src == Some(lab.mon_server_side_addr(f)))
        })
        .count();
    if own != 0 {
        problems.push(format!("{own} tls event(s) of the prober's own handshakes, expected none"));
    }
    let own_dropped = metric(&metrics, "tlsmon_dropped_total{what=\"probe_own_flows\"}");
    eprintln!(
        "scope: attached {:.1} s, {} clients done {:.1} s, total {:.1} s; probe latencies (first client → probe event): {}; \
         {} connection attempts seen by the servers; the prober's own flows not reported: {own_dropped:?}",
        attached.as_secs_f64(),
        targets.len() * CONNECTIONS,
        clients_done.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        latencies.join(", "),
        syns.len(),
    );
    if !problems.is_empty() {
        bail!(
            "{} problem(s):\n  {}\nevents:\n  {}\nprobe metrics:\n{}\ntlsmon stderr:\n{}",
            problems.len(),
            problems.join("\n  "),
            got.iter().map(|(_, e)| lab::summary(e)).collect::<Vec<_>>().join("\n  "),
            metrics.lines().filter(|l| l.contains("probe")).collect::<Vec<_>>().join("\n"),
            stderr.join("\n")
        );
    }
    teardown(lab)
}

/// A probe event of the scope test against what the server really holds.
fn check_scope_probe(t: &Target, ev: &Value) -> Vec<String> {
    let mut p = Vec::new();
    let mut expect = |ptr: &str, want: &str| {
        if str_at(ev, ptr) != Some(want) {
            p.push(format!("{ptr} = {:?}, expected {want:?}", str_at(ev, ptr)));
        }
    };
    expect("/probe/result", "ok");
    expect("/probe/server_name", t.sni);
    expect("/tls/version", "1.3");
    let ids = finding_ids(ev);
    let cert: Vec<&str> = ids.iter().copied().filter(|i| i.starts_with("tls.cert.")).collect();
    match t.label {
        "expired" => {
            expect("/tls/server/x509/not_after", lab::EXPIRED_NOT_AFTER);
            expect("/tls/server/x509/subject/common_name", EXPIRED_SNI);
            // Untrusted too: --ca-bundle holds the lab CA, not this self-signed certificate.
            let mut cert = cert.clone();
            cert.sort_unstable();
            if cert != ["tls.cert.expired", "tls.cert.self-signed", "tls.cert.untrusted"] {
                p.push(format!(
                    "certificate findings {cert:?}, expected [tls.cert.expired, tls.cert.self-signed, tls.cert.untrusted]"
                ));
            }
        }
        _ => {
            expect("/tls/server/x509/subject/common_name", "valid.lab.test");
            expect("/tls/server/x509/issuer/common_name", lab::CA_CN);
            if !cert.is_empty() {
                p.push(format!("certificate findings {cert:?} for a valid lab-CA chain, expected none"));
            }
            if ev.pointer("/tls/server/chain_trusted").and_then(Value::as_bool) != Some(true) {
                p.push(format!(
                    "/tls/server/chain_trusted = {:?}, expected true (--ca-bundle)",
                    ev.pointer("/tls/server/chain_trusted")
                ));
            }
        }
    }
    if ids.iter().any(|i| i.starts_with("probe.")) {
        p.push(format!("probe.* finding on a successful probe: {ids:?}"));
    }
    p
}

/// A sample's value from a Prometheus text exposition (`name{labels} value`).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// `--probe` with no allow rule is refused before anything starts, naming `--probe-allow`
/// (live and replay). The generated handshake capture replays as one TLS 1.3 handshake.
#[test]
fn probe_without_an_allow_rule_is_refused() -> Result<()> {
    let lab = Lab::create_with(Plan::PROBE)?;
    let pcap = lab.dir.join("one.pcap");
    let server = SocketAddr::new(lab.server_addr(Family::V4), 8443);
    let client = SocketAddr::new(lab.client_addr(Family::V4), 40000);
    fs::write(&pcap, wire::tls13_handshakes_pcap(&[Handshake { client, server, sni: "one.lab.test".into() }])?)?;
    let pcap = path_str(&pcap)?;
    let bin = tlsmon().to_str().context("tlsmon path")?;

    let out = lab.cmd(&lab.client_ns, bin, &["replay", "--format", "json", pcap]).output()?;
    ensure!(out.status.success(), "replay: {}", String::from_utf8_lossy(&out.stderr));
    let events: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    ensure!(events.len() == 1, "one event from the generated handshake: {events:?}");
    let ev = &events[0];
    ensure!(
        str_at(ev, "/tls/version") == Some("1.3") && str_at(ev, "/tls/client/server_name") == Some("one.lab.test"),
        "{ev}"
    );
    ensure!(addr_at(ev, "destination") == Some(server), "{ev}");

    for (name, args) in [
        ("replay", vec!["replay", "--format", "json", "--probe", pcap]),
        ("live", vec!["live", "--format", "json", "--iface", lab::MON_SERVER_IF, "--probe", "--duration", "5"]),
    ] {
        let ns = if name == "live" { &lab.mon_ns } else { &lab.client_ns };
        let status = lab.run(&format!("no-allow-{name}"), ns, bin, &args, Duration::from_secs(30))?;
        let log = lab.log(&format!("no-allow-{name}"));
        ensure!(!status.success(), "{name} --probe without --probe-allow exited {status}: {log}");
        ensure!(log.contains("--probe-allow"), "{name}: the refusal names --probe-allow: {log}");
        ensure!(!log.contains("attached"), "{name}: refused before attaching: {log}");
    }
    teardown(lab)
}

/// Issue 14, "must show" 3. `tlsmon replay --probe` of a capture of 200 TLS 1.3 handshakes to
/// 200 servers (one address, 200 ports, all allowed) at `--probe-rate 20 --probe-concurrency 3`:
/// the test's own listeners time every connection. A third of them hold the connection 300 ms
/// (so without the cap about six would be open at once), the rest close at once (so the rate is
/// what paces them). Each server is contacted once; no window of one second holds more than
/// 20 new connections; never more than 3 are open at once.
#[test]
fn probe_queue_of_200_servers_keeps_rate_and_concurrency() -> Result<()> {
    const N: u16 = 200;
    const BASE: u16 = 20000;
    const RATE: usize = 20;
    const CAP: usize = 3;
    fn hold(port: u16) -> Duration {
        if (port - BASE).is_multiple_of(3) {
            Duration::from_millis(300)
        } else {
            Duration::ZERO
        }
    }
    let mut lab = Lab::create_with(Plan::PROBE)?;
    let (server, client) = (lab.server_addr(Family::V4), lab.client_addr(Family::V4));
    let crowd = Crowd::start(&lab, server, BASE..BASE + N, hold)?;
    let handshakes: Vec<Handshake> = (0..N)
        .map(|i| Handshake {
            client: SocketAddr::new(client, 40000 + i),
            server: SocketAddr::new(server, BASE + i),
            sni: format!("s{i}.crowd.lab.test"),
        })
        .collect();
    let pcap = lab.dir.join("crowd.pcap");
    fs::write(&pcap, wire::tls13_handshakes_pcap(&handshakes)?)?;
    let allow = rule(server, &format!("{BASE}-{}", BASE + N - 1));
    let (rate, cap) = (RATE.to_string(), CAP.to_string());
    let args = [
        "replay",
        "--format",
        "json",
        "--probe",
        "--probe-allow",
        &allow,
        "--probe-rate",
        &rate,
        "--probe-concurrency",
        &cap,
        "--probe-timeout",
        "1",
        path_str(&pcap)?,
    ];
    let (out_path, err_path) = (lab.dir.join("crowd.out"), lab.dir.join("crowd.err"));
    let capture = lab.start_server_capture("capture")?;
    let start = Instant::now();
    let mut child = lab
        .cmd(&lab.client_ns, tlsmon().to_str().context("tlsmon path")?, &args)
        .stdout(Stdio::from(File::create(&out_path)?))
        .stderr(Stdio::from(File::create(&err_path)?))
        .spawn()
        .context("starting tlsmon replay --probe")?;
    let status = lab::wait_timeout(&mut child, Duration::from_secs(120))?;
    let took = start.elapsed();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    // Connections the prober may still have open end with the crowd's holds.
    std::thread::sleep(Duration::from_millis(400));
    let contacts = crowd.contacts();
    drop(crowd);
    let syns = lab.stop_server_capture("capture", &capture)?;
    let out = fs::read_to_string(&out_path)?;
    let err = fs::read_to_string(&err_path)?;
    let status = status.with_context(|| format!("tlsmon replay --probe still running after 120 s; stderr:\n{err}"))?;
    ensure!(status.success(), "tlsmon replay --probe exited {status}; stderr:\n{err}");
    ensure!(!err.contains("panicked"), "tlsmon panicked:\n{err}");
    let events: Vec<Value> =
        out.lines().map(serde_json::from_str).collect::<Result<_, _>>().context("stdout is JSON lines")?;

    let mut problems = Vec::new();
    let mut per_port = BTreeMap::new();
    for c in &contacts {
        *per_port.entry(c.port).or_insert(0usize) += 1;
        if c.peer != client {
            problems
                .push(format!("connection from {} to port {}, expected only the prober at {client}", c.peer, c.port));
        }
    }
    let missing: Vec<u16> = (BASE..BASE + N).filter(|p| !per_port.contains_key(p)).collect();
    let repeated: Vec<(&u16, &usize)> = per_port.iter().filter(|(_, &n)| n != 1).collect();
    if !missing.is_empty() || !repeated.is_empty() {
        problems.push(format!(
            "each server once: {} never contacted {missing:?}, contacted more than once {repeated:?}",
            missing.len()
        ));
    }
    // Connections started, by the kernel's clock (tcpdump: the prober's SYNs as they arrived)
    // and by the listeners' (accept), and how many were open at once.
    let mut syn_times: Vec<Duration> = syns.iter().filter(|(s, _)| s.src == client).map(|(_, t)| *t).collect();
    syn_times.sort();
    let syn_times: Vec<Duration> = syn_times.iter().map(|t| *t - syn_times[0]).collect();
    let accepts = crowd::accept_times(&contacts);
    let second = Duration::from_secs(1);
    let (syn_window, accept_window) =
        (crowd::max_in_window(&syn_times, second), crowd::max_in_window(&accepts, second));
    let (syn_span, syn_gap) = (crowd::min_span(&syn_times, RATE + 1), crowd::min_span(&syn_times, 2));
    let (accept_span, accept_gap) = (crowd::min_span(&accepts, RATE + 1), crowd::min_span(&accepts, 2));
    let open = crowd::max_open(&contacts);
    if syn_times.len() != N as usize {
        let ports: std::collections::BTreeSet<u16> = syns.iter().map(|(s, _)| s.dst_port).collect();
        let missing: Vec<u16> = (BASE..BASE + N).filter(|p| !ports.contains(p)).collect();
        problems.push(format!(
            "{} SYNs from the prober captured, expected {N}: none to {missing:?}; tcpdump: {}",
            syn_times.len(),
            lab.log("capture").trim()
        ));
    }
    if syn_window > RATE {
        problems.push(format!(
            "{syn_window} connections started within one second (SYNs, kernel time), --probe-rate {RATE}: \
             {} consecutive ones within {syn_span:?}, consecutive SYNs as close as {syn_gap:?}",
            RATE + 1
        ));
    }
    if open > CAP {
        problems.push(format!("{open} connections open at once, --probe-concurrency {CAP}"));
    }
    let probes: Vec<&Value> = events.iter().filter(|e| is_probe(e)).collect();
    let mut results = BTreeMap::new();
    for e in &probes {
        *results.entry(str_at(e, "/probe/result").unwrap_or("?").to_string()).or_insert(0usize) += 1;
    }
    if probes.len() != N as usize {
        problems.push(format!("{} probe events, expected {N}", probes.len()));
    }
    if results.contains_key("ok") || results.contains_key("?") {
        problems.push(format!("results {results:?}: no crowd server speaks TLS"));
    }
    let tls = events.iter().filter(|e| is_tls(e)).count();
    if tls != N as usize {
        problems.push(format!("{tls} tls events from the capture, expected {N}"));
    }
    eprintln!(
        "crowd: replay took {:.1} s; {} connections over {:.1} s; most started in any 1 s: {syn_window} by SYN time, \
         {accept_window} by accept time (rate {RATE}); shortest span of {} consecutive starts: {syn_span:?} (SYN), \
         {accept_span:?} (accept); shortest gap: {syn_gap:?} (SYN), {accept_gap:?} (accept); most open at once {open} \
         (cap {CAP}); probe results {results:?}",
        took.as_secs_f64(),
        contacts.len(),
        syn_times.last().copied().unwrap_or_default().as_secs_f64(),
        RATE + 1,
    );
    if !problems.is_empty() {
        bail!("{} problem(s):\n  {}\ntlsmon stderr:\n{err}", problems.len(), problems.join("\n  "));
    }
    ensure!(phi_leaks(&out).is_empty(), "fake PHI in the events");
    teardown(lab)
}

/// Issue 14, "must show" 4. Two allowed TLS 1.3 servers the prober cannot get an answer from:
/// one blackholed for mon's own connections (policy route; the clients still reach it) and one
/// that serves the clients but never answers the prober. Each gives a probe event (unreachable
/// or timeout, with a `probe.*` finding), the hanging one only after `--probe-timeout`; while
/// it hangs, handshakes to another server still show up as events within a second or two.
#[test]
fn probe_timeouts_do_not_stall_live_capture() -> Result<()> {
    const TIMEOUT_S: u64 = 4;
    let start = Instant::now();
    let mut lab = Lab::create_with(Plan::PROBE)?;
    lab.make_probe_certs()?;
    let plain13 = ProbeServer { name: "valid", kind: Kind::Valid, port: 8445, sni: "unreach.lab.test" };
    let upstream = ProbeServer { name: "hang-upstream", kind: Kind::Valid, port: 18446, sni: "hang.lab.test" };
    lab.start_probe_server(&plain13, false)?;
    lab.start_probe_server(&upstream, true)?;
    let hang = TwoFaced::start(&lab, 8446, upstream.port, Face::Hang)?;
    lab.add_server_addr(4)?;
    let (main, dark) = (lab.server_addr(Family::V4), lab.server_subnet_addr(Family::V4, 4));
    let hang_addr = SocketAddr::new(main, hang.port);
    let dark_addr = SocketAddr::new(dark, plain13.port);
    let other_addr = SocketAddr::new(main, plain13.port);
    lab.wait_accepting(&[other_addr, dark_addr])?;
    lab.blackhole_from_mon(dark)?;

    let timeout = TIMEOUT_S.to_string();
    let (a1, a2) = (rule(dark, "8445"), rule(main, "8446"));
    let args = ["--probe", "--probe-allow", &a1, "--probe-allow", &a2, "--probe-timeout", &timeout];
    let mut watch = Watch::new(lab.start_live(tlsmon(), Mode::Tc, &args)?);

    lab.s_client13("client-hang", hang_addr, "hang.lab.test", &[])?;
    lab.s_client13("client-dark", dark_addr, "unreach.lab.test", &[])?;
    // The prober's connection reached the hanging server: from now on it waits.
    let hung = watch.until(Duration::from_secs(10), |_| hang.accepted().iter().any(|a| !a.relayed))?;
    ensure!(hung, "the prober never connected to the hanging server; accepts {:?}", hang.accepted());
    let hung_at = hang.accepted().iter().find(|a| !a.relayed).map(|a| a.at).context("prober accept")?;

    // Other flows meanwhile: each event must come promptly (from the client's start to the
    // event), all before the hanging probe ends.
    let mut other = Vec::new();
    for k in 0..5 {
        let began = Instant::now();
        lab.s_client13(&format!("client-other-{k}"), other_addr, "valid.lab.test", &[])?;
        let want = k + 1;
        let seen = |got: &[(Instant, Value)]| {
            got.iter().filter(|(_, e)| is_tls(e) && addr_at(e, "destination") == Some(other_addr)).count() >= want
        };
        ensure!(watch.until(Duration::from_secs(3), seen)?, "no event for other-flow handshake {k} within 3 s of it");
        let arrived = watch
            .got
            .iter()
            .filter(|(_, e)| is_tls(e) && addr_at(e, "destination") == Some(other_addr))
            .nth(k)
            .map(|(t, _)| *t);
        other.push(arrived.context("other event")?.saturating_duration_since(began));
        watch.pump(Duration::from_millis(300))?;
    }
    let other_done = Instant::now();
    let both =
        |got: &[(Instant, Value)]| !probes_of(got, hang_addr).is_empty() && !probes_of(got, dark_addr).is_empty();
    let all_in = watch.until(EVENT_WAIT, both)?;
    let (got, stderr) = watch.stop()?;

    let mut problems = Vec::new();
    if !all_in {
        problems.push(format!("not both probe events within {EVENT_WAIT:?}"));
    }
    let worst = other.iter().max().copied().unwrap_or_default();
    if worst > Duration::from_secs(2) {
        problems.push(format!("other-flow events took up to {worst:?} while a probe hung"));
    }
    let hang_probes = probes_of(&got, hang_addr);
    let dark_probes = probes_of(&got, dark_addr);
    if hang_probes.len() != 1 || dark_probes.len() != 1 {
        problems.push(format!(
            "{} hang and {} blackholed probe events, expected 1 each",
            hang_probes.len(),
            dark_probes.len()
        ));
    }
    let mut hang_wait = None;
    if let Some(&(arrived, ev)) = hang_probes.first() {
        let waited = arrived.duration_since(hung_at);
        hang_wait = Some(waited);
        if str_at(ev, "/probe/result") != Some("timeout") {
            problems.push(format!("hanging server: result {:?}, expected timeout", str_at(ev, "/probe/result")));
        }
        if waited < Duration::from_secs(TIMEOUT_S) - Duration::from_millis(300)
            || waited > Duration::from_secs(TIMEOUT_S + 3)
        {
            problems.push(format!(
                "hanging server: probe event {waited:?} after the prober connected, --probe-timeout {TIMEOUT_S}"
            ));
        }
        if arrived < other_done {
            problems.push("the hanging probe ended before the other flows were checked: nothing was shown".into());
        }
        problems.extend(
            failure_finding(ev, &["probe.unreachable", "probe.failed"]).map(|p| format!("hanging server: {p}")),
        );
    }
    if let Some(&(_, ev)) = dark_probes.first() {
        let r = str_at(ev, "/probe/result");
        if !matches!(r, Some("unreachable" | "timeout")) {
            problems.push(format!("blackholed server: result {r:?}, expected unreachable or timeout"));
        }
        problems.extend(failure_finding(ev, &["probe.unreachable"]).map(|p| format!("blackholed server: {p}")));
    }
    let prober_accepts = hang.accepted().iter().filter(|a| !a.relayed).count();
    if prober_accepts != 1 {
        problems.push(format!("the hanging server saw {prober_accepts} prober connections, expected 1"));
    }
    let text = dump(&got);
    if !phi_leaks(&text).is_empty() {
        problems.push(format!("fake PHI in the events: {:?}", phi_leaks(&text)));
    }
    eprintln!(
        "timeouts: other-flow handshakes while the probe hung, client start → event {:?}; hanging probe reported {:?} after connect \
         (timeout {TIMEOUT_S} s); total {:.1} s",
        other.iter().map(|d| format!("{:.0} ms", d.as_secs_f64() * 1e3)).collect::<Vec<_>>(),
        hang_wait,
        start.elapsed().as_secs_f64()
    );
    for (_, e) in got.iter().filter(|(_, e)| is_probe(e)) {
        eprintln!("  {e}");
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s):\n  {}\nevents:\n{text}\ntlsmon stderr:\n{}",
            problems.len(),
            problems.join("\n  "),
            stderr.join("\n")
        );
    }
    drop(hang);
    teardown(lab)
}

/// One of `ids` among the findings, with a non-empty evidence string; else what is wrong.
fn failure_finding(ev: &Value, ids: &[&str]) -> Option<String> {
    let Some(f) = ids.iter().find_map(|id| finding(ev, id)) else {
        return Some(format!("findings {:?}, expected one of {ids:?}", finding_ids(ev)));
    };
    match str_at(f, "/evidence") {
        Some(e) if !e.trim().is_empty() => None,
        _ => Some(format!("finding without evidence: {f}")),
    }
}

/// Issue 14, "must show" 5. A server that answers the prober with garbage (an HTTP error and an
/// HL7 message with a fake patient) and one whose certificate is about 80 KB: each probe ends
/// in a clear failure (`probe.failed` with evidence) or is reported with an anomaly, tlsmon goes
/// on judging other handshakes, never panics, and repeats none of the garbage.
#[test]
fn probe_garbage_and_huge_certificate_fail_cleanly() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create_with(Plan::PROBE)?;
    lab.make_probe_certs()?;
    let upstream = ProbeServer { name: "garbage-upstream", kind: Kind::Valid, port: 18449, sni: "garbage.lab.test" };
    let huge = ProbeServer { name: "huge", kind: Kind::Huge, port: 8450, sni: "huge.lab.test" };
    let control = ProbeServer { name: "control", kind: Kind::Valid, port: 8451, sni: "valid.lab.test" };
    lab.start_probe_server(&upstream, true)?;
    lab.start_probe_server(&huge, false)?;
    lab.start_probe_server(&control, false)?;
    let garbage = TwoFaced::start(&lab, 8449, upstream.port, Face::Garbage)?;
    let main = lab.server_addr(Family::V4);
    let (garbage_addr, huge_addr, control_addr) =
        (SocketAddr::new(main, garbage.port), SocketAddr::new(main, huge.port), SocketAddr::new(main, control.port));
    lab.wait_accepting(&[huge_addr, control_addr])?;

    let allow = rule(main, "8449,8450");
    let mut watch = Watch::new(lab.start_live(tlsmon(), Mode::Tc, &["--probe", "--probe-allow", &allow])?);
    lab.s_client13("client-garbage", garbage_addr, "garbage.lab.test", &[])?;
    lab.s_client13("client-huge", huge_addr, huge.sni, &[])?;
    let both =
        |got: &[(Instant, Value)]| !probes_of(got, garbage_addr).is_empty() && !probes_of(got, huge_addr).is_empty();
    let all_in = watch.until(EVENT_WAIT, both)?;
    // Still judging handshakes afterwards.
    lab.s_client13("client-control", control_addr, control.sni, &[])?;
    let control_seen = watch.until(Duration::from_secs(5), |got| {
        got.iter().any(|(_, e)| is_tls(e) && addr_at(e, "destination") == Some(control_addr))
    })?;
    let (got, stderr) = watch.stop()?;

    let mut problems = Vec::new();
    if !all_in {
        problems.push(format!("not both probe events within {EVENT_WAIT:?}"));
    }
    if !control_seen {
        problems.push("no event for a handshake after the hostile probes".into());
    }
    for (label, addr) in [("garbage", garbage_addr), ("huge certificate", huge_addr)] {
        let probes = probes_of(&got, addr);
        if probes.len() != 1 {
            problems.push(format!("{label}: {} probe events, expected 1", probes.len()));
        }
        let Some(&(_, ev)) = probes.first() else { continue };
        let result = str_at(ev, "/probe/result");
        let anomaly = finding_ids(ev).iter().any(|i| i.contains("anomal") || i.contains("malformed"));
        match result {
            Some("failed") => problems.extend(failure_finding(ev, &["probe.failed"]).map(|p| format!("{label}: {p}"))),
            Some("ok") if anomaly => {}
            r => problems.push(format!(
                "{label}: result {r:?} with findings {:?}, expected failed (probe.failed) or an anomaly",
                finding_ids(ev)
            )),
        }
        if str_at(ev, "/probe/error").is_none_or(|e| e.trim().is_empty()) && result == Some("failed") {
            problems.push(format!("{label}: failed probe without /probe/error"));
        }
    }
    if garbage.accepted().iter().filter(|a| !a.relayed).count() != 1 {
        problems.push(format!("garbage server: prober connections {:?}, expected 1", garbage.accepted()));
    }
    problems.extend(not_ecs(&got));
    let text = dump(&got);
    let leaks = phi_leaks(&text);
    if !leaks.is_empty() {
        problems.push(format!("the garbage's fake PHI is in the events: {leaks:?}"));
    }
    if text.contains("Bad Request") {
        problems.push("the garbage's bytes are repeated in the events".into());
    }
    eprintln!("hostile: total {:.1} s", start.elapsed().as_secs_f64());
    for (_, e) in got.iter().filter(|(_, e)| is_probe(e)) {
        eprintln!("  {e}");
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s):\n  {}\nevents:\n{text}\ntlsmon stderr:\n{}",
            problems.len(),
            problems.join("\n  "),
            stderr.join("\n")
        );
    }
    drop(garbage);
    teardown(lab)
}

/// Issue 14, "must show" 6. `--probe-versions`: a server the clients reach over TLS 1.3 that
/// still accepts TLS 1.0 and 1.1 (`openssl s_server -min_protocol TLSv1`, security level 0) is
/// flagged from the sweep (`tls.version.deprecated` or `.insecure`, evidence naming the probe);
/// a TLS 1.3-only server accepts none of the legacy offers and gets no finding at all. From the
/// servers' side (tcpdump): one connection for the handshake and one per offer, no more.
#[test]
fn probe_version_sweep_flags_servers_still_accepting_tls10() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create_with(Plan::PROBE)?;
    lab.make_probe_certs()?;
    let mixed = ProbeServer { name: "mixed", kind: Kind::Mixed, port: 8447, sni: "mixed.lab.test" };
    let only13 = ProbeServer { name: "only13", kind: Kind::Valid, port: 8448, sni: "valid.lab.test" };
    lab.start_probe_server(&mixed, false)?;
    lab.start_probe_server(&only13, false)?;
    let main = lab.server_addr(Family::V4);
    let (mixed_addr, only13_addr) = (SocketAddr::new(main, mixed.port), SocketAddr::new(main, only13.port));
    lab.wait_accepting(&[mixed_addr, only13_addr])?;
    // What the mixed server accepts, measured with the stock client first.
    let connect = mixed_addr.to_string();
    let check = ["s_client", "-connect", &connect, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"];
    let status = lab.run("check-mixed-tls1", &lab.client_ns, "openssl", &check, Duration::from_secs(15))?;
    ensure!(status.success(), "the mixed server refuses TLS 1.0: {}", lab.log("check-mixed-tls1"));
    let capture = lab.start_server_capture("capture")?;

    let ca = lab.dir.join("ca.pem");
    let allow = rule(main, "8447,8448");
    let args = ["--probe", "--probe-versions", "--probe-allow", &allow, "--ca-bundle", path_str(&ca)?];
    let mut watch = Watch::new(lab.start_live(tlsmon(), Mode::Tc, &args)?);
    lab.s_client13("client-mixed", mixed_addr, mixed.sni, &[])?;
    lab.s_client13("client-only13", only13_addr, only13.sni, &[])?;
    let both =
        |got: &[(Instant, Value)]| !probes_of(got, mixed_addr).is_empty() && !probes_of(got, only13_addr).is_empty();
    let all_in = watch.until(EVENT_WAIT, both)?;
    let (got, stderr) = watch.stop()?;
    let syns = lab.stop_server_capture("capture", &capture)?;

    let mut problems = Vec::new();
    if !all_in {
        problems.push(format!("not both probe events within {EVENT_WAIT:?}"));
    }
    let legacy = ["tls.version.deprecated", "tls.version.insecure"];
    let mut tries = BTreeMap::new();
    for (label, addr) in [("mixed", mixed_addr), ("only13", only13_addr)] {
        let probes = probes_of(&got, addr);
        if probes.len() != 1 {
            problems.push(format!("{label}: {} probe events, expected 1", probes.len()));
        }
        let Some(&(_, ev)) = probes.first() else { continue };
        let rows = sweep_rows(ev);
        tries.insert(label, rows.len());
        let accepted = |v: &str| rows.iter().find(|(o, _)| o == v).and_then(|(_, a)| *a);
        for v in ["SSLv3", "TLS 1.0", "TLS 1.1"] {
            if !rows.iter().any(|(o, _)| o == v) {
                problems.push(format!("{label}: no sweep row offering {v}: {rows:?}"));
            }
        }
        if label == "mixed" {
            for v in ["TLS 1.0", "TLS 1.1"] {
                if accepted(v) != Some(true) {
                    problems.push(format!("mixed: {v} accepted = {:?}, expected true: {rows:?}", accepted(v)));
                }
            }
            // Debian's OpenSSL 3 has no SSLv3 at all.
            if accepted("SSLv3") != Some(false) {
                problems.push(format!("mixed: SSLv3 accepted = {:?}, expected false", accepted("SSLv3")));
            }
            match legacy.iter().find_map(|id| finding(ev, id)) {
                Some(f) if str_at(f, "/evidence").is_some_and(|e| e.to_ascii_lowercase().contains("probe")) => {}
                Some(f) => {
                    problems.push(format!("mixed: version finding whose evidence does not mention the probe: {f}"))
                }
                None => problems.push(format!("mixed: findings {:?}, expected one of {legacy:?}", finding_ids(ev))),
            }
        } else {
            if let Some((o, _)) = rows.iter().find(|(_, a)| *a != Some(false)) {
                problems.push(format!("only13: offer {o} not refused: {rows:?}"));
            }
            if !finding_ids(ev).is_empty() {
                problems.push(format!("only13: findings {:?}, expected none", finding_ids(ev)));
            }
        }
        // The prober's connections as the server saw them: the handshake and one per offer.
        let mon = lab.mon_server_side_addr(Family::V4);
        let from_mon = syns.iter().filter(|(s, _)| s.src == mon && s.dst_port == addr.port()).count();
        if from_mon != 1 + rows.len() {
            problems.push(format!(
                "{label}: the server saw {from_mon} connections from the prober, expected 1 + {} offers",
                rows.len()
            ));
        }
    }
    // The clients themselves spoke TLS 1.3: the legacy finding comes from the sweep only.
    for (_, e) in got.iter().filter(|(_, e)| is_tls(e)) {
        if finding_ids(e).iter().any(|i| legacy.contains(i)) {
            problems.push(format!("a passive TLS 1.3 handshake has a legacy version finding: {e}"));
        }
    }
    let text = dump(&got);
    if !phi_leaks(&text).is_empty() {
        problems.push("fake PHI in the events".into());
    }
    eprintln!("versions: total {:.1} s; sweep offers per server {tries:?}", start.elapsed().as_secs_f64());
    for (_, e) in got.iter().filter(|(_, e)| is_probe(e)) {
        eprintln!("  {}", e.pointer("/probe/versions").map(Value::to_string).unwrap_or_default());
        eprintln!("  findings {}", e.get("findings").map(Value::to_string).unwrap_or_default());
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s):\n  {}\nevents:\n{text}\ntlsmon stderr:\n{}",
            problems.len(),
            problems.join("\n  "),
            stderr.join("\n")
        );
    }
    teardown(lab)
}

/// The version sweep's rows of a probe event as (offered, accepted).
fn sweep_rows(ev: &Value) -> Vec<(String, Option<bool>)> {
    let rows = ev.pointer("/probe/versions").and_then(Value::as_array);
    rows.into_iter()
        .flatten()
        .map(|o| (str_at(o, "/offered").unwrap_or("?").to_string(), o.get("accepted").and_then(Value::as_bool)))
        .collect()
}

/// The probe labs' own names and networks, and their cleanup: `tlsmon-prb-…` namespaces,
/// addresses in 10.214.0.0/16 and fd14:214::/64 only, all gone with the lab, and a probe lab
/// left behind by a dead process removed by the next lab made.
#[test]
fn probe_lab_names_networks_and_stale_cleanup() -> Result<()> {
    let lab = Lab::create_with(Plan::PROBE)?;
    for f in Family::BOTH {
        for ip in [lab.client_addr(f), lab.server_addr(f), lab.mon_server_side_addr(f), lab.server_subnet_addr(f, 3)] {
            let inside = match ip {
                IpAddr::V4(a) => a.octets()[..2] == [10, 214],
                IpAddr::V6(a) => a.segments()[..4] == [0xfd14, 0x214, 0, 0],
            };
            ensure!(inside, "{ip} is outside 10.214.0.0/16 and fd14:214::/64");
        }
    }
    let out = std::process::Command::new("ip").args(["-n", &lab.server_ns, "-6", "addr", "show"]).output()?;
    let shown = String::from_utf8_lossy(&out.stdout);
    ensure!(shown.contains(&format!("{}/80", lab.server_addr(Family::V6))), "server IPv6 address /80: {shown}");
    teardown(lab)?;

    // A pid that has certainly exited: a finished child's.
    let mut child = std::process::Command::new("true").spawn()?;
    let dead = child.id();
    child.wait()?;
    let stale = format!("{}prb-{dead}-0-mon", lab::PREFIX);
    let status = std::process::Command::new("ip").args(["netns", "add", &stale]).status()?;
    ensure!(status.success(), "ip netns add {stale}");
    let next = Lab::create_with(Plan::PROBE)?;
    let left = Path::new("/run/netns").join(&stale).exists();
    if left {
        let _ = std::process::Command::new("ip").args(["netns", "del", &stale]).status();
    }
    ensure!(!left, "stale namespace {stale} of dead pid {dead} removed by the next lab");
    teardown(next)
}
