//! Setup: installs what a fresh machine lacks (apt packages, nightly rust-src, bpf-linker,
//! cargo-fuzz, kubernetes-validate and aioquic from PyPI in a virtual environment, the ECS field
//! reference from npm; cargo-deb when `cargo xtask package` asks for it).
//! Must never redo work that is already done: a second run only checks and takes well under 2 s.
use std::{
    env, fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context as _, Result};

/// Debian packages the tests and the demo use: `ip netns` and veth (iproute2), TLS servers and
/// clients for the lab (openssl, curl; gnutls-bin for 3DES, which Debian's OpenSSL 3.0 is built
/// without), `/usr/bin/time`, `ps` and `sysctl` (procps); the real clear-text health peers of
/// the plaintext lab: DICOM storescu/storescp/echoscu/dump2dcm (dcmtk) and HL7 v2 over MLLP
/// (python3-hl7, whose `hl7.client` module is what its `mllp_send` script runs); the metrics
/// tests: Debian's Prometheus server with promtool, and Alertmanager; tcpdump, which records
/// what a live test saw so that replay can be held to the same result; tcpreplay, which sends
/// captures onto a veth: the generated floods of `cargo xtask bench floods`, the mix of
/// `cargo xtask bench soak` and the live SIGTERM test; OpenSSH's sshd, ssh and sftp, the real
/// peers of the SSH lab (tests/live_ssh.rs); prosody and inspircd, the real XMPP and IRC
/// servers of the STARTTLS lab (tests/live_starttls.rs); `cargo xtask package` and its checks: dpkg-dev
/// (dpkg-shlibdeps, for cargo-deb's `$auto` dependencies), lintian, man-db (`man -w`), systemd
/// (`systemd-analyze verify`/`security` of the unit) and adduser (the package's user);
/// `cargo xtask image`: podman, and runc (Debian's default crun refuses hosts with cgroup v1
/// and v2 mounted side by side); python3-venv for the virtual environment of
/// kubernetes-validate (tests/kubernetes.rs); tshark, whose dissectors check the synthetic
/// captures built from protocol specifications (the SQL Server TDS captures, tests/tds_replay.rs);
/// chromium (headless) and poppler-utils (pdftoppm), which open, screenshot and print the HTML
/// reports to A4 (tests/report_chromium.rs).
const APT_PACKAGES: &[&str] = &[
    "iproute2",
    "openssl",
    "curl",
    "gnutls-bin",
    "time",
    "procps",
    "ca-certificates",
    "dcmtk",
    "python3-hl7",
    "prometheus",
    "prometheus-alertmanager",
    "tcpdump",
    "tcpreplay",
    "openssh-server",
    "openssh-client",
    "prosody",
    "inspircd",
    "dpkg-dev",
    "lintian",
    "man-db",
    "systemd",
    "adduser",
    "podman",
    "runc",
    "python3-venv",
    "tshark",
    "chromium",
    "poppler-utils",
    // ndpiReader, a peer in `cargo xtask bench compare`.
    "libndpi-bin",
    // jq: the README's event examples, run by tests/ecs_events.rs.
    "jq",
];

const BPF_LINKER_VERSION: &str = "0.13.0";
/// LLVM majors bpf-linker 0.13 has a cargo feature for.
const BPF_LINKER_LLVM_MAJORS: &[u32] = &[21, 22, 23];
const NIGHTLY: &str = "nightly";
/// cargo-fuzz builds the fuzz targets (`cargo xtask fuzz`, and the smoke run of the tests).
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// cargo-deb builds the Debian package (`cargo xtask package`).
const CARGO_DEB_VERSION: &str = "3.8.0";
/// kubernetes-validate (PyPI) validates the rendered core kinds of deploy/kubernetes against
/// the Kubernetes schemas it bundles (tests/kubernetes.rs); installed with pip into its own
/// virtual environment ([`kubernetes_validate_venv`]), never into the system's Python.
const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
/// aioquic, the QUIC client and server of tests/live_quic.rs (PyPI, same environment).
const AIOQUIC_VERSION: &str = "1.2.0";

