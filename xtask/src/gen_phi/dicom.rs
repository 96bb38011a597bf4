//! gen-phi DICOM Upper Layer (PS3.8) and DIMSE (PS3.7) captures: C-STORE, C-FIND over IPv6 and
//! C-ECHO. Must never emit a PDU, item or element whose length field disagrees with its body.
use std::io;

use serde_json::json;

use super::flow::Pcap;
use super::Capture;

pub const APP_CONTEXT: &str = "1.2.840.10008.3.1.1.1";
pub const CT_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
pub const MR_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
pub const STUDY_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
pub const VERIFICATION: &str = "1.2.840.10008.1.1";
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
pub const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const IMPL_CLASS: &str = "1.2.826.0.1.3680043.9.9999.100";
const IMPL_VERSION: &str = "TLSMON_GEN_1";
pub const STORE_STUDY: &str = "1.2.826.0.1.3680043.9.9999.11";
pub const STORE_SERIES: &str = "1.2.826.0.1.3680043.9.9999.12";
pub const STORE_INSTANCE: &str = "1.2.826.0.1.3680043.9.9999.13";
pub const FIND_STUDY: &str = "1.2.826.0.1.3680043.9.9999.21";

/// A DICOM string value padded to even length (UIDs with NUL, text with space).
fn pad(v: &str, uid: bool) -> Vec<u8> {
    let mut b = v.as_bytes().to_vec();
    if b.len() % 2 == 1 {
        b.push(if uid { 0 } else { b' ' });
    }
    b
}

/// One implicit VR little endian element.
pub fn el(out: &mut Vec<u8>, group: u16, elem: u16, value: &[u8]) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// One explicit VR little endian element (PS3.5 §7.1.2).
pub fn el_explicit(out: &mut Vec<u8>, group: u16, elem: u16, vr: &str, value: &[u8]) {
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr.as_bytes());
    if matches!(vr, "OB" | "OW" | "SQ" | "UN" | "UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
}

/// A command set (group 0000, implicit VR LE) with its group length first.
fn command(sop_class: &str, field: u16, id: u16, data: bool, rsp: Option<u16>, instance: Option<&str>) -> Vec<u8> {
    let mut b = Vec::new();
    el(&mut b, 0, 0x0002, &pad(sop_class, true));
    el(&mut b, 0, 0x0100, &field.to_le_bytes());
    if rsp.is_some() {
        el(&mut b, 0, 0x0120, &id.to_le_bytes());
    } else {
        el(&mut b, 0, 0x0110, &id.to_le_bytes());
        if field != 0x0030 {
            el(&mut b, 0, 0x0700, &0u16.to_le_bytes());
        }
    }
    el(&mut b, 0, 0x0800, &(if data { 0x0000u16 } else { 0x0101 }).to_le_bytes());
    if let Some(status) = rsp {
        el(&mut b, 0, 0x0900, &status.to_le_bytes());
    }
    if let Some(uid) = instance {
        el(&mut b, 0, 0x1000, &pad(uid, true));
    }
    let mut out = Vec::with_capacity(b.len() + 12);
    el(&mut out, 0, 0, &(b.len() as u32).to_le_bytes());
    out.extend_from_slice(&b);
    out
}

fn item(out: &mut Vec<u8>, typ: u8, body: &[u8]) {
    out.push(typ);
    out.push(0);
    out.extend_from_slice(&(body.len() as u16).to_be_bytes());
    out.extend_from_slice(body);
}

