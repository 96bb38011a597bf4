//! Policy, findings catalogue: the ONE table of every finding id the policy can emit, with its
//! default severity, HIPAA reference, alert title, report fix, how its alert resolves and which
//! fact its fix names. Everything else (the ids exceptions and `[severity]` may name, report
//! fixes and ordering, alert titles and resolution, inventory subjects) is derived from it.
//! Data and lookup only; must never judge traffic.
use crate::observation::Severity;

/// 45 CFR 164.312(e)(1), transmission security.
const E1: &str = "164.312(e)(1)";
/// 45 CFR 164.312(e)(2)(ii), encryption.
const E2: &str = "164.312(e)(2)(ii)";
/// 45 CFR 164.312(d), person or entity authentication.
const D: &str = "164.312(d)";
/// 45 CFR 164.312(b), audit controls.
const B: &str = "164.312(b)";
/// 45 CFR 164.312(c)(1), integrity.
const C1: &str = "164.312(c)(1)";

/// What shows an alert of the finding fixed, besides inactivity (`--alert-resolve-secs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolvesBy {
    /// The server judged again without the finding.
    Judgement,
    /// As `Judgement`, but only when that handshake showed the certificates (not under TLS 1.3).
    CertsSeen,
    /// Inactivity only: the finding is about what one client did (offered old versions,
    /// aborted, sent malformed records), or about a flow in clear (a flow that sent no PHI
    /// does not show the server stopped accepting it in clear).
    Inactivity,
}

/// The fact a finding's fix names (the inventory's `subjects`), taken from the handshake that
/// raised it. A flow in clear always names its protocol, whatever the finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subject {
    /// The negotiated version when it is SSL 2.0/3.0 or TLS 1.0/1.1, else the client's highest.
    Version,
    /// The highest version the client offered.
    ClientMaxVersion,
    /// The negotiated cipher suite.
    Cipher,
    /// The leaf's CN (else its subject DN).
    CertCn,
    /// The leaf's CN with its not-after day: `CN=x (<word> 2021-01-01)`.
    CertNotAfter(&'static str),
    /// The leaf's CN with its not-before day: `CN=x (<word> 2031-01-01)`.
    CertNotBefore(&'static str),
    /// The server name the client asked for.
    Sni,
    /// The protocol of the flow in clear (the evidence when raised on an upgraded TLS session).
    Protocol,
    /// The finding's evidence.
    Evidence,
}

/// One finding id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub id: &'static str,
    /// The severity under the hipaa profile; rules lower or raise it where the profile or the
    /// evidence says so (see each rule).
    pub severity: Severity,
    pub hipaa_ref: &'static str,
    /// A few words for an alert's summary.
    pub title: &'static str,
    /// The fix, a template. Placeholders: `{srv}` the server address, `{what}` the subjects as
    /// a list, `{paren}` the subjects in parentheses (or nothing), `{class}` the suite
    /// families of the subjects.
    pub fix: &'static str,
    /// What `{what}` and `{class}` say when no subject was recorded.
    pub fix_default: &'static str,
    pub resolves_by: ResolvesBy,
    pub subject: Subject,
}

use ResolvesBy::{CertsSeen, Inactivity, Judgement};
use Severity::{Critical, High, Info, Low, Medium};

/// A row; the arguments in the order of the table's columns.
#[allow(clippy::too_many_arguments)]
const fn row(
    id: &'static str,
    severity: Severity,
    hipaa_ref: &'static str,
    title: &'static str,
    fix: &'static str,
    fix_default: &'static str,
    resolves_by: ResolvesBy,
    subject: Subject,
) -> Entry {
    Entry { id, severity, hipaa_ref, title, fix, fix_default, resolves_by, subject }
}

/// The fix of every anomaly but Heartbleed.
const LOOK_INTO: &str = "look into the malformed or truncated TLS traffic on {srv}{paren}";

