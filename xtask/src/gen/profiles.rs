//! Generator population: client and server TLS stacks seen on hospital networks and the mix
//! of who talks to whom. Must never describe a stack that does not exist in the field.
use super::certs::{self, Chain};
use super::tls::{SECP256R1, SECP384R1, SSL3, TLS10, TLS11, TLS12, TLS13, X25519, X25519MLKEM768};

pub struct ClientProfile {
    /// Record-layer version of the ClientHello record.
    pub record_version: u16,
    /// ClientHello.client_version (legacy_version).
    pub legacy_version: u16,
    /// supported_versions extension, best first; empty = not sent.
    pub versions: &'static [u16],
    pub min: u16,
    pub suites: &'static [u16],
    pub compression: &'static [u8],
    pub grease: bool,
    pub sni: bool,
    pub ems: bool,
    pub reneg_info: bool,
    pub groups: &'static [u16],
    pub ec_point_formats: bool,
    pub ticket: bool,
    pub alpn: &'static [&'static str],
    pub status_request: bool,
    pub sig_algs: &'static [u16],
    pub shares: &'static [u16],
    /// 32 = TLS 1.3 middlebox-compatibility session id.
    pub session_id_len: usize,
    pub ttl: u8,
}

impl ClientProfile {
    pub fn max(&self) -> u16 {
        self.versions.iter().copied().max().unwrap_or(self.legacy_version)
    }
}

const MODERN_SIGS: &[u16] = &[0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601];
const JAVA_SIGS: &[u16] = &[0x0603, 0x0503, 0x0403, 0x0601, 0x0501, 0x0401, 0x0303, 0x0301, 0x0203, 0x0201];

const BASE: ClientProfile = ClientProfile {
    record_version: TLS10,
    legacy_version: TLS12,
    versions: &[],
    min: TLS10,
    suites: &[],
    compression: &[0],
    grease: false,
    sni: true,
    ems: false,
    reneg_info: false,
    groups: &[],
    ec_point_formats: false,
    ticket: false,
    alpn: &[],
    status_request: false,
    sig_algs: &[],
    shares: &[],
    session_id_len: 0,
    ttl: 64,
};

/// Chromium 131+ (Edge on clinical workstations): GREASE, X25519MLKEM768 + X25519 shares.
pub const CHROME_PQ: ClientProfile = ClientProfile {
    versions: &[TLS13, TLS12],
    min: TLS12,
    suites: &[
        0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013, 0xc014, 0x009c, 0x009d, 0x002f,
        0x0035,
    ],
    grease: true,
    ems: true,
    reneg_info: true,
    groups: &[X25519MLKEM768, X25519, SECP256R1, SECP384R1],
    ec_point_formats: true,
    ticket: true,
    alpn: &["h2", "http/1.1"],
    status_request: true,
    sig_algs: MODERN_SIGS,
    shares: &[X25519MLKEM768, X25519],
    session_id_len: 32,
    ttl: 128,
    ..BASE
};

/// Firefox / NSS: X25519 + P-256 shares, no GREASE.
pub const FIREFOX: ClientProfile = ClientProfile {
    versions: &[TLS13, TLS12],
    min: TLS12,
    suites: &[
        0x1301, 0x1303, 0x1302, 0xc02b, 0xc02f, 0xcca9, 0xcca8, 0xc02c, 0xc030, 0xc00a, 0xc009, 0xc013, 0xc014, 0x009c,
        0x009d, 0x002f, 0x0035,
    ],
    ems: true,
    reneg_info: true,
    groups: &[X25519, SECP256R1, SECP384R1, 0x0019, 0x0100, 0x0101],
    ec_point_formats: true,
    ticket: true,
    alpn: &["h2", "http/1.1"],
    status_request: true,
    sig_algs: &[0x0403, 0x0503, 0x0603, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0203, 0x0201],
    shares: &[X25519, SECP256R1],
    session_id_len: 32,
    ..BASE
};

/// curl / OpenSSL 3 integration engines (HL7/FHIR interfaces on Linux).
pub const OPENSSL3: ClientProfile = ClientProfile {
    versions: &[TLS13, TLS12],
    min: TLS12,
    suites: &[
        0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x009f, 0xcca9, 0xcca8, 0xccaa, 0xc02b, 0xc02f, 0x009e, 0xc024, 0xc028,
        0x006b, 0xc023, 0xc027, 0x0067, 0xc00a, 0xc014, 0x0039, 0xc009, 0xc013, 0x0033, 0x009d, 0x009c, 0x003d, 0x003c,
        0x0035, 0x002f, 0x00ff,
    ],
    ems: true,
    groups: &[X25519, SECP256R1, 0x001e, 0x0019, SECP384R1],
    ec_point_formats: true,
    ticket: true,
    alpn: &["http/1.1"],
    sig_algs: &[0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601],
    shares: &[X25519],
    session_id_len: 32,
    ..BASE
};

