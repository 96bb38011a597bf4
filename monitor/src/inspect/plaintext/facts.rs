//! Inspect, plaintext, facts: what the plaintext inspectors may report about a flow — the
//! protocol, its metadata from closed tables or strict validators, credentials by kind, STARTTLS.
//! Plain data shared by the inspectors and the dispatcher. Must never hold a payload value.
use serde::Serialize;

/// The application protocol a plaintext flow was recognised as: the most specific one (FHIR
/// rather than the HTTP it rides on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Hl7,
    Dicom,
    Fhir,
    Dicomweb,
    Cda,
    X12,
    Http,
    Smtp,
    Imap,
    Pop3,
    Ftp,
    Ldap,
    Postgresql,
    Mysql,
    Xmpp,
    Irc,
    /// SQL Server (TDS 7.x): PRELOGIN in clear, whatever it negotiates.
    Tds,
}

impl Protocol {
    /// Every protocol, in declaration order (the label set of metrics).
    pub const ALL: [Protocol; 17] = [
        Protocol::Hl7,
        Protocol::Dicom,
        Protocol::Fhir,
        Protocol::Dicomweb,
        Protocol::Cda,
        Protocol::X12,
        Protocol::Http,
        Protocol::Smtp,
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Ftp,
        Protocol::Ldap,
        Protocol::Postgresql,
        Protocol::Mysql,
        Protocol::Xmpp,
        Protocol::Irc,
        Protocol::Tds,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Hl7 => "hl7",
            Protocol::Dicom => "dicom",
            Protocol::Fhir => "fhir",
            Protocol::Dicomweb => "dicomweb",
            Protocol::Cda => "cda",
            Protocol::X12 => "x12",
            Protocol::Http => "http",
            Protocol::Smtp => "smtp",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Ftp => "ftp",
            Protocol::Ldap => "ldap",
            Protocol::Postgresql => "postgresql",
            Protocol::Mysql => "mysql",
            Protocol::Xmpp => "xmpp",
            Protocol::Irc => "irc",
            Protocol::Tds => "tds",
        }
    }

    /// Does this protocol carry health data by its nature (`plaintext.phi`)?
    pub fn carries_phi(self) -> bool {
        matches!(
            self,
            Protocol::Hl7 | Protocol::Dicom | Protocol::Fhir | Protocol::Dicomweb | Protocol::Cda | Protocol::X12
        )
    }
}

/// How sure the inspector is that the flow carries what `protocol` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Low,
    Medium,
    High,
}

impl Confidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// A way credentials were sent in clear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Credential {
    HttpBasic,
    HttpDigest,
    FtpUserPass,
    Pop3UserPass,
    Pop3Apop,
    ImapLogin,
    ImapAuthenticatePlain,
    SmtpAuthPlain,
    SmtpAuthLogin,
    LdapSimpleBind,
    PostgresqlPassword,
    /// XMPP SASL `<auth mechanism='PLAIN'>` (RFC 6120 §6, RFC 4616): the password inside.
    XmppSaslPlain,
    /// XMPP legacy `jabber:iq:auth` (XEP-0078) with a `<password/>` element.
    XmppIqAuthPassword,
    /// IRC `PASS` (the server or bouncer password).
    IrcPass,
    /// IRC SASL `AUTHENTICATE PLAIN` (IRCv3).
    IrcSaslPlain,
    /// A TDS LOGIN7 with a SQL Server password (obfuscated, not encrypted) in clear.
    TdsLogin7,
}

impl Credential {
    pub fn as_str(self) -> &'static str {
        match self {
            Credential::HttpBasic => "http-basic",
            Credential::HttpDigest => "http-digest",
            Credential::FtpUserPass => "ftp-user-pass",
            Credential::Pop3UserPass => "pop3-user-pass",
            Credential::Pop3Apop => "pop3-apop",
            Credential::ImapLogin => "imap-login",
            Credential::ImapAuthenticatePlain => "imap-authenticate-plain",
            Credential::SmtpAuthPlain => "smtp-auth-plain",
            Credential::SmtpAuthLogin => "smtp-auth-login",
            Credential::LdapSimpleBind => "ldap-simple-bind",
            Credential::PostgresqlPassword => "postgresql-password",
            Credential::XmppSaslPlain => "xmpp-sasl-plain",
            Credential::XmppIqAuthPassword => "xmpp-iq-auth-password",
            Credential::IrcPass => "irc-pass",
            Credential::IrcSaslPlain => "irc-sasl-plain",
            Credential::TdsLogin7 => "tds-login7",
        }
    }
}

