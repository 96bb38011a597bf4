//! Lab peers that send health data in clear: in the server namespace an HL7 v2 MLLP receiver
//! and a plain-HTTP FHIR server (small python3 scripts written into the lab dir) and dcmtk's
//! storescp; in the client namespace the real senders — mllp_send (python3-hl7), storescu and
//! echoscu (dcmtk), curl — each carrying one obviously fake patient ([`FAKE_PHI`]).
//! Must never write outside the lab dir nor connect anywhere but the lab's server.
//!
//! Measured with these tools (tcpdump in a private namespace): mllp_send frames each message
//! 0x0B … 0x1C 0x0D and waits for one ACK; storescu by default proposes every storage SOP class
//! dcmtk knows (64 classes, 128 presentation contexts, a 9.6 KB A-ASSOCIATE-RQ, CT the 11th),
//! with `-R` only the CT class of the file; echoscu proposes Verification only. dcmtk 3.6.7
//! (Debian 12) speaks IPv4 only (storescp listens on 0.0.0.0, storescu rejects "::1"), and
//! mllp_send 0.4.5 opens AF_INET sockets: over IPv6 the same `hl7.client.mllp_send` runs with
//! its socket module's AF_INET pointed at AF_INET6.
use std::{
    fs,
    net::{IpAddr, SocketAddr, TcpStream},
    thread,
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::{check_stop, Family, Lab};

pub const HL7_PORT: u16 = 2575;
pub const DICOM_PORT: u16 = 104;
pub const FHIR_PORT: u16 = 8080;

/// Most time one client may take.
const CLIENT_LIMIT: Duration = Duration::from_secs(10);
/// Most time the servers may take to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(10);

/// Debian's interpreter: python3-hl7 is installed for it (a `python3` earlier on PATH may not
/// have the module).
const PYTHON: &str = "/usr/bin/python3";

/// One real client run against one lab server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// mllp_send: one ADT^A01 v2.5 message over MLLP, the receiver ACKs it.
    MllpSend,
    /// storescu -R: one CT image, only its own SOP class proposed.
    StoreScu,
    /// storescu with its defaults: every storage SOP class proposed, the same CT image sent.
    StoreScuAll,
    /// echoscu: a C-ECHO, Verification proposed only.
    EchoScu,
    /// curl POST of a FHIR Patient (application/fhir+json).
    FhirPost,
    /// curl GET of that Patient.
    FhirGet,
}

impl Peer {
    pub fn port(self) -> u16 {
        match self {
            Peer::MllpSend => HL7_PORT,
            Peer::StoreScu | Peer::StoreScuAll | Peer::EchoScu => DICOM_PORT,
            Peer::FhirPost | Peer::FhirGet => FHIR_PORT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Peer::MllpSend => "mllp_send",
            Peer::StoreScu => "storescu -R",
            Peer::StoreScuAll => "storescu",
            Peer::EchoScu => "echoscu",
            Peer::FhirPost => "curl POST",
            Peer::FhirGet => "curl GET",
        }
    }

    /// The peers run over `family` (dcmtk here is IPv4 only).
    pub fn all(family: Family) -> &'static [Peer] {
        match family {
            Family::V4 => {
                &[Peer::MllpSend, Peer::StoreScu, Peer::StoreScuAll, Peer::EchoScu, Peer::FhirPost, Peer::FhirGet]
            }
            Family::V6 => &[Peer::MllpSend, Peer::FhirPost, Peer::FhirGet],
        }
    }
}

/// A client run that completed (its own success check passed).
#[derive(Clone, Copy, Debug)]
pub struct PlainRun {
    pub peer: Peer,
    pub family: Family,
}