/// Java 8 HL7 engine: TLS 1.2 max, long suite list, no supported_versions.
pub const JAVA8: ClientProfile = ClientProfile {
    record_version: TLS12,
    suites: &[
        0xc02c, 0xc02b, 0xc030, 0x009d, 0xc02e, 0xc032, 0x009f, 0x00a3, 0xc02f, 0x009c, 0xc02d, 0xc031, 0x009e, 0x00a2,
        0xc024, 0xc028, 0x003d, 0xc026, 0xc02a, 0x006b, 0x006a, 0xc00a, 0xc014, 0x0035, 0xc005, 0xc00f, 0x0039, 0x0038,
        0xc023, 0xc027, 0x003c, 0xc025, 0xc029, 0x0067, 0x0040, 0xc009, 0xc013, 0x002f, 0xc004, 0xc00e, 0x0033, 0x0032,
        0x00ff,
    ],
    ems: true,
    groups: &[SECP256R1, SECP384R1, 0x0019, 0x0009, 0x000a, 0x0016],
    ec_point_formats: true,
    sig_algs: JAVA_SIGS,
    ..BASE
};

/// Android 4 / Java 7 era stack: TLS 1.1 max.
pub const TLS11_STACK: ClientProfile = ClientProfile {
    legacy_version: TLS11,
    suites: &[0xc014, 0xc013, 0x0035, 0x002f, 0xc00a, 0xc009, 0x0039, 0x0033, 0x000a, 0x0016, 0x0005, 0x0004, 0x00ff],
    groups: &[SECP256R1, SECP384R1, 0x0019],
    ec_point_formats: true,
    ticket: true,
    ..BASE
};

/// Windows 7 era SChannel (old modality workstations): TLS 1.0 max.
pub const SCHANNEL_TLS10: ClientProfile = ClientProfile {
    legacy_version: TLS10,
    suites: &[0xc014, 0xc013, 0x0035, 0x002f, 0xc00a, 0xc009, 0x0038, 0x0032, 0x000a, 0x0013, 0x0005, 0x0004],
    reneg_info: true,
    groups: &[SECP256R1, SECP384R1],
    ec_point_formats: true,
    status_request: true,
    ttl: 128,
    ..BASE
};

/// OpenSSL 0.9.8 embedded agent: TLS 1.0, offers DEFLATE compression, SCSV instead of the extension.
pub const OPENSSL098: ClientProfile = ClientProfile {
    legacy_version: TLS10,
    min: SSL3,
    suites: &[
        0x0039, 0x0038, 0x0035, 0x0016, 0x0013, 0x000a, 0x0033, 0x0032, 0x002f, 0x0005, 0x0004, 0x0015, 0x0012, 0x0009,
        0x0014, 0x0011, 0x0008, 0x0006, 0x0003, 0x00ff,
    ],
    compression: &[1, 0],
    ticket: true,
    ..BASE
};

/// Embedded SSLv3-only device: no extensions at all.
pub const EMBEDDED_SSL3: ClientProfile = ClientProfile {
    record_version: SSL3,
    legacy_version: SSL3,
    min: SSL3,
    suites: &[0x0005, 0x0004, 0x000a, 0x002f, 0x0035, 0x00ff],
    sni: false,
    ..BASE
};

pub struct ServerProfile {
    /// Host name prefixes: instance n of role r is `r-n.hospital.example`.
    pub roles: &'static [&'static str],
    pub ports: &'static [u16],
    pub min: u16,
    pub max: u16,
    pub prefs: &'static [u16],
    pub groups: &'static [u16],
    /// Instances pick one chain each (repeat an entry to weight it).
    pub chains: &'static [&'static Chain],
    /// Permille of instances that send renegotiation_info (RFC 5746).
    pub reneg_permille: u32,
    pub ticket: bool,
    pub ems: bool,
    pub alpn: bool,
    /// Permille of instances that accept DEFLATE when offered.
    pub deflate_permille: u32,
    /// DHE prime size in bytes.
    pub dhe_bytes: usize,
    pub instances: usize,
}

const MODERN_PREFS: &[u16] = &[0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8];

pub const MODERN_PQ: ServerProfile = ServerProfile {
    roles: &["portal", "fhir", "ehr-web"],
    ports: &[443],
    min: TLS12,
    max: TLS13,
    prefs: MODERN_PREFS,
    groups: &[X25519MLKEM768, X25519, SECP256R1],
    chains: &[&certs::EC_VALID, &certs::RSA_VALID, &certs::EC_EXPIRING],
    reneg_permille: 1000,
    ticket: true,
    ems: true,
    alpn: true,
    deflate_permille: 0,
    dhe_bytes: 256,
    instances: 8,
};

