use std::convert::TryFrom;
use std::io::Error as IoError;
use std::io::{self, Cursor, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::limits::{ConnState, Spool};

use crate::util::{EqualReader, FusedReader};
use crate::{HTTPVersion, Header, Method, Response, StatusCode};
use chunked_transfer::Decoder;

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # Pipelining
///
/// If a client sends multiple requests in a row (without waiting for the response), then you will
/// get multiple `Request` objects simultaneously. This is called *requests pipelining*.
/// Tiny-http automatically reorders the responses so that you don't need to worry about the order
/// in which you call `respond` or `into_writer`.
///
/// This mechanic is disabled if:
///
///  - The body of a request is large enough (handling requires pipelining requires storing the
///    body of the request in a buffer ; if the body is too big, tiny-http will avoid doing that)
///  - A request sends a `Expect: 100-continue` header (which means that the client waits to
///    know whether its body will be processed before sending it)
///  - A request sends a `Connection: close` header or `Connection: upgrade` header (used for
///    websockets), which indicates that this is the last request that will be received on this
///    connection
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // where to read the body from
    data_reader: Option<Box<dyn Read + Send + 'static>>,

    // if this writer is empty, then the request has been answered
    response_writer: Option<Box<dyn Write + Send + 'static>>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,

    // true if a `100 Continue` response must be sent when `as_reader()` is called
    must_send_continue: bool,

    // If Some, a message must be sent after responding
    notify_when_responded: Option<Sender<Option<Deferred>>>,

    // Patched: the connection's deadlines (None for test requests)
    state: Option<Arc<ConnState>>,

    // Patched (uploads): the body, written to a file by the connection's
    // thread (see `Limits::spool`).
    spooled: Option<SpooledBody>,
}

/// Patched (uploads): what became of a body that `Limits::spool` wanted
/// written to a file.
#[derive(Debug)]
pub struct SpooledBody {
    file: Option<SpoolFile>,
    /// Bytes written to the file.
    pub len: u64,
    pub outcome: SpoolOutcome,
}

/// How spooling a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolOutcome {
    /// The whole body is in the file.
    Whole,
    /// The body was larger than the size `Spool::wants` allowed (by its
    /// `Content-Length`, or while it was read): not kept.
    TooLarge,
    /// `Spool::max_at_once` bodies were being written: not read.
    Busy,
    /// The file could not be written (disk full...): not kept.
    Failed,
}

impl SpooledBody {
    /// The file holding the whole body (only for [`SpoolOutcome::Whole`]);
    /// it is removed when the request is dropped.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.path.as_path())
    }

    fn refused(outcome: SpoolOutcome) -> SpooledBody {
        SpooledBody {
            file: None,
            len: 0,
            outcome,
        }
    }
}

/// A spooled body's file, removed when dropped; holds one of the
/// `max_at_once` slots meanwhile.
#[derive(Debug)]
struct SpoolFile {
    path: PathBuf,
    _slot: SpoolSlot,
}

impl Drop for SpoolFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[derive(Debug)]
struct SpoolSlot(Arc<AtomicUsize>);

impl SpoolSlot {
    fn take(spool: &Spool) -> Option<SpoolSlot> {
        let taken = spool.at_once.fetch_add(1, Ordering::SeqCst);
        let slot = SpoolSlot(spool.at_once.clone());
        (taken < spool.max_at_once).then_some(slot)
    }
}

impl Drop for SpoolSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A name for a spool file that no other request uses.
fn spool_path(dir: &Path) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("upload-{}-{nanos}-{n}", std::process::id()))
}

