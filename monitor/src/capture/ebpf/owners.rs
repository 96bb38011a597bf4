//! Capture, socket owners: loads and attaches the socket hooks (`tlsmon_owner_*`: connect,
//! accept, first UDP send) that fill the kernel's `OWNERS` map (socket cookie → the task that
//! owns the socket), seeds that map with the sockets that existed before the agent started
//! ([`super::scan`]), and looks owners up for the agent's attribution stage.
//! Must fail open: a kernel without BTF or without one of the hooked functions loses process
//! names (said once, counted), never the capture.
use aya::maps::{HashMap, MapData};
use aya::programs::{FEntry, FExit};
use aya::{Btf, Ebpf};
use monitor_common::{Owner, OWNERS_MAP};

/// The hooks: (program in the object, kernel function, entry or exit).
pub const HOOKS: [(&str, &str, bool); 4] = [
    ("tlsmon_owner_connect", "tcp_connect", true),
    ("tlsmon_owner_accept", "inet_csk_accept", false),
    ("tlsmon_owner_udp4", "udp_sendmsg", true),
    ("tlsmon_owner_udp6", "udpv6_sendmsg", true),
];

/// The attached hooks and the owners map. Dropping it detaches the hooks.
pub struct Owners {
    map: HashMap<MapData, u64, Owner>,
    /// Hooks attached (of [`HOOKS`]).
    pub attached: Vec<&'static str>,
    /// Why a hook is missing, one line each (empty when all are attached).
    pub missing: Vec<String>,
    /// What the start-up scan found.
    pub scan: super::scan::ScanStats,
}

impl Owners {
    /// Load and attach every hook that the kernel allows; take the owners map. Err only when
    /// the map itself is not in the object (a build mismatch).
    pub fn attach(ebpf: &mut Ebpf) -> Result<Owners, String> {
        let mut attached = Vec::new();
        let mut missing = Vec::new();
        match Btf::from_sys_fs() {
            Ok(btf) => {
                for (prog, func, entry) in HOOKS {
                    match attach_one(ebpf, &btf, prog, func, entry) {
                        Ok(()) => attached.push(func),
                        Err(e) => missing.push(format!("{func}: {e}")),
                    }
                }
            }
            Err(e) => missing.push(format!("kernel BTF (/sys/kernel/btf/vmlinux): {e}")),
        }
        let map = ebpf.take_map(OWNERS_MAP).ok_or_else(|| format!("the eBPF object has no map {OWNERS_MAP}"))?;
        let map = HashMap::try_from(map).map_err(|e| format!("opening map {OWNERS_MAP}: {e}"))?;
        Ok(Owners { map, attached, missing, scan: Default::default() })
    }

    /// The owner of the socket with this cookie, if a hook or the start-up scan recorded one
    /// (and the LRU map still holds it).
    pub fn get(&self, cookie: u64) -> Option<Owner> {
        self.map.get(&cookie, 0).ok()
    }

    /// Record an owner found by the start-up scan (an entry a hook wrote first is kept).
    pub fn seed(&mut self, cookie: u64, owner: &Owner) -> Result<(), String> {
        if self.map.get(&cookie, 0).is_ok() {
            return Ok(());
        }
        self.map.insert(cookie, *owner, 0).map_err(|e| e.to_string())
    }
}

fn attach_one(ebpf: &mut Ebpf, btf: &Btf, prog: &str, func: &str, entry: bool) -> Result<(), String> {
    let p = ebpf.program_mut(prog).ok_or_else(|| format!("the eBPF object has no program {prog}"))?;
    if entry {
        let p: &mut FEntry = p.try_into().map_err(|e| format!("{prog}: {e}"))?;
        p.load(func, btf).map_err(|e| format!("loading {prog}: {e}"))?;
        let id = p.attach().map_err(|e| format!("attaching {prog}: {e}"))?;
        // Keep the link in the program (dropped, and so detached, with the Ebpf).
        let _ = id;
    } else {
        let p: &mut FExit = p.try_into().map_err(|e| format!("{prog}: {e}"))?;
        p.load(func, btf).map_err(|e| format!("loading {prog}: {e}"))?;
        let _ = p.attach().map_err(|e| format!("attaching {prog}: {e}"))?;
    }
    Ok(())
}
