//! The socket under a connection's reader: the handshake runs on it with
//! one deadline for the whole of it; afterwards it only reads (the writer
//! thread has its own handle on the same socket and does all the writing),
//! each complete frame against a deadline of its own.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The socket under the reader's `WebSocket`: reads pass through; writes
/// pass through only until the handshake is done, then are discarded (the
/// writer thread sends pongs and close replies instead). Every read (and,
/// during the handshake, every write) runs against a deadline: a timeout
/// per read would restart with each byte, and a client that trickles a
/// byte now and then would never be cut off.
pub struct ReaderSocket {
    stream: Arc<TcpStream>,
    writes_enabled: bool,
    deadline: Option<Instant>,
}

impl ReaderSocket {
    /// A socket whose handshake must be over by `deadline`.
    pub fn with_deadline(stream: TcpStream, deadline: Instant) -> ReaderSocket {
        ReaderSocket {
            stream: Arc::new(stream),
            writes_enabled: true,
            deadline: Some(deadline),
        }
    }

    /// After the handshake: writes are discarded from now on.
    pub fn handshake_done(&mut self) {
        self.writes_enabled = false;
    }

    /// The next complete frame must have arrived by `deadline`.
    pub fn read_by(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// The socket, for the writer thread's handle and its timeouts.
    pub fn stream(&self) -> &Arc<TcpStream> {
        &self.stream
    }

    /// The time left before the deadline; an error once it has passed.
    fn time_left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed"));
        }
        Ok(Some(left))
    }
}

impl Read for ReaderSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(left) = self.time_left()? {
            self.stream.set_read_timeout(Some(left))?;
        }
        (&*self.stream).read(buf)
    }
}

impl Write for ReaderSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.writes_enabled {
            if let Some(left) = self.time_left()? {
                self.stream.set_write_timeout(Some(left))?;
            }
            (&*self.stream).write(buf)
        } else {
            Ok(buf.len())
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(()) // a TcpStream has no buffer to flush
    }
}