/// Every spelling of the fake patients' data the clients send — names, MRNs, birth dates in
/// HL7/DICOM and FHIR form, the PID segment — none of which may appear in tlsmon's output.
/// Compared ASCII case-insensitively.
pub const FAKE_PHI: &[&str] = &[
    "ZZLIVE",
    "ZZLIVE^PATIENT",
    "ZZLIVE^DICOM",
    "Zzlivetest",
    "Zzgiven",
    "FAKE-LIVE",
    "FAKE-LIVE-0001",
    "FAKE-LIVE-0002",
    "19110101",
    "1911-01-01",
    "19120202",
    "1912-02-02",
    "19130303",
    "1913-03-03",
    "PID|",
    "|FAKE-LIVE-0001^^^LAB^MR||ZZLIVE^PATIENT||19110101|F",
    // The family name as hex and as a Rust byte-slice debug print, in case bytes were logged.
    "5a5a4c495645",
    "90, 90, 76, 73, 86, 69",
];

/// The entries of [`FAKE_PHI`] found in `text` (ASCII case-insensitive).
pub fn phi_leaks(text: &str) -> Vec<&'static str> {
    let hay = text.to_ascii_lowercase();
    FAKE_PHI.iter().copied().filter(|p| hay.contains(&p.to_ascii_lowercase())).collect()
}

/// What the clients send that holds the fake patients' data (the HL7 message, the DICOM
/// dump, the FHIR Patient): the leak check must find its values in these.
pub const SENT: [&str; 3] = [ADT_A01, CT_DUMP, PATIENT_JSON];

/// HL7 v2.5 ADT^A01 with a fake patient, segments ended by CR (mllp_send --loose reads it).
const ADT_A01: &str = "MSH|^~\\&|LIVESND|LAB|LIVERCV|LAB|20260101120000||ADT^A01|LIVE0001|P|2.5\r\
EVN|A01|20260101120000\r\
PID|1||FAKE-LIVE-0001^^^LAB^MR||ZZLIVE^PATIENT||19110101|F\r\
PV1|1|I\r";
/// What the receiver's ACK carries (mllp_send prints it).
const ACK_MSA: &str = "MSA|AA|LIVE0001";

/// dump2dcm input: a 2×2 CT image of a fake patient (file meta added by dump2dcm).
const CT_DUMP: &str = "\
(0002,0001) OB 00\\01
(0002,0002) UI =CTImageStorage
(0002,0003) UI [2.25.1001]
(0002,0010) UI =LittleEndianExplicit
(0008,0016) UI =CTImageStorage
(0008,0018) UI [2.25.1001]
(0008,0060) CS [CT]
(0010,0010) PN [ZZLIVE^DICOM]
(0010,0020) LO [FAKE-LIVE-0002]
(0010,0030) DA [19120202]
(0020,000d) UI [2.25.1002]
(0020,000e) UI [2.25.1003]
(0028,0002) US 1
(0028,0004) CS [MONOCHROME2]
(0028,0010) US 2
(0028,0011) US 2
(0028,0100) US 16
(0028,0101) US 12
(0028,0102) US 11
(0028,0103) US 0
(7fe0,0010) OW 0000\\0001\\0002\\0003
";

/// The FHIR Patient curl POSTs.
const PATIENT_JSON: &str = r#"{"resourceType":"Patient","name":[{"family":"Zzlivetest","given":["Zzgiven"]}],"gender":"female","birthDate":"1913-03-03"}"#;

/// HL7 MLLP receiver (dual-stack): reads 0x0B … 0x1C 0x0D frames, answers each with an MLLP
/// ACK (MSH … ACK^<trigger> … P|2.5, MSA|AA|<control id>).
const MLLP_SERVER: &str = r#"import socket, sys, threading
SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
def field(segment, n):
    parts = segment.split(b"|")
    return parts[n] if len(parts) > n else b""
def ack(message):
    msh = message.split(CR)[0]
    control = field(msh, 9)
    trigger = (field(msh, 8).split(b"^") + [b""])[1]
    return (b"MSH|^~\\&|LIVERCV|LAB|LIVESND|LAB|20260101120001||ACK^" + trigger + b"|ACK" + control
            + b"|P|2.5" + CR + b"MSA|AA|" + control + CR)
