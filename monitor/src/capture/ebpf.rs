//! Capture, live: loads the embedded eBPF object with the capture settings, attaches TC
//! (ingress + egress) or XDP (ingress) to interfaces, reads the per-CPU counters and consumes
//! the ring buffer through tokio's `AsyncFd`.
//! Must never panic on kernel data, never block the runtime, never hold more than one batch of
//! records, and never log payload bytes. Dropping a [`Capture`] detaches everything it attached.
use std::error::Error as StdError;
use std::ffi::CString;
use std::io;

use aya::maps::{MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::tc::{self, SchedClassifierLink};
use aya::programs::xdp::{XdpError, XdpLink};
use aya::programs::{ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode};
use aya::util::KernelVersion;
use aya::{Ebpf, EbpfError, EbpfLoader};
use monitor_common::decode::parse_record;
use monitor_common::{counter, KernelConfig, CONFIG_GLOBAL, COUNTERS_MAP, RING_MAP};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::capture::record::{self, Clock};
use crate::decode::Packet;
use crate::ebpf_obj::{EBPF_OBJECT, TC_PROGRAM, XDP_PROGRAM};

/// Most records handed on per wakeup; the rest wait in the ring for the next turn, so timers
/// and signals are served between batches. Overflow is the kernel's `ringbuf_full` counter.
pub const MAX_BATCH: usize = 4096;

/// Path whose absence means the kernel was built without BTF.
const BTF_PATH: &str = "/sys/kernel/btf/vmlinux";
const NEEDS_PRIVILEGE: &str = "tlsmon live needs root, or CAP_BPF + CAP_NET_ADMIN + CAP_PERFMON";

/// Where and how to attach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    /// TC classifier (TCX links) on ingress and egress.
    Tc,
    /// Generic XDP (any interface), ingress only.
    XdpSkb,
    /// Driver XDP, ingress only.
    XdpNative,
}

impl AttachMode {
    /// Name in the attach line: `tc`, `xdp-skb`, `xdp-native`.
    pub fn label(self) -> &'static str {
        match self {
            AttachMode::Tc => "tc",
            AttachMode::XdpSkb => "xdp-skb",
            AttachMode::XdpNative => "xdp-native",
        }
    }

    /// Directions seen: `ingress+egress` or `ingress`.
    pub fn directions(self) -> &'static str {
        match self {
            AttachMode::Tc => "ingress+egress",
            AttachMode::XdpSkb | AttachMode::XdpNative => "ingress",
        }
    }
}

/// What [`Capture::open`] sets up.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    pub ifaces: Vec<String>,
    pub mode: AttachMode,
    pub kernel: KernelConfig,
}

/// Why live capture could not start or go on. Each message names the cause and a way out.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("no interface given (use --iface; `ip link` lists them)")]
    NoInterface,
    #[error("interface `{name}` is given twice")]
    DuplicateInterface { name: String },
    #[error("interface `{name}` does not exist (`ip link` lists the interfaces of this host)")]
    NoSuchInterface { name: String },
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

/// The kernel's per-CPU counters, summed over CPUs, indexed like `monitor_common::counter`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelCounters {
    pub values: [u64; counter::COUNT as usize],
}

impl KernelCounters {
    /// One counter (`monitor_common::counter::*`); 0 for an unknown index.
    pub fn get(&self, index: u32) -> u64 {
        self.values.get(index as usize).copied().unwrap_or(0)
    }

    /// `(name, value)` pairs with the stable names of `counter::NAMES`.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        counter::NAMES.iter().copied().zip(self.values.iter().copied())
    }
}

/// What the record reader counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Records taken from the ring buffer (good and bad).
    pub records: u64,
    /// Bytes of those records, headers included.
    pub record_bytes: u64,
    /// Records that failed `parse_record` (skipped).
    pub bad_records: u64,
    /// Batches that stopped at [`MAX_BATCH`] with records left for the next turn.
    pub capped_batches: u64,
}

