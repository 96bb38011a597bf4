//! Sink, local ends: the ECS fields that name who on this host made or served a flow — the
//! `process.*`, `container.*`, `service.name` and `orchestrator.*` of the flow's local end
//! (the client when it is local, else the server), and `tlsmon.local.*` (placed by the event):
//! which end that is, the socket's cgroup, and the server's process too when both ends are
//! local. Every field is absent when not known (always in replay).
//! Must never carry anything the attribution stage did not set.
use serde::Serialize;

use crate::observation::{Local, Process};

/// The fields, flattened into the event (all absent when nothing is known).
#[derive(Serialize, Default)]
pub struct Owned<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessField<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Service<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orchestrator: Option<Orchestrator<'a>>,
}

/// ECS `process.*`.
#[derive(Serialize, Clone)]
pub struct ProcessField<'a> {
    pub pid: u32,
    pub name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executable: Option<&'a str>,
    pub user: User,
}

/// ECS `process.user.id` (a keyword: the uid as a string).
#[derive(Serialize, Clone)]
pub struct User {
    pub id: String,
}

/// ECS `container.*`.
#[derive(Serialize)]
pub struct Container<'a> {
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<&'static str>,
}

/// ECS `service.name`: the systemd unit.
#[derive(Serialize)]
pub struct Service<'a> {
    pub name: &'a str,
}

/// ECS `orchestrator.*`: the Kubernetes pod by UID.
#[derive(Serialize)]
pub struct Orchestrator<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub resource: Resource<'a>,
}

#[derive(Serialize)]
pub struct Resource<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
}

/// `tlsmon.local.*` (custom, outside ECS).
#[derive(Serialize, Clone)]
pub struct LocalField<'a> {
    /// `client`, `server` or `both`: which ends are sockets of this host.
    pub side: &'static str,
    pub cgroup: Cgroup<'a>,
    /// When both ends are local: the server's process (`process.*` is the client's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_process: Option<ProcessField<'a>>,
}

#[derive(Serialize, Clone)]
pub struct Cgroup<'a> {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
}

fn process(p: &Process) -> ProcessField<'_> {
    ProcessField {
        pid: p.pid,
        name: &p.name,
        executable: p.executable.as_deref(),
        user: User { id: p.uid.to_string() },
    }
}

/// The ECS fields of an output's local end.
pub fn owned(l: &Local) -> Owned<'_> {
    let Some(p) = local_process(l) else { return Owned::default() };
    Owned {
        process: Some(process(p)),
        container: p.container_id.as_deref().map(|id| Container { id, runtime: p.container_runtime }),
        service: p.service.as_deref().map(|name| Service { name }),
        orchestrator: p
            .pod_uid
            .as_deref()
            .map(|id| Orchestrator { kind: "kubernetes", resource: Resource { kind: "pod", id } }),
    }
}

/// `tlsmon.local` of an output: which ends are local, the cgroup, the server's process.
pub fn local(l: &Local) -> Option<LocalField<'_>> {
    let p = local_process(l)?;
    let side = l.side()?;
    let both = l.sockets.iter().all(Option::is_some);
    let server = (side == 0).then(|| l.processes[1].as_deref()).flatten();
    Some(LocalField {
        side: match (both, side) {
            (true, _) => "both",
            (false, 0) => "client",
            (false, _) => "server",
        },
        cgroup: Cgroup { id: p.cgroup_id, path: p.cgroup_path.as_deref() },
        server_process: server.map(process),
    })
}

/// The process of the local end `process.*` names (the client when it is local).
fn local_process(l: &Local) -> Option<&Process> {
    l.processes[l.side()?].as_deref()
}
