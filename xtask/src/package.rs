//! `cargo xtask package`: the Debian package, built by cargo-deb from the release binary (eBPF
//! object embedded), the man pages and shell completions that binary generates from its own
//! clap definitions, the example config as /etc/tlsmon/tlsmon.toml (conffile), the dashboards
//! and alert rules, and the hardened systemd unit (packaging/). Must never enable or start the
//! unit on install: it needs an interface in the config first.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context as _, Result};
use clap::Args;

use crate::{setup, test};

#[derive(Args)]
pub struct PackageArgs {
    /// Skip `cargo xtask setup` (cargo-deb must then be installed already).
    #[arg(long)]
    no_setup: bool,
    /// Directory to write the .deb into (default: target/debian).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn run(args: PackageArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    setup::cargo_deb()?;
    let root = test::workspace_root();
    let target = test::target_dir(&root);
    // Without the CARGO_MANIFEST_DIR `cargo xtask` gave this process: ring's build script
    // tracks it, and a different value than a plain shell's rebuilds ring and all above it.
    let mut build = test::cargo(&["build", "--release", "--package", "monitor"]);
    build.env_remove("CARGO_MANIFEST_DIR");
    setup::run_cmd(&mut build, "cargo build --release -p monitor")?;
    let tlsmon = target.join("release/tlsmon");
    // cargo-deb's asset paths (monitor/Cargo.toml) name target/package/ beside the sources.
    let staged = root.join("target/package");
    stage_docs(&tlsmon, &staged)?;
    let out = args.out.unwrap_or_else(|| target.join("debian"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    // --strip: the release profile keeps line tables (debug = 1) for backtraces in development;
    // the package ships the stripped binary (the embedded eBPF object is data and keeps its BTF).
    let mut deb = test::cargo(&["deb", "-p", "monitor", "--no-build", "--strip"]);
    deb.arg("--output").arg(&out).env_remove("CARGO_MANIFEST_DIR");
    setup::run_cmd(&mut deb, "cargo deb")?;
    let built = newest_deb(&out)?;
    println!("package: {}", built.display());
    println!("install: dpkg -i {}   (then see README \"Install on a host\")", built.display());
    Ok(())
}

/// Man pages (gzipped, reproducibly) and bash/zsh/fish completions from the release binary.
fn stage_docs(tlsmon: &Path, staged: &Path) -> Result<()> {
    let man = staged.join("man");
    let completions = staged.join("completions");
    for d in [&man, &completions] {
        if d.exists() {
            std::fs::remove_dir_all(d).with_context(|| format!("removing {}", d.display()))?;
        }
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    setup::run_cmd(
        Command::new(tlsmon).arg("man").arg("--out").arg(&man).stdout(std::process::Stdio::null()),
        "tlsmon man",
    )?;
    let mut pages = Vec::new();
    for e in std::fs::read_dir(&man).with_context(|| format!("listing {}", man.display()))? {
        pages.push(e?.path());
    }
    if pages.is_empty() {
        bail!("tlsmon man wrote no page into {}", man.display());
    }
    // -n: no name or time stamp in the header, so the package is reproducible.
    setup::run_cmd(Command::new("gzip").args(["-9", "-n", "-f"]).args(&pages), "gzip the man pages")?;
    for (shell, file) in [("bash", "tlsmon"), ("zsh", "_tlsmon"), ("fish", "tlsmon.fish")] {
        let out = Command::new(tlsmon)
            .args(["completions", shell])
            .output()
            .with_context(|| format!("running tlsmon completions {shell}"))?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!("tlsmon completions {shell} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let path = completions.join(file);
        std::fs::write(&path, &out.stdout).with_context(|| format!("writing {}", path.display()))?;
    }
    println!("package: {} man pages and 3 completion scripts staged in {}", pages.len(), staged.display());
    Ok(())
}

/// The most recently written .deb in `dir`.
fn newest_deb(dir: &Path) -> Result<PathBuf> {
    let mut best: Option<(std::time::SystemTime, PathBuf)> = None;
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let p = e.path();
        if p.extension().is_some_and(|x| x == "deb") {
            let t = e.metadata()?.modified()?;
            if best.as_ref().is_none_or(|(b, _)| t > *b) {
                best = Some((t, p));
            }
        }
    }
    best.map(|(_, p)| p).with_context(|| format!("cargo deb wrote no .deb into {}", dir.display()))
}