pub fn pdu(typ: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![typ, 0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn ae(name: &str) -> [u8; 16] {
    let mut a = [b' '; 16];
    a[..name.len()].copy_from_slice(name.as_bytes());
    a
}

fn user_info(out: &mut Vec<u8>) {
    let mut ui = Vec::new();
    item(&mut ui, 0x51, &16_384u32.to_be_bytes());
    item(&mut ui, 0x52, IMPL_CLASS.as_bytes());
    item(&mut ui, 0x55, IMPL_VERSION.as_bytes());
    item(out, 0x50, &ui);
}

/// A-ASSOCIATE-RQ (0x01) proposing each abstract syntax with explicit and implicit VR LE.
pub fn associate_rq(called: &str, calling: &str, syntaxes: &[&str]) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend_from_slice(&ae(called));
    b.extend_from_slice(&ae(calling));
    b.extend_from_slice(&[0; 32]);
    item(&mut b, 0x10, APP_CONTEXT.as_bytes());
    for (i, s) in syntaxes.iter().enumerate() {
        let mut pc = vec![1 + 2 * i as u8, 0, 0, 0];
        item(&mut pc, 0x30, s.as_bytes());
        item(&mut pc, 0x40, EXPLICIT_LE.as_bytes());
        item(&mut pc, 0x40, IMPLICIT_LE.as_bytes());
        item(&mut b, 0x20, &pc);
    }
    user_info(&mut b);
    pdu(0x01, &b)
}

/// A-ASSOCIATE-AC (0x02) accepting every proposed context with implicit VR LE.
pub fn associate_ac(called: &str, calling: &str, contexts: usize) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend_from_slice(&ae(called));
    b.extend_from_slice(&ae(calling));
    b.extend_from_slice(&[0; 32]);
    item(&mut b, 0x10, APP_CONTEXT.as_bytes());
    for i in 0..contexts {
        let mut pc = vec![1 + 2 * i as u8, 0, 0, 0];
        item(&mut pc, 0x40, IMPLICIT_LE.as_bytes());
        item(&mut b, 0x21, &pc);
    }
    user_info(&mut b);
    pdu(0x02, &b)
}

/// P-DATA-TF (0x04) with one PDV per (context id, control header, fragment).
pub fn p_data(pdvs: &[(u8, u8, &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    for (pc, mch, frag) in pdvs {
        b.extend_from_slice(&(frag.len() as u32 + 2).to_be_bytes());
        b.push(*pc);
        b.push(*mch);
        b.extend_from_slice(frag);
    }
    pdu(0x04, &b)
}

/// Message control header: command + last fragment.
const CMD_LAST: u8 = 0x03;
const DATA_MORE: u8 = 0x00;
const DATA_LAST: u8 = 0x02;

fn release(p: &mut super::flow::Tcp) -> io::Result<()> {
    p.send(0, &pdu(0x05, &[0; 4]))?;
    p.send(1, &pdu(0x06, &[0; 4]))
}

/// The CT data set sent by C-STORE (implicit VR LE), with a small 16-bit pixel matrix.
pub fn store_dataset() -> Vec<u8> {
    let mut d = Vec::new();
    el(&mut d, 0x0008, 0x0016, &pad(CT_STORAGE, true));
    el(&mut d, 0x0008, 0x0018, &pad(STORE_INSTANCE, true));
    el(&mut d, 0x0008, 0x0020, b"20250602");
    el(&mut d, 0x0008, 0x0060, b"CT");
    el(&mut d, 0x0010, 0x0010, &pad("ZZTEST^ALPHA", false));
    el(&mut d, 0x0010, 0x0020, &pad("FAKE-MRN-0001", false));
    el(&mut d, 0x0010, 0x0030, b"19010101");
    el(&mut d, 0x0010, 0x0040, b"O ");
    el(&mut d, 0x0020, 0x000d, &pad(STORE_STUDY, true));
    el(&mut d, 0x0020, 0x000e, &pad(STORE_SERIES, true));
    el(&mut d, 0x0028, 0x0002, &1u16.to_le_bytes());
    el(&mut d, 0x0028, 0x0004, b"MONOCHROME2 ");
    el(&mut d, 0x0028, 0x0010, &48u16.to_le_bytes());
    el(&mut d, 0x0028, 0x0011, &48u16.to_le_bytes());
    el(&mut d, 0x0028, 0x0100, &16u16.to_le_bytes());
    el(&mut d, 0x0028, 0x0101, &12u16.to_le_bytes());
    el(&mut d, 0x0028, 0x0102, &11u16.to_le_bytes());
    el(&mut d, 0x0028, 0x0103, &0u16.to_le_bytes());
    let pixels: Vec<u8> = (0..48u32 * 48).flat_map(|i| ((i * 37 % 4096) as u16).to_le_bytes()).collect();
    el(&mut d, 0x7fe0, 0x0010, &pixels);
    d
}

fn store() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 104)?;
    c.send(0, &associate_rq("STORE_SCP", "MODALITY1", &[CT_STORAGE, MR_STORAGE]))?;
    c.send(1, &associate_ac("STORE_SCP", "MODALITY1", 2))?;
    let cmd = command(CT_STORAGE, 0x0001, 1, true, None, Some(STORE_INSTANCE));
    c.send(0, &p_data(&[(1, CMD_LAST, &cmd)]))?;
    // The data set in two PDVs of one P-DATA-TF, itself spanning several segments; the first
    // cut falls inside PatientName's element header (the value stays whole in the capture).
    let ds = store_dataset();
    let half = ds.len() / 2;
    let pd = p_data(&[(1, DATA_MORE, &ds[..half]), (1, DATA_LAST, &ds[half..])]);
    let name_at = pd.windows(4).position(|w| w == [0x10, 0, 0x10, 0]).unwrap_or(0) + 2;
    c.send_cut(0, &pd, &[name_at])?;
    let rsp = command(CT_STORAGE, 0x8001, 1, false, Some(0x0000), Some(STORE_INSTANCE));
    c.send(1, &p_data(&[(1, CMD_LAST, &rsp)]))?;
    release(&mut c)?;
    c.close()?;
    p.finish()
}