enum AttachedLink {
    Tc(SchedClassifierLink),
    Xdp(XdpLink),
}

/// An attached capture. Field order is drop order: links (detach) before maps and programs.
pub struct Capture {
    links: Vec<AttachedLink>,
    ring: AsyncFd<RingBuf<MapData>>,
    counters: PerCpuArray<MapData, u64>,
    _ebpf: Ebpf,
    clock: Clock,
    /// The last batch stopped at its cap: records are waiting without a new wakeup.
    backlog: bool,
    mode: AttachMode,
    ifaces: Vec<String>,
    pub stats: ReaderStats,
}

impl Capture {
    /// Check the interfaces, load the object with `cfg.kernel`, load the program and attach it
    /// to every interface. Must run inside a tokio runtime (the ring buffer is registered with
    /// its reactor). On any error, whatever was attached is detached again.
    pub fn open(cfg: &CaptureConfig) -> Result<Capture, CaptureError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(CaptureError::NoRuntime);
        }
        check_interfaces(&cfg.ifaces)?;
        raise_memlock_limit();
        let mut ebpf = EbpfLoader::new().override_global(CONFIG_GLOBAL, &cfg.kernel, true).load(EBPF_OBJECT).map_err(
            |e| match e {
                EbpfError::ParseError(aya_obj::ParseError::SymbolNotFound { name }) => {
                    CaptureError::ObjectMismatch { name }
                }
                e => load_error("loading the eBPF object (maps and BTF)", e, &HostFacts::read()),
            },
        )?;
        let ring = take_map(&mut ebpf, RING_MAP, RingBuf::try_from)?;
        let counters = take_map(&mut ebpf, COUNTERS_MAP, PerCpuArray::<MapData, u64>::try_from)?;
        let links = match cfg.mode {
            AttachMode::Tc => attach_tc(&mut ebpf, &cfg.ifaces)?,
            AttachMode::XdpSkb => attach_xdp(&mut ebpf, &cfg.ifaces, XdpMode::Skb)?,
            AttachMode::XdpNative => attach_xdp(&mut ebpf, &cfg.ifaces, XdpMode::Driver)?,
        };
        // SAFETY: the RingBuf owns its map's file descriptor: it stays open, and `as_raw_fd`
        // returns that same descriptor, for as long as the AsyncFd (which owns the RingBuf) lives.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| CaptureError::Poll { source: e.into_parts().1 })?;
        Ok(Capture {
            links,
            ring,
            counters,
            _ebpf: ebpf,
            clock: Clock::new(),
            backlog: false,
            mode: cfg.mode,
            ifaces: cfg.ifaces.clone(),
            stats: ReaderStats::default(),
        })
    }

    /// `attached tc to lo,eth0 (ingress+egress)`: what is attached where.
    pub fn describe(&self) -> String {
        format!("attached {} to {} ({})", self.mode.label(), self.ifaces.join(","), self.mode.directions())
    }

    /// The clock that maps kernel timestamps to wall time (records and the idle timer share it).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Detach every program link (idempotent). Records already in the ring stay readable.
    pub fn detach(&mut self) {
        for link in self.links.drain(..) {
            match link {
                AttachedLink::Tc(l) => drop(l),
                AttachedLink::Xdp(l) => drop(l),
            }
        }
    }

    /// Wait until records may be ready. Cancel-safe (use it in `tokio::select!`); after it
    /// returns, call [`Capture::drain`].
    pub async fn wait(&mut self) -> Result<(), CaptureError> {
        if self.backlog {
            tokio::task::yield_now().await;
            return Ok(());
        }
        let mut guard = self.ring.readable().await.map_err(|source| CaptureError::Poll { source })?;
        // Cleared before draining: a record written during the drain raises readiness again.
        guard.clear_ready();
        Ok(())
    }

    /// Hand up to `limit` records to `f` as (wall-clock ns, packet); bad records are counted
    /// and skipped. Returns how many records were taken from the ring.
    pub fn drain(&mut self, limit: usize, mut f: impl FnMut(u64, &Packet<'_>)) -> usize {
        let Capture { ring, clock, stats, backlog, .. } = self;
        let ring = ring.get_mut();
        let mut n = 0;
        while n < limit {
            let Some(item) = ring.next() else {
                *backlog = false;
                return n;
            };
            n += 1;
            stats.records += 1;
            stats.record_bytes += item.len() as u64;
            match parse_record(&item) {
                Ok(r) => f(clock.wall_ns(r.header.timestamp_ns), &record::packet(&r)),
                Err(e) => {
                    stats.bad_records += 1;
                    tracing::debug!(error = %e, "skipping a bad ring-buffer record");
                }
            }
        }
        *backlog = true;
        stats.capped_batches += 1;
        n
    }

    /// The kernel counters, summed over CPUs.
    pub fn counters(&self) -> Result<KernelCounters, CaptureError> {
        let mut out = KernelCounters::default();
        for (i, slot) in out.values.iter_mut().enumerate() {
            let per_cpu = self.counters.get(&(i as u32), 0).map_err(|source| CaptureError::Counters { source })?;
            *slot = per_cpu.iter().fold(0u64, |a, v| a.wrapping_add(*v));
        }
        Ok(out)
    }
}

