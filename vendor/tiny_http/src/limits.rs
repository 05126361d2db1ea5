//! Limits and deadlines for every connection (patch: not in tiny_http 0.12).
//!
//! tiny_http 0.12 reads from and writes to sockets with no timeout and no
//! size limit: one client that sends a head slowly, or a body never, holds
//! a thread for as long as it keeps the socket open. Here every read and
//! every write of a connection runs against a deadline kept in its
//! [`ConnState`], shared by the read and the write half of the socket.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Header, Method};

/// What a connection may cost. [`Limits::default`] is safe for a server on
/// the internet; [`crate::Server::with_limits`] takes others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once; one more is answered with
    /// [`Limits::busy_response`] from the accept thread and closed.
    pub max_connections: usize,
    /// A kept-alive connection with no new request for this long is closed.
    pub idle_timeout: Duration,
    /// The whole request head (request line and headers) must arrive within
    /// this, counted from its first byte: a deadline, not a per-read timeout.
    pub head_timeout: Duration,
    /// Bytes of request line and headers together; more is a 431.
    pub max_head_bytes: usize,
    /// Header lines; more is a 431.
    pub max_headers: usize,
    /// Bodies up to this size are read completely by the connection's own
    /// thread before the request is handed to a worker, so that a slow body
    /// never occupies a worker. Larger bodies are streamed by the worker.
    pub prebuffer_body_bytes: usize,
    /// A body gets this long before [`Limits::min_body_rate`] applies.
    pub body_grace: Duration,
    /// Bytes per second a body must average after the grace period.
    pub min_body_rate: u64,
    /// A response gets this long before [`Limits::min_write_rate`] applies
    /// (the client must read it).
    pub write_grace: Duration,
    /// Bytes per second a client must read a response at, on average.
    pub min_write_rate: u64,
    /// Written as is, without a thread, to a connection over the cap.
    pub busy_response: Vec<u8>,
    /// Patched (uploads): which larger bodies the connection's thread
    /// writes to a file before the request goes to a worker.
    pub spool: Option<Spool>,
}

/// Patched (uploads): bodies larger than [`Limits::prebuffer_body_bytes`]
/// that the connection's own thread writes to a file, at the minimum rate,
/// before the request is handed to a worker: a worker then reads the file,
/// and a slow uploader holds only its connection's thread, as for small
/// bodies. `wants` decides from the head (e.g. an upload by a logged-in
/// user) and returns the largest body it takes for that request; a body
/// over it is not read (the request says it was too large, and the
/// connection closes after the answer).
#[derive(Clone)]
pub struct Spool {
    /// Where the files go (removed when the request is dropped).
    pub dir: PathBuf,
    /// Bodies being written at once, at most; a request over it is handed
    /// on unread (and says so), for an answer such as 503.
    pub max_at_once: usize,
    /// Which requests' bodies are written, from their head, and the
    /// largest body of each (`None`: not written).
    pub wants: Arc<dyn Fn(&Method, &str, &[Header]) -> Option<u64> + Send + Sync>,
    pub(crate) at_once: Arc<AtomicUsize>,
}

impl Spool {
    pub fn new(
        dir: PathBuf,
        max_at_once: usize,
        wants: Arc<dyn Fn(&Method, &str, &[Header]) -> Option<u64> + Send + Sync>,
    ) -> Spool {
        Spool {
            dir,
            max_at_once,
            wants,
            at_once: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl fmt::Debug for Spool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("max_at_once", &self.max_at_once)
            .finish()
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(30),
            head_timeout: Duration::from_secs(10),
            max_head_bytes: 16 * 1024,
            max_headers: 100,
            prebuffer_body_bytes: 64 * 1024,
            body_grace: Duration::from_secs(10),
            min_body_rate: 1024,
            write_grace: Duration::from_secs(10),
            min_write_rate: 1024,
            busy_response: b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
                             Connection: close\r\n\r\n"
                .to_vec(),
            spool: None,
        }
    }
}

impl Limits {
    /// The deadline for moving `bytes` at `rate` bytes per second, after a
    /// grace period, counted from `start`.
    pub(crate) fn transfer_deadline(
        start: Instant,
        grace: Duration,
        rate: u64,
        bytes: u64,
    ) -> Instant {
        let seconds = if rate == 0 { 0 } else { bytes / rate.max(1) };
        start + grace + Duration::from_secs(seconds.min(24 * 3600))
    }
}

/// The state one connection's threads share: its limits, the current read
/// and write deadlines, and whether it must close after this request.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) limits: Limits,
    read_deadline: Mutex<Option<Instant>>,
    write_deadline: Mutex<Option<Instant>>,
    must_close: AtomicBool,
    half_close: AtomicBool,
}

impl ConnState {
    pub(crate) fn new(limits: Limits) -> ConnState {
        ConnState {
            limits,
            read_deadline: Mutex::new(None),
            write_deadline: Mutex::new(None),
            must_close: AtomicBool::new(false),
            half_close: AtomicBool::new(false),
        }
    }

    pub(crate) fn set_read_deadline(&self, deadline: Instant) {
        *lock(&self.read_deadline) = Some(deadline);
    }

    pub(crate) fn set_write_deadline(&self, deadline: Instant) {
        *lock(&self.write_deadline) = Some(deadline);
    }

    /// Time left before the read deadline; an error once it has passed.
    pub(crate) fn read_time_left(&self) -> io::Result<Option<Duration>> {
        time_left(*lock(&self.read_deadline))
    }

    /// Time left before the write deadline; an error once it has passed.
    pub(crate) fn write_time_left(&self) -> io::Result<Option<Duration>> {
        time_left(*lock(&self.write_deadline))
    }

    /// The connection's byte stream can no longer be trusted to start a new
    /// request (an unread body, a timeout): close it after this response.
    pub(crate) fn close_after_response(&self) {
        self.must_close.store(true, Ordering::SeqCst);
    }

    pub(crate) fn must_close(&self) -> bool {
        self.must_close.load(Ordering::SeqCst)
    }

    /// Everything this connection will write has been written: the next
    /// read shuts the sending side down first, so the client sees the end
    /// at once while we read what it still sends.
    pub(crate) fn half_close(&self) {
        self.half_close.store(true, Ordering::SeqCst);
    }

    /// Whether the sending side is to be shut down now (true once).
    pub(crate) fn take_half_close(&self) -> bool {
        self.half_close.swap(false, Ordering::SeqCst)
    }
}

/// A poisoned lock only means another thread panicked while holding an
/// `Option<Instant>`; the value is still whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn time_left(deadline: Option<Instant>) -> io::Result<Option<Duration>> {
    match deadline {
        None => Ok(None),
        Some(deadline) => {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"))
            } else {
                Ok(Some(left))
            }
        }
    }
}
