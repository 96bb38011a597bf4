//! `tlsmon replay --threads N`: the event stream is the same bytes for any number of workers
//! (issue 20) — over the generated mix, the shared corpus and the synthetic PHI captures, from
//! files (mapped, and read with `--no-mmap`) and from standard input, with idle sweeps on and
//! counters summed over workers.
//! Identity only: speed is `cargo xtask bench compare`'s business.
mod testdata;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use testdata::{corpus_files, generated};

/// `tlsmon replay --format json --stats --threads N ARGS… FILES…`: (stdout, the `--stats`
/// counters that must not depend on N).
fn replay(threads: usize, files: &[PathBuf], args: &[&str]) -> (Vec<u8>, Vec<String>) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .arg("replay")
        .args(["--format", "json", "--stats", "--no-progress", "--threads", &threads.to_string()])
        .args(args)
        .args(files)
        .output()
        .expect("running tlsmon");
    assert!(out.status.code().is_some_and(|c| c <= 1), "tlsmon failed: {}", String::from_utf8_lossy(&out.stderr));
    (out.stdout, counters(&out.stderr))
}

/// The `--stats` lines that count packets, flows and handshakes (memory figures are per worker).
fn counters(stderr: &[u8]) -> Vec<String> {
    let keep = ["packets:", "bytes:", "handshakes:", "plain_candidates:", "plaintext_flows:", "created:", "expired:"];
    String::from_utf8_lossy(stderr)
        .lines()
        .map(str::trim)
        .filter(|l| keep.iter().any(|k| l.starts_with(k)))
        .map(String::from)
        .collect()
}

fn assert_same_for_any_n(what: &str, files: &[PathBuf], args: &[&str], min_events: usize) {
    let (one, stats_one) = replay(1, files, args);
    let events = one.iter().filter(|b| **b == b'\n').count();
    assert!(events >= min_events, "{what}: {events} events, expected at least {min_events}");
    assert!(stats_one.iter().any(|l| l.starts_with("handshakes:")), "{what}: --stats shows handshakes");
    // Files are mapped unless --no-mmap: read, they must give the same bytes too.
    for (n, read) in [(2, false), (4, false), (1, true), (2, true)] {
        let mut args = args.to_vec();
        if read {
            args.push("--no-mmap");
        }
        let (many, stats_many) = replay(n, files, &args);
        assert!(
            one == many,
            "{what}: --threads {n} {args:?} wrote other bytes than --threads 1 ({} vs {} bytes)",
            many.len(),
            one.len()
        );
        assert_eq!(stats_one, stats_many, "{what}: --threads {n} {args:?} counters");
    }
}

#[test]
fn generated_mix_is_identical_for_1_2_4_threads() {
    assert_same_for_any_n("mix", &[generated().join("mix.pcap")], &[], 200);
}

#[test]
fn corpus_captures_are_identical_for_1_2_4_threads() {
    let files = corpus_files();
    let pick = |name: &str| files.iter().find(|f| f.ends_with(name)).cloned().expect(name);
    // TLS over TCP, QUIC, DTLS, STARTTLS and SSLv2, each alone (flows judged at the end of input).
    for name in [
        "pcaps/ja4__latest.pcapng",
        "pcaps/zeek__dtls1_2.pcap",
        "pcaps/ja4__chrome-cloudflare-quic.pcapng",
        "pcaps/zeek__smtp-starttls.pcap",
        "pcaps/zeek__ssl-v2.pcap",
    ] {
        assert_same_for_any_n(name, &[pick(name)], &[], 1);
    }
    // All of them in one run, with the PHI captures: time jumps between files, so the idle
    // sweep judges flows part-way (a short idle timeout makes it judge many).
    let mut all = files.clone();
    let phi = generated().join("phi");
    let mut more: Vec<PathBuf> = std::fs::read_dir(&phi)
        .expect("PHI captures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
        .collect();
    more.sort();
    all.extend(more);
    assert_same_for_any_n("corpus + PHI", &all, &[], 100);
    assert_same_for_any_n("corpus + PHI, --idle-timeout 1", &all, &["--idle-timeout", "1"], 100);
}

#[test]
fn stdin_is_identical_to_a_file_for_any_n() {
    let mix = generated().join("mix.pcap");
    let (file, _) = replay(1, std::slice::from_ref(&mix), &[]);
    let bytes = std::sync::Arc::new(std::fs::read(&mix).expect("reading the mix"));
    for n in [1, 3] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
            .args(["replay", "--format", "json", "--no-progress", "--threads", &n.to_string(), "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("running tlsmon");
        let mut stdin = child.stdin.take().expect("stdin");
        let b = bytes.clone();
        let feed = std::thread::spawn(move || stdin.write_all(&b));
        let out = child.wait_with_output().expect("tlsmon output");
        feed.join().expect("feeder").expect("writing stdin");
        assert!(out.status.code().is_some_and(|c| c <= 1));
        assert!(out.stdout == file, "stdin with --threads {n} differs from the file with --threads 1");
    }
}

/// A mapped capture truncated while it is replayed: the pages past its new end no longer
/// exist, so the process dies of SIGBUS (with one thread or several) — but it says why and what
/// to do; with `--no-mmap` the same truncation ends the replay like a short file, the events
/// so far written.
#[test]
fn a_capture_truncated_while_mapped_says_why() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;

    for (threads, read) in [(1, false), (2, false), (1, true)] {
        let what = format!("--threads {threads}{}", if read { " --no-mmap" } else { "" });
        let path = std::env::temp_dir().join(format!("tlsmon-truncated-{}-{threads}-{read}.pcap", std::process::id()));
        std::fs::copy(generated().join("mix.pcap"), &path).expect("copying the mix");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
            .args(["replay", "--format", "json", "--no-progress", "--threads", &threads.to_string()])
            .args(read.then_some("--no-mmap"))
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running tlsmon");
        let mut stdout = child.stdout.take().expect("stdout");
        // Events have begun; while stdout is not read the replay soon stops on the full pipe,
        // about a third into the file (the mix's 657 events come as its flows end).
        let mut out = vec![0u8; 1];
        stdout.read_exact(&mut out).expect("a first event");
        std::fs::OpenOptions::new().write(true).open(&path).and_then(|f| f.set_len(0)).expect("truncating");
        stdout.read_to_end(&mut out).expect("reading the rest");
        let done = child.wait_with_output().expect("tlsmon ends");
        let _ = std::fs::remove_file(&path);
        let stderr = String::from_utf8_lossy(&done.stderr);
        let lines = out.iter().filter(|b| **b == b'\n').count();
        assert!(lines > 0 && lines < 657, "{what}: {lines} events before the truncation");
        if read {
            // A short file: it ends in the middle of a block (exit 2, the offset named), or
            // (rarely) just where the read window did.
            let code = done.status.code();
            assert!(code == Some(0) || code == Some(2), "{what}: {:?}, {stderr}", done.status);
            assert!(code == Some(0) || stderr.contains("capture ends in the middle of a block"), "{what}: {stderr}");
            assert!(!stderr.contains("SIGBUS"), "{what}: {stderr}");
        } else {
            assert_eq!(done.status.signal(), Some(7), "{what}: dies of SIGBUS; {stderr}");
            assert!(
                stderr.contains("reading a mapped capture file") && stderr.contains("--no-mmap"),
                "{what}: says why and what to do: {stderr}"
            );
        }
    }
}
