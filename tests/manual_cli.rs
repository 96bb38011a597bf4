//! `tlsmon completions` and `tlsmon man`: generated from the clap definitions, so every long
//! flag `--help` shows is in the completion script and in the subcommand's man page.
use std::path::PathBuf;
use std::process::Command;

fn tlsmon(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tlsmon {args:?}: {err}");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Long flags on the option lines of `--help` (`  -h, --help`, `      --iface <IF>`).
fn help_flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let t = t.strip_prefix("-h, ").or_else(|| t.strip_prefix("-V, ")).unwrap_or(t);
            let name = t.strip_prefix("--")?;
            let end = name.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).unwrap_or(name.len());
            Some(format!("--{}", &name[..end]))
        })
        .collect();
    flags.sort();
    flags.dedup();
    flags
}

fn man_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-man-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (_, listing) = tlsmon(&["man", "--out", dir.to_str().unwrap()]);
    assert!(listing.lines().count() >= 5, "pages written: {listing}");
    dir
}

#[test]
fn bash_completion_knows_the_flags() {
    let (_, script) = tlsmon(&["completions", "bash"]);
    for flag in ["--probe-allow", "--iface", "--audit-log", "--audit-sign-key", "--fail-on"] {
        assert!(script.contains(flag), "{flag} missing from the bash completion");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let (_, s) = tlsmon(&["completions", shell]);
        assert!(s.contains("probe-allow"), "{shell} completion lacks --probe-allow");
    }
}

#[test]
fn man_pages_carry_every_long_flag_of_help() {
    let dir = man_dir();
    for (sub, page) in [
        (&["live"][..], "tlsmon-live.8"),
        (&["replay"][..], "tlsmon-replay.8"),
        (&["audit", "verify"][..], "tlsmon-audit-verify.8"),
        (&["audit", "key"][..], "tlsmon-audit-key.8"),
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let (_, help) = tlsmon(&args);
        let flags = help_flags(&help);
        assert!(flags.len() >= 3, "{sub:?}: found only {flags:?} in --help");
        // roff escapes dashes; the options section shows each flag in bold.
        let roff = std::fs::read_to_string(dir.join(page)).expect(page).replace("\\-", "-");
        assert!(roff.starts_with(".ie") || roff.contains(".TH"), "{page} is not a man page");
        let missing: Vec<&String> = flags.iter().filter(|f| !roff.contains(&format!("\\fB{f}"))).collect();
        assert!(missing.is_empty(), "{page} lacks {missing:?} that `tlsmon {} --help` shows", sub.join(" "));
    }
    let top = std::fs::read_to_string(dir.join("tlsmon.8")).expect("tlsmon.8");
    assert!(top.contains(".TH tlsmon 8"), "tlsmon(8): {}", &top[..top.len().min(200)]);
    for sub in ["tlsmon\\-live(8)", "tlsmon\\-replay(8)"] {
        assert!(top.contains(sub), "tlsmon(8) does not refer to {sub}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
