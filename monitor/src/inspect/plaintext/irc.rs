//! Inspect, plaintext, IRC: the `tls` capability in a `CAP LS` reply (the IRCv3 STARTTLS
//! offer), the client's `STARTTLS` and the server's 670 (RPL_STARTTLS) or 691 (ERR_STARTTLS),
//! `PASS` and SASL `AUTHENTICATE PLAIN` in clear. Zeek follows IRC through STARTTLS too.
//! Must never keep a nick, a user or host name, a channel, a password or a message.
use super::facts::{Credential, Protocol, Session};
use super::lines::{is, is_any, split, upgrade_walk, word, Step};

/// Client commands that identify IRC when they open the session.
const OPENERS: &[&str] = &["CAP", "NICK", "USER", "PASS", "STARTTLS"];
/// Commands that do not count as going on in clear after the offer.
const HARMLESS: &[&str] = &["CAP", "STARTTLS", "QUIT", "PING", "PONG"];
/// The IRC ports (6667 clear, 6697 implicit TLS).
const PORTS: [u16; 2] = [6667, 6697];

/// A server line `:prefix COMMAND …`: its command (a numeric or a word).
fn server_command(line: &[u8]) -> Option<&[u8]> {
    if line.first() != Some(&b':') {
        return None;
    }
    Some(word(line, 1)).filter(|w| !w.is_empty())
}

fn is_numeric(w: &[u8], n: &str) -> bool {
    w == n.as_bytes()
}

/// Does a `CAP … LS` reply list the `tls` capability (`tls` or `tls=…` in the trailing list)?
fn offers_tls(line: &[u8]) -> bool {
    if !server_command(line).is_some_and(|c| is(c, "CAP")) || !is(word(line, 3), "LS") {
        return false;
    }
    let Some(colon) = line[1..].iter().position(|&b| b == b':') else { return false };
    line[colon + 2..]
        .split(|&b| b == b' ')
        .any(|cap| cap.split(|&b| b == b'=').next().is_some_and(|name| name.eq_ignore_ascii_case(b"tls")))
}

pub(super) fn detect(client: &[u8], server: &[u8], port: u16) -> Option<Session> {
    let c = split(client);
    let s = split(server);
    let server_says = s.first().and_then(|l| server_command(l)).is_some_and(|cmd| {
        (cmd.len() == 3 && cmd.iter().all(u8::is_ascii_digit)) || is_any(cmd, &["NOTICE", "CAP", "PING"])
    });
    let client_opens = c.first().is_some_and(|l| is_any(word(l, 0), OPENERS));
    let irc = if s.is_empty() {
        client_opens && PORTS.contains(&port)
    } else {
        server_says && (client_opens || c.is_empty())
    };
    if !irc {
        return None;
    }
    let offered = s.iter().any(|l| offers_tls(l));
    let answer = s.iter().filter_map(|l| server_command(l)).find_map(|cmd| {
        if is_numeric(cmd, "670") {
            Some(true)
        } else if is_numeric(cmd, "691") {
            Some(false)
        } else {
            None
        }
    });
    let (starttls, credentials) = upgrade_walk(
        &c,
        offered,
        HARMLESS,
        |_| offered,
        |_, line| {
            let verb = word(line, 0);
            if is(verb, "STARTTLS") {
                return Step::Upgrade(answer);
            }
            let credential = match () {
                _ if is(verb, "PASS") && !word(line, 1).is_empty() => Some(Credential::IrcPass),
                _ if is(verb, "AUTHENTICATE") && is(word(line, 1), "PLAIN") => Some(Credential::IrcSaslPlain),
                _ => None,
            };
            Step::Command(verb, credential)
        },
    );
    Some(Session { protocol: Protocol::Irc, starttls, credentials })
}

#[cfg(test)]
mod tests {
    use super::super::facts::StartTls;
    use super::*;

    const CAP_LS: &[u8] = b":irc.lab.test NOTICE * :*** Looking up your hostname...\r\n\
:irc.lab.test CAP * LS :cap-notify multi-prefix sasl=PLAIN tls\r\n";

    #[test]
    fn starttls_accepted_and_refused() {
        let s =
            [CAP_LS, b":irc.lab.test 670 * :STARTTLS successful, go ahead with TLS handshake\r\n\x16\x03\x03"].concat();
        let r = detect(b"CAP LS 302\r\nSTARTTLS\r\n\x16\x03\x01\x02\x00", &s, 6667).unwrap();
        assert_eq!(r.protocol, Protocol::Irc);
        assert_eq!(
            r.starttls,
            StartTls { offered: true, requested: true, accepted: Some(true), cleartext_after_offer: false }
        );
        let s = b":irc.lab.test 691 * :STARTTLS failure\r\n";
        let r = detect(b"STARTTLS\r\nNICK fakenick\r\n", s, 6667).unwrap();
        assert_eq!(r.starttls.accepted, Some(false));
        assert!(r.starttls.requested && !r.starttls.offered);
    }

    #[test]
    fn offered_but_registered_in_clear_with_credentials() {
        let c = b"CAP LS 302\r\nPASS FakePass1\r\nNICK fakenick\r\nUSER fakeuser 0 * :Fake Name\r\n\
CAP REQ :sasl\r\nAUTHENTICATE PLAIN\r\nAUTHENTICATE AEZBS0UtVVNFUjAxAEZha2VQYXNzMQ==\r\nCAP END\r\n";
        let r = detect(c, CAP_LS, 9999).unwrap();
        assert_eq!(
            r.starttls,
            StartTls { offered: true, requested: false, accepted: None, cleartext_after_offer: true }
        );
        assert_eq!(r.credentials, vec![Credential::IrcPass, Credential::IrcSaslPlain]);
        let all = format!("{r:?}");
        assert!(!all.contains("Fake") && !all.contains("fake") && !all.contains("AEZB"), "{all}");
    }

    #[test]
    fn no_offer_and_not_irc() {
        let r = detect(b"NICK a\r\nUSER a 0 * :a\r\n", b":srv 001 a :Welcome\r\n", 6667).unwrap();
        assert_eq!(r.starttls, StartTls::default());
        // Not IRC: SMTP, FTP, a bare STARTTLS off the IRC ports with no server line.
        assert!(detect(b"EHLO x\r\nSTARTTLS\r\n", b"220 mx ESMTP\r\n", 25).is_none());
        assert!(detect(b"USER a\r\n", b"220 ftp\r\n", 21).is_none());
        assert!(detect(b"STARTTLS\r\n", b"", 25).is_none());
        assert!(detect(b"", b"", 6667).is_none());
    }
}
