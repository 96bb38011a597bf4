//! gen-phi HTTP/1.1 captures: FHIR (R4 JSON, DSTU2 JSON, XML), DICOMweb (QIDO/WADO/STOW), CDA,
//! Basic and Digest credentials, and a plain page. Must never emit a Content-Length that
//! disagrees with the body that follows it.
use std::io;

use serde_json::json;

use super::codec::{base64, md5_hex};
use super::dicom::el_explicit;
use super::flow::Pcap;
use super::{Capture, PASSWORD, USER};

pub const WADO_STUDY: &str = "1.2.826.0.1.3680043.9.9999.1";
pub const WADO_SERIES: &str = "1.2.826.0.1.3680043.9.9999.2";
pub const WADO_INSTANCE: &str = "1.2.826.0.1.3680043.9.9999.3";
pub const QIDO_QUERY: &str = "PatientName=ZZTEST%5EECHO&PatientBirthDate=19040404";
const BOUNDARY: &str = "DICOMwebBoundary9999";
const DIGEST_NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
const DIGEST_CNONCE: &str = "0a4f113b";
const DIGEST_REALM: &str = "portal@example.test";

/// A request or response: start line, headers (Content-Length added when there is a body).
fn msg(start: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut m = format!("{start}\r\n");
    for (k, v) in headers {
        m.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || start.starts_with("HTTP/") {
        m.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    m.push_str("\r\n");
    let mut b = m.into_bytes();
    b.extend_from_slice(body);
    b
}

fn exchange(p: &mut Pcap, port: u16, req: &[u8], rsp: &[u8]) -> io::Result<()> {
    let mut c = p.conn(false, port)?;
    c.send(0, req)?;
    c.send(1, rsp)?;
    c.close()
}

const DATE: (&str, &str) = ("Date", "Mon, 02 Jun 2025 08:00:00 GMT");

/// FHIR R4 Patient (keys in the usual order, `resourceType` first).
pub fn patient_json() -> String {
    concat!(
        r#"{"resourceType":"Patient","identifier":[{"system":"urn:oid:2.16.840.1.113883.19.5.99999","#,
        r#""value":"FAKE-MRN-0003"}],"name":[{"use":"official","family":"Zztestson","given":["Charlie"]}],"#,
        r#""telecom":[{"system":"phone","value":"555-0100","use":"home"}],"gender":"male","birthDate":"1903-03-03"}"#
    )
    .to_string()
}

fn fhir_json() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let host = ("Host", "fhir.example.test:8080");
    let body = patient_json();
    let req = msg(
        "POST /fhir/Patient HTTP/1.1",
        &[host, ("Content-Type", "application/fhir+json"), ("Accept", "application/fhir+json")],
        body.as_bytes(),
    );
    let rsp = msg(
        "HTTP/1.1 201 Created",
        &[DATE, ("Location", "/fhir/Patient/fake-0003/_history/1"), ("ETag", "W/\"1\"")],
        b"",
    );
    exchange(&mut p, 8080, &req, &rsp)?;
    let bundle = concat!(
        r#"{"resourceType":"Bundle","type":"searchset","total":1,"entry":[{"#,
        r#""fullUrl":"http://fhir.example.test:8080/fhir/Observation/fake-obs-1","resource":{"#,
        r#""resourceType":"Observation","id":"fake-obs-1","status":"final","#,
        r#""code":{"coding":[{"system":"http://loinc.org","code":"8867-4","display":"Heart rate"}]},"#,
        r#""subject":{"reference":"Patient/fake-0003"},"effectiveDateTime":"2025-06-01T09:30:00Z","#,
        r#""valueQuantity":{"value":72,"unit":"beats/minute","system":"http://unitsofmeasure.org","code":"/min"}}}]}"#
    );
    let req =
        msg("GET /fhir/Observation?patient=fake-0003 HTTP/1.1", &[host, ("Accept", "application/fhir+json")], b"");
    let rsp =
        msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "application/fhir+json;charset=UTF-8")], bundle.as_bytes());
    exchange(&mut p, 8080, &req, &rsp)?;
    p.finish()
}

