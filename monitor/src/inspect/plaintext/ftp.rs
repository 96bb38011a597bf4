//! Inspect, plaintext, FTP control: AUTH TLS/SSL in a FEAT reply, the request and its 234
//! answer, USER/PASS in clear (anonymous excepted). Must never keep a user name, a password
//! or a path.
use super::facts::{Credential, StartTls};
use super::lines::{is, is_any, replies, upgrade_walk, word, Step};
use super::scan::{find_ci, starts_ci};

/// Commands that do not count as going on in clear after the offer.
const HARMLESS: &[&str] = &["FEAT", "AUTH", "QUIT", "NOOP", "SYST", "HELP", "OPTS"];
const TLS_MECHS: &[&str] = &["TLS", "SSL", "TLS-C", "TLS-P"];

fn offers(line: &[u8]) -> bool {
    let l = line.trim_ascii();
    starts_ci(l, b"AUTH ") && (find_ci(l, b"TLS").is_some() || find_ci(l, b"SSL").is_some())
}

pub(super) fn analyse(c: &[&[u8]], s: &[&[u8]]) -> (StartTls, Vec<Credential>) {
    let reps = replies(s);
    let greeting = usize::from(reps.first().is_some_and(|r| r.code == 220));
    let offer = reps
        .iter()
        .position(|r| r.code == 211 && s.get(r.first + 1..r.end).unwrap_or_default().iter().any(|l| offers(l)));
    let mut user: Option<bool> = None; // Some(anonymous?)
    let after_offer = |i: usize| offer.is_some_and(|r| i + greeting > r);
    upgrade_walk(c, offer.is_some(), HARMLESS, after_offer, |i, line| {
        let verb = word(line, 0);
        if is(verb, "AUTH") && is_any(word(line, 1), TLS_MECHS) {
            return Step::Upgrade(match reps.get(i + greeting).map(|r| r.code) {
                Some(234) => Some(true),
                Some(c) if c >= 400 => Some(false),
                _ => None,
            });
        }
        if is(verb, "USER") {
            user = Some(is_any(word(line, 1), &["anonymous", "ftp"]));
        }
        let credential = (is(verb, "PASS") && user == Some(false)).then_some(Credential::FtpUserPass);
        Step::Command(verb, credential)
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::lines::split;
    use super::*;

    pub(in super::super) const FEAT: &[u8] =
        b"220 FTP ready\r\n211-Features:\r\n MDTM\r\n AUTH TLS\r\n PBSZ\r\n211 End\r\n";

    fn run(c: &[u8], s: &[u8]) -> (StartTls, Vec<Credential>) {
        analyse(&split(c), &split(s))
    }

    #[test]
    fn offered_and_upgraded() {
        let mut s = FEAT.to_vec();
        s.extend_from_slice(b"234 AUTH TLS OK.\r\n");
        let (st, cr) = run(b"FEAT\r\nAUTH TLS\r\n\x16\x03\x01", &s);
        assert_eq!(st, StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false });
        assert!(cr.is_empty());
    }

    #[test]
    fn offered_then_user_pass() {
        let mut s = FEAT.to_vec();
        s.extend_from_slice(b"331 Password required\r\n230 Logged in\r\n");
        let (st, cr) = run(b"FEAT\r\nUSER FAKE-USER01\r\nPASS FakePass1\r\nRETR /fake/FAKE-MRN-0001.x12\r\n", &s);
        assert_eq!(st, StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true });
        assert_eq!(cr, vec![Credential::FtpUserPass]);
    }

    #[test]
    fn anonymous_refused_and_not_offered() {
        let (st, cr) = run(b"USER Anonymous\r\nPASS guest@\r\n", b"220 ready\r\n331 ok\r\n230 ok\r\n");
        assert_eq!(st, StartTls::default());
        assert!(cr.is_empty());
        let mut s = FEAT.to_vec();
        s.extend_from_slice(b"534 Policy forbids\r\n");
        let (st, _) = run(b"FEAT\r\nAUTH SSL\r\n", &s);
        assert_eq!(
            st,
            StartTls { offered: true, requested: true, accepted: Some(false), cleartext_after_offer: false }
        );
    }
}
