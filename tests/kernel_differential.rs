//! Differential test, kernel against replay: every capture of ../shared/corpus goes frame by
//! frame through the loaded TC and XDP programs (BPF_PROG_TEST_RUN); the records they write
//! go through the same pipeline as live capture. The JSON events must equal those of
//! `tlsmon replay` on the same capture: a difference is a bug in one of the two (or a known
//! limit listed below with its reason, which must then be exactly what happens).
//! The synthetic plaintext captures (`cargo xtask gen-phi`: DICOM, FHIR, HL7, X12, STARTTLS…)
//! go through the same comparison, so plaintext events agree too.
//! Needs root (CI is root); never skipped.
mod testdata;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use monitor::capture::pcap::for_each_frame;
use monitor::capture::record;
use monitor::capture::testrun::{hook_frames, Hook, KernelModel, MIN_TEST_FRAME};
use monitor::observation::Output;
use monitor::pipeline::Pipeline;
use monitor::sink::json;
use monitor_common::decode::parse_record;
use monitor_common::{counter, KernelConfig};

fn corpus() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps");
    assert!(p.is_dir(), "the shared corpus must sit beside the checkout: {}", p.display());
    p
}

fn require_root() {
    let missing = monitor::capture::ebpf::missing_capabilities();
    assert!(
        missing.is_empty(),
        "the kernel differential test loads eBPF programs and needs root (or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON), missing {missing:?}; \
         run it through `cargo xtask test` as root, as CI does"
    );
}

/// One JSON line per event, sorted (flows may be judged in another order).
fn events(outputs: &[Output]) -> Vec<String> {
    let mut v: Vec<String> =
        outputs.iter().map(|o| serde_json::to_string(&json::any_event(o, &json::Style::default())).unwrap()).collect();
    v.sort();
    v
}

/// Captures whose kernel path knowingly differs, and why. The test checks the difference is
/// exactly "the kernel path gives these many fewer events".
fn known() -> BTreeMap<&'static str, (usize, &'static str)> {
    const GTP: &str = "GTP-U tunnel (UDP 2152): replay decapsulates it, the kernel parser stops at the outer UDP \
                       header; a hook on the tunnel's own interface sees the inner packets";
    BTreeMap::from([("ndpi__ja3-lots-of-ciphers-gtp.pcap", (1, GTP)), ("ndpi__tls_invalid_reads.pcapng", (1, GTP))])
}

struct KernelRun {
    outputs: Vec<Output>,
    counters: [u64; counter::COUNT as usize],
    records: u64,
    bad_records: u64,
}

thread_local! {
    /// Programs loaded per configuration, reused by this test thread's captures (flows
    /// forgotten between them): a load costs the verifier about a second per program.
    static MODELS: std::cell::RefCell<Vec<(KernelConfig, KernelModel)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The capture through the kernel program `hook`, then the pipeline.
fn through_kernel(path: &Path, hook: Hook, cfg: &KernelConfig) -> KernelRun {
    MODELS.with_borrow_mut(|models| {
        let i = match models.iter().position(|(c, _)| c == cfg) {
            Some(i) => i,
            None => {
                let k = KernelModel::load(cfg).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)));
                models.push((*cfg, k));
                models.len() - 1
            }
        };
        let k = &mut models[i].1;
        k.forget_flows().expect("forget the last capture's flows");
        let before = k.counters().expect("counters");
        let mut run = through_model(k, path, hook);
        for (c, b) in run.counters.iter_mut().zip(before) {
            *c -= b;
        }
        run
    })
}

fn through_model(k: &mut KernelModel, path: &Path, hook: Hook) -> KernelRun {
    let mut pipeline = Pipeline::new(Default::default());
    let mut outputs = Vec::new();
    let mut frames = Vec::new();
    let (mut records, mut bad_records) = (0u64, 0u64);
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("open capture"));
    let _ = for_each_frame(file, |f| {
        frames.clear();
        hook_frames(f.linktype, f.data, &mut frames);
        for frame in frames.iter().filter(|fr| fr.len() >= MIN_TEST_FRAME) {
            let r = k.run(hook, frame, 1).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)));
            assert_eq!(r.action, hook.pass_action(), "{hook:?} must pass every frame");
            k.drain(|bytes| match parse_record(bytes) {
                Ok(rec) => {
                    records += 1;
                    // The kernel stamps records with its monotonic clock; the replay model
                    // uses the capture's time, so events (and certificate validity) compare.
                    pipeline.packet(f.ts_ns, &record::packet(&rec));
                }
                Err(_) => bad_records += 1,
            });
            outputs.extend(pipeline.drain_outputs());
        }
    });
    pipeline.finish();
    outputs.extend(pipeline.drain_outputs());
    KernelRun { outputs, counters: k.counters().expect("counters"), records, bad_records }
}

