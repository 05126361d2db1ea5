//! The WebSocket listener: accepts TCP connections, runs the handshake
//! (session cookie, allowed `Origin`), and hands each accepted socket to
//! [`client::serve`] on a thread of its own.
//!
//! WebSockets get their own listener, not tiny_http's upgrade: a tiny_http
//! upgraded stream cannot be split between a reader and a writer thread, and
//! owning the `TcpStream` lets us set timeouts on it.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::Utc;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http;

use super::client;
use super::presence::PresenceForm;
use super::reader_socket::ReaderSocket;
use crate::app::App;
use crate::auth;
use crate::limits::{SocketSlot, UserSlot};
use crate::models::Session;
use crate::origin;

/// Time allowed to write the 503 that refuses a socket over the cap.
const REFUSAL_WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the
/// acceptor does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// A running acceptor thread and the means to stop it.
pub struct WsListener {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl WsListener {
    /// Starts accepting on `listener`.
    pub fn spawn(listener: TcpListener, app: App) -> io::Result<WsListener> {
        let addr = listener.local_addr()?;
        widen_backlog(&listener);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let stopping = stopping.clone();
            std::thread::Builder::new()
                .name("ws-acceptor".into())
                .spawn(move || accept_loop(&listener, &app, &stopping))?
        };
        Ok(WsListener {
            addr,
            stopping,
            thread,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting. Connections already open are closed by the hub.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        // `accept` has no timeout; a connection to ourselves wakes it up.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => [127, 0, 0, 1].into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        let _ = self.thread.join();
    }
}

/// Connections the kernel queues for `accept`. Rust's `TcpListener::bind`
/// asks for 128: in a connect storm (everyone reconnecting after a restart)
/// the rest of the SYNs were dropped and each client retried after 1, 3,
/// 7, 15 s, which stretched a 10,000-user storm to minutes. The kernel caps
/// this at `net.core.somaxconn` (4096 by default since Linux 5.4).
const ACCEPT_BACKLOG: i32 = 4096;

fn widen_backlog(listener: &TcpListener) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: `listen` on a socket we own and that is already
        // listening only changes its queue length.
        let result = unsafe { libc::listen(listener.as_raw_fd(), ACCEPT_BACKLOG) };
        if result != 0 {
            log::warn!(
                "cannot widen the WebSocket accept queue: {}",
                io::Error::last_os_error()
            );
        }
    }
}

fn accept_loop(listener: &TcpListener, app: &App, stopping: &AtomicBool) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                log::warn!("websocket accept failed: {e}");
                std::thread::sleep(ACCEPT_ERROR_BACKOFF);
                continue;
            }
        };
        let Some(slot) = app.limits.connections.open_socket() else {
            refuse_busy(stream);
            continue;
        };
        let app = app.clone();
        let spawned = std::thread::Builder::new()
            .name("ws-reader".into())
            .stack_size(client::READER_STACK_BYTES)
            .spawn(move || handle_connection(stream, app, slot));
        if let Err(e) = spawned {
            // The stream was moved into the closure and is dropped with it:
            // the client sees the connection close, the server keeps going.
            log::error!("cannot start a connection thread: {e}");
        }
    }
}

/// At the connection cap: a short 503 written from the acceptor itself (no
/// thread to spare), then close. The write cannot stall the acceptor: the
/// response is far smaller than a fresh socket's send buffer, and the
/// timeout covers the rest.
fn refuse_busy(mut stream: TcpStream) {
    let body = r#"{"error":"server full: too many connections"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.set_write_timeout(Some(REFUSAL_WRITE_TIMEOUT));
    let _ = stream.write_all(response.as_bytes());
    log::warn!("refused a websocket: connection limit reached");
}

/// `_slot` holds this socket's place under the connection cap until the
/// connection ends.
fn handle_connection(stream: TcpStream, app: App, _slot: SocketSlot) {
    let peer = stream.peer_addr().ok();
    // One deadline for the whole handshake, not a timeout per read: a
    // client that sends a byte every few seconds is cut off all the same.
    let deadline = Instant::now() + app.config.handshake_timeout;
    // Chat frames are small and latency matters more than packet count.
    if let Err(e) = stream.set_nodelay(true) {
        log::debug!("websocket from {peer:?}: socket setup failed: {e}");
        return;
    }

    let mut accepted: Option<(Session, [u8; 32], UserSlot, PresenceForm)> = None;
    // tungstenite's callback type fixes the (large) error type.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        let (session, token_hash) = authorize(&app, request).map_err(|(status, error)| {
            audit(peer, error);
            refuse(status, error)
        })?;
        let slot = app
            .limits
            .connections
            .add_user_connection(session.user.id)
            .ok_or_else(|| {
                refuse(
                    http::StatusCode::TOO_MANY_REQUESTS,
                    "too many connections for this user",
                )
            })?;
        let presence_form = PresenceForm::from_query(request.uri().query());
        accepted = Some((session, token_hash, slot, presence_form));
        Ok(response)
    };
    let handshake = tungstenite::accept_hdr_with_config(
        ReaderSocket::with_deadline(stream, deadline),
        callback,
        Some(client::reader_config()),
    )
    // The error holds the callback, and with it a borrow of `accepted`.
    .map_err(|e| e.to_string());
    match (handshake, accepted) {
        (Ok(ws), Some((session, token_hash, _user_slot, presence_form))) => {
            client::serve(ws, session, token_hash, presence_form, app);
        }
        (Ok(_), None) => log::error!("websocket from {peer:?}: handshake passed without a session"),
        (Err(e), _) => log::debug!("websocket from {peer:?}: handshake refused: {e}"),
    }
}

/// An audit line for a refused handshake that an operator may want to see
/// (a foreign origin, a missing or dead session).
fn audit(peer: Option<SocketAddr>, error: &str) {
    match peer {
        Some(peer) => log::warn!("audit: refused websocket: {error} from {}", peer.ip()),
        None => log::warn!("audit: refused websocket: {error}"),
    }
}

/// Why a handshake was refused: the HTTP status and the error text.
type Refusal = (http::StatusCode, &'static str);

/// Decides whether a handshake may proceed, and as whom (the session, and
/// the hash of its token to look it up again).
fn authorize(app: &App, request: &Request) -> Result<(Session, [u8; 32]), Refusal> {
    if request.uri().path() != "/ws" {
        return Err((http::StatusCode::NOT_FOUND, "no such endpoint; use /ws"));
    }
    let mut origins = request.headers().get_all(http::header::ORIGIN).iter();
    if let Some(origin) = origins.next() {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| origin::is_allowed(&app.allowed_origins, o));
        if !allowed || origins.next().is_some() {
            return Err((http::StatusCode::FORBIDDEN, "origin not allowed"));
        }
    }
    let cookies = request
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let Some(token) = auth::session_token_from_cookies(cookies) else {
        return Err((http::StatusCode::UNAUTHORIZED, "login required"));
    };
    let token_hash = auth::hash_token(token);
    match app.store.session(&token_hash, Utc::now()) {
        Ok(Some(session)) => Ok((session, token_hash)),
        Ok(None) => Err((http::StatusCode::UNAUTHORIZED, "login required")),
        Err(e) => {
            log::error!("websocket handshake: session lookup failed: {e}");
            Err((
                http::StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable",
            ))
        }
    }
}

fn refuse(status: http::StatusCode, error: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(serde_json::json!({ "error": error }).to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
