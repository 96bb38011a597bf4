//! `tlsmon --config FILE`: the file's options apply to replay, flags on the command line
//! override them, and a bad file stops the run with exit 2 and a message naming key and file.
use std::path::{Path, PathBuf};
use std::process::Command;

fn capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps/zeek__tls1_1.pcap")
}

/// A config file with `text`, unique to this test process.
fn config(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn tlsmon(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tlsmon")).args(args).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const JSON_FAIL_HIGH: &str = "[output]\nformat = \"json\"\nfail-on = \"high\"\n";

#[test]
fn file_sets_format_and_fail_on() {
    let cfg = config("json-high.toml", JSON_FAIL_HIGH);
    let (code, out, err) = tlsmon(&["--config", cfg.to_str().unwrap(), "replay", capture().to_str().unwrap()]);
    // stdout is a pipe here; without the file it would be JSON too, so check the exit code
    // (only the file asks for --fail-on) and the events themselves.
    assert_eq!(code, 1, "TLS 1.1 is a high finding and the file says fail-on = high; stderr: {err}");
    let events: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).expect("every stdout line is JSON")).collect();
    assert_eq!(events.len(), 1, "{out}");
    assert_eq!(events[0]["tls"]["version"], "1.1");
    // The same capture without the file: exit 0 (no --fail-on).
    let (code, _, _) = tlsmon(&["replay", capture().to_str().unwrap()]);
    assert_eq!(code, 0);
}

#[test]
fn file_format_applies_where_the_default_would_differ() {
    // With a report on stdout and no format, the default output is the report alone; the file's
    // format = "json" puts the events first.
    let cfg = config("json.toml", "[output]\nformat = \"json\"\n[report]\nreport = \"json\"\n");
    let (code, out, err) = tlsmon(&["--config", cfg.to_str().unwrap(), "replay", capture().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let first: serde_json::Value =
        serde_json::from_str(out.lines().next().expect("output")).expect("first line is a JSON event");
    assert_eq!(first["type"], "tls");
}

#[test]
fn command_line_overrides_the_file() {
    let cfg = config("json-high2.toml", JSON_FAIL_HIGH);
    let c = cfg.to_str().unwrap();
    let (code, out, err) = tlsmon(&["--config", c, "replay", "--fail-on", "critical", capture().to_str().unwrap()]);
    assert_eq!(code, 0, "--fail-on critical beats fail-on = high; stderr: {err}");
    assert!(out.starts_with('{'), "format = json still applies: {out}");
    // --config after the subcommand (it is global) and --format none over the file's json.
    let (code, out, _) = tlsmon(&["replay", "--format", "none", capture().to_str().unwrap(), "--config", c]);
    assert_eq!((code, out.as_str()), (1, ""));
}

#[test]
fn unknown_key_exits_2_naming_key_and_file() {
    let cfg = config("typo.toml", "[output]\nformat = \"json\"\nfailon = \"high\"\n");
    let (code, out, err) = tlsmon(&["--config", cfg.to_str().unwrap(), "replay", capture().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert_eq!(out, "", "nothing is replayed with a bad config");
    assert_eq!(
        err.trim_end(),
        format!(
            "tlsmon: error: config file {}: line 3, key `output.failon`: unknown field `failon`, expected one of `format`, `fail-on`, `legacy-fields`",
            cfg.display()
        )
    );
}

#[test]
fn invalid_value_and_missing_file_exit_2() {
    let cfg = config("zero.toml", "[pipeline]\nmax-flows = 0\n");
    let (code, _, err) = tlsmon(&["--config", cfg.to_str().unwrap(), "replay", capture().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("zero.toml: `pipeline.max-flows` must be at least 1"), "{err}");
    let (code, _, err) = tlsmon(&["--config", "/nonexistent/tlsmon.toml", "replay", capture().to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read config file /nonexistent/tlsmon.toml"), "{err}");
}

#[test]
fn the_example_file_runs() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tlsmon.example.toml");
    let (code, out, err) =
        tlsmon(&["--config", example.to_str().unwrap(), "replay", "--format", "json", capture().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1);
}
