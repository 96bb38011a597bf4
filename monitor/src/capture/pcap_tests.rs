//! Tests of the pcap/pcapng reader: frames and offsets, every timestamp unit at its edges, and
//! length fields that must be refused before the read window grows. Captures built here.
use super::*;

fn pcap_with(frames: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&1u32.to_le_bytes());
    for (i, fr) in frames.iter().enumerate() {
        v.extend_from_slice(&(100 + i as u32).to_le_bytes());
        v.extend_from_slice(&5u32.to_le_bytes());
        v.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        v.extend_from_slice(&(fr.len() as u32).to_le_bytes());
        v.extend_from_slice(fr);
    }
    v
}

#[test]
fn reads_frames_and_timestamps() {
    let file = pcap_with(&[b"abcd", b"efgh"]);
    let mut seen = Vec::new();
    let stats = for_each_frame(&file[..], |f| seen.push((f.ts_ns, f.data.to_vec()))).unwrap();
    assert_eq!(stats.frames, 2);
    assert_eq!(seen[1], (101_000_005_000, b"efgh".to_vec()));
}

#[test]
fn truncated_file_keeps_earlier_frames_and_names_offset() {
    let file = pcap_with(&[b"abcd", b"efgh"]);
    let mut n = 0;
    let err = for_each_frame(&file[..file.len() - 2], |_| n += 1).unwrap_err();
    assert_eq!(n, 1);
    assert!(matches!(err.1, SourceError::Truncated { offset: 44 }), "{:?}", err.1);
}

/// A little-endian pcapng: the section header, one interface per (`if_tsresol`,
/// `if_tsoffset`), then a 4-byte frame per (interface, timestamp).
fn pcapng_with(ifaces: &[(u8, i64)], packets: &[(u32, u64)]) -> Vec<u8> {
    fn block(v: &mut Vec<u8>, kind: u32, body: &[u8]) {
        let len = 12 + body.len() as u32;
        for part in [&kind.to_le_bytes()[..], &len.to_le_bytes(), body, &len.to_le_bytes()] {
            v.extend_from_slice(part);
        }
    }
    let mut v = Vec::new();
    block(&mut v, 0x0a0d_0d0a, &[0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    for (tsresol, offset) in ifaces {
        let mut idb = vec![1, 0, 0, 0, 0xff, 0xff, 0, 0, 9, 0, 1, 0, *tsresol, 0, 0, 0, 14, 0, 8, 0];
        idb.extend_from_slice(&offset.to_le_bytes());
        idb.extend_from_slice(&[0; 4]);
        block(&mut v, 1, &idb);
    }
    for (iface, ts) in packets {
        let mut epb = iface.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*ts as u32).to_le_bytes());
        epb.extend_from_slice(&[4, 0, 0, 0, 4, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef]);
        block(&mut v, 6, &epb);
    }
    v
}

/// Every frame's time and the reader's totals.
fn times(file: &[u8]) -> (Vec<u64>, SourceStats) {
    let mut seen = Vec::new();
    let stats = for_each_frame(file, |f| seen.push(f.ts_ns)).unwrap();
    (seen, stats)
}

#[test]
fn every_timestamp_unit_converts_exactly() {
    const S: u64 = 1_000_000_000;
    let t = 1_700_000_000u64;
    let ifaces = [(0, 0), (1, 0), (6, 0), (9, 0), (0x80 | 10, 0), (9, -3600), (6, 3600)];
    let packets = [
        (0, t),
        (1, t * 10 + 3),
        (2, t * 1_000_000 + 7),
        (3, t * S + 7),
        (4, (t << 10) + 256),
        (5, t * S),
        (6, t * 1_000_000),
    ];
    let (seen, stats) = times(&pcapng_with(&ifaces, &packets));
    let want =
        [t * S, t * S + 300_000_000, t * S + 7_000, t * S + 7, t * S + 250_000_000, (t - 3600) * S, (t + 3600) * S];
    assert_eq!(seen, want);
    assert_eq!((stats.frames, stats.bad_timestamps), (7, 0));
}

