//! Privileged kernel test: loads the embedded eBPF object, has the kernel verifier accept the
//! programs, and runs them through BPF_PROG_TEST_RUN on real and built frames, asserting the
//! returned action (always pass), the exact per-CPU counter deltas and the records written.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
use monitor::capture::testrun::{tcp_frame, tls_record, Hook, KernelModel};
use monitor_common::decode::parse_record;
use monitor_common::{counter, kind, record_flags, tcp_flags, KernelConfig, RecordHeader, HEADER_LEN};

const N: usize = counter::COUNT as usize;

/// Frame 4 of ../shared/corpus/pcaps/zeek__tls1.2.pcap (zeek/zeek testing/btest/Traces):
/// Ethernet / IPv4 / TCP (timestamps option) carrying a TLS 1.2 ClientHello, 388 bytes.
const TLS12_CLIENT_HELLO: &str = concat!(
    "d8306248c5b5b8f6b116116d080045000176e61140004006b82b0a00005044e94c0cdd3d01bb56edba5220da7b508018",
    "2040817f00000101080a30386515071a6678160301013d01000139030350e731d038d05540f1aa6d49b553450b82a4e0",
    "9e47f3dd1fee79a65bccd704900000a0c030c02cc028c024c014c00ac022c02100a3009f006b006a0039003800880087",
    "c032c02ec02ac026c00fc005009d003d00350084c012c008c01cc01b00160013c00dc003000ac02fc02bc027c023c013",
    "c009c01fc01e00a2009e0067004000330032009a009900450044c031c02dc029c025c00ec004009c003c002f00960041",
    "0007c011c007c00cc002000500040015001200090014001100080006000300ff020100006f000b000403000102000a00",
    "340032000e000d0019000b000c00180009000a0016001700080006000700140015000400050012001300010002000300",
    "0f0010001100230000000d00220020060106020603050105020503040104020403030103020303020102020203010100",
    "0f000101",
);

/// Frame 1 of ../shared/corpus/pcaps/ja4__ipv6-tls-alpn-h2.pcap (FoxIO-LLC/ja4): an IPv6 TCP
/// SYN with options. That capture is DLT_NULL, so the 4-byte loopback header is replaced by an
/// Ethernet header (locally administered MACs, EtherType 0x86dd).
const IPV6_SYN: &str = concat!(
    "020000000002020000000001",
    "86dd",
    "60025bab002c064020014998ef830014800000000000100d2606470000000000000000006811d209fa2201bb33152f2a",
    "00000000b002ffffd20b000002040542010303060101080a6e69087c0000000004020000",
);

/// The first 82 bytes of the only frame of ../shared/corpus/pcaps/arkime__quicietf-vlan-ipv6.pcap
/// (arkime/arkime tests): Ethernet / 802.1Q / IPv6 / UDP 443 (QUIC Initial, payload cut).
const VLAN_IPV6_UDP: &str = concat!(
    "0010dbff1001f80f6fa1a03c810003b486dd600f0500053a114020014998ef5e002b00000000000012a02607f8b04004",
    "08350000000000002003e00501bb053af3b1c700000001083233ff7a63cd9d380037",
);

/// An ARP who-has (made up; documentation addresses 192.0.2.1 → 192.0.2.2): not IP.
const ARP_REQUEST: &str =
    concat!("ffffffffffff020000000001", "0806", "0001080006040001020000000001c0000201000000000000c0000202",);

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex fixture");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex fixture")).collect()
}

/// The ClientHello frame with IPv4 protocol set to ICMP (1): IP but neither TCP nor UDP.
fn icmp_frame() -> Vec<u8> {
    let mut f = unhex(TLS12_CLIENT_HELLO);
    f[14 + 9] = 1;
    f
}

/// The ClientHello frame as a non-first IPv4 fragment (offset 185 × 8 bytes).
fn fragment_frame() -> Vec<u8> {
    let mut f = unhex(TLS12_CLIENT_HELLO);
    f[14 + 6] = 0;
    f[14 + 7] = 185;
    f
}

/// The ClientHello frame cut inside its TCP header (14 + 20 + 10 bytes).
fn truncated_tcp_frame() -> Vec<u8> {
    let mut f = unhex(TLS12_CLIENT_HELLO);
    f.truncate(44);
    f
}

/// The IPv6 SYN with an extension header of 8 bytes inserted before TCP.
fn ipv6_with_ext_header(next_header: u8, ext: [u8; 8]) -> Vec<u8> {
    let mut f = unhex(IPV6_SYN);
    let payload_len = u16::from_be_bytes([f[18], f[19]]) + 8;
    f[18..20].copy_from_slice(&payload_len.to_be_bytes());
    f[14 + 6] = next_header;
    f.splice(14 + 40..14 + 40, ext);
    f
}