fn fhir_dstu2_xml() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let host = ("Host", "fhir.example.test");
    let cond = concat!(
        r#"{"resourceType":"Condition","id":"fake-c1","#,
        r#""patient":{"reference":"Patient/fake-0004","display":"Zztestson, Delta"},"#,
        r#""code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003","display":"Hypertension"}]},"#,
        r#""clinicalStatus":"active","verificationStatus":"confirmed"}"#
    );
    let req = msg(
        "PUT /baseDstu2/Condition/fake-c1 HTTP/1.1",
        &[host, ("Content-Type", "application/json+fhir; charset=UTF-8")],
        cond.as_bytes(),
    );
    exchange(&mut p, 80, &req, &msg("HTTP/1.1 200 OK", &[DATE], b""))?;
    let enc = "<Encounter xmlns=\"http://hl7.org/fhir\"><status value=\"finished\"/>\
               <class><system value=\"http://terminology.hl7.org/CodeSystem/v3-ActCode\"/><code value=\"AMB\"/></class>\
               <subject><reference value=\"Patient/fake-0004\"/><display value=\"Zztestson, Delta\"/></subject>\
               <period><start value=\"2025-06-01T09:00:00Z\"/></period></Encounter>";
    let req = msg("POST /fhir/Encounter HTTP/1.1", &[host, ("Content-Type", "application/fhir+xml")], enc.as_bytes());
    let rsp = msg("HTTP/1.1 201 Created", &[DATE, ("Location", "/fhir/Encounter/fake-e1/_history/1")], b"");
    exchange(&mut p, 80, &req, &rsp)?;
    p.finish()
}

/// A Part 10 file: 128-byte preamble, "DICM", file meta (explicit VR LE), then a small data set.
pub fn part10(name: &str) -> Vec<u8> {
    let uid = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        if b.len() % 2 == 1 {
            b.push(0);
        }
        b
    };
    let mut meta = Vec::new();
    el_explicit(&mut meta, 2, 0x0001, "OB", &[0, 1]);
    el_explicit(&mut meta, 2, 0x0002, "UI", &uid(super::dicom::CT_STORAGE));
    el_explicit(&mut meta, 2, 0x0003, "UI", &uid(WADO_INSTANCE));
    el_explicit(&mut meta, 2, 0x0010, "UI", &uid(super::dicom::EXPLICIT_LE));
    el_explicit(&mut meta, 2, 0x0012, "UI", &uid("1.2.826.0.1.3680043.9.9999.100"));
    let mut f = vec![0u8; 128];
    f.extend_from_slice(b"DICM");
    el_explicit(&mut f, 2, 0, "UL", &(meta.len() as u32).to_le_bytes());
    f.extend_from_slice(&meta);
    el_explicit(&mut f, 8, 0x0016, "UI", &uid(super::dicom::CT_STORAGE));
    el_explicit(&mut f, 8, 0x0018, "UI", &uid(WADO_INSTANCE));
    el_explicit(&mut f, 8, 0x0060, "CS", b"CT");
    el_explicit(
        &mut f,
        0x10,
        0x0010,
        "PN",
        &uid(name).iter().map(|&c| if c == 0 { b' ' } else { c }).collect::<Vec<_>>(),
    );
    el_explicit(&mut f, 0x10, 0x0020, "LO", b"FAKE-MRN-0004");
    el_explicit(&mut f, 0x10, 0x0030, "DA", b"19040404");
    el_explicit(&mut f, 0x20, 0x000d, "UI", &uid(WADO_STUDY));
    el_explicit(&mut f, 0x20, 0x000e, "UI", &uid(WADO_SERIES));
    f
}

fn multipart(part: &[u8]) -> Vec<u8> {
    let mut b = format!("--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n").into_bytes();
    b.extend_from_slice(part);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

fn dicomweb() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let host = ("Host", "pacs.example.test:8042");
    let qido = json!([{
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "ZZTEST^ECHO"}]},
        "00100020": {"vr": "LO", "Value": ["FAKE-MRN-0004"]},
        "00100030": {"vr": "DA", "Value": ["19040404"]},
        "0020000D": {"vr": "UI", "Value": [WADO_STUDY]}
    }])
    .to_string();
    let req = msg(
        &format!("GET /dicom-web/studies?{QIDO_QUERY} HTTP/1.1"),
        &[host, ("Accept", "application/dicom+json")],
        b"",
    );
    let rsp = msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "application/dicom+json")], qido.as_bytes());
    exchange(&mut p, 8042, &req, &rsp)?;
    let ctype = format!("multipart/related; type=\"application/dicom\"; boundary={BOUNDARY}");
    let path = format!("/dicom-web/studies/{WADO_STUDY}/series/{WADO_SERIES}/instances/{WADO_INSTANCE}");
    let req =
        msg(&format!("GET {path} HTTP/1.1"), &[host, ("Accept", "multipart/related; type=\"application/dicom\"")], b"");
    let rsp = msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", &ctype)], &multipart(&part10("ZZTEST^ECHO")));
    exchange(&mut p, 8042, &req, &rsp)?;
    let req = msg(
        "POST /dicom-web/studies HTTP/1.1",
        &[host, ("Content-Type", &ctype), ("Accept", "application/dicom+json")],
        &multipart(&part10("ZZTEST^ECHO")),
    );
    let stored = json!({"00081190": {"vr": "UR", "Value": [format!("http://pacs.example.test:8042/dicom-web/studies/{WADO_STUDY}")]}})
        .to_string();
    let rsp = msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "application/dicom+json")], stored.as_bytes());
    exchange(&mut p, 8042, &req, &rsp)?;
    p.finish()
}

