//! Policy rules for SSH sessions (issue 16): protocol 1, weak key exchange, cipher, MAC and host
//! key algorithms, pre-authentication compression, post-quantum hybrids, malformed handshakes.
//! One small fn per family; the per-profile parameters live in `tables.rs`. Evidence names
//! algorithm names and versions only (both are in clear and carry no user data).
use super::catalogue::entry;
use super::rules::{push, raise};
use super::tables::{ssh_table, SshTable};
use super::{rule, Finding, Policy, Severity};
use crate::inspect::ssh::{kex_weak, Negotiated, SshFacts, PQ_HYBRID_KEX};

pub(super) fn all(p: &Policy, f: &SshFacts, out: &mut Vec<Finding>) {
    let t = ssh_table(p.profile);
    version(p, f, out);
    let n = f.negotiated.as_ref();
    key_exchange(p, t, f, out);
    if let Some(n) = n {
        cipher(p, t, n, out);
        mac(p, t, n, out);
        host_key(p, t, n, out);
        compression(p, n, out);
        pq(p, n, out);
    }
    if !f.anomalies.is_empty() {
        let evidence = format!("SSH handshake: {}", f.anomalies.join(", "));
        raise(out, entry!("anomaly.ssh-malformed"), rule!(p.profile, "ssh-well-formed"), evidence);
    }
}

/// A server that speaks SSH-1 (`1.x`, or `1.99`: both), or a client that speaks only SSH-1.
fn version(p: &Policy, f: &SshFacts, out: &mut Vec<Finding>) {
    let e = entry!("ssh.version.v1");
    let r = rule!(p.profile, "ssh-no-v1");
    if let Some(b) = f.server.banner.as_ref().filter(|b| b.speaks_v1()) {
        raise(out, e, r, format!("server identifies as SSH-{} ({})", b.proto, b.software));
    } else if let Some(b) = f.client.banner.as_ref().filter(|b| b.speaks_v1() && b.proto != "1.99") {
        raise(out, e, r, format!("client speaks SSH-{} ({})", b.proto, b.software));
    }
}

/// The negotiated kex when weak (RFC 9142 §4) or outside the profile's list; else the weak
/// ones the server still offers, at the profile's severity.
fn key_exchange(p: &Policy, t: &SshTable, f: &SshFacts, out: &mut Vec<Finding>) {
    let e = entry!("ssh.kex.weak");
    let kex = f.negotiated.as_ref().and_then(|n| n.kex.as_deref());
    if let Some(k) = kex {
        if kex_weak(k) {
            return raise(out, e, rule!(p.profile, "ssh-kex"), format!("negotiated {k} (RFC 9142)"));
        }
        if t.kex.is_some_and(|l| !l.contains(&k)) {
            let evidence = format!("negotiated {k}, not in the {} list", p.profile.name());
            return push(out, e, Severity::Medium, rule!(p.profile, "ssh-kex"), evidence);
        }
    }
    let Some(sev) = t.kex_offered else { return };
    let Some(server) = &f.server.kexinit else { return };
    let offered: Vec<&str> = server.kex.iter().map(String::as_str).filter(|k| kex_weak(k)).collect();
    if !offered.is_empty() {
        let evidence = format!("server offers {} (not negotiated)", offered.join(", "));
        push(out, e, sev, rule!(p.profile, "ssh-kex-offered"), evidence);
    }
}

/// A cipher broken or weak in either direction: none (critical), RC4 (RFC 8758), 3DES, Blowfish,
/// CAST, any CBC mode (RFC 9142 / SP 800-131A); else outside the profile's list.
fn cipher(p: &Policy, t: &SshTable, n: &Negotiated, out: &mut Vec<Finding>) {
    let e = entry!("ssh.cipher.weak");
    let used = directions(n.cipher_c2s.as_deref(), n.cipher_s2c.as_deref());
    let weak: Vec<&str> = used.iter().copied().filter(|c| cipher_weak(c)).collect();
    if !weak.is_empty() {
        let sev = if weak.contains(&"none") { Severity::Critical } else { e.severity };
        return push(out, e, sev, rule!(p.profile, "ssh-cipher"), format!("negotiated {}", weak.join(", ")));
    }
    if let Some(list) = t.ciphers {
        let outside: Vec<&str> = used.into_iter().filter(|c| !list.contains(c)).collect();
        if !outside.is_empty() {
            let evidence = format!("negotiated {}, not in the {} list", outside.join(", "), p.profile.name());
            push(out, e, Severity::Medium, rule!(p.profile, "ssh-cipher"), evidence);
        }
    }
}

