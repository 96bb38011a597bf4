//! A crowd of probe targets behind one listener thread: one TCP listener per port on one
//! address of the server namespace, each connection held for a set time (never a byte sent)
//! and then closed by the crowd itself, every accept and close timed. From this side a test
//! reads how fast and how many at once the prober really connected.
//! Must never listen outside the lab's server namespace; the thread ends with the handle.
use std::{
    fs::File,
    io,
    net::{IpAddr, SocketAddr, TcpListener, TcpStream},
    os::unix::io::AsRawFd as _,
    sync::{
        atomic::{AtomicBool, Ordering},
        mpsc, Arc, Mutex,
    },
    thread::{self, JoinHandle},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};

use super::Lab;

/// One connection the crowd accepted.
#[derive(Clone, Copy, Debug)]
pub struct Contact {
    pub port: u16,
    pub peer: IpAddr,
    pub accepted: Instant,
    /// When the crowd closed it (None: still open).
    pub closed: Option<Instant>,
}

pub struct Crowd {
    stop: Arc<AtomicBool>,
    contacts: Arc<Mutex<Vec<Contact>>>,
    thread: Option<JoinHandle<()>>,
}

impl Crowd {
    /// Listens on `addr` at every port of `ports` in the server namespace; a connection to port
    /// P is closed `hold(P)` after it was accepted (zero: at once).
    pub fn start(lab: &Lab, addr: IpAddr, ports: std::ops::Range<u16>, hold: fn(u16) -> Duration) -> Result<Crowd> {
        let path = format!("/run/netns/{}", lab.server_ns);
        let ns = File::open(&path).with_context(|| format!("opening {path}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let contacts = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<io::Result<()>>();
        let (stop2, contacts2) = (stop.clone(), contacts.clone());
        let thread = thread::spawn(move || {
            // SAFETY: plain syscall on a valid fd; it only changes this thread.
            let bound = if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                Err(io::Error::last_os_error())
            } else {
                ports
                    .map(|p| {
                        let l = TcpListener::bind(SocketAddr::new(addr, p))?;
                        l.set_nonblocking(true)?;
                        Ok((p, l))
                    })
                    .collect::<io::Result<Vec<_>>>()
            };
            match bound {
                Ok(listeners) => {
                    let _ = tx.send(Ok(()));
                    run(&listeners, hold, &stop2, &contacts2);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("crowd listeners on {addr}: {e}"),
            Err(_) => bail!("crowd listeners on {addr} did not start"),
        }
        Ok(Crowd { stop, contacts, thread: Some(thread) })
    }

    pub fn contacts(&self) -> Vec<Contact> {
        self.contacts.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(listeners: &[(u16, TcpListener)], hold: fn(u16) -> Duration, stop: &AtomicBool, contacts: &Mutex<Vec<Contact>>) {
    let mut fds: Vec<libc::pollfd> =
        listeners.iter().map(|(_, l)| libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 }).collect();
    // Open connections: (index in `contacts`, stream, close at).
    let mut open: Vec<(usize, TcpStream, Instant)> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        // Close what is due first, so an accept that follows a close is never counted with it.
        open.retain(|(i, _, due)| {
            if *due > now {
                return true;
            }
            if let Ok(mut c) = contacts.lock() {
                c[*i].closed = Some(Instant::now());
            }
            false
        });
        let next_due = open.iter().map(|(_, _, due)| due.saturating_duration_since(now)).min();
        let wait = next_due.unwrap_or(Duration::from_millis(20)).min(Duration::from_millis(20));
        // SAFETY: `fds` is a valid array of pollfd of the given length for the whole call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait.as_millis() as libc::c_int) };
        if n <= 0 {
            continue;
        }
        for (k, fd) in fds.iter_mut().enumerate() {
            if fd.revents & libc::POLLIN == 0 {
                continue;
            }
            fd.revents = 0;
            let (port, listener) = &listeners[k];
            while let Ok((conn, peer)) = listener.accept() {
                let accepted = Instant::now();
                let Ok(mut c) = contacts.lock() else { continue };
                let i = c.len();
                let h = hold(*port);
                c.push(Contact {
                    port: *port,
                    peer: peer.ip().to_canonical(),
                    accepted,
                    closed: h.is_zero().then_some(accepted),
                });
                if !h.is_zero() {
                    open.push((i, conn, accepted + h));
                }
            }
        }
    }
}

/// Accept times, sorted, as offsets from the first.
pub fn accept_times(contacts: &[Contact]) -> Vec<Duration> {
    let mut t: Vec<Instant> = contacts.iter().map(|c| c.accepted).collect();
    t.sort();
    t.iter().map(|x| x.duration_since(t[0])).collect()
}

/// Most of the sorted `times` within any window `[t, t + window)` starting at one of them.
pub fn max_in_window(times: &[Duration], window: Duration) -> usize {
    (0..times.len()).map(|i| times[i..].iter().take_while(|&&x| x - times[i] < window).count()).max().unwrap_or(0)
}

/// The shortest time spanned by `n` consecutive sorted `times` (None with fewer than `n`):
/// under a rate of `n - 1` per second it is at least one second.
pub fn min_span(times: &[Duration], n: usize) -> Option<Duration> {
    times.windows(n.max(1)).map(|w| w[w.len() - 1] - w[0]).min()
}

/// Most connections open at once: at each accept, that connection and every earlier one the
/// crowd had not closed yet.
pub fn max_open(contacts: &[Contact]) -> usize {
    (0..contacts.len())
        .map(|i| {
            let t = contacts[i].accepted;
            1 + contacts
                .iter()
                .enumerate()
                .filter(|&(j, b)| j != i && b.accepted <= t && b.closed.is_none_or(|c| c > t))
                .count()
        })
        .max()
        .unwrap_or(0)
}