fn find() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(true, 11112)?;
    c.send(0, &associate_rq("FIND_SCP", "WORKSTATION1", &[STUDY_FIND]))?;
    c.send(1, &associate_ac("FIND_SCP", "WORKSTATION1", 1))?;
    let mut id = Vec::new();
    el(&mut id, 0x0008, 0x0020, b"");
    el(&mut id, 0x0008, 0x0052, b"STUDY ");
    el(&mut id, 0x0010, 0x0010, &pad("ZZTEST^BRAVO", false));
    el(&mut id, 0x0010, 0x0020, b"");
    el(&mut id, 0x0010, 0x0030, b"");
    el(&mut id, 0x0020, 0x000d, b"");
    let cmd = command(STUDY_FIND, 0x0020, 7, true, None, None);
    c.send(0, &p_data(&[(1, CMD_LAST, &cmd), (1, DATA_LAST, &id)]))?;
    let mut m = Vec::new();
    el(&mut m, 0x0008, 0x0005, b"ISO_IR 100");
    el(&mut m, 0x0008, 0x0020, b"20250601");
    el(&mut m, 0x0008, 0x0052, b"STUDY ");
    el(&mut m, 0x0010, 0x0010, &pad("ZZTEST^BRAVO", false));
    el(&mut m, 0x0010, 0x0020, &pad("FAKE-MRN-0002", false));
    el(&mut m, 0x0010, 0x0030, b"19020202");
    el(&mut m, 0x0020, 0x000d, &pad(FIND_STUDY, true));
    let pending = command(STUDY_FIND, 0x8020, 7, true, Some(0xff00), None);
    c.send(1, &p_data(&[(1, CMD_LAST, &pending), (1, DATA_LAST, &m)]))?;
    let done = command(STUDY_FIND, 0x8020, 7, false, Some(0x0000), None);
    c.send(1, &p_data(&[(1, CMD_LAST, &done)]))?;
    release(&mut c)?;
    c.close()?;
    p.finish()
}

fn echo() -> io::Result<Vec<u8>> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 4242)?;
    c.send(0, &associate_rq("ECHO_SCP", "ECHOSCU", &[VERIFICATION]))?;
    c.send(1, &associate_ac("ECHO_SCP", "ECHOSCU", 1))?;
    c.send(0, &p_data(&[(1, CMD_LAST, &command(VERIFICATION, 0x0030, 1, false, None, None))]))?;
    c.send(1, &p_data(&[(1, CMD_LAST, &command(VERIFICATION, 0x8030, 1, false, Some(0), None))]))?;
    release(&mut c)?;
    c.close()?;
    p.finish()
}

