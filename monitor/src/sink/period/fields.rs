//! Sink, period report: the one place that names the fields of a JSON event as `sink::json`
//! writes it (and the audit log carries it). Everything that reads an event from a log goes
//! through these accessors, so a renamed field (ECS) is a change here only. Read-only; must
//! never hand out anything but the metadata the event already carries.
use std::net::IpAddr;

use serde_json::Value;

pub use crate::cli::parse_time;
use crate::inspect::names::version_parts;
use crate::policy::Severity;

/// Versions a label or a protocol/number pair can name, in code form.
const VERSION_CODES: [u16; 9] = [0x0002, 0x0300, 0x0301, 0x0302, 0x0303, 0x0304, 0xfeff, 0xfefd, 0xfefc];

fn path<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(k))
}

fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    path(v, keys)?.as_str()
}

/// The value at the ECS / `tlsmon.*` path, else at its pre-ECS path (logs written before
/// the ECS schema, or by an agent writing both).
fn either<'a>(v: &'a Value, ecs: &[&str], old: &[&str]) -> Option<&'a Value> {
    path(v, ecs).or_else(|| path(v, old))
}

/// "tls" + "1.2" → 0x0303.
fn code_of(proto: &str, num: &str) -> Option<u16> {
    VERSION_CODES.into_iter().find(|&c| version_parts(c) == Some((proto, num)))
}

/// "tls1.2" (a ClientHello label) → 0x0303; "0x7f1c" → 0x7f1c.
fn code_of_label(label: &str) -> Option<u16> {
    if let Some(hex) = label.strip_prefix("0x") {
        return u16::from_str_radix(hex, 16).ok();
    }
    VERSION_CODES.into_iter().find(|&c| version_parts(c).is_some_and(|(p, n)| label == format!("{p}{n}")))
}

/// One event (a line of the JSON sink or the audit log).
#[derive(Clone, Copy)]
pub struct Ev<'a>(pub &'a Value);

/// One finding of an event.
pub struct EvFinding<'a> {
    pub id: &'a str,
    pub severity: Option<Severity>,
    pub rule: &'a str,
    pub evidence: &'a str,
    /// The exception that accepted it: (reason, expires).
    pub accepted: Option<(&'a str, &'a str)>,
    /// The exception that had expired: (reason, expired).
    pub expired: Option<(&'a str, &'a str)>,
}

/// The server's leaf certificate as an event carries it (`tls.server.x509`, and whether it
/// is self-signed: `tlsmon.tls.server.self_signed`, before ECS `tls.server.x509.self_signed`).
#[derive(Clone, Copy)]
pub struct EvCert<'a>(&'a Value, Option<bool>);

impl<'a> EvCert<'a> {
    pub fn not_after(&self) -> Option<&'a str> {
        text(self.0, &["not_after"])
    }
    pub fn not_before(&self) -> Option<&'a str> {
        text(self.0, &["not_before"])
    }
    pub fn subject_cn(&self) -> Option<&'a str> {
        text(self.0, &["subject", "common_name"])
    }
    pub fn subject_dn(&self) -> &'a str {
        text(self.0, &["subject", "distinguished_name"]).unwrap_or("")
    }
    pub fn issuer_cn(&self) -> Option<&'a str> {
        text(self.0, &["issuer", "common_name"])
    }
    pub fn key_algorithm(&self) -> &'a str {
        text(self.0, &["public_key_algorithm"]).unwrap_or("unknown")
    }
    pub fn key_size(&self) -> u32 {
        path(self.0, &["public_key_size"]).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok()).unwrap_or(0)
    }
    pub fn signature_algorithm(&self) -> &'a str {
        text(self.0, &["signature_algorithm"]).unwrap_or("")
    }
    pub fn self_signed(&self) -> bool {
        self.1.or_else(|| path(self.0, &["self_signed"]).and_then(Value::as_bool)).unwrap_or(false)
    }
}

