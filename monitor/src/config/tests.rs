//! Unit tests of the config file: parsing, strictness, validation and precedence.
use clap::{CommandFactory, FromArgMatches};

use super::*;

const EXAMPLE: &str = include_str!("../../../tlsmon.example.toml");

fn p(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("t.toml"))
}

/// `args` (after "tlsmon") merged over the file `text`.
fn merged(text: &str, args: &[&str]) -> Result<Cli, ConfigError> {
    let m = Cli::command().try_get_matches_from(std::iter::once("tlsmon").chain(args.iter().copied())).expect("args");
    let cli = Cli::from_arg_matches(&m).expect("cli");
    let file = p(text)?;
    file.validate(Path::new("t.toml"))?;
    merge(&file, cli, &m)
}

fn replay(text: &str, args: &[&str]) -> ReplayArgs {
    let mut all = vec!["replay"];
    all.extend_from_slice(args);
    all.push("x.pcap");
    match merged(text, &all).expect("merged").cmd {
        Command::Replay(a) => a,
        _ => unreachable!(),
    }
}

fn live(text: &str, args: &[&str]) -> Result<LiveArgs, ConfigError> {
    let mut all = vec!["live"];
    all.extend_from_slice(args);
    merged(text, &all).map(|c| match c.cmd {
        Command::Live(a) => a,
        _ => unreachable!(),
    })
}

fn err(r: Result<impl std::fmt::Debug, ConfigError>) -> String {
    r.expect_err("should fail").to_string()
}

