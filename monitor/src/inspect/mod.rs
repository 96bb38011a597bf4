//! Inspectors over flow heads: TLS record layer and hellos, QUIC Initials, DTLS, plaintext protocols,
//! SSH banners and KEXINITs, SQL Server TDS PRELOGIN, fingerprints, IANA names.
pub mod dtls;
pub mod fingerprint;
pub mod names;
pub mod plaintext;
pub mod quic;
pub mod ssh;
pub mod tds;
pub mod tls;
