//! Shipping aids for the binary: shell completions and man pages, generated from the clap
//! definitions in `cli.rs` so they can never drift from `--help`. Must never describe an
//! option by hand.
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

/// Section of every page: tlsmon is above all a daemon (system administration, section 8).
pub const SECTION: &str = "8";

/// `tlsmon completions SHELL`: the script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut cmd = monitor::cli::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(shell, &mut cmd, "tlsmon", &mut out);
    out.flush().context("writing the completion script")?;
    Ok(0)
}

/// `tlsmon man --out DIR`: tlsmon.8 and one page per (nested) subcommand, named
/// `tlsmon-live.8`, `tlsmon-audit-verify.8` …; prints each path written.
pub fn man(dir: &Path) -> Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut cmd = monitor::cli::Cli::command().disable_help_subcommand(true);
    // Build once so that global flags (--log, --config) and display names (tlsmon-live)
    // reach every subcommand.
    cmd.build();
    let mut written = Vec::new();
    write_pages(&cmd, dir, &mut written)?;
    for p in written {
        println!("{}", p.display());
    }
    Ok(0)
}

fn write_pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .section(SECTION)
        .manual("tlsmon manual")
        .source(format!("tlsmon {}", env!("CARGO_PKG_VERSION")));
    let path = man.generate_to(dir).with_context(|| format!("writing a man page into {}", dir.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub, dir, written)?;
    }
    Ok(())
}
