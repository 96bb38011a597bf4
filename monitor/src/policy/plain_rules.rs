//! Policy rules for what a flow carried in clear: health data (`plaintext.phi`), credentials
//! (`plaintext.credentials`), a STARTTLS offer the session ignored
//! (`plaintext.starttls-missing`) and a SQL Server session TDS left in clear (`tds.cleartext`).
//! Evidence names protocols and metadata only, never values.
use super::catalogue::entry;
use super::rules::{push, raise};
use super::{rule, Finding, Policy, Severity};
use crate::inspect::plaintext::{Confidence, PlainFacts, Protocol};

pub(super) fn all(p: &Policy, f: &PlainFacts, out: &mut Vec<Finding>) {
    phi(p, f, out);
    credentials(p, f, out);
    starttls(p, f, out);
    tds(p, f, out);
}

/// A protocol that carries health data by its nature, in clear. Low confidence (a DICOM
/// association proposing only Verification, a partial frame) is reported as medium.
fn phi(p: &Policy, f: &PlainFacts, out: &mut Vec<Finding>) {
    let Some(proto) = f.protocol.filter(|p| p.carries_phi()) else { return };
    let confidence = f.confidence.unwrap_or(Confidence::Low);
    let e = entry!("plaintext.phi");
    let severity = if confidence == Confidence::Low { Severity::Medium } else { e.severity };
    let evidence = format!("{} in clear ({}), confidence {}", describe(proto, f), what(proto), confidence.as_str());
    push(out, e, severity, rule!(p.profile, "no-phi-in-clear"), evidence);
}

fn credentials(p: &Policy, f: &PlainFacts, out: &mut Vec<Finding>) {
    if f.credentials.is_empty() {
        return;
    }
    let methods: Vec<&str> = f.credentials.iter().map(|c| c.as_str()).collect();
    let evidence = format!("credentials sent in clear: {}", methods.join(", "));
    raise(out, entry!("plaintext.credentials"), rule!(p.profile, "no-credentials-in-clear"), evidence);
}

fn starttls(p: &Policy, f: &PlainFacts, out: &mut Vec<Finding>) {
    let (Some(st), Some(proto)) = (f.starttls, f.protocol) else { return };
    if !(st.offered && !st.requested && st.cleartext_after_offer) {
        return;
    }
    let required = if f.xmpp.is_some_and(|x| x.tls_required) { " (marked required)" } else { "" };
    let evidence =
        format!("the {} server offers {}{required}; the session went on in clear", proto.as_str(), upgrade_name(proto));
    raise(out, entry!("plaintext.starttls-missing"), rule!(p.profile, "require-starttls"), evidence);
}

/// A SQL Server session whose PRELOGIN exchange leaves queries and results in clear (both
/// ENCRYPTION options off: only LOGIN7 is encrypted; either not supported: nothing is), or
/// that was seen sending LOGIN7 or SQL in clear whatever the options said.
fn tds(p: &Policy, f: &PlainFacts, out: &mut Vec<Finding>) {
    let Some(m) = &f.tds else { return };
    let negotiated_clear = m.negotiated.is_some_and(|n| n.clear_data());
    if !(negotiated_clear || m.login7_in_clear || m.sql_in_clear) {
        return;
    }
    let opt = |e: Option<crate::inspect::tds::Encryption>| e.map_or("unseen", |e| e.as_str());
    let mut evidence = format!(
        "SQL Server (TDS) session in clear: client ENCRYPTION {}, server {}",
        opt(m.client_encryption),
        opt(m.server_encryption)
    );
    if let Some(n) = m.negotiated {
        evidence += &format!(", negotiated {}", n.as_str());
    }
    let mut seen = Vec::new();
    if m.login7_in_clear {
        seen.push("LOGIN7");
    }
    if m.sql_in_clear {
        seen.push("SQL requests");
    }
    if seen.is_empty() {
        evidence += " (queries and results travel in clear)";
    } else {
        evidence += &format!(" ({} seen in clear)", seen.join(" and "));
    }
    raise(out, entry!("tds.cleartext"), rule!(p.profile, "encrypt-database-sessions"), evidence);
}

