//! Test lab, SSH peers: Debian's OpenSSH `sshd` in the server namespace, once with its stock
//! algorithms (port 22) and once with a legacy configuration (port 2222: only
//! diffie-hellman-group1-sha1, 3des-cbc, hmac-md5 and an ssh-rsa host key — all still built into
//! OpenSSH 9.2p1, off by default), and `ssh`/`sftp` clients in the client namespace
//! authenticating as root with a key made for the run (batch mode, no password, no prompt);
//! and a scripted SSH-1 server (port 2223), which OpenSSH's client refuses after the banners.
//! Must never write outside the lab dir but `/run/sshd` (sshd's privilege-separation dir), nor
//! leave an sshd running past the lab (they are lab children, killed on drop).
use std::{
    fs,
    net::{IpAddr, SocketAddr},
    path::Path,
    time::Duration,
};

use anyhow::{bail, Context as _, Result};

use super::{Family, Lab};

/// The stock server (SSH's own port: a kernel candidate by port).
pub const MODERN_PORT: u16 = 22;
/// The legacy server (a candidate by its `SSH-` banner only).
pub const LEGACY_PORT: u16 = 2222;
/// A scripted SSH-1 server (no SSH-1 server is packaged any more: OpenSSH dropped protocol 1
/// in 7.4): it sends `SSH-1.5-FakeSSH1_lab`, reads the client's banner and closes.
pub const V1_PORT: u16 = 2223;
/// The scripted SSH-1 server (python3, IPv4 and IPv6).
const V1_SERVER: &str = r#"
import socket, sys, threading
def serve(s):
    while True:
        c, _ = s.accept()
        c.sendall(b"SSH-1.5-FakeSSH1_lab\r\n")
        c.settimeout(5)
        try:
            c.recv(256)
        except OSError:
            pass
        c.close()
s4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
for s, a in ((s4, "0.0.0.0"), (s6, "::")):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a, int(sys.argv[1])))
    s.listen(8)
threading.Thread(target=serve, args=(s6,), daemon=True).start()
serve(s4)
"#;
/// Most time one client run may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(20);
/// What the SFTP run uploads (and checks arrived): no PHI, no secret.
pub const SFTP_PAYLOAD: &str = "tlsmon lab sftp upload: X12 batch stand-in, nothing real\n";

/// One client run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SshRun {
    /// `ssh … true` to the stock server.
    Modern,
    /// `ssh` with `-o KexAlgorithms=+diffie-hellman-group1-sha1 -o Ciphers=3des-cbc …` to the
    /// legacy server.
    Legacy,
    /// `sftp -b` (put, ls, bye) to the stock server.
    Sftp,
    /// `ssh` to the scripted SSH-1 server: the client refuses ("Protocol major versions
    /// differ") after the banners.
    V1,
}

impl SshRun {
    pub const ALL: [SshRun; 4] = [SshRun::Modern, SshRun::Legacy, SshRun::Sftp, SshRun::V1];

    pub fn name(self) -> &'static str {
        match self {
            SshRun::Modern => "ssh-modern",
            SshRun::Legacy => "ssh-legacy",
            SshRun::Sftp => "sftp",
            SshRun::V1 => "ssh-v1",
        }
    }

    pub fn port(self) -> u16 {
        match self {
            SshRun::Legacy => LEGACY_PORT,
            SshRun::V1 => V1_PORT,
            SshRun::Modern | SshRun::Sftp => MODERN_PORT,
        }
    }
}

/// The legacy server's algorithms (sshd_config); the client adds exactly these.
const LEGACY_CONFIG: &str = "KexAlgorithms diffie-hellman-group1-sha1\nCiphers 3des-cbc\nMACs hmac-md5\n\
                             HostKeyAlgorithms ssh-rsa\n";

fn p(dir: &Path, name: &str) -> Result<String> {
    dir.join(name).to_str().map(str::to_string).context("lab dir path is not UTF-8")
}

