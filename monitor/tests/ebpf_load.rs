//! Privileged kernel test: loads the embedded eBPF object, has the kernel verifier accept both
//! programs, and runs them through BPF_PROG_TEST_RUN on real frames, asserting the returned
//! action (always pass) and the exact per-CPU counter deltas.
//! Must never be skipped: it needs root (CI runs as root) and fails loudly without it.
use aya::{
    maps::PerCpuArray,
    programs::{SchedClassifier, TestRun, TestRunOptions, Xdp},
    Ebpf,
};
use monitor::ebpf_obj::{EBPF_OBJECT, TC_PROGRAM, XDP_PROGRAM};
use monitor_common::{counter, COUNTERS_MAP, RING_MAP};

/// `TC_ACT_PIPE` from linux/pkt_cls.h.
const TC_ACT_PIPE: u32 = 3;
/// `XDP_PASS` from linux/bpf.h.
const XDP_PASS: u32 = 2;

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

/// The ClientHello frame with the IPv4 more-fragments flag set.
fn fragment_frame() -> Vec<u8> {
    let mut f = unhex(TLS12_CLIENT_HELLO);
    f[14 + 6] |= 0x20;
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

/// Fragment header (offset 0, more-fragments set, id 1) then TCP.
fn ipv6_fragment_frame() -> Vec<u8> {
    ipv6_with_ext_header(44, [6, 0, 0, 1, 0, 0, 0, 1])
}

fn require_root() {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .expect("Uid line in /proc/self/status");
    assert!(
        euid == "0",
        "ebpf_load needs root (CAP_BPF + CAP_NET_ADMIN) to load programs and run \
         BPF_PROG_TEST_RUN; run it through `cargo xtask test` as root (CI is root), euid={euid}"
    );
}

/// Loads the object and both programs; fails with the verifier log if the kernel refuses.
fn load() -> Ebpf {
    require_root();
    let mut ebpf = Ebpf::load(EBPF_OBJECT).unwrap_or_else(|e| panic!("Ebpf::load: {e:?}"));
    let tc: &mut SchedClassifier = ebpf
        .program_mut(TC_PROGRAM)
        .unwrap_or_else(|| panic!("program {TC_PROGRAM} missing from the object"))
        .try_into()
        .expect("tlsmon_tc is a classifier");
    tc.load().unwrap_or_else(|e| panic!("loading {TC_PROGRAM}: {e}"));
    let xdp: &mut Xdp = ebpf
        .program_mut(XDP_PROGRAM)
        .unwrap_or_else(|| panic!("program {XDP_PROGRAM} missing from the object"))
        .try_into()
        .expect("tlsmon_xdp is an XDP program");
    xdp.load().unwrap_or_else(|e| panic!("loading {XDP_PROGRAM}: {e}"));
    ebpf
}

/// Sum over CPUs of every counter.
fn counters(ebpf: &Ebpf) -> [u64; N] {
    let map = ebpf.map(COUNTERS_MAP).unwrap_or_else(|| panic!("map {COUNTERS_MAP} missing"));
    let array = PerCpuArray::<_, u64>::try_from(map).expect("COUNTERS is a per-CPU array");
    assert_eq!(array.len(), counter::COUNT);
    let mut out = [0u64; N];
    for (i, slot) in out.iter_mut().enumerate() {
        let per_cpu = array.get(&(i as u32), 0).expect("read counter");
        *slot = per_cpu.iter().sum();
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Prog {
    Tc,
    Xdp,
}

/// Runs one program on `frame` `repeat` times; returns (action, counter deltas).
fn run(ebpf: &Ebpf, prog: Prog, frame: &[u8], repeat: u32) -> (u32, [u64; N]) {
    let before = counters(ebpf);
    let opts = TestRunOptions { data_in: Some(frame), repeat, ..TestRunOptions::default() };
    let result = match prog {
        Prog::Tc => {
            let p: &SchedClassifier = ebpf.program(TC_PROGRAM).unwrap().try_into().unwrap();
            p.test_run(opts)
        }
        Prog::Xdp => {
            let p: &Xdp = ebpf.program(XDP_PROGRAM).unwrap().try_into().unwrap();
            p.test_run(opts)
        }
    }
    .unwrap_or_else(|e| panic!("BPF_PROG_TEST_RUN {prog:?}: {e}"));
    let after = counters(ebpf);
    let mut delta = [0u64; N];
    for i in 0..N {
        delta[i] = after[i] - before[i];
    }
    (result.return_value, delta)
}

fn expected(pairs: &[(u32, u64)]) -> [u64; N] {
    let mut e = [0u64; N];
    for &(i, v) in pairs {
        e[i as usize] += v;
    }
    e
}

fn pass_action(prog: Prog) -> u32 {
    match prog {
        Prog::Tc => TC_ACT_PIPE,
        Prog::Xdp => XDP_PASS,
    }
}

/// Each case: name, frame, counters that must move besides PACKETS.
fn cases() -> Vec<(&'static str, Vec<u8>, Option<u32>)> {
    vec![
        ("ipv4 tcp clienthello", unhex(TLS12_CLIENT_HELLO), None),
        ("ipv6 tcp syn", unhex(IPV6_SYN), None),
        ("ipv6 hop-by-hop tcp", ipv6_hop_by_hop_frame(), None),
        ("vlan ipv6 udp", unhex(VLAN_IPV6_UDP), None),
        ("arp", unhex(ARP_REQUEST), Some(counter::NOT_IP)),
        ("ipv4 icmp", icmp_frame(), Some(counter::NOT_TCP_UDP)),
        ("ipv4 fragment", fragment_frame(), Some(counter::IP_FRAGMENT)),
        ("ipv6 fragment", ipv6_fragment_frame(), Some(counter::IP_FRAGMENT)),
        ("truncated tcp header", truncated_tcp_frame(), Some(counter::TRUNCATED_HEADER)),
    ]
}

fn check_program(prog: Prog) {
    let ebpf = load();
    assert!(ebpf.map(RING_MAP).is_some(), "ring buffer map {RING_MAP} missing");
    assert_eq!(counters(&ebpf), [0; N], "counters start at zero");
    for (name, frame, reason) in cases() {
        let (action, delta) = run(&ebpf, prog, &frame, 1);
        assert_eq!(action, pass_action(prog), "{prog:?} {name}: action");
        let mut want = vec![(counter::PACKETS, 1)];
        want.extend(reason.map(|r| (r, 1)));
        assert_eq!(delta, expected(&want), "{prog:?} {name}: counter deltas");
    }
    // Repeated runs add up across CPUs: 1000 TCP frames and 1000 ARP frames.
    let (action, delta) = run(&ebpf, prog, &unhex(TLS12_CLIENT_HELLO), 1000);
    assert_eq!(action, pass_action(prog));
    assert_eq!(delta, expected(&[(counter::PACKETS, 1000)]), "{prog:?} repeat tcp");
    let (action, delta) = run(&ebpf, prog, &unhex(ARP_REQUEST), 1000);
    assert_eq!(action, pass_action(prog));
    assert_eq!(delta, expected(&[(counter::PACKETS, 1000), (counter::NOT_IP, 1000)]), "{prog:?} repeat arp");
}

#[test]
fn tc_classifier_loads_passes_and_counts() {
    check_program(Prog::Tc);
}

#[test]
fn xdp_program_loads_passes_and_counts() {
    check_program(Prog::Xdp);
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
