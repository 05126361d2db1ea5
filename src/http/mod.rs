//! The HTTP side: a pool of worker threads taking requests from tiny_http
//! and answering them with JSON.
//!
//! tiny_http (our patched copy in `vendor/tiny_http`, see its PATCHES.md)
//! gives every connection a thread of its own that reads the request head
//! and a body of up to [`MAX_BODY_BYTES`] against deadlines, then queues the
//! request; each of our workers takes one, runs the handler (which may query
//! the database or hash a password) and renders the response, which the
//! connection's thread writes, again against a deadline. Workers never touch
//! a socket, so a client that sends or reads slowly holds only its own
//! connection's thread, and those are capped ([`connection_limits`]).

mod account;
mod admin;
mod assets;
mod attachments;
mod guards;
mod handlers;
mod invites;
mod login;
mod message_actions;
pub mod multipart;
mod people;
mod push;
mod reports;
mod search;

pub use handlers::route;

use std::io::Read;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tiny_http::{Header, Method, Request, Response};

use crate::app::App;
use crate::config::Config;

/// Largest request body we read. Every JSON body of the API is far smaller;
/// the limit keeps a client from making a worker buffer megabytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest request head (request line and headers). Browsers send a few
/// KiB; more is refused with 431 while it is read, before it is stored.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Header lines in one request; more is a 431.
pub const MAX_HEADERS: usize = 100;

/// Time a body, or a response, gets before the minimum rate applies: a
/// whole JSON body arrives well within it on any working link.
pub const TRANSFER_GRACE: Duration = Duration::from_secs(10);

/// Bytes per second a body must average after [`TRANSFER_GRACE`], and a
/// client must read a response at: a modem's speed, so a slow but honest
/// upload still passes while a client that trickles is cut off.
pub const MIN_TRANSFER_RATE: u64 = 1024;

/// The answer, written by tiny_http's accept thread itself, to a connection
/// over `--max-http-connections`.
const BUSY_BODY: &str = r#"{"error":"server busy: too many connections"}"#;

/// Uploads written to disk at once, by connections' own threads; more wait
/// for a `503` and retry. Each may hold `--max-upload` of disk meanwhile.
pub const UPLOADS_AT_ONCE: usize = 16;

/// The path uploads are posted to (`POST /api/attachments?name=...`).
pub const UPLOAD_PATH: &str = "/api/attachments";

/// Which request bodies the connections' own threads write to disk before
/// a worker sees them: uploads by a logged-in user (a session looked up
/// from the cookie: a stranger's upload is not read at all), up to
/// `--max-upload`. A slow uploader then holds its connection's thread,
/// under the same minimum rate as any body, and never a worker.
pub fn upload_spool(
    config: &Config,
    store: Arc<dyn crate::repo::Store>,
    dir: std::path::PathBuf,
) -> tiny_http::Spool {
    let max_upload = config.max_upload;
    let wants = move |method: &Method, url: &str, headers: &[Header]| {
        let path = url.split('?').next().unwrap_or(url);
        if *method != Method::Post || path != UPLOAD_PATH {
            return None;
        }
        let cookies = headers
            .iter()
            .filter(|h| h.field.equiv("Cookie"))
            .map(|h| h.value.as_str());
        let logged_in = crate::auth::session_token_from_cookies(cookies).is_some_and(|token| {
            let hash = crate::auth::hash_token(token);
            matches!(store.session(&hash, chrono::Utc::now()), Ok(Some(_)))
        });
        // A form carries its file among boundaries and fields.
        let is_form = headers
            .iter()
            .find(|h| h.field.equiv("Content-Type"))
            .is_some_and(|h| multipart::form_boundary(h.value.as_str()).is_some());
        let slack = if is_form {
            multipart::FORM_OVERHEAD_BYTES
        } else {
            0
        };
        logged_in.then_some(max_upload + slack)
    };
    tiny_http::Spool::new(dir, UPLOADS_AT_ONCE, Arc::new(wants))
}