/// Writes `body` to a new file in `spool.dir`, at most `max_bytes`.
/// A failed read (the client stopped sending, past its deadline) is an
/// error, as for a prebuffered body; a failed write (a full disk) is a
/// [`SpoolOutcome::Failed`] for the handler to answer.
fn spool_body(
    spool: &Spool,
    max_bytes: u64,
    slot: SpoolSlot,
    body: &mut dyn Read,
) -> io::Result<SpooledBody> {
    let path = spool_path(&spool.dir);
    let mut open = OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        open.mode(0o600);
    }
    let mut out = match open.open(&path) {
        Ok(out) => out,
        Err(_) => return Ok(SpooledBody::refused(SpoolOutcome::Failed)),
    };
    // Removed on every way out but success.
    let file = SpoolFile { path, _slot: slot };
    let mut chunk = vec![0u8; 64 * 1024];
    let mut len: u64 = 0;
    loop {
        let n = match body.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        len += n as u64;
        if len > max_bytes {
            return Ok(SpooledBody::refused(SpoolOutcome::TooLarge));
        }
        if out.write_all(&chunk[..n]).is_err() {
            return Ok(SpooledBody::refused(SpoolOutcome::Failed));
        }
    }
    if out.flush().is_err() {
        return Ok(SpooledBody::refused(SpoolOutcome::Failed));
    }
    Ok(SpooledBody {
        file: Some(file),
        len,
        outcome: SpoolOutcome::Whole,
    })
}


/// Patched: a response rendered by a worker, for the connection's own
/// thread to write. Workers never write to a socket, so a client that
/// reads slowly holds its connection's thread and nothing else.
pub(crate) struct Deferred {
    writer: Box<dyn Write + Send + 'static>,
    bytes: Vec<u8>,
    /// Patched (downloads): a body to copy after `bytes`, and its length:
    /// a large file is read while it is written, never held whole.
    tail: Option<(Box<dyn Read + Send + 'static>, u64)>,
    state: Option<Arc<ConnState>>,
}

impl Deferred {
    /// Writes the response within the write deadline (`write_grace`, then
    /// `min_write_rate`).
    pub(crate) fn write(mut self) -> io::Result<()> {
        let tail_len = self.tail.as_ref().map_or(0, |(_, len)| *len);
        if let Some(state) = &self.state {
            let limits = &state.limits;
            state.set_write_deadline(crate::limits::Limits::transfer_deadline(
                Instant::now(),
                limits.write_grace,
                limits.min_write_rate,
                self.bytes.len() as u64 + tail_len,
            ));
        }
        self.writer.write_all(&self.bytes)?;
        if let Some((tail, len)) = self.tail.take() {
            let copied = io::copy(&mut tail.take(len), &mut self.writer)?;
            if copied < len {
                // The head promised `len` bytes: the client must not take
                // a shorter body for the whole one.
                let info = "the body ended before its length";
                return Err(IoError::new(ErrorKind::UnexpectedEof, info));
            }
        }
        self.writer.flush()
    }
}

struct NotifyOnDrop<R> {
    sender: Sender<Option<Deferred>>,
    inner: R,
}

impl<R: Read> Read for NotifyOnDrop<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}
impl<R: Write> Write for NotifyOnDrop<R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
impl<R> Drop for NotifyOnDrop<R> {
    fn drop(&mut self) {
        self.sender.send(None).ok();
    }
}

/// Error that can happen when building a `Request` object.
#[derive(Debug)]
pub enum RequestCreationError {
    /// The client sent an `Expect` header with a value other than `100-continue`.
    ExpectationFailed,

    /// Patched: the framing headers are invalid or ambiguous (RFC 9112
    /// section 6.3): answered with 400, then the connection is closed.
    BadRequest(&'static str),

    /// Patched: a transfer coding other than `chunked` (RFC 9112 section
    /// 6.1): answered with 501, then the connection is closed.
    NotImplemented(&'static str),

    /// Error while reading data from the socket during the creation of the `Request`.
    CreationIoError(IoError),
}

impl From<IoError> for RequestCreationError {
    fn from(err: IoError) -> RequestCreationError {
        RequestCreationError::CreationIoError(err)
    }
}

/// How the body of a request is delimited, from its headers.
#[derive(Debug, PartialEq)]
enum Framing {
    None,
    Length(usize),
    Chunked,
}

/// Patched: tiny_http 0.12 took the first `Content-Length` it could parse
/// as a `usize` (so `+2` passed and a second, different one was ignored)
/// and let any `Transfer-Encoding` value win over it, which lets a request
/// be read two ways (request smuggling behind a proxy). Here exactly one
/// reading is accepted and everything else is refused, as RFC 9112 allows.
fn framing(headers: &[Header]) -> Result<Framing, RequestCreationError> {
    use RequestCreationError::{BadRequest, NotImplemented};
    let mut transfer_encodings = headers
        .iter()
        .filter(|h| h.field.equiv("Transfer-Encoding"))
        .map(|h| h.value.as_str().trim());
    let mut lengths = headers
        .iter()
        .filter(|h| h.field.equiv("Content-Length"))
        .map(|h| h.value.as_str().trim());
    match (transfer_encodings.next(), lengths.next()) {
        (Some(_), Some(_)) => Err(BadRequest(
            "both Content-Length and Transfer-Encoding are set",
        )),
        (Some(coding), None) => {
            if transfer_encodings.next().is_some() || !coding.eq_ignore_ascii_case("chunked") {
                Err(NotImplemented("only Transfer-Encoding: chunked is supported"))
            } else {
                Ok(Framing::Chunked)
            }
        }
        (None, Some(first)) => {
            if lengths.any(|other| other != first) {
                return Err(BadRequest("conflicting Content-Length headers"));
            }
            if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BadRequest("Content-Length is not a decimal number"));
            }
            first
                .parse::<usize>()
                .map(Framing::Length)
                .map_err(|_| BadRequest("Content-Length is too large"))
        }
        (None, None) => Ok(Framing::None),
    }
}

