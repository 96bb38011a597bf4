//! Inspect, plaintext, HTTP/1.x: walks pipelined requests and responses, maps methods and media
//! types to closed sets, finds FHIR, DICOMweb and CDA content and Basic/Digest authorization.
//! Must never keep a path, a query, a header value or a body byte.
use super::facts::{push_distinct, Confidence, Credential, HttpMeta, Protocol};
use super::fhir;
use super::scan::{find_ci, starts_ci};

const MAX_MESSAGES: usize = 8;
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Fhir,
    Dicom,
    Other,
}

/// Media types reported, with what they decide.
const MEDIA: &[(&str, Kind)] = &[
    ("application/fhir+json", Kind::Fhir),
    ("application/fhir+xml", Kind::Fhir),
    ("application/json+fhir", Kind::Fhir),
    ("application/xml+fhir", Kind::Fhir),
    ("application/dicom", Kind::Dicom),
    ("application/dicom+json", Kind::Dicom),
    ("application/dicom+xml", Kind::Dicom),
    ("text/xml", Kind::Other),
    ("application/xml", Kind::Other),
    ("application/json", Kind::Other),
];
const MULTIPART_DICOM: &str = "multipart/related; type=application/dicom";

/// A media type (parameters ignored but multipart/related's `type`) from the closed list.
fn media(value: &[u8]) -> Option<(&'static str, Kind)> {
    let mut parts = value.split(|&b| b == b';');
    let mt = parts.next()?.trim_ascii();
    if mt.eq_ignore_ascii_case(b"multipart/related") {
        let dicom = parts.any(|p| {
            let p = p.trim_ascii();
            starts_ci(p, b"type=") && starts_ci(p[5..].strip_prefix(b"\"").unwrap_or(&p[5..]), b"application/dicom")
        });
        return Some(if dicom { (MULTIPART_DICOM, Kind::Dicom) } else { ("multipart/related", Kind::Other) });
    }
    MEDIA.iter().find(|(m, _)| mt.eq_ignore_ascii_case(m.as_bytes())).copied()
}

/// What the HTTP detector found.
pub(super) struct Http {
    pub protocol: Protocol,
    pub confidence: Option<Confidence>,
    pub meta: HttpMeta,
    pub credentials: Vec<Credential>,
}

#[derive(Default)]
struct Acc {
    meta: HttpMeta,
    creds: Vec<Credential>,
    fhir_strong: bool,
    fhir_path: bool,
    dicom_strong: bool,
    generic_type: Option<&'static str>,
}

pub(super) fn detect(client: &[u8], server: &[u8]) -> Option<Http> {
    let mut acc = Acc::default();
    let requests = walk(client, true, &mut acc);
    let responses = walk(server, false, &mut acc);
    if requests == 0 && responses == 0 {
        return None;
    }
    let m = &mut acc.meta;
    if m.content_type.is_none() {
        m.content_type = acc.generic_type;
    }
    let (protocol, confidence) = if acc.fhir_strong {
        (Protocol::Fhir, Some(Confidence::High))
    } else if acc.dicom_strong {
        (Protocol::Dicomweb, Some(Confidence::High))
    } else if m.cda {
        (Protocol::Cda, Some(Confidence::High))
    } else if acc.fhir_path {
        (Protocol::Fhir, Some(Confidence::Medium))
    } else if m.dicomweb_service.is_some() {
        (Protocol::Dicomweb, Some(Confidence::Medium))
    } else {
        (Protocol::Http, None)
    };
    Some(Http { protocol, confidence, meta: acc.meta, credentials: acc.creds })
}

fn line(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let nl = b.iter().position(|&c| c == b'\n')?;
    let l = &b[..nl];
    Some((l.strip_suffix(b"\r").unwrap_or(l), &b[nl + 1..]))
}

