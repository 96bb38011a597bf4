//! Kernel attribution stage: socket hooks that run in the context of the task that opens,
//! accepts or sends on a socket, and write who that task is into the `OWNERS` map under the
//! socket's cookie. The capture programs put the cookie of every packet a local socket sends
//! (TC egress) into its record; the agent joins the two.
//! Must never block or change anything the kernel does: each hook only reads the current task
//! and writes one map entry, and returns 0. Needs no GPL-only helper and reads no kernel struct
//! field (the socket pointer only goes to `bpf_get_socket_cookie`).
use core::ffi::c_void;

use aya_ebpf::{
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_get_current_cgroup_id, bpf_get_socket_cookie},
    },
    macros::{fentry, fexit, map},
    maps::LruHashMap,
    programs::{FEntryContext, FExitContext},
};
use monitor_common::{counter, owner_source, Owner, OWNERS_MAX};

use crate::capture::bump;

/// Socket cookie → the task that owns the socket; least recently written go first.
#[map]
static OWNERS: LruHashMap<u64, Owner> = LruHashMap::with_max_entries(OWNERS_MAX, 0);

const _: () = assert!(monitor_common::str_eq(monitor_common::OWNERS_MAP, "OWNERS"));

/// Write the current task as the owner of `sk` (a `struct sock *` from the hooked function).
/// With `only_new`, a socket that already has an owner keeps it (datagram sends: one lookup per
/// send instead of one write).
#[inline(always)]
fn record(sk: *mut c_void, source: u8, only_new: bool) {
    if sk.is_null() {
        return;
    }
    // SAFETY: `sk` is the hooked function's socket argument (or return value), which the
    // verifier types from BTF; the helper only reads its cookie (generating one if needed).
    let cookie = unsafe { bpf_get_socket_cookie(sk) };
    if cookie == 0 {
        bump(counter::OWNER_FAILED);
        return;
    }
    // SAFETY: a read-only lookup; the value is not used past this line.
    if only_new && unsafe { OWNERS.get(&cookie) }.is_some() {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    let uid_gid = bpf_get_current_uid_gid();
    let owner = Owner {
        tgid: (pid_tgid >> 32) as u32,
        pid: pid_tgid as u32,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        // SAFETY: a helper without arguments.
        cgroup_id: unsafe { bpf_get_current_cgroup_id() },
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
        source,
        _pad: [0; 7],
    };
    match OWNERS.insert(&cookie, &owner, 0) {
        Ok(()) => bump(counter::OWNERS_RECORDED),
        Err(_) => bump(counter::OWNER_FAILED),
    }
}

/// `int tcp_connect(struct sock *sk)`: an outgoing TCP connection (IPv4 and IPv6), in the
/// connecting task (connect(), or sendmsg() with TCP Fast Open).
#[fentry(function = "tcp_connect")]
pub fn tlsmon_owner_connect(ctx: FEntryContext) -> u32 {
    record(ctx.arg(0), owner_source::CONNECT, false);
    0
}

/// `struct sock *inet_csk_accept(...)`: an accepted TCP connection (IPv4 and IPv6), in the
/// accepting task; the new socket is the return value.
#[fexit(function = "inet_csk_accept")]
pub fn tlsmon_owner_accept(ctx: FExitContext) -> u32 {
    if let Ok(sk) = ctx.ret::<*mut c_void>() {
        record(sk, owner_source::ACCEPT, false);
    }
    0
}

/// `int udp_sendmsg(struct sock *sk, ...)`: the first datagram a UDP socket sends (QUIC, DTLS).
#[fentry(function = "udp_sendmsg")]
pub fn tlsmon_owner_udp4(ctx: FEntryContext) -> u32 {
    record(ctx.arg(0), owner_source::UDP_SEND, true);
    0
}

/// `int udpv6_sendmsg(struct sock *sk, ...)`: as [`tlsmon_owner_udp4`] for IPv6 sockets.
#[fentry(function = "udpv6_sendmsg")]
pub fn tlsmon_owner_udp6(ctx: FEntryContext) -> u32 {
    record(ctx.arg(0), owner_source::UDP_SEND, true);
    0
}
