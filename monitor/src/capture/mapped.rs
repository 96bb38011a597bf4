//! Source, offline, mapped: a regular capture file mapped read-only into memory and walked in
//! place, so replay copies none of its bytes — neither into a read window nor, with
//! `--threads`, into the workers' batches, which point into the same mapping ([`Mapped`]).
//! [`MappedReader`] is pcap-parser's reader over a window that is the rest of the file seen
//! through [`super::pcap::PcapReader`]'s window size, so the same blocks come out, and the same
//! errors at the same offsets, as when the file is read (the reader drives both alike).
//! Must never be used for standard input or anything but a regular file. A file that shrinks
//! while it is mapped kills the process (SIGBUS, with a message that says so): `--no-mmap` reads
//! such files instead.
use std::fs::File;
use std::sync::Arc;

use pcap_parser::nom::{self, IResult, Needed};
use pcap_parser::pcap::{parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header};
use pcap_parser::pcapng::{parse_block_be, parse_block_le, parse_sectionheaderblock, Block};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{LegacyPcapBlock, PcapBlockOwned, PcapError, PcapHeader};

/// Bytes entered into the page tables ahead of the reader in one call, rather than a fault
/// every few pages.
const AHEAD: usize = 4 << 20;
/// Bytes kept mapped behind the reader: replay workers read payloads there, at most about
/// (fanout's `DEPTH` + 2) rounds of `ROUND_BYTES` (≈ 13 MiB) behind. Pages further back leave
/// this process (they stay in the page cache), so its resident size stays bounded.
const BEHIND: usize = 16 << 20;
/// Pages are let go this many bytes at a time: each time costs every other core running this
/// process's threads a TLB flush (an interrupt; dear in a VM).
const RELEASE: usize = 4 << 20;
/// How far ahead of the reader cache lines are asked for.
const PREFETCH: usize = 8 << 10;

/// A capture file mapped into memory, shared by the reader and the replay workers.
pub type Mapped = Arc<memmap2::Mmap>;

/// Map a regular, non-empty file; `None` when it is anything else or cannot be mapped (the
/// caller then reads it).
pub fn map(file: &File) -> Option<Mapped> {
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() == 0 {
        return None;
    }
    explain_sigbus();
    // SAFETY: the mapping is read-only and private to this process; the one hazard is another
    // process shrinking the file meanwhile (SIGBUS), which the module doc and `--no-mmap` cover.
    let map = unsafe { memmap2::MmapOptions::new().map(file) }.ok()?;
    // Read front to back once; the kernel may read ahead and drop pages behind.
    let _ = map.advise(memmap2::Advice::Sequential);
    Some(Arc::new(map))
}

/// What a process that mapped a capture says when it is killed by SIGBUS.
const SIGBUS_MESSAGE: &str = "tlsmon: bus error (SIGBUS) reading a mapped capture file: it most likely shrank while \
     it was replayed (truncated by a log rotation?). Replay it again with --no-mmap, which reads files instead of \
     mapping them.\n";

/// Say why, when the process dies of SIGBUS (once installed, for the whole process): a mapped
/// file that shrank is the likely cause, and `--no-mmap` the way out. Still dies of SIGBUS.
fn explain_sigbus() {
    extern "C" fn on_sigbus(_: libc::c_int) {
        // Only async-signal-safe calls. SA_RESETHAND has put back the default action: on return
        // the faulting access runs again and ends the process by SIGBUS, as it would have.
        // SAFETY: writes a static buffer to standard error.
        unsafe { libc::write(2, SIGBUS_MESSAGE.as_ptr().cast(), SIGBUS_MESSAGE.len()) };
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: a plain sigaction with a handler that only calls write(2); a zeroed sigaction
        // is a valid starting point (empty mask, no flags).
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
            act.sa_flags = libc::SA_RESETHAND;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGBUS, &act, std::ptr::null_mut());
        }
    });
}

/// True when `part` lies inside `map` (a payload borrowed from it).
pub fn holds(map: &[u8], part: &[u8]) -> bool {
    let (start, end) = (map.as_ptr() as usize, map.as_ptr() as usize + map.len());
    let p = part.as_ptr() as usize;
    !part.is_empty() && p >= start && p + part.len() <= end
}

type LegacyParse = fn(&[u8]) -> IResult<&[u8], LegacyPcapBlock<'_>, PcapError<&[u8]>>;

enum Format {
    /// Classic pcap: its header (handed out first, as pcap-parser's reader does) and the
    /// record parser for its byte order and variant.
    Legacy { header: Option<PcapHeader>, parse: LegacyParse },
    /// pcapng: the byte order of the current section.
    Ng { big_endian: bool },
}

/// pcap-parser's reader interface over a mapped file: the "window" is the next `window` bytes.
pub struct MappedReader {
    map: Mapped,
    pos: usize,
    window: usize,
    format: Format,
    /// Mapped ahead up to here, and dropped behind up to here.
    ahead: usize,
    behind: usize,
    fetched: usize,
}

