//! Capture, start-up scan: the owners of sockets that existed before the agent started, which
//! no socket hook saw being opened. `sock_diag` (netlink) lists the TCP and UDP sockets of the
//! agent's network namespace with their cookies and inodes; `/proc/PID/fd` links each inode to
//! the process holding it (what `ss -p` does).
//! Must run before capabilities are dropped (reading other processes' fd tables needs
//! CAP_SYS_PTRACE), once, and bounded: at most [`MAX_PROCESSES`] processes and
//! [`MAX_SOCKET_FDS`] socket descriptors are looked at; what is past the bounds is counted.
use std::collections::HashMap;
use std::fs;

use monitor_common::{owner_source, ListenerKey, Owner};
use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::{protocols::NETLINK_SOCK_DIAG, Socket, SocketAddr};

/// Most processes whose descriptor tables are read.
pub const MAX_PROCESSES: usize = 65_536;
/// Most socket descriptors remembered.
pub const MAX_SOCKET_FDS: usize = 262_144;

/// What the scan found and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Sockets `sock_diag` listed (TCP and UDP, IPv4 and IPv6).
    pub sockets: usize,
    /// Of those, sockets a process was found for.
    pub owned: usize,
    /// Processes whose descriptor table could not be read (gone, or not permitted).
    pub unreadable: usize,
    /// Processes or descriptors past the bounds.
    pub over_bounds: usize,
}

/// Every (cookie, owner) of the namespace's TCP and UDP sockets held by a process now, and
/// the owners of its TCP listeners by (network namespace, port).
#[allow(clippy::type_complexity)]
pub fn existing_sockets() -> Result<(Vec<(u64, Owner)>, Vec<(ListenerKey, Owner)>, ScanStats), String> {
    let mut stats = ScanStats::default();
    let holders = socket_holders(&mut stats);
    let netns = netns_cookie().map_err(|e| format!("SO_NETNS_COOKIE: {e}"))?;
    let (mut found, mut listeners) = (Vec::new(), Vec::new());
    for (family, protocol) in
        [(AF_INET, IPPROTO_TCP), (AF_INET6, IPPROTO_TCP), (AF_INET, IPPROTO_UDP), (AF_INET6, IPPROTO_UDP)]
    {
        for s in dump(family, protocol)? {
            stats.sockets += 1;
            if let Some(owner) = holders.get(&s.inode) {
                stats.owned += 1;
                found.push((s.cookie, *owner));
                if protocol == IPPROTO_TCP && s.state == TCP_LISTEN {
                    listeners.push((ListenerKey { netns, port: s.port, _pad: [0; 6] }, *owner));
                }
            }
        }
    }
    Ok((found, listeners, stats))
}

/// `TCP_LISTEN` in the kernel's TCP state numbering (what sock_diag reports).
const TCP_LISTEN: u8 = 10;

/// The cookie of the agent's network namespace (what `bpf_get_netns_cookie` gives the hooks).
fn netns_cookie() -> std::io::Result<u64> {
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").or_else(|_| std::net::UdpSocket::bind("[::1]:0"))?;
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `cookie`, a valid u64.
    let rc = unsafe {
        libc::getsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&sock),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cookie)
}

/// One socket of a sock_diag dump.
struct Diag {
    cookie: u64,
    inode: u64,
    state: u8,
    port: u16,
}