/// Builds a new request.
///
/// After the request line and headers have been read from the socket, a new `Request` object
/// is built.
///
/// You must pass a `Read` that will allow the `Request` object to read from the incoming data.
/// Patched: bodies up to `Limits::prebuffer_body_bytes` are read here, on
/// the connection's thread, at the minimum rate, before the request goes to
/// a worker; larger ones are streamed under the same rate.
#[allow(clippy::too_many_arguments)]
pub(crate) fn new_request<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    source_data: R,
    mut writer: W,
    state: Option<Arc<ConnState>>,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let framing = framing(&headers)?;

    // true if the client sent a `Expect: 100-continue` header
    let expects_continue = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Expect"))
            .map(|h| h.value.as_str())
        {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            _ => return Err(RequestCreationError::ExpectationFailed),
        }
    };
    let has_body = framing != Framing::None && framing != Framing::Length(0);
    let prebuffer_limit = state
        .as_ref()
        .map_or(1024, |s| s.limits.prebuffer_body_bytes);
    // Patched (uploads): a body that `Limits::spool` wants is written to a
    // file here, unless it is too large by its `Content-Length` or too many
    // are being written: then it is not read at all.
    let spool = state
        .as_ref()
        .and_then(|s| s.limits.spool.clone())
        .filter(|_| has_body)
        .and_then(|spool| {
            let max_bytes = (spool.wants)(&method, &path, &headers)?;
            Some((spool, max_bytes))
        });
    let mut spool_slot = None;
    let mut spooled = None;
    if let Some((spool, max_bytes)) = &spool {
        match framing {
            Framing::Length(length) if length as u64 > *max_bytes => {
                spooled = Some(SpooledBody::refused(SpoolOutcome::TooLarge));
            }
            _ => match SpoolSlot::take(spool) {
                Some(slot) => spool_slot = Some(slot),
                None => spooled = Some(SpooledBody::refused(SpoolOutcome::Busy)),
            },
        }
    }
    let prebuffered = match framing {
        _ if spool.is_some() => spool_slot.is_some(),
        Framing::Length(length) => length <= prebuffer_limit,
        Framing::Chunked => true,
        Framing::None => false,
    };
    let mut must_send_continue = expects_continue && has_body;
    if must_send_continue && prebuffered {
        // The body is read here, so the client must be told to send it here.
        writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        writer.flush()?;
        must_send_continue = false;
    }

    // Patched: a `Connection: upgrade` request no longer hands the raw
    // socket to the handler as its body; the body is framed like any other.
    let body_start = Instant::now();
    let reader = match (spool, spool_slot) {
        (Some((spool, max_bytes)), Some(slot)) => {
            let body = BodyDeadline::new(source_data, state.clone(), body_start);
            let outcome = match framing {
                Framing::Length(length) => {
                    let mut body = body.complete_after(length as u64);
                    let outcome = spool_body(&spool, max_bytes, slot, &mut (&mut body).take(length as u64))?;
                    if outcome.outcome == SpoolOutcome::Whole && body.received < length as u64 {
                        let info = "Connection has been closed before we received enough data";
                        return Err(IoError::new(ErrorKind::ConnectionAborted, info).into());
                    }
                    outcome
                }
                _ => {
                    let mut decoder = Decoder::new(body);
                    let outcome = spool_body(&spool, max_bytes, slot, &mut decoder)?;
                    if outcome.outcome == SpoolOutcome::Whole {
                        decoder.get_mut().complete();
                    }
                    outcome
                }
            };
            spooled = Some(outcome);
            Box::new(io::empty()) as Box<dyn Read + Send + 'static>
        }
        // Refused (too large, busy): the body stays unread, and the
        // connection closes after the answer.
        (Some(_), None) => {
            drop(BodyDeadline::new(source_data, state.clone(), body_start));
            Box::new(io::empty()) as Box<dyn Read + Send + 'static>
        }
        _ => match framing {
        Framing::None | Framing::Length(0) => Box::new(io::empty()) as Box<dyn Read + Send + 'static>,
        Framing::Length(length) if length <= prebuffer_limit => {
            let mut body = BodyDeadline::new(source_data, state.clone(), body_start);
            let mut buffer = vec![0; length];
            body.read_exact(&mut buffer).map_err(|e| {
                if e.kind() == ErrorKind::UnexpectedEof {
                    let info = "Connection has been closed before we received enough data";
                    IoError::new(ErrorKind::ConnectionAborted, info)
                } else {
                    e
                }
            })?;
            body.complete();
            Box::new(Cursor::new(buffer))
        }
        Framing::Length(length) => {
            let body = BodyDeadline::new(source_data, state.clone(), body_start)
                .complete_after(length as u64);
            let data_reader = EqualReader::new(body, length);
            Box::new(FusedReader::new(data_reader))
        }
        Framing::Chunked => {
            // Read up to one byte past the limit here; a longer body goes
            // on from where this stopped, in the worker.
            let body = BodyDeadline::new(source_data, state.clone(), body_start);
            let mut decoder = Decoder::new(body);
            let mut buffer = Vec::new();
            decoder
                .by_ref()
                .take(prebuffer_limit as u64 + 1)
                .read_to_end(&mut buffer)?;
            if buffer.len() > prebuffer_limit {
                Box::new(Cursor::new(buffer).chain(FusedReader::new(decoder)))
                    as Box<dyn Read + Send + 'static>
            } else {
                // The decoder saw the last chunk: the body is whole.
                decoder.get_mut().complete();
                Box::new(Cursor::new(buffer))
            }
        }
        },
    };
    let content_length = match framing {
        Framing::Length(length) => Some(length),
        _ => None,
    };

    Ok(Request {
        data_reader: Some(reader),
        response_writer: Some(Box::new(writer) as Box<dyn Write + Send + 'static>),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length: content_length,
        must_send_continue,
        notify_when_responded: None,
        state,
        spooled,
    })
}