def serve(conn):
    buf = b""
    with conn:
        conn.settimeout(10)
        while True:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
            while EB + CR in buf:
                frame, buf = buf.split(EB + CR, 1)
                conn.sendall(SB + ack(frame[frame.find(SB) + 1:]) + EB + CR)
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
srv.bind(("::", int(sys.argv[1])))
srv.listen(16)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

/// Plain-HTTP FHIR server (dual-stack): POST /fhir/Patient → 201 with Location, GET
/// /fhir/Patient/1 → 200 with the stored Patient, both application/fhir+json.
const FHIR_SERVER: &str = r#"import json, socket, socketserver, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
stored = {}
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, code, body, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/fhir/Patient":
            return self.reply(404, b'{"resourceType":"OperationOutcome"}')
        stored["1"] = dict(json.loads(body), id="1")
        self.reply(201, json.dumps(stored["1"]).encode(), [("Location", "/fhir/Patient/1/_history/1")])
    def do_GET(self):
        if self.path != "/fhir/Patient/1" or "1" not in stored:
            return self.reply(404, b'{"resourceType":"OperationOutcome"}')
        self.reply(200, json.dumps(stored["1"]).encode())
class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    def server_bind(self):
        # No getfqdn (a DNS lookup from an isolated namespace): plain bind, dual-stack.
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "lab", self.server_address[1]
Server(("::", int(sys.argv[1])), Handler).serve_forever()
"#;

/// mllp_send over IPv6: the library's own `mllp_send` (options, --loose reader, MLLP framing,
/// ACK printing) with the socket family its client hard-codes (AF_INET) pointed at AF_INET6.
const MLLP_SEND_V6: &str = r#"import socket, sys, types
import hl7.client
hl7.client.socket = types.SimpleNamespace(
    AF_INET=socket.AF_INET6, SOCK_STREAM=socket.SOCK_STREAM, socket=socket.socket)
sys.argv[0] = "mllp_send"
hl7.client.mllp_send()
"#;

impl Lab {
    /// Writes the scripts and the fake patients' files into the lab dir, makes the CT file
    /// with dump2dcm, starts storescp, the MLLP receiver and the FHIR server in the server
    /// namespace, and waits until each accepts connections from the client namespace.
    pub fn start_plain_servers(&mut self) -> Result<()> {
        let dir = self.dir.clone();
        for (name, text) in [
            ("mllp_server.py", MLLP_SERVER),
            ("fhir_server.py", FHIR_SERVER),
            ("mllp_send_v6.py", MLLP_SEND_V6),
            ("adt_a01.hl7", ADT_A01),
            ("ct.dump", CT_DUMP),
            ("patient.json", PATIENT_JSON),
        ] {
            fs::write(dir.join(name), text).with_context(|| format!("writing {name}"))?;
        }
        fs::create_dir_all(dir.join("dicom-in")).context("creating the storescp output dir")?;
        let (dump, dcm) = (path(&dir, "ct.dump")?, path(&dir, "ct.dcm")?);
        let status = self.run("dump2dcm", &self.client_ns, "dump2dcm", &[&dump, &dcm], CLIENT_LIMIT)?;
        if !status.success() {
            bail!("dump2dcm failed ({status}): {}", self.log("dump2dcm"));
        }
        let server_ns = self.server_ns.clone();
        let dicom_in = path(&dir, "dicom-in")?;
        let dicom_port = DICOM_PORT.to_string();
        self.spawn("storescp", &server_ns, "storescp", &["-v", "-dhl", "+uf", "-od", &dicom_in, &dicom_port])?;
        let (mllp, fhir) = (path(&dir, "mllp_server.py")?, path(&dir, "fhir_server.py")?);
        self.spawn("mllp-server", &server_ns, PYTHON, &["-u", &mllp, &HL7_PORT.to_string()])?;
        self.spawn("fhir-server", &server_ns, PYTHON, &["-u", &fhir, &FHIR_PORT.to_string()])?;
        let mut targets = Vec::new();
        for family in Family::BOTH {
            targets.push(SocketAddr::new(self.server_addr(family), HL7_PORT));
            targets.push(SocketAddr::new(self.server_addr(family), FHIR_PORT));
        }
        targets.push(SocketAddr::new(self.server_addr(Family::V4), DICOM_PORT));
        self.wait_accepting(&targets)
    }