pub const MODERN13: ServerProfile = ServerProfile {
    roles: &["ehr", "pacs-web", "lis", "ris", "hie", "api"],
    ports: &[443, 443, 443, 8443],
    groups: &[X25519, SECP256R1, SECP384R1],
    chains: &[&certs::EC_VALID, &certs::EC_VALID, &certs::RSA_VALID, &certs::RSA_VALID, &certs::RSA_EXPIRED],
    instances: 24,
    ..MODERN_PQ
};

pub const TLS12_ONLY: ServerProfile = ServerProfile {
    roles: &["hl7", "mirth", "billing", "pharmacy", "lab-gw"],
    ports: &[443, 6661, 6662],
    min: TLS10,
    max: TLS12,
    prefs: &[
        0xc02f, 0xc030, 0xcca8, 0xc02b, 0xc02c, 0xc027, 0xc013, 0xc014, 0xc009, 0x009c, 0x009d, 0x002f, 0x0035, 0x000a,
    ],
    groups: &[X25519, SECP256R1, SECP384R1],
    chains: &[&certs::RSA_VALID, &certs::RSA_VALID, &certs::RSA_EXPIRED, &certs::EC_VALID, &certs::EC_EXPIRING],
    reneg_permille: 900,
    alpn: false,
    instances: 20,
    ..MODERN_PQ
};

pub const LEGACY_RSA: ServerProfile = ServerProfile {
    roles: &["pacs", "dicom", "ris-legacy", "scanner-gw"],
    ports: &[443, 2762],
    min: TLS10,
    max: TLS12,
    prefs: &[0x009d, 0x009c, 0x003c, 0x002f, 0x0035, 0x009e, 0x0033, 0xc013, 0x000a, 0x0005],
    groups: &[SECP256R1],
    chains: &[&certs::RSA_VALID, &certs::RSA_EXPIRED, &certs::LEGACY],
    reneg_permille: 600,
    ticket: false,
    ems: false,
    alpn: false,
    dhe_bytes: 128,
    instances: 16,
    ..MODERN_PQ
};

pub const ANCIENT: ServerProfile = ServerProfile {
    roles: &["pacs-legacy", "modality", "ecg-store"],
    ports: &[443, 104, 2762],
    min: SSL3,
    max: TLS10,
    prefs: &[0x0005, 0x0004, 0x000a, 0x002f, 0x0035],
    chains: &[&certs::LEGACY],
    reneg_permille: 200,
    deflate_permille: 300,
    instances: 10,
    ..LEGACY_RSA
};

pub const DEVICE: ServerProfile = ServerProfile {
    roles: &["infusion-gw", "monitor-gw", "bedside"],
    ports: &[8443],
    min: TLS12,
    max: TLS12,
    prefs: &[0xc02b, 0xc02c, 0xcca9, 0xc009],
    groups: &[SECP256R1],
    chains: &[&certs::DEVICE],
    reneg_permille: 500,
    ticket: false,
    instances: 12,
    ..TLS12_ONLY
};

pub const CLIENTS: &[&ClientProfile] =
    &[&CHROME_PQ, &FIREFOX, &OPENSSL3, &JAVA8, &TLS11_STACK, &SCHANNEL_TLS10, &OPENSSL098, &EMBEDDED_SSL3];
pub const SERVERS: &[&ServerProfile] = &[&MODERN_PQ, &MODERN13, &TLS12_ONLY, &LEGACY_RSA, &ANCIENT, &DEVICE];

/// (client profile index, server profile index, weight): who talks to whom, and how often.
pub const MIX: &[(usize, usize, u32)] = &[
    (0, 0, 120), // chrome-pq → modern-pq: TLS 1.3 with X25519MLKEM768
    (0, 1, 150), // chrome-pq → modern13: TLS 1.3 X25519
    (1, 1, 150),
    (1, 0, 40),
    (2, 1, 120),
    (0, 2, 60), // 1.3-capable client, 1.2 server
    (2, 2, 60),
    (3, 2, 70), // java8 → 1.2
    (3, 3, 50),
    (2, 3, 20),
    (3, 5, 30), // java8 → self-signed device
    (4, 2, 35), // TLS 1.1
    (4, 3, 15),
    (5, 3, 40), // TLS 1.0
    (5, 4, 25),
    (6, 4, 20), // openssl098 → ancient: TLS 1.0, some DEFLATE
    (7, 4, 20), // SSLv3
    (7, 2, 5),  // SSLv3 client refused: protocol_version alert
    (6, 5, 5),  // TLS 1.0 client, TLS 1.2-only device: protocol_version alert
];