#[test]
fn kernel_records_give_the_same_events_as_replay() {
    require_root();
    let known = known();
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("list corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "corpus has {} captures", files.len());
    let (phi_dir, phi) = testdata::phi_manifest();
    let generated: Vec<PathBuf> =
        phi["captures"].as_array().unwrap().iter().map(|c| phi_dir.join(c["file"].as_str().unwrap())).collect();
    assert!(generated.len() >= 20, "generated plaintext captures: {}", generated.len());
    files.extend(generated);
    let mut report = Vec::new();
    let (mut total_events, mut kernel_events, mut wire, mut ring) = (0usize, 0usize, 0u64, 0u64);
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let replayed = match monitor::run::replay_path(path) {
            Ok((o, _)) => o,
            Err((o, _)) => o,
        };
        let want = events(&replayed);
        total_events += want.len();
        for hook in [Hook::Tc, Hook::Xdp] {
            let run = through_kernel(path, hook, &KernelConfig::default());
            kernel_events += run.outputs.len();
            assert_eq!(run.bad_records, 0, "{name} {hook:?}: every record decodes");
            let got = events(&run.outputs);
            if hook == Hook::Tc {
                wire += run.counters[counter::PACKET_BYTES as usize];
                ring += run.counters[counter::RECORD_BYTES as usize];
            }
            assert_eq!(run.counters[counter::RINGBUF_FULL as usize], 0, "{name}: ring buffer never full here");
            match known.get(name.as_str()) {
                Some((missing, why)) => {
                    assert_eq!(want.len() - got.len(), *missing, "{name} {hook:?}: known difference ({why}) changed");
                    assert!(got.iter().all(|e| want.contains(e)), "{name} {hook:?}: kernel events are a subset");
                }
                None => {
                    if got != want {
                        let only_replay: Vec<&String> = want.iter().filter(|e| !got.contains(e)).collect();
                        let only_kernel: Vec<&String> = got.iter().filter(|e| !want.contains(e)).collect();
                        report.push(format!(
                            "{name} {hook:?}: replay {} events, kernel {} ({} records)\n  only replay: {:.600}\n  only kernel: {:.600}",
                            want.len(),
                            got.len(),
                            run.records,
                            format!("{only_replay:?}"),
                            format!("{only_kernel:?}")
                        ));
                    }
                }
            }
        }
    }
    eprintln!(
        "kernel differential: {} captures, {total_events} replay events; ring-buffer bytes / frame bytes = {ring} / {wire}",
        files.len()
    );
    assert!(report.is_empty(), "kernel and replay disagree on {} runs:\n{}", report.len(), report.join("\n"));
    assert!(total_events >= 70, "the corpus gives handshakes ({total_events})");
    let known_missing: usize = known.values().map(|(n, _)| n).sum();
    assert_eq!(kernel_events, 2 * (total_events - known_missing), "TC and XDP each give every event");
}

/// The comparison has teeth: with a 64-byte server budget and cap the kernel no longer
/// forwards the certificate, and the events differ from replay's. With a 64-byte budget and
/// the default cap the record walk still follows the whole server flight: the same events.
#[test]
fn a_smaller_kernel_budget_changes_the_events() {
    require_root();
    let path = corpus().join("zeek__tls1.2.pcap");
    let (replayed, _) = monitor::run::replay_path(&path).unwrap_or_else(|_| panic!("replay {}", path.display()));
    let cfg = KernelConfig { server_budget: 64, server_cap: 64, ..KernelConfig::default() };
    let run = through_kernel(&path, Hook::Tc, &cfg);
    assert!(!replayed.is_empty());
    assert_ne!(events(&run.outputs), events(&replayed));
    assert!(run.counters[counter::BUDGET_EXHAUSTED as usize] > 0);
    let followed = through_kernel(&path, Hook::Tc, &KernelConfig { server_budget: 64, ..KernelConfig::default() });
    assert_eq!(events(&followed.outputs), events(&replayed));
}

