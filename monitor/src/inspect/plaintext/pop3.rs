//! Inspect, plaintext, POP3: STLS in a CAPA reply, the request and its answer, USER/PASS and
//! APOP in clear. Must never keep a user name, a password, a digest or a message line.
use super::lines::{is, is_any, word};
use super::{push_distinct, starts_ci, Credential, StartTls};

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
    let mut st = StartTls { offered: offer.is_some(), ..StartTls::default() };
    let mut creds = Vec::new();
    let mut user = false;
    for (i, line) in c.iter().enumerate() {
        let verb = word(line, 0);
        if is(verb, "STLS") {
            st.requested = true;
            match replies.get(i + 1) {
                Some(true) => {
                    st.accepted = Some(true);
                    break; // TLS follows
                }
                Some(false) => st.accepted = Some(false),
                None => {}
            }
            continue;
        }
        if is(verb, "USER") {
            user = true;
        } else if is(verb, "PASS") && user {
            push_distinct(&mut creds, Credential::Pop3UserPass);
        } else if is(verb, "APOP") {
            push_distinct(&mut creds, Credential::Pop3Apop);
        }
        if !is_any(verb, HARMLESS) && offer.is_some_and(|r| i >= r) {
            st.cleartext_after_offer = true;
        }
    }
    (st, creds)
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
