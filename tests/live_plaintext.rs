//! Privileged end-to-end test: `tlsmon live` (TC on mon's server-side veth) watching real
//! peers send health data in clear through the network-namespace lab (tests/lab): HL7 v2 over
//! MLLP (mllp_send from python3-hl7), DICOM (dcmtk storescu and echoscu to storescp) and FHIR
//! over plain HTTP (curl), over IPv4 and — for HL7 and FHIR, dcmtk here being IPv4 only — IPv6.
//! Each client run must give exactly one plaintext event with the measured metadata and
//! findings, no TLS event, no lost record, and none of the fake patients' data anywhere in what
//! tlsmon prints (events, summary, debug logs).
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
mod lab;

use std::{
    fs,
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use lab::{
    plain::{phi_leaks, Peer, PlainRun},
    Family, Lab, Mode,
};
use serde_json::{json, Value};

/// Most time to wait for a run's event (flows are judged when both sides closed, so it
/// normally comes within milliseconds).
const RUN_EVENT_WAIT: Duration = Duration::from_secs(3);
/// Quiet time after the last run in which no further event may arrive before tlsmon stops.
const SETTLE: Duration = Duration::from_millis(300);

#[test]
fn live_plaintext_health_peers() -> Result<()> {
    let start = Instant::now();
    let mut lab = Lab::create()?;
    lab.start_plain_servers()?;
    let setup = start.elapsed();
    // Debug logs on: they too must stay free of payload values.
    let mut live = lab.start_live(Path::new(env!("CARGO_BIN_EXE_tlsmon")), Mode::Tc, &["--stats", "--log", "debug"])?;
    let attached = start.elapsed();

    // Each run's events: those that arrived after it finished and before the next run started.
    let mut runs: Vec<(PlainRun, Vec<Value>)> = Vec::new();
    for family in Family::BOTH {
        for &peer in Peer::all(family) {
            let run = lab.run_plain_client(peer, family)?;
            let mut got = Vec::new();
            if let Some(ev) = live.next_event(RUN_EVENT_WAIT)? {
                got.push(ev);
            }
            runs.push((run, got));
        }
    }
    lab.check_children()?;
    let clients_done = start.elapsed();
    let mut extra = Vec::new();
    while let Some(ev) = live.next_event(SETTLE)? {
        extra.push(ev);
    }
    let stopped = live.stop()?;
    extra.extend(stopped.events.iter().cloned());
    let c = |name| stopped.counter(name).map_or("?".to_string(), |v| v.to_string());
    eprintln!(
        "live plaintext: lab+servers {:.1} s, attached {:.1} s, {} clients done {:.1} s, total {:.1} s; \
         kernel: {} packets, {} records",
        setup.as_secs_f64(),
        attached.as_secs_f64(),
        runs.len(),
        clients_done.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        c("packets"),
        c("records"),
    );
    for (run, got) in &runs {
        for ev in got {
            eprintln!("{} {}: {ev}", run.peer.name(), run.family.label());
        }
    }
    if !stopped.status.success() {
        bail!("tlsmon live exited with {} after SIGINT; stderr:\n{}", stopped.status, stopped.stderr.join("\n"));
    }

    let mut problems = Vec::new();
    for (run, got) in &runs {
        let what = format!("{} {}", run.peer.name(), run.family.label());
        if got.len() != 1 {
            problems.push(format!("{what}: {} event(s), expected 1", got.len()));
        }
        for ev in got {
            problems.extend(check_event(&lab, run, ev).into_iter().map(|m| format!("{what}: {m}")));
        }
    }
    for ev in &extra {
        problems.push(format!("unexpected event: {ev}"));
    }
    // Nothing lost on the way: no ring-buffer overflow, failed copy or full flow map, and every
    // record decoded.
    problems.extend(stopped.loss_problems());
    // The PHI-leak requirement: no value of the fake patients in anything tlsmon printed. The
    // check itself must be able to fail: it finds every value in what the clients sent.
    let sent = lab::plain::SENT.concat();
    let found = phi_leaks(&sent);
    for value in ["ZZLIVE^PATIENT", "FAKE-LIVE-0001", "19110101", "PID|", "ZZLIVE^DICOM", "FAKE-LIVE-0002"]
        .into_iter()
        .chain(["19120202", "Zzlivetest", "Zzgiven", "1913-03-03"])
    {
        if !found.contains(&value) {
            problems.push(format!("leak check does not find {value:?} in what the clients sent"));
        }
    }
    let events: Vec<&Value> = runs.iter().flat_map(|(_, g)| g).chain(&extra).collect();
    let stdout: String = events.iter().map(|e| format!("{e}\n")).collect();
    for (stream, text) in [("stdout", stdout.clone()), ("stderr", stopped.stderr.join("\n"))] {
        let leaks = phi_leaks(&text);
        if !leaks.is_empty() {
            problems.push(format!("fake PHI in tlsmon's {stream}: {leaks:?}"));
        }
    }
    if !stopped.stderr.iter().any(|l| l.contains("DEBUG")) {
        problems.push("no DEBUG line on stderr: debug logging was not on, the leak check proves less".into());
    }
    if !problems.is_empty() {
        let dump = lab.dir.with_extension("events.jsonl");
        let _ = fs::write(&dump, &stdout);
        bail!(
            "{} problem(s):\n  {}\nevents ({}; also in {}):\n{stdout}tlsmon stderr (last 40 lines):\n{}",
            problems.len(),
            problems.join("\n  "),
            events.len(),
            dump.display(),
            stopped.stderr[stopped.stderr.len().saturating_sub(40)..].join("\n")
        );
    }
    Ok(())
}

/// The first 16 abstract syntaxes storescu 3.6.7 proposes by default (its A-ASSOCIATE-RQ seen
/// with tcpdump), with the name every DICOM table gives the common ones.
const STORESCU_FIRST_CLASSES: [(&str, Option<&str>); 16] = [
    ("1.2.840.10008.5.1.4.1.1.9.1.3", None),
    ("1.2.840.10008.5.1.4.1.1.88.11", Some("Basic Text SR Storage")),
    ("1.2.840.10008.5.1.4.1.1.9.4.1", None),
    ("1.2.840.10008.5.1.4.1.1.11.4", None),
    ("1.2.840.10008.5.1.4.1.1.9.3.1", None),
    ("1.2.840.10008.5.1.4.1.1.88.65", None),
    ("1.2.840.10008.5.1.4.1.1.88.69", None),
    ("1.2.840.10008.5.1.4.1.1.11.2", None),
    ("1.2.840.10008.5.1.4.1.1.88.33", Some("Comprehensive SR Storage")),
    ("1.2.840.10008.5.1.4.1.1.1", Some("Computed Radiography Image Storage")),
    ("1.2.840.10008.5.1.4.1.1.2", Some("CT Image Storage")),
    ("1.2.840.10008.5.1.4.1.1.1.3", None),
    ("1.2.840.10008.5.1.4.1.1.1.3.1", None),
    ("1.2.840.10008.5.1.4.1.1.1.2", None),
    ("1.2.840.10008.5.1.4.1.1.1.2.1", None),
    ("1.2.840.10008.5.1.4.1.1.1.1", Some("Digital X-Ray Image Storage - For Presentation")),
];

/// One run's event against what the peer really sent (measured with tcpdump, see tests/lab/plain.rs).
fn check_event(lab: &Lab, run: &PlainRun, ev: &Value) -> Vec<String> {
    let mut p = Vec::new();
    expect(&mut p, ev, "/type", json!("plaintext"));
    if ev.get("tls").is_some() {
        p.push("event has a tls section".into());
    }
    for (field, want) in [("/source/ip", lab.client_addr(run.family)), ("/destination/ip", lab.server_addr(run.family))]
    {
        if ip_at(ev, field) != Some(want) {
            p.push(format!("{field} = {:?}, expected {want}", ev.pointer(field)));
        }
    }
    expect(&mut p, ev, "/destination/port", json!(run.peer.port()));
    let (protocol, confidence, severity) = match run.peer {
        Peer::MllpSend => ("hl7", "high", "critical"),
        Peer::StoreScu | Peer::StoreScuAll => ("dicom", "high", "critical"),
        // Verification only: an echo carries no image, but shows a DICOM service in clear.
        Peer::EchoScu => ("dicom", "low", "medium"),
        Peer::FhirPost | Peer::FhirGet => ("fhir", "high", "critical"),
    };
    expect(&mut p, ev, "/plaintext/protocol", json!(protocol));
    expect(&mut p, ev, "/plaintext/confidence", json!(confidence));
    match run.peer {
        Peer::MllpSend => {
            // The ADT^A01 and the receiver's ACK^A01, both MSH-12 2.5, MLLP framed.
            expect(&mut p, ev, "/plaintext/hl7/message_types", json!(["ADT^A01", "ACK^A01"]));
            expect(&mut p, ev, "/plaintext/hl7/version", json!("2.5"));
            expect(&mut p, ev, "/plaintext/hl7/messages", json!(2));
            expect(&mut p, ev, "/plaintext/hl7/batch", json!(false));
            expect(&mut p, ev, "/plaintext/hl7/mllp", json!(true));
        }
        Peer::StoreScu => {
            expect(&mut p, ev, "/plaintext/dicom/sop_classes", json!(["CT Image Storage"]));
            expect(&mut p, ev, "/plaintext/dicom/truncated", json!(false));
            expect(&mut p, ev, "/plaintext/dicom/association", json!("accepted"));
            expect(&mut p, ev, "/plaintext/dicom/data", json!(true));
        }
        Peer::StoreScuAll => {
            // 64 SOP classes in a 9.6 KB A-ASSOCIATE-RQ: more than the head keeps and the list
            // holds. The first 16, in proposal order, each by name or (not in the table) UID.
            let got: Vec<&str> = ev
                .pointer("/plaintext/dicom/sop_classes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let fits = got.len() == STORESCU_FIRST_CLASSES.len()
                && got.iter().zip(STORESCU_FIRST_CLASSES).all(|(g, (uid, name))| match name {
                    Some(name) => *g == name,
                    None => *g == uid || !g.starts_with(|c: char| c.is_ascii_digit()),
                });
            if !fits {
                p.push(format!("sop_classes {got:?}, expected the first 16 storescu proposes"));
            }
            expect(&mut p, ev, "/plaintext/dicom/truncated", json!(true));
            expect(&mut p, ev, "/plaintext/dicom/association", json!("accepted"));
            expect(&mut p, ev, "/plaintext/dicom/data", json!(true));
        }
        Peer::EchoScu => {
            expect(&mut p, ev, "/plaintext/dicom/sop_classes", json!(["Verification SOP Class"]));
            expect(&mut p, ev, "/plaintext/dicom/truncated", json!(false));
            expect(&mut p, ev, "/plaintext/dicom/association", json!("accepted"));
        }
        Peer::FhirPost | Peer::FhirGet => {
            let method = if run.peer == Peer::FhirPost { "POST" } else { "GET" };
            expect(&mut p, ev, "/plaintext/http/method", json!(method));
            expect(&mut p, ev, "/plaintext/http/content_type", json!("application/fhir+json"));
            expect(&mut p, ev, "/plaintext/http/fhir_resource_types", json!(["Patient"]));
            expect(&mut p, ev, "/plaintext/http/cda", json!(false));
        }
    }
    let got: Vec<(&str, &str)> = ev
        .get("findings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| (str_at(f, "/id").unwrap_or("?"), str_at(f, "/severity").unwrap_or("?")))
        .collect();
    if got != [("plaintext.phi", severity)] {
        p.push(format!("findings {got:?}, expected [(\"plaintext.phi\", {severity:?})]"));
    }
    p
}

fn expect(p: &mut Vec<String>, ev: &Value, ptr: &str, want: Value) {
    let got = ev.pointer(ptr);
    if got != Some(&want) {
        p.push(format!("{ptr} = {}, expected {want}", got.map_or("absent".to_string(), Value::to_string)));
    }
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn ip_at(v: &Value, ptr: &str) -> Option<IpAddr> {
    str_at(v, ptr)?.parse().ok()
}