/// Walk up to [`MAX_MESSAGES`] messages of one direction; returns how many started validly.
fn walk(buf: &[u8], request: bool, acc: &mut Acc) -> usize {
    let mut rest = buf;
    let mut n = 0;
    while n < MAX_MESSAGES {
        let Some((start, mut after)) = line(rest) else { break };
        let target = if request {
            let Some((method, target)) = request_line(start) else { break };
            if n == 0 {
                acc.meta.method = method;
            }
            Some((method, target))
        } else {
            if !(starts_ci(start, b"HTTP/1.") && start.len() >= 12 && start[9..12].iter().all(u8::is_ascii_digit)) {
                break;
            }
            None
        };
        n += 1;
        // Headers.
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut ended = false;
        let mut dicom_accept = false;
        while let Some((h, next)) = line(after) {
            after = next;
            if h.is_empty() {
                ended = true;
                break;
            }
            let Some(colon) = h.iter().position(|&c| c == b':') else { continue };
            let (name, value) = (h[..colon].trim_ascii(), h[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-type") {
                if let Some((m, kind)) = media(value) {
                    match kind {
                        Kind::Fhir => acc.fhir_strong = true,
                        Kind::Dicom => acc.dicom_strong = true,
                        Kind::Other => {}
                    }
                    if kind == Kind::Other {
                        acc.generic_type.get_or_insert(m);
                    } else if acc.meta.content_type.is_none() {
                        acc.meta.content_type = Some(m);
                    }
                }
            } else if name.eq_ignore_ascii_case(b"accept") {
                for v in value.split(|&c| c == b',') {
                    match media(v).map(|(_, k)| k) {
                        Some(Kind::Fhir) => acc.fhir_strong = true,
                        Some(Kind::Dicom) => {
                            acc.dicom_strong = true;
                            dicom_accept = true;
                        }
                        _ => {}
                    }
                }
            } else if name.eq_ignore_ascii_case(b"authorization") || name.eq_ignore_ascii_case(b"proxy-authorization") {
                let scheme = value.split(|&c| c == b' ').next().unwrap_or_default();
                if scheme.eq_ignore_ascii_case(b"basic") {
                    push_distinct(&mut acc.creds, Credential::HttpBasic);
                } else if scheme.eq_ignore_ascii_case(b"digest") {
                    push_distinct(&mut acc.creds, Credential::HttpDigest);
                }
            } else if name.eq_ignore_ascii_case(b"content-length") {
                length = std::str::from_utf8(value).ok().filter(|v| v.len() <= 12).and_then(|v| v.parse().ok());
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = find_ci(value, b"chunked").is_some();
            }
        }
        if let Some((method, target)) = target {
            let path = target_path(target);
            let before = acc.meta.fhir_resource_types.len();
            fhir::path_resources(path, &mut acc.meta.fhir_resource_types);
            acc.fhir_path |= acc.meta.fhir_resource_types.len() > before;
            let query = target.contains(&b'?');
            if let Some(svc) = dicomweb(method, path, query || dicom_accept) {
                acc.meta.dicomweb_service.get_or_insert(svc);
            }
        }
        if !ended {
            break; // headers cut by the buffer
        }
        // Body head: up to Content-Length; a chunked or unbounded body ends the walk.
        let mut body = after;
        if chunked {
            body = line(body).map_or(&[][..], |(_, b)| b);
        }
        let len = match length {
            Some(l) if !chunked => l.min(body.len()),
            _ if request && !chunked => 0,
            _ => body.len(),
        };
        let probe = fhir::body(&body[..len], &mut acc.meta.fhir_resource_types);
        acc.fhir_strong |= probe.fhir;
        acc.meta.cda |= probe.cda;
        match length {
            Some(l) if !chunked && l <= body.len() => rest = &body[l..],
            None if request && !chunked => rest = body,
            _ => break,
        }
    }
    n
}

/// `METHOD SP target SP HTTP/1.x`: (method from the closed set, target).
fn request_line(l: &[u8]) -> Option<(Option<&'static str>, &[u8])> {
    let mut it = l.split(|&c| c == b' ');
    let (m, target, version) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || !starts_ci(version, b"HTTP/1.") || m.is_empty() || m.len() > 16 {
        return None;
    }
    if !m.iter().all(|c| c.is_ascii_uppercase() || *c == b'-') || target.is_empty() {
        return None;
    }
    Some((METHODS.iter().copied().find(|x| x.as_bytes() == m), target))
}

/// The path of a request target (scheme and authority of an absolute form dropped, query and
/// fragment cut).
fn target_path(t: &[u8]) -> &[u8] {
    let mut p = t;
    if let Some(i) = super::scan::find(p, b"://") {
        let after = &p[i + 3..];
        p = after.iter().position(|&c| c == b'/').map_or(&[][..], |s| &after[s..]);
    }
    let end = p.iter().position(|&c| c == b'?' || c == b'#').unwrap_or(p.len());
    &p[..end]
}

fn is_uid(s: &[u8]) -> bool {
    (1..=64).contains(&s.len()) && s[0].is_ascii_digit() && s.iter().all(|&c| c.is_ascii_digit() || c == b'.')
}

/// DICOMweb service from the method and path: STOW-RS, WADO-RS or QIDO-RS.
fn dicomweb(method: Option<&str>, path: &[u8], search_hint: bool) -> Option<&'static str> {
    let segs: Vec<&[u8]> = path.split(|&c| c == b'/').filter(|s| !s.is_empty()).take(32).collect();
    let first = segs.iter().position(|s| matches!(*s, b"studies" | b"series" | b"instances"))?;
    let tail = &segs[first..];
    // Walk collection/uid pairs.
    let mut i = 0;
    let mut uids = 0;
    let mut last_has_uid = false;
    while let Some(&coll) = tail.get(i) {
        if !matches!(coll, b"studies" | b"series" | b"instances") {
            break;
        }
        last_has_uid = tail.get(i + 1).is_some_and(|s| is_uid(s));
        if !last_has_uid {
            i += 1;
            break;
        }
        uids += 1;
        i += 2;
    }
    let extra = tail.get(i..).unwrap_or_default();
    let retrieve_leaf =
        extra.first().is_some_and(|s| matches!(*s, b"frames" | b"rendered" | b"metadata" | b"thumbnail" | b"bulkdata"));
    match method {
        Some("POST") if tail[0] == b"studies" && uids <= 1 && extra.is_empty() => Some("stow-rs"),
        Some("GET" | "HEAD") if uids >= 1 && (last_has_uid && extra.is_empty() || retrieve_leaf) => Some("wado-rs"),
        Some("GET" | "HEAD") if !last_has_uid && extra.is_empty() && (search_hint || uids >= 1) => Some("qido-rs"),
        _ => None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn run(c: &[u8], s: &[u8]) -> Http {
        detect(c, s).unwrap()
    }

    pub(in super::super) const FHIR_GET: &[u8] = b"GET /fhir/Patient/FAKE-MRN-0001 HTTP/1.1\r\nHost: ehr.example.test\r\nAccept: application/fhir+json\r\nAuthorization: Basic RkFLRS1VU0VSMDE6RmFrZVBhc3Mx\r\n\r\n";
    pub(in super::super) const FHIR_RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json; charset=utf-8\r\nContent-Length: 99\r\n\r\n{\"resourceType\":\"Patient\",\"id\":\"FAKE-MRN-0001\",\"name\":[{\"family\":\"ZZTEST\",\"given\":[\"ALPHA\"]}]}";

    #[test]
    fn fhir_request_and_response() {
        let h = run(FHIR_GET, FHIR_RESP);
        assert_eq!((h.protocol, h.confidence), (Protocol::Fhir, Some(Confidence::High)));
        assert_eq!(h.meta.method, Some("GET"));
        assert_eq!(h.meta.content_type, Some("application/fhir+json"));
        assert_eq!(h.meta.fhir_resource_types, vec!["Patient"]);
        assert_eq!(h.credentials, vec![Credential::HttpBasic]);
    }

    #[test]
    fn fhir_path_alone_is_medium_and_pipelining() {
        let c = b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\nPOST /baseR4/Observation?code=FAKE HTTP/1.1\r\nContent-Length: 2\r\nProxy-Authorization: Digest username=\"u\"\r\n\r\n{}GET /baseR4/Encounter HTTP/1.1\r\n\r\n";
        let h = run(c, b"");
        assert_eq!((h.protocol, h.confidence), (Protocol::Fhir, Some(Confidence::Medium)));
        assert_eq!(h.meta.fhir_resource_types, vec!["Observation", "Encounter"]);
        assert_eq!(h.credentials, vec![Credential::HttpDigest]);
        assert_eq!(h.meta.method, Some("GET"));
    }

    #[test]
    fn dicomweb_services() {
        let svc = |c: &[u8]| run(c, b"").meta.dicomweb_service;
        assert_eq!(svc(b"GET /dicom-web/studies?PatientID=FAKE-MRN-0001 HTTP/1.1\r\n\r\n"), Some("qido-rs"));
        assert_eq!(svc(b"GET /dicom-web/studies/1.2.3/series HTTP/1.1\r\n\r\n"), Some("qido-rs"));
        assert_eq!(svc(b"GET /dicom-web/studies/1.2.3/series/4.5/instances/6.7 HTTP/1.1\r\n\r\n"), Some("wado-rs"));
        assert_eq!(svc(b"GET /wado/studies/1.2.3/series/4.5/instances/6.7/frames/1 HTTP/1.1\r\n\r\n"), Some("wado-rs"));
        assert_eq!(svc(b"GET /wado/studies/1.2.3/metadata HTTP/1.1\r\n\r\n"), Some("wado-rs"));
        assert_eq!(svc(b"POST /dicom-web/studies HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), Some("stow-rs"));
        assert_eq!(svc(b"GET /university/studies HTTP/1.1\r\n\r\n"), None);
        let h = run(b"POST /dicom-web/studies HTTP/1.1\r\nContent-Type: multipart/related; type=\"application/dicom\"; boundary=x\r\n\r\n", b"");
        assert_eq!((h.protocol, h.confidence), (Protocol::Dicomweb, Some(Confidence::High)));
        assert_eq!(h.meta.content_type, Some(MULTIPART_DICOM));
        let h = run(b"GET /dicom-web/studies/1.2.3/series/4.5/instances/6.7 HTTP/1.1\r\n\r\n", b"");
        assert_eq!((h.protocol, h.confidence), (Protocol::Dicomweb, Some(Confidence::Medium)));
    }

    #[test]
    fn cda_and_plain_html() {
        let s = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 80\r\n\r\n<ClinicalDocument xmlns=\"urn:hl7-org:v3\"><recordTarget>ZZTEST</recordTarget>";
        let h = run(b"GET /docs/FAKE-MRN-0001.xml HTTP/1.1\r\n\r\n", s);
        assert_eq!((h.protocol, h.confidence, h.meta.cda), (Protocol::Cda, Some(Confidence::High), true));
        assert_eq!(h.meta.content_type, Some("text/xml"));
        let h = run(
            b"GET / HTTP/1.1\r\nHost: www.example.test\r\nAccept: text/html\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n\r\n<html></html>",
        );
        assert_eq!((h.protocol, h.confidence), (Protocol::Http, None));
        assert_eq!(h.meta, HttpMeta { method: Some("GET"), ..HttpMeta::default() });
        assert!(h.credentials.is_empty());
    }

    #[test]
    fn not_http() {
        assert!(detect(b"GET / HTTP/1.1", b"").is_none(), "request line must be complete");
        assert!(detect(b"hello world\r\n", b"SSH-2.0-x\r\n").is_none());
        let h = run(b"PROPFIND /x HTTP/1.1\r\n\r\n", b"");
        assert_eq!(h.meta.method, None);
    }
}