#[test]
fn parses_every_section() {
    let c = p(r#"
profile = "hipaa"
[pipeline]
max-flows = 10
idle-timeout = 30
ca-bundle = "ca.pem"
[output]
format = "json"
fail-on = "high"
[audit]
audit-log = "a.jsonl"
audit-fsync-secs = 0
[report]
report = "markdown"
report-out = "r.md"
[live]
iface = ["eth0", "eth1"]
xdp = true
xdp-mode = "native"
candidate-port = [2575, 9999]
duration = 60
stats = true
"#)
    .expect("parse");
    assert_eq!(c.profile, Some(Profile::Hipaa));
    assert_eq!(c.pipeline.max_flows, Some(10));
    assert_eq!(c.pipeline.idle_timeout, Some(30));
    assert_eq!(c.pipeline.ca_bundle.as_deref(), Some(Path::new("ca.pem")));
    assert_eq!(c.output.format, Some(Format::Json));
    assert_eq!(c.output.fail_on, Some(Severity::High));
    assert_eq!(c.audit.audit_log.as_deref(), Some(Path::new("a.jsonl")));
    assert_eq!(c.audit.audit_fsync_secs, Some(0));
    assert_eq!(c.report.report, Some(ReportFormat::Markdown));
    assert_eq!(c.report.report_out.as_deref(), Some(Path::new("r.md")));
    assert_eq!(c.live.iface, Some(vec!["eth0".to_string(), "eth1".to_string()]));
    assert_eq!(c.live.xdp, Some(true));
    assert_eq!(c.live.xdp_mode, Some(XdpModeArg::Native));
    assert_eq!(c.live.candidate_port, Some(vec![2575, 9999]));
    assert_eq!(c.live.duration, Some(60));
    assert_eq!(c.live.stats, Some(true));
    c.validate(Path::new("t.toml")).expect("valid");
}

#[test]
fn empty_file_is_all_defaults() {
    assert_eq!(p("").expect("parse"), Config::default());
    let a = replay("", &[]);
    assert_eq!((a.pipeline.max_flows, a.pipeline.idle_timeout, a.audit.audit_fsync_secs), (65_536, 120, 1));
    assert_eq!((a.format, a.fail_on, a.report), (None, None, None));
}

#[test]
fn unknown_key_at_top_level_is_named() {
    assert_eq!(
        err(p("profile = \"hipaa\"\nmax_flows = 3\n")),
        "config file t.toml: line 2, key `max_flows`: unknown field `max_flows`, expected one of `profile`, \
`pipeline`, `output`, `audit`, `report`, `live`, `metrics`, `alerts`, `probe`, `severity`, `exception`, `mtls-required`"
    );
    assert!(err(p("[outputs]\nformat = \"json\"\n"))
        .starts_with("config file t.toml: line 1, key `outputs`: unknown field `outputs`"));
}

#[test]
fn unknown_key_in_a_section_is_named() {
    assert_eq!(
        err(p("[pipeline]\nmax-flows = 3\n\n[live]\nxdp = true\ninterface = [\"eth0\"]\n")),
        "config file t.toml: line 6, key `live.interface`: unknown field `interface`, expected one of `iface`, \
`xdp`, `xdp-mode`, `candidate-port`, `duration`, `stats`, `cgroup-root`"
    );
}

#[test]
fn wrong_type_is_named_with_its_line() {
    let e = err(p("[pipeline]\n\nmax-flows = \"many\"\n"));
    assert!(
        e.starts_with("config file t.toml: line 3, key `pipeline.max-flows`: invalid type: string \"many\""),
        "{e}"
    );
    let e = err(p("[output]\nformat = \"yaml\"\n"));
    assert!(e.starts_with("config file t.toml: line 2, key `output.format`: unknown variant `yaml`"), "{e}");
    let e = err(p("[live]\nxdp = \"yes\"\n"));
    assert!(
        e.starts_with("config file t.toml: line 2, key `live.xdp`: invalid type: string \"yes\", expected a boolean"),
        "{e}"
    );
}

#[test]
fn unknown_profile_lists_the_known_ones() {
    assert_eq!(
        err(p("profile = \"pci\"\n")),
        "config file t.toml: line 1, key `profile`: unknown profile `pci`, known profiles: hipaa, nist-800-52r2, \
         mozilla-modern, mozilla-intermediate, fips"
    );
}

#[test]
fn validate_rejects_impossible_values_by_key() {
    let v = |t: &str| err(p(t).expect("parse").validate(Path::new("t.toml")));
    assert_eq!(v("[pipeline]\nmax-flows = 0"), "config file t.toml: `pipeline.max-flows` must be at least 1");
    assert_eq!(
        v("[pipeline]\nidle-timeout = 0"),
        "config file t.toml: `pipeline.idle-timeout` must be at least 1 (seconds)"
    );
    assert_eq!(
        v("[pipeline]\nmax-memory-mb = 1"),
        "config file t.toml: `pipeline.max-memory-mb` must be at least 16 (MiB)"
    );
    assert!(v("[live]\nxdp-mode = \"native\"").starts_with("config file t.toml: `live.xdp-mode` needs `xdp = true`"));
    assert!(v("[live]\nxdp = false\nxdp-mode = \"skb\"").contains("`live.xdp-mode` needs"));
    assert!(v("[live]\niface = [\"\"]").contains("`live.iface` has an empty interface name"));
    assert!(v("[live]\ncandidate-port = [0]").contains("`live.candidate-port` has port 0"));
    assert!(v("[pipeline]\ncandidate-port = [0]").contains("`pipeline.candidate-port` has port 0"));
    assert!(v("[live]\nduration = 0").contains("`live.duration` must be at least 1"));
}

#[test]
fn file_value_used_when_flag_absent() {
    let a = replay("[output]\nformat = \"json\"\nfail-on = \"high\"\n[pipeline]\nmax-flows = 7\n", &[]);
    assert_eq!((a.format, a.fail_on, a.pipeline.max_flows), (Some(Format::Json), Some(Severity::High), 7));
    assert_eq!(a.pipeline.idle_timeout, 120, "keys absent from the file keep their defaults");
    assert_eq!(a.pipeline.max_memory_mb, 128);
    assert_eq!(replay("[pipeline]\nmax-memory-mb = 64\n", &[]).pipeline.max_memory_mb, 64);
    assert_eq!(replay("[pipeline]\nmax-memory-mb = 64\n", &["--max-memory-mb", "32"]).pipeline.max_memory_mb, 32);
}

#[test]
fn flag_wins_when_given() {
    let text = "[output]\nformat = \"json\"\nfail-on = \"high\"\n[pipeline]\nmax-flows = 7\n";
    let a = replay(text, &["--fail-on", "critical", "--max-flows", "9", "--format", "text"]);
    assert_eq!((a.format, a.fail_on, a.pipeline.max_flows), (Some(Format::Text), Some(Severity::Critical), 9));
    // Given on the command line with the default's own value still wins over the file.
    let a = replay(text, &["--max-flows", "65536"]);
    assert_eq!(a.pipeline.max_flows, 65_536);
}

#[test]
fn live_options_merge_and_lists_are_replaced() {
    let text = "[live]\niface = [\"eth0\", \"eth1\"]\nxdp = true\nxdp-mode = \"native\"\ncandidate-port = [2575]\nduration = 5\nstats = true\n";
    let a = live(text, &[]).expect("live");
    assert_eq!(a.ifaces, ["eth0", "eth1"]);
    assert!(a.xdp && a.stats);
    assert_eq!(
        (a.xdp_mode, a.duration, a.pipeline.candidate_ports.as_slice()),
        (XdpModeArg::Native, Some(5), &[2575u16][..])
    );
    let a = live(text, &["--iface", "lo", "--xdp-mode", "skb", "--candidate-port", "1"]).expect("live");
    assert_eq!(
        (a.ifaces.as_slice(), a.xdp_mode, a.pipeline.candidate_ports.as_slice()),
        (&["lo".to_string()][..], XdpModeArg::Skb, &[1u16][..])
    );
    // --xdp-mode on the command line with xdp = true from the file is fine.
    let a = live("[live]\nxdp = true\n", &["--iface", "lo", "--xdp-mode", "native"]).expect("live");
    assert_eq!(a.xdp_mode, XdpModeArg::Native);
}

#[test]
fn merged_conflicts_are_named() {
    assert_eq!(err(live("", &[])), "`iface` is required: give --iface IF, or `iface = [\"eth0\"]` in [live]");
    assert!(err(live("", &["--iface", "lo", "--xdp-mode", "native"])).starts_with("`xdp-mode` needs XDP"));
    assert!(err(live("", &["--iface", "lo", "--max-flows", "0"])).starts_with("`max-flows` must be at least 1"));
    assert!(
        err(live("", &["--iface", "lo", "--max-memory-mb", "8"])).starts_with("`max-memory-mb` must be at least 16")
    );
    assert!(err(live("", &["--iface", "lo", "--audit-fsync-secs", "5"]))
        .starts_with("`audit-fsync-secs` needs an audit log"));
    assert!(err(merged("", &["replay", "--report-out", "r.md", "x.pcap"]))
        .starts_with("`report-out` needs a report format"));
    // The other half from the file.
    let a = replay(
        "[report]\nreport = \"json\"\n[audit]\naudit-log = \"a.jsonl\"\n",
        &["--report-out", "r.json", "--audit-fsync-secs", "0"],
    );
    assert_eq!((a.report, a.audit.audit_fsync_secs), (Some(ReportFormat::Json), 0));
    // A file may set the fsync interval without an audit log.
    assert_eq!(replay("[audit]\naudit-fsync-secs = 4\n", &[]).audit.audit_fsync_secs, 4);
}

#[test]
fn audit_rotation_from_file_and_flags() {
    let a = replay("[audit]\naudit-log = \"a.jsonl\"\naudit-rotate-mb = 50\naudit-rotate-daily = true\n", &[]);
    assert_eq!((a.audit.audit_rotate_mb, a.audit.audit_rotate_daily), (Some(50), true));
    // Flags win over the file.
    let a = replay("[audit]\naudit-log = \"a.jsonl\"\naudit-rotate-mb = 50\n", &["--audit-rotate-mb", "7"]);
    assert_eq!(a.audit.audit_rotate_mb, Some(7));
    assert_eq!(replay("", &[]).audit.audit_rotate_mb, None);
    assert!(
        err(live("", &["--iface", "lo", "--audit-rotate-mb", "5"])).starts_with("`audit-rotate-mb` needs an audit log")
    );
    assert!(err(live("", &["--iface", "lo", "--audit-rotate-daily"]))
        .starts_with("`audit-rotate-daily` needs an audit log"));
    assert!(err(live("", &["--iface", "lo", "--audit-log", "a.jsonl", "--audit-rotate-mb", "0"]))
        .starts_with("`audit-rotate-mb` must be at least 1"));
}

#[test]
fn probe_needs_an_allowlist_and_stays_off_by_default() {
    assert!(!replay("", &[]).probe.probe, "off by default");
    let e = err(merged("", &["replay", "--probe", "x.pcap"]));
    assert!(e.starts_with("`probe-allow` is required with --probe"), "{e}");
    let e = err(merged("", &["replay", "--probe-allow", "10.0.0.0/8", "x.pcap"]));
    assert!(e.starts_with("`probe` is off"), "{e}");
    let e = err(merged("", &["replay", "--probe", "--probe-allow", "10.0.0.0/8", "--probe-rate", "500", "x.pcap"]));
    assert!(e.starts_with("`probe-rate` must be 1 to 50"), "{e}");
    let bad =
        Cli::command().try_get_matches_from(["tlsmon", "replay", "--probe", "--probe-allow", "10.0.0.300/8", "x"]);
    assert!(bad.unwrap_err().to_string().contains("not an IP address or CIDR"), "bad CIDR");
    // From the file, overridden by the command line.
    let file = "[probe]\nprobe = true\nprobe-allow = [\"10.1.0.0/16:443\"]\nprobe-rate = 5\n";
    let a = replay(file, &["--probe-rate", "3"]);
    assert!(a.probe.probe);
    assert_eq!((a.probe.probe_allow.len(), a.probe.probe_rate), (1, 3));
    assert!(a.probe.probe_allow[0].covers("10.1.2.3".parse().unwrap(), 443));
    // A file that turns it on without an allowlist, or with a rule that does not parse.
    let bad = p("[probe]\nprobe = true\n").unwrap().validate(Path::new("t.toml")).unwrap_err().to_string();
    assert!(bad.contains("`probe.probe` is true but `probe-allow` names no network"), "{bad}");
    let bad = p("[probe]\nprobe-allow = [\"nope\"]\n").unwrap().validate(Path::new("t.toml")).unwrap_err().to_string();
    assert!(bad.contains("`probe.probe-allow[0]`"), "{bad}");
}

#[test]
fn kubernetes_config_parses_and_sets_the_daemonset_paths() {
    let text = include_str!("../../../deploy/kubernetes/tlsmon.toml");
    let c = p(text).expect("deploy/kubernetes/tlsmon.toml parses");
    c.validate(Path::new("tlsmon.toml")).expect("validates");
    let a = live(text, &[]).expect("live needs nothing more");
    // The DaemonSet mounts /var/lib/tlsmon from the node and probes /healthz on port 9863.
    assert_eq!(a.audit.audit_log.as_deref(), Some(Path::new("/var/lib/tlsmon/audit.jsonl")));
    assert_eq!(a.listen.listen.map(|l| l.port()), Some(9863));
}

#[test]
fn example_file_parses_validates_and_changes_nothing() {
    let c = p(EXAMPLE).expect("example parses");
    c.validate(Path::new("tlsmon.example.toml")).expect("example validates");
    assert_eq!(format!("{:?}", replay(EXAMPLE, &[])), format!("{:?}", replay("", &[])));
    let with = live(EXAMPLE, &["--iface", "eth0"]).expect("live");
    let without = live("", &["--iface", "eth0"]).expect("live");
    assert_eq!(format!("{with:?}"), format!("{without:?}"));
}

#[test]
fn example_file_documents_only_real_keys() {
    // Uncomment every `# key = value` line (and the `# [[exception]]` header the example entry
    // sits under): the result must still parse with every key known (and the exception
    // compile), so a renamed option cannot linger in the example.
    let uncommented: String = EXAMPLE
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest @ ("[[exception]]" | "[[mtls-required]]")) => rest,
            Some(rest)
                if rest
                    .split_once(" = ")
                    .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '-')) =>
            {
                rest
            }
            _ => l,
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    let c = p(&uncommented).expect("uncommented example parses");
    assert!(c.pipeline.ca_bundle.is_some() && c.output.format.is_some() && c.output.fail_on.is_some());
    assert!(c.audit.audit_log.is_some() && c.report.report.is_some() && c.report.report_out.is_some());
    assert!(c.live.iface.is_some() && c.live.xdp_mode.is_some() && c.live.duration.is_some());
    assert!(c.metrics.listen.is_some() && c.metrics.listen_tls_key.is_some() && c.metrics.metrics_out.is_some());
    assert!(c.metrics.listen_auth_file.is_some() && c.alerts.alertmanager.is_some());
    let ex = c.exceptions().expect("example exception compiles");
    assert_eq!(ex.len(), 1);
    assert_eq!(
        (ex[0].finding.as_str(), ex[0].server.to_string(), ex[0].port),
        ("tls.version.deprecated", "10.20.0.0/16".into(), Some(443))
    );
    assert!(ex[0].sni.as_ref().is_some_and(|p| p.matches("store.pacs.example.org") && !p.matches("pacs.example.org")));
    assert_eq!(ex[0].expires.to_string(), "2026-12-31");
    let m = c.mtls_required().expect("example mtls-required compiles");
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].server.to_string(), m[0].port), ("10.30.0.0/24".into(), Some(6661)));
    assert!(m[0].sni.as_ref().is_some_and(|p| p.matches("HL7.example.org") && !p.matches("x.hl7.example.org")));
}

