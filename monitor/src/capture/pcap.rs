//! Source, offline: pcap and pcapng files (or stdin) → timestamped frames with their link type.
//! Must never buffer more than one read window (at most [`MAX_WINDOW`]: a length field claiming
//! more is refused before anything is allocated for it), never pass on a time outside
//! [1970, 2200), and never lose frames already handed on when the file turns out corrupt: the
//! error names the byte offset and comes after them.
use std::io::Read;

use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{create_reader, PcapBlockOwned, PcapError};

use super::mapped::{Mapped, MappedReader};
use super::timestamp;

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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SourceStats {
    pub frames: u64,
    pub bytes: u64,
    /// Frames whose time was outside [1970, 2200) (see [`timestamp`]): they were handed on at
    /// the last good time of the capture (0 before the first).
    pub bad_timestamps: u64,
}

const WINDOW: usize = 1 << 20;
/// The read window never grows past this, so no record or block may reach it: a length field
/// claiming as much is refused (corrupt) before the window grows. Real records are far smaller
/// (libpcap's largest snap length is 256 KiB), so the file header's snap length is not
/// consulted: writers leave it 0 or wrong, and this cap binds first for every real one.
const MAX_WINDOW: usize = 4 << 20;

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

/// Per-interface link type and timestamp scale (pcapng).
struct Iface {
    linktype: u32,
    /// Units per second (`if_tsresol`, powers of 10 or of 2).
    per_s: u128,
    /// `if_tsoffset`: seconds added to every timestamp.
    offset_s: i64,
}

/// How the block at the head of the window states its length.
#[derive(Clone, Copy)]
enum Layout {
    /// Classic pcap: a record header of `header` bytes with the captured length at byte 8.
    Pcap { header: u64, big_endian: bool },
    /// pcapng: the block's total length at byte 4, in the section's byte order.
    PcapNg { big_endian: bool },
}

/// The time handed on with each frame: a good time, or for a bad one the last good time.
#[derive(Default)]
struct Clock {
    last_good_ns: u64,
}

impl Clock {
    fn stamp(&mut self, ns: Option<u64>, stats: &mut SourceStats) -> u64 {
        match ns {
            Some(ns) => self.last_good_ns = ns,
            None => stats.bad_timestamps += 1,
        }
        self.last_good_ns
    }
}

