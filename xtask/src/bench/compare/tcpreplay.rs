//! `bench compare --live`, the sender's side: tcpreplay's closing summary parsed into numbers.
//! Must never invent a figure tcpreplay did not print: a missing line is `None`.

/// What one tcpreplay run said it sent.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sent {
    pub packets: u64,
    /// Bytes on the wire (frames, without the pcap record headers).
    pub bytes: u64,
    pub secs: f64,
    pub failed: u64,
}

/// From `Actual: 332223 packets (296082648 bytes) sent in 0.497285 seconds` and
/// `Failed packets: 0`; `None` without the Actual line.
pub fn parse(text: &str) -> Option<Sent> {
    let line = |prefix: &str| text.lines().map(str::trim).find_map(|l| l.strip_prefix(prefix).map(str::trim));
    let actual = line("Actual:")?;
    let w: Vec<&str> = actual.split_whitespace().collect();
    let packets = w.first()?.parse().ok()?;
    let bytes = w.get(2)?.trim_start_matches('(').parse().ok()?;
    let at = w.iter().position(|x| *x == "in")?;
    let secs = w.get(at + 1)?.parse().ok()?;
    let failed = line("Failed packets:").and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(Sent { packets, bytes, secs, failed })
}

/// Parallel streams as one: packets, bytes and failures summed, the longest stream's time.
pub fn total(streams: &[Sent]) -> Sent {
    streams.iter().fold(Sent::default(), |a, s| Sent {
        packets: a.packets + s.packets,
        bytes: a.bytes + s.bytes,
        secs: a.secs.max(s.secs),
        failed: a.failed + s.failed,
    })
}

impl Sent {
    pub fn mbps(&self) -> f64 {
        self.bytes as f64 * 8.0 / 1e6 / self.secs.max(1e-9)
    }

    pub fn kpps(&self) -> f64 {
        self.packets as f64 / 1e3 / self.secs.max(1e-9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// tcpreplay 4.4.3's output for target/bench/mix.pcap (300 MB, seed 1) sent at top speed
    /// over a veth pair on the bench machine.
    const SAMPLE: &str = "\
Actual: 332223 packets (296082648 bytes) sent in 0.497285 seconds
Rated: 595398308.8 Bps, 4763.18 Mbps, 668073.63 pps
Statistics for network device: a0
\tSuccessful packets:        332223
\tFailed packets:            7
\tTruncated packets:         0
\tRetried packets (ENOBUFS): 0
\tRetried packets (EAGAIN):  0
";

    #[test]
    fn parses_the_summary() {
        let s = parse(SAMPLE).expect("parsed");
        assert_eq!(s, Sent { packets: 332223, bytes: 296082648, secs: 0.497285, failed: 7 });
        assert!((s.mbps() - 4763.18).abs() < 0.5, "{}", s.mbps());
        assert!((s.kpps() - 668.07).abs() < 0.01, "{}", s.kpps());
    }

    #[test]
    fn no_summary_is_none() {
        assert_eq!(parse("tcpreplay: Fatal Error: failed to open device a0\n"), None);
        assert_eq!(parse("Actual: lots of packets\n"), None);
    }

    #[test]
    fn streams_add_up_over_the_longest_time() {
        let a = Sent { packets: 10, bytes: 1000, secs: 2.0, failed: 1 };
        let b = Sent { packets: 30, bytes: 3000, secs: 4.0, failed: 0 };
        let t = total(&[a, b]);
        assert_eq!(t, Sent { packets: 40, bytes: 4000, secs: 4.0, failed: 1 });
        assert!((t.mbps() - 0.008).abs() < 1e-12);
    }
}