/// Patched: reads a body against a deadline that moves with the bytes
/// received (`Limits::body_grace`, then `Limits::min_body_rate`), and marks
/// the connection for closing if the body is left unread, since its rest
/// would otherwise be parsed as the next request.
struct BodyDeadline<R> {
    inner: R,
    state: Option<Arc<ConnState>>,
    start: Instant,
    received: u64,
    /// The body's length, when known: reaching it completes the body.
    length: Option<u64>,
    finished: bool,
}

impl<R: Read> BodyDeadline<R> {
    fn new(inner: R, state: Option<Arc<ConnState>>, start: Instant) -> BodyDeadline<R> {
        BodyDeadline {
            inner,
            state,
            start,
            received: 0,
            length: None,
            finished: false,
        }
    }

    /// The body is whole once `length` bytes have been read.
    fn complete_after(mut self, length: u64) -> BodyDeadline<R> {
        self.length = Some(length);
        self
    }

    /// The caller has read the whole body.
    fn complete(&mut self) {
        self.finished = true;
    }
}

impl<R: Read> Read for BodyDeadline<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(state) = &self.state {
            let limits = &state.limits;
            state.set_read_deadline(crate::limits::Limits::transfer_deadline(
                self.start,
                limits.body_grace,
                limits.min_body_rate,
                self.received + 1,
            ));
        }
        let n = self.inner.read(buf)?;
        self.received += n as u64;
        if (n == 0 && !buf.is_empty()) || Some(self.received) == self.length {
            self.finished = true;
        }
        Ok(n)
    }
}