/// Every name must be a distinct, existing interface. Checked before anything is loaded.
pub fn check_interfaces(names: &[String]) -> Result<(), CaptureError> {
    if names.is_empty() {
        return Err(CaptureError::NoInterface);
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(CaptureError::DuplicateInterface { name: name.clone() });
        }
        interface_index(name)?;
    }
    Ok(())
}

/// The kernel's index of an interface.
pub fn interface_index(name: &str) -> Result<u32, CaptureError> {
    let missing = || CaptureError::NoSuchInterface { name: name.to_string() };
    let c = CString::new(name).map_err(|_| missing())?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(missing());
    }
    Ok(index)
}

fn take_map<M>(
    ebpf: &mut Ebpf,
    name: &str,
    convert: impl FnOnce(aya::maps::Map) -> Result<M, MapError>,
) -> Result<M, CaptureError> {
    let map = ebpf.take_map(name).ok_or_else(|| CaptureError::ObjectMismatch { name: name.to_string() })?;
    convert(map).map_err(|e| CaptureError::Load { what: format!("opening map {name}"), source: Box::new(e) })
}

fn attach_tc(ebpf: &mut Ebpf, ifaces: &[String]) -> Result<Vec<AttachedLink>, CaptureError> {
    let prog: &mut SchedClassifier = ebpf
        .program_mut(TC_PROGRAM)
        .ok_or_else(|| CaptureError::ObjectMismatch { name: TC_PROGRAM.to_string() })?
        .try_into()
        .map_err(|e| CaptureError::Load {
            what: format!("{TC_PROGRAM} is not a TC classifier"),
            source: Box::new(e),
        })?;
    prog.load().map_err(|e| load_error(&format!("loading {TC_PROGRAM} (verifier)"), e, &HostFacts::read()))?;
    // Kernels >= 6.6 get TCX links (no qdisc; other TC programs keep running). Older ones
    // attach through netlink and need the clsact qdisc (an existing one is fine).
    let tcx = KernelVersion::current().map(|v| v >= KernelVersion::new(6, 6, 0)).unwrap_or(false);
    let mut links = Vec::with_capacity(ifaces.len() * 2);
    for iface in ifaces {
        if !tcx {
            if let Err(e) = tc::qdisc_add_clsact(iface) {
                tracing::debug!(iface = %iface, error = %e, "adding clsact (it may exist already)");
            }
        }
        for (kind, hook) in [(TcAttachType::Ingress, "tc ingress"), (TcAttachType::Egress, "tc egress")] {
            let id = prog.attach(iface, kind).map_err(|e| attach_error(iface, hook, e, &HostFacts::read()))?;
            let link = prog.take_link(id).map_err(|e| attach_error(iface, hook, e, &HostFacts::read()))?;
            links.push(AttachedLink::Tc(link));
        }
    }
    Ok(links)
}

