//! Inspect, plaintext, line protocols: splits the text heads of SMTP, IMAP, POP3 and FTP into
//! lines, groups numbered replies and picks the protocol. Must never return any part of a
//! line: commands are matched against closed sets and arguments are never kept.
use super::facts::{push_distinct, Credential, Protocol, Session, StartTls};
use super::scan::starts_ci;
use super::{ftp, imap, pop3, smtp};

/// Most lines looked at per direction.
const MAX_LINES: usize = 256;

/// Complete text lines (line end stripped), up to the first line that is not text (a TLS
/// record after an upgrade, binary data).
pub(super) fn split(buf: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = buf;
    while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
        let mut line = &rest[..nl];
        if let Some((&b'\r', head)) = line.split_last() {
            line = head;
        }
        if line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) || out.len() >= MAX_LINES {
            break;
        }
        out.push(line);
        rest = &rest[nl + 1..];
    }
    out
}

/// The `n`th space-separated word of a line (empty when absent).
pub(super) fn word(line: &[u8], n: usize) -> &[u8] {
    line.split(|&b| b == b' ').filter(|w| !w.is_empty()).nth(n).unwrap_or_default()
}

pub(super) fn is(w: &[u8], name: &str) -> bool {
    w.eq_ignore_ascii_case(name.as_bytes())
}

pub(super) fn is_any(w: &[u8], names: &[&str]) -> bool {
    names.iter().any(|n| is(w, n))
}

/// What one client line of a mail or FTP session is, for [`upgrade_walk`].
pub(super) enum Step<'a> {
    /// The upgrade request (STARTTLS, STLS, AUTH TLS) and the server's answer to it: accepted,
    /// refused, or none seen.
    Upgrade(Option<bool>),
    /// Message data follows (SMTP DATA/BDAT): nothing after it is a command.
    Data,
    /// Any other command: its verb, and the credential it sends in clear, if any.
    Command(&'a [u8], Option<Credential>),
}

/// The request → reply → upgrade walk every STARTTLS protocol shares. `offered` says whether
/// the server offered the upgrade; `after_offer(i)` whether client line `i` came after that
/// offer; `step` names what each client line is. A command outside `harmless` after the offer
/// means the session went on in clear; an accepted upgrade ends the walk (TLS follows).
pub(super) fn upgrade_walk<'a>(
    c: &[&'a [u8]],
    offered: bool,
    harmless: &[&str],
    after_offer: impl Fn(usize) -> bool,
    mut step: impl FnMut(usize, &'a [u8]) -> Step<'a>,
) -> (StartTls, Vec<Credential>) {
    let mut st = StartTls { offered, ..StartTls::default() };
    let mut creds = Vec::new();
    for (i, line) in c.iter().enumerate() {
        match step(i, line) {
            Step::Upgrade(answer) => {
                st.requested = true;
                if answer.is_some() {
                    st.accepted = answer;
                }
                if answer == Some(true) {
                    break;
                }
            }
            Step::Data => {
                st.cleartext_after_offer |= after_offer(i);
                break;
            }
            Step::Command(verb, credential) => {
                if let Some(cred) = credential {
                    push_distinct(&mut creds, cred);
                }
                st.cleartext_after_offer |= !is_any(verb, harmless) && after_offer(i);
            }
        }
    }
    (st, creds)
}

/// A numbered reply (SMTP, FTP): code and the range of its lines.
pub(super) struct Reply {
    pub code: u16,
    pub first: usize,
    pub end: usize,
}

fn code(line: &[u8]) -> Option<(u16, Option<u8>)> {
    let d = line.get(..3)?;
    if !d.iter().all(u8::is_ascii_digit) || d[0] == b'0' {
        return None;
    }
    let c = d.iter().fold(0u16, |a, &b| a * 10 + u16::from(b - b'0'));
    Some((c, line.get(3).copied()))
}

/// Group numbered replies: `xyz-` opens a multi-line reply that the next `xyz ` line closes
/// (lines in between may be anything, as in an FTP FEAT reply). Stops at a non-reply line.
pub(super) fn replies(lines: &[&[u8]]) -> Vec<Reply> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&line) = lines.get(i) {
        let Some((c, next)) = code(line) else { break };
        let mut end = i + 1;
        if next == Some(b'-') {
            while let Some(&l) = lines.get(end) {
                end += 1;
                if code(l).is_some_and(|(c2, n)| c2 == c && n != Some(b'-')) {
                    break;
                }
            }
        }
        out.push(Reply { code: c, first: i, end });
        i = end;
    }
    out
}

const SMTP_VERBS: &[&str] = &["EHLO", "HELO", "LHLO", "MAIL", "RCPT", "STARTTLS", "DATA", "VRFY", "EXPN"];
const FTP_VERBS: &[&str] = &[
    "USER", "PASS", "FEAT", "PASV", "EPSV", "SYST", "TYPE", "PWD", "CWD", "RETR", "STOR", "LIST", "NLST", "PORT",
    "EPRT", "OPTS", "SITE", "PBSZ", "PROT",
];
const POP3_VERBS: &[&str] = &["CAPA", "STLS", "APOP", "UIDL", "TOP", "STAT"];
const IMAP_VERBS: &[&str] =
    &["CAPABILITY", "LOGIN", "STARTTLS", "AUTHENTICATE", "ID", "NOOP", "LOGOUT", "SELECT", "EXAMINE"];

