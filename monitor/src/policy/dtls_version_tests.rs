//! DTLS versions are judged as the TLS versions they derive from (RFC 6347, RFC 9147): DTLS 1.0
//! (TLS 1.1's) is deprecated by RFC 8996 like TLS 1.1, DTLS 1.2 passes, a client offering
//! only DTLS 1.0 is legacy-only, and DTLS 1.2 chosen over an offered 1.3 is noted.
use super::{Policy, Profile};
use crate::inspect::tls::hello::{ClientHello, ServerHello};
use crate::observation::Handshake;

fn ids(client: u16, offered: &[u16], server: u16, profile: Profile) -> Vec<&'static str> {
    let ch = ClientHello { version: client, supported_versions: offered.to_vec(), ..Default::default() };
    let sh = ServerHello { version: server, cipher: 0xc02f, ..Default::default() };
    let hs = Handshake { client_hello: Some(ch), server_hello: Some(sh), ..Default::default() };
    let p = Policy { profile, ..Policy::default() };
    let mut v: Vec<&str> = p.evaluate(&hs).iter().map(|f| f.id).filter(|id| id.starts_with("tls.version")).collect();
    v.sort_unstable();
    v
}

#[test]
fn dtls_versions_are_judged_like_their_tls_versions() {
    let p = Profile::Hipaa;
    assert_eq!(ids(0xfeff, &[], 0xfeff, p), ["tls.version.client-legacy-only", "tls.version.deprecated"]);
    assert_eq!(ids(0xfefd, &[], 0xfefd, p), Vec::<&str>::new());
    assert_eq!(ids(0xfefd, &[0xfefc, 0xfefd], 0xfefd, p), ["tls.version.no-tls13"]);
    // TLS 1.1 for comparison: the same verdict as DTLS 1.0.
    assert_eq!(ids(0x0302, &[], 0x0302, p), ids(0xfeff, &[], 0xfeff, p));
}

#[test]
fn dtls_versions_are_named() {
    use crate::inspect::names::{version_name, version_parts};
    assert_eq!(version_parts(0xfeff), Some(("dtls", "1.0")));
    assert_eq!(version_parts(0xfefd), Some(("dtls", "1.2")));
    assert_eq!(version_parts(0xfefc), Some(("dtls", "1.3")));
    assert_eq!(version_name(0xfeff), "DTLS 1.0");
}
