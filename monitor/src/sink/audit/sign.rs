//! Sink, audit log, signing: the Ed25519 key that signs checkpoints of the chain head, its key
//! file (created on first use, mode 0600, PKCS#8 PEM), the public key an auditor is handed
//! (`KEY.pub`, PEM SubjectPublicKeyInfo) and the exact bytes a checkpoint signature covers.
//! All cryptography is `ring`'s; must never write a private key readable by anyone but its
//! owner, nor use a key file that group or others can read or write.
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `type` of a checkpoint line.
pub const CHECKPOINT_TYPE: &str = "checkpoint";
/// Domain separation: the first bytes of every signed checkpoint statement.
const CONTEXT: &[u8] = b"tlsmon audit checkpoint v1\n";
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// Why a checkpoint was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reason {
    /// Every `--audit-checkpoint-mins` while lines are being written.
    Interval,
    /// Last line of a file about to be rolled over.
    Rotate,
    /// Last line written at a clean shutdown.
    Exit,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reason::Interval => "interval",
            Reason::Rotate => "rotate",
            Reason::Exit => "exit",
        })
    }
}

/// The `"checkpoint":{…}` member of a checkpoint line: a signed statement that the line before
/// it has `seq` and `hash`. The checkpoint line itself is an ordinary line of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// `seq` of the line signed (the line just before the checkpoint line).
    pub seq: u64,
    /// That line's `hash` (64 lowercase hex digits).
    pub hash: String,
    /// When it was signed: the agent's wall clock, RFC 3339 UTC to the second.
    pub time: String,
    /// The agent's host name.
    pub host: String,
    pub reason: Reason,
    /// [`PublicKey::key_id`] of the signing key.
    pub key_id: String,
    /// Ed25519 signature (128 hex digits) over [`Checkpoint::message`].
    pub sig: String,
}

impl Checkpoint {
    /// The bytes signed: a fixed context line, then each field as `name len:value\n`
    /// (length-prefixed, so no two different checkpoints share a message).
    pub fn message(&self) -> Vec<u8> {
        let mut m = CONTEXT.to_vec();
        let seq = self.seq.to_string();
        let reason = self.reason.to_string();
        for (name, value) in [
            ("seq", seq.as_str()),
            ("hash", &self.hash),
            ("time", &self.time),
            ("host", &self.host),
            ("reason", &reason),
            ("key_id", &self.key_id),
        ] {
            m.extend_from_slice(format!("{name} {}:", value.len()).as_bytes());
            m.extend_from_slice(value.as_bytes());
            m.push(b'\n');
        }
        m
    }
}

/// A checkpoint line's event: `{"type":"checkpoint","checkpoint":{…}}`.
#[derive(Serialize)]
pub(super) struct CheckpointEvent<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub checkpoint: &'a Checkpoint,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("audit signing key {}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit signing key {}: readable or writable by group or others (mode {mode:04o}); a private key must be mode 0600: run `chmod 600 {}` (and consider the key exposed)",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("audit signing key {}: {what}", path.display())]
    Format { path: PathBuf, what: &'static str },
}

/// The agent's signing key.
pub struct Signer {
    pair: Ed25519KeyPair,
    public: PublicKey,
    host: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("key_id", &self.public.key_id()).finish_non_exhaustive()
    }
}