fn attach_xdp(ebpf: &mut Ebpf, ifaces: &[String], mode: XdpMode) -> Result<Vec<AttachedLink>, CaptureError> {
    let prog: &mut Xdp = ebpf
        .program_mut(XDP_PROGRAM)
        .ok_or_else(|| CaptureError::ObjectMismatch { name: XDP_PROGRAM.to_string() })?
        .try_into()
        .map_err(|e| CaptureError::Load {
            what: format!("{XDP_PROGRAM} is not an XDP program"),
            source: Box::new(e),
        })?;
    prog.load().map_err(|e| load_error(&format!("loading {XDP_PROGRAM} (verifier)"), e, &HostFacts::read()))?;
    let hook = if mode == XdpMode::Driver { "xdp (native)" } else { "xdp (skb)" };
    let mut links = Vec::with_capacity(ifaces.len());
    for iface in ifaces {
        let id = prog.attach(iface, mode).map_err(|e| attach_error(iface, hook, e, &HostFacts::read()))?;
        let link = prog.take_link(id).map_err(|e| attach_error(iface, hook, e, &HostFacts::read()))?;
        links.push(AttachedLink::Xdp(link));
    }
    Ok(links)
}

/// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; newer ones ignore it. Best effort.
fn raise_memlock_limit() {
    let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
    // SAFETY: setrlimit reads a valid rlimit struct.
    if unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) } != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "could not raise RLIMIT_MEMLOCK");
    }
}

/// Facts of this host that explain a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
struct HostFacts {
    btf: bool,
    /// Capabilities this process lacks among those live capture needs.
    missing_caps: Vec<&'static str>,
}

impl HostFacts {
    fn read() -> Self {
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
fn load_error<E: StdError + Send + Sync + 'static>(what: &str, err: E, host: &HostFacts) -> CaptureError {
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
fn attach_error(iface: &str, hook: &'static str, err: ProgramError, host: &HostFacts) -> CaptureError {
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
    fn missing_interface_is_named() {
        let e = check_interfaces(&["does-not-exist0".to_string()]).unwrap_err();
        assert!(matches!(&e, CaptureError::NoSuchInterface { name } if name == "does-not-exist0"));
        let msg = e.to_string();
        assert!(msg.contains("`does-not-exist0`") && msg.contains("ip link"), "{msg}");
        assert!(matches!(interface_index("bad\0name"), Err(CaptureError::NoSuchInterface { .. })));
        assert!(matches!(check_interfaces(&[]), Err(CaptureError::NoInterface)));
        let twice = ["lo".to_string(), "lo".to_string()];
        assert!(matches!(check_interfaces(&twice), Err(CaptureError::DuplicateInterface { name }) if name == "lo"));
        assert!(interface_index("lo").is_ok_and(|i| i > 0), "loopback always exists");
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

    #[test]
    fn counters_are_named() {
        let mut c = KernelCounters::default();
        c.values[counter::RINGBUF_FULL as usize] = 3;
        assert_eq!(c.get(counter::RINGBUF_FULL), 3);
        assert_eq!(c.get(9999), 0);
        assert!(c.named().any(|(n, v)| n == "ringbuf_full" && v == 3));
        assert_eq!(c.named().count(), counter::COUNT as usize);
    }

    #[test]
    fn modes_describe_themselves() {
        assert_eq!((AttachMode::Tc.label(), AttachMode::Tc.directions()), ("tc", "ingress+egress"));
        assert_eq!((AttachMode::XdpSkb.label(), AttachMode::XdpSkb.directions()), ("xdp-skb", "ingress"));
        assert_eq!(AttachMode::XdpNative.label(), "xdp-native");
    }
}
