//! `cargo xtask image`: a container image built without a registry. No base image: the root
//! file system is staged here from the release binary (stripped), exactly the shared libraries
//! `ldd` lists for it and the dynamic loader (glibc's libc, libgcc_s), then built `FROM scratch`
//! with podman (packaging/Containerfile), saved as an archive that `docker load`, `podman load`
//! and `ctr -n k8s.io images import` read, and run once: `--version` and a replay of a corpus
//! capture, which must print events.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::{setup, test};

#[derive(Args)]
pub struct ImageArgs {
    /// Skip `cargo xtask setup` (podman and runc must then be installed already).
    #[arg(long)]
    no_setup: bool,
    /// Use this tlsmon binary instead of building target/release/tlsmon (e.g. /usr/bin/tlsmon
    /// of the package).
    #[arg(long, value_name = "PATH")]
    bin: Option<PathBuf>,
    /// Build and save the image only: no smoke run.
    #[arg(long)]
    no_run: bool,
}

/// Options of the smoke run. `--runtime runc`: Debian's default crun refuses a cgroup v1/v2
/// hybrid host ("cgroups in hybrid mode not supported"). The limits: podman asks for more
/// open files and processes than a sandbox without CAP_SYS_RESOURCE may raise to ("setrlimit
/// `RLIMIT_NOFILE`: Operation not permitted"); lower ones are always allowed.
pub const RUN_OPTS: &[&str] =
    &["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096", "--network", "none"];

pub fn run(args: ImageArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    let root = test::workspace_root();
    let target = test::target_dir(&root);
    let tlsmon = match args.bin {
        Some(b) => b,
        None => {
            let mut build = test::cargo(&["build", "--release", "--package", "monitor"]);
            build.env_remove("CARGO_MANIFEST_DIR");
            setup::run_cmd(&mut build, "cargo build --release -p monitor")?;
            target.join("release/tlsmon")
        }
    };
    let version = binary_version(&tlsmon)?;
    let dir = target.join("image");
    let context = dir.join("context");
    let libs = stage(&tlsmon, &context.join("rootfs"))?;
    println!("image: rootfs staged in {} (tlsmon, {})", context.display(), libs.join(", "));

    let tag = format!("localhost/tlsmon:{version}");
    setup::run_cmd(
        Command::new("podman")
            .args(["build", "--pull=never", "-t", &tag, "-t", "localhost/tlsmon:dev", "-f"])
            .arg(root.join("packaging/Containerfile"))
            .arg("--label")
            .arg(format!("org.opencontainers.image.version={version}"))
            .arg(&context),
        "podman build",
    )?;
    let archive = dir.join(format!("tlsmon_{version}.tar"));
    let _ = std::fs::remove_file(&archive);
    setup::run_cmd(
        Command::new("podman").args(["save", "--format", "docker-archive", "-o"]).arg(&archive).arg(&tag),
        "podman save",
    )?;
    println!("image: {tag} (also tlsmon:dev), archive {}", archive.display());
    if !args.no_run {
        smoke(&root, &tag, &version)?;
    }
    Ok(())
}

/// `tlsmon 0.1.0` → `0.1.0`.
fn binary_version(tlsmon: &Path) -> Result<String> {
    let out =
        Command::new(tlsmon).arg("--version").output().with_context(|| format!("running {}", tlsmon.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.trim().strip_prefix("tlsmon ") {
        Some(v) if out.status.success() && !v.is_empty() => Ok(v.to_string()),
        _ => bail!("{} --version printed {text:?}", tlsmon.display()),
    }
}

/// The image's root file system: /usr/bin/tlsmon (stripped) and every library `ldd` resolves
/// for it, at the path `ldd` names (symlinks copied as files). Returns the library paths.
fn stage(tlsmon: &Path, rootfs: &Path) -> Result<Vec<String>> {
    if rootfs.exists() {
        std::fs::remove_dir_all(rootfs).with_context(|| format!("removing {}", rootfs.display()))?;
    }
    let bin = rootfs.join("usr/bin/tlsmon");
    std::fs::create_dir_all(bin.parent().expect("has a parent"))?;
    std::fs::copy(tlsmon, &bin).with_context(|| format!("copying {}", tlsmon.display()))?;
    setup::run_cmd(Command::new("strip").arg(&bin), "strip tlsmon")?;
    let out = Command::new("ldd").arg(tlsmon).output().context("running ldd")?;
    let listing = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let libs = ldd_paths(&listing);
    // A static binary needs nothing beside it (ldd says so, with exit status 1 for non-PIE).
    let is_static = listing.contains("statically linked") || listing.contains("not a dynamic executable");
    if libs.is_empty() && !is_static {
        bail!("ldd listed no library for {}: {listing}", tlsmon.display());
    }
    for lib in &libs {
        let dest = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().expect("has a parent"))?;
        std::fs::copy(lib, &dest).with_context(|| format!("copying {lib}"))?;
    }
    // Mount points of the DaemonSet (config, audit log); the image's root stays read-only.
    for d in ["etc/tlsmon", "var/lib/tlsmon"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    Ok(libs)
}

/// Absolute paths in `ldd` output: `libc.so.6 => /lib/…/libc.so.6 (0x…)` and the loader
/// `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file.
fn ldd_paths(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = l.split_once("=> ").map_or(l, |(_, p)| p);
            let path = path.split_whitespace().next()?;
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

/// `--version` and a replay of a corpus capture mounted read-only, in the image as built.
fn smoke(root: &Path, tag: &str, version: &str) -> Result<()> {
    let out = Command::new("podman").arg("run").arg("--rm").args(RUN_OPTS).arg(tag).arg("--version").output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.trim() != format!("tlsmon {version}") {
        bail!("podman run {tag} --version: {text:?} {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    println!("image: `podman run --rm {} {tag} --version` → {}", RUN_OPTS.join(" "), text.trim());
    let pcaps = root.join("../shared/corpus/pcaps");
    let pcap = "zeek__tls1_1.pcap";
    if !pcaps.join(pcap).is_file() {
        println!("image: no corpus at {}: replay not run", pcaps.display());
        return Ok(());
    }
    let mount = format!("{}:/pcaps:ro", pcaps.canonicalize()?.display());
    let out = Command::new("podman")
        .arg("run")
        .arg("--rm")
        .args(RUN_OPTS)
        .args(["--read-only", "--cap-drop", "ALL", "-v", &mount, tag])
        .args(["replay", "--format", "json", &format!("/pcaps/{pcap}")])
        .output()?;
    let events = String::from_utf8_lossy(&out.stdout);
    let tls = events.lines().filter(|l| l.starts_with("{\"type\":\"tls\"")).count();
    if !out.status.success() || tls == 0 {
        bail!("replay of {pcap} in the image: {tls} TLS events; {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    println!("image: replay of {pcap} in the image (read-only, no capabilities, no network): {tls} TLS event(s)");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_gives_library_and_loader_paths() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f05)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f05)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f05)\n";
        assert_eq!(
            ldd_paths(out),
            ["/lib/x86_64-linux-gnu/libgcc_s.so.1", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"]
        );
        assert!(ldd_paths("\tstatically linked\n").is_empty());
    }
}
