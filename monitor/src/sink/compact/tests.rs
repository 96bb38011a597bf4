use std::collections::BTreeMap;

use serde::{Serialize, Serializer};

use super::write;

/// Our bytes and serde_json's for `v`, which must be the same.
fn same<T: Serialize + ?Sized>(v: &T) {
    let theirs = serde_json::to_vec(v).expect("serde_json writes it");
    let mut ours = b"prefix ".to_vec();
    write(&mut ours, v).expect("written");
    assert_eq!(
        String::from_utf8_lossy(&ours[7..]),
        String::from_utf8_lossy(&theirs),
        "compact writer and serde_json disagree"
    );
    assert_eq!(&ours[..7], b"prefix ", "appends, never rewrites");
}

#[test]
fn every_byte_at_every_offset_of_a_word() {
    // Each ASCII byte (control characters, quote, backslash, DEL …) at each offset of the
    // words and blocks the scanner reads, in strings of lengths around their edges.
    for b in 0u8..0x80 {
        for len in [1usize, 3, 4, 5, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 40] {
            for at in 0..len {
                let mut s = vec![b'a'; len];
                s[at] = b;
                same(std::str::from_utf8(&s).expect("ascii"));
            }
        }
    }
}

#[test]
fn strings_with_several_escapes_and_unicode() {
    for s in [
        "",
        "\"",
        "\\\\\"\"",
        "tab\there\nnewline\r\u{0c}\u{08}\u{1f}\u{00}\u{7f}",
        "ünïcödé — 日本語 🔒 and \"quotes\" after them",
        "x\u{1}y\u{2}z\u{1b}[0m ends with a backslash \\",
        "/solidus/ is not escaped",
    ] {
        same(s);
        same(&[s, s]);
    }
    same(&'"');
    same(&'é');
}

#[test]
fn numbers_and_scalars() {
    same(&(0u8, u8::MAX, u16::MAX, u32::MAX, u64::MAX, usize::MAX));
    same(&(0i8, i8::MIN, i16::MIN, i32::MIN, i64::MIN, i64::MAX, -1i64, -10i32));
    same(&(u128::MAX, i128::MIN, 1.5f64, -0.0f64, f64::NAN, f64::INFINITY, 1e300f64, 0.1f32));
    same(&(true, false, (), Option::<u8>::None, Some(7u8)));
}

#[derive(Serialize)]
struct Unit;

#[derive(Serialize)]
struct Newtype(u16);

#[derive(Serialize)]
struct Tuple(u8, &'static str);

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Plain,
    Wrapped(u32),
    Pair(u8, u8),
    Named { a: u8, b: Vec<u8> },
}

#[derive(Serialize)]
struct Inner {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    absent: Option<u8>,
    list: Vec<String>,
}

#[derive(Serialize)]
struct Outer<'a> {
    #[serde(rename = "@timestamp")]
    ts: String,
    empty: Vec<u8>,
    unit: Unit,
    newtype: Newtype,
    tuple: Tuple,
    kinds: [Kind; 4],
    inner: Inner,
    #[serde(flatten)]
    flat: Option<Inner>,
    #[serde(flatten)]
    none: Option<Inner>,
    by_int: BTreeMap<i32, &'a str>,
    by_bool: BTreeMap<bool, u8>,
    by_str: BTreeMap<&'a str, Option<bool>>,
    bytes: Bytes,
    empty_map: BTreeMap<String, u8>,
}

/// A value serialized with `serialize_bytes` (serde_json writes an array of numbers).
struct Bytes(Vec<u8>);

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

#[test]
fn structs_enums_maps_and_flatten() {
    let inner = || Inner { kind: "tls", absent: None, list: vec!["a\"b".into(), "c".into()] };
    let v = Outer {
        ts: "2025-06-02T08:00:00.000791Z".into(),
        empty: vec![],
        unit: Unit,
        newtype: Newtype(443),
        tuple: Tuple(1, "x"),
        kinds: [Kind::Plain, Kind::Wrapped(9), Kind::Pair(1, 2), Kind::Named { a: 3, b: vec![4, 5] }],
        inner: inner(),
        flat: Some(Inner { absent: Some(1), ..inner() }),
        none: None,
        by_int: [(-3, "minus"), (7, "seven")].into_iter().collect(),
        by_bool: [(false, 0), (true, 1)].into_iter().collect(),
        by_str: [("k\n", Some(true)), ("z", None)].into_iter().collect(),
        bytes: Bytes(vec![0, 255, 16]),
        empty_map: BTreeMap::new(),
    };
    same(&v);
}

#[test]
fn refused_keys_are_refused() {
    let m: BTreeMap<Vec<u8>, u8> = [(vec![1], 1)].into_iter().collect();
    assert!(serde_json::to_vec(&m).is_err());
    assert!(write(&mut Vec::new(), &m).is_err());
}