#[test]
fn mtls_required_parses_reaches_the_policy_and_bad_entries_are_named() {
    let text = "[[mtls-required]]\nserver = \"10.0.0.0/8\"\n\n[[mtls-required]]\nserver = \"2001:db8::1\"\nport = 8443\nsni = \"*.lab.test\"\n";
    let a = replay(text, &[]);
    let m = &a.pipeline.mtls_required;
    assert_eq!(m.len(), 2);
    assert!(m[0].names("10.1.2.3".parse().unwrap(), 443, None));
    assert!(!m[0].names("11.1.2.3".parse().unwrap(), 443, None));
    assert!(m[1].names("2001:db8::1".parse().unwrap(), 8443, Some("a.lab.test")));
    assert!(!m[1].names("2001:db8::1".parse().unwrap(), 443, Some("a.lab.test")), "port");
    assert!(!m[1].names("2001:db8::1".parse().unwrap(), 8443, None), "an SNI pattern needs an SNI");
    assert!(replay("", &[]).pipeline.mtls_required.is_empty());
    for (line, want) in [
        ("server = \"10.0.0.0/33\"", "`mtls-required[1].server` `10.0.0.0/33` is not an IP address or CIDR"),
        ("server = \"1.2.3.4\"\nport = 0", "`mtls-required[1].port` is 0"),
        ("server = \"1.2.3.4\"\nsni = \"a.*.org\"", "`mtls-required[1].sni`"),
    ] {
        let t = format!("[[mtls-required]]\nserver = \"10.0.0.1\"\n\n[[mtls-required]]\n{line}\n");
        let e = p(&t).unwrap().validate(Path::new("t.toml")).unwrap_err().to_string();
        assert!(e.contains(want), "{line}: {e}");
    }
    assert!(err(p("[[mtls-required]]\nserver = \"10.0.0.1\"\nfinding = \"tls.compression\"\n"))
        .contains("unknown field `finding`"));
    assert!(err(p("[[mtls-required]]\nport = 443\n")).contains("missing field `server`"));
}