pub fn captures() -> io::Result<Vec<Capture>> {
    let phi = |classes: &[&str]| {
        json!({"type": "plaintext", "plaintext.protocol": "dicom", "plaintext.dicom.sop_classes": classes,
               "findings": ["plaintext.phi"]})
    };
    Ok(vec![
        Capture {
            file: "dicom-store.pcap",
            description: "DICOM C-STORE on port 104: association for CT/MR Image Storage, CT data set with \
                          a fake patient split over two PDVs and several segments, release",
            expect: vec![phi(&["CT Image Storage", "MR Image Storage"])],
            bytes: store()?,
        },
        Capture {
            file: "dicom-find-ipv6.pcap",
            description: "DICOM C-FIND over IPv6 on port 11112: Study Root FIND by patient name, one pending \
                          match with patient ID and birth date, final success",
            expect: vec![phi(&["Study Root Query/Retrieve Information Model - FIND"])],
            bytes: find()?,
        },
        Capture {
            file: "dicom-echo.pcap",
            description: "DICOM C-ECHO on non-standard port 4242 (Verification only, no patient data)",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "dicom",
                                "plaintext.dicom.sop_classes": ["Verification SOP Class"]})],
            bytes: echo()?,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::super::flow::parse::streams;
    use super::*;

    /// Walks a stream of PDUs, checking each length field, and returns their types.
    fn pdus(mut s: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        while !s.is_empty() {
            let len = u32::from_be_bytes([s[2], s[3], s[4], s[5]]) as usize;
            let body = &s[6..6 + len];
            match s[0] {
                0x01 | 0x02 => {
                    let mut items = &body[68..];
                    while !items.is_empty() {
                        let l = usize::from(u16::from_be_bytes([items[2], items[3]]));
                        assert!(4 + l <= items.len(), "item length");
                        items = &items[4 + l..];
                    }
                }
                0x04 => {
                    let mut pdvs = body;
                    while !pdvs.is_empty() {
                        let l = u32::from_be_bytes([pdvs[0], pdvs[1], pdvs[2], pdvs[3]]) as usize;
                        if pdvs[5] & 1 == 1 {
                            let group_len = u32::from_le_bytes([pdvs[14], pdvs[15], pdvs[16], pdvs[17]]) as usize;
                            assert_eq!(group_len, l - 2 - 12, "command group length");
                        }
                        pdvs = &pdvs[4 + l..];
                    }
                }
                _ => assert_eq!(len, 4),
            }
            types.push(s[0]);
            s = &s[6 + len..];
        }
        types
    }

    #[test]
    fn pdu_lengths_match_bodies() {
        for (bytes, client, server) in [
            (store().unwrap(), vec![1, 4, 4, 5], vec![2, 4, 6]),
            (find().unwrap(), vec![1, 4, 5], vec![2, 4, 4, 6]),
            (echo().unwrap(), vec![1, 4, 5], vec![2, 4, 6]),
        ] {
            let s = &streams(&bytes)[0];
            assert_eq!(pdus(&s[0]), client);
            assert_eq!(pdus(&s[1]), server);
        }
    }

    #[test]
    fn store_dataset_walks_to_its_end() {
        let d = store_dataset();
        let (mut o, mut tags) = (0, Vec::new());
        while o < d.len() {
            let tag = (u16::from_le_bytes([d[o], d[o + 1]]), u16::from_le_bytes([d[o + 2], d[o + 3]]));
            let l = u32::from_le_bytes([d[o + 4], d[o + 5], d[o + 6], d[o + 7]]) as usize;
            assert_eq!(l % 2, 0, "{tag:x?} odd length");
            tags.push(tag);
            o += 8 + l;
        }
        assert_eq!(o, d.len());
        assert!(tags.windows(2).all(|w| w[0] < w[1]), "ascending tags");
        assert!(tags.contains(&(0x0010, 0x0010)));
    }
}
