//! gen-phi EDI captures: HL7 v2 (a raw FHS/BHS batch, and MLLP with non-default delimiters) and
//! ASC X12 5010 (837P over an FTP data channel, 270/271 over raw TCP). Must never emit an ISA
//! that is not exactly 106 bytes or an SE count that disagrees with the segments.
use std::io;

use serde_json::json;

use super::flow::Pcap;
use super::Capture;

pub const HL7_PID: &str = "PID|1||FAKE-MRN-0008^^^FAKEHOSP^MR||ZZTESTSON^INDIA||19070707|F";
pub const HL7_MLLP_PID: &str = "PID#1##FAKE-MRN-0009$$$FAKEHOSP$MR##ZZTESTSON$JULIET##19080808#M";

pub fn hl7_batch() -> String {
    let msh =
        |id: &str| format!("MSH|^~\\&|FAKELAB|FAKEHOSP|FAKEEHR|FAKEHOSP|20250602080000||ORU^R01^ORU_R01|{id}|P|2.5.1");
    let segs = [
        "FHS|^~\\&|FAKELAB|FAKEHOSP|FAKEEHR|FAKEHOSP|20250602080000||||FILE0001".to_string(),
        "BHS|^~\\&|FAKELAB|FAKEHOSP|FAKEEHR|FAKEHOSP|20250602080000||||BATCH0001".to_string(),
        msh("MSG00001"),
        HL7_PID.to_string(),
        "OBR|1|FAKE-ORD-1||2345-7^Glucose^LN|||20250601093000".to_string(),
        "OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F".to_string(),
        msh("MSG00002"),
        HL7_PID.to_string(),
        "OBR|1|FAKE-ORD-2||718-7^Hemoglobin^LN|||20250601093000".to_string(),
        "OBX|1|NM|718-7^Hemoglobin^LN||13.5|g/dL|12.0-15.5|N|||F".to_string(),
        "BTS|2".to_string(),
        "FTS|1".to_string(),
    ];
    segs.iter().map(|s| format!("{s}\r")).collect()
}

fn mllp(msg: &str) -> Vec<u8> {
    let mut b = vec![0x0b];
    b.extend_from_slice(msg.as_bytes());
    b.extend_from_slice(&[0x1c, 0x0d]);
    b
}

fn hl7() -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 5000)?;
    let batch = hl7_batch();
    // Cut inside the first PID so one message spans two segments.
    let cut = batch.find("ZZTESTSON").unwrap_or(0) + 4;
    c.send_cut(0, batch.as_bytes(), &[cut])?;
    c.close()?;
    let batch = p.finish()?;

    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 2575)?;
    let adt = format!(
        "MSH#$%\\&#FAKEAPP#FAKEHOSP#FAKEEHR#FAKEHOSP#20250602080000##ADT$A04#MSG2#P#2.3\r\
         EVN#A04#20250602080000\r{HL7_MLLP_PID}\rPV1#1#O#FAKECLINIC\r"
    );
    c.send(0, &mllp(&adt))?;
    let ack = "MSH#$%\\&#FAKEEHR#FAKEHOSP#FAKEAPP#FAKEHOSP#20250602080001##ACK$A04#ACK2#P#2.3\rMSA#AA#MSG2\r";
    c.send(1, &mllp(ack))?;
    c.close()?;
    Ok((batch, p.finish()?))
}

/// ISA with the standard fixed widths (ISA06/ISA08 padded to 15).
pub fn isa(sender: &str, receiver: &str, control: u32) -> String {
    format!("ISA*00*          *00*          *ZZ*{sender:<15}*ZZ*{receiver:<15}*250602*0800*^*00501*{control:09}*0*T*:~")
}

/// One interchange: ISA, GS, ST…SE (SE01 counted), GE, IEA.
pub fn interchange(
    sender: &str,
    receiver: &str,
    control: u32,
    gs_code: &str,
    set: &str,
    version: &str,
    body: &[&str],
) -> String {
    let mut x = isa(sender, receiver, control);
    x.push_str(&format!("GS*{gs_code}*{sender}*{receiver}*20250602*0800*{control}*X*{version}~"));
    x.push_str(&format!("ST*{set}*0001*{version}~"));
    for s in body {
        x.push_str(s);
        x.push('~');
    }
    x.push_str(&format!("SE*{}*0001~GE*1*{control}~IEA*1*{control:09}~", body.len() + 2));
    x
}

