//! Capture, privileges: once the programs are attached the agent needs no capability at all
//! (ring buffer and maps are read through descriptors it already holds; closing the link
//! descriptors detaches), so every capability set is emptied.
//! Must never run before attach, and never leave the process able to regain a capability.
use aya::util::KernelVersion;
use caps::{CapSet, CapsHashSet};

/// Can the capture detach without privileges? True when every link is a descriptor (TCX
/// links from 6.6, XDP links from 5.9); on older kernels TC filters hang off netlink and
/// removing them needs CAP_NET_ADMIN, so the capabilities must stay.
pub fn links_are_descriptors() -> bool {
    KernelVersion::current().map(|v| v >= KernelVersion::new(6, 6, 0)).unwrap_or(false)
}

/// Drop every capability from the effective, permitted, inheritable and ambient sets and, when
/// the process may (CAP_SETPCAP: root), from the bounding set; set no_new_privs so no exec can
/// regain any. A capability-only agent (the systemd unit: CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)
/// has no CAP_SETPCAP: its bounding set stays, which is harmless once the other sets are empty
/// and no_new_privs is set (an exec gains no file capabilities, and it is not root).
pub fn drop_all() -> Result<(), caps::errors::CapsError> {
    // Bounding set first: dropping from it needs CAP_SETPCAP, which the clear below removes.
    if caps::has_cap(None, CapSet::Effective, caps::Capability::CAP_SETPCAP)? {
        for cap in caps::all() {
            if caps::has_cap(None, CapSet::Bounding, cap)? {
                caps::drop(None, CapSet::Bounding, cap)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    caps::set(None, CapSet::Effective, &CapsHashSet::new())?;
    caps::set(None, CapSet::Permitted, &CapsHashSet::new())?;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) has no memory arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(caps::errors::CapsError::from(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}
