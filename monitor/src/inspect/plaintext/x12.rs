//! Inspect, plaintext, ASC X12: finds a fixed-width ISA header anywhere in a flow head and
//! reads the GS08 version and ST01 transaction set ids. Must never keep any other element
//! (sender and receiver ids, names, member ids, dates, amounts).
use super::facts::{push_distinct, Confidence, X12Meta};
use super::scan::validated;

const ISA_LEN: usize = 106;
/// Offsets of the element separator inside an ISA segment (fixed widths).
const SEPS: [usize; 16] = [3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103];

/// X12 in either direction: transaction sets of both (request then response, e.g. 270 and
/// 271), the version of the first interchange, the better confidence.
pub(super) fn detect(client: &[u8], server: &[u8]) -> Option<(X12Meta, Confidence)> {
    let mut out: Option<(X12Meta, Confidence)> = None;
    for (meta, conf) in [client, server].into_iter().filter_map(scan) {
        match &mut out {
            None => out = Some((meta, conf)),
            Some((m, c)) => {
                for t in meta.transaction_sets {
                    push_distinct(&mut m.transaction_sets, t);
                }
                m.version = m.version.take().or(meta.version);
                *c = (*c).max(conf);
            }
        }
    }
    out
}

fn scan(buf: &[u8]) -> Option<(X12Meta, Confidence)> {
    let mut from = 0usize;
    while let Some(off) = buf.get(from..).and_then(|b| super::scan::find(b, b"ISA")) {
        let start = from + off;
        if let Some(r) = interchange(&buf[start..]) {
            return Some(r);
        }
        from = start + 1;
    }
    None
}

/// A valid ISA at the start of `b`: (element separator, segment terminator, ISA12 version).
fn isa(b: &[u8]) -> Option<(u8, u8, &[u8])> {
    let seg = b.get(..ISA_LEN)?;
    let sep = seg[3];
    let term = seg[105];
    let bad = |c: u8| c.is_ascii_alphanumeric() || c == b' ';
    if bad(sep) || bad(term) || term == sep || seg[104] == sep {
        return None;
    }
    for (i, &c) in seg.iter().enumerate().take(105) {
        if SEPS.contains(&i) != (c == sep) {
            return None;
        }
    }
    let version = &seg[84..89];
    if !version.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((sep, term, version))
}

fn interchange(b: &[u8]) -> Option<(X12Meta, Confidence)> {
    let (sep, term, isa12) = isa(b)?;
    let mut meta = X12Meta::default();
    let mut gs08 = None;
    let mut rest = &b[ISA_LEN..];
    // Each segment must be terminated inside the buffer: a cut one is not read.
    while let Some(end) = rest.iter().position(|&c| c == term) {
        let mut seg = &rest[..end];
        while let Some((&c, tail)) = seg.split_first() {
            if c != b'\r' && c != b'\n' {
                break;
            }
            seg = tail;
        }
        let mut el = seg.split(|&c| c == sep);
        match el.next() {
            Some(b"GS") if gs08.is_none() => {
                gs08 = el.nth(7).and_then(|v| validated(v, 12, |c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            }
            Some(b"ST") => {
                if let Some(id) =
                    el.next().filter(|v| v.len() == 3).and_then(|v| validated(v, 3, |c| c.is_ascii_digit()))
                {
                    push_distinct(&mut meta.transaction_sets, id);
                }
            }
            _ => {}
        }
        rest = &rest[end + 1..];
    }
    meta.version = gs08.or_else(|| validated(isa12, 12, |c| c.is_ascii_digit()));
    let conf = if meta.transaction_sets.is_empty() { Confidence::Medium } else { Confidence::High };
    Some((meta, conf))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) const CLAIM: &[u8] = b"ISA*00*          *00*          *ZZ*FAKESENDER     *ZZ*FAKERECEIVER   *260101*1200*^*00501*000000001*0*T*:~\r\n\
GS*HC*FAKESENDER*FAKERECEIVER*20260101*1200*1*X*005010X222A1~\r\n\
ST*837*0001*005010X222A1~\r\nNM1*IL*1*ZZTEST*ALPHA****MI*FAKE-MRN-0001~\r\nDMG*D8*19010101*F~\r\nSE*5*0001~\r\n\
ST*835*0002~\r\nSE*2*0002~\r\nGE*2*1~\r\nIEA*1*000000001~\r\n";

    #[test]
    fn claim_interchange() {
        assert_eq!(CLAIM[105], b'~');
        let (m, c) = detect(CLAIM, b"").unwrap();
        assert_eq!(c, Confidence::High);
        assert_eq!(m.transaction_sets, vec!["837", "835"]);
        assert_eq!(m.version.as_deref(), Some("005010X222A1"));
    }

    #[test]
    fn inside_another_payload_and_other_separators() {
        let mut body = b"POST /edi HTTP/1.1\r\nContent-Length: 500\r\n\r\n".to_vec();
        body.extend(CLAIM.iter().map(|&c| match c {
            b'*' => b'|',
            b'~' => b'\n',
            c => c,
        }));
        // '\n' as terminator: the CR LF tolerance must not break parsing.
        let (m, c) = detect(b"", &body).unwrap();
        assert_eq!(c, Confidence::High);
        assert_eq!(m.transaction_sets, vec!["837", "835"]);
    }

    #[test]
    fn both_directions_merge() {
        let resp = String::from_utf8_lossy(CLAIM).replace("ST*837", "ST*271").replace("ST*835", "ST*999");
        let (m, c) = detect(&CLAIM[..108], resp.as_bytes()).unwrap();
        assert_eq!(c, Confidence::High);
        assert_eq!(m.transaction_sets, vec!["271", "999"]);
        assert_eq!(m.version.as_deref(), Some("00501"), "first interchange's version");
        let (m, _) = detect(CLAIM, resp.as_bytes()).unwrap();
        assert_eq!(m.transaction_sets, vec!["837", "835", "271", "999"]);
    }

    #[test]
    fn isa_alone_is_medium_with_isa12() {
        let (m, c) = detect(&CLAIM[..108], b"").unwrap();
        assert_eq!(c, Confidence::Medium);
        assert_eq!(m.version.as_deref(), Some("00501"));
        assert!(m.transaction_sets.is_empty());
        assert!(detect(&CLAIM[..105], b"").is_none());
    }

    #[test]
    fn bad_isa_rejected() {
        let mut bad = CLAIM.to_vec();
        bad[20] = b'X';
        assert!(detect(&bad, b"").is_none());
        assert!(detect(b"ISA is a bus", b"").is_none());
    }
}
