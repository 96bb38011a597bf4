//! Attribution, cgroups: a cgroup v2 id → its path (an index of the cgroup v2 tree, walked on a
//! miss at most once per [`REWALK_AFTER`]), and what a path says: the container it belongs to
//! (docker, containerd, CRI-O, podman), the systemd unit, the Kubernetes pod UID.
//! Must never guess: a path that matches none of the known layouts yields no container, unit
//! or pod. Bounded: at most [`MAX_CGROUPS`] directories are indexed, [`MAX_DEPTH`] deep.
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Most cgroup directories indexed.
pub const MAX_CGROUPS: usize = 65_536;
/// Deepest directory indexed below the root.
pub const MAX_DEPTH: usize = 16;
/// Least time between two walks of the tree (a miss within it stays a miss).
pub const REWALK_AFTER: Duration = Duration::from_secs(10);

/// What a cgroup path says about who runs in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupFacts {
    pub container_id: Option<String>,
    pub runtime: Option<&'static str>,
    /// The systemd unit (`*.service`), when the process runs in one and not in a container.
    pub service: Option<String>,
    pub pod_uid: Option<String>,
}

/// Read a cgroup path ("/system.slice/docker-<id>.scope", "/kubepods/burstable/pod<uid>/<id>").
pub fn parse(path: &str) -> CgroupFacts {
    let mut f = CgroupFacts::default();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if let Some(uid) = pod_uid(part) {
            f.pod_uid = Some(uid);
        }
        if let Some((runtime, id)) = container(part) {
            f.runtime = Some(runtime);
            f.container_id = Some(id.to_string());
        } else if is_container_id(part) && f.pod_uid.is_some() {
            // cgroupfs driver: /kubepods/<qos>/pod<uid>/<container id>.
            f.container_id = Some(part.to_string());
        } else if part.ends_with(".service") && part.len() > ".service".len() {
            f.service = Some(part.to_string());
        }
    }
    if path.split('/').any(|p| p == "docker") {
        // cgroupfs driver: /docker/<id>.
        if let Some(id) = path.rsplit('/').find(|p| is_container_id(p)) {
            f.container_id = Some(id.to_string());
            f.runtime = Some("docker");
        }
    }
    if f.container_id.is_some() {
        // A unit seen above a container's scope is the runtime's (docker.service), not the
        // workload's.
        f.service = None;
    }
    f
}