/// Hop-by-hop options header (PadN, 8 bytes) then TCP: the parser must walk past it.
fn ipv6_hop_by_hop_frame() -> Vec<u8> {
    ipv6_with_ext_header(0, [6, 0, 1, 4, 0, 0, 0, 0])
}

/// Fragment header (offset 1 × 8 bytes, more-fragments set, id 1): a non-first fragment.
fn ipv6_fragment_frame() -> Vec<u8> {
    ipv6_with_ext_header(44, [6, 0, 0, 9, 0, 0, 0, 1])
}

fn require_root() {
    let missing = monitor::capture::ebpf::missing_capabilities();
    assert!(
        missing.is_empty(),
        "ebpf_load loads eBPF programs (BPF_PROG_TEST_RUN) and needs root (or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON), missing {missing:?}; \
         run it through `cargo xtask test` as root, as CI does"
    );
}

/// Loads the object with the default settings; fails with the verifier log if the kernel
/// refuses a program.
fn load() -> KernelModel {
    require_root();
    KernelModel::load(&KernelConfig::default()).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)))
}

/// Runs `hook` on `frame` `repeat` times; returns (action, counter deltas, records written).
fn run(k: &mut KernelModel, hook: Hook, frame: &[u8], repeat: u32) -> (u32, [u64; N], Vec<Vec<u8>>) {
    let before = k.counters().expect("counters");
    let r = k.run(hook, frame, repeat).unwrap_or_else(|e| panic!("{:?}", anyhow::Error::from(e)));
    let after = k.counters().expect("counters");
    let mut delta = [0u64; N];
    for i in 0..N {
        delta[i] = after[i] - before[i];
    }
    let mut records = Vec::new();
    k.drain(|b| records.push(b.to_vec()));
    (r.action, delta, records)
}

fn expected(pairs: &[(u32, u64)]) -> [u64; N] {
    let mut e = [0u64; N];
    for &(i, v) in pairs {
        e[i as usize] += v;
    }
    e
}

