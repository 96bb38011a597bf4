//! gen-phi line-protocol captures: FTP, POP3, IMAP and SMTP logins in clear, STARTTLS/STLS/AUTH
//! TLS offered but not used, and a plain SMTP negative. Must never send a line without CRLF.
use std::io;

use serde_json::{json, Value};

use super::codec::{base64, md5_hex};
use super::flow::Pcap;
use super::{Capture, PASSWORD, USER};

pub const EMAIL: &str = "zztest.user@example.test";
pub const APOP_BANNER_TS: &str = "<1896.697170952@mail.example.test>";
const C: usize = 0;
const S: usize = 1;

/// One connection to `port` playing `lines` in order; each entry is one segment.
fn dialog(port: u16, lines: &[(usize, String)]) -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, port)?;
    for (side, l) in lines {
        debug_assert!(l.ends_with("\r\n"));
        c.send(*side, l.as_bytes())?;
    }
    c.close()?;
    p.finish()
}

fn l(side: usize, s: &str) -> (usize, String) {
    (side, format!("{s}\r\n"))
}

pub fn plain_token() -> String {
    base64(format!("\0{USER}\0{PASSWORD}").as_bytes())
}

pub fn apop_digest() -> String {
    md5_hex(format!("{APOP_BANNER_TS}{PASSWORD}").as_bytes())
}

fn ftp(feat: bool) -> io::Result<Vec<u8>> {
    let mut d = vec![l(S, "220 FakeFTP server ready")];
    if feat {
        d.push(l(C, "FEAT"));
        d.push(l(S, "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n UTF8\r\n211 End"));
    }
    d.extend([
        l(C, &format!("USER {USER}")),
        l(S, &format!("331 Password required for {USER}")),
        l(C, &format!("PASS {PASSWORD}")),
        l(S, &format!("230 User {USER} logged in")),
        l(C, "QUIT"),
        l(S, "221 Goodbye"),
    ]);
    dialog(21, &d)
}

fn pop3(capa: bool) -> io::Result<Vec<u8>> {
    let mut d = vec![l(S, "+OK FakePOP3 ready")];
    if capa {
        d.push(l(C, "CAPA"));
        d.push(l(S, "+OK Capability list follows\r\nUSER\r\nSTLS\r\nSASL PLAIN\r\nUIDL\r\n."));
    }
    d.extend([
        l(C, &format!("USER {USER}")),
        l(S, "+OK"),
        l(C, &format!("PASS {PASSWORD}")),
        l(S, "+OK Logged in."),
        l(C, "STAT"),
        l(S, "+OK 1 512"),
        l(C, "QUIT"),
        l(S, "+OK Bye"),
    ]);
    dialog(110, &d)
}

fn pop3_apop() -> io::Result<Vec<u8>> {
    dialog(
        110,
        &[
            l(S, &format!("+OK FakePOP3 ready {APOP_BANNER_TS}")),
            l(C, &format!("APOP {USER} {}", apop_digest())),
            l(S, "+OK maildrop has 1 message (512 octets)"),
            l(C, "QUIT"),
            l(S, "+OK Bye"),
        ],
    )
}

fn imap(greeting: &str) -> io::Result<Vec<u8>> {
    dialog(
        143,
        &[
            l(S, greeting),
            l(C, &format!("a1 LOGIN {USER} {PASSWORD}")),
            l(S, "a1 OK LOGIN completed"),
            l(C, "a2 LOGOUT"),
            l(S, "* BYE Logging out\r\na2 OK LOGOUT completed"),
        ],
    )
}

fn imap_plain() -> io::Result<Vec<u8>> {
    dialog(
        143,
        &[
            l(S, "* OK IMAP4rev1 ready"),
            l(C, "a1 AUTHENTICATE PLAIN"),
            l(S, "+ "),
            l(C, &plain_token()),
            l(S, "a1 OK AUTHENTICATE completed"),
            l(C, "a2 LOGOUT"),
            l(S, "* BYE Logging out\r\na2 OK LOGOUT completed"),
        ],
    )
}

fn smtp_auth(login: bool) -> io::Result<Vec<u8>> {
    let mut d = vec![
        l(S, "220 mail.example.test ESMTP FakeMTA"),
        l(C, "EHLO client.example.test"),
        l(S, "250-mail.example.test\r\n250-AUTH PLAIN LOGIN\r\n250-8BITMIME\r\n250 SIZE 10485760"),
    ];
    if login {
        d.extend([
            l(C, "AUTH LOGIN"),
            l(S, "334 VXNlcm5hbWU6"),
            l(C, &base64(USER.as_bytes())),
            l(S, "334 UGFzc3dvcmQ6"),
            l(C, &base64(PASSWORD.as_bytes())),
        ]);
    } else {
        d.push(l(C, &format!("AUTH PLAIN {}", plain_token())));
    }
    d.extend([l(S, "235 2.7.0 Authentication successful"), l(C, "QUIT"), l(S, "221 2.0.0 Bye")]);
    dialog(587, &d)
}

