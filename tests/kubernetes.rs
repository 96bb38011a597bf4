//! deploy/kubernetes: the PrometheusRule is dashboards/tlsmon-alerts.yml (the one source of
//! truth) wrapped as a CRD, byte for byte; the dashboards ConfigMap holds dashboards/grafana/
//! byte for byte (label grafana_dashboard for Grafana's sidecar); the PodMonitor and DaemonSet agree with the alerts
//! (job "tlsmon") and with the systemd unit (the same three capabilities, never privileged).
//! Regenerate both with `TLSMON_BLESS=1 cargo test -p monitor --test kubernetes`.
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// The PrometheusRule holding the alert file's `groups:` under `spec:` (every line indented
/// by two spaces, comments included).
fn prometheus_rule(alerts: &str) -> String {
    let mut out = String::from(
        "# GENERATED from dashboards/tlsmon-alerts.yml by tests/kubernetes.rs (TLSMON_BLESS=1): do not edit.\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: tlsmon\nspec:\n",
    );
    let body = &alerts[alerts.find("\ngroups:").expect("the alerts file has groups:") + 1..];
    for line in body.lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn prometheus_rule_is_the_alert_file() {
    let want = prometheus_rule(&read("dashboards/tlsmon-alerts.yml"));
    let path = root().join("deploy/kubernetes/prometheusrule.yaml");
    if std::env::var_os("TLSMON_BLESS").is_some() {
        std::fs::write(&path, &want).expect("writing prometheusrule.yaml");
    }
    let got = read("deploy/kubernetes/prometheusrule.yaml");
    assert!(
        got == want,
        "deploy/kubernetes/prometheusrule.yaml is stale: run TLSMON_BLESS=1 cargo test -p monitor --test kubernetes"
    );
    // Every alert of the file is in the rule, under spec.groups.
    let alerts =
        read("dashboards/tlsmon-alerts.yml").lines().filter(|l| l.trim_start().starts_with("- alert: ")).count();
    assert!(alerts >= 3, "alerts found: {alerts}");
    assert_eq!(got.lines().filter(|l| l.trim_start().starts_with("- alert: ")).count(), alerts);
    assert!(got.contains("\nspec:\n  groups:\n"), "spec.groups is the CRD's structure");
}

/// A ConfigMap with every dashboard JSON of dashboards/grafana/ as a block scalar.
fn dashboards_configmap() -> String {
    let dir = root().join("dashboards/grafana");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dashboards/grafana")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    let mut out = String::from(
        "# GENERATED from dashboards/grafana/*.json by tests/kubernetes.rs (TLSMON_BLESS=1): do not edit.\n\
         # Grafana's dashboard sidecar loads ConfigMaps labelled grafana_dashboard=\"1\".\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tlsmon-dashboards\n  labels:\n    grafana_dashboard: \"1\"\ndata:\n",
    );
    for n in names {
        let json = std::fs::read_to_string(dir.join(&n)).expect("dashboard");
        assert!(!json.contains('\t'), "{n}: tabs cannot sit in a YAML block scalar");
        out.push_str(&format!("  {n}: |-\n"));
        for line in json.trim_end().lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                out.push_str("    ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn dashboards_configmap_is_the_dashboards() {
    let want = dashboards_configmap();
    let path = root().join("deploy/kubernetes/dashboards-configmap.yaml");
    if std::env::var_os("TLSMON_BLESS").is_some() {
        std::fs::write(&path, &want).expect("writing dashboards-configmap.yaml");
    }
    let got = read("deploy/kubernetes/dashboards-configmap.yaml");
    assert!(got == want, "deploy/kubernetes/dashboards-configmap.yaml is stale: run TLSMON_BLESS=1 cargo test -p monitor --test kubernetes");
    assert!(got.contains("  tlsmon-posture.json: |-\n"), "the posture dashboard is in it");
}

#[test]
fn kustomization_lists_every_manifest_and_the_pod_matches_the_unit() {
    let k = read("deploy/kubernetes/kustomization.yaml");
    for f in [
        "namespace.yaml",
        "serviceaccount.yaml",
        "daemonset.yaml",
        "podmonitor.yaml",
        "prometheusrule.yaml",
        "dashboards-configmap.yaml",
    ] {
        assert!(k.contains(&format!("  - {f}\n")), "kustomization.yaml lacks {f}");
    }
    let ds = read("deploy/kubernetes/daemonset.yaml");
    assert!(ds.contains("privileged: false") && !ds.contains("privileged: true"));
    assert!(
        ds.contains("drop: [\"ALL\"]") && ds.contains("add: [\"BPF\", \"NET_ADMIN\", \"PERFMON\", \"SYS_PTRACE\"]")
    );
    assert!(ds.contains("allowPrivilegeEscalation: false") && ds.contains("hostNetwork: true"));
    let unit = read("packaging/tlsmon.service");
    assert!(unit.contains("\nAmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_PTRACE\n"));
    assert!(unit.contains("\nCapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON CAP_SYS_PTRACE\n"));
    // Attribution: the node's PIDs and cgroup tree (the config names the mount's path).
    assert!(ds.contains("hostPID: true") && ds.contains("mountPath: /host/sys/fs/cgroup"));
    assert!(read("deploy/kubernetes/tlsmon.toml").contains("cgroup-root = \"/host/sys/fs/cgroup\""));
    // The alert on a missing agent selects job "tlsmon", which the PodMonitor's jobLabel gives.
    assert!(read("dashboards/tlsmon-alerts.yml").contains("up{job=\"tlsmon\"}"));
    let pm = read("deploy/kubernetes/podmonitor.yaml");
    assert!(pm.contains("jobLabel: app.kubernetes.io/name") && k.contains("app.kubernetes.io/name: tlsmon"));
    assert!(pm.contains("port: metrics") && ds.contains("name: metrics"));
}

/// The Kubernetes release whose schemas (bundled by kubernetes-validate) the core kinds must
/// satisfy, strictly (no unknown field).
const KUBERNETES_VERSION: &str = "1.30.0";

/// kubernetes-validate: TLSMON_KUBERNETES_VALIDATE (set by `cargo xtask test`, whose setup
/// installs it), else where `cargo xtask setup` puts it (`~/.cache/tlsmon-venv`).
fn kubernetes_validate() -> (PathBuf, bool) {
    if let Some(p) = std::env::var_os("TLSMON_KUBERNETES_VALIDATE") {
        return (PathBuf::from(p), true);
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"),
    };
    (cache.join("tlsmon-venv/bin/kubernetes-validate"), false)
}

/// What `kubectl apply -k deploy/kubernetes` would send: `kubectl kustomize` when kubectl is
/// installed (Debian has no package for it), else the kustomization's resources as they are
/// plus the ConfigMap its generator makes (without kustomize's namespace, labels and hash).
fn rendered() -> (String, &'static str) {
    if let Ok(out) =
        std::process::Command::new("kubectl").arg("kustomize").arg(root().join("deploy/kubernetes")).output()
    {
        assert!(out.status.success(), "kubectl kustomize: {}", String::from_utf8_lossy(&out.stderr));
        return (String::from_utf8(out.stdout).expect("UTF-8"), "kubectl kustomize");
    }
    let k = read("deploy/kubernetes/kustomization.yaml");
    let mut docs: Vec<String> = k
        .lines()
        .skip_while(|l| *l != "resources:")
        .skip(1)
        .map_while(|l| l.strip_prefix("  - "))
        .map(|f| read(&format!("deploy/kubernetes/{f}")))
        .collect();
    assert!(docs.len() >= 6, "resources of kustomization.yaml: {}", docs.len());
    let mut cm =
        String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tlsmon-config\ndata:\n  tlsmon.toml: |\n");
    for line in read("deploy/kubernetes/tlsmon.toml").lines() {
        cm.push_str(if line.is_empty() { "" } else { "    " });
        cm.push_str(line);
        cm.push('\n');
    }
    docs.push(cm);
    (docs.join("\n---\n"), "the kustomization's files (no kubectl)")
}

fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tlsmon-k8s-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join(name);
    std::fs::write(&p, text).expect("writing a manifest");
    p
}

/// The core kinds validate against the pinned Kubernetes schemas, strictly; the CRDs
/// (PodMonitor, PrometheusRule), for which kubernetes-validate has no schema, are checked
/// for the structure the Prometheus Operator reads.
#[test]
fn manifests_validate_offline() {
    let (validate, from_setup) = kubernetes_validate();
    if !validate.is_file() {
        assert!(
            !from_setup,
            "{} is missing, but `cargo xtask setup` installs it: run `cargo xtask setup`",
            validate.display()
        );
        eprintln!("skipped: {} is missing (`cargo xtask setup` installs it)", validate.display());
        return;
    }
    let (yaml, how) = rendered();
    eprintln!("validating {how} against Kubernetes {KUBERNETES_VERSION}");
    let file = scratch("rendered.yaml", &yaml);
    let run = |f: &Path| {
        let out = std::process::Command::new(&validate)
            .args(["--strict", "--kubernetes-version", KUBERNETES_VERSION])
            .arg(f)
            .output()
            .expect("running kubernetes-validate");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    };
    let (ok, report) = run(&file);
    assert!(ok, "kubernetes-validate failed:\n{report}");
    let minor = KUBERNETES_VERSION.rsplit_once('.').expect("x.y.z").0;
    for res in [
        "namespace/tlsmon",
        "serviceaccount/tlsmon",
        "configmap/tlsmon-config",
        "configmap/tlsmon-dashboards",
        "daemonset/tlsmon",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("passed for resource {res}")) && l.ends_with(&format!("version {minor}"))),
            "{res} not validated:\n{report}"
        );
    }
    // Only the two CRDs lack a schema; nothing else is skipped.
    let warnings: Vec<&str> = report.lines().filter(|l| l.starts_with("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{report}");
    assert!(warnings.iter().all(|w| w.contains("kind PodMonitor") || w.contains("kind PrometheusRule")), "{report}");
    // The validator does reject a wrong manifest: a misspelt field, and a string for a bool.
    let ds = read("deploy/kubernetes/daemonset.yaml");
    for (from, to) in [
        ("readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true"),
        ("hostNetwork: true", "hostNetwork: \"yes\""),
    ] {
        assert!(ds.contains(from));
        let (ok, report) = run(&scratch("broken.yaml", &ds.replace(from, to)));
        assert!(!ok && report.contains("daemonset/tlsmon"), "{to} accepted:\n{report}");
    }

    // The CRDs, parsed back with the PyYAML beside kubernetes-validate.
    let python = validate.with_file_name("python3");
    let mut child = std::process::Command::new(&python)
        .args(["-c", "import sys, json, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), yaml.as_bytes()).expect("writing to python");
    let out = child.wait_with_output().expect("python");
    assert!(out.status.success(), "YAML to JSON failed");
    let docs: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let kind = |k: &str| -> &serde_json::Value {
        let found: Vec<_> = docs.iter().filter(|d| d["kind"] == k).collect();
        assert_eq!(found.len(), 1, "one {k}");
        found[0]
    };
    let pod_labels = &kind("DaemonSet")["spec"]["template"]["metadata"]["labels"];
    let pm = kind("PodMonitor");
    assert_eq!(pm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(pm["metadata"]["name"], "tlsmon");
    let selector = pm["spec"]["selector"]["matchLabels"].as_object().expect("spec.selector.matchLabels");
    assert!(!selector.is_empty());
    for (k, v) in selector {
        assert_eq!(&pod_labels[k], v, "the PodMonitor selects the DaemonSet's pods ({k})");
    }
    let endpoints = pm["spec"]["podMetricsEndpoints"].as_array().expect("spec.podMetricsEndpoints");
    assert!(!endpoints.is_empty() && endpoints.iter().all(|e| e["port"] == "metrics"), "{endpoints:?}");
    let rule = kind("PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["name"], "tlsmon");
    assert_eq!(rule["spec"].as_object().expect("spec").len(), 1, "spec holds groups only");
    let groups = rule["spec"]["groups"].as_array().expect("spec.groups");
    assert!(!groups.is_empty());
    let mut alerts = 0;
    for g in groups {
        assert!(g["name"].as_str().is_some_and(|n| !n.is_empty()), "group without name: {g}");
        let rules = g["rules"].as_array().expect("spec.groups[].rules");
        assert!(!rules.is_empty());
        for r in rules {
            assert!(r["alert"].as_str().is_some_and(|a| !a.is_empty()), "a rule without alert: {r}");
            assert!(r["expr"].as_str().is_some_and(|e| !e.trim().is_empty()), "a rule without expr: {r}");
            alerts += 1;
        }
    }
    let want = read("dashboards/tlsmon-alerts.yml").lines().filter(|l| l.trim_start().starts_with("- alert: ")).count();
    assert_eq!(alerts, want, "every alert of dashboards/tlsmon-alerts.yml is a rule");
    let _ = std::fs::remove_dir_all(file.parent().expect("dir"));
}