/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`.
fn container(part: &str) -> Option<(&'static str, &str)> {
    let stem = part.strip_suffix(".scope").unwrap_or(part);
    for (prefix, runtime) in
        [("docker-", "docker"), ("cri-containerd-", "containerd"), ("crio-", "cri-o"), ("libpod-", "podman")]
    {
        if let Some(id) = stem.strip_prefix(prefix) {
            if is_container_id(id) {
                return Some((runtime, id));
            }
        }
    }
    None
}

/// A container id: 64 lowercase hex digits.
fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `kubepods-burstable-pod<uid with _>.slice` (systemd driver) or `pod<uid>` (cgroupfs driver)
/// → the pod UID with dashes.
fn pod_uid(part: &str) -> Option<String> {
    let stem = part.strip_suffix(".slice").unwrap_or(part);
    let at = stem.rfind("pod")?;
    if at > 0 && !stem[..at].ends_with('-') {
        return None;
    }
    let uid = stem[at + 3..].replace('_', "-");
    let shape =
        uid.len() == 36
            && uid.bytes().enumerate().all(|(i, b)| {
                if matches!(i, 8 | 13 | 18 | 23) {
                    b == b'-'
                } else {
                    b.is_ascii_hexdigit()
                }
            });
    shape.then_some(uid)
}

/// cgroup id → path under the cgroup v2 root, from walks of that root.
pub struct CgroupIndex {
    root: Option<PathBuf>,
    /// The root directory held open, when given as a descriptor: walked through
    /// `/proc/self/fd/N`, which needs no capability (`/proc/1/root/…` would).
    _dir: Option<fs::File>,
    paths: HashMap<u64, String>,
    last_walk: Option<Instant>,
    /// Walks of the tree, and directories past the bounds (not indexed).
    pub walks: u64,
    pub over_bounds: u64,
}

impl CgroupIndex {
    /// The index of the cgroup v2 hierarchy mounted in this mount namespace (found in
    /// /proc/self/mountinfo); an index without a root finds nothing.
    pub fn new() -> Self {
        CgroupIndex::at(cgroup2_root())
    }

    pub fn at(root: Option<PathBuf>) -> Self {
        CgroupIndex { root, _dir: None, paths: HashMap::new(), last_walk: None, walks: 0, over_bounds: 0 }
    }

    /// The index of the hierarchy whose root directory `dir` is (opened while privileged).
    pub fn open_dir(dir: fs::File) -> Self {
        use std::os::fd::AsRawFd as _;
        let root = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        CgroupIndex { _dir: Some(dir), ..CgroupIndex::at(Some(root)) }
    }

    /// Is a cgroup v2 hierarchy visible to the agent? (Not under `ip netns exec`, which mounts
    /// a fresh /sys without one.)
    pub fn has_root(&self) -> bool {
        self.root.is_some()
    }

    /// The path of cgroup `id` ("/" for the root), walking the tree again when it is unknown
    /// and the last walk is old enough.
    pub fn path(&mut self, id: u64) -> Option<String> {
        if let Some(p) = self.paths.get(&id) {
            return Some(p.clone());
        }
        let root = self.root.clone()?;
        if self.last_walk.is_some_and(|t| t.elapsed() < REWALK_AFTER) {
            return None;
        }
        self.last_walk = Some(Instant::now());
        self.walks += 1;
        self.paths.clear();
        self.walk(&root, "", 0);
        self.paths.get(&id).cloned()
    }

    fn walk(&mut self, dir: &Path, rel: &str, depth: usize) {
        let Ok(meta) = fs::metadata(dir) else { return };
        if self.paths.len() >= MAX_CGROUPS {
            self.over_bounds += 1;
            return;
        }
        self.paths.insert(meta.ino(), if rel.is_empty() { "/".to_string() } else { rel.to_string() });
        if depth >= MAX_DEPTH {
            return;
        }
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let name = e.file_name();
                let child = format!("{rel}/{}", name.to_string_lossy());
                self.walk(&e.path(), &child, depth + 1);
            }
        }
    }
}

impl Default for CgroupIndex {
    fn default() -> Self {
        CgroupIndex::new()
    }
}

/// The cgroup v2 mount point: in this mount namespace, else in another process's, reached
/// through `/proc/PID/root` (the parent's first: `ip netns exec` runs the agent in a mount
/// namespace of its own without one). Only a path that can be read is returned.
pub fn cgroup2_root() -> Option<PathBuf> {
    let find = |pid: &str| {
        let info = fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
        info.lines().find_map(|l| {
            // "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS... - FSTYPE SOURCE SUPER"
            let (left, right) = l.split_once(" - ")?;
            if right.split_whitespace().next()? != "cgroup2" {
                return None;
            }
            left.split_whitespace().nth(4).map(PathBuf::from)
        })
    };
    if let Some(p) = find("self") {
        return Some(p);
    }
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() }.to_string();
    let others = fs::read_dir("/proc").into_iter().flatten().flatten().take(MAX_PROCESSES_TRIED);
    let pids = [parent, "1".to_string()].into_iter().chain(others.filter_map(|e| e.file_name().into_string().ok()));
    pids.filter(|p| p.bytes().all(|b| b.is_ascii_digit())).find_map(|pid| {
        let mount = find(&pid)?;
        let path = PathBuf::from(format!("/proc/{pid}/root")).join(mount.strip_prefix("/").unwrap_or(&mount));
        fs::read_dir(&path).is_ok().then_some(path)
    })
}

/// Most processes whose mount namespace is tried by [`cgroup2_root`].
const MAX_PROCESSES_TRIED: usize = 4096;

/// The cgroup v2 path of a process (`0::/path` in /proc/PID/cgroup).
pub fn process_cgroup(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("0::")).map(|p| p.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c";

    #[test]
    fn layouts_are_read() {
        let f = parse("/system.slice/hl7-bridge.service");
        assert_eq!(f, CgroupFacts { service: Some("hl7-bridge.service".into()), ..Default::default() });
        let f = parse(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!((f.runtime, f.container_id.as_deref(), f.service), (Some("docker"), Some(ID), None));
        let f = parse(&format!("/docker/{ID}"));
        assert_eq!((f.runtime, f.container_id.as_deref()), (Some("docker"), Some(ID)));
        let f = parse(&format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1a2b3c4d_5e6f_7a8b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-{ID}.scope"
        ));
        assert_eq!(f.pod_uid.as_deref(), Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"));
        assert_eq!((f.runtime, f.container_id.as_deref()), (Some("containerd"), Some(ID)));
        let f = parse(&format!("/kubepods/besteffort/pod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d/{ID}"));
        assert_eq!(f.pod_uid.as_deref(), Some("1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"));
        assert_eq!((f.runtime, f.container_id.as_deref()), (None, Some(ID)));
        let f = parse(&format!("/machine.slice/libpod-{ID}.scope/container"));
        assert_eq!(f.runtime, Some("podman"));
        let f = parse(&format!("/system.slice/crio-{ID}.scope"));
        assert_eq!(f.runtime, Some("cri-o"));
    }

    #[test]
    fn nothing_is_guessed() {
        for p in [
            "/",
            "/user.slice/user-1000.slice/session-3.scope",
            "/system.slice/docker-notanid.scope",
            "/tlsmon-test/client-a",
            "/.service",
            "/kubepods/burstable/podnot-a-uid",
            "/x/mypod1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d",
        ] {
            let f = parse(p);
            assert_eq!(f, CgroupFacts::default(), "{p}");
        }
    }

    /// The index finds this process's own cgroup by the id the kernel gives it (its
    /// directory's inode number), when a cgroup v2 hierarchy is mounted here.
    #[test]
    fn index_finds_real_cgroups() {
        let mut index = CgroupIndex::new();
        let Some(root) = index.root.clone() else {
            // Under `ip netns exec` there is none; the lab test covers that path.
            assert!(!index.has_root());
            return;
        };
        let mine = process_cgroup(std::process::id()).expect("/proc/self/cgroup has a v2 line");
        let dir = root.join(mine.trim_start_matches('/'));
        let id = fs::metadata(&dir).unwrap().ino();
        assert_eq!(index.path(id).as_deref(), Some(mine.as_str()));
        assert_eq!(index.walks, 1);
        assert_eq!(index.path(id).as_deref(), Some(mine.as_str()), "second lookup from the index");
        assert_eq!(index.walks, 1);
        assert_eq!(index.path(u64::MAX - 1), None);
        assert_eq!(index.walks, 1, "a miss right after a walk does not walk again");
    }
}
