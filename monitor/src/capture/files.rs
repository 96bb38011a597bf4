//! Source, offline: capture files (pcap/pcapng) or standard input ("-"), read one after
//! another and decoded into packets, with the decode counters every source keeps. Regular
//! files are mapped and walked in place ([`super::mapped`]) unless told to read them.
//! Must never stop at a bad file: what it held before the bad block has been handed on, the
//! error is reported once, and the next file is read.
use std::io::Read;
use std::path::PathBuf;

use super::mapped::{self, Mapped};
use super::pcap::PcapReader;
use super::DecodeStats;
use super::{Drained, Progress, Source};
use crate::decode::Packet;

/// The file being read.
struct Open {
    name: String,
    size: u64,
    reader: PcapReader<'static>,
    /// The file's mapping, when it is walked in place.
    map: Option<Mapped>,
}

/// Capture files in order; flows go on across them (one capture split into several files).
pub struct FileSource {
    files: Vec<PathBuf>,
    /// Index of the next file to open.
    next: usize,
    current: Option<Open>,
    /// Captured bytes of the files already read.
    read_before: u64,
    /// Sizes of all files (0 for stdin or an unreadable file).
    sizes: Vec<u64>,
    /// Files that failed (could not be opened, or corrupt / truncated part-way).
    pub failed: usize,
    decode: DecodeStats,
    /// Map regular files (the default) rather than read them.
    mmap: bool,
}

impl FileSource {
    /// Files to read in order; "-" is standard input. Nothing is opened yet.
    pub fn new(files: Vec<PathBuf>) -> Self {
        let sizes = files.iter().map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)).collect();
        FileSource {
            files,
            next: 0,
            current: None,
            read_before: 0,
            sizes,
            failed: 0,
            decode: DecodeStats::default(),
            mmap: true,
        }
    }

    /// Map regular files (true, the default) or read them (`--no-mmap`: for a file that may
    /// shrink while it is replayed).
    pub fn mmap(mut self, on: bool) -> Self {
        self.mmap = on;
        self
    }

    /// Total size of the files, as far as known (stdin counts 0).
    pub fn total_size(&self) -> u64 {
        self.sizes.iter().sum()
    }

    /// Open the next file; `Err` is the message for a file that cannot be opened.
    fn open_next(&mut self) -> Option<Result<(), String>> {
        let path = self.files.get(self.next)?;
        self.next += 1;
        let name = path.display().to_string();
        let opened = if name == "-" {
            PcapReader::new(Box::new(std::io::stdin().lock()) as Box<dyn Read>).map(|r| (r, 0, None))
        } else {
            let f = match std::fs::File::open(path) {
                Ok(f) => f,
                Err(e) => return Some(Err(format!("cannot open {name}: {e}"))),
            };
            let size = f.metadata().map(|m| m.len()).unwrap_or(0);
            match self.mmap.then(|| mapped::map(&f)).flatten() {
                Some(map) => PcapReader::mapped(map.clone()).map(|r| (r, size, Some(map))),
                None => PcapReader::new(Box::new(f) as Box<dyn Read>).map(|r| (r, size, None)),
            }
        };
        Some(match opened {
            Ok((reader, size, map)) => {
                self.current = Some(Open { name, size, reader, map });
                Ok(())
            }
            Err(e) => Err(format!("{name}: {e}")),
        })
    }
}

impl Source for FileSource {
    type Error = std::convert::Infallible;

    /// Files are always ready; yield once so the runtime serves timers and signals between
    /// batches.
    async fn ready(&mut self) -> Result<(), Self::Error> {
        tokio::task::yield_now().await;
        Ok(())
    }

    fn drain(&mut self, limit: usize, mut f: impl FnMut(u64, &Packet<'_>)) -> Drained {
        if self.current.is_none() {
            match self.open_next() {
                None => return Drained::End,
                Some(Err(msg)) => {
                    self.failed += 1;
                    return Drained::Failed(msg);
                }
                Some(Ok(())) => {}
            }
        }
        let Some(open) = &mut self.current else { return Drained::End };
        let decode = &mut self.decode;
        let before = open.reader.stats;
        let res = open.reader.next_frames(limit, |fr| {
            if let Some(p) = decode.decode(fr.linktype, fr.data) {
                f(fr.ts_ns, &p);
            }
        });
        let n = (open.reader.stats.frames - before.frames) as usize;
        decode.bad_timestamps += open.reader.stats.bad_timestamps - before.bad_timestamps;
        match res {
            Ok(true) => Drained::Packets(n),
            Ok(false) => {
                self.read_before += open.reader.stats.bytes;
                self.current = None;
                Drained::Packets(n)
            }
            Err(e) => {
                let msg = format!("{}: {e}", open.name);
                self.read_before += open.reader.stats.bytes;
                self.current = None;
                self.failed += 1;
                Drained::Failed(msg)
            }
        }
    }

    fn decoded(&self) -> DecodeStats {
        self.decode
    }

    fn mapped(&self) -> Option<&Mapped> {
        self.current.as_ref()?.map.as_ref()
    }

    fn now_ns(&self) -> Option<u64> {
        None
    }

    fn progress(&self) -> Option<Progress<'_>> {
        let (name, read, size) = match &self.current {
            Some(o) => (o.name.as_str(), o.reader.stats.bytes, o.size),
            None => ("", 0, 0),
        };
        let done = self.next - usize::from(self.current.is_some());
        Some(Progress {
            name,
            read,
            size,
            files_done: done,
            files_total: self.files.len(),
            read_all: self.read_before + read,
            size_all: self.total_size(),
        })
    }
}