/// One frame, the counters that move besides PACKETS and PACKET_BYTES, and the payload length
/// of each record expected (lifecycle records: 0).
type Case = (&'static str, Vec<u8>, Vec<(u32, u64)>, Vec<usize>);

fn cases() -> Vec<Case> {
    let rec = |payload: u64| vec![(counter::RECORDS, 1), (counter::RECORD_BYTES, HEADER_LEN as u64 + payload)];
    let opens = |mut moved: Vec<(u32, u64)>| {
        moved.push((counter::FLOWS_OPENED, 1));
        moved
    };
    let mut quic = rec(16);
    quic.extend([(counter::QUIC_INITIAL, 1), (counter::PAYLOAD_TRUNCATED, 1)]);
    vec![
        ("ipv4 tcp clienthello", unhex(TLS12_CLIENT_HELLO), opens(rec(322)), vec![322]),
        ("ipv6 tcp syn", unhex(IPV6_SYN), opens(rec(0)), vec![0]),
        // The same flow as the SYN: no new entry.
        ("ipv6 hop-by-hop tcp", ipv6_hop_by_hop_frame(), rec(0), vec![0]),
        ("vlan ipv6 udp quic initial (cut)", unhex(VLAN_IPV6_UDP), quic, vec![16]),
        ("arp", unhex(ARP_REQUEST), vec![(counter::NOT_IP, 1)], vec![]),
        ("ipv4 icmp", icmp_frame(), vec![(counter::NOT_TCP_UDP, 1)], vec![]),
        ("ipv4 non-first fragment", fragment_frame(), vec![(counter::IP_FRAGMENT, 1)], vec![]),
        ("ipv6 non-first fragment", ipv6_fragment_frame(), vec![(counter::IP_FRAGMENT, 1)], vec![]),
        ("truncated tcp header", truncated_tcp_frame(), vec![(counter::TRUNCATED_HEADER, 1)], vec![]),
    ]
}

fn check_program(hook: Hook) {
    let mut k = load();
    assert_eq!(k.counters().unwrap(), [0; N], "counters start at zero");
    for (name, frame, moved, lens) in cases() {
        let (action, delta, records) = run(&mut k, hook, &frame, 1);
        assert_eq!(action, hook.pass_action(), "{hook:?} {name}: action");
        let mut want = vec![(counter::PACKETS, 1), (counter::PACKET_BYTES, frame.len() as u64)];
        want.extend(moved);
        assert_eq!(delta, expected(&want), "{hook:?} {name}: counter deltas");
        let got: Vec<usize> = records.iter().map(|r| parse_record(r).expect("valid record").payload.len()).collect();
        assert_eq!(got, lens, "{hook:?} {name}: records");
    }
    // The ClientHello record carries the segment's exact bytes and tuple.
    let ch = unhex(TLS12_CLIENT_HELLO);
    let (_, _, records) = run(&mut k, hook, &ch, 1);
    let r = parse_record(&records[0]).unwrap();
    assert_eq!(r.payload, &ch[66..]);
    assert_eq!((r.header.kind, r.header.ip_version, r.header.protocol), (kind::TCP_PAYLOAD, 4, 6));
    assert_eq!((r.header.src_port, r.header.dst_port), (56637, 443));
    assert_eq!(&r.header.src_addr[..4], &[10, 0, 0, 80]);
    assert_eq!(r.header.seq, u32::from_be_bytes([ch[38], ch[39], ch[40], ch[41]]));
    assert_eq!(r.header.flags, 0);
    // Repeated runs add up across CPUs: 1000 ClientHellos (retransmissions inside the head are
    // forwarded) and 1000 ARP frames.
    let (_, delta, records) = run(&mut k, hook, &ch, 1000);
    assert_eq!(
        delta,
        expected(&[
            (counter::PACKETS, 1000),
            (counter::PACKET_BYTES, 388_000),
            (counter::RECORDS, 1000),
            // 322 payload bytes (the ClientHello) and a header each.
            (counter::RECORD_BYTES, 1000 * (HEADER_LEN as u64 + 322))
        ]),
        "{hook:?} repeat tcp"
    );
    assert_eq!(records.len(), 1000);
    let arp = unhex(ARP_REQUEST);
    let (_, delta, _) = run(&mut k, hook, &arp, 1000);
    assert_eq!(
        delta,
        expected(&[(counter::PACKETS, 1000), (counter::PACKET_BYTES, 42_000), (counter::NOT_IP, 1000)]),
        "{hook:?} repeat arp"
    );
}

#[test]
fn tc_classifier_loads_passes_and_counts() {
    check_program(Hook::Tc);
}

#[test]
fn xdp_program_loads_passes_and_counts() {
    check_program(Hook::Xdp);
}

struct Flow<'a> {
    k: &'a mut KernelModel,
    hook: Hook,
}

impl Flow<'_> {
    /// Runs one frame; returns the counter deltas and the records (header, payload length).
    fn send(&mut self, frame: Vec<u8>) -> ([u64; N], Vec<(RecordHeader, usize)>) {
        let (action, delta, records) = run(self.k, self.hook, &frame, 1);
        assert_eq!(action, self.hook.pass_action());
        let recs = records
            .iter()
            .map(|b| {
                let r = parse_record(b).expect("valid record");
                (r.header, r.payload.len())
            })
            .collect();
        (delta, recs)
    }
}

