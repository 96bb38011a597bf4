//! The `tlsmon replay` binary on hostile captures (issue 13, parts 2 and 4): pcapng timestamps
//! past any u64 arithmetic (`if_tsresol` 0 with 2^63, `if_tsresol` 1 with 2^64−1) are counted as
//! bad timestamps, never wrap, never panic (the debug binary checks every overflow); a 40-byte
//! capture whose one record claims 4 GiB is refused at its byte offset without allocating for it.
//! Every capture is built here.
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Run tlsmon; (exit code, stdout, stderr, peak RSS in KiB from the kernel's accounting of
/// exactly this child: `wait4`).
fn tlsmon(args: &[&str]) -> (i32, String, String, i64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlsmon"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs");
    // Drain both pipes while the child runs (a full pipe would block it).
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        out_pipe.read_to_string(&mut s).map(|_| s).unwrap_or_default()
    });
    let mut err = String::new();
    err_pipe.read_to_string(&mut err).unwrap();
    let out = out_reader.join().unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for this child, which std has not
    // waited for (the Child is forgotten below, so it never waits again).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = child.id() as libc::pid_t;
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    std::mem::forget(child);
    assert_eq!(got, pid, "wait4");
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    (code, out, err, usage.ru_maxrss)
}

/// A little-endian pcapng file, one section.
struct PcapNg(Vec<u8>);

impl PcapNg {
    fn new() -> Self {
        let mut ng = PcapNg(Vec::new());
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&1u16.to_le_bytes());
        shb.extend_from_slice(&0u16.to_le_bytes());
        shb.extend_from_slice(&(-1i64).to_le_bytes());
        ng.block(0x0a0d_0d0a, &shb);
        ng
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let len = (12 + padded) as u32;
        self.0.extend_from_slice(&kind.to_le_bytes());
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(body);
        self.0.resize(self.0.len() + padded - body.len(), 0);
        self.0.extend_from_slice(&len.to_le_bytes());
    }

    /// An Ethernet interface with `if_tsresol` and `if_tsoffset` options.
    fn iface(&mut self, tsresol: u8, tsoffset: i64) {
        let mut b = 1u16.to_le_bytes().to_vec();
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&65535u32.to_le_bytes());
        b.extend_from_slice(&9u16.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&[tsresol, 0, 0, 0]);
        b.extend_from_slice(&14u16.to_le_bytes());
        b.extend_from_slice(&8u16.to_le_bytes());
        b.extend_from_slice(&tsoffset.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        self.block(1, &b);
    }

    fn packet(&mut self, iface: u32, ts: u64, frame: &[u8]) {
        let mut b = iface.to_le_bytes().to_vec();
        b.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        b.extend_from_slice(&(ts as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        b.extend_from_slice(frame);
        self.block(6, &b);
    }
}

/// Ethernet/IPv4/TCP, no payload: 10.0.x.y:port → 10.1.0.1:443 with the given TCP flags.
fn tcp_frame(n: u32, flags: u8) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00];
    let src = [10, 0, (n >> 8) as u8, n as u8];
    f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&[10, 1, 0, 1]);
    f.extend_from_slice(&(40000 + (n % 20000) as u16).to_be_bytes());
    f.extend_from_slice(&443u16.to_be_bytes());
    f.extend_from_slice(&n.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    f
}

/// One sample's value in a Prometheus text exposition.
fn metric(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn overflowing_timestamps_are_counted_not_wrapped() {
    const FLOWS: u32 = 2000;
    let mut ng = PcapNg::new();
    ng.iface(6, 0); // 0: µs, a good packet first
    ng.iface(0, 0); // 1: seconds, the probe's 2^63
    ng.iface(1, 0); // 2: tenths of a second, the probe's 2^64−1
    ng.iface(9, i64::MIN); // 3: ns, offset far before 1970
    ng.packet(0, 1_700_000_000_000_000, &tcp_frame(FLOWS, 0x02));
    for n in 0..FLOWS {
        ng.packet(1 + n % 3, [1 << 63, u64::MAX, 5][(n % 3) as usize], &tcp_frame(n, 0x02));
    }
    for n in 0..FLOWS {
        ng.packet(1 + n % 3, [1 << 63, u64::MAX, 5][(n % 3) as usize], &tcp_frame(n, 0x10));
    }
    let file = tmp("bad-ts.pcapng");
    std::fs::write(&file, &ng.0).unwrap();
    let prom = tmp("bad-ts.prom");
    let args =
        ["replay", "--format", "text", "--stats", "--metrics-out", prom.to_str().unwrap(), file.to_str().unwrap()];
    let (code, out, err, _) = tlsmon(&args);
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let bad = 2 * FLOWS as u64;
    assert!(out.contains(&format!("{bad}  bad_timestamp ")), "the summary states the loss: {out}");
    assert!(err.contains(&format!("{bad}  bad_timestamp ")), "--stats states the loss: {err}");
    assert!(err.contains(&format!("bad_timestamps: {bad},")), "{err}");
    let prom = std::fs::read_to_string(prom).unwrap();
    assert_eq!(metric(&prom, "tlsmon_parse_anomalies_total{kind=\"bad_timestamp\"}"), Some(bad), "{prom}");
    assert_eq!(metric(&prom, "tlsmon_packets_total"), Some(bad + 1), "{prom}");
    // Every bad packet took the last good time: no flow idled out, none was evicted.
    assert_eq!(metric(&prom, "tlsmon_flows_total{event=\"created\"}"), Some(FLOWS as u64 + 1), "{prom}");
    assert_eq!(metric(&prom, "tlsmon_flows_total{event=\"expired\"}"), Some(0), "{prom}");
}

#[test]
fn huge_record_is_refused_before_allocating() {
    // pcap: the 24-byte file header, then one 16-byte record header claiming 4 GiB − 1.
    let mut pcap = 0xa1b2_c3d4u32.to_le_bytes().to_vec();
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&65535u32.to_le_bytes());
    pcap.extend_from_slice(&1u32.to_le_bytes());
    pcap.extend_from_slice(&[0; 8]);
    pcap.extend_from_slice(&u32::MAX.to_le_bytes());
    pcap.extend_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(pcap.len(), 40);
    // pcapng: the section header, then an enhanced packet block header claiming 4 GiB − 4.
    let mut ng = PcapNg::new().0;
    ng.extend_from_slice(&6u32.to_le_bytes());
    ng.extend_from_slice(&0xffff_fffcu32.to_le_bytes());
    ng.extend_from_slice(&[0; 8]);
    for (name, bytes, offset) in [("huge.pcap", &pcap, 24), ("huge.pcapng", &ng, 28)] {
        let file = tmp(name);
        std::fs::write(&file, bytes).unwrap();
        let (code, out, err, rss_kib) = tlsmon(&["replay", "--format", "json", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(out.is_empty(), "{name}: {out}");
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        let want = format!("tlsmon: error: {}: corrupt capture at byte offset {offset}: ", file.display());
        assert!(err.starts_with(&want), "{name}: {err}");
        assert!(rss_kib < 32 << 10, "{name}: peak RSS {rss_kib} KiB");
    }
}