/// Every finding id, in catalogue order (versions, suites, key exchange, certificates, alerts,
/// plaintext, SSH, anomalies): the order findings of one severity are listed in.
#[rustfmt::skip]
pub const CATALOGUE: &[Entry] = &[
    row("tls.version.insecure", Critical, E1, "SSL 2.0/3.0 in use",
        "disable {what} on {srv}", "SSL 2.0 and SSL 3.0", Judgement, Subject::Version),
    row("tls.version.deprecated", High, E1, "TLS 1.0/1.1 negotiated",
        "disable {what} on {srv}", "TLS 1.0 and TLS 1.1", Judgement, Subject::Version),
    row("tls.version.client-legacy-only", High, E1, "Client offers only TLS 1.1 or older",
        "upgrade the clients of {srv} that offer at most {what} to TLS 1.2 or later", "TLS 1.1",
        Inactivity, Subject::ClientMaxVersion),
    row("tls.version.no-tls13", Low, E2, "TLS 1.2 though the client offered 1.3",
        "enable TLS 1.3 on {srv}", "", Judgement, Subject::Evidence),
    row("tls.cipher.insecure", Critical, E2, "Broken cipher suite negotiated",
        "remove {class} suites{paren} from {srv}", "insecure", Judgement, Subject::Cipher),
    row("tls.cipher.weak", High, E2, "Weak cipher suite negotiated",
        "remove {class} suites{paren} from {srv}; offer AEAD suites (AES-GCM, ChaCha20-Poly1305)", "weak",
        Judgement, Subject::Cipher),
    row("tls.kx.no-pfs", High, E2, "No forward secrecy",
        "enable ECDHE key exchange (forward secrecy) on {srv} and remove static key-exchange suites{paren}", "",
        Judgement, Subject::Cipher),
    row("tls.kx.weak-group", High, E2, "Weak key-exchange group",
        "use DH groups of 2048 bits or more and curves of 256 bits or more on {srv}{paren}", "",
        Judgement, Subject::Evidence),
    row("tls.compression", High, E1, "TLS compression (CRIME)",
        "disable TLS compression on {srv}", "", Judgement, Subject::Evidence),
    row("tls.renegotiation.insecure", Medium, E1, "Insecure renegotiation",
        "enable secure renegotiation (RFC 5746 renegotiation_info) on {srv}", "", Judgement, Subject::Evidence),
    row("tls.cert.expired", High, D, "Expired server certificate",
        "renew the certificate for {what} on {srv}", "the server certificate",
        CertsSeen, Subject::CertNotAfter("expired")),
    row("tls.cert.not-yet-valid", High, D, "Server certificate not yet valid",
        "check the validity dates of {what} and the clock of {srv}", "the server certificate",
        CertsSeen, Subject::CertNotBefore("valid from")),
    row("tls.cert.expiring", Medium, D, "Server certificate expiring soon",
        "renew the certificate for {what} on {srv} before it expires", "the server certificate",
        CertsSeen, Subject::CertNotAfter("expires")),
    row("tls.cert.self-signed", High, D, "Self-signed server certificate",
        "replace the self-signed certificate on {srv}{paren} with one issued by a trusted CA", "",
        CertsSeen, Subject::CertCn),
    row("tls.cert.name-mismatch", High, D, "Certificate name mismatch",
        "install a certificate that covers {what} on {srv}", "the requested server name", CertsSeen, Subject::Sni),
    row("tls.cert.untrusted", High, D, "Untrusted certificate chain",
        "install a certificate chain that leads to a trusted CA on {srv}{paren}", "", CertsSeen, Subject::CertCn),
    row("tls.cert.weak-key", High, D, "Weak certificate key",
        "reissue the certificate{paren} on {srv} with an RSA key of 2048 bits or more or an ECDSA P-256 key", "",
        CertsSeen, Subject::CertCn),
    row("tls.cert.weak-signature", High, D, "Weak certificate signature",
        "reissue the certificate{paren} on {srv} with a SHA-256 or stronger signature", "",
        CertsSeen, Subject::CertCn),
    // Mutual TLS (issue 16): the client's certificate, judged like a server's, and the servers
    // `[[mtls-required]]` names. About what one client presented: resolved by inactivity.
    row("tls.client-cert.expired", High, D, "Expired client certificate",
        "renew the expired client certificates used with {srv} and make {srv} refuse expired ones{paren}", "",
        Inactivity, Subject::Evidence),
    row("tls.client-cert.weak-key", High, D, "Weak client certificate key",
        "reissue the client certificates used with {srv} with an RSA key of 2048 bits or more or an ECDSA \
         P-256 key{paren}", "", Inactivity, Subject::Evidence),
    row("tls.client-cert.weak-signature", High, D, "Weak client certificate signature",
        "reissue the client certificates used with {srv} with a SHA-256 or stronger signature{paren}", "",
        Inactivity, Subject::Evidence),
    row("tls.client-cert.self-signed", Low, D, "Self-signed client certificate",
        "check that {srv} pins self-signed client certificates by fingerprint, or issue them from a client \
         CA that {srv} trusts{paren}", "", Inactivity, Subject::Evidence),
    row("tls.mtls.missing", High, D, "Mutual TLS required but not used",
        "make {srv} require a client certificate (e.g. nginx ssl_verify_client on, OpenSSL \
         SSL_VERIFY_PEER|SSL_VERIFY_FAIL_IF_NO_PEER_CERT){paren}", "", CertsSeen, Subject::Evidence),
    row("tls.mtls.unverifiable", Info, D, "Mutual TLS not visible (TLS 1.3)",
        "nothing to fix on the wire: TLS 1.3 encrypts the client certificate; check in the configuration or \
         logs of {srv} that it requires one{paren}", "", Judgement, Subject::Evidence),
    row("tls.alert.fatal", Info, B, "Fatal TLS alert in handshakes",
        "look into the failed handshakes on {srv}{paren}", "", Inactivity, Subject::Evidence),
    row("tls.pq-hybrid", Info, "-", "Post-quantum hybrid key exchange",
        "nothing to fix: post-quantum hybrid key exchange in use on {srv}", "", Judgement, Subject::Evidence),
    row("plaintext.phi", Critical, E1, "PHI sent in clear",
        "carry the health data on {srv} over TLS 1.2 or later{paren}", "", Inactivity, Subject::Protocol),
    row("plaintext.credentials", High, D, "Credentials sent in clear",
        "require TLS before login on {srv}{paren}", "", Inactivity, Subject::Protocol),
    row("plaintext.starttls-missing", High, E1, "STARTTLS offered but not used",
        "require STARTTLS on {srv} and refuse sessions that stay in clear", "", Inactivity, Subject::Protocol),
    // SQL Server (issue 16): what the TDS PRELOGIN exchange left in clear.
    row("tds.cleartext", High, E1, "SQL Server session in clear",
        "set Force Encryption on the SQL Server at {srv} (or Encrypt=Strict/Mandatory in its clients) so the \
         whole session, not only the login, goes over TLS{paren}", "", Inactivity, Subject::Protocol),
    // SSH (issue 16): judged from the banners and the two KEXINITs, which are in clear.
    row("ssh.version.v1", Critical, E1, "SSH protocol 1 accepted",
        "disable SSH protocol 1 on {srv}{paren}; run an SSH-2-only server (OpenSSH 7.4 or later)", "",
        Judgement, Subject::Evidence),
    row("ssh.kex.weak", High, E2, "Weak SSH key exchange",
        "remove SHA-1 and 1024-bit key exchanges from the KexAlgorithms of {srv}{paren}; offer \
         mlkem768x25519-sha256, sntrup761x25519-sha512 or curve25519-sha256", "", Judgement, Subject::Evidence),
    row("ssh.cipher.weak", High, E2, "Weak SSH cipher",
        "remove CBC, 3DES, RC4 and Blowfish ciphers from the Ciphers of {srv}{paren}; offer \
         chacha20-poly1305@openssh.com, aes256-gcm@openssh.com or aes128-ctr", "", Judgement, Subject::Evidence),
    row("ssh.mac.weak", High, E1, "Weak SSH MAC",
        "remove MD5, truncated (-96) and 64-bit MACs from the MACs of {srv}{paren}; offer \
         hmac-sha2-256-etm@openssh.com or hmac-sha2-512-etm@openssh.com", "", Judgement, Subject::Evidence),
    row("ssh.hostkey.weak", High, D, "Weak SSH host key algorithm",
        "sign with an Ed25519, ECDSA or RSA SHA-2 (rsa-sha2-256/512) host key on {srv}{paren}; remove \
         ssh-dss and ssh-rsa from its HostKeyAlgorithms", "", Judgement, Subject::Evidence),
    row("ssh.compression", Low, E1, "SSH compression before authentication",
        "allow only delayed compression (zlib@openssh.com) or none on {srv}{paren}", "", Judgement,
        Subject::Evidence),
    row("ssh.pq-hybrid", Info, "-", "Post-quantum hybrid SSH key exchange",
        "nothing to fix: post-quantum hybrid key exchange in use on {srv}", "", Judgement, Subject::Evidence),
    // The prober's own results (opt-in, issue 14): a server it could not check.
    row("probe.unreachable", Info, B, "Prober could not reach the server",
        "check that {srv} is up and that the prober's allowlist and firewall let it connect", "",
        Judgement, Subject::Evidence),
    row("probe.failed", Low, D, "Prober handshake failed",
        "look into why {srv} did not complete a TLS 1.2/1.3 handshake with the prober{paren}", "",
        Judgement, Subject::Evidence),
    // Anomalies are titled by their id in alerts.
    row("anomaly.heartbleed", Medium, C1, "anomaly.heartbleed",
        "patch the TLS library on {srv} (Heartbleed, CVE-2014-0160) and replace its keys", "",
        Inactivity, Subject::Evidence),
    row("anomaly.heartbeat", Low, C1, "anomaly.heartbeat", LOOK_INTO, "", Inactivity, Subject::Evidence),
    row("anomaly.malformed-handshake", Low, C1, "anomaly.malformed-handshake", LOOK_INTO, "",
        Inactivity, Subject::Evidence),
    row("anomaly.malformed-record", Low, C1, "anomaly.malformed-record", LOOK_INTO, "",
        Inactivity, Subject::Evidence),
    row("anomaly.truncated-handshake", Low, C1, "anomaly.truncated-handshake", LOOK_INTO, "",
        Inactivity, Subject::Evidence),
    row("anomaly.ssh-malformed", Low, C1, "anomaly.ssh-malformed",
        "look into the malformed or truncated SSH handshakes on {srv}{paren}", "", Inactivity, Subject::Evidence),
];

