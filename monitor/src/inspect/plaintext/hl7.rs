//! Inspect, plaintext, HL7 v2: MLLP framing, FHS/BHS batches and MSH headers (message type,
//! version, count). Must never read any segment but MSH, nor keep any MSH field but 9 and 12
//! (validated), whatever else the message carries.
use super::facts::{push_distinct, Confidence, Hl7Meta};
use super::scan::validated;

const MLLP_START: u8 = 0x0B;
const MLLP_END: u8 = 0x1C;

/// HL7 v2 in either direction, with how sure the detection is.
pub(super) fn detect(client: &[u8], server: &[u8], port: u16) -> Option<(Hl7Meta, Confidence)> {
    let mut meta = Hl7Meta::default();
    let mut best: Option<Confidence> = None;
    for buf in [client, server] {
        if let Some(c) = scan(buf, &mut meta) {
            best = best.max(Some(c));
        }
    }
    let mut conf = best?;
    if conf == Confidence::Low && port == 2575 {
        conf = Confidence::Medium;
    }
    Some((meta, conf))
}

/// A byte usable as an HL7 delimiter: printable ASCII, neither a letter, a digit nor a space.
fn is_delim(b: u8) -> bool {
    b.is_ascii_graphic() && !b.is_ascii_alphanumeric()
}

fn is_segment_id(s: &[u8]) -> bool {
    s.len() >= 3 && s[0].is_ascii_uppercase() && s[1..3].iter().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A header segment (MSH, FHS, BHS) at the start of `s`, with its field separator.
fn header(s: &[u8]) -> Option<&'static str> {
    let id = s.get(..3)?;
    let sep = *s.get(3)?;
    if !is_delim(sep) {
        return None;
    }
    ["MSH", "FHS", "BHS"].into_iter().find(|h| h.as_bytes() == id)
}

/// Walk one direction's segments; record MSH facts in `meta`. None when the bytes are not HL7.
fn scan(buf: &[u8], meta: &mut Hl7Meta) -> Option<Confidence> {
    let mllp = buf.first() == Some(&MLLP_START);
    let body = if mllp { &buf[1..] } else { buf };
    if mllp {
        // A segment id must follow the start block.
        if !is_segment_id(body) {
            return None;
        }
    } else if header(body).is_none() {
        return None;
    }
    let mut conf = Confidence::Low;
    let mut rest = buf;
    while !rest.is_empty() {
        let end = rest.iter().position(|&b| matches!(b, b'\r' | b'\n' | MLLP_START | MLLP_END));
        let (seg, terminated) = match end {
            Some(e) => (&rest[..e], true),
            None => (rest, false),
        };
        if let Some(&d) = end.and_then(|e| rest.get(e)) {
            if d == MLLP_START {
                meta.mllp = true;
            }
        }
        if !seg.is_empty() {
            if seg.iter().any(|&b| b < 0x20 && b != b'\t') {
                break; // binary: not HL7 any more
            }
            match header(seg) {
                Some("MSH") => {
                    meta.messages = meta.messages.saturating_add(1);
                    conf = conf.max(Confidence::Medium);
                    if let Some((ty, version)) = msh(seg, terminated) {
                        if let Some(t) = ty {
                            push_distinct(&mut meta.message_types, t);
                            conf = Confidence::High;
                        }
                        if meta.version.is_none() {
                            meta.version = version;
                        }
                    }
                }
                Some(_) => {
                    meta.batch = true;
                    conf = conf.max(Confidence::Medium);
                }
                None => {}
            }
        }
        rest = match end {
            Some(e) => &rest[e + 1..],
            None => &[],
        };
    }
    if mllp {
        meta.mllp = true;
    }
    Some(conf)
}

/// MSH-9 (`code^trigger`, validated) and MSH-12 (version, validated) of one MSH segment.
/// A field the buffer cuts (not followed by a separator or a segment end) is dropped.
fn msh(seg: &[u8], terminated: bool) -> Option<(Option<String>, Option<String>)> {
    let fs = *seg.get(3)?;
    let fields: Vec<&[u8]> = seg.split(|&b| b == fs).take(13).collect();
    // fields[0] = "MSH", fields[1] = MSH-2 (encoding characters), fields[n-1] = MSH-n.
    let cs = *fields.get(1)?.first()?;
    if !is_delim(cs) || cs == fs {
        return None;
    }
    let complete = |i: usize| fields.len() > i + 1 || terminated;
    let ty = fields.get(8).filter(|_| complete(8)).and_then(|f| message_type(f, cs));
    let version = fields.get(11).and_then(|f| {
        let first = f.split(|&b| b == cs).next().unwrap_or_default();
        let whole = first.len() < f.len() || complete(11);
        let v = validated(first, 8, |b| b.is_ascii_digit() || b == b'.')?;
        (whole && first[0].is_ascii_digit()).then_some(v)
    });
    Some((ty, version))
}

