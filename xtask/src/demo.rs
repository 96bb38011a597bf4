//! `cargo xtask demo`: set up, build release, and show `tlsmon live` judging real handshakes in
//! the network-namespace lab shared with the e2e tests (tests/lab): five servers of known
//! posture, stock clients over IPv4 and IPv6 and a large post-quantum ClientHello, a TLS 1.3
//! server with an expired certificate that only the opt-in prober (`--probe`, allowed for that
//! one server) can see, then real HL7 (mllp_send), DICOM (storescu, echoscu) and FHIR (curl)
//! peers in clear; one readable line per event as it arrives.
//! Must never leave namespaces or processes behind: Ctrl-C (SIGINT/SIGTERM) stops tlsmon and
//! tears the lab down too.
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use serde_json::Value;

use crate::{setup, test};

#[path = "../../tests/lab/mod.rs"]
mod lab;

use lab::{probe::DEMO_EXPIRED13, Family, Lab, Live, Mode, SERVERS};

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Skip the setup step (apt packages, rust-src, bpf-linker).
    #[arg(long)]
    no_setup: bool,
    /// Attach with XDP (generic/skb mode, both of mon's veths) instead of TC.
    #[arg(long)]
    xdp: bool,
    /// Print the raw JSON events instead of one readable line per event.
    #[arg(long)]
    json: bool,
}

/// Most time to wait for one step's events before going on (the rest come when tlsmon stops).
const STEP_WAIT: Duration = Duration::from_secs(3);

pub fn run(args: DemoArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    lab::ensure_root().context("`cargo xtask demo` attaches eBPF programs in network namespaces")?;
    let root = test::workspace_root();
    setup::run_cmd(
        &mut test::cargo(&["build", "--release", "--package", "monitor"]),
        "cargo build --release -p monitor",
    )?;
    let tlsmon = test::target_dir(&root).join("release/tlsmon");

    // From here on Ctrl-C only sets a flag; the lab's loops see it and everything unwinds
    // through the teardown below.
    lab::stop_on_signals();
    let mode = if args.xdp { Mode::XdpSkb } else { Mode::Tc };
    let result = demo(&tlsmon, mode, args.json);
    if lab::stopping() {
        println!("\ndemo: interrupted; tlsmon stopped and the lab torn down");
        std::process::exit(130);
    }
    result
}

fn demo(tlsmon: &std::path::Path, mode: Mode, json: bool) -> Result<()> {
    let mut lab = Lab::create()?;
    println!(
        "\n=== lab: namespaces {} — {} — {} (veth pairs; {} routes between client and server)",
        lab.client_ns, lab.mon_ns, lab.server_ns, lab.mon_ns
    );
    lab.start_servers()?;
    println!("servers in {} at {} and {}:", lab.server_ns, lab.server_addr(Family::V4), lab.server_addr(Family::V6));
    for s in &SERVERS {
        println!("  {:<8} port {}  {}", s.name, s.port, s.what);
    }
    lab.start_probe_server(&DEMO_EXPIRED13, false)?;
    let expired13: Vec<_> =
        Family::BOTH.iter().map(|&f| std::net::SocketAddr::new(lab.server_addr(f), DEMO_EXPIRED13.port)).collect();
    lab.wait_accepting(&expired13)?;
    println!(
        "  {:<8} port {}  openssl s_server -tls1_3, expired self-signed certificate (encrypted in TLS 1.3: \
         only the prober sees it)",
        DEMO_EXPIRED13.name, DEMO_EXPIRED13.port
    );
    lab.start_plain_servers()?;
    println!(
        "  in clear: HL7 MLLP receiver port {}, DICOM storescp port {}, FHIR over plain HTTP port {}",
        lab::plain::HL7_PORT,
        lab::plain::DICOM_PORT,
        lab::plain::FHIR_PORT
    );
    // The prober may contact the expired TLS 1.3 server only (one address per family, one port).
    let allow: Vec<String> = Family::BOTH
        .iter()
        .map(|&f| match lab.server_addr(f) {
            std::net::IpAddr::V4(a) => format!("--probe-allow={a}/32:{}", DEMO_EXPIRED13.port),
            std::net::IpAddr::V6(a) => format!("--probe-allow=[{a}/128]:{}", DEMO_EXPIRED13.port),
        })
        .collect();
    println!("\n=== tlsmon live --format json --probe {} in {}", allow.join(" "), lab.mon_ns);
    let listen = format!("--listen=127.0.0.1:{METRICS_PORT}");
    let mut live = lab.start_live(tlsmon, mode, &[&listen, "--probe", &allow[0], &allow[1]])?;
    println!("{}", live.attached);
    println!("metrics: http://127.0.0.1:{METRICS_PORT}/metrics inside {} (also /inventory, /healthz)", lab.mon_ns);

    let mut shown = 0;
    let driven = drive(&lab, &mut live, json, &mut shown);
    if driven.is_ok() {
        print_metrics(&lab);
    }
    // Always stop tlsmon cleanly (SIGINT: detach, judge the flows still open).
    let stopped = live.stop();
    if let Ok(stopped) = &stopped {
        for ev in &stopped.events {
            print_event(ev, json);
            shown += 1;
        }
        println!("\ntlsmon exited ({}); {shown} events (handshakes and flows in clear)", stopped.status);
    }
    driven?;
    stopped?;
    println!("tearing down the lab");
    Ok(())
}