/// The capture programs stay inside the verifier's budget (one million instructions
/// processed): the record walk and the payload loop are subprograms fed through map memory so
/// their paths do not multiply. Loading cost is paid at every attach.
#[test]
fn the_programs_verify_well_inside_the_budget() {
    require_root();
    let k = KernelModel::load(&KernelConfig::default()).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)));
    for (name, count) in k.verified_instructions() {
        let count = count.expect("kernel reports verified instructions");
        eprintln!("{name}: {count} instructions verified");
        assert!(count < 600_000, "{name}: {count} instructions verified");
    }
}

/// A handshake larger than the budgets: the 340 KB certificate of
/// `zeek__tls-fragmented-handshake.pcap` (21 records) and the ServerKeyExchange after it reach
/// the agent through both programs, as in replay; the ring carries the flight once.
#[test]
fn a_handshake_past_the_budget_is_followed_whole() {
    require_root();
    let path = corpus().join("zeek__tls-fragmented-handshake.pcap");
    let (replayed, _) = monitor::run::replay_path(&path).unwrap_or_else(|_| panic!("replay {}", path.display()));
    let want = events(&replayed);
    assert_eq!(want.len(), 1);
    assert!(want[0].contains("\"curve\":\"secp256r1\"") && want[0].contains("\"common_name\":\"Bro\""), "{}", want[0]);
    for hook in [Hook::Tc, Hook::Xdp] {
        let run = through_kernel(&path, hook, &KernelConfig::default());
        assert_eq!(events(&run.outputs), want, "{hook:?}");
        let bytes = run.counters[counter::RECORD_BYTES as usize];
        let wire = run.counters[counter::PACKET_BYTES as usize];
        eprintln!("{hook:?}: {bytes} of {wire} wire bytes to the ring ({:.1}%)", 100.0 * bytes as f64 / wire as f64);
        assert!(bytes < wire, "{hook:?}: {bytes} record bytes, {wire} wire bytes");
    }
}

/// SSH: real OpenSSH 9.2p1 sessions (`tests/captures/openssh-9.2p1-stock-and-legacy.pcap`,
/// tcpdump on loopback: `ssh` to a stock sshd on 2222 and, with diffie-hellman-group1-sha1 and
/// 3des-cbc allowed, to a legacy one on 2223) through both kernel programs give the replay's
/// two `ssh` events: the `SSH-` banner is a candidate signature on any port, and the budgets
/// hold both KEXINITs.
#[test]
fn ssh_sessions_through_the_kernel_equal_replay() {
    require_root();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures/openssh-9.2p1-stock-and-legacy.pcap");
    let (replayed, _) = monitor::run::replay_path(&path).unwrap_or_else(|_| panic!("replay {}", path.display()));
    let want = events(&replayed);
    assert_eq!(want.len(), 2, "{want:?}");
    let kex: Vec<&str> = replayed.iter().filter_map(|o| o.ssh()?.facts.negotiated.as_ref()?.kex.as_deref()).collect();
    assert_eq!(kex, ["sntrup761x25519-sha512", "diffie-hellman-group1-sha1"]);
    for hook in [Hook::Tc, Hook::Xdp] {
        let run = through_kernel(&path, hook, &KernelConfig::default());
        assert_eq!(events(&run.outputs), want, "{hook:?}");
        // Without the SSH signature (and off port 22) the kernel forwards nothing of them.
        let mut cfg = KernelConfig::default();
        cfg.n_signatures -= 1;
        assert_eq!(monitor_common::DEFAULT_SIGNATURES.last(), Some(&b"SSH-".as_slice()));
        assert!(through_kernel(&path, hook, &cfg).outputs.is_empty(), "{hook:?} without the SSH- signature");
    }
}

