//! Lab servers and clients: certificates made at run time (a lab CA and a leaf it signed, plus an
//! expired self-signed one), one TLS server per posture in the server namespace, and the stock
//! clients (openssl s_client, curl, gnutls-cli) that talk to them from the client namespace.
//! Must never write outside the lab dir nor connect anywhere but the lab's server.
//!
//! Debian 12's OpenSSL 3.0 is built without 3DES suites (`openssl ciphers DES-CBC3-SHA` finds
//! nothing), so the 3DES server and its client are GnuTLS (gnutls-serv / gnutls-cli).
use std::{
    fs,
    net::{SocketAddr, TcpStream},
    process::Command,
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::{check_stop, Family, Lab};

/// What a server is set up to negotiate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Posture {
    /// TLS 1.3 only.
    Modern,
    /// TLS 1.0 only, default suites at security level 0.
    Legacy,
    /// TLS 1.2 with 3DES (TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA).
    Weak,
    /// TLS 1.2 with static RSA key exchange (TLS_RSA_WITH_AES_128_GCM_SHA256): no forward secrecy.
    Rsa,
    /// TLS 1.2 with an expired self-signed certificate.
    Expired,
}

/// One lab server.
#[derive(Debug)]
pub struct ServerSpec {
    pub posture: Posture,
    /// Short name used in logs and the demo ("modern").
    pub name: &'static str,
    pub port: u16,
    /// The SNI the clients send (covered by the server's certificate).
    pub sni: &'static str,
    /// One line for the demo: what runs there.
    pub what: &'static str,
}

pub const SERVERS: [ServerSpec; 5] = [
    ServerSpec {
        posture: Posture::Modern,
        name: "modern",
        port: 4431,
        sni: "modern.lab.test",
        what: "openssl s_server -tls1_3",
    },
    ServerSpec {
        posture: Posture::Legacy,
        name: "legacy",
        port: 4432,
        sni: "legacy.lab.test",
        what: "openssl s_server -tls1 -cipher DEFAULT@SECLEVEL=0",
    },
    ServerSpec {
        posture: Posture::Weak,
        name: "weak",
        port: 4433,
        sni: "weak.lab.test",
        what: "gnutls-serv, TLS 1.2, 3DES-CBC only",
    },
    ServerSpec {
        posture: Posture::Rsa,
        name: "rsa-kx",
        port: 4434,
        sni: "rsa.lab.test",
        what: "openssl s_server -tls1_2 -cipher AES128-GCM-SHA256",
    },
    ServerSpec {
        posture: Posture::Expired,
        name: "expired",
        port: 4435,
        sni: "expired.lab.test",
        what: "openssl s_server -tls1_2, expired self-signed certificate",
    },
];

/// The modern server (target of the large ClientHello).
pub fn modern() -> &'static ServerSpec {
    &SERVERS[0]
}

/// The server listening on `port`, if any.
pub fn server_on(port: u16) -> Option<&'static ServerSpec> {
    SERVERS.iter().find(|s| s.port == port)
}

/// Validity of the expired certificate (openssl `ca` date format) and its RFC 3339 not_after.
pub const EXPIRED_START: &str = "20200101000000Z";
pub const EXPIRED_END: &str = "20210101000000Z";
pub const EXPIRED_NOT_AFTER: &str = "2021-01-01T00:00:00Z";
/// Common name of the lab CA (issuer of the valid leaf).
pub const CA_CN: &str = "tlsmon lab CA";

/// One client connection that ran to completion.
#[derive(Debug)]
pub struct ClientRun {
    pub server: &'static ServerSpec,
    pub family: Family,
    /// "openssl s_client", "curl", "gnutls-cli".
    pub tool: &'static str,
}

/// Most time one stock client may take (a handshake here takes milliseconds).
const CLIENT_LIMIT: Duration = Duration::from_secs(15);
/// Most time the servers may take to accept connections on both families.
const READY_LIMIT: Duration = Duration::from_secs(15);

