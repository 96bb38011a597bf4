//! The project's only build/test entry point: setup, test, demo, bench, gen, lint, fuzz, package,
//! image.
//! Must never be needed at run time by the agent itself.
use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod demo;
mod fuzz;
mod gen;
mod gen_phi;
mod image;
mod package;
mod setup;
mod snapshot;
mod test;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "tlsmon developer tasks")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what is missing (apt packages, rust-src, bpf-linker, cargo-fuzz, cargo-deb); safe to run again.
    Setup,
    /// Set up, then run every test (unit, corpus golden, eBPF). The README's test command.
    Test(test::TestArgs),
    /// Set up, build release, and show `tlsmon live` on real handshakes in a network-namespace lab.
    Demo(demo::DemoArgs),
    /// Generate a large realistic capture for benchmarks.
    Gen(gen::GenArgs),
    /// Generate synthetic PHI-bearing plaintext captures (DICOM, FHIR, DICOMweb, CDA, X12, HL7, credentials, STARTTLS) for tests.
    GenPhi(gen_phi::GenPhiArgs),
    /// Benchmarks that print figures and ratios.
    Bench(bench::BenchArgs),
    /// rustfmt check and clippy.
    Lint,
    /// Build the fuzz targets and run each from seeds out of the corpus; fails on a crash.
    Fuzz(fuzz::FuzzArgs),
    /// JSON events and reports of `tlsmon replay` over the whole corpus and the PHI captures, one
    /// file each, to compare two builds with `diff -r` (refactors must not change a byte).
    Snapshot(snapshot::SnapshotArgs),
    /// Set up, build release, and make the Debian package (target/debian/tlsmon_*.deb): binary,
    /// man pages, completions, /etc/tlsmon/tlsmon.toml, dashboards, hardened systemd unit.
    Package(package::PackageArgs),
    /// Set up, build release, and make the container image `FROM scratch` (binary, the libraries
    /// ldd lists and the loader) with podman: localhost/tlsmon:<version> and target/image/*.tar;
    /// then run it for --version and a corpus replay.
    Image(image::ImageArgs),
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Setup => setup::run(),
        Cmd::Test(a) => test::run(a),
        Cmd::Demo(a) => demo::run(a),
        Cmd::Gen(a) => gen::run(a),
        Cmd::GenPhi(a) => gen_phi::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Lint => test::lint(),
        Cmd::Fuzz(a) => fuzz::run(a),
        Cmd::Snapshot(a) => snapshot::run(a),
        Cmd::Package(a) => package::run(a),
        Cmd::Image(a) => image::run(a),
    }
}
