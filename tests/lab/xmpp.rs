//! Test lab, XMPP peers: Debian's Prosody 0.12 in the server namespace (a foreground process
//! with a config file in the lab dir: c2s on 5222 offering optional STARTTLS and, as a careless
//! deployment would, SASL PLAIN without TLS; s2s on 5269 with STARTTLS required), the lab
//! leaf certificate; clients in the client namespace: `openssl s_client -starttls xmpp` and
//! `-starttls xmpp-server` (real STARTTLS clients) and a scripted c2s client that stays in clear
//! and sends SASL PLAIN with fake credentials after the STARTTLS offer.
//! Must never write outside the lab dir, nor leave prosody running past the lab (a lab child,
//! killed on drop).
use std::{fs, net::SocketAddr, time::Duration};

use anyhow::{bail, Context as _, Result};

use super::{servers::modern, Family, Lab};

pub const C2S_PORT: u16 = 5222;
pub const S2S_PORT: u16 = 5269;
/// What the clear client authenticates with (fake; must never appear in tlsmon's output).
pub const FAKE_USER: &str = "FAKE-USER01";
pub const FAKE_PASS: &str = "FakePass1";
/// Most time one client run may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(15);

/// The scripted clear client (python3): RFC 6120 §4.2–§6.4 up to SASL, without §5 (STARTTLS).
/// Sends the stream header, reads the features (and checks STARTTLS is offered), sends SASL
/// PLAIN in clear, reads the answer, closes the stream.
const CLEAR_CLIENT: &str = r#"
import base64, socket, sys
host, port, domain, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.create_connection((host, port), timeout=10)
def read_until(marker):
    buf = b""
    while marker not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    return buf
s.sendall(("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xml:lang='en' "
           "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" % domain).encode())
features = read_until(b"</stream:features>")
if b"urn:ietf:params:xml:ns:xmpp-tls" not in features:
    sys.exit("no STARTTLS offer in the stream features")
token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
s.sendall(("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % token).encode())
reply = read_until(b">")
s.sendall(b"</stream:stream>")
read_until(b"</stream:stream>")
s.close()
print("starttls offered; sasl answer: %s" % ("success" if b"<success" in reply else "failure"))
"#;

/// One client run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XmppRun {
    /// `openssl s_client -starttls xmpp` to 5222.
    C2sStartTls,
    /// `openssl s_client -starttls xmpp-server` to 5269.
    S2sStartTls,
    /// The scripted client: stays in clear on 5222, SASL PLAIN.
    C2sClear,
}

impl XmppRun {
    pub const ALL: [XmppRun; 3] = [XmppRun::C2sStartTls, XmppRun::S2sStartTls, XmppRun::C2sClear];

    pub fn name(self) -> &'static str {
        match self {
            XmppRun::C2sStartTls => "xmpp-c2s-starttls",
            XmppRun::S2sStartTls => "xmpp-s2s-starttls",
            XmppRun::C2sClear => "xmpp-c2s-clear",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            XmppRun::S2sStartTls => S2S_PORT,
            XmppRun::C2sStartTls | XmppRun::C2sClear => C2S_PORT,
        }
    }
}

/// The XMPP domain served (the lab leaf's first name).
pub fn domain() -> &'static str {
    modern().sni
}

impl Lab {
    /// Makes the lab certificates, writes prosody's config and starts it in the server
    /// namespace; waits until it accepts connections on both ports over IPv4 and IPv6.
    pub fn start_xmpp_server(&mut self) -> Result<()> {
        self.make_certs().context("making the lab certificates")?;
        let dir = self.dir.clone();
        let d = |f: &str| dir.join(f).to_str().map(str::to_string).context("lab dir path is not UTF-8");
        let data = dir.join("prosody-data");
        fs::create_dir_all(&data).context("prosody data dir")?;
        let config = format!(
            "pidfile = \"{pid}\"\ndata_path = \"{data}\"\n\
             log = {{ {{ levels = {{ min = \"info\" }}, to = \"console\" }} }}\n\
             interfaces = {{ \"0.0.0.0\", \"::\" }}\nc2s_ports = {{ {C2S_PORT} }}\ns2s_ports = {{ {S2S_PORT} }}\n\
             c2s_direct_tls_ports = {{ }}\ns2s_direct_tls_ports = {{ }}\n\
             modules_enabled = {{ \"tls\", \"saslauth\", \"dialback\", \"disco\" }}\n\
             modules_disabled = {{ \"posix\" }}\n\
             c2s_require_encryption = false\nallow_unencrypted_plain_auth = true\n\
             s2s_require_encryption = true\ns2s_secure_auth = false\nauthentication = \"internal_plain\"\n\
             certificates = \"{certs}\"\n\
             ssl = {{ certificate = \"{cert}\", key = \"{key}\" }}\nVirtualHost \"{domain}\"\n",
            pid = d("prosody.pid")?,
            data = data.display(),
            certs = d("prosody-certs")?,
            cert = d("leaf.pem")?,
            key = d("leaf.key")?,
            domain = domain(),
        );
        fs::create_dir_all(dir.join("prosody-certs")).context("prosody certs dir")?;
        let cfg = d("prosody.cfg.lua")?;
        fs::write(&cfg, config).with_context(|| format!("writing {cfg}"))?;
        let server_ns = self.server_ns.clone();
        self.spawn("prosody", &server_ns, "/usr/bin/prosody", &["--config", &cfg, "-F"])?;
        let mut targets = Vec::new();
        for family in Family::BOTH {
            for port in [C2S_PORT, S2S_PORT] {
                targets.push(SocketAddr::new(self.server_addr(family), port));
            }
        }
        self.wait_accepting(&targets)
    }

    /// Runs one XMPP client over `family` and checks it did its job (TLS established after
    /// STARTTLS; the clear client saw the offer and got a SASL answer); fails with its log when
    /// not.
    pub fn run_xmpp_client(&self, run: XmppRun, family: Family) -> Result<()> {
        super::check_stop()?;
        let addr = SocketAddr::new(self.server_addr(family), run.port()).to_string();
        let name = format!("{}-{}", run.name(), family.label());
        let status = match run {
            XmppRun::C2sStartTls | XmppRun::S2sStartTls => {
                let mode = if run == XmppRun::C2sStartTls { "xmpp" } else { "xmpp-server" };
                let args = ["s_client", "-starttls", mode, "-xmpphost", domain(), "-connect", &addr, "-brief"];
                self.run(&name, &self.client_ns, "openssl", &args, CLIENT_LIMIT)?
            }
            XmppRun::C2sClear => {
                let script = self.dir.join("xmpp_clear_client.py");
                fs::write(&script, CLEAR_CLIENT).context("writing the clear XMPP client")?;
                let script = script.to_str().context("lab dir path is not UTF-8")?;
                let host = self.server_addr(family).to_string();
                let port = run.port().to_string();
                let args = ["-u", script, &host, &port, domain(), FAKE_USER, FAKE_PASS];
                self.run(&name, &self.client_ns, "/usr/bin/python3", &args, CLIENT_LIMIT)?
            }
        };
        let log = self.log(&name);
        let done = match run {
            XmppRun::C2sClear => log.contains("starttls offered; sasl answer:"),
            _ => log.contains("CONNECTION ESTABLISHED"),
        };
        if !status.success() || !done {
            bail!("{name} failed ({status}); its log:\n{log}\nprosody's log:\n{}", self.log("prosody"));
        }
        Ok(())
    }
}
