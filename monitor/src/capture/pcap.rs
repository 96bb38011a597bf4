//! Source, offline: pcap and pcapng files (or stdin) → timestamped frames with their link type.
//! Must never buffer more than one read window and never lose frames already handed on when the
//! file turns out corrupt: the error names the byte offset and comes after them.
use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

/// One captured frame, borrowed from the reader's window.
pub struct Frame<'a> {
    pub ts_ns: u64,
    pub linktype: u32,
    pub data: &'a [u8],
    /// Length on the wire (may exceed `data.len()` when the capture was cut at a snap length).
    pub orig_len: u32,
}

/// Why reading stopped early. The frames before it have been delivered.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("not a pcap or pcapng file")]
    NotPcap,
    #[error("corrupt capture at byte offset {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    #[error("capture ends in the middle of a block at byte offset {offset}")]
    Truncated { offset: u64 },
    #[error("read error at byte offset {offset}")]
    Io {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
}

/// Totals of one pass over a capture.
#[derive(Clone, Copy, Debug, Default)]
pub struct SourceStats {
    pub frames: u64,
    pub bytes: u64,
}

const WINDOW: usize = 1 << 20;
const MAX_WINDOW: usize = 64 << 20;

/// A reader that remembers the first I/O error (pcap-parser only reports "read error").
struct TrackRead<R> {
    inner: R,
    error: Option<std::io::Error>,
}

impl<R: Read> Read for TrackRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let copy = std::io::Error::new(e.kind(), e.to_string());
                self.error = Some(e);
                Err(copy)
            }
        }
    }
}

/// Per-interface link type and timestamp scale (pcapng); one entry for classic pcap.
struct Iface {
    linktype: u32,
    /// Units per second.
    resolution: u64,
    offset_s: i64,
}

/// A capture being read: frames are pulled in batches (the run loop serves timers and signals
/// between them). Holds at most one read window.
pub struct PcapReader<'r> {
    reader: Box<dyn PcapReaderIterator + 'r>,
    ifaces: Vec<Iface>,
    legacy_linktype: u32,
    legacy_nanos: bool,
    /// Byte offset of the next block.
    offset: u64,
    window: usize,
    /// Frames and bytes handed on so far.
    pub stats: SourceStats,
}

