//! Test lab, IRC peers: Debian's InspIRCd 3.15 in the server namespace (foreground, as root with
//! `--runasroot`, config in the lab dir: port 6667 in clear, the `cap` and `starttls` modules
//! over `ssl_gnutls` with the lab leaf, so `CAP LS` lists `tls`), and clients in the client
//! namespace: `openssl s_client -starttls irc` (a real STARTTLS client) and a scripted client
//! that reads the `tls` offer, then registers in clear with `PASS` (fake).
//! Must never write outside the lab dir, nor leave inspircd running past the lab (a lab child,
//! killed on drop).
use std::{fs, net::SocketAddr, time::Duration};

use anyhow::{bail, Context as _, Result};

use super::{Family, Lab};

pub const IRC_PORT: u16 = 6667;
/// The clear client's server password (fake; must never appear in tlsmon's output).
pub const FAKE_IRC_PASS: &str = "FakeIrcPass1";
const CLIENT_LIMIT: Duration = Duration::from_secs(15);

/// The scripted clear client (python3): `CAP LS 302`, reads the capability list (and checks
/// `tls` is there), then `PASS`, `NICK`, `USER`, `CAP END` in clear and `QUIT`.
const CLEAR_CLIENT: &str = r#"
import socket, sys
host, port, password = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=10)
buf = b""
s.sendall(b"CAP LS 302\r\n")
while b" LS " not in buf or not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
caps = [l for l in buf.split(b"\r\n") if b" CAP " in l and b" LS " in l]
if not caps or b"tls" not in caps[0].split(b":")[-1].split():
    sys.exit("no tls capability offered: %r" % buf)
s.sendall(("PASS %s\r\nNICK labnick\r\nUSER labuser 0 * :lab\r\nCAP END\r\n" % password).encode())
while b" 001 " not in buf and b"ERROR" not in buf:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
s.sendall(b"QUIT :bye\r\n")
try:
    while s.recv(4096):
        pass
except OSError:
    pass
s.close()
print("tls offered; registered in clear: %s" % (b" 001 " in buf))
"#;

/// One IRC client run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrcRun {
    /// `openssl s_client -starttls irc`.
    StartTls,
    /// The scripted client: registers in clear after the offer.
    Clear,
}

impl IrcRun {
    pub const ALL: [IrcRun; 2] = [IrcRun::StartTls, IrcRun::Clear];

    pub fn name(self) -> &'static str {
        match self {
            IrcRun::StartTls => "irc-starttls",
            IrcRun::Clear => "irc-clear",
        }
    }
}

impl Lab {
    /// Makes the lab certificates (if not made yet), writes inspircd's config and starts it in
    /// the server namespace; waits until it accepts connections over IPv4 and IPv6.
    pub fn start_irc_server(&mut self) -> Result<()> {
        if !self.dir.join("leaf.pem").exists() {
            self.make_certs().context("making the lab certificates")?;
        }
        let dir = self.dir.clone();
        let d = |f: &str| dir.join(f).to_str().map(str::to_string).context("lab dir path is not UTF-8");
        fs::write(dir.join("ircd.motd"), "tlsmon lab\n").context("writing the motd")?;
        // No DNS in the lab: hostname lookups are off (they would stall registration and
        // openssl's STARTTLS wait).
        let config = format!(
            "<config format=\"xml\">\n<server name=\"irc.lab.test\" description=\"tlsmon lab\" network=\"tlsmonlab\">\n\
             <admin name=\"lab\" nick=\"lab\" email=\"lab@irc.lab.test\">\n\
             <bind address=\"\" port=\"{IRC_PORT}\" type=\"clients\">\n\
             <bind address=\"::\" port=\"{IRC_PORT}\" type=\"clients\">\n\
             <connect allow=\"*\" timeout=\"60\" threshold=\"100\" pingfreq=\"120\" sendq=\"262144\" \
             recvq=\"8192\" localmax=\"100\" globalmax=\"100\" useident=\"no\" resolvehostnames=\"no\">\n\
             <class name=\"Users\" commands=\"*\">\n<pid file=\"{pid}\">\n\
             <log method=\"file\" type=\"* -USERINPUT -USEROUTPUT\" level=\"default\" target=\"{log}\">\n\
             <module name=\"cap\">\n<module name=\"ssl_gnutls\">\n<module name=\"starttls\">\n\
             <sslprofile name=\"Clients\" provider=\"gnutls\" certfile=\"{cert}\" keyfile=\"{key}\" dhfile=\"\" hash=\"sha256\">\n\
             <starttls provider=\"Clients\">\n<options>\n<security>\n<performance>\n<whowas>\n\
             <files motd=\"{motd}\">\n",
            pid = d("inspircd.pid")?,
            log = d("inspircd-file.log")?,
            cert = d("leaf.pem")?,
            key = d("leaf.key")?,
            motd = d("ircd.motd")?,
        );
        let cfg = d("inspircd.conf")?;
        fs::write(&cfg, config).with_context(|| format!("writing {cfg}"))?;
        let server_ns = self.server_ns.clone();
        let arg = format!("--config={cfg}");
        self.spawn("inspircd", &server_ns, "/usr/sbin/inspircd", &[&arg, "--nofork", "--runasroot"])?;
        let targets: Vec<SocketAddr> =
            Family::BOTH.iter().map(|&f| SocketAddr::new(self.server_addr(f), IRC_PORT)).collect();
        self.wait_accepting(&targets)
    }

    /// Runs one IRC client over `family`; fails with its log when it did not do its job.
    pub fn run_irc_client(&self, run: IrcRun, family: Family) -> Result<()> {
        super::check_stop()?;
        let name = format!("{}-{}", run.name(), family.label());
        let status = match run {
            IrcRun::StartTls => {
                let addr = SocketAddr::new(self.server_addr(family), IRC_PORT).to_string();
                let args = ["s_client", "-starttls", "irc", "-connect", &addr, "-brief"];
                self.run(&name, &self.client_ns, "openssl", &args, CLIENT_LIMIT)?
            }
            IrcRun::Clear => {
                let script = self.dir.join("irc_clear_client.py");
                fs::write(&script, CLEAR_CLIENT).context("writing the clear IRC client")?;
                let script = script.to_str().context("lab dir path is not UTF-8")?;
                let (host, port) = (self.server_addr(family).to_string(), IRC_PORT.to_string());
                let args = ["-u", script, &host, &port, FAKE_IRC_PASS];
                self.run(&name, &self.client_ns, "/usr/bin/python3", &args, CLIENT_LIMIT)?
            }
        };
        let log = self.log(&name);
        let done = match run {
            IrcRun::Clear => log.contains("tls offered; registered in clear: True"),
            IrcRun::StartTls => log.contains("CONNECTION ESTABLISHED"),
        };
        if !status.success() || !done {
            bail!("{name} failed ({status}); its log:\n{log}\ninspircd's log:\n{}", self.log("inspircd"));
        }
        Ok(())
    }
}
