use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Write};

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use crate::common::{HTTPVersion, Method};
use crate::limits::ConnState;
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // Patched: the connection's limits and deadlines
    state: Arc<ConnState>,

    // Patched: requests read so far (the first gets no idle time)
    requests_read: u64,

    // Patched: whether a byte of the current request has arrived
    head_started: bool,
}

/// Patched: how long, and how many bytes, a connection that is closing
/// after an error goes on reading what the client still sends (see
/// `ClientConnection::linger`).
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    /// Patched: the head is over `Limits::max_head_bytes` or `max_headers`
    HeadTooLarge,
    /// Patched: invalid framing headers (400) or transfer coding (501)
    Refused(u16, &'static str),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();
        let state = read_socket.state().clone();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = match source.next() {
            Some(reader) => reader,
            None => unreachable!("SequentialReaderBuilder never ends"),
        };

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            state,
            requests_read: 0,
            head_started: false,
        }
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// Patched: at most `head_budget` bytes are read (tiny_http 0.12 read a
    /// line of any length into memory), and the first byte of a request
    /// starts its head deadline.
    fn read_next_line(&mut self, head_budget: &mut usize) -> Result<AsciiString, ReadError> {
        let mut buf = Vec::new();
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_header_source.by_ref().bytes().next();

            let byte = match byte {
                Some(b) => b.map_err(ReadError::ReadIoError)?,
                None => {
                    return Err(ReadError::ReadIoError(IoError::new(
                        ErrorKind::ConnectionAborted,
                        "Unexpected EOF",
                    )))
                }
            };
            if !self.head_started {
                // The first byte of this head: from now on the whole head
                // must arrive within `head_timeout`.
                self.head_started = true;
                self.state
                    .set_read_deadline(Instant::now() + self.state.limits.head_timeout);
            }
            *head_budget = head_budget.checked_sub(1).ok_or(ReadError::HeadTooLarge)?;

            if byte == b'\n' && prev_byte_was_cr {
                buf.pop(); // removing the '\r'
                return AsciiString::from_ascii(buf).map_err(|_| {
                    ReadError::ReadIoError(IoError::new(
                        ErrorKind::InvalidInput,
                        "Header is not in ASCII",
                    ))
                });
            }

            prev_byte_was_cr = byte == b'\r';

            buf.push(byte);
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // Patched: a new connection must send its first request within
        // `head_timeout`; a kept-alive one is closed after `idle_timeout`.
        let limits = &self.state.limits;
        let wait = if self.requests_read == 0 {
            limits.head_timeout
        } else {
            limits.idle_timeout
        };
        self.state.set_read_deadline(Instant::now() + wait);
        self.requests_read += 1;
        self.head_started = false;
        let mut head_budget = limits.max_head_bytes;
        let max_headers = limits.max_headers;

        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line(&mut head_budget)?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };
            // Patched: refused before anything else is read, and answered
            // in HTTP/1.1 (tiny_http 0.12 answered "HTTP/2.0 505").
            if version != HTTPVersion(1, 0) && version != HTTPVersion(1, 1) {
                return Err(ReadError::Refused(
                    505,
                    "only HTTP/1.0 and 1.1 are supported",
                ));
            }

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line(&mut head_budget)?;

                    if line.is_empty() {
                        break;
                    };
                    if headers.len() == max_headers {
                        return Err(ReadError::HeadTooLarge);
                    }
                    headers.push(match FromStr::from_str(line.as_str().trim()) {
                        // TODO: remove this conversion
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().ok_or(ReadError::WrongRequestLine)?;

        // follow-up for next potential request
        let mut data_source = self.source.next().ok_or(ReadError::WrongRequestLine)?;
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // Patched: a peer that is already gone has no address; that is an
        // ended connection, not a panic.
        let remote_addr = match &self.remote_addr {
            Ok(addr) => *addr,
            Err(e) => return Err(ReadError::ReadIoError(IoError::new(e.kind(), e.to_string()))),
        };

        // building the next reader
        let request = crate::request::new_request(
            false,
            method,
            path,
            version.clone(),
            headers,
            remote_addr,
            data_source,
            writer,
            Some(self.state.clone()),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
                request::RequestCreationError::BadRequest(why) => ReadError::Refused(400, why),
                request::RequestCreationError::NotImplemented(why) => {
                    ReadError::Refused(501, why)
                }
            }
        })?;

        // return the request
        Ok(request)
    }

    /// Patched: answers a request that cannot be served with a short JSON
    /// error and `Connection: close` (tiny_http 0.12 sent no body and no
    /// `Connection` header), within the write deadline.
    fn refuse(&mut self, status: u16, version: HTTPVersion, error: &str) {
        let Some(writer) = self.sink.next() else {
            return;
        };
        let limits = &self.state.limits;
        self.state.set_write_deadline(crate::limits::Limits::transfer_deadline(
            Instant::now(),
            limits.write_grace,
            limits.min_write_rate,
            0,
        ));
        let body = format!("{{\"error\":\"{}\"}}", error.replace('"', "'"));
        let mut response = crate::Response::from_string(body).with_status_code(status);
        for (name, value) in [
            ("Content-Type", "application/json"),
            ("Connection", "close"),
        ] {
            if let Ok(header) = crate::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
                response.add_header(header);
            }
        }
        let mut writer = writer;
        if response.raw_print(&mut writer, version, &[], false, None).is_ok() {
            writer.flush().ok();
        }
        drop(writer);
        self.linger();
    }

    /// Shuts down the sending side (the client sees the end of our answer
    /// at once), then reads and discards what the client is still sending,
    /// for a moment, before the connection closes: closing a socket with
    /// unread data sends a reset, which can destroy the answer before the
    /// client reads it (nginx's `lingering_close` does the same).
    fn linger(&mut self) {
        self.state.half_close();
        self.state.set_read_deadline(Instant::now() + LINGER_TIME);
        let mut scratch = [0u8; 4096];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match self.next_header_source.read(&mut scratch) {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        // (patched: or the previous request left the stream unusable)
        if self.no_more_requests {
            return None;
        }
        if self.state.must_close() {
            self.linger();
            return None;
        }

        let rq = match self.read() {
            Ok(rq) => rq,
            Err(ReadError::WrongRequestLine) => {
                // we don't know where the next request would start, so we
                // have to close
                self.refuse(400, HTTPVersion(1, 1), "malformed request line");
                return None;
            }
            Err(ReadError::WrongHeader(ver)) => {
                self.refuse(400, ver, "malformed header");
                return None;
            }
            Err(ReadError::HeadTooLarge) => {
                self.refuse(431, HTTPVersion(1, 1), "request header fields too large");
                return None;
            }
            Err(ReadError::Refused(status, why)) => {
                self.refuse(status, HTTPVersion(1, 1), why);
                return None;
            }
            Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                // Patched: an idle kept-alive connection that sent nothing
                // is closed silently; a request that stalled gets a 408.
                if self.head_started {
                    self.refuse(408, HTTPVersion(1, 1), "request timeout");
                }
                return None;
            }
            Err(ReadError::ExpectationFailed(ver)) => {
                self.refuse(417, ver, "only Expect: 100-continue is supported");
                return None;
            }
            Err(ReadError::ReadIoError(_)) => return None,
        };

        // updating the status of the connection
        let connection_header = rq
            .headers()
            .iter()
            .find(|h| h.field.equiv("Connection"))
            .map(|h| h.value.as_str());

        let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

        match lowercase {
            Some(ref val) if val.contains("close") => self.no_more_requests = true,
            Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
            Some(ref val)
                if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
            {
                self.no_more_requests = true
            }
            None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
            _ => (),
        };

        // returning the request
        Some(rq)
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