/// Where the demo's tlsmon serves its metrics (loopback of the mon namespace).
const METRICS_PORT: u16 = 9863;

/// The non-zero posture metrics tlsmon serves, as Prometheus would scrape them.
fn print_metrics(lab: &Lab) {
    let url = format!("http://127.0.0.1:{METRICS_PORT}/metrics");
    let out = lab.cmd(&lab.mon_ns, "curl", &["-sS", "--max-time", "5", &url]).output();
    let text = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => return println!("metrics: curl {url} failed: {}", String::from_utf8_lossy(&o.stderr).trim()),
        Err(e) => return println!("metrics: cannot run curl: {e}"),
    };
    println!("\n=== curl {url} (non-zero posture series)");
    let wanted = [
        "tlsmon_handshakes_total",
        "tlsmon_handshakes_forward_secrecy_total",
        "tlsmon_handshakes_pq_total",
        "tlsmon_findings_total",
        "tlsmon_plaintext_phi_flows_total",
        "tlsmon_servers",
        "tlsmon_certificates_expired",
        "tlsmon_probes_total",
    ];
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.ends_with(" 0")) {
        if wanted.iter().any(|w| line.strip_prefix(w).is_some_and(|r| r.starts_with(['{', ' ']))) {
            println!("  {line}");
        }
    }
}

/// Runs the clients one server at a time, printing events as they arrive.
fn drive(lab: &Lab, live: &mut Live, json: bool, shown: &mut usize) -> Result<()> {
    let mut expected = 0;
    for family in Family::BOTH {
        println!(
            "\n=== {} clients: {} → {}  (server, address, version, cipher, SNI, findings)",
            family.label(),
            lab.client_addr(family),
            lab.server_addr(family)
        );
        for server in &SERVERS {
            let runs = lab.run_server_clients(server, family)?;
            let tools: Vec<&str> = runs.iter().map(|r| r.tool).collect();
            println!("-- {} ← {}", server.name, tools.join(", "));
            expected += runs.len();
            wait_events(live, expected, json, shown)?;
        }
        // TLS 1.3: the passive event has no certificate; the prober connects once and its
        // `probe` event carries what the certificate is (expired, self-signed).
        let addr = std::net::SocketAddr::new(lab.server_addr(family), DEMO_EXPIRED13.port);
        lab.s_client13(&format!("client-exp13-{}", family.label()), addr, DEMO_EXPIRED13.sni, &[])?;
        println!("-- {} ← openssl s_client -tls1_3, then tlsmon's prober", DEMO_EXPIRED13.name);
        wait_probe(live, json, shown)?;
        // The prober's own handshake may show too (mon sees its own traffic): count what came.
        expected = *shown;
        for split in [false, true] {
            let hello = lab::large_hello(lab, family, split)?;
            println!(
                "-- modern ← hand-built {}-byte ClientHello (X25519MLKEM768 + x25519 key shares, SNI last){}",
                hello.len,
                if split { ", written in 3 segments" } else { "" }
            );
            expected += 1;
            wait_events(live, expected, json, shown)?;
        }
    }
    for family in Family::BOTH {
        println!(
            "\n=== {} health data in clear (real peers with fake patients; tlsmon reports metadata only)",
            family.label()
        );
        for &peer in lab::plain::Peer::all(family) {
            lab.run_plain_client(peer, family)?;
            println!("-- port {} ← {}", peer.port(), peer.name());
            expected += 1;
            wait_events(live, expected, json, shown)?;
        }
    }
    Ok(())
}

/// Prints events until `expected` have been shown or [`STEP_WAIT`] passed.
fn wait_events(live: &mut Live, expected: usize, json: bool, shown: &mut usize) -> Result<()> {
    let deadline = Instant::now() + STEP_WAIT;
    while *shown < expected && Instant::now() < deadline {
        lab::check_stop()?;
        if let Some(ev) = live.next_event(Duration::from_millis(100))? {
            print_event(&ev, json);
            *shown += 1;
        }
    }
    for line in live.drain_stderr() {
        // tlsmon's own notices already start with "tlsmon: ".
        println!("{}{line}", if line.starts_with("tlsmon: ") { "" } else { "tlsmon: " });
    }
    Ok(())
}

/// Most time from a client's handshake to the prober's event about that server.
const PROBE_WAIT: Duration = Duration::from_secs(8);

/// Prints events until a `probe` event has been shown (and half a second more, for the
/// passive event of the prober's own handshake) or [`PROBE_WAIT`] passed.
fn wait_probe(live: &mut Live, json: bool, shown: &mut usize) -> Result<()> {
    let mut deadline = Instant::now() + PROBE_WAIT;
    let mut probed = false;
    while Instant::now() < deadline {
        lab::check_stop()?;
        if let Some(ev) = live.next_event(Duration::from_millis(100))? {
            print_event(&ev, json);
            *shown += 1;
            if !probed && ev.pointer("/event/dataset").and_then(Value::as_str) == Some("tlsmon.probe") {
                probed = true;
                deadline = Instant::now() + Duration::from_millis(500);
            }
        }
    }
    for line in live.drain_stderr() {
        // tlsmon's own notices already start with "tlsmon: ".
        println!("{}{line}", if line.starts_with("tlsmon: ") { "" } else { "tlsmon: " });
    }
    Ok(())
}

fn print_event(ev: &Value, json: bool) {
    if json {
        println!("{ev}");
    } else {
        println!("   {}", lab::summary(ev));
    }
}
