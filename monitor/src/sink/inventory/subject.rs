//! Sink, posture inventory: the fact a finding's fix names (its subject), taken from the
//! handshake that raised it as the catalogue's `subject` column says. Must never name anything
//! the JSON event does not already carry.
use super::day;
use crate::inspect::names::{cipher_name, sslv2_cipher_name, version_name};
use crate::inspect::tls::cert::CertInfo;
use crate::observation::{Handshake, Output};
use crate::policy::catalogue::{lookup, Subject};
use crate::policy::Finding;

/// The leaf's common name; when x509-parser could not read it as a string (or there is none),
/// the last `CN=` of the subject DN; none when the DN has no CN.
pub fn leaf_cn(c: &CertInfo) -> Option<String> {
    if let Some(cn) = &c.subject_cn {
        return Some(cn.clone());
    }
    let i = c.subject.rfind("CN=")?;
    c.subject[i + 3..].split(", ").next().map(str::to_string)
}

/// How a fix names a certificate: `CN=name`, else its subject DN.
fn leaf_label(c: &CertInfo) -> String {
    match leaf_cn(c) {
        Some(cn) => format!("CN={cn}"),
        None => format!("\"{}\"", c.subject),
    }
}

/// The fact a finding's fix names, taken from the handshake that raised it.
pub(super) fn subject(f: &Finding, o: &Output) -> Option<String> {
    if o.ssh().is_some() {
        // An SSH session: the evidence names the algorithm or version.
        return Some(f.evidence.clone());
    }
    let Some(hs) = o.handshake() else {
        // A plaintext flow: its protocol.
        return o.plaintext().and_then(|p| p.facts.protocol).map(|p| p.as_str().to_string());
    };
    let cn = || hs.certs.first().map(leaf_label);
    let client_max = || hs.client_hello.as_ref().map(|c| version_name(c.max_version()));
    let Some(e) = lookup(f.id) else { return Some(f.evidence.clone()) };
    match e.subject {
        Subject::Version => match hs.version() {
            Some(v @ (0x0002 | 0x0300 | 0x0301 | 0x0302)) => Some(version_name(v)),
            _ => client_max(),
        },
        Subject::ClientMaxVersion => client_max(),
        Subject::Cipher => negotiated_cipher(hs),
        Subject::CertCn => cn(),
        Subject::CertNotAfter(word) => {
            cn().map(|n| format!("{n} ({word} {})", hs.certs.first().map(|c| day(c.not_after)).unwrap_or_default()))
        }
        Subject::CertNotBefore(word) => {
            cn().map(|n| format!("{n} ({word} {})", hs.certs.first().map(|c| day(c.not_before)).unwrap_or_default()))
        }
        Subject::Sni => hs.client_hello.as_ref().and_then(|c| c.sni.clone()),
        // A plaintext finding on an upgraded session: its evidence.
        Subject::Protocol | Subject::Evidence => Some(f.evidence.clone()),
    }
}

/// The negotiated suite by name (SSLv2 kinds too).
pub(super) fn negotiated_cipher(hs: &Handshake) -> Option<String> {
    let sh = hs.server_hello.as_ref()?;
    Some(match sh.sslv2_kind {
        Some(k) => sslv2_cipher_name(k),
        None => cipher_name(sh.cipher),
    })
}
