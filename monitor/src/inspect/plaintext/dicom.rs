//! Inspect, plaintext, DICOM upper layer (PS3.8): walks PDUs, lists the abstract syntaxes an
//! A-ASSOCIATE-RQ proposes and the association outcome. Must never keep AE titles, user
//! identity items or any byte of a P-DATA-TF data set.
use super::dicom_sop;
use super::facts::{push_distinct, Confidence, DicomMeta};
use super::scan::validated;

const APP_CONTEXT: &[u8] = b"1.2.840.10008.3.1.1.1";
/// Largest A-ASSOCIATE-RQ/AC accepted as plausible.
const MAX_ASSOC_LEN: u32 = 1 << 20;

struct Pdu<'a> {
    ty: u8,
    /// The PDU body present in the buffer (shorter than declared when cut).
    body: &'a [u8],
    complete: bool,
}

/// PDUs from the start of `buf`, up to the first malformed one or the end of the buffer.
fn walk(buf: &[u8]) -> Vec<Pdu<'_>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(h) = buf.get(pos..pos + 6) {
        let (ty, len) = (h[0], u32::from_be_bytes([h[2], h[3], h[4], h[5]]));
        let plausible = h[1] == 0
            && match ty {
                1 | 2 => (68..=MAX_ASSOC_LEN).contains(&len),
                3 | 5 | 6 | 7 => len == 4,
                4 => len >= 6,
                _ => false,
            };
        if !plausible || out.len() >= 64 {
            break;
        }
        let start = pos + 6;
        let end = start.saturating_add(len as usize);
        let body = &buf[start..end.min(buf.len())];
        if matches!(ty, 1 | 2) && !fixed_part_ok(body) {
            break;
        }
        if ty == 4 && end <= buf.len() && !pdv_items_ok(body) {
            break;
        }
        out.push(Pdu { ty, body, complete: end <= buf.len() });
        if end > buf.len() {
            break;
        }
        pos = end;
    }
    out
}

/// Protocol version with bit 0 set; AE titles (when present) printable or NUL padded.
fn fixed_part_ok(body: &[u8]) -> bool {
    let Some(v) = body.get(..2) else { return false };
    if v[1] & 1 == 0 {
        return false;
    }
    let aes = body.get(4..36.min(body.len())).unwrap_or_default();
    aes.iter().all(|&b| b == 0 || (0x20..0x7f).contains(&b))
}

/// P-DATA-TF: PDV items (u32 length, odd presentation context id, control header) fill the PDU.
fn pdv_items_ok(mut body: &[u8]) -> bool {
    while !body.is_empty() {
        let Some(h) = body.get(..6) else { return false };
        let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < 2 || h[4] & 1 == 0 || h[5] > 3 || body.len() < 4 + len {
            return false;
        }
        body = &body[4 + len..];
    }
    true
}

/// What the variable items of an A-ASSOCIATE-RQ/AC say.
#[derive(Default)]
struct Items {
    app_context: bool,
    sops: Vec<String>,
    /// The items stop before the declared end (cut by the buffer, or malformed).
    cut: bool,
}

fn items(pdu: &Pdu<'_>) -> Items {
    let mut out = Items { cut: !pdu.complete, ..Items::default() };
    let mut rest = pdu.body.get(68..).unwrap_or_default();
    if pdu.body.len() < 68 {
        out.cut = true;
    }
    while !rest.is_empty() {
        let Some(h) = rest.get(..4) else {
            out.cut = true;
            break;
        };
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let Some(value) = rest.get(4..4 + len) else {
            out.cut = true;
            break;
        };
        match h[0] {
            0x10 => out.app_context |= trim_uid(value) == APP_CONTEXT,
            0x20 if pdu.ty == 1 => {
                if let Some(sop) = abstract_syntax(value) {
                    push_distinct(&mut out.sops, sop);
                }
            }
            0x21 | 0x50 | 0x20 => {}
            _ => {
                out.cut = true;
                break;
            }
        }
        rest = &rest[4 + len..];
    }
    out
}

/// The abstract syntax (0x30 sub-item) of a presentation context item: name, or validated UID.
fn abstract_syntax(ctx: &[u8]) -> Option<String> {
    let mut rest = ctx.get(4..)?;
    while let Some(h) = rest.get(..4) {
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let value = rest.get(4..4 + len)?;
        if h[0] == 0x30 {
            return sop_name(trim_uid(value));
        }
        rest = &rest[4 + len..];
    }
    None
}

fn trim_uid(uid: &[u8]) -> &[u8] {
    let mut u = uid;
    while let Some((&last, head)) = u.split_last() {
        if last != 0 && last != b' ' {
            break;
        }
        u = head;
    }
    u
}

fn sop_name(uid: &[u8]) -> Option<String> {
    let s = validated(uid, 64, |b| b.is_ascii_digit() || b == b'.')?;
    if let Some(n) = dicom_sop::name(&s) {
        return Some(n.to_string());
    }
    s.starts_with("1.").then_some(s)
}

