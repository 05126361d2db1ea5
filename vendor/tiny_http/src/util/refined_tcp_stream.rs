use std::io::Result as IoResult;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;

use crate::connection::Connection;
use crate::limits::ConnState;

/// One half of a client socket. Patched: every read and write runs against
/// the connection's current deadline (see [`ConnState`]); the socket's own
/// timeout is set to the time left before each call, so a peer that sends
/// or reads one byte at a time cannot stretch it. SSL support is removed
/// (TLS is terminated by a reverse proxy in front of us).
pub struct RefinedTcpStream {
    stream: Connection,
    close_read: bool,
    close_write: bool,
    state: Arc<ConnState>,
}

impl RefinedTcpStream {
    /// Splits a socket into a read and a write half. Patched: a failing
    /// `try_clone` (out of file descriptors) is an error, not a panic.
    pub(crate) fn new(
        stream: Connection,
        state: Arc<ConnState>,
    ) -> IoResult<(RefinedTcpStream, RefinedTcpStream)> {
        let read = RefinedTcpStream {
            stream: stream.try_clone()?,
            close_read: true,
            close_write: false,
            state: state.clone(),
        };
        let write = RefinedTcpStream {
            stream,
            close_read: false,
            close_write: true,
            state,
        };
        Ok((read, write))
    }

    pub(crate) fn peer_addr(&mut self) -> IoResult<Option<SocketAddr>> {
        self.stream.peer_addr()
    }

    pub(crate) fn state(&self) -> &Arc<ConnState> {
        &self.state
    }
}

impl Drop for RefinedTcpStream {
    fn drop(&mut self) {
        if self.close_read {
            self.stream.shutdown(Shutdown::Read).ok();
        }

        if self.close_write {
            self.stream.shutdown(Shutdown::Write).ok();
        }
    }
}

/// A socket timeout shows up as `WouldBlock` on Unix; callers look for
/// `TimedOut`.
fn as_timeout<T>(result: IoResult<T>) -> IoResult<T> {
    result.map_err(|e| match e.kind() {
        ErrorKind::WouldBlock => std::io::Error::new(ErrorKind::TimedOut, e),
        _ => e,
    })
}

impl Read for RefinedTcpStream {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        if self.state.take_half_close() {
            // Both halves share one socket: shutting down its sending side
            // from here is what the write half would do.
            self.stream.shutdown(Shutdown::Write).ok();
        }
        let left = self.state.read_time_left()?;
        self.stream.set_read_timeout(left)?;
        let result = as_timeout(self.stream.read(buf));
        if result.is_err() {
            self.state.close_after_response();
        }
        result
    }
}

impl Write for RefinedTcpStream {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        let left = self.state.write_time_left()?;
        self.stream.set_write_timeout(left)?;
        let result = as_timeout(self.stream.write(buf));
        if result.is_err() {
            self.state.close_after_response();
        }
        result
    }

    fn flush(&mut self) -> IoResult<()> {
        self.stream.flush()
    }
}
