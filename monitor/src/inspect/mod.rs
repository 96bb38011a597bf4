//! Inspectors over flow heads: TLS record layer and hellos, QUIC Initials, plaintext protocols,
//! fingerprints, IANA names.
pub mod fingerprint;
pub mod names;
pub mod plaintext;
pub mod quic;
pub mod tls;
