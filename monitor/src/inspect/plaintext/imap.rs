//! Inspect, plaintext, IMAP: STARTTLS in a CAPABILITY list, the tagged request and its answer,
//! LOGIN and AUTHENTICATE PLAIN in clear. Must never keep a tag argument, mailbox or message.
use super::facts::{Credential, StartTls};
use super::lines::{is, is_any, upgrade_walk, word, Step};
use super::scan::find_ci;

/// Commands that do not count as going on in clear after the offer.
const HARMLESS: &[&str] = &["CAPABILITY", "STARTTLS", "LOGOUT", "NOOP", "ID"];

/// Does an untagged server line list STARTTLS as a capability?
fn offers(line: &[u8]) -> bool {
    if !line.starts_with(b"* ") || find_ci(line, b"CAPABILITY").is_none() {
        return false;
    }
    line.split(|&b| matches!(b, b' ' | b'[' | b']')).any(|w| is(w, "STARTTLS"))
}

pub(super) fn analyse(c: &[&[u8]], s: &[&[u8]]) -> (StartTls, Vec<Credential>) {
    let offered = s.iter().any(|l| offers(l));
    upgrade_walk(
        c,
        offered,
        HARMLESS,
        |_| offered,
        |_, line| {
            let (tag, verb) = (word(line, 0), word(line, 1));
            if is(verb, "STARTTLS") {
                let answer = s.iter().find(|l| word(l, 0) == tag && is_any(word(l, 1), &["OK", "NO", "BAD"]));
                return Step::Upgrade(answer.map(|l| is(word(l, 1), "OK")));
            }
            let credential = if is(verb, "LOGIN") {
                Some(Credential::ImapLogin)
            } else if is(verb, "AUTHENTICATE") && is(word(line, 2), "PLAIN") {
                Some(Credential::ImapAuthenticatePlain)
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

    const GREETING: &[u8] = b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n";

    fn run(c: &[u8], s: &[u8]) -> (StartTls, Vec<Credential>) {
        analyse(&split(c), &split(s))
    }

    #[test]
    fn offered_and_upgraded() {
        let mut s = GREETING.to_vec();
        s.extend_from_slice(b"a1 OK Begin TLS negotiation now\r\n\x16\x03\x03");
        let (st, cr) = run(b"a1 STARTTLS\r\n\x16\x03\x01", &s);
        assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false });
        assert!(cr.is_empty());
    }

    #[test]
    fn offered_in_capability_reply_then_login() {
        let s = b"* OK ready\r\n* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\na1 OK done\r\na2 OK logged in\r\n";
        let (st, cr) = run(b"a1 CAPABILITY\r\na2 LOGIN FAKE-USER01 FakePass1\r\na3 AUTHENTICATE PLAIN\r\n", s);
        assert_eq!(st, StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true });
        assert_eq!(cr, vec![Credential::ImapLogin, Credential::ImapAuthenticatePlain]);
    }

    #[test]
    fn refused_and_not_offered() {
        let s = b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\nx BAD not now\r\n";
        let (st, _) = run(b"x STARTTLS\r\n", s);
        assert_eq!(
            st,
            StartTls { offered: true, requested: true, accepted: Some(false), cleartext_after_offer: false }
        );
        let (st, cr) = run(b"a1 LOGIN u p\r\n", b"* OK [CAPABILITY IMAP4rev1] ready\r\na1 OK\r\n");
        assert_eq!(st, StartTls::default());
        assert_eq!(cr, vec![Credential::ImapLogin]);
    }
}