pub const CDA: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<ClinicalDocument xmlns=\"urn:hl7-org:v3\">\n\
  <typeId root=\"2.16.840.1.113883.1.3\" extension=\"POCD_HD000040\"/>\n\
  <templateId root=\"2.16.840.1.113883.10.20.22.1.1\"/>\n\
  <id root=\"2.16.840.1.113883.19.5.99999.1\" extension=\"FAKE-DOC-0005\"/>\n\
  <code code=\"34133-9\" codeSystem=\"2.16.840.1.113883.6.1\" displayName=\"Summarization of Episode Note\"/>\n\
  <title>Synthetic test summary</title>\n\
  <effectiveTime value=\"20250602080000+0000\"/>\n\
  <confidentialityCode code=\"N\" codeSystem=\"2.16.840.1.113883.5.25\"/>\n\
  <recordTarget>\n\
    <patientRole>\n\
      <id root=\"2.16.840.1.113883.19.5.99999.2\" extension=\"FAKE-MRN-0005\"/>\n\
      <patient>\n\
        <name><given>Foxtrot</given><family>Zztestson</family></name>\n\
        <administrativeGenderCode code=\"F\" codeSystem=\"2.16.840.1.113883.5.1\"/>\n\
        <birthTime value=\"19050505\"/>\n\
      </patient>\n\
    </patientRole>\n\
  </recordTarget>\n\
</ClinicalDocument>\n";

fn cda() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let req = msg(
        "POST /documents HTTP/1.1",
        &[("Host", "docs.example.test"), ("Content-Type", "application/xml")],
        CDA.as_bytes(),
    );
    exchange(&mut p, 80, &req, &msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "text/plain")], b"stored\n"))?;
    p.finish()
}

pub fn basic_token() -> String {
    base64(format!("{USER}:{PASSWORD}").as_bytes())
}

fn http_basic() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let auth = format!("Basic {}", basic_token());
    let req = msg("GET /portal HTTP/1.1", &[("Host", "portal.example.test"), ("Authorization", &auth)], b"");
    let page = b"<html>portal</html>";
    exchange(&mut p, 80, &req, &msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "text/html")], page))?;
    p.finish()
}

/// RFC 7616 (MD5, qop=auth) response for GET /portal.
pub fn digest_response() -> String {
    let ha1 = md5_hex(format!("{USER}:{DIGEST_REALM}:{PASSWORD}").as_bytes());
    let ha2 = md5_hex(b"GET:/portal");
    md5_hex(format!("{ha1}:{DIGEST_NONCE}:00000001:{DIGEST_CNONCE}:auth:{ha2}").as_bytes())
}

fn http_digest() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 80)?;
    let host = ("Host", "portal.example.test");
    c.send(0, &msg("GET /portal HTTP/1.1", &[host], b""))?;
    let challenge = format!("Digest realm=\"{DIGEST_REALM}\", qop=\"auth\", algorithm=MD5, nonce=\"{DIGEST_NONCE}\"");
    c.send(1, &msg("HTTP/1.1 401 Unauthorized", &[DATE, ("WWW-Authenticate", &challenge)], b""))?;
    let auth = format!(
        "Digest username=\"{USER}\", realm=\"{DIGEST_REALM}\", nonce=\"{DIGEST_NONCE}\", uri=\"/portal\", \
         algorithm=MD5, response=\"{}\", qop=auth, nc=00000001, cnonce=\"{DIGEST_CNONCE}\"",
        digest_response()
    );
    c.send(0, &msg("GET /portal HTTP/1.1", &[host, ("Authorization", &auth)], b""))?;
    c.send(1, &msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "text/html")], b"<html>portal</html>"))?;
    c.close()?;
    p.finish()
}

fn http_plain() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let req = msg("GET /index.html HTTP/1.1", &[("Host", "www.example.test"), ("Accept", "text/html")], b"");
    let rsp = msg("HTTP/1.1 200 OK", &[DATE, ("Content-Type", "text/html")], b"<html>hello</html>");
    exchange(&mut p, 80, &req, &rsp)?;
    p.finish()
}