fn check_flow_logic(hook: Hook) {
    let mut k = load();
    let mut f = Flow { k: &mut k, hook };
    let c = counter::RECORDS as usize;

    // TLS on 443: SYN and SYN-ACK go out as lifecycle records.
    let (_, r) = f.send(tcp_frame(true, 443, 1000, "S", &[]));
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].0.kind, r[0].0.tcp_flags & tcp_flags::SYN, r[0].1), (kind::TCP_LIFECYCLE, tcp_flags::SYN, 0));
    let (_, r) = f.send(tcp_frame(false, 443, 5000, "SA", &[]));
    assert_eq!(r.len(), 1);
    // ClientHello: captured.
    let hello = tls_record(22, 300, 1);
    let (_, r) = f.send(tcp_frame(true, 443, 1001, "AP", &hello));
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), vec![305]);
    assert_eq!(r[0].0.seq, 1001);
    // Server: ServerHello + ChangeCipherSpec + application data in one segment: captured, and
    // the direction is done after it.
    let mut flight = tls_record(22, 90, 2);
    flight.extend(tls_record(20, 1, 1));
    flight.extend(tls_record(23, 40, 0));
    let (_, r) = f.send(tcp_frame(false, 443, 5001, "AP", &flight));
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].0.flags & record_flags::DIR_DONE, record_flags::DIR_DONE);
    // Cut right after the application-data header: 95 + 6 + 5 bytes, no ciphertext.
    assert_eq!(r[0].1, 95 + 6 + 5);
    assert_eq!(r[0].0.flags & record_flags::TRUNCATED, 0);
    let (d, r) = f.send(tcp_frame(false, 443, 5001 + flight.len() as u32, "AP", &tls_record(23, 500, 0)));
    assert!(r.is_empty());
    assert_eq!((d[counter::DIR_DONE as usize], d[c]), (1, 0));
    // A record header split across segments is still followed: the client's application data
    // arrives after a handshake record cut in two; a ChangeCipherSpec alone does not end the
    // head (TLS 1.3 sends one before a second ClientHello).
    let ckx = tls_record(22, 100, 16);
    let next = 1001 + hello.len() as u32;
    let (_, r) = f.send(tcp_frame(true, 443, next, "AP", &ckx[..50]));
    assert_eq!(r.len(), 1);
    let mut rest = ckx[50..].to_vec();
    rest.extend(tls_record(20, 1, 1));
    let (_, r) = f.send(tcp_frame(true, 443, next + 50, "AP", &rest));
    assert_eq!(r[0].0.flags & record_flags::DIR_DONE, 0);
    let next = next + 50 + rest.len() as u32;
    let rest = tls_record(23, 40, 0);
    let (_, r) = f.send(tcp_frame(true, 443, next, "AP", &rest));
    assert_eq!(r[0].0.flags & record_flags::DIR_DONE, record_flags::DIR_DONE);
    let (d, _) = f.send(tcp_frame(true, 443, next + rest.len() as u32, "AP", &tls_record(23, 64, 0)));
    assert_eq!(d[counter::DIR_DONE as usize], 1);
    // FIN after the head: still a lifecycle record, so the agent can close the flow.
    let (_, r) = f.send(tcp_frame(true, 443, 9999, "AF", &[]));
    assert_eq!((r.len(), r[0].0.kind), (1, kind::TCP_LIFECYCLE));
    // Both directions done: their data leaves on the decided path. A new connection on the
    // same 4-tuple (its SYN) starts over, and its ClientHello is captured again.
    let (d, r) = f.send(tcp_frame(false, 443, 90_000, "AP", &tls_record(23, 900, 0)));
    assert!(r.is_empty());
    assert_eq!(d[counter::DIR_DONE as usize], 1);
    let (_, r) = f.send(tcp_frame(true, 443, 20_000, "S", &[]));
    assert_eq!(r.len(), 1);
    let (_, r) = f.send(tcp_frame(true, 443, 20_001, "AP", &hello));
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), vec![305]);

    // Plaintext HTTP on 80: captured up to the client budget (8 KiB) in 2 KiB records, the
    // first segment larger than one record.
    let (_, _) = f.send(tcp_frame(true, 80, 0, "S", &[]));
    let mut get = b"GET /fhir/Patient HTTP/1.1\r\n".to_vec();
    get.resize(2500, b'x');
    let (_, r) = f.send(tcp_frame(true, 80, 1, "AP", &get));
    assert_eq!(r.iter().map(|x| (x.0.seq, x.1)).collect::<Vec<_>>(), vec![(1, 2048), (2049, 452)]);
    let mut seq = 1 + 2500;
    let mut carried = 2500;
    for _ in 0..5 {
        let (_, r) = f.send(tcp_frame(true, 80, seq, "A", &[b'y'; 1400]));
        carried += r.iter().map(|x| x.1).sum::<usize>();
        seq += 1400;
    }
    assert_eq!(carried, 8192, "client budget");
    let (d, r) = f.send(tcp_frame(true, 80, seq, "A", &[b'z'; 100]));
    assert!(r.is_empty());
    assert_eq!(d[counter::BUDGET_EXHAUSTED as usize], 1);
    // Past its budget, a retransmission of the head is still captured (the grant is checked
    // per segment, not remembered), and a SYN on the 4-tuple starts a new flow whose head is
    // captured.
    let (_, r) = f.send(tcp_frame(true, 80, 1, "AP", &get[..100]));
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), vec![100]);
    f.send(tcp_frame(true, 80, 50_000, "S", &[]));
    let (_, r) = f.send(tcp_frame(true, 80, 50_001, "AP", &get[..200]));
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), vec![200]);

    // VNC on 5900: neither TLS nor a candidate; ignored from its first payload on.
    f.send(tcp_frame(true, 5900, 70, "S", &[]));
    let (d, r) = f.send(tcp_frame(false, 5900, 500, "AP", b"RFB 003.008\n"));
    assert!(r.is_empty());
    assert_eq!(d[counter::NOT_CANDIDATE as usize], 1);
    let (d, r) = f.send(tcp_frame(true, 5900, 71, "AP", b"RFB 003.008\n"));
    assert!(r.is_empty());
    assert_eq!(d[counter::FLOW_IGNORED as usize], 1);
    // A new SYN on the same 4-tuple starts over.
    let (_, r) = f.send(tcp_frame(true, 5900, 9000, "S", &[]));
    assert_eq!(r.len(), 1);

    // SSH: a candidate by its banner on any port (the server speaks first here) and on 22 by
    // port; both banners are captured.
    f.send(tcp_frame(true, 2222, 80, "S", &[]));
    let (_, r) = f.send(tcp_frame(false, 2222, 600, "AP", b"SSH-2.0-OpenSSH_9.2\r\n"));
    assert_eq!((r.len(), r[0].1), (1, 21));
    let (_, r) = f.send(tcp_frame(true, 2222, 81, "AP", b"SSH-2.0-client\r\n"));
    assert_eq!((r.len(), r[0].1), (1, 16));
    f.send(tcp_frame(true, 22, 90, "S", &[]));
    let (_, r) = f.send(tcp_frame(false, 22, 700, "AP", b"SSH-2.0-OpenSSH_9.2\r\n"));
    assert_eq!(r.len(), 1);

    // The second segment of a ClientHello overtakes the first: it is captured, and the flow is
    // judged by the first when that arrives (not ignored for starting mid-record).
    f.send(tcp_frame(true, 4443, 300, "S", &[]));
    let big_hello = tls_record(22, 1900, 1);
    let (d, r) = f.send(tcp_frame(true, 4443, 301 + 1000, "AP", &big_hello[1000..]));
    assert_eq!((r.len(), d[counter::NOT_CANDIDATE as usize]), (1, 0));
    let (d, r) = f.send(tcp_frame(true, 4443, 301, "AP", &big_hello[..1000]));
    assert_eq!((r.len(), r[0].1, d[counter::NOT_CANDIDATE as usize]), (1, 1000, 0));

    // A mid-stream TLS flow (agent started late): application data first is not a candidate.
    let (d, r) = f.send(tcp_frame(true, 8443, 1, "AP", &tls_record(23, 200, 0)));
    assert!(r.is_empty());
    assert_eq!(d[counter::NOT_CANDIDATE as usize], 1);
    // Pure ACKs of unknown flows cost nothing but a counter.
    let (d, r) = f.send(tcp_frame(true, 9999, 1, "A", &[]));
    assert!(r.is_empty());
    assert_eq!(d[counter::TCP_NO_PAYLOAD as usize], 1);
}

