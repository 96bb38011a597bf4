//! Policy, exceptions: accepted risks from the config file, applied to a handshake's findings by
//! server address, port, SNI and packet time. Never removes a finding (an accepted one is still
//! reported, marked) and never reads the wall clock: replay must stay deterministic.
use std::net::IpAddr;

use ipnet::IpNet;
use time::Date;

pub use crate::observation::finding::Acceptance;
use crate::observation::Finding;

/// One accepted risk: the finding id it names, on which servers, why and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exception {
    /// Exactly one finding id of the catalogue (no wildcard).
    pub finding: String,
    /// Server addresses (a bare IP is a /32 or /128).
    pub server: IpNet,
    /// Server port; any when absent.
    pub port: Option<u16>,
    /// Server name the client asked for; any (including none) when absent.
    pub sni: Option<SniPattern>,
    pub reason: String,
    /// Last day (UTC) the exception applies: it holds until 23:59:59.999… UTC of that day.
    pub expires: Date,
}

/// An SNI pattern: an exact name, or `*.suffix` matching exactly one label before the suffix.
/// Compared without regard to ASCII case (DNS names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SniPattern {
    Exact(String),
    /// The suffix with its leading dot, e.g. `.example.org` for `*.example.org`.
    OneLabel(String),
}

impl SniPattern {
    /// Parse `name` or `*.suffix`; `None` for an empty name, a bare `*.`, or a `*` anywhere else.
    pub fn parse(s: &str) -> Option<SniPattern> {
        let s = s.to_ascii_lowercase();
        match s.strip_prefix('*') {
            Some(rest) if rest.starts_with('.') && rest.len() > 1 && !rest.contains('*') => {
                Some(SniPattern::OneLabel(rest.to_string()))
            }
            Some(_) => None,
            None if !s.is_empty() && !s.contains('*') => Some(SniPattern::Exact(s)),
            None => None,
        }
    }

    pub fn matches(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        match self {
            SniPattern::Exact(n) => name == *n,
            SniPattern::OneLabel(suffix) => {
                name.strip_suffix(suffix.as_str()).is_some_and(|label| !label.is_empty() && !label.contains('.'))
            }
        }
    }
}