const GOOD_EXCEPTION: &str = r#"
[[exception]]
finding = "tls.cipher.weak"
server = "2001:db8::/48"
reason = "legacy modality"
expires = "2027-01-31"
"#;

#[test]
fn exceptions_parse_and_reach_the_pipeline_args() {
    let text = format!("{GOOD_EXCEPTION}\n[[exception]]\nfinding = \"tls.version.deprecated\"\nserver = \"10.0.0.5\"\nport = 8443\nsni = \"pacs.example.org\"\nreason = \"r\"\nexpires = \"2026-12-31\"\n");
    let a = replay(&text, &[]);
    let ex = &a.pipeline.exceptions;
    assert_eq!(ex.len(), 2);
    assert_eq!(
        (ex[0].finding.as_str(), ex[0].server.to_string(), ex[0].port),
        ("tls.cipher.weak", "2001:db8::/48".into(), None)
    );
    assert_eq!((ex[1].server.to_string(), ex[1].port, ex[1].reason.as_str()), ("10.0.0.5/32".into(), Some(8443), "r"));
    assert!(replay("", &[]).pipeline.exceptions.is_empty());
}

#[test]
fn bad_exceptions_are_named_by_index_and_key() {
    let with = |key: &str, value: &str| {
        let mut t = format!("{GOOD_EXCEPTION}\n[[exception]]\n");
        for (k, v) in [
            ("finding", "\"tls.version.deprecated\""),
            ("server", "\"10.0.0.0/8\""),
            ("reason", "\"r\""),
            ("expires", "\"2026-12-31\""),
        ] {
            t.push_str(&format!("{k} = {}\n", if k == key { value } else { v }));
        }
        if !["finding", "server", "reason", "expires"].contains(&key) {
            t.push_str(&format!("{key} = {value}\n"));
        }
        let c = p(&t).expect("parses");
        err(c.validate(Path::new("t.toml")))
    };
    let cases = [
        ("server", "\"10.0.0.0/33\"", "`exception[1].server` `10.0.0.0/33` is not an IP address or CIDR"),
        ("server", "\"pacs.example.org\"", "`exception[1].server`"),
        ("finding", "\"tls.version.*\"", "`exception[1].finding` names unknown finding id `tls.version.*`"),
        ("finding", "\"tls.version\"", "`exception[1].finding` names unknown finding id `tls.version`"),
        ("reason", "\"  \"", "`exception[1].reason` is empty"),
        ("expires", "\"2026-02-30\"", "`exception[1].expires` `2026-02-30` is not a date YYYY-MM-DD"),
        ("expires", "\"31/12/2026\"", "`exception[1].expires`"),
        ("sni", "\"a.*.org\"", "`exception[1].sni`"),
        ("port", "0", "`exception[1].port` is 0"),
    ];
    for (key, value, want) in cases {
        let got = with(key, value);
        assert!(got.contains(want), "{key} = {value}: {got}");
    }
    // Required keys and unknown keys fail at parse time, naming the key.
    let e = err(p("[[exception]]\nfinding = \"tls.compression\"\nserver = \"10.0.0.1\"\nexpires = \"2026-01-01\"\n"));
    assert!(e.contains("reason"), "{e}");
    let e = err(p(&format!("{GOOD_EXCEPTION}wildcard = true\n")));
    assert!(e.contains("wildcard"), "{e}");
    // A list of ids is not accepted: one entry names one finding.
    let e = err(p("[[exception]]\nfinding = [\"tls.compression\"]\nserver = \"10.0.0.1\"\nreason = \"r\"\nexpires = \"2026-01-01\"\n"));
    assert!(e.contains("finding"), "{e}");
}

