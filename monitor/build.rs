//! Build stage: compiles the kernel programs (monitor-ebpf) for bpfel with the nightly
//! toolchain and bpf-linker through aya-build, leaving the object at `$OUT_DIR/monitor-ebpf`.
//! Must never be skipped silently: a missing bpf-linker or rust-src fails the build with a hint.
use anyhow::{anyhow, Context as _};

const EBPF_PACKAGE: &str = "monitor-ebpf";

fn main() -> anyhow::Result<()> {
    let metadata = cargo_metadata::MetadataCommand::new()
        .no_deps()
        .exec()
        .context("running cargo metadata to locate the eBPF crate")?;
    let ebpf = metadata
        .packages
        .iter()
        .find(|p| p.name.as_str() == EBPF_PACKAGE)
        .ok_or_else(|| anyhow!("package {EBPF_PACKAGE} not found in the workspace"))?;
    let root_dir =
        ebpf.manifest_path.parent().ok_or_else(|| anyhow!("{EBPF_PACKAGE} manifest has no parent directory"))?;

    // aya-build re-runs on changes under the eBPF crate; the shared record crate and the
    // workspace manifest (profiles, pins) shape the object too.
    let workspace = &metadata.workspace_root;
    println!("cargo:rerun-if-changed={}", workspace.join("monitor-common").as_str());
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.toml").as_str());
    println!("cargo:rerun-if-changed={}", workspace.join("Cargo.lock").as_str());

    // aya-build relays every stderr line of the inner cargo as a `cargo:warning`; keep its
    // progress lines ("Compiling …") out of that channel. Compiler diagnostics still come
    // through (they arrive as JSON on stdout), and so do cargo's errors.
    std::env::set_var("CARGO_TERM_QUIET", "true");

    let package = aya_build::Package { name: EBPF_PACKAGE, root_dir: root_dir.as_str(), ..Default::default() };
    aya_build::build_ebpf([package], aya_build::Toolchain::default()).context(
        "building the eBPF programs (needs the nightly toolchain with rust-src and bpf-linker \
         on PATH; run `cargo xtask setup`)",
    )
}