/// DICOM UL in this flow, with how sure the detection is.
pub(super) fn detect(client: &[u8], server: &[u8], port: u16) -> Option<(DicomMeta, Confidence)> {
    let c = walk(client);
    let s = walk(server);
    let rq = c.first().filter(|p| p.ty == 1);
    let answer = s.first().filter(|p| matches!(p.ty, 2 | 3));
    let pdata = |v: &[Pdu<'_>]| v.iter().any(|p| p.ty == 4 && p.complete);
    let data = pdata(&c) || pdata(&s);
    if rq.is_none() && answer.is_none() && !data {
        return None;
    }
    let mut meta = DicomMeta { data, association: "requested", ..DicomMeta::default() };
    let mut app_context = false;
    let mut partial = false;
    if let Some(p) = rq {
        let it = items(p);
        app_context = it.app_context;
        partial = it.cut && !it.app_context;
        meta.truncated = it.cut;
        meta.sop_classes = it.sops;
    }
    match answer {
        Some(p) if p.ty == 2 => {
            meta.association = "accepted";
            app_context |= items(p).app_context;
        }
        Some(_) => meta.association = "rejected",
        // Data flows only inside an accepted association.
        None if rq.is_none() => meta.association = "accepted",
        None => {}
    }
    let verification_only = !meta.sop_classes.is_empty()
        && meta.sop_classes.iter().all(|s| s == dicom_sop::name(dicom_sop::VERIFICATION).unwrap_or_default());
    let conf = if verification_only {
        Confidence::Low
    } else if app_context {
        Confidence::High
    } else if partial {
        if matches!(port, 104 | 11112) {
            Confidence::Medium
        } else {
            Confidence::Low
        }
    } else {
        Confidence::Medium
    };
    Some((meta, conf))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn item(ty: u8, value: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, 0];
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(value);
        v
    }

    fn pctx(id: u8, uid: &[u8]) -> Vec<u8> {
        let mut v = vec![id, 0, 0, 0];
        v.extend(item(0x30, uid));
        v.extend(item(0x40, b"1.2.840.10008.1.2\0"));
        item(0x20, &v)
    }

    fn pdu(ty: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![ty, 0];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn assoc(ty: u8, ctxs: &[&[u8]]) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 0];
        b.extend_from_slice(b"FAKE-CALLED-AE  FAKE-CALLING-AE ");
        b.extend_from_slice(&[0; 32]);
        b.extend(item(0x10, APP_CONTEXT));
        for (i, uid) in ctxs.iter().enumerate() {
            b.extend(pctx(2 * i as u8 + 1, uid));
        }
        b.extend(item(0x50, &item(0x51, &16384u32.to_be_bytes())));
        pdu(ty, &b)
    }

    /// An A-ASSOCIATE-RQ proposing CT, MR and an unknown private class; the AC; a P-DATA-TF.
    pub(in super::super) fn fixture() -> (Vec<u8>, Vec<u8>) {
        let mut c =
            assoc(1, &[b"1.2.840.10008.5.1.4.1.1.2\0", b"1.2.840.10008.5.1.4.1.1.4", b"1.2.826.0.1.3680043.2.1\0"]);
        c.extend(pdu(4, &[0, 0, 0, 4, 1, 3, 0xAA, 0xBB]));
        (c, assoc(2, &[]))
    }

    #[test]
    fn rq_ac_pdata() {
        let (c, s) = fixture();
        let (m, conf) = detect(&c, &s, 5000).unwrap();
        assert_eq!(conf, Confidence::High);
        assert_eq!(m.sop_classes, vec!["CT Image Storage", "MR Image Storage", "1.2.826.0.1.3680043.2.1"]);
        assert_eq!((m.association, m.data, m.truncated), ("accepted", true, false));
    }

    #[test]
    fn rejected_and_requested() {
        let (c, _) = fixture();
        let (m, _) = detect(&c, &pdu(3, &[0, 1, 1, 7]), 104).unwrap();
        assert_eq!(m.association, "rejected");
        let (m, _) = detect(&c, b"", 104).unwrap();
        assert_eq!(m.association, "requested");
    }

    #[test]
    fn verification_only_is_low_even_on_port_104() {
        let c = assoc(1, &[b"1.2.840.10008.1.1\0"]);
        let (m, conf) = detect(&c, &assoc(2, &[]), 104).unwrap();
        assert_eq!(conf, Confidence::Low);
        assert_eq!(m.sop_classes, vec!["Verification SOP Class"]);
    }

    #[test]
    fn rq_cut_lists_complete_contexts() {
        let (c, _) = fixture();
        let first_ctx = 6 + 68 + 4 + APP_CONTEXT.len();
        let ctx_len = pctx(1, b"1.2.840.10008.5.1.4.1.1.2\0").len();
        // Cut inside the second context: only CT listed.
        let (m, conf) = detect(&c[..first_ctx + ctx_len + 10], b"", 0).unwrap();
        assert_eq!(
            (m.sop_classes.clone(), m.truncated, conf),
            (vec!["CT Image Storage".to_string()], true, Confidence::High)
        );
        // Cut inside the first context: none listed, still DICOM.
        let (m, conf) = detect(&c[..first_ctx + 5], b"", 0).unwrap();
        assert!(m.sop_classes.is_empty() && m.truncated);
        assert_eq!(conf, Confidence::High);
        // Cut in the fixed part: partial parse, low (medium on the DICOM ports).
        let (m, conf) = detect(&c[..40], b"", 0).unwrap();
        assert!(m.truncated);
        assert_eq!(conf, Confidence::Low);
        assert_eq!(detect(&c[..40], b"", 11112).unwrap().1, Confidence::Medium);
        assert!(detect(&c[..7], b"", 104).is_none());
    }

    #[test]
    fn not_dicom() {
        assert!(detect(b"\x16\x03\x01\x00\x50\x01\x00\x00\x4c\x03\x03", b"", 104).is_none());
        assert!(detect(b"\x01\x00\x00\x00\x00\x10\x00\x00", b"", 104).is_none()); // too short
        assert!(detect(&pdu(4, &[0, 0, 0, 9, 1, 3]), b"", 104).is_none()); // PDV overruns
    }
}