/// Candidate ports shape the pipeline of both commands: `[pipeline] candidate-port` reaches
/// replay and live, wins over wave 1's `[live] candidate-port` (still read), and a flag beats both.
#[test]
fn candidate_ports_are_a_pipeline_option_of_both_commands() {
    let both = "[pipeline]\ncandidate-port = [6661]\n[live]\ncandidate-port = [2575]\n";
    assert_eq!(replay(both, &[]).pipeline.candidate_ports, [6661]);
    assert_eq!(live(both, &["--iface", "lo"]).expect("live").pipeline.candidate_ports, [6661]);
    assert_eq!(replay("[live]\ncandidate-port = [2575]\n", &[]).pipeline.candidate_ports, [2575]);
    assert_eq!(replay(both, &["--candidate-port", "7"]).pipeline.candidate_ports, [7]);
}

#[test]
fn every_flag_beats_every_key() {
    // Each option set differently in the file and on the command line: the flag must win for
    // all of them (a misspelt clap id would silently let the file win).
    let file = r#"
[pipeline]
max-flows = 1
idle-timeout = 1
ca-bundle = "file.pem"
candidate-port = [1]
[output]
format = "json"
fail-on = "low"
[audit]
audit-log = "file.jsonl"
audit-fsync-secs = 9
[report]
report = "json"
report-out = "file.json"
[live]
iface = ["file0"]
xdp = false
duration = 1
stats = false
"#;
    let common = [
        "--max-flows",
        "2",
        "--idle-timeout",
        "2",
        "--ca-bundle",
        "cli.pem",
        "--format",
        "text",
        "--candidate-port",
        "2",
    ];
    let audit = ["--audit-log", "cli.jsonl", "--audit-fsync-secs", "3"];
    let mut args: Vec<&str> = common.iter().chain(&audit).copied().collect();
    args.extend(["--fail-on", "critical", "--report", "markdown", "--report-out", "cli.md"]);
    let a = replay(file, &args);
    assert_eq!(format!("{a:?}"), format!("{:?}", replay("", &args)), "replay: the file must not show through any flag");
    let mut args: Vec<&str> = common.iter().chain(&audit).copied().collect();
    args.extend(["--iface", "cli0", "--xdp", "--xdp-mode", "native", "--duration", "2", "--stats"]);
    let a = live(file, &args).expect("live");
    assert_eq!(format!("{a:?}"), format!("{:?}", live("", &args).expect("live")), "live");
    assert_eq!((a.ifaces.as_slice(), a.xdp, a.stats, a.duration), (&["cli0".to_string()][..], true, true, Some(2)));
}

