//! Source, offline: a classic pcap file read through a read-only memory map — frames are
//! borrowed straight from the page cache, with no read(2) copy and no window to shift (most
//! payload bytes of a capture are never touched at all). The same pcap-parser record parser
//! as the streaming reader, behind the same `PcapReaderIterator` face, so `PcapReader` keeps
//! one set of rules (lengths, limits, errors) for both.
//! Must never hold more than [`RELEASE_EVERY`] of the file resident: what was read is given
//! back to the kernel as the reader moves on (the pages stay in the page cache). A file
//! truncated by another process while it is mapped ends the process with SIGBUS, as with any
//! mapped reader; `tlsmon replay` reads a file that is being written with `-` (stdin) instead.
use std::fs::File;
use std::os::fd::AsRawFd;

use pcap_parser::pcap::{
    parse_pcap_frame, parse_pcap_frame_be, parse_pcap_frame_modified, parse_pcap_header, PcapHeader,
};
use pcap_parser::traits::PcapReaderIterator;
use pcap_parser::{PcapBlockOwned, PcapError};

/// Bytes read behind the position before they are given back (madvise DONTNEED).
const RELEASE_EVERY: usize = 8 << 20;

/// A read-only private mapping of a whole file.
struct Map {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value; reading it from another thread is
// as safe as reading a `&[u8]`.
unsafe impl Send for Map {}

impl Map {
    fn new(f: &File, len: usize) -> Option<Map> {
        // SAFETY: a fresh read-only mapping of `len` bytes of an open file; checked below.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, f.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        // SAFETY: advice on our own mapping; failure only costs read-ahead.
        unsafe { libc::madvise(ptr, len, libc::MADV_SEQUENTIAL) };
        Some(Map { ptr, len })
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr` maps `len` readable bytes for the life of `self`.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }

    /// Give back the pages of `from..to` (page-aligned `from`).
    fn release(&self, from: usize, to: usize) {
        // SAFETY: a sub-range of our own mapping; DONTNEED on a private read-only file
        // mapping only drops resident pages (read again from the file if touched).
        unsafe { libc::madvise(self.ptr.add(from), to - from, libc::MADV_DONTNEED) };
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping once; no borrow of it outlives `self`.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// Which record layout the file header announced.
#[derive(Clone, Copy)]
enum Layout {
    Le,
    Be,
    Modified,
}

/// A classic pcap file through a memory map.
pub struct MappedPcap {
    map: Map,
    header: PcapHeader,
    header_sent: bool,
    layout: Layout,
    pos: usize,
    released: usize,
}

impl MappedPcap {
    /// Map `f` when it is a non-empty classic pcap file (any byte order, µs or ns, the
    /// "modified" format); `None` otherwise (pcapng, a pipe, a failed map): read it streaming.
    pub fn open(f: &File) -> Option<MappedPcap> {
        let md = f.metadata().ok()?;
        let len = usize::try_from(md.len()).ok()?;
        if !md.is_file() || len < 24 {
            return None;
        }
        let map = Map::new(f, len)?;
        let (_, header) = parse_pcap_header(map.bytes()).ok()?;
        let layout = match (header.is_modified_format(), header.is_bigendian()) {
            (true, _) => Layout::Modified,
            (false, true) => Layout::Be,
            (false, false) => Layout::Le,
        };
        Some(MappedPcap { map, header, header_sent: false, layout, pos: 0, released: 0 })
    }

    fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.map.len);
        if self.pos - self.released >= RELEASE_EVERY {
            let page = 4096;
            let to = self.pos / page * page;
            self.map.release(self.released, to);
            self.released = to;
        }
    }
}

impl PcapReaderIterator for MappedPcap {
    fn next(&mut self) -> Result<(usize, PcapBlockOwned<'_>), PcapError<&[u8]>> {
        if !self.header_sent {
            self.header_sent = true;
            return Ok((self.header.size(), PcapBlockOwned::from(self.header.clone())));
        }
        let data = &self.map.bytes()[self.pos..];
        if data.is_empty() {
            return Err(PcapError::Eof);
        }
        // Refuse what the streaming reader's bounded window refuses: let the caller grow
        // (and so judge) a record too large for it.
        let hlen = if self.header.is_modified_format() { 24 } else { 16 };
        if let Some(b) = data.get(8..12) {
            let b = [b[0], b[1], b[2], b[3]];
            let caplen = if self.header.is_bigendian() { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) };
            if hlen + caplen as usize >= super::pcap::MAX_WINDOW {
                return Err(PcapError::BufferTooSmall);
            }
        }
        let parsed = match self.layout {
            Layout::Le => parse_pcap_frame(data),
            Layout::Be => parse_pcap_frame_be(data),
            Layout::Modified => parse_pcap_frame_modified(data),
        };
        match parsed {
            Ok((rem, b)) => Ok((data.len() - rem.len(), PcapBlockOwned::from(b))),
            Err(pcap_parser::nom::Err::Error(e)) | Err(pcap_parser::nom::Err::Failure(e)) => Err(e),
            Err(pcap_parser::nom::Err::Incomplete(_)) => Err(PcapError::UnexpectedEof),
        }
    }
    fn consume(&mut self, offset: usize) {
        self.advance(offset);
    }
    fn consume_noshift(&mut self, offset: usize) {
        self.advance(offset);
    }
    fn consumed(&self) -> usize {
        self.pos
    }
    fn refill(&mut self) -> Result<(), PcapError<&[u8]>> {
        Ok(())
    }
    fn position(&self) -> usize {
        self.pos
    }
    /// The whole file is there: a record that does not fit is judged by the caller.
    fn grow(&mut self, _new_size: usize) -> bool {
        false
    }
    fn data(&self) -> &[u8] {
        &self.map.bytes()[self.pos..]
    }
    fn reader_exhausted(&self) -> bool {
        true
    }
}