/// Deadlines and caps for every HTTP connection, from the configuration.
pub fn connection_limits(config: &Config, spool: Option<tiny_http::Spool>) -> tiny_http::Limits {
    let busy = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    tiny_http::Limits {
        max_connections: config.max_http_connections,
        idle_timeout: config.keep_alive_timeout,
        head_timeout: config.handshake_timeout,
        max_head_bytes: MAX_HEAD_BYTES,
        max_headers: MAX_HEADERS,
        prebuffer_body_bytes: MAX_BODY_BYTES,
        body_grace: TRANSFER_GRACE,
        min_body_rate: MIN_TRANSFER_RATE,
        write_grace: TRANSFER_GRACE,
        min_write_rate: MIN_TRANSFER_RATE,
        busy_response: busy.into_bytes(),
        spool,
    }
}

/// The running worker pool.
pub struct HttpServer {
    server: Arc<tiny_http::Server>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
}

impl HttpServer {
    pub fn spawn(server: tiny_http::Server, app: App, threads: usize) -> std::io::Result<Self> {
        let server = Arc::new(server);
        let stopping = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(threads);
        for n in 0..threads {
            let (server, stopping, app) = (server.clone(), stopping.clone(), app.clone());
            let worker = std::thread::Builder::new()
                .name(format!("http-{n}"))
                .spawn(move || work(&server, &stopping, &app))?;
            workers.push(worker);
        }
        Ok(HttpServer {
            server,
            stopping,
            workers,
        })
    }

    /// Stops taking requests; requests being handled run to completion.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.server.unblock(); // wakes exactly one waiting worker
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

fn work(server: &tiny_http::Server, stopping: &AtomicBool, app: &App) {
    loop {
        let request = server.recv();
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match request {
            // A bug anywhere in serving one request must not take a worker
            // down with it: the request is dropped (tiny_http answers 500
            // if nothing was sent) and the worker takes the next.
            Ok(request) => {
                let served = std::panic::catch_unwind(AssertUnwindSafe(|| serve(app, request)));
                if served.is_err() {
                    log::error!("serving an HTTP request panicked");
                }
            }
            Err(e) => log::warn!("HTTP receive failed: {e}"),
        }
    }
}

fn serve(app: &App, mut request: Request) {
    let plain = HttpRequest::read(&mut request);
    // A bug in one handler: the client sees a JSON 500, the others are
    // served.
    let response = std::panic::catch_unwind(AssertUnwindSafe(|| route(app, &plain)))
        .unwrap_or_else(|_| {
            log::error!("an HTTP handler panicked: {} {}", plain.method, plain.path);
            HttpResponse::json(500, &json!({ "error": "internal server error" }))
        });
    send(request, response);
}

/// What the connection's thread did with an upload's body.
#[derive(Debug, Clone)]
pub struct UploadBody {
    /// The file holding all of it (only when `outcome` is `Whole`).
    pub path: Option<std::path::PathBuf>,
    pub len: u64,
    pub outcome: tiny_http::SpoolOutcome,
}

/// A request as the handlers see it: no sockets, the body already read.
/// Handlers are plain functions from this to [`HttpResponse`], which is also
/// how the fuzz target drives them.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    pub path: String,
    /// What follows `?` in the URL, undecoded.
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// At most [`MAX_BODY_BYTES`] + 1 bytes: one more means "too large".
    pub body: Vec<u8>,
    /// The declared body was over [`MAX_BODY_BYTES`] and was left unread.
    pub body_too_large: bool,
    /// An upload's body, written to a file by the connection's thread (see
    /// [`upload_spool`]); the file goes when the request is answered.
    pub upload: Option<UploadBody>,
    /// The peer's address (a proxy's, behind one).
    pub peer: Option<IpAddr>,
}