impl<'a> Ev<'a> {
    /// `tls`, `probe`, `plaintext`, `ssh` (`event.dataset` without its `tlsmon.`), or a line
    /// that is no event (`checkpoint` …).
    pub fn kind(&self) -> Option<&'a str> {
        let dataset = text(self.0, &["event", "dataset"]).and_then(|d| d.strip_prefix("tlsmon."));
        dataset.or_else(|| text(self.0, &["type"]))
    }
    pub fn timestamp(&self) -> Option<&'a str> {
        either(self.0, &["@timestamp"], &["timestamp"])?.as_str()
    }
    /// The event's (packet) time in Unix nanoseconds.
    pub fn time_ns(&self) -> Option<i128> {
        self.timestamp().and_then(parse_time)
    }
    /// The server: the destination's address and port.
    pub fn server(&self) -> Option<(IpAddr, u16)> {
        let ip = text(self.0, &["destination", "ip"])?.parse().ok()?;
        let port = path(self.0, &["destination", "port"])?.as_u64().and_then(|p| u16::try_from(p).ok())?;
        Some((ip, port))
    }
    pub fn sni(&self) -> Option<&'a str> {
        text(self.0, &["tls", "client", "server_name"])
    }
    /// The negotiated version's code (0x0303 for TLS 1.2).
    pub fn version(&self) -> Option<u16> {
        code_of(text(self.0, &["tls", "version_protocol"])?, text(self.0, &["tls", "version"])?)
    }
    /// The highest version the client offered (supported_versions, else the hello's version).
    pub fn client_max_version(&self) -> Option<u16> {
        let client = either(self.0, &["tlsmon", "tls", "client"], &["tls", "client"]);
        let offered = client.and_then(|c| c.get("supported_versions")).and_then(Value::as_array);
        let max = offered
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().and_then(code_of_label))
            .max_by_key(|v| crate::inspect::tls::hello::version_rank(*v));
        max.or_else(|| client.and_then(|c| text(c, &["legacy_version"])).and_then(code_of_label))
    }
    pub fn cipher(&self) -> Option<&'a str> {
        text(self.0, &["tls", "cipher"])
    }
    /// The key-exchange group, by name.
    pub fn curve(&self) -> Option<&'a str> {
        text(self.0, &["tls", "curve"])
    }
    pub fn cert(&self) -> Option<EvCert<'a>> {
        let self_signed = path(self.0, &["tlsmon", "tls", "server", "self_signed"]).and_then(Value::as_bool);
        path(self.0, &["tls", "server", "x509"]).filter(|v| v.is_object()).map(|x| EvCert(x, self_signed))
    }
    /// `udp` for QUIC and DTLS handshakes; `tcp` or (logs before ECS) absent over TCP.
    pub fn transport(&self) -> Option<&'a str> {
        text(self.0, &["network", "transport"])
    }
    /// `quic` or `dtls` over UDP (`tls`, `ssh`, `hl7` … over TCP).
    pub fn network_protocol(&self) -> Option<&'a str> {
        text(self.0, &["network", "protocol"])
    }
    /// A plaintext flow's protocol (`hl7`, `dicom`, `http` …).
    pub fn plaintext_protocol(&self) -> Option<&'a str> {
        either(self.0, &["tlsmon", "plaintext", "protocol"], &["plaintext", "protocol"])?.as_str()
    }
    /// An SSH server's software (its identification string).
    /// The local processes the event names (live), as the inventory keys them: `client
    /// `name` (systemd unit …)` or `server …` (`tlsmon.local.side` says which end `process.*`
    /// is; `tlsmon.local.server_process` is the server when both ends are local).
    pub fn local_processes(&self) -> Vec<String> {
        let Some(name) = text(self.0, &["process", "name"]) else { return Vec::new() };
        let label = crate::observation::process_label(
            name,
            text(self.0, &["service", "name"]),
            text(self.0, &["container", "id"]),
        );
        let side = text(self.0, &["tlsmon", "local", "side"]).unwrap_or("client");
        let mut out = vec![format!("{} {label}", if side == "server" { "server" } else { "client" })];
        if let Some(server) = text(self.0, &["tlsmon", "local", "server_process", "name"]) {
            out.push(format!("server {}", crate::observation::process_label(server, None, None)));
        }
        out
    }
    pub fn ssh_software(&self) -> Option<&'a str> {
        text(self.ssh()?, &["server", "software"])
    }
    /// An SSH session's negotiated algorithm of one kind: `kex`, `host_key`, `cipher_c2s`,
    /// `cipher_s2c`, `mac_c2s`, `mac_s2c`, `compression_c2s`.
    pub fn ssh_negotiated(&self, what: &str) -> Option<&'a str> {
        text(self.ssh()?, &["negotiated", what])
    }
    pub fn has_ssh_negotiated(&self) -> bool {
        self.ssh().and_then(|s| s.get("negotiated")).is_some_and(Value::is_object)
    }
    fn ssh(&self) -> Option<&'a Value> {
        either(self.0, &["tlsmon", "ssh"], &["ssh"])
    }
    pub fn findings(&self) -> impl Iterator<Item = EvFinding<'a>> {
        let list = either(self.0, &["tlsmon", "findings"], &["findings"]).and_then(Value::as_array);
        list.into_iter().flatten().filter_map(|f| {
            let pair = |k: &str, a: &str, b: &str| Some((text(f, &[k, a])?, text(f, &[k, b])?));
            Some(EvFinding {
                id: text(f, &["id"])?,
                severity: path(f, &["severity"]).and_then(|s| serde_json::from_value(s.clone()).ok()),
                rule: text(f, &["rule"]).unwrap_or(""),
                evidence: text(f, &["evidence"]).unwrap_or(""),
                accepted: pair("accepted", "reason", "expires"),
                expired: pair("exception_expired", "reason", "expired"),
            })
        })
    }
}

