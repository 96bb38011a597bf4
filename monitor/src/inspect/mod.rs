//! Inspectors over flow heads: TLS record layer and hellos, plaintext protocols, SSH banners and
//! KEXINITs, fingerprints, IANA names.
pub mod fingerprint;
pub mod names;
pub mod plaintext;
pub mod ssh;
pub mod tls;