    /// Runs one clear-text peer over `family` and checks it really did its job (ACK received,
    /// image stored, HTTP 2xx with the expected answer); fails with its log when not.
    pub fn run_plain_client(&self, peer: Peer, family: Family) -> Result<PlainRun> {
        check_stop()?;
        let dir = &self.dir;
        let addr = self.server_addr(family);
        let host = addr.to_string();
        let port = peer.port().to_string();
        let url = |p: &str| match addr {
            IpAddr::V4(_) => format!("http://{addr}:{FHIR_PORT}{p}"),
            IpAddr::V6(_) => format!("http://[{addr}]:{FHIR_PORT}{p}"),
        };
        let (adt, dcm, patient) = (path(dir, "adt_a01.hl7")?, path(dir, "ct.dcm")?, path(dir, "patient.json")?);
        let send_v6 = path(dir, "mllp_send_v6.py")?;
        let body = format!("@{patient}");
        let (post_url, get_url) = (url("/fhir/Patient"), url("/fhir/Patient/1"));
        let stored_before = self.stored_images();
        let curl = ["-sS", "-f", "--max-time", "5", "-D", "-", "-H", "Accept: application/fhir+json"];
        let (program, args): (&str, Vec<&str>) = match (peer, family) {
            (Peer::MllpSend, Family::V4) => ("mllp_send", vec!["--loose", "-f", &adt, "-p", &port, &host]),
            (Peer::MllpSend, Family::V6) => (PYTHON, vec![&send_v6, "--loose", "-f", &adt, "-p", &port, &host]),
            (Peer::StoreScu, _) => ("storescu", vec!["-v", "-R", &host, &port, &dcm]),
            (Peer::StoreScuAll, _) => ("storescu", vec![&host, &port, &dcm]),
            (Peer::EchoScu, _) => ("echoscu", vec![&host, &port]),
            (Peer::FhirPost, _) => {
                let mut a = curl.to_vec();
                a.extend(["-H", "Content-Type: application/fhir+json", "--data-binary", &body, &post_url]);
                ("curl", a)
            }
            (Peer::FhirGet, _) => {
                let mut a = curl.to_vec();
                a.push(&get_url);
                ("curl", a)
            }
        };
        let name = format!("client-{}-{}", peer.name().replace(' ', "-"), family.label());
        let server = match peer.port() {
            HL7_PORT => "mllp-server",
            DICOM_PORT => "storescp",
            _ => "fhir-server",
        };
        let status = self
            .run(&name, &self.client_ns, program, &args, CLIENT_LIMIT)
            .with_context(|| format!("its log:\n{}\n{server}'s log:\n{}", self.log(&name), self.log(server)))?;
        let log = self.log(&name);
        let done = status.success()
            && match peer {
                Peer::MllpSend => log.contains(ACK_MSA),
                Peer::StoreScu | Peer::StoreScuAll => self.stored_images() == stored_before + 1,
                Peer::EchoScu => true,
                Peer::FhirPost => log.starts_with("HTTP/1.1 201") && log.contains("Location: /fhir/Patient/1"),
                Peer::FhirGet => log.starts_with("HTTP/1.1 200") && log.contains("\"resourceType\": \"Patient\""),
            };
        if !done {
            bail!("{} ({}) → {host} port {port} failed ({status}); its log:\n{log}", peer.name(), family.label());
        }
        Ok(PlainRun { peer, family })
    }

    /// Files storescp has written so far.
    fn stored_images(&self) -> usize {
        fs::read_dir(self.dir.join("dicom-in")).map_or(0, |d| d.count())
    }
}

fn path(dir: &std::path::Path, name: &str) -> Result<String> {
    dir.join(name).to_str().map(str::to_string).context("lab dir path is not UTF-8")
}
