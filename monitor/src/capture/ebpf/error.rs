//! Capture, live, errors: why loading or attaching failed, told so a person can act on it.
//! Classifies aya's errors by the OS error code inside them and by facts of the host (BTF,
//! capabilities). Must never guess silently: an unrecognised failure keeps aya's own message.
use std::error::Error as StdError;
use std::io;

use aya::maps::MapError;
use aya::programs::xdp::XdpError;
use aya::programs::ProgramError;

/// Path whose absence means the kernel was built without BTF.
const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const NEEDS_PRIVILEGE: &str = "tlsmon live needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON";

/// Why live capture could not start or go on. Each message names the cause and a way out.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no interface given (use --iface; `ip link` lists them)")]
    NoInterface,
    #[error("interface `{name}` is given twice")]
    DuplicateInterface { name: String },
    #[error("interface `{name}` does not exist (`ip link` lists the interfaces of this host)")]
    NoSuchInterface { name: String },
    #[error(
        "interface `{name}` carries no Ethernet header (link type {link_type}: a tunnel, WireGuard or PPP \
         device); the kernel program reads Ethernet-framed packets, so attach to the Ethernet interface \
         the tunnel runs over"
    )]
    NotEthernet { name: String, link_type: u32 },
    #[error("{what}: permission denied: {NEEDS_PRIVILEGE} ({missing})")]
    NotPrivileged {
        what: String,
        /// Which capabilities the process lacks, or why it fails although it has them.
        missing: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("{what}: this kernel has no BPF support (ENOSYS); tlsmon live needs CONFIG_BPF_SYSCALL=y")]
    NoBpf {
        what: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("{what}: this kernel has no BTF ({BTF_PATH} is missing); tlsmon live needs CONFIG_DEBUG_INFO_BTF=y")]
    NoBtf {
        what: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error(
        "interface `{iface}` already has an XDP program attached; detach it with \
         `ip link set dev {iface} xdp off` (or capture with TC: drop --xdp)"
    )]
    XdpBusy {
        iface: String,
        #[source]
        source: ProgramError,
    },
    #[error("the driver of `{iface}` has no native XDP; use --xdp-mode skb (or TC: drop --xdp)")]
    XdpNativeUnsupported {
        iface: String,
        #[source]
        source: ProgramError,
    },
    #[error("the embedded eBPF object lacks `{name}`: agent and kernel programs come from different sources")]
    ObjectMismatch { name: String },
    #[error("{what}")]
    Load {
        what: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    #[error("attaching {hook} to `{iface}`")]
    Attach {
        iface: String,
        hook: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("reading the kernel counters")]
    Counters {
        #[source]
        source: MapError,
    },
    #[error("Capture::open was called outside a tokio runtime")]
    NoRuntime,
    #[error("waiting on the ring buffer")]
    Poll {
        #[source]
        source: io::Error,
    },
}

/// Facts of this host that explain a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct HostFacts {
    btf: bool,
    /// Capabilities this process lacks among those live capture needs.
    missing_caps: Vec<&'static str>,
}

impl HostFacts {
    pub(super) fn read() -> Self {
        let cap_eff = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| parse_cap_eff(&s));
        HostFacts {
            btf: std::path::Path::new(BTF_PATH).exists(),
            missing_caps: cap_eff.map(missing_caps).unwrap_or_default(),
        }
    }

    fn missing_text(&self) -> String {
        if self.missing_caps.is_empty() {
            "the process has them: kernel lockdown or a security module may forbid BPF".to_string()
        } else {
            format!("missing: {}", self.missing_caps.join(", "))
        }
    }
}

/// Capabilities this process lacks for live capture or BPF_PROG_TEST_RUN (empty when it has
/// them, e.g. as root). Tests call it to fail loudly, not skip, when run unprivileged.
pub fn missing_capabilities() -> Vec<&'static str> {
    HostFacts::read().missing_caps
}

/// The `CapEff:` mask of a /proc/PID/status text.
fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16).ok()
}