/// A capture being read: frames are pulled in batches (the run loop serves timers and signals
/// between them). Holds at most one read window.
pub struct PcapReader<'r> {
    reader: Box<dyn PcapReaderIterator + 'r>,
    ifaces: Vec<Iface>,
    legacy_linktype: u32,
    legacy_nanos: bool,
    /// Known once the file header (pcap) or a section header (pcapng) was read.
    layout: Option<Layout>,
    clock: Clock,
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
        Ok(Self::over(reader))
    }

    /// Walk a mapped file in place (see [`super::mapped`]): the same frames and errors as
    /// reading it.
    pub fn mapped(map: Mapped) -> Result<PcapReader<'static>, SourceError> {
        match MappedReader::new(map, WINDOW) {
            Ok(r) => Ok(PcapReader::over(Box::new(r))),
            Err(_) => Err(SourceError::NotPcap),
        }
    }

    fn over(reader: Box<dyn PcapReaderIterator + 'r>) -> Self {
        PcapReader {
            reader,
            ifaces: Vec::new(),
            legacy_linktype: 1,
            legacy_nanos: false,
            layout: None,
            clock: Clock::default(),
            offset: 0,
            window: WINDOW,
            stats: SourceStats::default(),
        }
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
                            let header = if h.is_modified_format() { 24 } else { 16 };
                            self.layout = Some(Layout::Pcap { header, big_endian: h.is_bigendian() });
                            None
                        }
                        PcapBlockOwned::Legacy(b) => {
                            let ns = timestamp::pcap_ns(b.ts_sec, b.ts_usec, self.legacy_nanos);
                            Some(Frame {
                                ts_ns: self.clock.stamp(ns, &mut self.stats),
                                linktype: self.legacy_linktype,
                                data: b.data,
                                orig_len: b.origlen,
                            })
                        }
                        PcapBlockOwned::NG(Block::SectionHeader(shb)) => {
                            self.ifaces.clear();
                            self.layout = Some(Layout::PcapNg { big_endian: shb.big_endian() });
                            None
                        }
                        PcapBlockOwned::NG(Block::InterfaceDescription(idb)) => {
                            self.ifaces.push(Iface {
                                linktype: idb.linktype.0 as u32,
                                per_s: timestamp::units_per_s(idb.if_tsresol),
                                offset_s: idb.ts_offset(),
                            });
                            None
                        }
                        PcapBlockOwned::NG(Block::EnhancedPacket(epb)) => {
                            let Some(iface) = self.ifaces.get(epb.if_id as usize) else {
                                let reason = format!("packet for undeclared interface {}", epb.if_id);
                                return Err(SourceError::Corrupt { offset: self.offset, reason });
                            };
                            let units = (u64::from(epb.ts_high) << 32) | u64::from(epb.ts_low);
                            let ns = timestamp::pcapng_ns(units, iface.per_s, iface.offset_s);
                            let ts_ns = self.clock.stamp(ns, &mut self.stats);
                            let data = epb.packet_data();
                            Some(Frame { ts_ns, linktype: iface.linktype, data, orig_len: epb.origlen })
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
                    // The window shifts when it is refilled, not after every block.
                    self.reader.consume_noshift(len);
                }
                Err(PcapError::Eof) => return Ok(false),
                Err(PcapError::Incomplete(_)) => {
                    let before = self.reader.data().len();
                    if self.reader.reader_exhausted() {
                        return Err(self.truncated());
                    }
                    if let Err(e) = self.reader.refill() {
                        return Err(refill_error(e, self.offset));
                    }
                    if self.reader.data().len() == before && before >= self.window {
                        // A block larger than the window: grow it (bounded).
                        self.grow()?;
                    }
                }
                Err(PcapError::UnexpectedEof) => return Err(self.truncated()),
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

    /// Grow the read window to hold the block at its head (at least double it), up to
    /// [`MAX_WINDOW`]. A block whose header claims [`MAX_WINDOW`] bytes or more is refused
    /// before anything is allocated for it.
    fn grow(&mut self) -> Result<(), SourceError> {
        let claimed = self.claimed_len();
        if let Some(e) = self.impossible() {
            return Err(e);
        }
        // Room for the whole block and one byte: pcap-parser wants the window larger than it.
        let fits = claimed.map_or(0, |(_, len)| (len as usize + 1).next_power_of_two());
        let want = fits.max(self.window * 2).min(MAX_WINDOW);
        if self.window >= MAX_WINDOW || !self.reader.grow(want) {
            let reason = format!("block larger than {} MiB", MAX_WINDOW >> 20);
            return Err(SourceError::Corrupt { offset: self.offset, reason });
        }
        self.window = want;
        Ok(())
    }

    /// The file ends inside the block at the head of the window: corrupt when its header
    /// claims an impossible length (whatever the file's size), else truncated.
    fn truncated(&self) -> SourceError {
        self.impossible().unwrap_or(SourceError::Truncated { offset: self.offset })
    }

    /// The block at the head of the window claims [`MAX_WINDOW`] bytes or more.
    fn impossible(&self) -> Option<SourceError> {
        let (what, len) = self.claimed_len().filter(|(_, len)| *len >= MAX_WINDOW as u64)?;
        let reason = format!("a {what} claims {len} bytes, over the {} MiB limit", MAX_WINDOW >> 20);
        Some(SourceError::Corrupt { offset: self.offset, reason })
    }

    /// What the block at the head of the window is and the length its header claims (a pcap
    /// record: its header and captured length; a pcapng block: its total length), when the
    /// header is there and the layout known.
    fn claimed_len(&self) -> Option<(&'static str, u64)> {
        let data = self.reader.data();
        let u32_at = |at: usize, big_endian: bool| {
            let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
            Some(u64::from(if big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }))
        };
        match self.layout? {
            Layout::Pcap { header, big_endian } => Some(("record", header + u32_at(8, big_endian)?)),
            Layout::PcapNg { big_endian } => {
                // A new section states its own byte order.
                let big_endian = match data.get(..4) {
                    Some([0x0a, 0x0d, 0x0d, 0x0a]) => data.get(8..12)? == [0x1a, 0x2b, 0x3c, 0x4d],
                    _ => big_endian,
                };
                Some(("block", u32_at(4, big_endian)?))
            }
        }
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
#[path = "pcap_tests.rs"]
mod tests;
