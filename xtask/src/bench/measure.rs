//! Bench measurement: run a child pinned to one CPU and report its wall time and peak RSS
//! (wait4 rusage, no external tools). Must never time anything but the child itself.
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

pub struct Run {
    pub wall: Duration,
    /// Peak resident set size of the child (and any children it waited for), KiB.
    pub max_rss_kib: u64,
    /// Exit code, or -signal if killed by a signal.
    pub code: i32,
}

fn pin(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET bounds-checks against the set size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The highest-numbered CPU this process may run on (usually the least busy with IRQs).
pub fn default_cpu() -> Option<usize> {
    // SAFETY: as above; sched_getaffinity fills the set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return None;
        }
        (0..libc::CPU_SETSIZE as usize).rev().find(|&c| libc::CPU_ISSET(c, &set))
    }
}

/// Spawns `cmd` (pinned to `cpu` if given), waits with wait4 and returns what it cost.
pub fn run_pinned(cmd: &mut Command, cpu: Option<usize>) -> Result<Run> {
    if let Some(cpu) = cpu {
        // SAFETY: the closure only makes the sched_setaffinity syscall (async-signal-safe).
        unsafe {
            cmd.pre_exec(move || pin(cpu));
        }
    }
    let start = Instant::now();
    let child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data filled by wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unreaped child; pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err).context("wait4 on the benchmark child");
        }
    }
    let wall = start.elapsed();
    drop(child); // already reaped by wait4; dropping a Child neither waits nor kills
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
    Ok(Run { wall, max_rss_kib: ru.ru_maxrss.max(0) as u64, code })
}

/// Reads the whole file once (page cache warm-up) and counts packets if it is a classic
/// little-endian pcap. Returns (bytes, packets).
pub fn warm_and_count(path: &Path) -> Result<(u64, Option<u64>)> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut bytes, mut packets, mut skip) = (0u64, 0u64, 24u64);
    let (mut hdr, mut fill) = ([0u8; 16], 0usize);
    let mut classic = None;
    loop {
        let n = f.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        if classic.is_none() {
            classic = Some(n >= 4 && matches!(buf[..4], [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1]));
        }
        bytes += n as u64;
        let mut i = 0;
        while classic == Some(true) && i < n {
            if skip > 0 {
                let t = skip.min((n - i) as u64);
                i += t as usize;
                skip -= t;
                continue;
            }
            let t = (16 - fill).min(n - i);
            hdr[fill..fill + t].copy_from_slice(&buf[i..i + t]);
            fill += t;
            i += t;
            if fill == 16 {
                packets += 1;
                skip = u64::from(u32::from_le_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]));
                fill = 0;
            }
        }
    }
    Ok((bytes, (classic == Some(true)).then_some(packets)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_exit_code_wall_time_and_rss() {
        // dd's 64 MiB buffer is filled from /dev/zero: its peak RSS must show through sh.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "dd if=/dev/zero bs=64M count=1 of=/dev/null 2>/dev/null; sleep 0.2; exit 3"]);
        let r = run_pinned(&mut cmd, default_cpu()).expect("run");
        assert_eq!(r.code, 3);
        assert!(r.wall >= Duration::from_millis(200), "{:?}", r.wall);
        assert!(r.max_rss_kib > 60 * 1024, "{}", r.max_rss_kib);
    }

    #[test]
    fn default_cpu_is_allowed() {
        let cpu = default_cpu().expect("affinity");
        pin(cpu).expect("pin to an allowed cpu");
    }
}
