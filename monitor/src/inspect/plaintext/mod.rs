//! Inspect, plaintext: what a flow that is not (or not yet) TLS carries — health protocols
//! (HL7 v2, DICOM UL, FHIR/DICOMweb/CDA over HTTP, X12), clear credentials, STARTTLS offers
//! (mail, FTP, LDAP, databases, XMPP, IRC), SQL Server's PRELOGIN encryption options (from
//! `inspect::tds`).
//! Works on the bounded flow heads of both directions. Must never keep or return a value taken
//! from the payload except through a closed table or a strict validator (charset and length):
//! no names, identifiers, dates, paths, user names or message bodies, ever.
#[cfg(test)]
mod corpus;
mod db;
mod dicom;
mod dicom_sop;
mod facts;
mod fhir;
mod ftp;
mod hl7;
mod http;
mod imap;
mod irc;
mod ldap;
mod lines;
mod pop3;
mod scan;
mod smtp;
#[cfg(test)]
mod tests;
mod x12;
mod xmpp;

use facts::push_distinct;
pub use facts::{
    Confidence, Credential, DicomMeta, Hl7Meta, HttpMeta, PlainFacts, Protocol, StartTls, X12Meta, MAX_LIST,
};
/// XMPP exchanges for the pipeline's tests.
#[cfg(test)]
pub(crate) use xmpp::tests as xmpp_fixtures;
pub use xmpp::XmppMeta;

/// Inspect the heads of a plaintext flow: `client` and `server` are the first bytes each side
/// sent (in stream order, possibly cut by the head budget), `server_port` only raises or lowers
/// confidence. Never fails: bytes that match nothing give `PlainFacts::default()`.
///
/// Every detector runs; the most specific protocol wins (health protocols first, FHIR, DICOMweb
/// and CDA over the HTTP they ride on, X12 over any carrier), while credentials and STARTTLS
/// facts are kept from whichever detector saw them.
pub fn inspect(client: &[u8], server: &[u8], server_port: u16) -> PlainFacts {
    let mut f = PlainFacts::default();
    if let Some((meta, conf)) = hl7::detect(client, server, server_port) {
        f.hl7 = Some(meta);
        pick(&mut f, Protocol::Hl7, Some(conf));
    }
    if let Some((meta, conf)) = dicom::detect(client, server, server_port) {
        f.dicom = Some(meta);
        pick(&mut f, Protocol::Dicom, Some(conf));
    }
    let http = http::detect(client, server);
    if let Some(h) = &http {
        f.http = Some(h.meta.clone());
        for c in &h.credentials {
            push_distinct(&mut f.credentials, *c);
        }
        if h.protocol != Protocol::Http {
            pick(&mut f, h.protocol, h.confidence);
        }
    }
    if let Some((meta, conf)) = x12::detect(client, server) {
        f.x12 = Some(meta);
        pick(&mut f, Protocol::X12, Some(conf));
    }
    if http.is_some() {
        pick(&mut f, Protocol::Http, None);
    }
    if let Some(meta) = crate::inspect::tds::analyse(client, server) {
        // SQL Server: the PRELOGIN exchange decides what is encrypted; judged by `tds.cleartext`
        // (not as a STARTTLS offer), the LOGIN7 password as a credential.
        pick(&mut f, Protocol::Tds, None);
        if meta.login7_password {
            push_distinct(&mut f.credentials, Credential::TdsLogin7);
        }
        f.tds = Some(meta);
        return f;
    }
    let session = irc::detect(client, server, server_port)
        .or_else(|| lines::detect(client, server, server_port))
        .or_else(|| ldap::detect(client, server))
        .or_else(|| db::detect(client, server))
        .or_else(|| {
            let (s, meta) = xmpp::detect(client, server)?;
            f.xmpp = Some(meta);
            Some(s)
        });
    if let Some(s) = session {
        pick(&mut f, s.protocol, None);
        f.starttls = Some(s.starttls);
        for c in s.credentials {
            push_distinct(&mut f.credentials, c);
        }
    }
    f
}

/// Set the protocol unless a more specific one was already chosen.
fn pick(f: &mut PlainFacts, protocol: Protocol, confidence: Option<Confidence>) {
    if f.protocol.is_none() {
        f.protocol = Some(protocol);
        f.confidence = confidence;
    }
}