#[test]
fn severity_overrides_are_checked_against_the_catalogue_and_reach_the_pipeline() {
    let text = "[severity]\n\"tls.version.no-tls13\" = \"medium\"\n";
    let cli = merged(text, &["replay", "x.pcap"]).expect("merged");
    let Command::Replay(a) = cli.cmd else { panic!("replay") };
    assert_eq!(a.pipeline.severity_overrides, vec![("tls.version.no-tls13".to_string(), Severity::Medium)]);
    let e = err(merged("[severity]\n\"tls.nope\" = \"low\"\n", &["replay", "x.pcap"]));
    assert!(e.starts_with("config file t.toml: `severity.\"tls.nope\"` names unknown finding id `tls.nope`"), "{e}");
    let e = err(p("[severity]\n\"tls.version.no-tls13\" = \"urgent\"\n"));
    assert!(e.contains("unknown variant `urgent`"), "{e}");
}

#[test]
fn profile_from_the_file_yields_to_the_flag() {
    let Command::Replay(a) = merged("profile = \"fips\"\n", &["replay", "x.pcap"]).expect("m").cmd else { panic!() };
    assert_eq!(a.pipeline.profile, Profile::Fips);
    let args = ["replay", "--profile", "mozilla-modern", "x.pcap"];
    let Command::Replay(a) = merged("profile = \"fips\"\n", &args).expect("m").cmd else { panic!() };
    assert_eq!(a.pipeline.profile, Profile::MozillaModern);
}