/// The protocol with its metadata, e.g. "HL7 v2 ADT^A01 (2.3)".
fn describe(proto: Protocol, f: &PlainFacts) -> String {
    let list = |v: &[String]| v.join(", ");
    match proto {
        Protocol::Hl7 => {
            let h = f.hl7.clone().unwrap_or_default();
            let mut s = "HL7 v2".to_string();
            if !h.message_types.is_empty() {
                s += &format!(" {}", list(&h.message_types));
            }
            if let Some(v) = &h.version {
                s += &format!(" (v{v})");
            }
            s
        }
        Protocol::Dicom => match f.dicom.as_ref().filter(|d| !d.sop_classes.is_empty()) {
            Some(d) => format!("DICOM association ({})", list(&d.sop_classes)),
            None => "DICOM association".to_string(),
        },
        Protocol::Fhir => match f.http.as_ref().filter(|h| !h.fhir_resource_types.is_empty()) {
            Some(h) => format!("FHIR {}", h.fhir_resource_types.join(", ")),
            None => "FHIR".to_string(),
        },
        Protocol::Dicomweb => match f.http.as_ref().and_then(|h| h.dicomweb_service) {
            Some(s) => format!("DICOMweb {}", s.to_uppercase()),
            None => "DICOMweb".to_string(),
        },
        Protocol::Cda => "CDA ClinicalDocument".to_string(),
        Protocol::X12 => match f.x12.as_ref().filter(|x| !x.transaction_sets.is_empty()) {
            Some(x) => format!("X12 {}", list(&x.transaction_sets)),
            None => "X12".to_string(),
        },
        other => other.as_str().to_string(),
    }
}

/// What the protocol's carriage means, for the evidence text.
fn what(proto: Protocol) -> &'static str {
    match proto {
        Protocol::Hl7 => "HL7 messages carry patient demographics and results",
        Protocol::Dicom => "DICOM objects carry patient identity and images",
        Protocol::Fhir => "FHIR resources carry patient records",
        Protocol::Dicomweb => "DICOMweb carries patient identity and images",
        Protocol::Cda => "clinical documents carry patient records",
        Protocol::X12 => "X12 transactions carry claims and eligibility",
        _ => "",
    }
}

fn upgrade_name(proto: Protocol) -> &'static str {
    match proto {
        Protocol::Pop3 => "STLS",
        Protocol::Ftp => "AUTH TLS",
        Protocol::Ldap => "the StartTLS extended operation",
        Protocol::Postgresql | Protocol::Mysql => "SSL",
        _ => "STARTTLS",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::plaintext::{Credential, DicomMeta, Hl7Meta, StartTls};

    fn ids(f: &PlainFacts) -> Vec<(&'static str, Severity, String)> {
        let mut out = Vec::new();
        all(&Policy::default(), f, &mut out);
        out.into_iter().map(|f| (f.id, f.severity, f.evidence)).collect()
    }

    #[test]
    fn hl7_in_clear_is_critical_phi_with_metadata() {
        let f = PlainFacts {
            protocol: Some(Protocol::Hl7),
            confidence: Some(Confidence::High),
            hl7: Some(Hl7Meta {
                message_types: vec!["ADT^A01".into()],
                version: Some("2.3".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let got = ids(&f);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1), ("plaintext.phi", Severity::Critical));
        assert_eq!(
            got[0].2,
            "HL7 v2 ADT^A01 (v2.3) in clear (HL7 messages carry patient demographics and results), confidence high"
        );
    }

    #[test]
    fn low_confidence_phi_is_medium() {
        let f = PlainFacts {
            protocol: Some(Protocol::Dicom),
            confidence: Some(Confidence::Low),
            dicom: Some(DicomMeta { sop_classes: vec!["Verification SOP Class".into()], ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(ids(&f)[0].1, Severity::Medium);
    }

    #[test]
    fn credentials_and_starttls_missing() {
        let f = PlainFacts {
            protocol: Some(Protocol::Smtp),
            credentials: vec![Credential::SmtpAuthPlain],
            starttls: Some(StartTls { offered: true, cleartext_after_offer: true, ..Default::default() }),
            ..Default::default()
        };
        let got = ids(&f);
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            ["plaintext.credentials", "plaintext.starttls-missing"]
        );
        assert_eq!(got[0].2, "credentials sent in clear: smtp-auth-plain");
        assert_eq!(got[1].2, "the smtp server offers STARTTLS; the session went on in clear");
        // Requested (upgraded) or never offered: no starttls finding; plain HTTP: nothing.
        for st in [
            StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false },
            StartTls { offered: false, cleartext_after_offer: true, ..Default::default() },
        ] {
            let f = PlainFacts { protocol: Some(Protocol::Smtp), starttls: Some(st), ..Default::default() };
            assert!(ids(&f).is_empty(), "{st:?}");
        }
        assert!(ids(&PlainFacts { protocol: Some(Protocol::Http), ..Default::default() }).is_empty());
    }

    #[test]
    fn xmpp_required_offer_ignored() {
        use crate::inspect::plaintext::XmppMeta;
        let f = PlainFacts {
            protocol: Some(Protocol::Xmpp),
            credentials: vec![Credential::XmppSaslPlain],
            starttls: Some(StartTls { offered: true, cleartext_after_offer: true, ..Default::default() }),
            xmpp: Some(XmppMeta { stream: Some("client"), tls_required: true }),
            ..Default::default()
        };
        let got = ids(&f);
        assert_eq!(got[0].2, "credentials sent in clear: xmpp-sasl-plain");
        assert_eq!(got[1].2, "the xmpp server offers STARTTLS (marked required); the session went on in clear");
    }
}