/// DTLS: real OpenSSL 3.0.19 peers (`tests/captures/openssl-3.0.19-dtls1_2-hello-verify.pcap`,
/// `openssl s_server -dtls1_2 -accept 4433` and `s_client -dtls1_2 -servername dtls.lab.test`
/// between two network namespaces, tcpdump on the client's veth): a HelloVerifyRequest cookie
/// exchange, a certificate in fragments across datagrams. Both kernel programs forward the
/// clear DTLS records (any port) and give the replay's one `tls` event.
#[test]
fn dtls_through_the_kernel_equals_replay() {
    require_root();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures/openssl-3.0.19-dtls1_2-hello-verify.pcap");
    let (replayed, _) = monitor::run::replay_path(&path).unwrap_or_else(|_| panic!("replay {}", path.display()));
    let want = events(&replayed);
    assert_eq!(want.len(), 1, "{want:?}");
    assert!(want[0].contains(r#""network":{"transport":"udp","protocol":"dtls","type":"ipv4"}"#), "{want:?}");
    assert!(want[0].contains(r#""established":true"#), "{want:?}");
    for hook in [Hook::Tc, Hook::Xdp] {
        let run = through_kernel(&path, hook, &KernelConfig::default());
        assert_eq!(events(&run.outputs), want, "{hook:?}");
        assert_eq!(run.bad_records, 0);
        // 12 datagrams, each starting with a DTLS record header (the last two: close_notify
        // alerts of epoch 1, forwarded as the header cannot tell).
        assert_eq!(run.counters[counter::DTLS_RECORDS as usize], 12, "{hook:?}");
        assert_eq!(run.counters[counter::UDP_SKIPPED as usize], 0, "{hook:?}");
        // Off: nothing forwarded, no event.
        let cfg = KernelConfig { quic: 0, ..KernelConfig::default() };
        assert!(through_kernel(&path, hook, &cfg).outputs.is_empty(), "{hook:?} with UDP handshakes off");
    }
}

/// SQL Server (TDS 7.x): the committed captures built from MS-TDS with real TLS 1.2 sessions
/// (`tests/captures/tds-*.pcap`) through both kernel programs give the replay's events — the
/// handshake unwrapped from PRELOGIN packets (`tls.starttls: "tds"`) and the clear sessions'
/// `plaintext` events — as candidates by port 1433 and, off that port, by the PRELOGIN
/// signature alone; with neither, the kernel forwards nothing of them.
#[test]
fn tds_sessions_through_the_kernel_equal_replay() {
    require_root();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/captures");
    for name in [
        "tds-encrypt-off.pcap",
        "tds-encrypt-on.pcap",
        "tds-encrypt-required.pcap",
        "tds-encrypt-not-supported.pcap",
        "tds-encrypt-terminated.pcap",
    ] {
        let path = dir.join(name);
        let (replayed, _) = monitor::run::replay_path(&path).unwrap_or_else(|_| panic!("replay {}", path.display()));
        let want = events(&replayed);
        assert_eq!(want.len(), 1, "{name}: {want:?}");
        assert!(want[0].contains(r#""tds":{"#), "{name}: {want:?}");
        let tds_sig = monitor_common::DEFAULT_SIGNATURES.iter().position(|s| *s == b"\x12\x01\x00").expect("signature");
        for hook in [Hook::Tc, Hook::Xdp] {
            let run = through_kernel(&path, hook, &KernelConfig::default());
            assert_eq!(events(&run.outputs), want, "{name} {hook:?}");
            assert_eq!(run.bad_records, 0);
            // Without 1433 among the ports, the PRELOGIN signature still makes it a candidate.
            let mut cfg = KernelConfig::default();
            let n = cfg.n_ports as usize;
            let at = cfg.ports[..n].iter().position(|&p| p == 1433).expect("1433 is a default port");
            cfg.ports.copy_within(at + 1..n, at);
            cfg.n_ports -= 1;
            assert_eq!(events(&through_kernel(&path, hook, &cfg).outputs), want, "{name} {hook:?} by signature");
            // Without the signature too: not a candidate, nothing forwarded.
            cfg.signature_lens[tds_sig] = 0;
            assert!(through_kernel(&path, hook, &cfg).outputs.is_empty(), "{name} {hook:?} without port or signature");
        }
    }
}