#[test]
fn overflowing_timestamps_are_counted_and_take_the_last_good_time() {
    const S: u64 = 1_000_000_000;
    let t = 1_700_000_000u64;
    // if_tsresol 0 with 2^63, 1 with 2^64 − 1 (the probe's two), 6 and 9 with 2^64 − 1,
    // 2^-10 s units with 2^64 − 1 (2^54 s), an offset before 1970 and one past u64 ns.
    let ifaces = [(6, 0), (0, 0), (1, 0), (6, 0), (9, 0), (0x80 | 10, 0), (9, i64::MIN), (9, i64::MAX)];
    let bad = [(1, 1 << 63), (2, u64::MAX), (3, u64::MAX), (5, u64::MAX), (6, t * S), (7, 0), (6, u64::MAX)];
    // Before any good time: 0.
    let mut packets = vec![(1, u64::MAX)];
    packets.extend([(0, t * 1_000_000)]);
    packets.extend(bad);
    packets.extend([(0, (t + 1) * 1_000_000), (4, u64::MAX)]);
    let (seen, stats) = times(&pcapng_with(&ifaces, &packets));
    assert_eq!(stats.frames, 11);
    assert_eq!(stats.bad_timestamps, 9);
    let mut want = vec![0, t * S];
    want.extend([t * S; 7]);
    // 2^64 − 1 ns is 2554-07-21: past the window too.
    want.extend([(t + 1) * S, (t + 1) * S]);
    assert_eq!(seen, want);
    assert!(seen.iter().all(|ns| *ns < timestamp::END_NS));
}

#[test]
fn huge_length_fields_are_refused_before_the_window_grows() {
    // A pcap record header claiming 4 GiB − 1: 40 bytes in all.
    let mut file = pcap_with(&[]);
    file.extend_from_slice(&[0; 8]);
    file.extend_from_slice(&u32::MAX.to_le_bytes());
    file.extend_from_slice(&u32::MAX.to_le_bytes());
    let mut reader = PcapReader::new(&file[..]).unwrap();
    let err = reader.next_frames(usize::MAX, |_| {}).unwrap_err();
    let SourceError::Corrupt { offset, reason } = err else { panic!("{err:?}") };
    assert_eq!((offset, reason.as_str()), (24, "a record claims 4294967311 bytes, over the 4 MiB limit"));
    assert_eq!(reader.window, WINDOW, "refused before growing");
    // pcapng: an enhanced packet block after a good frame, claiming 4 GiB − 4.
    let mut file = pcapng_with(&[(6, 0)], &[(0, 5)]);
    let at = file.len() as u64;
    file.extend_from_slice(&6u32.to_le_bytes());
    file.extend_from_slice(&0xffff_fffcu32.to_le_bytes());
    file.extend_from_slice(&[0; 24]);
    let mut reader = PcapReader::new(&file[..]).unwrap();
    let mut n = 0;
    let err = reader.next_frames(usize::MAX, |_| n += 1).unwrap_err();
    assert_eq!(n, 1, "the frame before the bad block was handed on");
    let SourceError::Corrupt { offset, reason } = err else { panic!("{err:?}") };
    assert_eq!((offset, reason.as_str()), (at, "a block claims 4294967292 bytes, over the 4 MiB limit"));
    assert_eq!(reader.window, WINDOW);
}

#[test]
fn a_large_block_below_the_cap_still_reads() {
    let big = vec![0x55u8; 3 << 20];
    let file = pcap_with(&[b"abcd", &big, b"efgh"]);
    let mut lens = Vec::new();
    let stats = for_each_frame(&file[..], |f| lens.push(f.data.len())).unwrap();
    assert_eq!(lens, [4, 3 << 20, 4]);
    assert_eq!(stats.bad_timestamps, 0);
}

#[test]
fn not_a_pcap() {
    let err = for_each_frame(&b"hello world, this is not a capture file at all"[..], |_| {}).unwrap_err();
    assert!(matches!(err.1, SourceError::NotPcap));
}