pub fn run() -> Result<()> {
    let start = Instant::now();
    apt_packages()?;
    rust_src()?;
    bpf_linker()?;
    cargo_fuzz()?;
    // cargo-deb only for `cargo xtask package`, which installs it itself: not compiled for every
    // test run on a fresh machine.
    kubernetes_validate()?;
    ecs_reference()?;
    println!("setup: done in {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|rest| rest.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

fn apt_packages() -> Result<()> {
    let missing = missing_packages()?;
    if missing.is_empty() {
        println!("ok: apt packages present ({})", APT_PACKAGES.join(", "));
        return Ok(());
    }
    println!("installing apt packages: {}", missing.join(" "));
    if !is_root() {
        bail!(
            "apt packages missing ({}) and not running as root: run `sudo apt-get install {}`",
            missing.join(", "),
            missing.join(" ")
        );
    }
    run_cmd(Command::new("apt-get").arg("update").arg("-q"), "apt-get update")?;
    run_cmd(
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )?;
    let still = missing_packages()?;
    if !still.is_empty() {
        bail!("apt-get install finished but still missing: {}", still.join(", "));
    }
    stop_installed_services(&missing);
    Ok(())
}

/// Debian starts the services of the Prometheus, OpenSSH, Prosody and InspIRCd packages it just
/// installed (Prometheus on :9090, Alertmanager on :9093, sshd on :22, prosody on :5222/:5269,
/// inspircd on :6667, every interface). The tests start their own on loopback,
/// so on a systemd host the ones this setup installed are stopped and disabled again.
fn stop_installed_services(installed: &[&str]) {
    // openssh-server's unit is `ssh` (sshd on :22, every interface).
    let services: Vec<&str> = installed
        .iter()
        .filter_map(|p| match *p {
            "prometheus" | "prometheus-alertmanager" => Some(*p),
            "openssh-server" => Some("ssh"),
            "prosody" | "inspircd" => Some(*p),
            _ => None,
        })
        .collect();
    if services.is_empty() || !Path::new("/run/systemd/system").exists() {
        return;
    }
    println!("stopping and disabling the services apt started: {}", services.join(" "));
    let status = Command::new("systemctl").args(["disable", "--now"]).args(&services).status();
    if !status.is_ok_and(|s| s.success()) {
        println!("warning: `systemctl disable --now {}` failed; stop them by hand if unwanted", services.join(" "));
    }
}

/// Packages from [`APT_PACKAGES`] that dpkg does not report as installed (one dpkg-query call).
fn missing_packages() -> Result<Vec<&'static str>> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${Package} ${db:Status-Abbrev}\n"])
        .args(APT_PACKAGES)
        .stderr(Stdio::null())
        .output()
        .context("running dpkg-query (is this a Debian machine?)")?;
    // Exit status is 1 when some package is unknown; the listing still covers the known ones.
    let listing = String::from_utf8_lossy(&out.stdout);
    let installed: Vec<&str> = listing
        .lines()
        .filter_map(|l| {
            let (name, status) = l.split_once(' ')?;
            status.starts_with("ii").then_some(name)
        })
        .collect();
    Ok(APT_PACKAGES.iter().copied().filter(|p| !installed.iter().any(|i| i.split(':').next() == Some(*p))).collect())
}

fn nightly_sysroot() -> Result<PathBuf> {
    let out = Command::new("rustc")
        .args([&format!("+{NIGHTLY}"), "--print", "sysroot"])
        .output()
        .context("running `rustc +nightly --print sysroot` (is rustup installed?)")?;
    if !out.status.success() {
        bail!(
            "the nightly toolchain is missing (`rustc +nightly` failed: {}); \
             install it with `rustup toolchain install nightly`",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn rust_src() -> Result<()> {
    let sysroot = nightly_sysroot()?;
    let core = sysroot.join("lib/rustlib/src/rust/library/core/src/lib.rs");
    if core.is_file() {
        println!("ok: rust-src ({NIGHTLY}) present");
        return Ok(());
    }
    println!("installing rust-src for {NIGHTLY}");
    run_cmd(
        Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]),
        "rustup component add rust-src",
    )?;
    if !core.is_file() {
        bail!("rust-src installed but {} is still missing", core.display());
    }
    Ok(())
}

/// `TOOL --version` output when it runs, None when it is absent or cannot start (e.g.
/// bpf-linker's libLLVM went away with a nightly update).
fn tool_version(tool: &str) -> Option<String> {
    let out = Command::new(tool).arg("--version").stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Does `tool --version` report `wanted`? Says so, or what it found instead.
fn present(tool: &str, wanted: &str) -> bool {
    match tool_version(tool) {
        Some(v) if v == wanted => {
            println!("ok: {wanted} present");
            return true;
        }
        Some(v) => println!("installing {wanted} (found `{v}`)"),
        None => println!("installing {wanted} (absent or does not run)"),
    }
    false
}

/// cargo-fuzz at [`CARGO_FUZZ_VERSION`] (a crates.io install; about 1.5 min the first time).
pub fn cargo_fuzz() -> Result<()> {
    let wanted = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    if present("cargo-fuzz", &wanted) {
        return Ok(());
    }
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_cmd(
        Command::new(cargo).args(["install", &format!("cargo-fuzz@{CARGO_FUZZ_VERSION}"), "--locked", "--force"]),
        "cargo install cargo-fuzz",
    )?;
    match tool_version("cargo-fuzz") {
        Some(v) if v == wanted => Ok(()),
        other => bail!("installed cargo-fuzz reports {other:?}, expected `{wanted}`; is ~/.cargo/bin on PATH?"),
    }
}

/// cargo-deb at [`CARGO_DEB_VERSION`] (a crates.io install, as cargo-fuzz).
pub fn cargo_deb() -> Result<()> {
    let wanted = format!("cargo-deb {CARGO_DEB_VERSION}");
    let found = || {
        let out = Command::new("cargo-deb").arg("--version").stderr(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if found().as_deref() == Some(wanted.as_str()) || found().as_deref() == Some(CARGO_DEB_VERSION) {
        println!("ok: {wanted} present");
        return Ok(());
    }
    println!("installing {wanted}");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    run_cmd(
        Command::new(cargo).args(["install", &format!("cargo-deb@{CARGO_DEB_VERSION}"), "--locked", "--force"]),
        "cargo install cargo-deb",
    )?;
    match found() {
        Some(v) if v == wanted || v == CARGO_DEB_VERSION => Ok(()),
        other => bail!("installed cargo-deb reports {other:?}, expected `{wanted}`; is ~/.cargo/bin on PATH?"),
    }
}

/// The virtual environment holding kubernetes-validate: `$XDG_CACHE_HOME/tlsmon-venv` or
/// `~/.cache/tlsmon-venv` (tests/kubernetes.rs looks there too; `cargo xtask test` passes it
/// as TLSMON_KUBERNETES_VALIDATE).
pub fn kubernetes_validate_venv() -> Result<PathBuf> {
    Ok(cache_dir()?.join("tlsmon-venv"))
}

/// kubernetes-validate at [`KUBERNETES_VALIDATE_VERSION`] in [`kubernetes_validate_venv`]
/// (Debian's python3 and its venv module; pip from PyPI; a few seconds the first time).
fn kubernetes_validate() -> Result<()> {
    let venv = kubernetes_validate_venv()?;
    let bin = venv.join("bin/kubernetes-validate");
    let found = || {
        let out = Command::new(&bin).arg("--version").stderr(Stdio::null()).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // aioquic: the QUIC peers of the live lab (tests/live_quic.rs), in the same environment.
    let aioquic = || {
        let check = format!("import aioquic, sys; sys.exit(aioquic.__version__ != '{AIOQUIC_VERSION}')");
        Command::new(venv.join("bin/python")).args(["-c", &check]).status().is_ok_and(|s| s.success())
    };
    let wanted = format!("kubernetes-validate {KUBERNETES_VALIDATE_VERSION} and aioquic {AIOQUIC_VERSION}");
    if found().is_some_and(|v| v.ends_with(KUBERNETES_VALIDATE_VERSION)) && aioquic() {
        println!("ok: {wanted} present ({})", venv.display());
        return Ok(());
    }
    println!("installing {wanted} into {}", venv.display());
    run_cmd(Command::new("/usr/bin/python3").args(["-m", "venv", "--clear"]).arg(&venv), "python3 -m venv")?;
    run_cmd(
        Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check"])
            .arg(format!("kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}"))
            .arg(format!("aioquic=={AIOQUIC_VERSION}")),
        "pip install kubernetes-validate aioquic",
    )?;
    if !aioquic() {
        bail!("aioquic {AIOQUIC_VERSION} does not import from {}", venv.display());
    }
    match found() {
        Some(v) if v.ends_with(KUBERNETES_VALIDATE_VERSION) => Ok(()),
        other => bail!("installed kubernetes-validate reports {other:?}, expected `{wanted}`"),
    }
}

fn bpf_linker() -> Result<()> {
    let wanted = format!("bpf-linker {BPF_LINKER_VERSION}");
    if present("bpf-linker", &wanted) {
        return Ok(());
    }

    // bpf-linker links against the nightly compiler's own libLLVM (Debian 12 ships LLVM 14/15,
    // bpf-linker 0.13 needs >= 21): make a prefix whose lib/ points at it.
    let sysroot = nightly_sysroot()?;
    let (llvm_path, llvm_name) = find_libllvm(&sysroot.join("lib"))?;
    let major = llvm_major(&llvm_name).with_context(|| format!("cannot read the LLVM version from {llvm_name}"))?;
    if !BPF_LINKER_LLVM_MAJORS.contains(&major) {
        bail!("nightly ships LLVM {major}; bpf-linker {BPF_LINKER_VERSION} supports {BPF_LINKER_LLVM_MAJORS:?}");
    }
    let prefix = llvm_prefix()?;
    let lib = prefix.join("lib");
    if lib.exists() {
        fs::remove_dir_all(&lib).with_context(|| format!("removing stale {}", lib.display()))?;
    }
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    // libLLVM.so for the link step; the file's own name for run time (binary's RUNPATH).
    for name in ["libLLVM.so", llvm_name.as_str()] {
        let link = lib.join(name);
        std::os::unix::fs::symlink(&llvm_path, &link)
            .with_context(|| format!("symlinking {} -> {}", link.display(), llvm_path.display()))?;
    }

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let start = Instant::now();
    run_cmd(
        Command::new(cargo)
            .args(["install", &format!("bpf-linker@{BPF_LINKER_VERSION}"), "--locked", "--force"])
            .args(["--no-default-features", "--features", &format!("llvm-{major}")])
            .env("LLVM_PREFIX", &prefix),
        "cargo install bpf-linker",
    )?;
    match tool_version("bpf-linker") {
        Some(v) if v == wanted => {
            println!("ok: {wanted} installed in {:.0} s", start.elapsed().as_secs_f64());
            Ok(())
        }
        Some(v) => bail!("installed bpf-linker reports `{v}`, expected `{wanted}`"),
        None => bail!(
            "bpf-linker installed but `bpf-linker --version` does not run; \
             is ~/.cargo/bin on PATH?"
        ),
    }
}

/// The regular file `libLLVM.so.<version>` in the nightly sysroot's lib/.
fn find_libllvm(dir: &Path) -> Result<(PathBuf, String)> {
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("libLLVM.so.") && entry.file_type()?.is_file() {
            return Ok((entry.path(), name));
        }
    }
    bail!("no libLLVM.so.* in {} (nightly without rustc's libLLVM?)", dir.display())
}

/// `libLLVM.so.22.1-rust-1.97.0-nightly` → 22.
fn llvm_major(name: &str) -> Option<u32> {
    name.strip_prefix("libLLVM.so.")?.split(['.', '-']).next()?.parse().ok()
}

/// Where the LLVM symlink prefix lives: `$XDG_CACHE_HOME/tlsmon-llvm` or `~/.cache/tlsmon-llvm`.
fn llvm_prefix() -> Result<PathBuf> {
    Ok(cache_dir()?.join("tlsmon-llvm"))
}

/// `$XDG_CACHE_HOME` or `~/.cache`.
fn cache_dir() -> Result<PathBuf> {
    Ok(match env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    })
}

/// The ECS release the events follow (`monitor/src/sink/ecs.rs`); its field reference comes
/// from Elastic's npm package `@elastic/ecs`, whose `EcsFlat` is the generated `ecs_flat.yml`.
const ECS_VERSION: &str = "9.4.0";

/// The ECS field reference as JSON (`{"version", "fields": {name: {type, normalize,
/// allowed}}}`), written by [`ecs_reference`]; tests/ecs_events.rs checks events against it.
pub fn ecs_reference_file() -> Result<PathBuf> {
    Ok(cache_dir()?.join(format!("tlsmon-ecs-{ECS_VERSION}")).join("ecs_flat.json"))
}

/// `@elastic/ecs` at [`ECS_VERSION`] from the npm registry (Node.js and npm from Debian when
/// missing), reduced to [`ecs_reference_file`]. Nothing of it is committed.
fn ecs_reference() -> Result<()> {
    let file = ecs_reference_file()?;
    if file.exists() {
        println!("ok: ECS {ECS_VERSION} field reference present ({})", file.display());
        return Ok(());
    }
    let dir = file.parent().context("ECS reference path")?.to_path_buf();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if !Command::new("npm").arg("--version").stdout(Stdio::null()).status().is_ok_and(|s| s.success()) {
        run_cmd(Command::new("apt-get").args(["install", "-y", "-q", "nodejs", "npm"]), "apt-get install nodejs npm")?;
    }
    println!("installing @elastic/ecs@{ECS_VERSION} (the ECS field reference) into {}", dir.display());
    let package = format!("@elastic/ecs@{ECS_VERSION}");
    let mut npm = Command::new("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"]).arg(&dir).arg(&package);
    run_cmd(&mut npm, "npm install @elastic/ecs")?;
    let script = r#"
        const [dir, out] = process.argv.slice(1);
        const ecs = require(require('path').join(dir, 'node_modules/@elastic/ecs'));
        const fields = {};
        for (const [name, f] of Object.entries(ecs.EcsFlat)) {
            fields[name] = { type: f.type, normalize: f.normalize || [], allowed: (f.allowed_values || []).map(a => a.name) };
        }
        require('fs').writeFileSync(out + '.tmp', JSON.stringify({ version: ecs.EcsVersion, fields }));
        require('fs').renameSync(out + '.tmp', out);
    "#;
    run_cmd(Command::new("node").args(["-e", script]).arg(&dir).arg(&file), "node (writing ecs_flat.json)")?;
    println!("ok: ECS field reference in {}", file.display());
    Ok(())
}

/// Runs a command with inherited stdio; errors name the step and the exit status.
pub fn run_cmd(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llvm_major_from_rustc_libllvm_names() {
        assert_eq!(llvm_major("libLLVM.so.22.1-rust-1.97.0-nightly"), Some(22));
        assert_eq!(llvm_major("libLLVM.so.21-rust-1.92.0-nightly"), Some(21));
        assert_eq!(llvm_major("libLLVM-22-rust-1.97.0-nightly.so"), None);
    }
}