impl Lab {
    /// Makes the certificates, starts the five servers in the server namespace and waits until
    /// each accepts TCP connections from the client namespace over IPv4 and IPv6.
    pub fn start_servers(&mut self) -> Result<()> {
        self.make_certs().context("making the lab certificates")?;
        let d = |f: &str| self.dir.join(f).to_string_lossy().into_owned();
        let (leaf, key, exp, exp_key) = (d("leaf.pem"), d("leaf.key"), d("expired.pem"), d("expired.key"));
        let ns = self.server_ns.clone();
        for s in &SERVERS {
            let port = s.port.to_string();
            let mut args: Vec<&str> = vec!["s_server", "-accept", &port, "-www", "-quiet"];
            let program = match s.posture {
                Posture::Modern => {
                    args.extend(["-cert", &leaf, "-key", &key, "-tls1_3"]);
                    "openssl"
                }
                Posture::Legacy => {
                    args.extend(["-cert", &leaf, "-key", &key, "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]);
                    "openssl"
                }
                Posture::Rsa => {
                    args.extend(["-cert", &leaf, "-key", &key, "-tls1_2", "-cipher", "AES128-GCM-SHA256"]);
                    "openssl"
                }
                Posture::Expired => {
                    args.extend(["-cert", &exp, "-key", &exp_key, "-tls1_2"]);
                    "openssl"
                }
                Posture::Weak => {
                    args = vec!["--http", "--port", &port, "--x509certfile", &leaf, "--x509keyfile", &key];
                    args.extend(["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+3DES-CBC"]);
                    "gnutls-serv"
                }
            };
            self.spawn(&format!("server-{}", s.name), &ns, program, &args)?;
        }
        self.wait_ready()
    }

    /// Polls every TLS server port from the client namespace (bounded in time), so routing
    /// and neighbour discovery are known to work too. Runs before tlsmon starts: the probes
    /// are not part of what it judges.
    fn wait_ready(&mut self) -> Result<()> {
        let targets: Vec<SocketAddr> = Family::BOTH
            .iter()
            .flat_map(|&f| SERVERS.iter().map(move |s| (f, s.port)))
            .map(|(f, port)| SocketAddr::new(self.server_addr(f), port))
            .collect();
        self.wait_accepting(&targets)
    }

    /// Waits (at most [`READY_LIMIT`] in all) until each target accepts TCP connections from
    /// the client namespace; fails if a lab child died meanwhile.
    pub fn wait_accepting(&mut self, targets: &[SocketAddr]) -> Result<()> {
        let deadline = Instant::now() + READY_LIMIT;
        for &target in targets {
            loop {
                check_stop()?;
                self.check_children()?;
                let ok = self.in_netns(&self.client_ns, || {
                    Ok(TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok())
                })?;
                if ok {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!("lab server {target} not accepting connections after {READY_LIMIT:?}");
                }
                thread::sleep(Duration::from_millis(25));
            }
        }
        Ok(())
    }

    /// Runs every stock client against every server over one address family, one after the
    /// other. Fails on the first client that does not complete, with its log.
    pub fn run_clients(&self, family: Family) -> Result<Vec<ClientRun>> {
        let mut runs = Vec::new();
        for server in &SERVERS {
            runs.extend(self.run_server_clients(server, family)?);
        }
        Ok(runs)
    }

    /// Runs the stock clients of one server over one address family.
    pub fn run_server_clients(&self, server: &'static ServerSpec, family: Family) -> Result<Vec<ClientRun>> {
        let mut runs = Vec::new();
        let addr = SocketAddr::new(self.server_addr(family), server.port);
        for (tool, program, args) in clients(server, addr) {
            check_stop()?;
            let name = format!("client-{}-{}-{}", server.name, family.label(), program);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let status = self.run(&name, &self.client_ns, program, &args, CLIENT_LIMIT)?;
            if !status.success() {
                bail!("{tool} → {} ({addr}) failed ({status}); its log:\n{}", server.name, self.log(&name));
            }
            runs.push(ClientRun { server, family, tool });
        }
        Ok(runs)
    }

    pub(super) fn make_certs(&self) -> Result<()> {
        let names: Vec<String> =
            SERVERS.iter().filter(|s| s.posture != Posture::Expired).map(|s| s.sni.into()).collect();
        let san = names.iter().map(|n| format!("DNS:{n}")).collect::<Vec<_>>().join(",");
        let dir = &self.dir;
        fs::write(
            dir.join("leaf.ext"),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName={san}\n"
            ),
        )?;
        // `openssl ca` takes explicit start/end dates, which is how a certificate that expired
        // years ago is made without faking the clock.
        fs::write(
            dir.join("ca.cnf"),
            "[ca]\ndefault_ca = d\n[d]\ndir = .\ndatabase = ./index.txt\nnew_certs_dir = .\n\
             serial = ./serial\npolicy = p\ndefault_md = sha256\nunique_subject = no\n\
             [p]\ncommonName = supplied\n\
             [expired]\nbasicConstraints = CA:FALSE\nsubjectAltName = DNS:expired.lab.test\n",
        )?;
        fs::write(dir.join("index.txt"), "")?;
        fs::write(dir.join("serial"), "2001\n")?;
        let ca_subj = format!("/O=tlsmon lab/CN={CA_CN}");
        let leaf_subj = format!("/O=tlsmon lab/CN={}", modern().sni);
        let expired_subj = format!("/O=tlsmon lab/CN={}", SERVERS[4].sni);
        let runs: [&[&str]; 5] = [
            &[
                "req",
                "-x509",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                &ca_subj,
            ],
            &[
                "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "leaf.key", "-out", "leaf.csr", "-subj",
                &leaf_subj,
            ],
            &[
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "0x1001",
                "-days",
                "365",
                "-sha256",
                "-extfile",
                "leaf.ext",
                "-out",
                "leaf.pem",
            ],
            &[
                "req",
                "-new",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "expired.key",
                "-out",
                "expired.csr",
                "-subj",
                &expired_subj,
            ],
            &[
                "ca",
                "-config",
                "ca.cnf",
                "-batch",
                "-notext",
                "-selfsign",
                "-keyfile",
                "expired.key",
                "-in",
                "expired.csr",
                "-extensions",
                "expired",
                "-startdate",
                EXPIRED_START,
                "-enddate",
                EXPIRED_END,
                "-out",
                "expired.pem",
            ],
        ];
        for args in runs {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .context("running openssl (installed by `cargo xtask setup`)")?;
            if !out.status.success() {
                bail!("openssl {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        Ok(())
    }
}

/// The clients run against `server` at `addr`: (tool label, program, args).
fn clients(server: &ServerSpec, addr: SocketAddr) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let connect = addr.to_string();
    let host = match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => format!("[{}]", a.ip()),
    };
    let url = format!("https://{}:{}/", server.sni, server.port);
    let resolve = format!("{}:{}:{host}", server.sni, server.port);
    let s_client = |extra: &[&str]| {
        let mut a: Vec<String> = ["s_client", "-connect", &connect, "-servername", server.sni].map(String::from).into();
        a.extend(extra.iter().map(|s| s.to_string()));
        ("openssl s_client", "openssl", a)
    };
    let curl = |extra: &[&str]| {
        let mut a: Vec<String> =
            ["-sS", "-k", "-o", "/dev/null", "--max-time", "10", "--resolve", &resolve, &url].map(String::from).into();
        a.extend(extra.iter().map(|s| s.to_string()));
        ("curl", "curl", a)
    };
    match server.posture {
        Posture::Modern | Posture::Rsa | Posture::Expired => vec![s_client(&[]), curl(&[])],
        Posture::Legacy => vec![
            s_client(&["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]),
            curl(&["--tlsv1.0", "--tls-max", "1.0", "--ciphers", "DEFAULT@SECLEVEL=0"]),
        ],
        Posture::Weak => {
            let ip = addr.ip().to_string();
            let args = ["--insecure", "--priority", "NORMAL:+3DES-CBC", "--sni-hostname", server.sni, "-p"];
            let mut a: Vec<String> = args.map(String::from).into();
            a.extend([server.port.to_string(), ip]);
            vec![("gnutls-cli", "gnutls-cli", a)]
        }
    }
}