pub fn x12_837() -> String {
    interchange(
        "FAKESUBMITTER",
        "FAKERECEIVER",
        1,
        "HC",
        "837",
        "005010X222A1",
        &[
            "BHT*0019*00*FAKE0001*20250602*0800*CH",
            "NM1*41*2*FAKE BILLING SERVICE*****46*FAKESUB01",
            "PER*IC*BILLING DESK*TE*8005550199",
            "NM1*40*2*FAKE CLEARINGHOUSE*****46*FAKERCV01",
            "HL*1**20*1",
            "NM1*85*2*FAKE CLINIC*****XX*1999999984",
            "N3*1 TEST WAY",
            "N4*TESTTOWN*CA*90000",
            "REF*EI*999999999",
            "HL*2*1*22*0",
            "SBR*P*18*******CI",
            "NM1*IL*1*ZZTESTSON*GOLF****MI*FAKE-MRN-0006",
            "DMG*D8*19060606*M",
            "NM1*PR*2*FAKE PAYER*****PI*FAKEPAYER",
            "CLM*FAKECLM1*100***11:B:1*Y*A*Y*Y",
            "HI*ABK:Z0000",
            "LX*1",
            "SV1*HC:99213*100*UN*1***1",
            "DTP*472*D8*20250601",
        ],
    )
}

const X12_270_271_TAIL: [&str; 6] = [
    "HL*1**20*1",
    "NM1*PR*2*FAKE PAYER*****PI*FAKEPAYER",
    "HL*2*1*21*1",
    "NM1*1P*2*FAKE CLINIC*****XX*1999999984",
    "HL*3*2*22*0",
    "NM1*IL*1*ZZTESTSON*HOTEL****MI*FAKE-MEM-0007",
];

pub fn x12_270_271() -> (String, String) {
    let mut q = vec!["BHT*0022*13*FAKE270*20250602*0800"];
    q.extend_from_slice(&X12_270_271_TAIL[..5]);
    q.extend_from_slice(&[
        "TRN*1*FAKETRN1*9999999999",
        X12_270_271_TAIL[5],
        "DMG*D8*19090909",
        "DTP*291*D8*20250602",
        "EQ*30",
    ]);
    let mut a = vec!["BHT*0022*11*FAKE270*20250602*0800"];
    a.extend_from_slice(&X12_270_271_TAIL[..5]);
    a.extend_from_slice(&["TRN*2*FAKETRN1*9999999999", X12_270_271_TAIL[5], "DMG*D8*19090909", "EB*1*IND*30"]);
    (
        interchange("FAKESUBMITTER", "FAKEPAYER", 2, "HS", "270", "005010X279A1", &q),
        interchange("FAKEPAYER", "FAKESUBMITTER", 3, "HB", "271", "005010X279A1", &a),
    )
}

fn x12() -> io::Result<(Vec<u8>, Vec<u8>)> {
    // FTP active-mode data channel: the server connects from port 20 and sends the file.
    let mut p = Pcap::new()?;
    let mut c = p.conn_ports(false, [20, 40123])?;
    c.send(0, x12_837().as_bytes())?;
    c.close()?;
    let claim = p.finish()?;
    let mut p = Pcap::new()?;
    let mut c = p.conn(false, 5010)?;
    let (q, a) = x12_270_271();
    c.send(0, q.as_bytes())?;
    c.send(1, a.as_bytes())?;
    c.close()?;
    Ok((claim, p.finish()?))
}