impl Signer {
    /// Load the PKCS#8 Ed25519 key at `path` (PEM `PRIVATE KEY` or raw DER, e.g. from `openssl
    /// genpkey -algorithm ed25519`), or create it when the file does not exist: a new key is
    /// written with mode 0600 from its creation, and its public key to `path.pub`. An existing
    /// key readable or writable by group or others is refused. `path.pub` is (re)written when missing.
    /// Returns the signer and whether the key was created.
    pub fn load_or_create(path: &Path) -> Result<(Signer, bool), KeyError> {
        let io = |op| move |source| KeyError::Io { path: path.to_owned(), op, source };
        let (signer, created) = match std::fs::metadata(path) {
            Ok(meta) => {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(KeyError::Permissions { path: path.to_owned(), mode });
                }
                let bytes = std::fs::read(path).map_err(io("cannot read"))?;
                (Signer::from_pkcs8(&private_der(&bytes, path)?, path)?, false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let rng = ring::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng)
                    .map_err(|_| KeyError::Format { path: path.to_owned(), what: "cannot generate a key" })?;
                let signer = Signer::from_pkcs8(doc.as_ref(), path)?;
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io("cannot create"))?;
                f.write_all(pem("PRIVATE KEY", doc.as_ref()).as_bytes())
                    .and_then(|_| f.sync_all())
                    .map_err(io("cannot write"))?;
                (signer, true)
            }
            Err(e) => return Err(io("cannot read")(e)),
        };
        let public = pub_path(path);
        if created || !public.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o644)
                .open(&public)
                .and_then(|mut f| f.write_all(signer.public.to_pem().as_bytes()).and_then(|_| f.sync_all()))
                .map_err(|source| KeyError::Io { path: public.clone(), op: "cannot write the public key", source })?;
        }
        Ok((signer, created))
    }

    fn from_pkcs8(der: &[u8], path: &Path) -> Result<Signer, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|_| KeyError::Format { path: path.to_owned(), what: "not a PKCS#8 Ed25519 private key" })?;
        let mut raw = [0u8; 32];
        raw.copy_from_slice(pair.public_key().as_ref());
        Ok(Signer { pair, public: PublicKey::from_raw(raw), host: host_name() })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The checkpoint of a chain whose last line has `seq` and `hash`, signed at `time`.
    pub fn checkpoint(&self, seq: u64, hash: &[u8; 32], reason: Reason, time: String) -> Checkpoint {
        let mut cp = Checkpoint {
            seq,
            hash: hex::encode(hash),
            time,
            host: self.host.clone(),
            reason,
            key_id: self.public.key_id().to_owned(),
            sig: String::new(),
        };
        cp.sig = hex::encode(self.pair.sign(&cp.message()).as_ref());
        cp
    }
}

/// The file an auditor is handed: `KEY.pub` next to the key file.
pub fn pub_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// An Ed25519 public key that checkpoints are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    raw: [u8; 32],
    id: String,
}

impl PublicKey {
    fn from_raw(raw: [u8; 32]) -> PublicKey {
        PublicKey { raw, id: hex::encode(&Sha256::digest(raw)[..8]) }
    }

    /// Read a public key file: PEM `PUBLIC KEY` (what tlsmon writes to `KEY.pub`, and what
    /// `openssl pkey -pubout` writes) or the 32 key bytes as 64 hex digits.
    pub fn from_file(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.to_owned(),
            op: "cannot read",
            source,
        })?;
        PublicKey::parse(&text).ok_or_else(|| KeyError::Format {
            path: path.to_owned(),
            what: "not an Ed25519 public key (PEM \"PUBLIC KEY\" or 64 hex digits)",
        })
    }

    /// Parse the text of a public key file (see [`from_file`](PublicKey::from_file)).
    pub fn parse(text: &str) -> Option<PublicKey> {
        let t = text.trim();
        let mut raw = [0u8; 32];
        if t.len() == 64 && hex::decode_to_slice(t, &mut raw).is_ok() {
            return Some(PublicKey::from_raw(raw));
        }
        let der = unpem(t, "PUBLIC KEY")?;
        let key = der.strip_prefix(&SPKI_PREFIX[..])?;
        raw.copy_from_slice(key.get(..32).filter(|_| key.len() == 32)?);
        Some(PublicKey::from_raw(raw))
    }

    /// A short fingerprint: the first 16 hex digits of SHA-256 over the 32 key bytes.
    pub fn key_id(&self) -> &str {
        &self.id
    }

    /// PEM SubjectPublicKeyInfo, as written to `KEY.pub`.
    pub fn to_pem(&self) -> String {
        pem("PUBLIC KEY", &[&SPKI_PREFIX[..], &self.raw[..]].concat())
    }

    /// Whether `cp` carries a valid signature by this key (its `key_id` included).
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        let mut sig = [0u8; 64];
        cp.key_id == self.id
            && hex::decode_to_slice(&cp.sig, &mut sig).is_ok()
            && UnparsedPublicKey::new(&ED25519, &self.raw).verify(&cp.message(), &sig).is_ok()
    }
}

