//! Inspect, certificate trust (optional): does a server's chain lead, signature by signature,
//! to an anchor of the operator's CA bundle? Pure computation over the DER the head carried;
//! must never fetch anything (no AIA, no OCSP) and never keep the DER past the call.
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// Trust anchors loaded from a PEM bundle.
#[derive(Debug, Default)]
pub struct TrustStore {
    /// (subject DN DER, SHA-256 of the certificate, the certificate DER)
    anchors: Vec<(Vec<u8>, [u8; 32], Vec<u8>)>,
}

/// Why a bundle could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read CA bundle {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("CA bundle {path} holds no certificate")]
    Empty { path: String },
}

/// The verdict on one chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    Trusted,
    Untrusted(String),
}

impl TrustStore {
    /// Load every `CERTIFICATE` block of a PEM file; others are skipped.
    pub fn from_pem_file(path: &std::path::Path) -> Result<Self, TrustError> {
        let name = path.display().to_string();
        let data = std::fs::read(path).map_err(|source| TrustError::Read { path: name.clone(), source })?;
        let store = Self::from_pem(&data);
        if store.anchors.is_empty() {
            return Err(TrustError::Empty { path: name });
        }
        Ok(store)
    }

    pub fn from_pem(data: &[u8]) -> Self {
        let mut store = TrustStore::default();
        for pem in Pem::iter_from_buffer(data).flatten() {
            if pem.label == "CERTIFICATE" {
                store.add_der(&pem.contents);
            }
        }
        store
    }

    pub fn add_der(&mut self, der: &[u8]) {
        if let Ok((_, c)) = X509Certificate::from_der(der) {
            self.anchors.push((c.subject().as_raw().to_vec(), Sha256::digest(der).into(), der.to_vec()));
        }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    /// Judge a chain as sent (leaf first). Each certificate must be signed by the next; the last
    /// must be an anchor itself or be signed by one.
    pub fn evaluate(&self, ders: &[&[u8]]) -> Trust {
        let certs: Vec<X509Certificate<'_>> =
            ders.iter().filter_map(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c)).collect();
        if certs.is_empty() || certs.len() != ders.len() {
            return Trust::Untrusted("the chain holds a certificate that does not parse".into());
        }
        for (i, pair) in certs.windows(2).enumerate() {
            if pair[0].issuer().as_raw() != pair[1].subject().as_raw() {
                return Trust::Untrusted(format!(
                    "certificate {} is not issued by certificate {} of the chain",
                    i,
                    i + 1
                ));
            }
            if pair[0].verify_signature(Some(pair[1].public_key())).is_err() {
                return Trust::Untrusted(format!("the signature on certificate {i} does not verify"));
            }
        }
        let last = &certs[certs.len() - 1];
        let last_fp: [u8; 32] = Sha256::digest(ders[ders.len() - 1]).into();
        if self.anchors.iter().any(|(_, fp, _)| *fp == last_fp) {
            return Trust::Trusted;
        }
        for (subject, _, der) in &self.anchors {
            if subject.as_slice() != last.issuer().as_raw() {
                continue;
            }
            if let Ok((_, anchor)) = X509Certificate::from_der(der) {
                if last.verify_signature(Some(anchor.public_key())).is_ok() {
                    return Trust::Trusted;
                }
            }
        }
        Trust::Untrusted(format!("issuer \"{}\" is not in the CA bundle", last.issuer()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Make a root CA, a leaf it signs and an impostor root of the same name with the openssl
    /// CLI (in the image; installed by setup).
    fn pki(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let run = |args: &str| {
            let args: Vec<&str> = args.split_whitespace().collect();
            let st = Command::new("openssl").args(&args).current_dir(dir).output().expect("openssl runs");
            assert!(st.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&st.stderr));
        };
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        for name in ["ca", "other"] {
            run(&format!("req -x509 {key} -keyout {name}.key -out {name}.pem -days 30 -subj /CN=tlsmon-test-root"));
        }
        run(&format!("req {key} -keyout leaf.key -out leaf.csr -subj /CN=ehr.hospital.example"));
        run("x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 30");
        let der =
            |f: &str| Pem::iter_from_buffer(&std::fs::read(dir.join(f)).unwrap()).next().unwrap().unwrap().contents;
        (der("ca.pem"), der("leaf.pem"), der("other.pem"))
    }

    #[test]
    fn chains_against_a_bundle() {
        let dir = std::env::temp_dir().join(format!("tlsmon-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ca, leaf, other) = pki(&dir);
        let store = TrustStore::from_pem(&std::fs::read(dir.join("ca.pem")).unwrap());
        assert_eq!(store.len(), 1);
        assert_eq!(store.evaluate(&[&leaf]), Trust::Trusted, "leaf signed by an anchor");
        assert_eq!(store.evaluate(&[&leaf, &ca]), Trust::Trusted, "chain ending in the anchor");
        assert!(matches!(store.evaluate(&[&other]), Trust::Untrusted(_)), "self-signed, not in bundle");
        // Same subject as the anchor, other key: the signature check, not the name, decides.
        let impostor = TrustStore::from_pem(&std::fs::read(dir.join("other.pem")).unwrap());
        assert!(matches!(impostor.evaluate(&[&leaf]), Trust::Untrusted(_)));
        // A flipped bit in the leaf's signature.
        let mut bad = leaf.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        assert!(matches!(store.evaluate(&[&bad, &ca]), Trust::Untrusted(_)));
        std::fs::remove_dir_all(&dir).ok();
    }
}