#[test]
fn tc_flow_head_capture_logic() {
    check_flow_logic(Hook::Tc);
}

#[test]
fn xdp_flow_head_capture_logic() {
    check_flow_logic(Hook::Xdp);
}

/// The load-time settings reach the kernel: with port 22 a candidate and a 1 KiB budget, the
/// SSH flow is captured and cut at 1024 bytes.
#[test]
fn load_time_config_is_honoured() {
    require_root();
    let mut cfg = KernelConfig::default();
    cfg.ports[cfg.n_ports as usize] = 22;
    cfg.n_ports += 1;
    cfg.client_budget = 1024;
    cfg.server_budget = 1024;
    let mut k = KernelModel::load(&cfg).expect("load with config");
    let mut f = Flow { k: &mut k, hook: Hook::Tc };
    let (_, r) = f.send(tcp_frame(false, 22, 500, "AP", &[b's'; 1500]));
    assert_eq!(r.iter().map(|x| x.1).collect::<Vec<_>>(), vec![1024]);
    assert_eq!(r[0].0.flags & record_flags::TRUNCATED, record_flags::TRUNCATED);
}

#[test]
fn fixtures_are_what_they_claim() {
    // Guards the hand-edited frames: EtherTypes and the bytes the derived cases change.
    let ch = unhex(TLS12_CLIENT_HELLO);
    assert_eq!(ch.len(), 388);
    assert_eq!(&ch[12..14], &[0x08, 0x00]);
    assert_eq!(ch[14 + 9], 6, "IPv4 protocol TCP");
    assert_eq!(ch[14 + 20 + 20 + 12], 0x16, "TLS handshake record after 32-byte TCP header");
    assert_eq!(unhex(IPV6_SYN).len(), 14 + 40 + 44);
    assert_eq!(&unhex(VLAN_IPV6_UDP)[12..18], &[0x81, 0x00, 0x03, 0xb4, 0x86, 0xdd]);
    assert_eq!(unhex(ARP_REQUEST).len(), 42);
}