/// `ADT^A01` from `ADT^A01^ADT_A01` (any component separator), or `ACK` alone.
fn message_type(field: &[u8], cs: u8) -> Option<String> {
    let mut comps = field.split(|&b| b == cs);
    let ok = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
    let code = validated(comps.next()?, 3, ok)?;
    match comps.next().filter(|t| !t.is_empty()) {
        Some(trigger) => Some(format!("{code}^{}", validated(trigger, 3, ok)?)),
        None => Some(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADT: &[u8] = b"MSH|^~\\&|SND|FAC|RCV|FAC|20260101120000||ADT^A01^ADT_A01|FAKE-CTRL-1|P|2.5.1\rPID|1||FAKE-MRN-0001||ZZTEST^ALPHA||19010101|F\r";

    fn mllp(msg: &[u8]) -> Vec<u8> {
        let mut v = vec![MLLP_START];
        v.extend_from_slice(msg);
        v.extend_from_slice(&[MLLP_END, b'\r']);
        v
    }

    #[test]
    fn raw_msh_gives_type_and_version() {
        let (m, c) = detect(ADT, b"", 9999).unwrap();
        assert_eq!(c, Confidence::High);
        assert_eq!(m.message_types, vec!["ADT^A01".to_string()]);
        assert_eq!(m.version.as_deref(), Some("2.5.1"));
        assert_eq!((m.messages, m.batch, m.mllp), (1, false, false));
    }

    #[test]
    fn mllp_both_directions_counts_acks() {
        let ack =
            mllp(b"MSH|^~\\&|RCV|FAC|SND|FAC|20260101120001||ACK^A01^ACK|FAKE-CTRL-2|P|2.5.1\rMSA|AA|FAKE-CTRL-1\r");
        let mut two = mllp(ADT);
        two.extend(mllp(b"MSH|^~\\&|SND|FAC|RCV|FAC|20260101120002||ORU^R01|FAKE-CTRL-3|P|2.3\r"));
        let (m, c) = detect(&two, &ack, 9999).unwrap();
        assert_eq!(c, Confidence::High);
        assert_eq!(m.message_types, vec!["ADT^A01", "ORU^R01", "ACK^A01"]);
        assert_eq!(m.version.as_deref(), Some("2.5.1"));
        assert_eq!((m.messages, m.mllp), (3, true));
    }

    #[test]
    fn other_separators_and_newlines() {
        let msg = b"MSH#:~\\&#SND#FAC#RCV#FAC#20260101##ORM:O01#FAKE-CTRL-4#P#2.4:X\nPID#1##FAKE-MRN-0001\n";
        let (m, c) = detect(msg, b"", 0).unwrap();
        assert_eq!(c, Confidence::High);
        assert_eq!(m.message_types, vec!["ORM^O01"]);
        assert_eq!(m.version.as_deref(), Some("2.4"));
    }

    #[test]
    fn batch_with_several_messages() {
        let mut b = b"FHS|^~\\&|SND|FAC\rBHS|^~\\&|SND|FAC\r".to_vec();
        b.extend_from_slice(ADT);
        b.extend_from_slice(b"MSH|^~\\&|SND|FAC|RCV|FAC|20260101||ADT^A08|FAKE-CTRL-5|P|2.5.1\rBTS|2\rFTS|1\r");
        let (m, c) = detect(&b, b"", 0).unwrap();
        assert_eq!(c, Confidence::High);
        assert!(m.batch);
        assert_eq!(m.messages, 2);
        assert_eq!(m.message_types, vec!["ADT^A01", "ADT^A08"]);
    }

    #[test]
    fn cut_msh9_is_medium_and_not_reported() {
        let cut = &ADT[..super::super::scan::find(ADT, b"ADT^").unwrap() + 5]; // "...||ADT^A"
        let (m, c) = detect(cut, b"", 0).unwrap();
        assert_eq!(c, Confidence::Medium);
        assert!(m.message_types.is_empty());
        assert_eq!(m.version, None);
        assert_eq!(m.messages, 1);
    }

    #[test]
    fn invalid_type_dropped_low_raised_on_port() {
        let bad = b"MSH|^~\\&|A|B|C|D|TS||zzTEST^ALPHA|X|P|2.5\r";
        let (m, c) = detect(bad, b"", 0).unwrap();
        assert!(m.message_types.is_empty());
        assert_eq!(c, Confidence::Medium);
        let odd = b"\x0bZZZ|something\r\x1c\r";
        assert_eq!(detect(odd, b"", 0).unwrap().1, Confidence::Low);
        assert_eq!(detect(odd, b"", 2575).unwrap().1, Confidence::Medium);
    }

    #[test]
    fn not_hl7() {
        assert!(detect(b"GET / HTTP/1.1\r\n", b"", 2575).is_none());
        assert!(detect(b"MSHX", b"", 2575).is_none());
        assert!(detect(b"\x0b", b"", 2575).is_none());
        assert!(detect(b"", b"", 2575).is_none());
    }
}