/// Most entries in any list of [`PlainFacts`] (message types, SOP classes, resource types…).
pub const MAX_LIST: usize = 16;

/// HL7 v2 metadata (MSH only; never PID or any other segment).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Hl7Meta {
    /// MSH-9 message code and trigger event, e.g. `ADT^A01`, distinct, in order of appearance.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub message_types: Vec<String>,
    /// MSH-12 version id, e.g. `2.5.1` (of the first message).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// MSH segments seen (both directions).
    pub messages: u32,
    /// FHS/BHS batch envelope seen.
    pub batch: bool,
    /// MLLP framing (0x0B … 0x1C 0x0D) seen.
    pub mllp: bool,
}

/// DICOM upper-layer metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DicomMeta {
    /// Abstract syntaxes proposed in the A-ASSOCIATE-RQ: SOP class names from the table, or the
    /// UID when unknown (validated: digits and dots, at most 64), distinct.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sop_classes: Vec<String>,
    /// The A-ASSOCIATE-RQ was cut by the head budget (more contexts than listed).
    pub truncated: bool,
    /// Association outcome: `requested`, `accepted` or `rejected`.
    pub association: &'static str,
    /// P-DATA-TF PDUs (data sets in clear) seen.
    pub data: bool,
}

/// HTTP/1.x metadata: method and media type from closed sets, what health content it carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HttpMeta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    /// Media type of the request or response body, from a closed list of health types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<&'static str>,
    /// FHIR resource types (from the closed list of FHIR R4/R5 resource names), distinct.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fhir_resource_types: Vec<&'static str>,
    /// `qido-rs`, `wado-rs` or `stow-rs`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dicomweb_service: Option<&'static str>,
    /// A CDA `ClinicalDocument` (urn:hl7-org:v3) in a body head.
    pub cda: bool,
}

/// ASC X12 envelope metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct X12Meta {
    /// ST01 transaction set ids (three digits), distinct, e.g. `837`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub transaction_sets: Vec<String>,
    /// GS08 version / implementation guide (e.g. `005010X222A1`), else ISA12 (`00501`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// What a STARTTLS-capable protocol showed about the upgrade.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StartTls {
    /// The server advertised the upgrade (EHLO/CAPABILITY/CAPA/FEAT, the LDAP StartTLS OID,
    /// MySQL's CLIENT_SSL capability, XMPP's `<starttls/>` stream feature, IRC's `tls` capability).
    pub offered: bool,
    /// The client asked for it (STARTTLS, STLS, AUTH TLS, StartTLS extended op, SSLRequest,
    /// XMPP `<starttls/>`, IRC STARTTLS).
    pub requested: bool,
    /// The server's answer to the request: true = go ahead, false = refused; None = not seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// After the offer the client went on in clear (a command other than the upgrade, QUIT
    /// and capability queries).
    pub cleartext_after_offer: bool,
}

/// Everything the plaintext inspectors learned about one flow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlainFacts {
    pub protocol: Option<Protocol>,
    /// For protocols that carry PHI: how sure the detection is.
    pub confidence: Option<Confidence>,
    pub hl7: Option<Hl7Meta>,
    pub dicom: Option<DicomMeta>,
    pub http: Option<HttpMeta>,
    pub x12: Option<X12Meta>,
    pub xmpp: Option<super::xmpp::XmppMeta>,
    /// Distinct, in order of appearance.
    pub credentials: Vec<Credential>,
    pub starttls: Option<StartTls>,
    /// SQL Server: the PRELOGIN ENCRYPTION options and what went in clear.
    pub tds: Option<crate::inspect::tds::TdsMeta>,
}

/// What a session protocol (mail, FTP, LDAP, databases, XMPP, IRC) showed: upgrade and credentials.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) protocol: Protocol,
    pub(super) starttls: StartTls,
    pub(super) credentials: Vec<Credential>,
}

/// Append `item` unless present or the list is full ([`MAX_LIST`]).
pub(super) fn push_distinct<T: PartialEq>(list: &mut Vec<T>, item: T) {
    if list.len() < MAX_LIST && !list.contains(&item) {
        list.push(item);
    }
}
