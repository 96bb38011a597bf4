//! Kernel attribution stage: socket hooks that run in the context of the task that connects,
//! binds or sends on a socket, and write who that task is into the `OWNERS` map under the
//! socket's cookie. The capture programs put the cookie of every packet a local socket sends
//! (TC egress) into its record; the agent joins the two.
//!
//! The hooks are cgroup socket programs attached to the cgroup v2 root (every process is below
//! it): `connect4`/`connect6` (outgoing TCP, connected UDP), `sendmsg4`/`sendmsg6` (unconnected
//! UDP sends), `post_bind4`/`post_bind6` (a socket bound to a port: the listener of a server)
//! and a `sock_ops` program that, when a connection is accepted (passive open), gives the new
//! socket the owner of the listener bound to its local port in its network namespace. They
//! need no tracing support (fentry is refused on kernels locked down or without trampolines)
//! and no GPL-only helper.
//! Must never refuse or change anything: every hook returns "allow" (1), whatever happens.
use aya_ebpf::{
    bindings::BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_get_current_cgroup_id, bpf_get_netns_cookie, bpf_get_socket_cookie},
    },
    macros::{cgroup_sock, cgroup_sock_addr, map, sock_ops},
    maps::LruHashMap,
    programs::{SockAddrContext, SockContext, SockOpsContext},
    EbpfContext as _,
};
use monitor_common::{counter, owner_source, ListenerKey, Owner, LISTENERS_MAX, OWNERS_MAX};

use crate::capture::bump;

/// Socket cookie → the task that owns the socket; least recently written go first.
#[map]
static OWNERS: LruHashMap<u64, Owner> = LruHashMap::with_max_entries(OWNERS_MAX, 0);

/// (network namespace, TCP port) → the task that bound a socket to it (a listener's owner).
#[map]
static LISTENERS: LruHashMap<ListenerKey, Owner> = LruHashMap::with_max_entries(LISTENERS_MAX, 0);

const _: () = assert!(monitor_common::str_eq(monitor_common::OWNERS_MAP, "OWNERS"));
const _: () = assert!(monitor_common::str_eq(monitor_common::LISTENERS_MAP, "LISTENERS"));

/// What "allow" is for every cgroup socket hook.
const ALLOW: i32 = 1;
const IPPROTO_TCP: u32 = 6;

/// The current task as an owner.
#[inline(always)]
fn current(source: u8) -> Owner {
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    Owner {
        tgid: (pid_tgid >> 32) as u32,
        pid: pid_tgid as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        // SAFETY: a helper without arguments.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        source,
        _pad: [0; 7],
    }
}

#[inline(always)]
fn store(cookie: u64, owner: &Owner) {
    if cookie == 0 {
        bump(counter::OWNER_FAILED);
        return;
    }
    match OWNERS.insert(&cookie, owner, 0) {
        Ok(()) => bump(counter::OWNERS_RECORDED),
        Err(_) => bump(counter::OWNER_FAILED),
    }
}

/// Record the current task as the owner of the hook's socket; with `only_new`, a socket that
/// has an owner keeps it (datagram sends: one lookup per send instead of one write).
#[inline(always)]
fn record<C: aya_ebpf::EbpfContext>(ctx: &C, source: u8, only_new: bool) {
    // SAFETY: the hook's own context, which these program types pass to the helper.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    // SAFETY: a read-only lookup; the value is not used past this line.
    if only_new && cookie != 0 && unsafe { OWNERS.get(&cookie) }.is_some() {
        return;
    }
    store(cookie, &current(source));
}

/// connect() on an IPv4 socket: an outgoing TCP connection or a connected UDP socket.
#[cgroup_sock_addr(connect4)]
pub fn tlsmon_owner_connect4(ctx: SockAddrContext) -> i32 {
    record(&ctx, owner_source::CONNECT, false);
    ALLOW
}

/// connect() on an IPv6 socket.
#[cgroup_sock_addr(connect6)]
pub fn tlsmon_owner_connect6(ctx: SockAddrContext) -> i32 {
    record(&ctx, owner_source::CONNECT, false);
    ALLOW
}

/// sendmsg()/sendto() with an address on an unconnected IPv4 UDP socket (QUIC and DTLS servers).
#[cgroup_sock_addr(sendmsg4)]
pub fn tlsmon_owner_sendmsg4(ctx: SockAddrContext) -> i32 {
    record(&ctx, owner_source::UDP_SEND, true);
    ALLOW
}

/// sendmsg()/sendto() with an address on an unconnected IPv6 UDP socket.
#[cgroup_sock_addr(sendmsg6)]
pub fn tlsmon_owner_sendmsg6(ctx: SockAddrContext) -> i32 {
    record(&ctx, owner_source::UDP_SEND, true);
    ALLOW
}

/// A socket bound to a port: its owner, and for TCP the listener owner of (netns, port).
#[inline(always)]
fn bound(ctx: &SockContext) {
    let owner = current(owner_source::BIND);
    // SAFETY: the hook's own context.
    let cookie = unsafe { bpf_get_socket_cookie(ctx.as_ptr()) };
    store(cookie, &owner);
    // SAFETY: the context is a valid `bpf_sock` for the whole run.
    let (protocol, port) = unsafe { ((*ctx.sock).protocol, (*ctx.sock).src_port) };
    if protocol == IPPROTO_TCP && port != 0 {
        // SAFETY: the hook's own context.
        let netns = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
        let key = ListenerKey { netns, port: port as u16, _pad: [0; 6] };
        if LISTENERS.insert(&key, &owner, 0).is_err() {
            bump(counter::OWNER_FAILED);
        }
    }
}

#[cgroup_sock(post_bind4)]
pub fn tlsmon_owner_bind4(ctx: SockContext) -> i32 {
    bound(&ctx);
    ALLOW
}

#[cgroup_sock(post_bind6)]
pub fn tlsmon_owner_bind6(ctx: SockContext) -> i32 {
    bound(&ctx);
    ALLOW
}

/// TCP socket events: on a passive open (an accepted connection) the new socket's owner is the
/// owner of the listener bound to its local port in its network namespace. Runs in softirq
/// context, where the current task means nothing: only the listener map is used.
#[sock_ops]
pub fn tlsmon_owner_sockops(ctx: SockOpsContext) -> u32 {
    if ctx.op() == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB {
        // SAFETY: the hook's own context.
        let netns = unsafe { bpf_get_netns_cookie(ctx.as_ptr()) };
        let key = ListenerKey { netns, port: ctx.local_port() as u16, _pad: [0; 6] };
        // SAFETY: the value is copied before anything else touches the map.
        if let Some(listener) = unsafe { LISTENERS.get(&key) } {
            let mut owner = *listener;
            owner.source = owner_source::ACCEPT;
            // SAFETY: the hook's own context.
            store(unsafe { bpf_get_socket_cookie(ctx.as_ptr()) }, &owner);
        } else {
            bump(counter::OWNER_FAILED);
        }
    }
    ALLOW as u32
}