pub(super) fn cipher_weak(c: &str) -> bool {
    c == "none"
        || c.starts_with("arcfour")
        || c.starts_with("3des")
        || c.starts_with("blowfish")
        || c.starts_with("cast128")
        || c.ends_with("-cbc")
        || c.contains("-cbc@")
}

/// A MAC weak in either direction: MD5, truncated (`-96`), 64-bit UMAC, none (high); SHA-1 as
/// the profile says; else outside the profile's list. None when the cipher is AEAD.
fn mac(p: &Policy, t: &SshTable, n: &Negotiated, out: &mut Vec<Finding>) {
    let e = entry!("ssh.mac.weak");
    let used = directions(n.mac_c2s.as_deref(), n.mac_s2c.as_deref());
    let weak: Vec<&str> = used.iter().copied().filter(|m| mac_weak(m)).collect();
    if !weak.is_empty() {
        return push(out, e, e.severity, rule!(p.profile, "ssh-mac"), format!("negotiated {}", weak.join(", ")));
    }
    let sha1: Vec<&str> = used.iter().copied().filter(|m| m.starts_with("hmac-sha1")).collect();
    if let (Some(sev), false) = (t.sha1_mac, sha1.is_empty()) {
        return push(out, e, sev, rule!(p.profile, "ssh-mac-sha1"), format!("negotiated {}", sha1.join(", ")));
    }
    if let Some(list) = t.macs {
        let outside: Vec<&str> = used.into_iter().filter(|m| !list.contains(m)).collect();
        if !outside.is_empty() {
            let evidence = format!("negotiated {}, not in the {} list", outside.join(", "), p.profile.name());
            push(out, e, Severity::Medium, rule!(p.profile, "ssh-mac"), evidence);
        }
    }
}

pub(super) fn mac_weak(m: &str) -> bool {
    m == "none" || m.starts_with("hmac-md5") || m.starts_with("umac-64") || m.contains("-96")
}

/// DSA host keys (1024-bit, withdrawn by FIPS 186-5): high; `ssh-rsa` (SHA-1 signatures,
/// RFC 8332 / SP 800-131A): as the profile says.
fn host_key(p: &Policy, t: &SshTable, n: &Negotiated, out: &mut Vec<Finding>) {
    let Some(hk) = n.host_key.as_deref() else { return };
    let e = entry!("ssh.hostkey.weak");
    let sev = if hk.starts_with("ssh-dss") {
        e.severity
    } else if hk == "ssh-rsa" || hk == "ssh-rsa-cert-v01@openssh.com" {
        t.ssh_rsa
    } else {
        return;
    };
    push(out, e, sev, rule!(p.profile, "ssh-host-key"), format!("negotiated {hk}"));
}

/// Plain `zlib` compresses from the first NEWKEYS, before user authentication: an
/// unauthenticated peer reaches the server's decompressor (why sshd dropped pre-auth
/// compression in OpenSSH 7.4). `zlib@openssh.com` waits for authentication and is not a
/// finding. Low: length side channels on compressed interactive SSH are not a known attack.
fn compression(p: &Policy, n: &Negotiated, out: &mut Vec<Finding>) {
    let used = directions(n.compression_c2s.as_deref(), n.compression_s2c.as_deref());
    if used.contains(&"zlib") {
        let evidence = "negotiated zlib (compression before authentication)".to_string();
        raise(out, entry!("ssh.compression"), rule!(p.profile, "ssh-no-preauth-compression"), evidence);
    }
}

/// Good news: a post-quantum hybrid key exchange.
fn pq(p: &Policy, n: &Negotiated, out: &mut Vec<Finding>) {
    if let Some(k) = n.kex.as_deref().filter(|k| PQ_HYBRID_KEX.contains(k)) {
        raise(out, entry!("ssh.pq-hybrid"), rule!(p.profile, "ssh-pq-hybrid"), format!("negotiated {k}"));
    }
}

/// The algorithms of both directions, once each.
fn directions<'a>(c2s: Option<&'a str>, s2c: Option<&'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = c2s.into_iter().collect();
    if let Some(s) = s2c.filter(|s| Some(*s) != c2s) {
        v.push(s);
    }
    v
}

#[cfg(test)]
mod tests;
