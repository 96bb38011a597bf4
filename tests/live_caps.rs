//! The packaged agent's privileges are enough: `tlsmon live` started the way the systemd unit
//! starts it — as an unprivileged user (nobody) holding only CAP_BPF, CAP_NET_ADMIN and
//! CAP_PERFMON as ambient capabilities (setpriv, as `AmbientCapabilities=` does) — attaches in
//! the network-namespace lab (tests/lab) and judges a live TLS 1.0 handshake; the same binary
//! without CAP_PERFMON, or with no capability at all, fails to attach. The binary is
//! $TLSMON_BIN when set (e.g. /usr/bin/tlsmon after `dpkg -i`), else this build's.
//! Must never be skipped: it needs root to build the lab (CI runs as root).
mod lab;

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use lab::{Family, Lab, Mode, Posture, SERVERS};

/// The unit's capability set, in setpriv's spelling.
const CAPS: &str = "+bpf,+net_admin,+perfmon";

fn tlsmon_bin() -> PathBuf {
    std::env::var_os("TLSMON_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_tlsmon")), PathBuf::from)
}

/// A wrapper that execs `bin` as nobody with exactly `caps` (inheritable and ambient; the
/// bounding set cut down to them too, as `CapabilityBoundingSet=` does).
fn wrapper(lab: &Lab, bin: &Path, name: &str, caps: &str) -> Result<PathBuf> {
    let path = lab.dir.join(name);
    let bounding = if caps.is_empty() { "-all".to_string() } else { format!("-all,{caps}") };
    let inh = if caps.is_empty() { "-all".to_string() } else { caps.to_string() };
    let ambient = if caps.is_empty() { String::new() } else { format!(" --ambient-caps={caps}") };
    let script = format!(
        "#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps={inh}{ambient} \
         --bounding-set={bounding} -- {} \"$@\"\n",
        bin.display()
    );
    std::fs::write(&path, script).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

/// The binary where nobody can run it: as is when every directory above it is searchable by
/// others (/usr/bin), else a copy in the lab dir (a checkout under /root is not).
fn runnable_by_nobody(lab: &Lab) -> Result<PathBuf> {
    let bin = tlsmon_bin();
    let open = bin.ancestors().skip(1).all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
    if open {
        return Ok(bin);
    }
    std::fs::set_permissions(&lab.dir, std::fs::Permissions::from_mode(0o755))?;
    let copy = lab.dir.join("tlsmon");
    std::fs::copy(&bin, &copy).with_context(|| format!("copying {} into the lab", bin.display()))?;
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))?;
    Ok(copy)
}

#[test]
fn three_capabilities_as_nobody_capture_a_tls10_handshake() -> Result<()> {
    let mut lab = Lab::create()?;
    let bin = runnable_by_nobody(&lab)?;
    lab.start_servers()?;
    let legacy = SERVERS.iter().find(|s| s.posture == Posture::Legacy).context("the TLS 1.0 server")?;

    // Without CAP_PERFMON, or with nothing: attaching is refused, so the set is also minimal
    // in that each capability is needed (CAP_PERFMON: aya's feature probes load a tracing
    // program; CAP_BPF and CAP_NET_ADMIN: load and attach).
    for (name, caps) in [("no-perfmon", "+bpf,+net_admin"), ("no-caps", "")] {
        let w = wrapper(&lab, &bin, name, caps)?;
        match lab.start_live(&w, Mode::Tc, &[]) {
            Ok(live) => {
                let _ = live.stop();
                if name == "no-caps" {
                    bail!("tlsmon attached as nobody without any capability");
                }
                eprintln!("note: attached without CAP_PERFMON on this kernel");
            }
            Err(e) => eprintln!("{name}: refused as expected: {}", format!("{e:#}").lines().last().unwrap_or("")),
        }
    }

    let w = wrapper(&lab, &bin, "three-caps", CAPS)?;
    let mut live = lab.start_live(&w, Mode::Tc, &["--stats"])?;
    let runs = lab.run_server_clients(legacy, Family::V4)?;
    assert!(!runs.is_empty(), "the lab ran a client against the TLS 1.0 server");
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !events.iter().any(is_tls10) {
        if let Some(ev) = live.next_event(Duration::from_millis(100))? {
            events.push(ev);
        }
    }
    let mut stopped = live.stop()?;
    events.append(&mut stopped.events);
    if !stopped.status.success() {
        bail!("tlsmon exited with {}; stderr:\n{}", stopped.status, stopped.stderr.join("\n"));
    }
    // After attaching it drops the three too (kernels with descriptor links), though it holds
    // no CAP_SETPCAP to shrink its bounding set.
    if monitor::capture::ebpf::privileges::links_are_descriptors() {
        let warned = stopped.stderr.iter().find(|l| l.contains("could not drop capabilities"));
        assert!(warned.is_none(), "the capability-only agent kept its capabilities: {warned:?}");
    }
    let ev = events.iter().find(|e| is_tls10(e)).with_context(|| {
        format!(
            "no TLS 1.0 event from the capability-only agent; events: {events:?}\nstderr:\n{}",
            stopped.stderr.join("\n")
        )
    })?;
    let ids: Vec<&str> = ev["findings"].as_array().into_iter().flatten().filter_map(|f| f["id"].as_str()).collect();
    assert!(ids.contains(&"tls.version.deprecated"), "TLS 1.0 judged deprecated: {ids:?}");
    assert_eq!(ev["destination"]["port"].as_u64(), Some(u64::from(legacy.port)));
    Ok(())
}

fn is_tls10(ev: &serde_json::Value) -> bool {
    ev["type"] == "tls" && ev["tls"]["version"] == "1.0"
}
