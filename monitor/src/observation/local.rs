//! Observation, local ends: which sockets of the monitoring host carried a flow (set by the
//! pipeline from live records) and who owns them (set after the pipeline by live attribution:
//! process, cgroup, container, systemd unit, Kubernetes pod). Replay has neither: both stay empty.
//! Must never hold anything guessed: a field is set only when the kernel or /proc said it.
use std::sync::Arc;

use crate::decode::LocalSocket;

/// The flow's local ends, client side first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Local {
    /// The sockets of this host that sent the client's and the server's packets.
    pub sockets: [Option<LocalSocket>; 2],
    /// Who owns each of them (same order), when attribution found out.
    pub processes: [Option<Arc<Process>>; 2],
}

impl Local {
    /// Client side (0) or server side (1) of the local end that names the flow: the client when
    /// it is local, else the server.
    pub fn side(&self) -> Option<usize> {
        (0..2).find(|&i| self.processes[i].is_some() || self.sockets[i].is_some())
    }

    /// The process that names the flow (see [`Local::side`]).
    pub fn process(&self) -> Option<&Process> {
        self.side().and_then(|i| self.processes[i].as_deref())
    }
}

/// A process on this host, as the socket hooks and /proc saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Process {
    /// Process id (thread group) in the host's PID namespace.
    pub pid: u32,
    /// The kernel's task name (`comm`, at most 15 bytes).
    pub name: String,
    /// `/proc/PID/exe`, when the agent could read it.
    pub executable: Option<String>,
    pub uid: u32,
    /// The socket's cgroup v2 id, and its path under the cgroup v2 root when found.
    pub cgroup_id: u64,
    pub cgroup_path: Option<String>,
    /// What the cgroup path says (see `attribution::cgroup`).
    pub container_id: Option<String>,
    pub container_runtime: Option<&'static str>,
    /// The systemd unit (`hl7-bridge.service`).
    pub service: Option<String>,
    /// The Kubernetes pod UID.
    pub pod_uid: Option<String>,
}

impl Process {
    /// `` `legacy-client` (systemd unit hl7-bridge.service) ``: how reports name it.
    pub fn label(&self) -> String {
        label(&self.name, self.service.as_deref(), self.container_id.as_deref())
    }
}

/// How reports name a process: its task name, then its systemd unit or container. Backquotes
/// are left out of the names (any process may choose its name): the only ones are the label's.
pub fn label(name: &str, unit: Option<&str>, container: Option<&str>) -> String {
    let clean = |s: &str| s.replace('`', "");
    let (name, unit, container) = (clean(name), unit.map(clean), container.map(clean));
    match (unit, container) {
        (Some(unit), _) => format!("`{name}` (systemd unit {unit})"),
        (None, Some(id)) => format!("`{name}` (container {})", &id[..id.len().min(12)]),
        (None, None) => format!("`{name}`"),
    }
}