pub fn captures() -> io::Result<Vec<Capture>> {
    let fhir = |types: &[&str]| {
        json!({"type": "plaintext", "plaintext.protocol": "fhir", "plaintext.http.fhir_resource_types": types,
               "findings": ["plaintext.phi"]})
    };
    let dw = |svc: &str| {
        json!({"type": "plaintext", "plaintext.protocol": "dicomweb", "plaintext.http.dicomweb_service": svc,
               "findings": ["plaintext.phi"]})
    };
    let cred = |kind: &str| {
        json!({"type": "plaintext", "plaintext.protocol": "http", "plaintext.credentials": [kind],
               "findings": ["plaintext.credentials"]})
    };
    Ok(vec![
        Capture {
            file: "fhir-json.pcap",
            description: "FHIR R4 JSON on port 8080: POST Patient (201 Created), then GET Observation search \
                          answered with a searchset Bundle",
            expect: vec![fhir(&["Patient"]), fhir(&["Observation", "Bundle"])],
            bytes: fhir_json()?,
        },
        Capture {
            file: "fhir-xml-dstu2.pcap",
            description: "FHIR on port 80: DSTU2 PUT Condition (application/json+fhir), then POST Encounter as \
                          application/fhir+xml",
            expect: vec![fhir(&["Condition"]), fhir(&["Encounter"])],
            bytes: fhir_dstu2_xml()?,
        },
        Capture {
            file: "dicomweb.pcap",
            description: "DICOMweb on port 8042, three connections: QIDO-RS study search, WADO-RS instance \
                          retrieve (multipart Part 10), STOW-RS store",
            expect: vec![dw("qido-rs"), dw("wado-rs"), dw("stow-rs")],
            bytes: dicomweb()?,
        },
        Capture {
            file: "cda.pcap",
            description: "HL7 CDA R2 ClinicalDocument POSTed as application/xml on port 80",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "cda", "plaintext.http.cda": true,
                                "findings": ["plaintext.phi"]})],
            bytes: cda()?,
        },
        Capture {
            file: "http-basic.pcap",
            description: "HTTP Basic credentials on GET /portal (port 80)",
            expect: vec![cred("http-basic")],
            bytes: http_basic()?,
        },
        Capture {
            file: "http-digest.pcap",
            description: "HTTP Digest: 401 challenge then GET /portal with an MD5 Digest Authorization (port 80)",
            expect: vec![cred("http-digest")],
            bytes: http_digest()?,
        },
        Capture {
            file: "http-plain.pcap",
            description: "Negative: plain HTTP page without health data or credentials",
            expect: vec![],
            bytes: http_plain()?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::super::flow::parse::streams;
    use super::*;

    /// Splits each HTTP message off a stream by its Content-Length, checking the body fits.
    fn messages(mut s: &[u8]) -> Vec<String> {
        let mut starts = Vec::new();
        while !s.is_empty() {
            let end = s.windows(4).position(|w| w == b"\r\n\r\n").expect("header end") + 4;
            let head = std::str::from_utf8(&s[..end]).expect("ascii head");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map_or(0, |v| v.trim().parse().expect("number"));
            assert!(end + len <= s.len(), "body shorter than Content-Length");
            starts.push(head.lines().next().unwrap_or_default().to_string());
            s = &s[end + len..];
        }
        starts
    }

    #[test]
    fn content_lengths_frame_every_message() {
        for bytes in [fhir_json(), fhir_dstu2_xml(), dicomweb(), cda(), http_basic(), http_digest(), http_plain()] {
            for [c, s] in streams(&bytes.unwrap()) {
                let (req, rsp) = (messages(&c), messages(&s));
                assert_eq!(req.len(), rsp.len());
                assert!(rsp.iter().all(|l| l.starts_with("HTTP/1.1 ")));
            }
        }
    }

    #[test]
    fn part10_has_preamble_and_consistent_meta_length() {
        let f = part10("ZZTEST^ECHO");
        assert_eq!(&f[128..132], b"DICM");
        let meta_len = u32::from_le_bytes([f[140], f[141], f[142], f[143]]) as usize;
        // The data set after the meta group starts with (0008,0016).
        assert_eq!(&f[144 + meta_len..144 + meta_len + 4], &[8, 0, 0x16, 0]);
    }

    #[test]
    fn patient_body_is_fhir_json() {
        let v: serde_json::Value = serde_json::from_str(&patient_json()).unwrap();
        assert_eq!(v["name"][0]["family"], "Zztestson");
        assert_eq!(v["birthDate"], "1903-03-03");
    }
}