impl<R> Drop for BodyDeadline<R> {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(state) = &self.state {
                state.close_after_response();
            }
        }
    }
}

impl Request {
    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Patched (uploads): the body, if `Limits::spool` had it written to a
    /// file (or refused to).
    #[inline]
    pub fn spooled(&self) -> Option<&SpooledBody> {
        self.spooled.as_ref()
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Sends a response with a `Connection: upgrade` header, then turns the `Request` into a `Stream`.
    ///
    /// The main purpose of this function is to support websockets.
    /// If you detect that the request wants to use some kind of protocol upgrade, you can
    ///  call this function to obtain full control of the socket stream.
    ///
    /// If you call this on a non-websocket request, tiny-http will wait until this `Stream` object
    ///  is destroyed before continuing to read or write on the socket. Therefore you should always
    ///  destroy it as soon as possible.
    pub fn upgrade<R: Read>(
        mut self,
        protocol: &str,
        response: Response<R>,
    ) -> Box<dyn ReadWrite + Send> {
        use crate::util::CustomStream;

        response
            .raw_print(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                &self.headers,
                false,
                Some(protocol),
            )
            .ok(); // TODO: unused result

        self.response_writer.as_mut().unwrap().flush().ok(); // TODO: unused result

        let stream = CustomStream::new(self.extract_reader_impl(), self.extract_writer_impl());
        if let Some(sender) = self.notify_when_responded.take() {
            let stream = NotifyOnDrop {
                sender,
                inner: stream,
            };
            Box::new(stream) as Box<dyn ReadWrite + Send>
        } else {
            Box::new(stream) as Box<dyn ReadWrite + Send>
        }
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # extern crate rustc_serialize;
    /// # extern crate tiny_http;
    /// # use rustc_serialize::json::Json;
    /// # use std::io::Read;
    /// # fn get_content_type(_: &tiny_http::Request) -> &'static str { "" }
    /// # fn main() {
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    ///
    /// if get_content_type(&request) == "application/json" {
    ///     let mut content = String::new();
    ///     request.as_reader().read_to_string(&mut content).unwrap();
    ///     let json: Json = content.parse().unwrap();
    /// }
    /// # }
    /// ```
    ///
    /// If the client sent a `Expect: 100-continue` header with the request, calling this
    ///  function will send back a `100 Continue` response.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        if self.must_send_continue {
            let msg = Response::new_empty(StatusCode(100));
            msg.raw_print(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                &self.headers,
                true,
                None,
            )
            .ok();
            self.response_writer.as_mut().unwrap().flush().ok();
            self.must_send_continue = false;
        }

        self.data_reader.as_mut().unwrap()
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// Note that the destruction of the `Writer` object may trigger
    /// some events. For exemple if a client has sent multiple requests and the requests
    /// have been processed in parallel, the destruction of a writer will trigger
    /// the writing of the next response.
    /// Therefore you should always destroy the `Writer` as soon as possible.
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        let writer = self.extract_writer_impl();
        if let Some(sender) = self.notify_when_responded.take() {
            let writer = NotifyOnDrop {
                sender,
                inner: writer,
            };
            Box::new(writer) as Box<dyn Write + Send + 'static>
        } else {
            writer
        }
    }

    /// Extract the response `Writer` object from the Request, dropping this `Writer` has the same side effects
    /// as the object returned by `into_writer` above.
    ///
    /// This may only be called once on a single request.
    fn extract_writer_impl(&mut self) -> Box<dyn Write + Send + 'static> {
        use std::mem;

        assert!(self.response_writer.is_some());

