//! Capture, live: loads the embedded eBPF object with the capture settings, attaches TC
//! (ingress + egress) or XDP (ingress) to interfaces, reads the per-CPU counters (and, through
//! [`census`], the flow maps' evictions) and consumes the ring buffer through tokio's `AsyncFd`.
//! Must never panic on kernel data, never block the runtime, never hold more than one batch of
//! records, and never log payload bytes. Dropping a [`Capture`] detaches everything it attached.
pub mod census;
mod counters;
mod error;
pub mod owners;
pub mod privileges;
pub mod scan;

use std::cell::Cell;
use std::ffi::CString;
use std::io;
use std::time::Instant;

use aya::maps::{HashMap, MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::tc::{self, SchedClassifierLink};
use aya::programs::xdp::XdpLink;
use aya::programs::{SchedClassifier, TcAttachType, Xdp, XdpMode};
use aya::{Ebpf, EbpfError, EbpfLoader};
use monitor_common::decode::parse_record;
use monitor_common::{
    Counters, FlowKey, FlowKey4, FlowValue, KernelConfig, CONFIG_GLOBAL, COUNTERS_MAP, FLOWS4_MAP, FLOWS_MAP, RING_MAP,
};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::capture::record::{self, Clock};
use crate::capture::DecodeStats;
use crate::capture::{Drained, Source};
use crate::decode::Packet;
use crate::ebpf_obj::{EBPF_OBJECT, TC_PROGRAM, XDP_PROGRAM};
pub use counters::KernelCounters;
use error::{attach_error, load_error, HostFacts};
pub use error::{missing_capabilities, CaptureError};

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
    /// Where the socket hooks attach (None: found, see `attribution::cgroup::cgroup2_root`).
    pub cgroup_root: Option<std::path::PathBuf>,
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
    /// Batches that stopped at the run loop's batch size with records left for the next turn.
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
    counters: PerCpuArray<MapData, Counters>,
    flows: HashMap<MapData, FlowKey, FlowValue>,
    flows4: HashMap<MapData, FlowKey4, FlowValue>,
    /// The socket hooks' map, until the agent takes it ([`Capture::take_owners`]).
    owners: Option<owners::Owners>,
    census: Cell<census::Census>,
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
        let counters = take_map(&mut ebpf, COUNTERS_MAP, PerCpuArray::<MapData, Counters>::try_from)?;
        let flows = take_map(&mut ebpf, FLOWS_MAP, HashMap::try_from)?;
        let flows4 = take_map(&mut ebpf, FLOWS4_MAP, HashMap::try_from)?;
        // Socket hooks before the scan, the scan before the capture: a socket opened while the
        // scan runs is seen by a hook, and every one that existed is in the map before its
        // first captured packet could need it.
        let owners = attach_owners(&mut ebpf, cfg.cgroup_root.as_deref())?;
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
            flows,
            flows4,
            owners: Some(owners),
            census: Cell::new(census::Census::default()),
            _ebpf: ebpf,
            clock: Clock::new(),
            backlog: false,
            mode: cfg.mode,
            ifaces: cfg.ifaces.clone(),
            stats: ReaderStats::default(),
        })
    }

    /// The socket owners map and hooks' state, for the attribution stage (once).
    pub fn take_owners(&mut self) -> Option<owners::Owners> {
        self.owners.take()
    }

    /// `attached tc to lo,eth0 (ingress+egress)`: what is attached where.
    pub fn describe(&self) -> String {
        format!("attached {} to {} ({})", self.mode.label(), self.ifaces.join(","), self.mode.directions())
    }

    /// The clock that maps kernel timestamps to wall time (records and the idle timer share it).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Detach every program link (idempotent). Records already in the ring stay readable; the
    /// next [`Capture::counters`] takes a last census of the flow maps.
    pub fn detach(&mut self) {
        self.census.get_mut().due = true;
        for link in self.links.drain(..) {
            match link {
                AttachedLink::Tc(l) => drop(l),
                AttachedLink::Xdp(l) => drop(l),
            }
        }
    }

    /// The kernel counters, summed over CPUs, with `flows_evicted` from the last census of the
    /// flow maps; a census is taken first when [`census::CENSUS_PERIOD`] has passed since the
    /// last or the capture was detached since (bounded: one key walk of both maps).
    pub fn counters(&self) -> Result<KernelCounters, CaptureError> {
        let mut out = KernelCounters::default();
        let per_cpu = self.counters.get(&0, 0).map_err(|source| CaptureError::Counters { source })?;
        for cpu in per_cpu.iter() {
            for (slot, v) in out.values.iter_mut().zip(cpu.0) {
                *slot = slot.wrapping_add(v);
            }
        }
        let mut c = self.census.get();
        let now = Instant::now();
        if c.is_due(now) {
            // Counters first, then the walk: see the census module for the error this leaves.
            match census::count_entries(&self.flows).and_then(|n| Ok(n + census::count_entries(&self.flows4)?)) {
                Ok(entries) => c.record(now, census::evicted(&out.values, entries)),
                Err(e) => {
                    tracing::debug!(error = %e, "counting the flow maps' entries");
                    c.record(now, 0);
                }
            }
            self.census.set(c);
        }
        out.flows_evicted = c.evicted;
        Ok(out)
    }
}