/// Which protocol the first client command names, if it is decisive.
fn by_client(c: &[&[u8]], port: u16) -> Option<Protocol> {
    let first = c.first()?;
    let (w0, w1) = (word(first, 0), word(first, 1));
    if is(w0, "AUTH") {
        return if is_any(w1, &["TLS", "SSL", "TLS-C", "TLS-P"]) { Some(Protocol::Ftp) } else { None };
    }
    if is_any(w0, SMTP_VERBS) {
        return Some(Protocol::Smtp);
    }
    if is_any(w0, POP3_VERBS) {
        return Some(Protocol::Pop3);
    }
    if is(w0, "USER") && matches!(port, 110 | 995) {
        return Some(Protocol::Pop3);
    }
    if is_any(w0, FTP_VERBS) {
        return Some(Protocol::Ftp);
    }
    let tag_ok = !w0.is_empty() && w0.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'.');
    if tag_ok && is_any(w1, IMAP_VERBS) {
        return Some(Protocol::Imap);
    }
    None
}

fn by_port(port: u16) -> Option<Protocol> {
    match port {
        25 | 465 | 587 | 2525 => Some(Protocol::Smtp),
        21 | 990 => Some(Protocol::Ftp),
        143 | 993 => Some(Protocol::Imap),
        110 | 995 => Some(Protocol::Pop3),
        _ => None,
    }
}

fn classify(c: &[&[u8]], s: &[&[u8]], port: u16) -> Option<Protocol> {
    let Some(&greeting) = s.first() else { return by_client(c, port) };
    if starts_ci(greeting, b"* OK") || starts_ci(greeting, b"* PREAUTH") || starts_ci(greeting, b"* BYE") {
        return Some(Protocol::Imap);
    }
    if starts_ci(greeting, b"+OK") {
        return Some(Protocol::Pop3);
    }
    if !matches!(code(greeting), Some((220, Some(b' ' | b'-')))) {
        return None;
    }
    // SMTP and FTP both greet with 220: the client's commands, the replies, the port, the text.
    if let Some(p) = by_client(c, port).filter(|p| matches!(p, Protocol::Smtp | Protocol::Ftp)) {
        return Some(p);
    }
    for r in replies(s) {
        match r.code {
            250 => return Some(Protocol::Smtp),
            211 | 230 | 331 | 234 => return Some(Protocol::Ftp),
            _ => {}
        }
    }
    if let Some(p) = by_port(port).filter(|p| matches!(p, Protocol::Smtp | Protocol::Ftp)) {
        return Some(p);
    }
    if super::scan::find_ci(greeting, b"SMTP").is_some() {
        Some(Protocol::Smtp)
    } else if super::scan::find_ci(greeting, b"FTP").is_some() {
        Some(Protocol::Ftp)
    } else {
        None
    }
}

/// SMTP, IMAP, POP3 or FTP in this flow: the upgrade and any credentials seen in clear.
pub(super) fn detect(client: &[u8], server: &[u8], port: u16) -> Option<Session> {
    let c = split(client);
    let s = split(server);
    let protocol = classify(&c, &s, port)?;
    let (starttls, credentials) = match protocol {
        Protocol::Smtp => smtp::analyse(&c, &s),
        Protocol::Imap => imap::analyse(&c, &s),
        Protocol::Pop3 => pop3::analyse(&c, &s),
        _ => ftp::analyse(&c, &s),
    };
    Some(Session { protocol, starttls, credentials })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_stops_at_binary_and_cut_lines() {
        let l = split(b"220 hi\r\nEHLO x\nSTARTTLS\r\n\x16\x03\x01\x00\x10\n");
        assert_eq!(l, vec![&b"220 hi"[..], b"EHLO x", b"STARTTLS"]);
        assert_eq!(split(b"USER partial"), Vec::<&[u8]>::new());
    }

    #[test]
    fn replies_group_multiline() {
        let s = split(b"220 a\r\n250-x\r\n250-STARTTLS\r\n250 SIZE\r\n211-Features:\r\n AUTH TLS\r\n211 End\r\n");
        let r = replies(&s);
        let v: Vec<(u16, usize, usize)> = r.iter().map(|r| (r.code, r.first, r.end)).collect();
        assert_eq!(v, vec![(220, 0, 1), (250, 1, 4), (211, 4, 7)]);
    }

    #[test]
    fn classify_smtp_vs_ftp() {
        let s = split(b"220 host ready\r\n");
        assert_eq!(classify(&split(b"EHLO a\r\n"), &s, 21), Some(Protocol::Smtp));
        assert_eq!(classify(&split(b"USER a\r\n"), &s, 25), Some(Protocol::Ftp));
        assert_eq!(classify(&[], &s, 25), Some(Protocol::Smtp));
        assert_eq!(classify(&[], &s, 21), Some(Protocol::Ftp));
        assert_eq!(classify(&[], &s, 9), None);
        assert_eq!(classify(&[], &split(b"220 mx ESMTP\r\n"), 9), Some(Protocol::Smtp));
        assert_eq!(classify(&split(b"AUTH LOGIN\r\n"), &[], 9), None);
        assert_eq!(classify(&split(b"a1 CAPABILITY\r\n"), &[], 9), Some(Protocol::Imap));
        assert_eq!(classify(&split(b"hello world\r\n"), &split(b"hi\r\n"), 25), None);
    }
}