/// Parse an exception's `server`: an IP (v4 or v6) or a CIDR.
pub fn parse_server(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>().ok().or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

/// Parse an exception's `expires` date, `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

fn ymd(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Unix time in ns at which an exception expiring on `d` stops applying (the next day's
/// midnight UTC).
fn end_ns(d: Date) -> i128 {
    let next = d.next_day().unwrap_or(d);
    i128::from(next.midnight().assume_utc().unix_timestamp()) * 1_000_000_000
}

impl Exception {
    /// Whether this exception names `finding_id` on this server, port and SNI (time aside).
    fn names(&self, finding_id: &str, server: IpAddr, port: u16, sni: Option<&str>) -> bool {
        self.finding == finding_id
            && self.server.contains(&server)
            && self.port.is_none_or(|p| p == port)
            && self.sni.as_ref().is_none_or(|pat| sni.is_some_and(|n| pat.matches(n)))
    }

    /// Whether it still holds at packet time `ts_ns` (ns since the Unix epoch).
    pub fn holds_at(&self, ts_ns: u64) -> bool {
        i128::from(ts_ns) < end_ns(self.expires)
    }
}

/// Mark each finding of a handshake to `server:port` (asking for `sni`, seen at packet time
/// `ts_ns`) that an exception names: `Accepted` when one holds at that time (the one expiring
/// last, then the first in the file), else `Expired` (the one that expired last). Findings no
/// exception names are left as they are.
pub fn apply(
    exceptions: &[Exception],
    server: IpAddr,
    port: u16,
    sni: Option<&str>,
    ts_ns: u64,
    findings: &mut [Finding],
) {
    if exceptions.is_empty() {
        return;
    }
    for f in findings.iter_mut() {
        let named = exceptions.iter().filter(|e| e.names(f.id, server, port, sni));
        let (holding, expired): (Vec<&Exception>, Vec<&Exception>) = named.partition(|e| e.holds_at(ts_ns));
        f.acceptance = match (latest(&holding), latest(&expired)) {
            (Some(e), _) => Some(Acceptance::Accepted { reason: e.reason.clone(), expires: ymd(e.expires) }),
            (None, Some(e)) => Some(Acceptance::Expired { reason: e.reason.clone(), expired: ymd(e.expires) }),
            (None, None) => None,
        };
    }
}

/// The one expiring last; among equals the first in the file.
fn latest<'a>(v: &[&'a Exception]) -> Option<&'a Exception> {
    v.iter().copied().rev().max_by_key(|e| e.expires)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Severity;

    fn finding(id: &'static str) -> Finding {
        Finding {
            id,
            severity: Severity::High,
            hipaa_ref: "164.312(e)(1)",
            rule: "hipaa/test",
            evidence: String::new(),
            acceptance: None,
        }
    }

    fn exc(finding: &str, server: &str, port: Option<u16>, sni: Option<&str>, expires: &str) -> Exception {
        Exception {
            finding: finding.into(),
            server: parse_server(server).expect("server"),
            port,
            sni: sni.map(|s| SniPattern::parse(s).expect("sni")),
            reason: "vendor appliance".into(),
            expires: parse_date(expires).expect("date"),
        }
    }

    /// 2020-06-15 12:00:00 UTC.
    const TS: u64 = 1_592_222_400 * 1_000_000_000;

    /// The acceptance of each finding after applying `ex` to a handshake to `ip:port`.
    fn run(ex: &[Exception], ip: &str, port: u16, sni: Option<&str>, ts_ns: u64) -> Vec<Option<Acceptance>> {
        let mut f = vec![finding("tls.version.deprecated"), finding("tls.cipher.weak")];
        apply(ex, ip.parse().expect("ip"), port, sni, ts_ns, &mut f);
        f.into_iter().map(|f| f.acceptance).collect()
    }

    fn accepted(expires: &str) -> Option<Acceptance> {
        Some(Acceptance::Accepted { reason: "vendor appliance".into(), expires: expires.into() })
    }

    #[test]
    fn cidr_v4_and_v6_and_bare_ip() {
        let e = [exc("tls.version.deprecated", "10.1.0.0/16", None, None, "2020-12-31")];
        assert_eq!(run(&e, "10.1.200.7", 443, None, TS), [accepted("2020-12-31"), None]);
        assert_eq!(run(&e, "10.2.0.1", 443, None, TS), [None, None]);
        assert_eq!(run(&e, "::ffff:10.1.0.1", 443, None, TS), [None, None], "v4 CIDR never matches v6");
        let e = [exc("tls.version.deprecated", "2001:db8::/32", None, None, "2020-12-31")];
        assert_eq!(run(&e, "2001:db8:5::1", 443, None, TS), [accepted("2020-12-31"), None]);
        assert_eq!(run(&e, "2001:db9::1", 443, None, TS), [None, None]);
        let e = [exc("tls.version.deprecated", "192.0.2.5", None, None, "2020-12-31")];
        assert_eq!(run(&e, "192.0.2.5", 443, None, TS), [accepted("2020-12-31"), None]);
        assert_eq!(run(&e, "192.0.2.6", 443, None, TS), [None, None]);
    }

    #[test]
    fn port_when_given() {
        let e = [exc("tls.version.deprecated", "10.0.0.0/8", Some(8443), None, "2020-12-31")];
        assert_eq!(run(&e, "10.0.0.1", 8443, None, TS), [accepted("2020-12-31"), None]);
        assert_eq!(run(&e, "10.0.0.1", 443, None, TS), [None, None]);
    }

    #[test]
    fn sni_exact_and_one_label_wildcard() {
        let e = [exc("tls.version.deprecated", "0.0.0.0/0", None, Some("PACS.example.org"), "2020-12-31")];
        assert_eq!(run(&e, "10.0.0.1", 443, Some("pacs.example.org"), TS), [accepted("2020-12-31"), None]);
        assert_eq!(run(&e, "10.0.0.1", 443, Some("pacs.example.org.evil"), TS), [None, None]);
        assert_eq!(run(&e, "10.0.0.1", 443, None, TS), [None, None], "an SNI pattern needs an SNI");
        let e = [exc("tls.version.deprecated", "0.0.0.0/0", None, Some("*.example.org"), "2020-12-31")];
        assert_eq!(run(&e, "10.0.0.1", 443, Some("a.example.org"), TS), [accepted("2020-12-31"), None]);
        assert_eq!(run(&e, "10.0.0.1", 443, Some("example.org"), TS), [None, None]);
        assert_eq!(run(&e, "10.0.0.1", 443, Some("a.b.example.org"), TS), [None, None]);
        assert_eq!(run(&e, "10.0.0.1", 443, Some("aexample.org"), TS), [None, None]);
        for bad in ["", "*", "*.", "a.*.org", "**.example.org", "*example.org"] {
            assert_eq!(SniPattern::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn finding_id_is_exact() {
        for other in ["tls.version", "tls.version.deprecated.x", "TLS.VERSION.DEPRECATED", "tls.version.insecure"] {
            let e = [exc(other, "10.0.0.0/8", None, None, "2020-12-31")];
            assert_eq!(run(&e, "10.0.0.1", 443, None, TS), [None, None], "{other}");
        }
        let e = [exc("tls.cipher.weak", "10.0.0.0/8", None, None, "2020-12-31")];
        assert_eq!(run(&e, "10.0.0.1", 443, None, TS), [None, accepted("2020-12-31")]);
    }

    #[test]
    fn expiry_is_the_end_of_the_day_utc() {
        let e = [exc("tls.version.deprecated", "10.0.0.0/8", None, None, "2020-06-15")];
        let midnight_16 = 1_592_265_600u64 * 1_000_000_000; // 2020-06-16 00:00:00 UTC
        let last_second = midnight_16 - 1_000_000_000; // 2020-06-15 23:59:59
        assert_eq!(run(&e, "10.0.0.1", 443, None, last_second), [accepted("2020-06-15"), None]);
        assert_eq!(run(&e, "10.0.0.1", 443, None, midnight_16 - 1), [accepted("2020-06-15"), None]);
        let expired = Some(Acceptance::Expired { reason: "vendor appliance".into(), expired: "2020-06-15".into() });
        assert_eq!(run(&e, "10.0.0.1", 443, None, midnight_16), [expired.clone(), None]);
        assert_eq!(run(&e, "10.0.0.1", 443, None, midnight_16 + 1_000_000_000), [expired, None]);
    }

    #[test]
    fn a_holding_exception_beats_an_expired_one() {
        let e = [
            exc("tls.version.deprecated", "10.0.0.0/8", None, None, "2020-01-01"),
            exc("tls.version.deprecated", "10.0.0.0/24", None, None, "2021-01-01"),
        ];
        assert_eq!(run(&e, "10.0.0.1", 443, None, TS), [accepted("2021-01-01"), None]);
        let expired = Some(Acceptance::Expired { reason: "vendor appliance".into(), expired: "2020-01-01".into() });
        assert_eq!(run(&e, "10.0.1.1", 443, None, TS), [expired, None]);
    }

    #[test]
    fn parse_dates_and_servers() {
        assert_eq!(parse_date("2026-02-28").map(ymd).as_deref(), Some("2026-02-28"));
        for bad in ["2026-02-30", "2026-2-3", "26-02-03", "2026/02/03", "", "2026-02-03T00:00:00"] {
            assert_eq!(parse_date(bad), None, "{bad:?}");
        }
        assert_eq!(parse_server("10.0.0.0/8").map(|n| n.to_string()).as_deref(), Some("10.0.0.0/8"));
        assert_eq!(parse_server("fe80::1").map(|n| n.to_string()).as_deref(), Some("fe80::1/128"));
        for bad in ["10.0.0.0/33", "10.0.0", "example.org", ""] {
            assert_eq!(parse_server(bad), None, "{bad:?}");
        }
    }
}