/// Socket inode → the process holding a descriptor for it (the first one found).
fn socket_holders(stats: &mut ScanStats) -> HashMap<u64, Owner> {
    let mut holders = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return holders;
    };
    let mut processes = 0;
    for entry in dir.flatten() {
        let Some(tgid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        processes += 1;
        if processes > MAX_PROCESSES {
            stats.over_bounds += 1;
            continue;
        }
        let Ok(fds) = fs::read_dir(format!("/proc/{tgid}/fd")) else {
            stats.unreadable += 1;
            continue;
        };
        let mut owner = None;
        for fd in fds.flatten() {
            let Ok(target) = fs::read_link(fd.path()) else { continue };
            let Some(inode) = socket_inode(&target.to_string_lossy()) else { continue };
            if holders.len() >= MAX_SOCKET_FDS {
                stats.over_bounds += 1;
                break;
            }
            let o = *owner.get_or_insert_with(|| process_owner(tgid));
            holders.entry(inode).or_insert(o);
        }
    }
    holders
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// What `/proc/PID` says of a process (the kernel hooks' fields; the cgroup comes from the
/// socket's own packets instead).
fn process_owner(tgid: u32) -> Owner {
    let mut o = Owner { tgid, pid: tgid, source: owner_source::SCAN, ..Owner::default() };
    if let Ok(comm) = fs::read(format!("/proc/{tgid}/comm")) {
        let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
        let n = comm.len().min(15);
        o.comm[..n].copy_from_slice(&comm[..n]);
    }
    if let Ok(status) = fs::read_to_string(format!("/proc/{tgid}/status")) {
        let id = |key: &str| {
            status.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok())
        };
        o.uid = id("Uid:").unwrap_or(0);
        o.gid = id("Gid:").unwrap_or(0);
    }
    o
}

/// Every socket of one family and protocol, from a sock_diag dump.
fn dump(family: u8, protocol: u8) -> Result<Vec<Diag>, String> {
    let fail = |what: &str, e: std::io::Error| format!("sock_diag {what}: {e}");
    let mut socket = Socket::new(NETLINK_SOCK_DIAG).map_err(|e| fail("socket", e))?;
    socket.bind_auto().map_err(|e| fail("bind", e))?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(|e| fail("connect", e))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let socket_id = if family == AF_INET { SocketId::new_v4() } else { SocketId::new_v6() };
    let request = SockDiagMessage::InetRequest(InetRequest {
        family,
        protocol,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::all(),
        socket_id,
    });
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf[..]);
    socket.send(&buf, 0).map_err(|e| fail("send", e))?;
    let mut out = Vec::new();
    let mut rx = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut rx[..], 0).map_err(|e| fail("recv", e))?;
        let mut offset = 0;
        while offset < size {
            let msg = <NetlinkMessage<SockDiagMessage>>::deserialize(&rx[offset..size])
                .map_err(|e| format!("sock_diag answer: {e}"))?;
            let len = msg.header.length as usize;
            match msg.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let c = r.header.socket_id.cookie;
                    let lo = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]);
                    let hi = u32::from_ne_bytes([c[4], c[5], c[6], c[7]]);
                    out.push(Diag {
                        cookie: (u64::from(hi) << 32) | u64::from(lo),
                        inode: u64::from(r.header.inode),
                        state: r.header.state,
                        port: r.header.socket_id.source_port,
                    });
                }
                NetlinkPayload::Done(_) => return Ok(out),
                NetlinkPayload::Error(e) => return Err(format!("sock_diag: {e}")),
                _ => {}
            }
            if len == 0 {
                break;
            }
            offset += len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode("socket:[12345]"), Some(12345));
        for bad in ["pipe:[1]", "socket:[]", "socket:[12", "/dev/null", "socket:[-1]"] {
            assert_eq!(socket_inode(bad), None, "{bad}");
        }
    }

    /// A connection this test process holds is found with this process as its owner, and every
    /// cookie is non-zero and distinct.
    #[test]
    fn finds_this_process_sockets() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let (found, listeners, stats) = existing_sockets().expect("sock_diag works without privileges");
        let port = listener.local_addr().unwrap().port();
        assert!(
            listeners.iter().any(|(k, o)| k.port == port && o.tgid == std::process::id()),
            "this test's listener on port {port} is found with its owner"
        );
        let me = std::process::id();
        let mine = found.iter().filter(|(_, o)| o.tgid == me).count();
        assert!(mine >= 3, "listener, client and accepted sockets: {mine} of {stats:?}");
        let mut cookies: Vec<u64> = found.iter().map(|(c, _)| *c).collect();
        assert!(cookies.iter().all(|c| *c != 0));
        cookies.sort_unstable();
        cookies.dedup();
        assert_eq!(cookies.len(), found.len(), "cookies are unique");
        let o = found.iter().find(|(_, o)| o.tgid == me).unwrap().1;
        assert_eq!(o.source, owner_source::SCAN);
        assert!(o.comm[0] != 0, "comm read from /proc");
    }
}