impl Lab {
    /// Makes the host keys and the client key, writes both sshd configs, starts both servers
    /// in the server namespace and waits until they accept connections over IPv4 and IPv6.
    pub fn start_ssh_servers(&mut self) -> Result<()> {
        let dir = self.dir.clone();
        fs::create_dir_all("/run/sshd").context("creating /run/sshd (sshd privilege separation)")?;
        for (file, kind, bits) in [
            ("ssh_host_ed25519", "ed25519", None),
            ("ssh_host_rsa", "rsa", Some("2048")),
            ("client_key", "ed25519", None),
        ] {
            let out = p(&dir, file)?;
            let mut args = vec!["-q", "-t", kind, "-N", "", "-C", "tlsmon-lab", "-f", &out];
            if let Some(b) = bits {
                args.extend(["-b", b]);
            }
            let status = self.run(&format!("keygen-{file}"), &self.client_ns, "ssh-keygen", &args, CLIENT_LIMIT)?;
            if !status.success() {
                bail!("ssh-keygen {file} failed: {}", self.log(&format!("keygen-{file}")));
            }
        }
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).context("authorized_keys")?;
        for (name, port, host_key, extra) in [
            ("sshd-modern", MODERN_PORT, "ssh_host_ed25519", ""),
            ("sshd-legacy", LEGACY_PORT, "ssh_host_rsa", LEGACY_CONFIG),
        ] {
            let config = format!(
                "Port {port}\nAddressFamily any\nListenAddress 0.0.0.0\nListenAddress ::\nHostKey {}\n\
                 PidFile {}\nUsePAM no\nStrictModes no\nAuthorizedKeysFile {}\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n\
                 Subsystem sftp internal-sftp\nLogLevel VERBOSE\n{extra}",
                p(&dir, host_key)?,
                p(&dir, &format!("{name}.pid"))?,
                p(&dir, "authorized_keys")?,
            );
            let cfg = p(&dir, &format!("{name}.conf"))?;
            fs::write(&cfg, config).with_context(|| format!("writing {cfg}"))?;
            let server_ns = self.server_ns.clone();
            self.spawn(name, &server_ns, "/usr/sbin/sshd", &["-D", "-e", "-f", &cfg])?;
        }
        let script = p(&dir, "ssh1_server.py")?;
        fs::write(&script, V1_SERVER).context("writing the SSH-1 server script")?;
        let server_ns = self.server_ns.clone();
        self.spawn("ssh1-server", &server_ns, "/usr/bin/python3", &["-u", &script, &V1_PORT.to_string()])?;
        let mut targets = Vec::new();
        for family in Family::BOTH {
            for port in [MODERN_PORT, LEGACY_PORT, V1_PORT] {
                targets.push(SocketAddr::new(self.server_addr(family), port));
            }
        }
        self.wait_accepting(&targets)
    }

    /// Runs one SSH client over `family` and checks it did its job (the remote command ran,
    /// the SFTP upload arrived); fails with its log when not.
    pub fn run_ssh_client(&self, run: SshRun, family: Family) -> Result<()> {
        super::check_stop()?;
        let dir = &self.dir;
        let key = p(dir, "client_key")?;
        let port = run.port().to_string();
        let target = match self.server_addr(family) {
            IpAddr::V4(a) => format!("root@{a}"),
            IpAddr::V6(a) => format!("root@[{a}]"),
        };
        let mut args: Vec<String> = [
            "-i",
            &key,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-F",
            "/dev/null",
        ]
        .map(str::to_string)
        .to_vec();
        let name = format!("{}-{}", run.name(), family.label());
        let (program, uploaded) = match run {
            SshRun::Modern | SshRun::V1 => {
                args.extend(["-p".into(), port, target.replace(['[', ']'], ""), "true".into()]);
                ("ssh", None)
            }
            SshRun::Legacy => {
                for o in [
                    "KexAlgorithms=+diffie-hellman-group1-sha1",
                    "Ciphers=3des-cbc",
                    "MACs=hmac-md5",
                    "HostKeyAlgorithms=+ssh-rsa",
                ] {
                    args.extend(["-o".into(), o.into()]);
                }
                args.extend(["-p".into(), port, target.replace(['[', ']'], ""), "true".into()]);
                ("ssh", None)
            }
            SshRun::Sftp => {
                let (src, dst) = (dir.join("upload.txt"), dir.join(format!("uploaded-{}.txt", family.label())));
                fs::write(&src, SFTP_PAYLOAD).context("writing the sftp upload")?;
                let batch = dir.join(format!("sftp-{}.batch", family.label()));
                fs::write(&batch, format!("put {} {}\nls -l {}\nbye\n", src.display(), dst.display(), dst.display()))
                    .context("writing the sftp batch")?;
                args.extend(["-b".into(), p(dir, &format!("sftp-{}.batch", family.label()))?]);
                args.extend(["-P".into(), port, format!("{target}:")]);
                ("sftp", Some(dst))
            }
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let status = self.run(&name, &self.client_ns, program, &argv, CLIENT_LIMIT)?;
        if run == SshRun::V1 {
            // The client must refuse protocol 1 (and say so), never log in.
            let log = self.log(&name);
            if status.success() || !log.contains("major versions differ") {
                bail!("{name}: expected OpenSSH to refuse SSH-1 ({status}); its log:\n{log}");
            }
            return Ok(());
        }
        if !status.success() {
            bail!("{name} failed ({status}); its log:\n{}", self.log(&name));
        }
        if let Some(dst) = uploaded {
            let got = fs::read_to_string(&dst).with_context(|| format!("{name}: upload missing"))?;
            if got != SFTP_PAYLOAD {
                bail!("{name}: the uploaded file differs");
            }
        }
        Ok(())
    }
}