/// The chain fields of an audit line: `seq` and `hash`.
pub fn audit_seq(v: &Value) -> Option<u64> {
    v.get("seq").and_then(Value::as_u64)
}

pub fn audit_hash(v: &Value) -> Option<&str> {
    v.get("hash").and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(parse_time("2017-07-14T02:40:00.123456Z"), Some(1_500_000_000_123_456_000));
        assert_eq!(parse_time("1970-01-02"), Some(86_400_000_000_000));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1_000_000_000));
        for bad in ["", "2017-13-01", "2017-07-14T02:40", "2017-07-14T02:40:00+02:00", "yesterday"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions_from_labels() {
        assert_eq!(code_of("tls", "1.2"), Some(0x0303));
        assert_eq!(code_of_label("tls1.3"), Some(0x0304));
        assert_eq!(code_of_label("ssl3.0"), Some(0x0300));
        let v = serde_json::json!({"tls": {"client": {"supported_versions": ["tls1.2", "tls1.3"], "legacy_version": "tls1.2"}}});
        assert_eq!(Ev(&v).client_max_version(), Some(0x0304));
        let v = serde_json::json!({"tlsmon": {"tls": {"client": {"legacy_version": "tls1.1"}}}});
        assert_eq!(Ev(&v).client_max_version(), Some(0x0302));
    }

    #[test]
    fn ecs_names_first_then_the_old_ones() {
        let new = serde_json::json!({"@timestamp": "2026-01-02T00:00:00.000000Z", "event": {"dataset": "tlsmon.ssh"},
            "tlsmon": {"ssh": {"server": {"software": "OpenSSH_9.6"}}, "findings": [{"id": "a"}]}});
        let old = serde_json::json!({"timestamp": "2026-01-02T00:00:00.000000Z", "type": "ssh",
            "ssh": {"server": {"software": "OpenSSH_9.6"}}, "findings": [{"id": "a"}]});
        for v in [&new, &old] {
            let ev = Ev(v);
            assert_eq!(ev.kind(), Some("ssh"));
            assert_eq!(ev.time_ns(), parse_time("2026-01-02"));
            assert_eq!(ev.ssh_software(), Some("OpenSSH_9.6"));
            assert_eq!(ev.findings().map(|f| f.id).collect::<Vec<_>>(), ["a"]);
        }
        assert_eq!(Ev(&serde_json::json!({"type": "checkpoint"})).kind(), Some("checkpoint"));
    }
}
