//! Inspect, plaintext, SMTP: STARTTLS offer (EHLO reply), request and answer, AUTH in clear.
//! Must never keep an address, a host name, an AUTH argument or a line of message data.
use super::facts::{Credential, StartTls};
use super::lines::{is, is_any, replies, upgrade_walk, word, Step};

/// Commands that do not count as going on in clear after the offer.
const HARMLESS: &[&str] = &["EHLO", "HELO", "LHLO", "STARTTLS", "QUIT", "NOOP", "RSET"];

pub(super) fn analyse(c: &[&[u8]], s: &[&[u8]]) -> (StartTls, Vec<Credential>) {
    let reps = replies(s);
    // Reply 0 is the greeting; client command i gets reply i + greeting.
    let greeting = usize::from(reps.first().is_some_and(|r| r.code == 220));
    let offer = reps.iter().position(|r| {
        r.code == 250
            && s.get(r.first..r.end).unwrap_or_default().iter().any(|l| {
                l.len() > 4 && matches!(l[3], b'-' | b' ') && l[4..].trim_ascii().eq_ignore_ascii_case(b"STARTTLS")
            })
    });
    let after_offer = |i: usize| offer.is_some_and(|r| i + greeting > r);
    upgrade_walk(c, offer.is_some(), HARMLESS, after_offer, |i, line| {
        let verb = word(line, 0);
        if is_any(verb, &["DATA", "BDAT"]) {
            return Step::Data;
        }
        if is(verb, "STARTTLS") {
            return Step::Upgrade(match reps.get(i + greeting).map(|r| r.code) {
                Some(220) => Some(true),
                Some(c) if c >= 400 => Some(false),
                _ => None,
            });
        }
        let mech = word(line, 1);
        let credential = match () {
            _ if !is(verb, "AUTH") => None,
            _ if is(mech, "PLAIN") => Some(Credential::SmtpAuthPlain),
            _ if is(mech, "LOGIN") => Some(Credential::SmtpAuthLogin),
            _ => None,
        };
        Step::Command(verb, credential)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::lines::split;
    use super::*;

    pub(in super::super) const EHLO_REPLY: &[u8] =
        b"220 mx.example.test ESMTP\r\n250-mx.example.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n";

    fn run(c: &[u8], s: &[u8]) -> (StartTls, Vec<Credential>) {
        analyse(&split(c), &split(s))
    }

    #[test]
    fn offered_and_upgraded() {
        let mut s = EHLO_REPLY.to_vec();
        s.extend_from_slice(b"220 2.0.0 Ready to start TLS\r\n\x16\x03\x03\x00\x50");
        let (st, cr) = run(b"EHLO client.test\r\nSTARTTLS\r\n\x16\x03\x01\x02\x00\x01", &s);
        assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false });
        assert!(cr.is_empty());
    }

    #[test]
    fn offered_but_cleartext_with_auth() {
        let mut s = EHLO_REPLY.to_vec();
        s.extend_from_slice(b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n235 ok\r\n250 ok\r\n");
        let c = b"EHLO client.test\r\nAUTH LOGIN\r\nRkFLRS1VU0VS\r\nRkFLRS1QQVNT\r\nMAIL FROM:<zztest@example.test>\r\nAUTH PLAIN AGZha2UAcGFzcw==\r\n";
        let (st, cr) = run(c, &s);
        assert_eq!(st, StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true });
        assert_eq!(cr, vec![Credential::SmtpAuthLogin, Credential::SmtpAuthPlain]);
    }

    #[test]
    fn refused_and_not_offered() {
        let mut s = EHLO_REPLY.to_vec();
        s.extend_from_slice(b"454 4.7.0 TLS not available\r\n250 ok\r\n");
        let (st, _) = run(b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<a@b>\r\n", &s);
        assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(false), cleartext_after_offer: true });
        let (st, _) = run(b"HELO c\r\nMAIL FROM:<a@b>\r\nQUIT\r\n", b"220 mx ESMTP\r\n250 hi\r\n250 ok\r\n");
        assert_eq!(st, StartTls::default());
    }
}