impl HttpRequest {
    fn read(request: &mut Request) -> HttpRequest {
        let url = request.url().to_owned();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let mut body = Vec::new();
        // Larger bodies are not even read: tiny_http has read everything up
        // to the limit already, so this never waits on the socket.
        let body_too_large = request.body_length().is_some_and(|n| n > MAX_BODY_BYTES);
        if !body_too_large
            && let Err(e) = request
                .as_reader()
                .take(MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)
        {
            log::debug!("reading a request body failed: {e}");
        }
        HttpRequest {
            method: request.method().clone(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers: request
                .headers()
                .iter()
                .map(|h| (h.field.as_str().to_string(), h.value.to_string()))
                .collect(),
            body,
            body_too_large,
            upload: request.spooled().map(|spooled| UploadBody {
                path: spooled.path().map(std::path::Path::to_owned),
                len: spooled.len,
                outcome: spooled.outcome,
            }),
            peer: request.remote_addr().map(|a| a.ip()),
        }
    }

    /// The values of every header named `name` (case-insensitive), in order.
    pub fn header_values<'r>(&'r self, name: &'r str) -> impl Iterator<Item = &'r str> {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A response before it is written: status, headers, body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Instead of `body`: part of a file, which the connection's thread
    /// reads while it writes it (downloads), never held whole in memory.
    pub file: Option<FileBody>,
}

/// `len` bytes of the file at `path`, from `offset`.
#[derive(Debug, Clone)]
pub struct FileBody {
    pub path: std::path::PathBuf,
    pub offset: u64,
    pub len: u64,
}

impl HttpResponse {
    /// A JSON response with the headers every API answer carries.
    pub fn json(status: u16, body: &serde_json::Value) -> HttpResponse {
        HttpResponse::json_text(status, body.to_string())
    }

    /// The same, for JSON already serialized.
    pub fn json_text(status: u16, body: String) -> HttpResponse {
        HttpResponse {
            status,
            headers: vec![
                ("Content-Type", "application/json; charset=utf-8".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body,
            file: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: String) -> HttpResponse {
        self.headers.push((name, value));
        self
    }
}

/// A successful answer: status, JSON body, maybe a cookie to set.
pub struct Reply {
    status: u16,
    /// The body as JSON text, serialized once, straight from the handler's
    /// values (a large list built as a `serde_json::Value` tree first cost
    /// more than the query). An error here is a bug: the client gets a 500.
    body: serde_json::Result<String>,
    /// `Set-Cookie` values, in order.
    set_cookies: Vec<String>,
    /// An answer that is not JSON (a download): sent as it is.
    raw: Option<HttpResponse>,
}

impl Reply {
    pub fn ok(body: impl Serialize) -> Reply {
        Reply::with_status(200, body)
    }
    pub fn with_status(status: u16, body: impl Serialize) -> Reply {
        Reply {
            status,
            body: serde_json::to_string(&body),
            set_cookies: Vec::new(),
            raw: None,
        }
    }
    /// An answer that is not JSON, such as a file.
    pub fn raw(response: HttpResponse) -> Reply {
        Reply {
            status: response.status,
            body: Ok(String::new()),
            set_cookies: Vec::new(),
            raw: Some(response),
        }
    }
    pub fn set_cookie(mut self, cookie: String) -> Reply {
        self.set_cookies.push(cookie);
        self
    }
}

/// A refused request: the status and the `{"error": ...}` text the client
/// sees. For 5xx the cause is logged, once, where the response is sent.
#[derive(Debug)]
pub struct ApiError {
    status: u16,
    message: String,
    cause: Option<String>,
    /// Seconds for a `Retry-After` header (429).
    retry_after: Option<u64>,
    /// A machine-readable reason (`"code"` next to `"error"`), where the
    /// WebSocket's `message_failed` frame has one for the same refusal.
    code: Option<&'static str>,
    /// More headers for the answer.
    headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            cause: None,
            retry_after: None,
            code: None,
            headers: Vec::new(),
        }
    }
    /// The same error, with a header (e.g. `Content-Range` on a 416).
    pub fn with_header(self, name: &'static str, value: String) -> ApiError {
        let mut headers = self.headers;
        headers.push((name, value));
        ApiError { headers, ..self }
    }
    /// The same error, with a machine-readable `code`.
    pub fn with_code(self, code: &'static str) -> ApiError {
        ApiError {
            code: Some(code),
            ..self
        }
    }
    /// 429: over a rate limit; retry after `wait` (rounded up to seconds).
    pub fn too_many(message: impl Into<String>, wait: std::time::Duration) -> ApiError {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(seconds.max(1)),
            ..ApiError::new(429, message)
        }
    }
    /// 503 with `Retry-After`: the server cannot take this now.
    pub fn too_busy(message: impl Into<String>, retry_after_seconds: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after_seconds),
            ..ApiError::new(503, message)
        }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "login required")
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }
    /// A server-side failure; the client gets a generic text, the log the
    /// cause.
    pub fn internal(cause: impl std::fmt::Display) -> ApiError {
        ApiError {
            status: 500,
            message: "internal server error".into(),
            cause: Some(cause.to_string()),
            retry_after: None,
            code: None,
            headers: Vec::new(),
        }
    }
}

