//! Inspectors over flow heads: TLS record layer and hellos, fingerprints, IANA names.
pub mod fingerprint;
pub mod names;
pub mod tls;