impl MappedReader {
    /// Recognise the format as pcap-parser's `create_reader` does (pcapng first).
    pub fn new(map: Mapped, window: usize) -> Result<Self, PcapError<&'static [u8]>> {
        let head = &map[..map.len().min(window)];
        if head.is_empty() {
            return Err(PcapError::Eof);
        }
        let format = if parse_sectionheaderblock(head).is_ok() {
            Format::Ng { big_endian: false }
        } else {
            match parse_pcap_header(head) {
                Ok((_, h)) => {
                    let parse: LegacyParse = match (h.is_modified_format(), h.is_bigendian()) {
                        (true, _) => parse_pcap_frame_modified,
                        (false, true) => parse_pcap_frame_be,
                        (false, false) => parse_pcap_frame,
                    };
                    Format::Legacy { header: Some(h), parse }
                }
                Err(nom::Err::Incomplete(Needed::Size(n))) => return Err(PcapError::Incomplete(n.into())),
                Err(nom::Err::Incomplete(Needed::Unknown)) => return Err(PcapError::Incomplete(0)),
                Err(_) => return Err(PcapError::HeaderNotRecognized),
            }
        };
        Ok(MappedReader { map, pos: 0, window, format, ahead: 0, behind: 0, fetched: 0 })
    }

    /// Ask for the cache lines `PREFETCH` bytes ahead of the reader, all of them (where the
    /// next record headers lie is not known yet): the walk then waits on memory once per
    /// stretch, not once per record.
    fn prefetch(&mut self) {
        #[cfg(target_arch = "x86_64")]
        {
            let end = (self.pos + PREFETCH).min(self.map.len());
            let mut at = self.fetched.max(self.pos + PREFETCH / 2) & !63;
            while at < end {
                // SAFETY: `at` is inside the mapping; a prefetch never faults and reads nothing.
                unsafe {
                    std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        self.map.as_ptr().add(at).cast(),
                    )
                };
                at += 64;
            }
            self.fetched = end;
        }
    }

    /// Keep the pages around the reader mapped and drop those far behind it. Advice only: when
    /// the kernel refuses it (older kernels lack MADV_POPULATE_READ), pages fault in as usual.
    fn track(&mut self) {
        let len = self.map.len();
        if self.pos + AHEAD > self.ahead && self.ahead < len {
            let end = (self.pos + 2 * AHEAD).min(len);
            let start = self.ahead.max(self.pos);
            let _ = self.map.advise_range(memmap2::Advice::PopulateRead, start, end - start);
            self.ahead = end;
        }
        if self.pos >= self.behind + BEHIND + RELEASE {
            let end = self.pos - BEHIND;
            // SAFETY: the mapping is a read-only view of a file: dropped pages are read again
            // from the page cache (the same bytes) if anything still looks at them.
            let _ = unsafe {
                self.map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, self.behind, end - self.behind)
            };
            self.behind = end;
        }
    }

    /// The rest of the file, from the next block on.
    fn rest(&self) -> &[u8] {
        self.map.get(self.pos..).unwrap_or_default()
    }
}

impl PcapReaderIterator for MappedReader {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&'_ [u8]>> {
        if let Format::Legacy { header, .. } = &mut self.format {
            if let Some(h) = header.take() {
                return Ok((h.size(), PcapBlockOwned::from(h)));
            }
        }
        let rest = self.map.get(self.pos..).unwrap_or_default();
        let data = &rest[..rest.len().min(self.window)];
        if data.is_empty() {
            return Err(PcapError::Eof);
        }
        let parsed = match &mut self.format {
            Format::Legacy { parse, .. } => {
                parse(data).map(|(rem, b)| (data.len() - rem.len(), PcapBlockOwned::from(b)))
            }
            Format::Ng { big_endian } => {
                let parse = if *big_endian { parse_block_be } else { parse_block_le };
                parse(data).map(|(rem, b)| {
                    if let Block::SectionHeader(shb) = &b {
                        *big_endian = shb.big_endian();
                    }
                    (data.len() - rem.len(), PcapBlockOwned::from(b))
                })
            }
        };
        match parsed {
            Ok(v) => Ok(v),
            Err(nom::Err::Error(e)) | Err(nom::Err::Failure(e)) => Err(e),
            // The whole rest was in view: the file ends inside this block.
            Err(nom::Err::Incomplete(_)) if data.len() == rest.len() => Err(PcapError::UnexpectedEof),
            // The block is larger than the window: the reader grows it (bounded) or refuses it.
            Err(nom::Err::Incomplete(_)) => Err(PcapError::BufferTooSmall),
        }
    }
    fn consume(&mut self, offset: usize) {
        self.pos = self.pos.saturating_add(offset).min(self.map.len());
        self.track();
        self.prefetch();
    }
    fn consume_noshift(&mut self, offset: usize) {
        self.consume(offset);
    }
    fn consumed(&self) -> usize {
        self.pos
    }
    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }
    fn position(&self) -> usize {
        0
    }
    fn grow(&mut self, new_size: usize) -> bool {
        self.window = self.window.max(new_size);
        true
    }
    fn data(&self) -> &[u8] {
        let rest = self.rest();
        &rest[..rest.len().min(self.window)]
    }
    fn reader_exhausted(&self) -> bool {
        true
    }
}
