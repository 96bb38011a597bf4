//! Generator certificates: real DER X.509 certificates made once by `certs/make-certs.sh`
//! (OpenSSL 3.0) and embedded, so captures are reproducible. Must never generate keys at run time.

const ISSUING: &[u8] = include_bytes!("certs/issuing.der");
const WILDCARD_EC: &[u8] = include_bytes!("certs/wildcard-ec.der");
const WILDCARD_RSA: &[u8] = include_bytes!("certs/wildcard-rsa.der");
const EXPIRED_RSA: &[u8] = include_bytes!("certs/expired-rsa.der");
const EXPIRING_EC: &[u8] = include_bytes!("certs/expiring-ec.der");
const LEGACY_RSA1024: &[u8] = include_bytes!("certs/legacy-rsa1024.der");
const DEVICE_EC: &[u8] = include_bytes!("certs/device-ec.der");

/// A server's certificate chain as sent in Certificate, plus what the handshake needs of it.
pub struct Chain {
    pub certs: &'static [&'static [u8]],
    /// Leaf key: true = EC P-256 (ECDSA suites), false = RSA (RSA suites).
    pub ec: bool,
    /// RSA modulus bytes (encrypted premaster, RSA signatures); 0 for EC.
    pub rsa_bytes: usize,
}

impl Chain {
    /// Length of a ServerKeyExchange / CertificateVerify signature made with the leaf key.
    pub fn sig_len(&self) -> usize {
        if self.ec {
            71
        } else {
            self.rsa_bytes
        }
    }
}

/// Packet time of generated captures is 2025-06-02; validity below is relative to that.
pub const EC_VALID: Chain = Chain { certs: &[WILDCARD_EC, ISSUING], ec: true, rsa_bytes: 0 };
pub const RSA_VALID: Chain = Chain { certs: &[WILDCARD_RSA, ISSUING], ec: false, rsa_bytes: 256 };
pub const RSA_EXPIRED: Chain = Chain { certs: &[EXPIRED_RSA, ISSUING], ec: false, rsa_bytes: 256 };
/// Expires 2025-06-20: inside the 30-day warning window.
pub const EC_EXPIRING: Chain = Chain { certs: &[EXPIRING_EC, ISSUING], ec: true, rsa_bytes: 0 };
/// Self-signed RSA-1024 with sha1WithRSAEncryption, CN=pacs-legacy.hospital.example, no SAN.
pub const LEGACY: Chain = Chain { certs: &[LEGACY_RSA1024], ec: false, rsa_bytes: 128 };
/// Self-signed EC with CN=localhost / SAN localhost (name mismatch for any real SNI).
pub const DEVICE: Chain = Chain { certs: &[DEVICE_EC], ec: true, rsa_bytes: 0 };
