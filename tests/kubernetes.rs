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
    assert!(ds.contains("drop: [\"ALL\"]") && ds.contains("add: [\"BPF\", \"NET_ADMIN\", \"PERFMON\"]"));
    assert!(ds.contains("allowPrivilegeEscalation: false") && ds.contains("hostNetwork: true"));
    let unit = read("packaging/tlsmon.service");
    assert!(unit.contains("\nAmbientCapabilities=CAP_BPF CAP_NET_ADMIN CAP_PERFMON\n"));
    assert!(unit.contains("\nCapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON\n"));
    // The alert on a missing agent selects job "tlsmon", which the PodMonitor's jobLabel gives.
    assert!(read("dashboards/tlsmon-alerts.yml").contains("up{job=\"tlsmon\"}"));
    let pm = read("deploy/kubernetes/podmonitor.yaml");
    assert!(pm.contains("jobLabel: app.kubernetes.io/name") && k.contains("app.kubernetes.io/name: tlsmon"));
    assert!(pm.contains("port: metrics") && ds.contains("name: metrics"));
}
