//! Attribution (live only): who on this host made or served a flow. The pipeline leaves the
//! cookies of the flow's local sockets on its output ([`Local::sockets`]); this stage, between
//! the pipeline and the sinks, looks each cookie up in the kernel's owners map (filled by the
//! socket hooks and the start-up scan), and resolves the socket's cgroup to a path, container,
//! systemd unit and pod. Replay never gets here: its outputs have no sockets.
//! Must never guess (a field is set only from the kernel's or /proc's word, and /proc is only
//! believed while the process there still has the task name the kernel recorded), never block
//! for long (one map lookup per socket, a bounded cgroup walk at most every few seconds), and
//! stay bounded ([`MAX_CACHED`] processes).
pub mod cgroup;

use std::collections::HashMap;
use std::fs;
use std::sync::Arc;

use monitor_common::Owner;

use crate::observation::{Output, Process};
use cgroup::CgroupIndex;

/// Most sockets whose process is cached (the cache starts over when full).
pub const MAX_CACHED: usize = 4096;

/// What attribution counted (exported as `tlsmon_attribution_total{result}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttributionStats {
    /// Local sockets named by a process.
    pub attributed: u64,
    /// Local sockets without an owner in the kernel's map (opened before the hooks and missed by
    /// the scan, in another network namespace at start, or evicted from the LRU map).
    pub owner_missing: u64,
    /// Attributed sockets whose cgroup id could not be turned into a path.
    pub cgroup_unresolved: u64,
}

/// The owner lookup: the kernel's owners map in live capture, a table in tests.
pub type OwnerLookup = Box<dyn Fn(u64) -> Option<Owner> + Send>;

pub struct Attributor {
    owners: OwnerLookup,
    cgroups: CgroupIndex,
    cache: HashMap<u64, Arc<Process>>,
    pub stats: AttributionStats,
}

impl Attributor {
    pub fn new(owners: OwnerLookup, cgroups: CgroupIndex) -> Self {
        Attributor { owners, cgroups, cache: HashMap::new(), stats: AttributionStats::default() }
    }

    /// Fill in the processes of the output's local sockets.
    pub fn enrich(&mut self, o: &mut Output) {
        for i in 0..2 {
            if let Some(s) = o.local.sockets[i] {
                o.local.processes[i] = self.process(s.cookie, s.cgroup_id);
            }
        }
    }

    fn process(&mut self, cookie: u64, cgroup_id: u64) -> Option<Arc<Process>> {
        if let Some(p) = self.cache.get(&cookie) {
            self.stats.attributed += 1;
            return Some(p.clone());
        }
        let Some(owner) = (self.owners)(cookie) else {
            self.stats.owner_missing += 1;
            return None;
        };
        let p = Arc::new(self.resolve(&owner, cgroup_id));
        if self.cache.len() >= MAX_CACHED {
            self.cache.clear();
        }
        self.cache.insert(cookie, p.clone());
        self.stats.attributed += 1;
        Some(p)
    }

    fn resolve(&mut self, owner: &Owner, socket_cgroup: u64) -> Process {
        let name = comm(&owner.comm);
        // /proc/PID is only believed while it is still the same task (same name): a PID may have
        // been reused since the socket was opened.
        let same =
            || fs::read(format!("/proc/{}/comm", owner.tgid)).is_ok_and(|c| c.trim_ascii_end() == name.as_bytes());
        let executable = fs::read_link(format!("/proc/{}/exe", owner.tgid))
            .ok()
            .filter(|_| same())
            .map(|p| p.to_string_lossy().into_owned());
        // The socket's own cgroup (from its packets) names it; the owner's cgroup at hook time
        // stands in when the packets carried none.
        let cgroup_id = if socket_cgroup != 0 { socket_cgroup } else { owner.cgroup_id };
        let cgroup_path = match self.cgroups.path(cgroup_id) {
            Some(p) => Some(p),
            // No cgroup v2 tree in the agent's mount namespace: the process's own cgroup path,
            // when the kernel says the socket's cgroup is the one the process was in.
            None if !self.cgroups.has_root() && cgroup_id == owner.cgroup_id && same() => {
                cgroup::process_cgroup(owner.tgid)
            }
            None => None,
        };
        if cgroup_path.is_none() && cgroup_id != 0 {
            self.stats.cgroup_unresolved += 1;
        }
        let facts = cgroup_path.as_deref().map(cgroup::parse).unwrap_or_default();
        Process {
            pid: owner.tgid,
            name,
            executable,
            uid: owner.uid,
            cgroup_id,
            cgroup_path,
            container_id: facts.container_id,
            container_runtime: facts.runtime,
            service: facts.service,
            pod_uid: facts.pod_uid,
        }
    }
}

/// A NUL-padded task name as text (lossy: a name is not required to be UTF-8).
fn comm(raw: &[u8; 16]) -> String {
    let n = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::LocalSocket;
    use crate::observation::{Handshake, Local, Observed};

    fn owner(tgid: u32, name: &str) -> Owner {
        let mut o = Owner { tgid, pid: tgid, uid: 1000, cgroup_id: 77, ..Owner::default() };
        o.comm[..name.len()].copy_from_slice(name.as_bytes());
        o
    }

    fn output(sockets: [Option<LocalSocket>; 2]) -> Output {
        Output {
            observed: Observed::Tls { handshake: Handshake::default(), upgrade: None },
            findings: Vec::new(),
            local: Local { sockets, ..Local::default() },
        }
    }

    #[test]
    fn sockets_are_named_by_their_owner_and_unknown_ones_counted() {
        let lookup: OwnerLookup = Box::new(|cookie| match cookie {
            1 => Some(owner(4_000_000, "legacy-client")),
            2 => Some(owner(4_000_001, "hl7-server")),
            _ => None,
        });
        let mut a = Attributor::new(lookup, CgroupIndex::at(None));
        let s = |cookie| Some(LocalSocket { cookie, cgroup_id: 77 });
        let mut o = output([s(1), s(2)]);
        a.enrich(&mut o);
        let [c, v] = &o.local.processes;
        let (c, v) = (c.as_ref().unwrap(), v.as_ref().unwrap());
        assert_eq!((c.pid, c.name.as_str(), c.uid, c.cgroup_id), (4_000_000, "legacy-client", 1000, 77));
        assert_eq!(v.name, "hl7-server");
        // No such PID here: nothing is read from /proc for it.
        assert_eq!((c.executable.as_deref(), c.cgroup_path.as_deref()), (None, None));
        assert_eq!(o.local.process().unwrap().name, "legacy-client", "the client names the flow");
        let mut o = output([None, s(3)]);
        a.enrich(&mut o);
        assert!(o.local.processes.iter().all(Option::is_none));
        assert_eq!(a.stats.owner_missing, 1);
        assert_eq!(a.stats.attributed, 2);
        let mut o = output([s(1), None]);
        a.enrich(&mut o);
        assert_eq!(a.stats.attributed, 3, "from the cache");
    }

    /// This process, as the kernel would record it: /proc agrees, so the executable is read;
    /// with another task name /proc is not believed.
    #[test]
    fn proc_is_believed_only_for_the_same_task() {
        let me = std::process::id();
        let name = String::from_utf8(fs::read(format!("/proc/{me}/comm")).unwrap()).unwrap().trim_end().to_string();
        let mut a = Attributor::new(Box::new(|_| None), CgroupIndex::at(None));
        let p = a.resolve(&owner(me, &name), 0);
        assert!(p.executable.is_some_and(|e| e.starts_with('/')));
        let p = a.resolve(&owner(me, "someone-else"), 0);
        assert_eq!(p.executable, None);
    }
}
