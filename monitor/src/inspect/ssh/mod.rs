//! Inspect, SSH (and so SFTP/SCP): what the clear start of an SSH session shows — both
//! identification strings and both SSH_MSG_KEXINIT packets — and what they negotiate, with the
//! HASSH fingerprints. Works on the bounded clear heads of both directions (reassembled, so a
//! KEXINIT split anywhere across segments reads the same). Must never keep a byte it did not
//! validate (banner fields and algorithm names have strict charsets and lengths), nor read past
//! a length it checked: a hostile peer gives an anomaly, never a panic.
pub mod banner;
pub mod kexinit;
pub mod negotiate;

pub use banner::Banner;
pub use kexinit::KexInit;
pub use negotiate::{cipher_aead, kex_class, kex_weak, Negotiated, PQ_HYBRID_KEX};

/// What one side showed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshSide {
    pub banner: Option<Banner>,
    pub kexinit: Option<KexInit>,
}

/// The facts of one SSH session's clear start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshFacts {
    pub client: SshSide,
    pub server: SshSide,
    /// Present when both KEXINITs were read.
    pub negotiated: Option<Negotiated>,
    /// Malformed or cut-short parts, from a closed set (`client-banner-truncated`,
    /// `server-kexinit-oversized`, …).
    pub anomalies: Vec<&'static str>,
}

impl SshFacts {
    /// HASSH: the client's KEXINIT fingerprint.
    pub fn hassh(&self) -> Option<&str> {
        self.client.kexinit.as_ref().map(|k| k.hassh_c2s.as_str())
    }

    /// HASSHServer: the server's KEXINIT fingerprint.
    pub fn hassh_server(&self) -> Option<&str> {
        self.server.kexinit.as_ref().map(|k| k.hassh_s2c.as_str())
    }

    /// The negotiated kex is a post-quantum hybrid.
    pub fn pq(&self) -> bool {
        self.negotiated.as_ref().and_then(|n| n.kex.as_deref()).is_some_and(|k| PQ_HYBRID_KEX.contains(&k))
    }

    /// The class of the negotiated kex (`pq-hybrid`, `ecdh`, `dh`, `weak`, `other`), `none`
    /// when none was negotiated.
    pub fn kex_class(&self) -> &'static str {
        self.negotiated.as_ref().and_then(|n| n.kex.as_deref()).map_or("none", kex_class)
    }
}

/// Is this flow SSH: does either side's stream start with an identification string? (A
/// server may send other lines first; its client then still starts with `SSH-`.)
pub fn is_ssh(client: &[u8], server: &[u8]) -> bool {
    client.starts_with(b"SSH-") || server.starts_with(b"SSH-")
}

/// Inspect both directions' clear heads (client's first). Never fails.
pub fn inspect(client: &[u8], server: &[u8]) -> SshFacts {
    let mut f = SshFacts::default();
    f.client = side(client, &mut f.anomalies, ["client-banner-truncated", "client-banner-malformed"], CLIENT_KEX);
    f.server = side(server, &mut f.anomalies, ["server-banner-truncated", "server-banner-malformed"], SERVER_KEX);
    if let (Some(c), Some(s)) = (&f.client.kexinit, &f.server.kexinit) {
        f.negotiated = Some(negotiate::negotiate(c, s));
    }
    f
}

const CLIENT_KEX: [&str; 4] =
    ["client-kexinit-truncated", "client-kexinit-oversized", "client-name-list-oversized", "client-kexinit-malformed"];
const SERVER_KEX: [&str; 4] =
    ["server-kexinit-truncated", "server-kexinit-oversized", "server-name-list-oversized", "server-kexinit-malformed"];

fn side(
    bytes: &[u8],
    anomalies: &mut Vec<&'static str>,
    banner_err: [&'static str; 2],
    kex_err: [&'static str; 4],
) -> SshSide {
    let mut s = SshSide::default();
    let (b, end) = match banner::parse(bytes) {
        Ok(x) => x,
        Err(e) => {
            // A side that sent nothing is not an anomaly (a refused or one-sided capture).
            if !bytes.is_empty() {
                anomalies.push(banner_err[(e == banner::BannerError::Malformed) as usize]);
            }
            return s;
        }
    };
    let v1_only = b.speaks_v1() && b.proto != "1.99";
    s.banner = Some(b);
    if v1_only {
        // SSH-1 has no KEXINIT (its key exchange is SSH_SMSG_PUBLIC_KEY).
        return s;
    }
    match kexinit::parse(&bytes[end..]) {
        Ok(k) => s.kexinit = Some(k),
        // A head that ends right after the banner (the peer saw the other banner and quit).
        Err(kexinit::KexError::Truncated) if end == bytes.len() => {}
        Err(e) => anomalies.push(
            kex_err[match e {
                kexinit::KexError::Truncated => 0,
                kexinit::KexError::Oversized => 1,
                kexinit::KexError::NameListOversized => 2,
                kexinit::KexError::Malformed => 3,
            }],
        ),
    }
    s
}

#[cfg(test)]
mod tests;