/// The DER of a private key file: PEM `PRIVATE KEY`, or the file itself when it is DER.
fn private_der(bytes: &[u8], path: &Path) -> Result<Vec<u8>, KeyError> {
    if bytes.first() == Some(&0x30) {
        return Ok(bytes.to_vec());
    }
    std::str::from_utf8(bytes).ok().and_then(|t| unpem(t, "PRIVATE KEY")).ok_or_else(|| KeyError::Format {
        path: path.to_owned(),
        what: "not a PEM \"PRIVATE KEY\" nor DER PKCS#8 file",
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

fn unpem(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text.split_once(&begin)?.1.split_once(&end)?.0;
    let b64: String = body.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The host name (from the kernel), "unknown" when it cannot be read.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Now, RFC 3339 UTC to the second (the checkpoint `time`).
pub(super) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tlsmon-audit-sign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let p = dir.join(name);
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(pub_path(&p));
        p
    }

    #[test]
    fn key_created_0600_with_its_public_key_and_loaded_again() {
        let p = tmp("k1.key");
        let (s, created) = Signer::load_or_create(&p).expect("create");
        assert!(created);
        assert_eq!(std::fs::metadata(&p).expect("meta").permissions().mode() & 0o777, 0o600);
        let text = std::fs::read_to_string(&p).expect("read");
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        let public = PublicKey::from_file(&pub_path(&p)).expect("pub");
        assert_eq!(&public, s.public_key());
        assert_eq!(public.key_id().len(), 16);
        let (again, created) = Signer::load_or_create(&p).expect("load");
        assert!(!created);
        assert_eq!(again.public_key(), s.public_key());
    }

    #[test]
    fn group_readable_key_refused() {
        let p = tmp("k2.key");
        Signer::load_or_create(&p).expect("create");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        let err = Signer::load_or_create(&p).expect_err("refused");
        assert!(matches!(err, KeyError::Permissions { mode: 0o640, .. }), "{err:?}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn signature_covers_every_field() {
        let p = tmp("k3.key");
        let (s, _) = Signer::load_or_create(&p).expect("create");
        let cp = s.checkpoint(7, &[9; 32], Reason::Interval, "2026-01-02T03:04:05Z".into());
        let k = s.public_key();
        assert!(k.verifies(&cp));
        let variants: [fn(&mut Checkpoint); 6] = [
            |c| c.seq += 1,
            |c| c.hash.replace_range(0..1, "a"),
            |c| c.time.replace_range(0..1, "3"),
            |c| c.host.push('x'),
            |c| c.reason = Reason::Exit,
            |c| c.sig.replace_range(0..2, if c.sig.starts_with("00") { "01" } else { "00" }),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut bad = cp.clone();
            change(&mut bad);
            assert!(!k.verifies(&bad), "change {i} must break the signature");
        }
        // Another key, even claiming the right key id, does not verify.
        let (other, _) = Signer::load_or_create(&tmp("k4.key")).expect("create");
        let mut forged = other.checkpoint(7, &[9; 32], Reason::Interval, cp.time.clone());
        assert!(!k.verifies(&forged));
        forged.key_id = cp.key_id.clone();
        assert!(!k.verifies(&forged));
    }

    /// A throwaway test key made by `openssl genpkey -algorithm ed25519` (OpenSSL 3.0.19:
    /// PKCS#8 v1, no public key inside), and what `openssl pkey -pubout` says its public key is.
    const OPENSSL_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEID5kUSxX38NZ4pmg/dw3S94fmthM7Xsn/X4w6da5mkBL
-----END PRIVATE KEY-----
";
    const OPENSSL_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAQTJcRP/aDDn2AQgf0P/aAmlsOXBYip82gXOrf+PqOvo=
-----END PUBLIC KEY-----
";

    #[test]
    fn openssl_key_loads_pem_and_der_and_gets_its_public_key_written() {
        let want = PublicKey::parse(OPENSSL_PUB).expect("pub");
        assert_eq!(want.to_pem(), OPENSSL_PUB, "KEY.pub is what openssl writes");
        let der = unpem(OPENSSL_KEY, "PRIVATE KEY").expect("pem");
        for (name, bytes) in [("k6.key", OPENSSL_KEY.as_bytes()), ("k7.der", &der[..])] {
            let p = tmp(name);
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)
                .and_then(|mut f| f.write_all(bytes))
                .expect("write");
            let (s, created) = Signer::load_or_create(&p).expect("load");
            assert!(!created);
            assert_eq!(s.public_key(), &want, "{name}");
            assert_eq!(std::fs::read_to_string(pub_path(&p)).expect("pub"), OPENSSL_PUB);
        }
    }

    #[test]
    fn public_key_parses_pem_and_hex() {
        let p = tmp("k5.key");
        let (s, _) = Signer::load_or_create(&p).expect("create");
        let pem = s.public_key().to_pem();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::parse(&pem).as_ref(), Some(s.public_key()));
        assert_eq!(PublicKey::parse(&hex::encode(s.public_key().raw)).as_ref(), Some(s.public_key()));
        assert_eq!(PublicKey::parse("not a key"), None);
    }
}
