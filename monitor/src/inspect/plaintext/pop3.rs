//! Inspect, plaintext, POP3: STLS in a CAPA reply, the request and its answer, USER/PASS and
//! APOP in clear. Must never keep a user name, a password, a digest or a message line.
use super::facts::{Credential, StartTls};
use super::lines::{is, upgrade_walk, word, Step};
use super::scan::starts_ci;

/// Commands that do not count as going on in clear after the offer.
const HARMLESS: &[&str] = &["CAPA", "STLS", "QUIT", "NOOP"];

/// A status line: a reply to one client line (`+ ` is a SASL continuation).
fn status(l: &[u8]) -> Option<bool> {
    if starts_ci(l, b"+OK") {
        Some(true)
    } else if starts_ci(l, b"-ERR") {
        Some(false)
    } else if l.starts_with(b"+ ") || l == b"+" {
        Some(true)
    } else {
        None
    }
}

pub(super) fn analyse(c: &[&[u8]], s: &[&[u8]]) -> (StartTls, Vec<Credential>) {
    // Status replies in order: 0 is the greeting, client line i gets reply i + 1.
    let mut replies: Vec<bool> = Vec::new();
    let mut offer: Option<usize> = None;
    for l in s {
        if let Some(ok) = status(l) {
            replies.push(ok);
        } else if offer.is_none() && is(l.trim_ascii(), "STLS") {
            offer = Some(replies.len().saturating_sub(1));
        }
    }
    let mut user = false;
    upgrade_walk(
        c,
        offer.is_some(),
        HARMLESS,
        |i| offer.is_some_and(|r| i >= r),
        |i, line| {
            let verb = word(line, 0);
            if is(verb, "STLS") {
                return Step::Upgrade(replies.get(i + 1).copied());
            }
            user |= is(verb, "USER");
            let credential = if is(verb, "PASS") && user {
                Some(Credential::Pop3UserPass)
            } else if is(verb, "APOP") {
                Some(Credential::Pop3Apop)
            } else {
                None
            };
            Step::Command(verb, credential)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::super::lines::split;
    use super::*;

    const CAPA: &[u8] = b"+OK POP3 ready\r\n+OK Capability list follows\r\nUSER\r\nSTLS\r\nUIDL\r\n.\r\n";

    fn run(c: &[u8], s: &[u8]) -> (StartTls, Vec<Credential>) {
        analyse(&split(c), &split(s))
    }

    #[test]
    fn offered_and_upgraded() {
        let mut s = CAPA.to_vec();
        s.extend_from_slice(b"+OK Begin TLS\r\n");
        let (st, cr) = run(b"CAPA\r\nSTLS\r\n\x16\x03\x01", &s);
        assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false });
        assert!(cr.is_empty());
    }

    #[test]
    fn offered_then_user_pass() {
        let mut s = CAPA.to_vec();
        s.extend_from_slice(b"+OK\r\n+OK logged in\r\n");
        let (st, cr) = run(b"CAPA\r\nUSER FAKE-USER01\r\nPASS FakePass1\r\n", &s);
        assert_eq!(st, StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true });
        assert_eq!(cr, vec![Credential::Pop3UserPass]);
    }

    #[test]
    fn refused_apop_and_not_offered() {
        let mut s = CAPA.to_vec();
        s.extend_from_slice(b"-ERR not now\r\n+OK\r\n");
        let (st, cr) = run(b"CAPA\r\nSTLS\r\nAPOP fakeuser c4c9334bac560ecc979e58001b3e22fb\r\n", &s);
        assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(false), cleartext_after_offer: true });
        assert_eq!(cr, vec![Credential::Pop3Apop]);
        let (st, cr) = run(b"PASS x\r\n", b"+OK ready\r\n");
        assert_eq!(st, StartTls::default());
        assert!(cr.is_empty(), "PASS without USER");
    }
}