impl<'r> PcapReader<'r> {
    /// Read the file header (pcap) or the first block (pcapng).
    pub fn new<R: Read + 'r>(input: R) -> Result<Self, SourceError> {
        let tracked = TrackRead { inner: input, error: None };
        let reader = match create_reader(WINDOW, tracked) {
            Ok(r) => r,
            Err(PcapError::ReadError) => {
                let source = std::io::Error::other("could not read the capture header");
                return Err(SourceError::Io { offset: 0, source });
            }
            Err(_) => return Err(SourceError::NotPcap),
        };
        Ok(PcapReader {
            reader,
            ifaces: Vec::new(),
            legacy_linktype: 1,
            legacy_nanos: false,
            offset: 0,
            window: WINDOW,
            stats: SourceStats::default(),
        })
    }

    /// Hand up to `limit` frames to `f`. `Ok(false)` at the end of the capture; an error means
    /// the frames before it have been handed on and nothing more will be.
    pub fn next_frames(&mut self, limit: usize, mut f: impl FnMut(&Frame<'_>)) -> Result<bool, SourceError> {
        let mut n = 0;
        while n < limit {
            match self.reader.next() {
                Ok((len, block)) => {
                    let frame = match &block {
                        PcapBlockOwned::LegacyHeader(h) => {
                            self.legacy_linktype = h.network.0 as u32;
                            self.legacy_nanos = h.is_nanosecond_precision();
                            None
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let frac = if self.legacy_nanos { b.ts_usec as u64 } else { b.ts_usec as u64 * 1000 };
                            Some(Frame {
                                ts_ns: b.ts_sec as u64 * 1_000_000_000 + frac,
                                linktype: self.legacy_linktype,
                                data: b.data,
                                orig_len: b.origlen,
                            })
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(_)) => {
                            self.ifaces.clear();
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.ifaces.push(Iface {
                                linktype: idb.linktype.0 as u32,
                                resolution: idb.ts_resolution().unwrap_or(1_000_000).max(1),
                                offset_s: idb.ts_offset(),
                            });
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let Some(iface) = self.ifaces.get(epb.if_id as usize) else {
                                let reason = format!("packet for undeclared interface {}", epb.if_id);
                                return Err(SourceError::Corrupt { offset: self.offset, reason });
                            };
                            let raw = ((epb.ts_high as u64) << 32) | epb.ts_low as u64;
                            let secs = raw / iface.resolution;
                            let frac = raw % iface.resolution;
                            let ns = secs.saturating_add_signed(iface.offset_s).saturating_mul(1_000_000_000)
                                + (frac as u128 * 1_000_000_000 / iface.resolution as u128) as u64;
                            let data = epb.packet_data();
                            Some(Frame { ts_ns: ns, linktype: iface.linktype, data, orig_len: epb.origlen })
                        }
                        PcapBlockOwned::NG(Block::SimplePacket(spb)) => {
                            let linktype = self.ifaces.first().map(|i| i.linktype).unwrap_or(1);
                            Some(Frame { ts_ns: 0, linktype, data: spb.packet_data(), orig_len: spb.origlen })
                        }
                        PcapBlockOwned::NG(_) => None,
                    };
                    if let Some(frame) = frame {
                        self.stats.frames += 1;
                        self.stats.bytes += frame.data.len() as u64;
                        n += 1;
                        f(&frame);
                    }
                    self.offset += len as u64;
                    self.reader.consume(len);
                }
                Err(PcapError::Eof) => return Ok(false),
                Err(PcapError::Incomplete(_)) => {
                    let before = self.reader.data().len();
                    if self.reader.reader_exhausted() {
                        return Err(SourceError::Truncated { offset: self.offset });
                    }
                    if let Err(e) = self.reader.refill() {
                        return Err(refill_error(e, self.offset));
                    }
                    if self.reader.data().len() == before && before >= self.window {
                        // A block larger than the window: grow it (bounded).
                        self.grow()?;
                    }
                }
                Err(PcapError::UnexpectedEof) => return Err(SourceError::Truncated { offset: self.offset }),
                Err(PcapError::BufferTooSmall) => self.grow()?,
                Err(PcapError::ReadError) => {
                    let source = std::io::Error::other("read failed");
                    return Err(SourceError::Io { offset: self.offset, source });
                }
                Err(e) => {
                    let reason = describe(&e);
                    return Err(SourceError::Corrupt { offset: self.offset, reason });
                }
            }
        }
        Ok(true)
    }

    /// Double the read window, up to [`MAX_WINDOW`].
    fn grow(&mut self) -> Result<(), SourceError> {
        if self.window >= MAX_WINDOW || !self.reader.grow(self.window * 2) {
            let reason = format!("block larger than {} MiB", MAX_WINDOW >> 20);
            return Err(SourceError::Corrupt { offset: self.offset, reason });
        }
        self.window *= 2;
        Ok(())
    }
}

/// Read every frame and hand it to `f`. Returns the totals, or the error that stopped reading.
pub fn for_each_frame<R: Read>(
    input: R,
    mut f: impl FnMut(&Frame<'_>),
) -> Result<SourceStats, (SourceStats, SourceError)> {
    let mut reader = PcapReader::new(input).map_err(|e| (SourceStats::default(), e))?;
    loop {
        match reader.next_frames(usize::MAX, &mut f) {
            Ok(true) => {}
            Ok(false) => return Ok(reader.stats),
            Err(e) => return Err((reader.stats, e)),
        }
    }
}

fn refill_error(e: PcapError<&[u8]>, offset: u64) -> SourceError {
    match e {
        PcapError::ReadError => SourceError::Io { offset, source: std::io::Error::other("read failed") },
        other => SourceError::Corrupt { offset, reason: describe(&other) },
    }
}

fn describe(e: &PcapError<&[u8]>) -> String {
    match e {
        PcapError::NomError(_, kind) | PcapError::OwnedNomError(_, kind) => {
            format!("invalid block ({})", kind.description())
        }
        PcapError::HeaderNotRecognized => "header not recognized".into(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn not_a_pcap() {
        let err = for_each_frame(&b"hello world, this is not a capture file at all"[..], |_| {}).unwrap_err();
        assert!(matches!(err.1, SourceError::NotPcap));
    }
}