#[test]
fn metrics_and_alerts_sections_fill_flags_and_check_pairs() {
    let file = "[metrics]\nlisten = \"127.0.0.1:9999\"\nmetrics-out = \"m.prom\"\n\
[alerts]\nalertmanager = \"http://127.0.0.1:9093\"\nalert-queue = 8\n";
    let a = replay(file, &[]);
    assert_eq!(a.listen.listen, Some("127.0.0.1:9999".parse().unwrap()));
    assert_eq!(a.metrics_out.as_deref(), Some(Path::new("m.prom")));
    assert_eq!((a.alerts.alertmanager.as_deref(), a.alerts.alert_queue), (Some("http://127.0.0.1:9093"), 8));
    // The command line wins.
    let a = replay(file, &["--listen=127.0.0.1:7777", "--alert-queue", "2"]);
    assert_eq!((a.listen.listen, a.alerts.alert_queue), (Some("127.0.0.1:7777".parse().unwrap()), 2));
    let l = live(file, &["--iface", "eth0"]).expect("live");
    assert_eq!(l.listen.listen, Some("127.0.0.1:9999".parse().unwrap()));
    // A certificate from the file without a key, or without an address, is refused.
    let half = live("[metrics]\nlisten = \"127.0.0.1:1\"\nlisten-tls-cert = \"c.pem\"\n", &["--iface", "eth0"]);
    assert!(half.unwrap_err().to_string().contains("go together"));
    let nowhere = live("[metrics]\nlisten-auth-file = \"u\"\n", &["--iface", "eth0"]);
    assert!(nowhere.unwrap_err().to_string().contains("needs an address"));
    assert!(err(p("[alerts]\nalert-queue = 0\n").and_then(|c| c.validate(Path::new("t.toml")).map(|_| c)))
        .contains("alert-queue"));
}

#[test]
fn audit_signing_from_file_and_flags() {
    let a = replay("[audit]\naudit-log = \"a.jsonl\"\naudit-sign-key = \"k.key\"\naudit-checkpoint-mins = 15\n", &[]);
    assert_eq!((a.audit.audit_sign_key.as_deref(), a.audit.audit_checkpoint_mins), (Some(Path::new("k.key")), 15));
    assert_eq!((replay("", &[]).audit.audit_sign_key, replay("", &[]).audit.audit_checkpoint_mins), (None, 5));
    // Flags win over the file.
    let a = replay("[audit]\naudit-log = \"a.jsonl\"\naudit-sign-key = \"k.key\"\n", &["--audit-checkpoint-mins", "0"]);
    assert_eq!(a.audit.audit_checkpoint_mins, 0);
    assert!(err(live("", &["--iface", "lo", "--audit-sign-key", "k.key"]))
        .starts_with("`audit-sign-key` needs an audit log"));
    assert!(err(live("", &["--iface", "lo", "--audit-log", "a.jsonl", "--audit-checkpoint-mins", "1"]))
        .starts_with("`audit-checkpoint-mins` needs a signing key"));
}