        let mut writer = None;
        mem::swap(&mut self.response_writer, &mut writer);
        writer.unwrap()
    }

    /// Extract the body `Reader` object from the Request.
    ///
    /// This may only be called once on a single request.
    fn extract_reader_impl(&mut self) -> Box<dyn Read + Send + 'static> {
        use std::mem;

        assert!(self.data_reader.is_some());

        let mut reader = None;
        mem::swap(&mut self.data_reader, &mut reader);
        reader.unwrap()
    }

    /// Sends a response to this request.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        self.respond_any(response)
    }

    /// Patched: with a connection thread waiting (every request from a
    /// socket), the response is rendered here and written there.
    fn respond_any<R>(&mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        if self.notify_when_responded.is_none() {
            let res = self.respond_impl(response);
            self.finish();
            return res;
        }
        self.note_connection_close(&response);
        let mut bytes = Vec::new();
        let res = response.raw_print(
            &mut bytes,
            self.http_version.clone(),
            &self.headers,
            self.method == Method::Head,
            None,
        );
        let writer = self.extract_writer_impl();
        drop(self.data_reader.take());
        if let Some(sender) = self.notify_when_responded.take() {
            let deferred = res.is_ok().then(|| Deferred {
                writer,
                bytes,
                tail: None,
                state: self.state.clone(),
            });
            sender.send(deferred).ok();
        }
        res
    }

    /// Patched (downloads): answers with `response`'s status and headers
    /// and, as the body, `len` bytes of `body`, which the connection's
    /// thread copies to the socket under the write deadline. (`respond`
    /// renders the whole body into memory first.)
    pub fn respond_with_body(
        mut self,
        response: Response<io::Empty>,
        body: Box<dyn Read + Send + 'static>,
        len: u64,
    ) -> Result<(), IoError> {
        let length = usize::try_from(len)
            .map_err(|_| IoError::new(ErrorKind::InvalidInput, "body too long"))?;
        let status = response.status_code();
        let headers = response.headers().to_vec();
        if self.notify_when_responded.is_none() {
            let whole = Response::new(status, headers, body, Some(length), None);
            let res = self.respond_impl(whole);
            self.finish();
            return res;
        }
        self.note_connection_close(&response);
        // The head only: `Content-Length: len`, never chunked.
        let head = Response::new(status, headers, io::empty(), Some(length), None)
            .with_chunked_threshold(usize::MAX);
        let mut bytes = Vec::new();
        let no_body = self.method == Method::Head || matches!(status.0, 100..=199 | 204 | 304);
        let res = head.raw_print(&mut bytes, self.http_version.clone(), &self.headers, true, None);
        let writer = self.extract_writer_impl();
        drop(self.data_reader.take());
        if let Some(sender) = self.notify_when_responded.take() {
            let deferred = res.is_ok().then(|| Deferred {
                writer,
                bytes,
                tail: (!no_body).then_some((body, len)),
                state: self.state.clone(),
            });
            sender.send(deferred).ok();
        }
        res
    }

    /// A response that says `Connection: close` closes the connection.
    fn note_connection_close<R: Read>(&self, response: &Response<R>) {
        let closes = response.headers().iter().any(|h| {
            h.field.equiv("Connection") && h.value.as_str().eq_ignore_ascii_case("close")
        });
        if let (true, Some(state)) = (closes, &self.state) {
            state.close_after_response();
        }
    }

    /// Patched: the body reader is dropped before the connection's thread
    /// is told that this request is done, so that it sees whether the body
    /// was left unread (and the connection must close); a connection thread
    /// that is already gone is no reason to panic.
    fn finish(&mut self) {
        drop(self.data_reader.take());
        if let Some(sender) = self.notify_when_responded.take() {
            sender.send(None).ok();
        }
    }

    fn respond_impl<R>(&mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let mut writer = self.extract_writer_impl();

        let do_not_send_body = self.method == Method::Head;

        // Patched: the client must read the response at a minimum rate, so
        // a client that never reads cannot hold the writing thread.
        self.note_connection_close(&response);
        if let Some(state) = &self.state {
            let limits = &state.limits;
            state.set_write_deadline(crate::limits::Limits::transfer_deadline(
                Instant::now(),
                limits.write_grace,
                limits.min_write_rate,
                response.data_length().unwrap_or(0) as u64,
            ));
        }

        Self::ignore_client_closing_errors(response.raw_print(
            writer.by_ref(),
            self.http_version.clone(),
            &self.headers,
            do_not_send_body,
            None,
        ))?;

        Self::ignore_client_closing_errors(writer.flush())
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }

    pub(crate) fn with_notify_sender(mut self, sender: Sender<Option<Deferred>>) -> Self {
        self.notify_when_responded = Some(sender);
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.response_writer.is_some() {
            let response = Response::empty(500);
            let _ = self.respond_any(response); // ignoring any potential error
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