pub fn captures() -> io::Result<Vec<Capture>> {
    let (batch, mllp) = hl7()?;
    let (claim, elig) = x12()?;
    let x = |sets: &[&str]| {
        json!({"type": "plaintext", "plaintext.protocol": "x12", "plaintext.x12.transaction_sets": sets,
               "findings": ["plaintext.phi"]})
    };
    Ok(vec![
        Capture {
            file: "hl7-batch.pcap",
            description: "HL7 v2.5.1 batch (FHS/BHS, two ORU^R01, BTS/FTS) as raw TCP on port 5000, no MLLP; \
                          the first PID spans two segments",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "hl7",
                "plaintext.hl7.message_types": ["ORU^R01"], "plaintext.hl7.version": "2.5.1",
                "plaintext.hl7.batch": true, "plaintext.hl7.mllp": false, "findings": ["plaintext.phi"]})],
            bytes: batch,
        },
        Capture {
            file: "hl7-mllp-altsep.pcap",
            description: "HL7 v2.3 ADT^A04 over MLLP on port 2575 with field separator '#' and component \
                          separator '$', answered by an MLLP ACK (MSA AA)",
            expect: vec![json!({"type": "plaintext", "plaintext.protocol": "hl7",
                "plaintext.hl7.message_types": ["ADT^A04", "ACK^A04"], "plaintext.hl7.version": "2.3",
                "plaintext.hl7.batch": false, "plaintext.hl7.mllp": true, "findings": ["plaintext.phi"]})],
            bytes: mllp,
        },
        Capture {
            file: "x12-837.pcap",
            description: "X12 5010 837P claim sent over an FTP active-mode data connection (port 20 to 40123)",
            expect: vec![x(&["837"])],
            bytes: claim,
        },
        Capture {
            file: "x12-270-271.pcap",
            description: "X12 5010 270 eligibility inquiry and 271 response on raw TCP port 5010",
            expect: vec![x(&["270", "271"])],
            bytes: elig,
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_interchange(x: &str) -> Vec<String> {
        let isa = &x[..106];
        assert_eq!(isa.len(), 106);
        assert!(isa.starts_with("ISA*") && isa.ends_with(":~"));
        let fields: Vec<&str> = isa.trim_end_matches('~').split('*').collect();
        let widths: Vec<usize> = fields.iter().map(|f| f.len()).collect();
        assert_eq!(widths, [3, 2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1]);
        let segs: Vec<&str> = x.trim_end_matches('~').split('~').collect();
        let st = segs.iter().position(|s| s.starts_with("ST*")).expect("ST");
        let se = segs.iter().position(|s| s.starts_with("SE*")).expect("SE");
        let count: usize = segs[se].split('*').nth(1).and_then(|n| n.parse().ok()).expect("SE01");
        assert_eq!(count, se - st + 1, "SE01 counts ST..SE");
        assert_eq!(segs.last().map(|s| &s[..4]), Some("IEA*"));
        let ctrl = &isa[90..99];
        assert!(segs.last().is_some_and(|s| s.ends_with(ctrl)), "IEA02 = ISA13");
        segs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn isa_is_106_bytes_and_se_counts_segments() {
        assert_eq!(
            isa("FAKESUBMITTER", "FAKERECEIVER", 1),
            "ISA*00*          *00*          *ZZ*FAKESUBMITTER  *ZZ*FAKERECEIVER   *250602*0800*^*00501*000000001*0*T*:~"
        );
        let segs = check_interchange(&x12_837());
        assert!(segs.contains(&"NM1*IL*1*ZZTESTSON*GOLF****MI*FAKE-MRN-0006".to_string()));
        let (q, a) = x12_270_271();
        assert!(check_interchange(&q).iter().any(|s| s == "ST*270*0001*005010X279A1"));
        assert!(check_interchange(&a).iter().any(|s| s == "ST*271*0001*005010X279A1"));
    }

    #[test]
    fn hl7_batch_segments_end_in_cr_and_msh_fields_are_right() {
        let b = hl7_batch();
        assert!(b.ends_with("FTS|1\r") && !b.contains('\n'));
        let msh: Vec<&str> = b.split('\r').filter(|s| s.starts_with("MSH|")).collect();
        assert_eq!(msh.len(), 2);
        let f: Vec<&str> = msh[0].split('|').collect();
        // f[0] = "MSH", so MSH-n is f[n - 1].
        assert_eq!((f[8], f[9], f[11]), ("ORU^R01^ORU_R01", "MSG00001", "2.5.1"));
        assert!(b.contains(&format!("{HL7_PID}\r")));
    }

    #[test]
    fn mllp_frames_wrap_each_message() {
        let (_, pcap) = hl7().unwrap();
        let s = &super::super::flow::parse::streams(&pcap)[0];
        for (dir, typ) in [(&s[0], "ADT$A04"), (&s[1], "ACK$A04")] {
            assert_eq!(dir[0], 0x0b);
            assert_eq!(&dir[dir.len() - 2..], &[0x1c, 0x0d]);
            let m = std::str::from_utf8(&dir[1..dir.len() - 2]).unwrap();
            assert_eq!(m.split('#').nth(8), Some(typ));
        }
    }
}