impl From<crate::accounts::AccountError> for ApiError {
    fn from(e: crate::accounts::AccountError) -> ApiError {
        if e.status() == 500 {
            return ApiError::internal(e);
        }
        let error = ApiError::new(e.status(), e.to_string());
        match e.code() {
            Some(code) => error.with_code(code),
            None => error,
        }
    }
}

impl From<crate::repo::StoreError> for ApiError {
    fn from(e: crate::repo::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

/// Writes a response, adding the headers that every answer carries.
fn send(request: Request, response: HttpResponse) {
    let always = [
        // Browsers must not guess a type other than the one we send.
        ("X-Content-Type-Options", "nosniff".to_owned()),
        ("Referrer-Policy", "same-origin".to_owned()),
    ];
    let headers: Vec<Header> = always
        .into_iter()
        .chain(response.headers)
        .filter_map(|(name, value)| {
            Header::from_bytes(name.as_bytes(), value.as_bytes())
                .map_err(|()| log::error!("invalid response header {name}"))
                .ok()
        })
        .collect();
    let sent = match response.file {
        Some(file) => match open_part(&file) {
            Ok(body) => {
                let mut head = Response::empty(response.status);
                for header in headers {
                    head.add_header(header);
                }
                request.respond_with_body(head, body, file.len)
            }
            Err(e) => {
                log::error!("cannot open {} for a download: {e}", file.path.display());
                let failed = json!({ "error": "internal server error" }).to_string();
                let mut out = Response::from_string(failed).with_status_code(500);
                out.add_header(Header {
                    field: "Content-Type".parse().expect("a valid header name"),
                    value: "application/json".parse().expect("a valid header value"),
                });
                request.respond(out)
            }
        },
        None => {
            let mut out = Response::from_string(response.body).with_status_code(response.status);
            for header in headers {
                out.add_header(header);
            }
            request.respond(out)
        }
    };
    if let Err(e) = sent {
        log::debug!("could not send HTTP response: {e}");
    }
}

/// The part of a file a download sends, ready to be read.
fn open_part(file: &FileBody) -> std::io::Result<Box<dyn Read + Send>> {
    use std::io::{Seek, SeekFrom};
    let mut opened = std::fs::File::open(&file.path)?;
    opened.seek(SeekFrom::Start(file.offset))?;
    Ok(Box::new(opened.take(file.len)))
}

/// Parses the JSON body; 413 over [`MAX_BODY_BYTES`].
pub fn read_json<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    if request.body_too_large || request.body.len() > MAX_BODY_BYTES {
        return Err(ApiError::new(
            413,
            format!("body larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// A query parameter as it stands in the URL (a bare `name` is empty).
fn query_raw<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A text query parameter, percent-decoded (`+` is a space, as forms
/// send it).
pub fn query_text(query: &str, name: &str) -> Option<String> {
    let raw = query_raw(query, name)?.replace('+', " ");
    Some(
        percent_encoding::percent_decode_str(&raw)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

/// An integer query parameter: `None` when absent, 400 when not an integer.
pub fn query_i64(query: &str, name: &str) -> Result<Option<i64>, ApiError> {
    let Some(value) = query_raw(query, name) else {
        return Ok(None);
    };
    value
        .parse()
        .map(Some)
        .map_err(|_| ApiError::bad_request(format!("{name} must be an integer")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        assert_eq!(query_i64("a=1&b=2", "b").ok().flatten(), Some(2));
        assert_eq!(query_i64("a=1", "b").ok().flatten(), None);
        assert_eq!(query_i64("b=-5", "b").ok().flatten(), Some(-5));
        assert!(query_i64("b=x", "b").is_err());
        assert!(query_i64("b", "b").is_err());
        assert!(query_i64("b=99999999999999999999", "b").is_err());
        assert_eq!(
            query_text("name=a%20b+c.txt", "name").as_deref(),
            Some("a b c.txt")
        );
        assert_eq!(query_text("for=me&x=1", "for").as_deref(), Some("me"));
        assert_eq!(query_text("x=1", "for"), None);
    }
}
