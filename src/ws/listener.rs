//! The WebSocket listener: accepts TCP connections, runs the handshake
//! (session cookie, allowed `Origin`), and hands each accepted socket to
//! [`client::serve`] on a thread of its own.
//!
//! WebSockets get their own listener, not tiny_http's upgrade: a tiny_http
//! upgraded stream cannot be split between a reader and a writer thread, and
//! owning the `TcpStream` lets us set timeouts on it.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::Utc;
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::http;

use super::client::{self, ReaderSocket};
use crate::app::App;
use crate::auth;
use crate::models::{SessionId, User};

/// A handshake must complete within this time, or the socket is dropped:
/// otherwise a client that opens sockets and sends nothing would pin one
/// thread each, forever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
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
        let app = app.clone();
        let spawned = std::thread::Builder::new()
            .name("ws-reader".into())
            .stack_size(client::READER_STACK_BYTES)
            .spawn(move || handle_connection(stream, app));
        if let Err(e) = spawned {
            // The stream was moved into the closure and is dropped with it:
            // the client sees the connection close, the server keeps going.
            log::error!("cannot start a connection thread: {e}");
        }
    }
}

fn handle_connection(stream: TcpStream, app: App) {
    let peer = stream.peer_addr().ok();
    let setup = stream
        .set_read_timeout(Some(HANDSHAKE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)))
        // Chat frames are small and latency matters more than packet count.
        .and_then(|()| stream.set_nodelay(true));
    if let Err(e) = setup {
        log::debug!("websocket from {peer:?}: socket setup failed: {e}");
        return;
    }

    let mut session: Option<(SessionId, User)> = None;
    // tungstenite's callback type fixes the (large) error type.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        let found = authorize(&app, request).map_err(|(status, error)| refuse(status, error))?;
        session = Some(found);
        Ok(response)
    };
    let handshake = tungstenite::accept_hdr_with_config(
        ReaderSocket::new(stream),
        callback,
        Some(client::reader_config()),
    )
    // The error holds the callback, and with it a borrow of `session`.
    .map_err(|e| e.to_string());
    match (handshake, session) {
        (Ok(ws), Some((session_id, user))) => client::serve(ws, user, session_id, app),
        (Ok(_), None) => log::error!("websocket from {peer:?}: handshake passed without a session"),
        (Err(e), _) => log::debug!("websocket from {peer:?}: handshake refused: {e}"),
    }
}

/// Why a handshake was refused: the HTTP status and the error text.
type Refusal = (http::StatusCode, &'static str);

/// Decides whether a handshake may proceed, and as whom.
fn authorize(app: &App, request: &Request) -> Result<(SessionId, User), Refusal> {
    if request.uri().path() != "/ws" {
        return Err((http::StatusCode::NOT_FOUND, "no such endpoint; use /ws"));
    }
    if let Some(origin) = request.headers().get(http::header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| is_allowed_origin(&app.allowed_origins, o));
        if !allowed {
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
    match app.store.session(&auth::hash_token(token), Utc::now()) {
        Ok(Some(session)) => Ok(session),
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

/// The origins a browser may open WebSockets from: the HTTP server's own
/// (for a loopback address, both its `127.0.0.1` and `localhost` spellings)
/// and every `--allowed-origin`. Exact matches only: no wildcards, no
/// prefixes, so `http://localhost:8080.evil.com` is not `http://localhost:8080`.
pub fn allowed_origins(http_addr: SocketAddr, extra: &[String]) -> Vec<String> {
    let port = http_addr.port();
    let mut origins = Vec::new();
    if http_addr.ip().is_loopback() || http_addr.ip().is_unspecified() {
        origins.push(format!("http://localhost:{port}"));
        origins.push(format!("http://127.0.0.1:{port}"));
        origins.push(format!("http://[::1]:{port}"));
    }
    if !http_addr.ip().is_unspecified() {
        origins.push(format!("http://{http_addr}"));
    }
    origins.extend(extra.iter().map(|o| normalize_origin(o)));
    origins.sort();
    origins.dedup();
    origins
}

fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn is_allowed_origin(allowed: &[String], origin: &str) -> bool {
    let origin = normalize_origin(origin);
    allowed.contains(&origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_match_exactly() {
        let allowed = allowed_origins(
            "127.0.0.1:8080".parse().expect("addr"),
            &["https://Chat.Example.org/".to_string()],
        );
        assert!(is_allowed_origin(&allowed, "http://127.0.0.1:8080"));
        assert!(is_allowed_origin(&allowed, "http://localhost:8080"));
        assert!(is_allowed_origin(&allowed, "https://chat.example.org"));
        assert!(!is_allowed_origin(&allowed, "http://localhost:8081"));
        assert!(!is_allowed_origin(
            &allowed,
            "http://localhost:8080.evil.com"
        ));
        assert!(!is_allowed_origin(&allowed, "https://evil.com"));
        assert!(!is_allowed_origin(&allowed, "null"));
    }
}
