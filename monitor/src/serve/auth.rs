//! HTTP endpoint stage, basic auth: the `--listen-auth-file` credentials (kept as SHA-256
//! digests) and the check of a request's `Authorization` header. Must never log, return or keep
//! a password, nor read a file others can read.
use std::path::Path;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::ServeError;

/// Basic-auth credentials, kept as SHA-256 of `user:password` so every comparison is 32 bytes.
pub(super) struct Auth {
    digests: Vec<[u8; 32]>,
}

pub(super) fn load_auth(path: &Path) -> Result<Auth, ServeError> {
    use std::io::Read as _;
    use std::os::unix::fs::PermissionsExt as _;
    let read_err = |source| ServeError::Read { flag: "--listen-auth-file", path: path.into(), source };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mode = file.metadata().map_err(read_err)?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(ServeError::AuthMode { path: path.into(), mode: mode & 0o7777 });
    }
    let mut text = String::new();
    file.by_ref().take(1 << 20).read_to_string(&mut text).map_err(read_err)?;
    let entries =
        parse_auth(&text).map_err(|(line, reason)| ServeError::AuthLine { path: path.into(), line, reason })?;
    if entries.is_empty() {
        return Err(ServeError::AuthEmpty { path: path.into() });
    }
    Ok(Auth { digests: entries.iter().map(|(u, p)| Sha256::digest(format!("{u}:{p}")).into()).collect() })
}

/// Lines `user:password`; `#` comments and blank lines skipped. Errors name the line (1-based) and
/// never contain the password.
fn parse_auth(text: &str) -> Result<Vec<(&str, &str)>, (usize, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((user, password)) = line.split_once(':') else {
            return Err((i + 1, "expected `user:password`"));
        };
        if user.is_empty() || user.trim() != user {
            return Err((i + 1, "user name empty or with surrounding spaces"));
        }
        if password.is_empty() {
            return Err((i + 1, "empty password"));
        }
        if out.iter().any(|(u, _)| *u == user) {
            return Err((i + 1, "user listed twice"));
        }
        out.push((user, password));
    }
    Ok(out)
}

impl Auth {
    /// Checks an `Authorization` header against every entry without stopping early.
    pub(super) fn check(&self, value: &[u8]) -> bool {
        let Some(encoded) = value.get(..6).filter(|s| s.eq_ignore_ascii_case(b"basic ")).and(value.get(6..)) else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim_ascii()) else {
            return false;
        };
        let presented: [u8; 32] = Sha256::digest(&decoded).into();
        self.digests.iter().fold(false, |ok, d| ct_eq(&presented, d) | ok)
    }
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_file_lines() {
        let ok = parse_auth("# scrapers\n\nprom:s3cret:with:colons\r\n  # indented comment\nops:x\n").unwrap();
        assert_eq!(ok, vec![("prom", "s3cret:with:colons"), ("ops", "x")]);
        assert_eq!(parse_auth("# only\n\n").unwrap(), vec![]);
        assert_eq!(parse_auth("a:b\nnocolon-s3cret\n"), Err((2, "expected `user:password`")));
        assert_eq!(parse_auth(":pw\n").unwrap_err().0, 1);
        assert_eq!(parse_auth("a:b\n\nu:\n").unwrap_err(), (3, "empty password"));
        assert_eq!(parse_auth("a:b\na:c\n").unwrap_err(), (2, "user listed twice"));
        // The reason never carries the password.
        let (_, reason) = parse_auth("hunter2-without-colon\n").unwrap_err();
        assert!(!reason.contains("hunter2"));
    }

    #[test]
    fn auth_header_check() {
        let auth = Auth { digests: vec![Sha256::digest("a:b").into(), Sha256::digest("prom:pw:x").into()] };
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        assert!(auth.check(format!("Basic {}", b64("prom:pw:x")).as_bytes()));
        assert!(auth.check(format!("basic {}", b64("a:b")).as_bytes()));
        assert!(!auth.check(format!("Basic {}", b64("prom:pw")).as_bytes()));
        assert!(!auth.check(format!("Bearer {}", b64("a:b")).as_bytes()));
        assert!(!auth.check(b"Basic !!!"));
        assert!(!auth.check(b"Basic"));
    }
}