fn smtp_nostarttls() -> io::Result<Vec<u8>> {
    let body = format!(
        "From: <{EMAIL}>\r\nTo: <records@example.test>\r\nSubject: results\r\n\r\n\
         Patient ZZTEST^KILO: results attached.\r\n."
    );
    dialog(
        25,
        &[
            l(S, "220 mail.example.test ESMTP FakeMTA"),
            l(C, "EHLO client.example.test"),
            l(S, "250-mail.example.test\r\n250-STARTTLS\r\n250-8BITMIME\r\n250 SIZE 10485760"),
            l(C, &format!("MAIL FROM:<{EMAIL}>")),
            l(S, "250 2.1.0 Ok"),
            l(C, "RCPT TO:<records@example.test>"),
            l(S, "250 2.1.5 Ok"),
            l(C, "DATA"),
            l(S, "354 End data with <CR><LF>.<CR><LF>"),
            l(C, &body),
            l(S, "250 2.0.0 Ok: queued"),
            l(C, "QUIT"),
            l(S, "221 2.0.0 Bye"),
        ],
    )
}

fn smtp_plain() -> io::Result<Vec<u8>> {
    dialog(
        25,
        &[
            l(S, "220 mail.example.test ESMTP FakeMTA"),
            l(C, "EHLO client.example.test"),
            l(S, "250-mail.example.test\r\n250 8BITMIME"),
            l(C, "QUIT"),
            l(S, "221 2.0.0 Bye"),
        ],
    )
}

fn cred(protocol: &str, kind: &str) -> Value {
    json!({"type": "plaintext", "plaintext.protocol": protocol, "plaintext.credentials": [kind],
           "findings": ["plaintext.credentials"]})
}

/// STARTTLS offered, not requested, session continued in clear (optionally with a login).
fn missing(protocol: &str, kind: Option<&str>) -> Value {
    let mut v = json!({"type": "plaintext", "plaintext.protocol": protocol,
        "plaintext.starttls.offered": true, "plaintext.starttls.requested": false,
        "findings": ["plaintext.starttls-missing"]});
    if let Some(k) = kind {
        v["plaintext.credentials"] = json!([k]);
        v["findings"] = json!(["plaintext.credentials", "plaintext.starttls-missing"]);
    }
    v
}

pub fn captures() -> io::Result<Vec<Capture>> {
    let cap = |file, description, expect: Value, bytes| Capture { file, description, expect: vec![expect], bytes };
    Ok(vec![
        cap("ftp-login.pcap", "FTP USER/PASS in clear on port 21 (no FEAT)", cred("ftp", "ftp-user-pass"), ftp(false)?),
        cap(
            "pop3-user-pass.pcap",
            "POP3 USER/PASS in clear on port 110 (no CAPA)",
            cred("pop3", "pop3-user-pass"),
            pop3(false)?,
        ),
        cap(
            "pop3-apop.pcap",
            "POP3 APOP login with an MD5 digest of the banner timestamp",
            cred("pop3", "pop3-apop"),
            pop3_apop()?,
        ),
        cap(
            "imap-login.pcap",
            "IMAP LOGIN in clear on port 143, no STARTTLS capability",
            cred("imap", "imap-login"),
            imap("* OK IMAP4rev1 ready")?,
        ),
        cap(
            "imap-authenticate-plain.pcap",
            "IMAP AUTHENTICATE PLAIN with the base64 response on its own line",
            cred("imap", "imap-authenticate-plain"),
            imap_plain()?,
        ),
        cap(
            "smtp-auth-plain.pcap",
            "SMTP AUTH PLAIN on port 587 without STARTTLS",
            cred("smtp", "smtp-auth-plain"),
            smtp_auth(false)?,
        ),
        cap(
            "smtp-auth-login.pcap",
            "SMTP AUTH LOGIN on port 587 without STARTTLS",
            cred("smtp", "smtp-auth-login"),
            smtp_auth(true)?,
        ),
        cap(
            "smtp-nostarttls.pcap",
            "SMTP on port 25: server offers STARTTLS, client sends a message about a patient in clear",
            missing("smtp", None),
            smtp_nostarttls()?,
        ),
        cap(
            "imap-nostarttls.pcap",
            "IMAP greeting advertises STARTTLS; client logs in with LOGIN in clear",
            missing("imap", Some("imap-login")),
            imap("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] ready")?,
        ),
        cap(
            "pop3-nostls.pcap",
            "POP3 CAPA lists STLS; client sends USER/PASS in clear",
            missing("pop3", Some("pop3-user-pass")),
            pop3(true)?,
        ),
        cap(
            "ftp-noauthtls.pcap",
            "FTP FEAT lists AUTH TLS; client sends USER/PASS in clear",
            missing("ftp", Some("ftp-user-pass")),
            ftp(true)?,
        ),
        Capture {
            file: "smtp-plain.pcap",
            description: "Negative: SMTP without STARTTLS offer, EHLO then QUIT only: an smtp event, no finding",
            expect: vec![json!({
                "type": "plaintext",
                "plaintext.protocol": "smtp",
                "plaintext.starttls.offered": false,
                "findings": []
            })],
            bytes: smtp_plain()?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::super::flow::parse::streams;
    use super::*;

    #[test]
    fn every_line_ends_in_crlf() {
        for b in [ftp(true), pop3(true), pop3_apop(), imap_plain(), smtp_auth(true), smtp_nostarttls(), smtp_plain()] {
            for dir in &streams(&b.unwrap())[0] {
                assert!(dir.ends_with(b"\r\n"));
                assert!(!dir.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'), "bare LF");
            }
        }
    }

    #[test]
    fn plain_token_decodes_to_nul_user_nul_pass() {
        assert_eq!(plain_token(), "AHp6dGVzdC51c2VyAEZha2VQYXNzdzByZCE=");
    }
}