/// Capabilities live capture needs that `cap_eff` lacks (CAP_SYS_ADMIN stands in for BPF
/// and PERFMON, as on kernels before 5.8).
fn missing_caps(cap_eff: u64) -> Vec<&'static str> {
    const NET_ADMIN: u32 = 12;
    const SYS_ADMIN: u32 = 21;
    const PERFMON: u32 = 38;
    const BPF: u32 = 39;
    let has = |bit: u32| cap_eff & (1u64 << bit) != 0;
    let mut missing = Vec::new();
    if !has(BPF) && !has(SYS_ADMIN) {
        missing.push("CAP_BPF");
    }
    if !has(NET_ADMIN) {
        missing.push("CAP_NET_ADMIN");
    }
    if !has(PERFMON) && !has(SYS_ADMIN) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// The first OS error code in an error's chain (aya wraps them in several layers).
fn errno_of(err: &(dyn StdError + 'static)) -> Option<i32> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        let code = if let Some(io) = e.downcast_ref::<io::Error>() {
            io.raw_os_error()
        } else if let Some(nl) = e.downcast_ref::<aya::sys::NetlinkError>() {
            nl.raw_os_error()
        } else if let Some(p) = e.downcast_ref::<ProgramError>() {
            match p {
                ProgramError::LoadError { io_error, .. } => io_error.raw_os_error(),
                ProgramError::SyscallError(s) => s.io_error.raw_os_error(),
                ProgramError::XdpError(XdpError::NetlinkError(nl)) | ProgramError::NetlinkError(nl) => {
                    nl.raw_os_error()
                }
                _ => None,
            }
        } else {
            None
        };
        if code.is_some() {
            return code;
        }
        cur = e.source();
    }
    None
}

/// A failure to load the object or a program.
pub(super) fn load_error<E: StdError + Send + Sync + 'static>(what: &str, err: E, host: &HostFacts) -> CaptureError {
    let what = what.to_string();
    let source: Box<dyn StdError + Send + Sync> = Box::new(err);
    match errno_of(source.as_ref()) {
        // EACCES also means "the verifier said no"; it is a privilege problem only when
        // capabilities are missing.
        Some(libc::EPERM) => CaptureError::NotPrivileged { what, missing: host.missing_text(), source },
        Some(libc::EACCES) if !host.missing_caps.is_empty() => {
            CaptureError::NotPrivileged { what, missing: host.missing_text(), source }
        }
        Some(libc::ENOSYS) => CaptureError::NoBpf { what, source },
        _ if !host.btf => CaptureError::NoBtf { what, source },
        _ => CaptureError::Load { what, source },
    }
}