/// Every finding id, in catalogue order: what an exception or `[severity]` may name, and the
/// `id` label values of the findings metrics.
pub const FINDING_IDS: &[&str] = &ids();

const fn ids() -> [&'static str; CATALOGUE.len()] {
    let mut out = [""; CATALOGUE.len()];
    let mut i = 0;
    while i < CATALOGUE.len() {
        out[i] = CATALOGUE[i].id;
        i += 1;
    }
    out
}

/// The row of `id`, at compile time: an id outside the catalogue does not build. Use through
/// [`entry!`]; at run time use [`lookup`].
pub const fn known(id: &str) -> &'static Entry {
    let mut i = 0;
    while i < CATALOGUE.len() {
        if monitor_common::str_eq(CATALOGUE[i].id, id) {
            return &CATALOGUE[i];
        }
        i += 1;
    }
    panic!("finding id not in the catalogue (policy/catalogue.rs)")
}

/// The catalogue row of a literal id, checked when compiling: `entry!("tls.compression")`.
macro_rules! entry {
    ($id:literal) => {
        const { $crate::policy::catalogue::known($id) }
    };
}
pub(crate) use entry;

/// The row of `id`, if the catalogue has it.
pub fn lookup(id: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.id == id)
}

/// Position of an id in the catalogue, for ordering findings; unknown ids last.
pub fn rank(id: &str) -> usize {
    CATALOGUE.iter().position(|e| e.id == id).unwrap_or(CATALOGUE.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row is complete: a known family, a unique id, a HIPAA reference (or "-" for good
    /// news), a title, a fix naming the server with only known placeholders, and a default for
    /// `{what}` / `{class}` when the fix uses them.
    #[test]
    fn every_row_is_complete() {
        for (i, e) in CATALOGUE.iter().enumerate() {
            let id = e.id;
            assert!(
                ["tls.", "anomaly.", "plaintext.", "probe.", "ssh.", "tds."].iter().any(|f| id.starts_with(f)),
                "{id}: family"
            );
            assert!(
                id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-'),
                "{id}: id characters"
            );
            assert_eq!(rank(id), i, "{id} listed twice");
            assert!(e.hipaa_ref.starts_with("164.312(") || (e.hipaa_ref == "-" && e.severity == Info), "{id}");
            assert!(!e.title.is_empty(), "{id}: no title");
            assert!(e.fix.contains("{srv}"), "{id}: the fix does not name the server");
            let rest =
                ["{srv}", "{what}", "{paren}", "{class}"].iter().fold(e.fix.to_string(), |s, p| s.replace(p, ""));
            assert!(!rest.contains(['{', '}']), "{id}: unknown placeholder in {}", e.fix);
            if e.fix.contains("{what}") || e.fix.contains("{class}") {
                assert!(!e.fix_default.is_empty(), "{id}: {{what}} without a default");
            }
            if id.starts_with("tls.cert.") {
                assert_eq!(e.resolves_by, CertsSeen, "{id}: TLS 1.3 hides the certificate");
            }
            if id.starts_with("anomaly.") || id.starts_with("plaintext.") {
                assert_eq!(e.resolves_by, Inactivity, "{id}: not the server's to show fixed");
            }
        }
        assert_eq!(FINDING_IDS.len(), CATALOGUE.len());
        assert_eq!(known("tls.compression").id, "tls.compression");
        assert_eq!(lookup("tls.future-thing"), None);
        assert_eq!(rank("tls.future-thing"), CATALOGUE.len());
    }
}
