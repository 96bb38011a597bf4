//! Capture, socket owners: loads the socket hooks (`tlsmon_owner_*`: connect, sendmsg, bind,
//! and the accepted-connection sock_ops program) and attaches them to the cgroup v2 root, where
//! they see every process; seeds the kernel's owners and listeners maps with the sockets that
//! existed before the agent started ([`super::scan`]); and looks owners up for the agent's
//! attribution stage.
//! Must fail open: a kernel or host that refuses a hook loses process names (said once,
//! counted), never the capture.
use std::fs::File;
use std::os::fd::AsFd as _;
use std::path::Path;

use aya::maps::{HashMap, MapData};
use aya::programs::{CgroupAttachMode, CgroupSock, CgroupSockAddr, SockOps};
use aya::Ebpf;
use monitor_common::{ListenerKey, Owner, LISTENERS_MAP, OWNERS_MAP};

use crate::attribution::cgroup::cgroup2_root;

/// The hooks' programs in the object, and what each sees.
pub const HOOKS: [(&str, &str); 7] = [
    ("tlsmon_owner_connect4", "connect (IPv4)"),
    ("tlsmon_owner_connect6", "connect (IPv6)"),
    ("tlsmon_owner_sendmsg4", "UDP sendmsg (IPv4)"),
    ("tlsmon_owner_sendmsg6", "UDP sendmsg (IPv6)"),
    ("tlsmon_owner_bind4", "bind (IPv4)"),
    ("tlsmon_owner_bind6", "bind (IPv6)"),
    ("tlsmon_owner_sockops", "accepted TCP connections"),
];

/// The attached hooks and the owners map. The hooks stay attached as long as the object lives
/// (their links belong to its programs).
pub struct Owners {
    map: HashMap<MapData, u64, Owner>,
    listeners: HashMap<MapData, ListenerKey, Owner>,
    /// The cgroup v2 root the hooks are attached to (kept open: the attribution stage reads
    /// cgroup paths through it after the agent has dropped its capabilities).
    pub cgroup_root: Option<File>,
    /// Hooks attached (of [`HOOKS`]).
    pub attached: usize,
    /// Why a hook is missing, one line each (empty when all are attached).
    pub missing: Vec<String>,
    /// What the start-up scan found.
    pub scan: super::scan::ScanStats,
}

impl Owners {
    /// Load and attach every hook the kernel allows; take the owners maps. Err only when a map
    /// is not in the object (a build mismatch).
    pub fn attach(ebpf: &mut Ebpf, root: Option<&Path>) -> Result<Owners, String> {
        let mut missing = Vec::new();
        let mut attached = 0;
        let cgroup_root = match root.map(Path::to_path_buf).or_else(cgroup2_root) {
            Some(path) => match File::open(&path) {
                Ok(f) => Some(f),
                Err(e) => {
                    missing.push(format!("opening the cgroup v2 root {}: {e}", path.display()));
                    None
                }
            },
            None => {
                missing.push("no cgroup v2 hierarchy is mounted (here or in PID 1's mount namespace)".into());
                None
            }
        };
        if let Some(root) = &cgroup_root {
            for (prog, what) in HOOKS {
                match attach_one(ebpf, prog, root) {
                    Ok(()) => attached += 1,
                    Err(e) => missing.push(format!("{what}: {e}")),
                }
            }
        }
        let take = |ebpf: &mut Ebpf, name: &str| {
            ebpf.take_map(name).ok_or_else(|| format!("the eBPF object has no map {name}"))
        };
        let map = HashMap::try_from(take(ebpf, OWNERS_MAP)?).map_err(|e| format!("opening map {OWNERS_MAP}: {e}"))?;
        let listeners =
            HashMap::try_from(take(ebpf, LISTENERS_MAP)?).map_err(|e| format!("opening map {LISTENERS_MAP}: {e}"))?;
        Ok(Owners { map, listeners, cgroup_root, attached, missing, scan: Default::default() })
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

    /// Record the owner of a TCP listener found by the start-up scan, so connections it accepts
    /// from now on are named (an entry a hook wrote first is kept).
    pub fn seed_listener(&mut self, key: ListenerKey, owner: &Owner) -> Result<(), String> {
        if self.listeners.get(&key, 0).is_ok() {
            return Ok(());
        }
        self.listeners.insert(key, *owner, 0).map_err(|e| e.to_string())
    }
}

fn attach_one(ebpf: &mut Ebpf, prog: &str, root: &File) -> Result<(), String> {
    let p = ebpf.program_mut(prog).ok_or_else(|| format!("the eBPF object has no program {prog}"))?;
    // Through a BPF link (kernels >= 5.7, which aya uses) a cgroup program always runs beside
    // the others attached there (the kernel's multi mode); the link refuses any flag, and
    // `Single` is the one that passes none.
    let mode = CgroupAttachMode::Single;
    let fd = root.as_fd();
    let load = |e: aya::programs::ProgramError| format!("loading {prog}: {e}");
    let attach = |e: aya::programs::ProgramError| format!("attaching {prog} to the cgroup v2 root: {e}");
    if prog.ends_with("sockops") {
        let p: &mut SockOps = p.try_into().map_err(|e| format!("{prog}: {e}"))?;
        p.load().map_err(load)?;
        p.attach(fd, mode).map_err(attach)?;
    } else if prog.contains("bind") {
        let p: &mut CgroupSock = p.try_into().map_err(|e| format!("{prog}: {e}"))?;
        p.load().map_err(load)?;
        p.attach(fd, mode).map_err(attach)?;
    } else {
        let p: &mut CgroupSockAddr = p.try_into().map_err(|e| format!("{prog}: {e}"))?;
        p.load().map_err(load)?;
        p.attach(fd, mode).map_err(attach)?;
    }
    Ok(())
}