/// A failure to attach `hook` to `iface`.
pub(super) fn attach_error(iface: &str, hook: &'static str, err: ProgramError, host: &HostFacts) -> CaptureError {
    let iface = iface.to_string();
    let xdp = hook.starts_with("xdp");
    if let ProgramError::UnknownInterface { .. } = err {
        return CaptureError::NoSuchInterface { name: iface };
    }
    match errno_of(&err) {
        Some(libc::EPERM | libc::EACCES) => CaptureError::NotPrivileged {
            what: format!("attaching {hook} to `{iface}`"),
            missing: host.missing_text(),
            source: Box::new(err),
        },
        Some(libc::ENODEV) => CaptureError::NoSuchInterface { name: iface },
        Some(libc::EBUSY | libc::EEXIST) if xdp => CaptureError::XdpBusy { iface, source: err },
        Some(libc::EOPNOTSUPP) if hook == "xdp (native)" => CaptureError::XdpNativeUnsupported { iface, source: err },
        _ => CaptureError::Attach { iface, hook, source: err },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aya::sys::SyscallError;
    use aya::EbpfError;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    fn syscall(code: i32) -> ProgramError {
        ProgramError::SyscallError(SyscallError { call: "bpf_link_create", io_error: os(code) })
    }

    fn privileged() -> HostFacts {
        HostFacts { btf: true, missing_caps: Vec::new() }
    }

    fn unprivileged() -> HostFacts {
        HostFacts { btf: true, missing_caps: missing_caps(0) }
    }

    fn map_create(code: i32) -> EbpfError {
        EbpfError::MapError(MapError::CreateError { name: "EVENTS".into(), io_error: os(code) })
    }

    #[test]
    fn permission_errors_say_what_is_needed() {
        let e = load_error("loading the eBPF object", map_create(libc::EPERM), &unprivileged());
        let msg = e.to_string();
        assert!(matches!(e, CaptureError::NotPrivileged { .. }), "{msg}");
        assert!(msg.contains("root") && msg.contains("CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON"), "{msg}");
        assert!(msg.contains("missing: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON"), "{msg}");
        // EPERM with every capability: say so rather than blaming the user.
        let msg = load_error("x", map_create(libc::EPERM), &privileged()).to_string();
        assert!(msg.contains("lockdown"), "{msg}");
        // EACCES with capabilities is a verifier refusal, not a privilege problem.
        assert!(matches!(load_error("x", map_create(libc::EACCES), &privileged()), CaptureError::Load { .. }));
        assert!(matches!(
            load_error("x", map_create(libc::EACCES), &unprivileged()),
            CaptureError::NotPrivileged { .. }
        ));
        assert!(matches!(
            attach_error("eth0", "tc ingress", syscall(libc::EPERM), &unprivileged()),
            CaptureError::NotPrivileged { .. }
        ));
    }

    #[test]
    fn kernel_without_bpf_or_btf() {
        let e = load_error("x", map_create(libc::ENOSYS), &privileged());
        assert!(matches!(e, CaptureError::NoBpf { .. }), "{e}");
        let no_btf = HostFacts { btf: false, missing_caps: Vec::new() };
        let e = load_error("x", map_create(libc::EINVAL), &no_btf);
        assert!(matches!(e, CaptureError::NoBtf { .. }));
        assert!(e.to_string().contains("/sys/kernel/btf/vmlinux"), "{e}");
        assert!(matches!(load_error("x", map_create(libc::EINVAL), &privileged()), CaptureError::Load { .. }));
    }

    #[test]
    fn xdp_owned_by_another_program() {
        for code in [libc::EBUSY, libc::EEXIST] {
            let e = attach_error("veth0", "xdp (skb)", syscall(code), &privileged());
            let msg = e.to_string();
            assert!(matches!(e, CaptureError::XdpBusy { .. }), "{msg}");
            assert!(msg.contains("`veth0`") && msg.contains("ip link set dev veth0 xdp off"), "{msg}");
        }
        // The same codes on TC are not about XDP.
        let e = attach_error("veth0", "tc ingress", syscall(libc::EEXIST), &privileged());
        assert!(matches!(e, CaptureError::Attach { .. }));
        let e = attach_error("lo", "xdp (native)", syscall(libc::EOPNOTSUPP), &privileged());
        assert!(e.to_string().contains("--xdp-mode skb"), "{e}");
        let e = attach_error("gone0", "tc egress", syscall(libc::ENODEV), &privileged());
        assert!(matches!(e, CaptureError::NoSuchInterface { name } if name == "gone0"));
    }

    #[test]
    fn errno_found_through_aya_wrappers() {
        let nested = EbpfError::ProgramError(syscall(libc::EBUSY));
        assert_eq!(errno_of(&nested), Some(libc::EBUSY));
        assert_eq!(errno_of(&map_create(libc::EPERM)), Some(libc::EPERM));
        assert_eq!(errno_of(&ProgramError::NotLoaded), None);
    }

    #[test]
    fn capabilities_from_proc_status() {
        let status = "Name:\ttlsmon\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        let eff = parse_cap_eff(status).expect("CapEff parses");
        assert!(missing_caps(eff).is_empty());
        let bpf_net_perfmon = (1u64 << 39) | (1 << 12) | (1 << 38);
        assert!(missing_caps(bpf_net_perfmon).is_empty());
        let sys_admin_net = (1u64 << 21) | (1 << 12);
        assert!(missing_caps(sys_admin_net).is_empty(), "CAP_SYS_ADMIN covers BPF and PERFMON");
        assert_eq!(missing_caps(1 << 12), vec!["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }
}
