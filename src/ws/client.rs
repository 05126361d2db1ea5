//! One WebSocket connection: its setup, a reader thread
//! ([`super::reader`]) and a writer thread ([`super::writer`]).
//!
//! ```text
//!   socket ──► reader ──► chat::send_message ──► store ──► hub ──┐
//!                 │ └── history, sync ──► hub ──► query pool ──┐ │
//!                 └── own replies (errors) ──────────┐         │ │
//!                                                    ▼         ▼ ▼
//!   socket ◄────────────────────────────── writer ◄── outbox (bounded)
//! ```
//!
//! Only the writer ever writes to the socket, so frames never interleave.
//! tungstenite answers pings and close frames from inside `read()`; the
//! reader's socket is therefore a [`ReaderSocket`] whose writes are thrown
//! away after the handshake, and the reader passes pings on to the writer.

use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tungstenite::WebSocket;
use tungstenite::protocol::WebSocketConfig;

use super::frame_writer::FrameWriter;
use super::hub::{ConnHandle, ConnId};
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox;
use super::presence::PresenceForm;
use super::reader::{Reader, Replies};
use super::reader_socket::ReaderSocket;
use super::writer::{WRITE_WAIT, WriterQueues, WriterSettings, write_loop};
use crate::app::App;
use crate::models::{Session, SessionId};

/// Largest text frame or message a client may send. Chat messages are at
/// most 4,000 characters (16 KiB of UTF-8 plus JSON escaping); 64 KiB leaves
/// room without letting one client make the server buffer megabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// tungstenite's read buffer. Its default of 128 KiB (plus 128 KiB for
/// writing) would make 10,000 idle connections cost 2.5 GiB; chat frames
/// are small, and larger ones simply take several reads.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// The reader's WebSocket never writes after the handshake (the writer
/// thread has its own [`FrameWriter`]), so it needs no write buffer.
const WRITE_BUFFER_BYTES: usize = 0;
/// Stack sizes. Threads only touch the pages they use, but each reserves its
/// stack in address space; 256 KiB is plenty for JSON parsing and SQLite
/// (serde_json caps nesting at 128 levels), the writer needs less.
pub const READER_STACK_BYTES: usize = 256 * 1024;
pub const WRITER_STACK_BYTES: usize = 128 * 1024;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The limits of the reading side of a connection (used for the handshake
/// too, which happens on the same socket).
pub fn reader_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_message_size(Some(MAX_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_MESSAGE_BYTES))
}

/// Runs an authenticated connection on the current thread (which becomes
/// its reader) until it closes. Spawns the writer and registers with the
/// hub; unregisters on the way out.
pub fn serve(
    mut ws: WebSocket<ReaderSocket>,
    session: Session,
    token_hash: [u8; 32],
    presence_form: PresenceForm,
    app: App,
) {
    let id: ConnId = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    ws.get_mut().handshake_done();
    let Session {
        id: session_id,
        user,
        expires_at,
        last_seen_at,
    } = session;
    // A connection is a use of the session, for "last seen".
    let now = chrono::Utc::now();
    if now - last_seen_at >= crate::accounts::LAST_SEEN_PRECISION {
        app.store.touch_session(session_id, user.id, now);
    }
    // The connection ends with its session (the clocks are the same
    // machine's; the database keeps wall-clock time).
    let session_ends = Instant::now()
        + (expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
    let socket = ws.get_ref().stream();
    let write_half = match prepare_socket(socket) {
        Ok(stream) => stream,
        Err(e) => {
            log::warn!("connection {id}: cannot set up socket: {e}");
            return;
        }
    };

    let (outbox, outbox_rx) = outbox::outbox(app.config.outbox_capacity);
    let (page_slot, page_written) = crossbeam_channel::bounded(1);
    let close_signal = Arc::new(CloseSignal::default());
    let writer = {
        let close_signal = close_signal.clone();
        let ping_interval = app.config.ping_period();
        let privacy = app.privacy.clone();
        let alive = app.alive.clone(); // shutdown waits for this writer
        std::thread::Builder::new()
            .name(format!("ws-writer-{id}"))
            .stack_size(WRITER_STACK_BYTES)
            .spawn(move || {
                let queues = WriterQueues {
                    outbox: outbox_rx,
                    page_written,
                };
                let settings = WriterSettings {
                    ping_interval,
                    session_ends,
                    presence_form,
                    privacy,
                };
                write_loop(id, write_half, &queues, &close_signal, settings);
                drop(alive);
            })
    };
    if let Err(e) = writer {
        // Out of threads: refuse this connection, keep serving the others.
        log::error!("connection {id}: cannot start writer thread: {e}");
        return;
    }

    // Tests pause here to log out between the handshake's session check
    // and the registration (tests/logout_race.rs).
    fail::fail_point!("ws::before_register");
    let registered = app.hub.register(ConnHandle {
        id,
        user_id: user.id,
        nickname: user.nickname.clone(),
        session_id,
        outbox: outbox.clone(),
        close_signal: close_signal.clone(),
    });
    if !registered {
        return; // the server is shutting down
    }
    // Unregisters when this function ends, also by a panic: a connection
    // the hub still listed would stay "online" forever.
    let _registration = Registration {
        id,
        hub: app.hub.clone(),
    };
    // The session was checked before registering; a logout may have come
    // in between, and its close went to the hub before this connection
    // was there to be closed. Checked again now that it is registered: a
    // logout after this point finds it in the hub (the register channel
    // goes first), one before it is seen here.
    if !session_still_valid(&app, session_id, &token_hash) {
        log::debug!("connection {id}: session ended during the handshake");
        close_signal.close(CloseReason::LoggedOut);
        let _ = outbox.push(Outbound::Close(CloseReason::LoggedOut));
        return;
    }
    log::debug!("connection {id}: user {} connected", user.id);

    let replies = Replies {
        id,
        outbox,
        outbox_capacity: app.config.outbox_capacity,
        close_signal,
        metrics: app.metrics.clone(),
    };
    let reader = Reader {
        id,
        user,
        app,
        replies,
        page_slot,
        session_ends,
    };
    reader.run(&mut ws);
    log::debug!("connection {id}: closed");
}

/// Whether the session this connection was opened with still exists. A
/// database error counts as valid: the connection then ends with its
/// session or at the next logout, as before the check.
fn session_still_valid(app: &App, session: SessionId, token_hash: &[u8; 32]) -> bool {
    match app.store.session(token_hash, chrono::Utc::now()) {
        Ok(found) => found.is_some_and(|s| s.id == session),
        Err(e) => {
            log::error!("websocket: checking the session again: {e}");
            true
        }
    }
}

/// A connection's membership in the hub, ended on drop.
struct Registration {
    id: ConnId,
    hub: super::hub::HubHandle,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.unregister(self.id);
    }
}

fn prepare_socket(socket: &Arc<TcpStream>) -> io::Result<FrameWriter> {
    // (Reads run against the reader's own deadline: `Reader::run`.)
    socket.set_write_timeout(Some(WRITE_WAIT))?;
    Ok(FrameWriter::new(socket.clone()))
}
