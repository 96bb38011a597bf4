//! Generator output file: a buffered writer whose full buffers are written by a second thread,
//! so packet generation and the kernel's write path overlap (the write path is the bottleneck).
//! Must never reorder buffers or drop a write error.
use std::fs::File;
use std::io::{self, Write};
use std::mem;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

const BUF: usize = 8 << 20;
const IN_FLIGHT: usize = 3;

pub struct ThreadedFile {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

impl ThreadedFile {
    pub fn new(mut file: File) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let (back_tx, spare) = mpsc::channel();
        let writer = thread::Builder::new().name("gen-writer".into()).spawn(move || {
            for mut b in rx {
                file.write_all(&b)?;
                b.clear();
                let _ = back_tx.send(b); // the producer may be gone already; fine
            }
            file.flush()
        })?;
        Ok(ThreadedFile { buf: Vec::with_capacity(BUF), tx: Some(tx), spare, writer: Some(writer) })
    }

    fn ship(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self.spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(BUF));
        let full = mem::replace(&mut self.buf, next);
        let sent = self.tx.as_ref().map(|tx| tx.send(full).is_ok()).unwrap_or(false);
        if sent {
            Ok(())
        } else {
            Err(self.join().err().unwrap_or_else(|| io::Error::other("writer thread stopped")))
        }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.writer.take() {
            Some(h) => h.join().map_err(|_| io::Error::other("writer thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Writes what is buffered, waits for the writer thread and returns its result.
    pub fn finish(mut self) -> io::Result<()> {
        self.ship()?;
        self.join()
    }
}

impl Write for ThreadedFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > BUF {
            self.ship()?;
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    /// Hands the current buffer to the writer thread (does not wait for the disk).
    fn flush(&mut self) -> io::Result<()> {
        self.ship()
    }
}

impl Drop for ThreadedFile {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn bytes_arrive_in_order() {
        let path = std::env::temp_dir().join(format!("xtask-sink-{}.bin", std::process::id()));
        let mut w = ThreadedFile::new(File::create(&path).expect("create")).expect("writer");
        let mut expect = Vec::new();
        for i in 0..40_000u32 {
            let chunk = [(i % 251) as u8; 700];
            w.write_all(&chunk[..(i % 700) as usize]).expect("write");
            expect.extend_from_slice(&chunk[..(i % 700) as usize]);
        }
        w.finish().expect("finish");
        let mut got = Vec::new();
        File::open(&path).expect("open").read_to_end(&mut got).expect("read");
        let _ = std::fs::remove_file(&path);
        assert_eq!(got.len(), expect.len());
        assert!(got == expect, "content differs");
    }
}