/// The live source: records from the ring buffer; decode counters from the kernel program.
impl Source for Capture {
    type Error = CaptureError;

    /// Wait until records may be ready. Cancel-safe (used in `tokio::select!`).
    async fn ready(&mut self) -> Result<(), CaptureError> {
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
    /// and skipped. Says how many records were taken from the ring.
    fn drain(&mut self, limit: usize, mut f: impl FnMut(u64, &Packet<'_>)) -> Drained {
        let Capture { ring, clock, stats, backlog, .. } = self;
        let ring = ring.get_mut();
        let mut n = 0;
        while n < limit {
            let Some(item) = ring.next() else {
                *backlog = false;
                return Drained::Packets(n);
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
        Drained::Packets(n)
    }

    /// The kernel program's counters in the decode terms every source uses (zeros when the
    /// counters map cannot be read; the caller's own read logs why).
    fn decoded(&self) -> DecodeStats {
        self.counters().map(|c| DecodeStats::from_kernel(|i| c.get(i))).unwrap_or_default()
    }

    fn now_ns(&self) -> Option<u64> {
        Some(self.clock.now_ns())
    }

    /// Detach; what the ring holds then (at most its own size) may still be drained.
    fn close(&mut self) -> usize {
        self.detach();
        FINAL_DRAIN_MAX
    }
}

/// Most records taken from the ring after detaching (it holds at most its own size anyway).
const FINAL_DRAIN_MAX: usize = 1 << 20;

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
        if let Some(link_type) = link_type(name) {
            if !ETHERNET_FRAMED.contains(&link_type) {
                return Err(CaptureError::NotEthernet { name: name.clone(), link_type });
            }
        }
    }
    Ok(())
}

/// ARPHRD_ETHER and ARPHRD_LOOPBACK: the link types whose packets start with an Ethernet
/// header, which is where the kernel parser begins.
const ETHERNET_FRAMED: [u32; 2] = [1, 772];

/// The interface's ARPHRD link type from sysfs (None when sysfs does not say).
fn link_type(name: &str) -> Option<u32> {
    let path = std::path::Path::new("/sys/class/net").join(name).join("type");
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
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

/// Attach the socket hooks (failing open: a hook the kernel refuses is said once) and seed
/// the owners map with the sockets that exist now.
fn attach_owners(ebpf: &mut Ebpf, cgroup_root: Option<&std::path::Path>) -> Result<owners::Owners, CaptureError> {
    let mut o = owners::Owners::attach(ebpf, cgroup_root).map_err(|name| CaptureError::ObjectMismatch { name })?;
    for why in &o.missing {
        tracing::warn!("process attribution: socket hook not attached ({why}); flows it would name stay unnamed");
    }
    match scan::existing_sockets() {
        Ok((found, listeners, stats)) => {
            let mut failed = 0;
            for (cookie, owner) in &found {
                failed += usize::from(o.seed(*cookie, owner).is_err());
            }
            for (key, owner) in &listeners {
                failed += usize::from(o.seed_listener(*key, owner).is_err());
            }
            o.scan = stats;
            tracing::info!(
                sockets = stats.sockets,
                owned = stats.owned,
                listeners = listeners.len(),
                unreadable = stats.unreadable,
                over_bounds = stats.over_bounds,
                failed,
                "process attribution: existing sockets scanned"
            );
        }
        Err(e) => tracing::warn!("process attribution: existing sockets not scanned: {e}"),
    }
    Ok(o)
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
    let tcx = privileges::links_are_descriptors();
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn modes_describe_themselves() {
        assert_eq!((AttachMode::Tc.label(), AttachMode::Tc.directions()), ("tc", "ingress+egress"));
        assert_eq!((AttachMode::XdpSkb.label(), AttachMode::XdpSkb.directions()), ("xdp-skb", "ingress"));
        assert_eq!(AttachMode::XdpNative.label(), "xdp-native");
    }
}
