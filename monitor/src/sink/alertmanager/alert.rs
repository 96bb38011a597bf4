//! Sink, Alertmanager: the API v2 body of one (server, finding) alert — labels, annotations,
//! times. Pure formatting; must never put anything from the traffic in an alert but the
//! policy's PHI-free evidence, the server address and the SNI.
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::Entry;
use crate::observation::Endpoint;
use crate::policy::catalogue;

const RUNBOOK: &str = "https://github.com/tlsmon/tlsmon/blob/main/dashboards/RUNBOOK.md";

/// One alert as Alertmanager's API v2 takes it.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Alert {
    pub(super) labels: Labels,
    annotations: Annotations,
    #[serde(rename = "startsAt")]
    starts_at: String,
    #[serde(rename = "endsAt")]
    pub(super) ends_at: String,
}

#[derive(Clone, Debug, Serialize)]
pub(super) struct Labels {
    alertname: &'static str,
    pub(super) finding: &'static str,
    severity: &'static str,
    pub(super) server: String,
    source: &'static str,
}

#[derive(Clone, Debug, Serialize)]
struct Annotations {
    summary: String,
    description: String,
    runbook_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sni: Option<String>,
}

/// `"10.0.0.5:443"`, `"[2001:db8::1]:443"`.
fn server_label(s: Endpoint) -> String {
    SocketAddr::new(s.addr.to_ip(), s.port).to_string()
}

pub(super) fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The alert of one key: active (endsAt = now + 4 resends) or resolved (endsAt = now).
pub(super) fn alert(
    server: Endpoint,
    id: &'static str,
    e: &Entry,
    now: SystemTime,
    resolved: bool,
    resend: Duration,
) -> Alert {
    let server = server_label(server);
    let ends = if resolved { now } else { now + 4 * resend };
    Alert {
        annotations: Annotations {
            summary: format!("{} on {server}", title(id)),
            description: format!(
                "{} (severity {}, HIPAA {}, rule {}).",
                e.evidence,
                e.severity.as_str(),
                e.hipaa_ref,
                e.rule
            ),
            runbook_url: format!("{RUNBOOK}#{}", id.replace('.', "-")),
            sni: e.sni.clone(),
        },
        labels: Labels {
            alertname: "TlsmonFinding",
            finding: id,
            severity: e.severity.as_str(),
            server,
            source: "tlsmon",
        },
        starts_at: rfc3339(e.starts_at),
        ends_at: rfc3339(ends),
    }
}

/// A few words per finding id for the alert's summary (the catalogue's title; else the id).
fn title(id: &str) -> &str {
    catalogue::lookup(id).map_or(id, |e| e.title)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_shape() {
        let server = Endpoint {
            addr: crate::decode::Addr::v6("2001:db8::5".parse::<std::net::Ipv6Addr>().unwrap().octets()),
            port: 443,
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100);
        let a = alert(server, "tls.version.deprecated", &Entry::sample(), now, false, Duration::from_secs(60));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["labels"]["server"], "[2001:db8::5]:443");
        assert_eq!(v["labels"]["severity"], "high");
        assert_eq!(v["startsAt"], "2023-11-14T22:13:20Z");
        assert_eq!(v["endsAt"], "2023-11-14T22:19:00Z", "now + 4 x 60 s");
        assert_eq!(v["annotations"]["summary"], "TLS 1.0/1.1 negotiated on [2001:db8::5]:443");
        assert!(v["annotations"]["runbook_url"].as_str().unwrap().ends_with("RUNBOOK.md#tls-version-deprecated"));
        assert_eq!(v["annotations"]["sni"], "ehr.example");
        let r = alert(server, "tls.version.deprecated", &Entry::sample(), now, true, Duration::from_secs(60));
        assert_eq!(r.ends_at, "2023-11-14T22:15:00Z", "resolved: endsAt = now");
    }
}