/// Every frame (time, link type, bytes, length on the wire) and how reading ended.
type Walk = (Vec<(u64, u32, Vec<u8>, u32)>, Result<SourceStats, String>);

fn walk(reader: Result<PcapReader<'_>, SourceError>) -> Walk {
    let mut frames = Vec::new();
    let mut reader = match reader {
        Ok(r) => r,
        Err(e) => return (frames, Err(e.to_string())),
    };
    loop {
        match reader.next_frames(7, |f| frames.push((f.ts_ns, f.linktype, f.data.to_vec(), f.orig_len))) {
            Ok(true) => {}
            Ok(false) => return (frames, Ok(reader.stats)),
            Err(e) => return (frames, Err(e.to_string())),
        }
    }
}

/// `bytes` walked in place from a mapped file (the mapping outlives the file's name).
fn walk_mapped(bytes: &[u8]) -> Option<Walk> {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("tlsmon-mapped-{}-{n}.pcap", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let map = crate::capture::mapped::map(&file)?;
    Some(walk(PcapReader::mapped(map)))
}

/// Read and mapped, a capture gives the same frames and ends the same way (the same error at
/// the same offset), whole and cut short at several places.
fn assert_mapped_reads_alike(what: &str, bytes: &[u8]) {
    let mut cuts = vec![bytes.len(), bytes.len() - 1, bytes.len() / 2, 40, 30, 24, 10];
    cuts.retain(|c| *c <= bytes.len());
    for cut in cuts {
        let part = &bytes[..cut];
        let read = walk(PcapReader::new(part));
        match walk_mapped(part) {
            Some(mapped) => {
                assert_eq!(read.1, mapped.1, "{what} cut at {cut}: how it ended");
                assert!(
                    read.0 == mapped.0,
                    "{what} cut at {cut}: frames differ ({} read, {} mapped)",
                    read.0.len(),
                    mapped.0.len()
                );
            }
            None => assert_eq!(cut, 0, "{what}: only an empty file is not mapped"),
        }
    }
}

#[test]
fn mapped_files_read_like_read_files() {
    assert_mapped_reads_alike("pcap", &pcap_with(&[b"abcd", b"efgh", &[7; 1500]]));
    assert_mapped_reads_alike("pcapng", &pcapng_with(&[(6, 0), (9, 3)], &[(0, 5), (1, 7), (0, 9)]));
    assert_mapped_reads_alike(
        "a 3 MiB record (the window grows)",
        &pcap_with(&[b"abcd", &vec![0x55; 3 << 20], b"efgh"]),
    );
    assert_mapped_reads_alike("not a capture", b"hello world, this is not a capture file at all");
    let mut huge = pcap_with(&[b"abcd"]);
    huge.extend_from_slice(&[0; 8]);
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&u32::MAX.to_le_bytes());
    huge.extend_from_slice(&[0; 64]);
    assert_mapped_reads_alike("a record claiming 4 GiB", &huge);
    let mut over = pcap_with(&[b"abcd"]);
    over.extend_from_slice(&[0; 8]);
    over.extend_from_slice(&(5u32 << 20).to_le_bytes());
    over.extend_from_slice(&(5u32 << 20).to_le_bytes());
    over.extend(std::iter::repeat_n(1u8, 5 << 20));
    assert_mapped_reads_alike("a whole 5 MiB record (over the cap)", &over);
    // Real captures from the shared corpus: classic and pcapng, both byte orders.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/pcaps");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        assert_mapped_reads_alike(&path.display().to_string(), &std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 40, "the corpus has its captures ({n})");
}

#[test]
fn empty_and_special_files_are_not_mapped() {
    let path = std::env::temp_dir().join(format!("tlsmon-mapped-empty-{}", std::process::id()));
    std::fs::write(&path, b"").unwrap();
    let file = std::fs::File::open(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(crate::capture::mapped::map(&file).is_none(), "an empty file is read");
    let null = std::fs::File::open("/dev/null").unwrap();
    assert!(crate::capture::mapped::map(&null).is_none(), "a device is read");
}
