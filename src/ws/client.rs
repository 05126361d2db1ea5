//! One WebSocket connection: a reader thread and a writer thread.
//!
//! ```text
//!   socket ──► reader ──► chat::send_message ──► store ──► hub ──┐
//!                 │                                             │
//!                 └── own replies (errors, history) ──┐         │
//!                                                     ▼         ▼
//!   socket ◄────────────────────────────── writer ◄── outbox (bounded)
//! ```
//!
//! Only the writer ever writes to the socket, so frames never interleave.
//! tungstenite answers pings and close frames from inside `read()`; the
//! reader's socket is therefore a [`ReaderSocket`] whose writes are thrown
//! away after the handshake, and the reader passes pings on to the writer.

use std::collections::VecDeque;
use std::io;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, Utf8Bytes, WebSocket};

use super::events::{ClientEvent, ServerEvent};
use super::frame_writer::FrameWriter;
use super::hub::{ConnHandle, ConnId, HubEvent};
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{self, Outbox, OutboxReceiver, PushError, Waited};
use super::presence::{PresenceForm, presence_frames};
use super::reader_socket::ReaderSocket;
use crate::app::App;
use crate::chat::{self, SendRequest};
use crate::metrics::Metrics;
use crate::models::{Message as StoredMessage, MessageId, Page, Session, User, UserId};

/// Largest text frame or message a client may send. Chat messages are at
/// most 4,000 characters (16 KiB of UTF-8 plus JSON escaping); 64 KiB leaves
/// room without letting one client make the server buffer megabytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Time allowed to write one batch of frames to the client. A client that
/// does not drain its socket for this long is gone or hostile.
pub const WRITE_WAIT: Duration = Duration::from_secs(10);
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
    presence_form: PresenceForm,
    app: App,
) {
    let id: ConnId = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
    ws.get_mut().handshake_done();
    let Session {
        id: session_id,
        user,
        expires_at,
    } = session;
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

    let registered = app.hub.send(HubEvent::Register(ConnHandle {
        id,
        user_id: user.id,
        nickname: user.nickname.clone(),
        session_id,
        outbox: outbox.clone(),
        close_signal: close_signal.clone(),
    }));
    if !registered {
        return; // the server is shutting down
    }
    // Unregisters when this function ends, also by a panic: a connection
    // the hub still listed would stay "online" forever.
    let _registration = Registration {
        id,
        hub: app.hub.clone(),
    };
    log::debug!("connection {id}: user {} connected", user.id);

    let replies = Arc::new(Replies {
        id,
        outbox,
        outbox_capacity: app.config.outbox_capacity,
        close_signal,
        metrics: app.metrics.clone(),
    });
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

/// A connection's membership in the hub, ended on drop.
struct Registration {
    id: ConnId,
    hub: super::hub::HubHandle,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.send(HubEvent::Unregister(self.id));
    }
}

fn prepare_socket(socket: &Arc<TcpStream>) -> io::Result<FrameWriter> {
    // (Reads run against the reader's own deadline: `Reader::run`.)
    socket.set_write_timeout(Some(WRITE_WAIT))?;
    Ok(FrameWriter::new(socket.clone()))
}

struct Reader {
    id: ConnId,
    user: User,
    app: App,
    replies: Arc<Replies>,
    /// Capacity 1: taken for each page queued, given back by the writer
    /// once it has written it.
    page_slot: Sender<()>,
    /// No frame is acted on after the session has ended.
    session_ends: Instant,
}

impl Reader {
    fn run(&self, ws: &mut WebSocket<ReaderSocket>) {
        loop {
            // A complete frame (a pong at least: we ping well within this)
            // must arrive within the pong wait; bytes of an unfinished one
            // do not count.
            ws.get_mut()
                .read_by(Instant::now() + self.app.config.pong_wait);
            let message = match ws.read() {
                Ok(message) => message,
                Err(e) => {
                    self.on_read_error(e);
                    return;
                }
            };
            // Closed by the hub (logged out, too slow, shutting down): not
            // one more frame is acted on, even if some are still buffered.
            if self.replies.close_signal.reading_ended() {
                return;
            }
            if Instant::now() >= self.session_ends {
                self.queue(Outbound::Close(CloseReason::SessionExpired));
                return;
            }
            let keep_going = match message {
                Message::Text(text) => self.on_text(text.as_str()),
                Message::Binary(_) => self.reply(&ServerEvent::Error {
                    error: "binary frames are not supported; send JSON text frames",
                }),
                Message::Ping(payload) => self.queue(Outbound::Pong(payload)),
                // Any frame, pongs included, proves the peer is alive; the
                // read timeout restarts with the next read.
                Message::Pong(_) | Message::Frame(_) => true,
                Message::Close(_) => false,
            };
            if !keep_going {
                return;
            }
        }
    }

    fn on_read_error(&self, error: tungstenite::Error) {
        use tungstenite::Error;
        match error {
            Error::Capacity(e) => {
                log::info!("connection {}: {e}; closing with 1009", self.id);
                self.queue(Outbound::Close(CloseReason::TooBig));
            }
            Error::Utf8(_) => {
                self.queue(Outbound::Close(CloseReason::InvalidData));
            }
            Error::Protocol(e) => {
                log::debug!("connection {}: {e}; closing with 1002", self.id);
                self.queue(Outbound::Close(CloseReason::ProtocolError));
            }
            Error::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                log::debug!("connection {}: nothing read in time; closing", self.id);
            }
            Error::ConnectionClosed | Error::AlreadyClosed => {}
            other => log::debug!("connection {}: read failed: {other}", self.id),
        }
    }

    /// Handles one JSON frame. Returns false when the connection must end.
    fn on_text(&self, text: &str) -> bool {
        let event = match ClientEvent::parse(text) {
            Ok(event) => event,
            Err(error) => return self.reply(&ServerEvent::Error { error: &error }),
        };
        match event {
            ClientEvent::PrivateMessage {
                to_user_id,
                content,
                client_id,
            } => {
                let request = SendRequest {
                    to_user_id,
                    content,
                    client_id: client_id.clone(),
                };
                // Returns at once: the next frame is read while this one is
                // stored. The hub answers a stored message with
                // message_delivered / message_failed; the database writer a
                // failed commit (through `on_sent`, which must not wait);
                // and a send refused by the rules is answered here.
                let replies = self.replies.clone();
                let failed_client_id = client_id.clone();
                let on_sent: chat::OnSent = Box::new(move |outcome| {
                    if let Err(refused) = outcome {
                        if let chat::ChatError::Store(store_error) = &refused {
                            log::error!(
                                "connection {}: storing a message: {store_error}",
                                replies.id
                            );
                        }
                        let frame = refused_send(to_user_id, failed_client_id.as_deref(), &refused);
                        replies.queue(Outbound::Frame(frame));
                    }
                });
                match chat::send_message(&self.app, &self.user, request, Some(self.id), on_sent) {
                    Ok(()) => true,
                    Err(refused) => {
                        if let chat::ChatError::RateLimited(_) = refused {
                            log::warn!(
                                "audit: refused: message rate, user {} on connection {}",
                                self.user.id,
                                self.id
                            );
                        }
                        self.queue(Outbound::Frame(refused_send(
                            to_user_id,
                            client_id.as_deref(),
                            &refused,
                        )))
                    }
                }
            }
            ClientEvent::Sync { after_id, limit } => {
                match chat::sync(&self.app, self.user.id, Some(after_id), limit) {
                    // Through the writer, which drops what it sent live.
                    Ok((messages, has_more)) => self.queue_page(Outbound::SyncPage {
                        after_id,
                        messages,
                        has_more,
                    }),
                    Err(e) => self.reply_error(&e, "syncing"),
                }
            }
            ClientEvent::LoadHistory {
                to_user_id,
                offset,
                before_id,
                limit,
            } => {
                let page = match Page::from_request(limit, offset, before_id) {
                    Ok(page) => page,
                    Err(error) => return self.reply(&ServerEvent::Error { error }),
                };
                match chat::history(&self.app, self.user.id, to_user_id, page) {
                    Ok(messages) => {
                        let frame = ServerEvent::History {
                            to_user_id,
                            offset: offset.unwrap_or(0),
                            before_id,
                            messages: &messages,
                        }
                        .to_frame();
                        self.queue_page(Outbound::HistoryPage(frame))
                    }
                    Err(e) => self.reply_error(&e, "loading history"),
                }
            }
        }
    }

    /// Answers a failed request with an `error` frame; logs storage faults
    /// (the client's mistakes are not worth a log line).
    fn reply_error(&self, error: &chat::ChatError, doing: &str) -> bool {
        if let chat::ChatError::Store(store_error) = error {
            log::error!("connection {}: {doing}: {store_error}", self.id);
        }
        self.reply(&ServerEvent::Error {
            error: &error.to_string(),
        })
    }

    /// Queues a history or sync page once the previous one has been written.
    /// Pages can be megabytes; without this a client that asks and never
    /// reads could park `--outbox-capacity` of them in memory. Waiting here
    /// only stalls this client's own reader.
    fn queue_page(&self, page: Outbound) -> bool {
        // Fails only when the writer has gone: the connection is over.
        self.page_slot.send(()).is_ok() && self.queue(page)
    }

    fn reply(&self, event: &ServerEvent<'_>) -> bool {
        self.queue(Outbound::Frame(event.to_frame()))
    }

    /// Queues an answer to this client's own request, waiting while its
    /// answers fill its share of the outbox: a client that sends faster
    /// than it reads is simply read more slowly.
    fn queue(&self, item: Outbound) -> bool {
        self.replies.queue_own(item)
    }
}

/// The `message_failed` answer to a send that was refused before or while
/// storing it.
fn refused_send(
    to_user_id: UserId,
    client_id: Option<&str>,
    refused: &chat::ChatError,
) -> Utf8Bytes {
    let retry_after_ms = match refused {
        chat::ChatError::RateLimited(wait) => {
            Some(wait.as_millis().try_into().unwrap_or(u64::MAX).max(1))
        }
        _ => None,
    };
    ServerEvent::MessageFailed {
        message_id: None,
        to_user_id,
        client_id,
        error: refused.code(),
        retry_after_ms,
    }
    .to_frame()
}

/// The reader's way to its own connection's outbox: for its replies, and for
/// the answer to a refused send, which may come from the database writer
/// (each send's completion holds an `Arc` of it: one increment per message).
struct Replies {
    id: ConnId,
    outbox: Outbox,
    outbox_capacity: usize,
    close_signal: Arc<CloseSignal>,
    metrics: Arc<Metrics>,
}

impl Replies {
    /// Queues a frame for the writer without waiting (from the database
    /// writer, which must not wait). A full queue means the client is not
    /// reading: close it rather than buffer without bound.
    fn queue(&self, item: Outbound) -> bool {
        self.outcome(self.outbox.push(item))
    }

    /// Queues a frame from the connection's own reader: while half the
    /// outbox (its share; the rest is the hub's) is ahead of it, waits up
    /// to [`WRITE_WAIT`] for the writer to make room. Only a client that
    /// reads nothing for that long is cut off.
    fn queue_own(&self, item: Outbound) -> bool {
        let share = self.outbox_capacity / 2;
        let deadline = Instant::now() + WRITE_WAIT;
        self.outcome(self.outbox.push_within(item, share, deadline))
    }

    fn outcome(&self, pushed: Result<(), PushError>) -> bool {
        match pushed {
            Ok(()) => true,
            Err(PushError::Full) => {
                log::warn!("connection {}: too slow; closing it", self.id);
                self.metrics.outbox_drops.fetch_add(1, Ordering::Relaxed);
                self.close_signal.close(CloseReason::TooSlow);
                false
            }
            Err(PushError::Closed) => false,
        }
    }
}

/// The writer thread: sends queued frames, pings on schedule, and closes the
/// socket when told to or when the queue ends.
/// What the writer takes from: frames to send, and the page slot it gives
/// back after each history or sync page.
struct WriterQueues {
    outbox: OutboxReceiver,
    page_written: Receiver<()>,
}

/// What the writer knows of its connection: when to act without being
/// asked (pings, the session's end) and how the client wants presence.
#[derive(Clone, Copy)]
struct WriterSettings {
    ping_interval: Duration,
    session_ends: Instant,
    presence_form: PresenceForm,
}

fn write_loop(
    id: ConnId,
    mut ws: FrameWriter,
    queues: &WriterQueues,
    close_signal: &CloseSignal,
    settings: WriterSettings,
) {
    let result = write_until_closed(&mut ws, queues, close_signal, settings);
    if let Err(e) = result {
        log::debug!("connection {id}: write failed: {e}");
    }
    // Wakes the reader if it is still waiting for data.
    ws.shutdown();
}

/// What the writer remembers to send each message exactly once, when a
/// client syncs while live messages arrive.
///
/// Live messages reach a connection in id order (the hub gets them in commit
/// order) and a sync page holds every message in its id range that had
/// committed when it was read. So: once a live message `f` went out, every
/// later message to this connection comes live too, and sync may skip ids
/// from `f` on; and a live message no higher than the highest id sync sent
/// was already in that sync page.
#[derive(Default)]
struct ExactlyOnce {
    first_live: Option<MessageId>,
    max_synced: MessageId,
}

impl ExactlyOnce {
    /// Whether live message `id` still has to be sent.
    fn live(&mut self, id: MessageId) -> bool {
        if id <= self.max_synced {
            return false;
        }
        self.first_live.get_or_insert(id);
        true
    }

    /// Keeps the sync results not delivered live; returns whether any were
    /// dropped (then sync has reached the live stream: nothing more to ask).
    fn sync(&mut self, messages: &mut Vec<StoredMessage>) -> bool {
        let before = messages.len();
        if let Some(first_live) = self.first_live {
            messages.retain(|m| m.id < first_live);
        }
        if let Some(last) = messages.last() {
            self.max_synced = self.max_synced.max(last.id);
        }
        messages.len() < before
    }
}

fn write_until_closed(
    ws: &mut FrameWriter,
    queues: &WriterQueues,
    close_signal: &CloseSignal,
    settings: WriterSettings,
) -> io::Result<()> {
    let WriterSettings {
        ping_interval,
        session_ends,
        presence_form,
    } = settings;
    let mut exactly_once = ExactlyOnce::default();
    let mut next_ping = Instant::now() + ping_interval;
    let mut batch = VecDeque::new();
    loop {
        // Frames, or the ping deadline (below), or the session's end, or
        // the end.
        if queues.outbox.wait(next_ping.min(session_ends), &mut batch) == Waited::Finished {
            // The hub and the reader both let go: a normal end.
            return ws.close(CloseReason::Normal);
        }
        if Instant::now() >= session_ends {
            return ws.close(CloseReason::SessionExpired);
        }
        // Write everything queued, then flush once: one syscall for a burst
        // instead of one per frame.
        while let Some(out) = batch.pop_front() {
            if let Some(reason) = close_signal.requested() {
                return ws.close(reason);
            }
            match out {
                Outbound::Frame(text) => ws.text(text)?,
                Outbound::Message { id, frame } => {
                    if exactly_once.live(id) {
                        ws.text(frame)?;
                    }
                }
                Outbound::SyncPage {
                    after_id,
                    mut messages,
                    has_more,
                } => {
                    let reached_live = exactly_once.sync(&mut messages);
                    let page = ServerEvent::Sync {
                        after_id,
                        messages: &messages,
                        has_more: has_more && !reached_live,
                    };
                    ws.text(page.to_frame())?;
                    let _ = queues.page_written.try_recv();
                }
                Outbound::HistoryPage(frame) => {
                    ws.text(frame)?;
                    let _ = queues.page_written.try_recv();
                }
                Outbound::Presence {
                    changes,
                    from,
                    own_user,
                } => {
                    let news = changes.get(from..).unwrap_or_default();
                    for frame in presence_frames(news, own_user, presence_form) {
                        ws.text(frame)?;
                    }
                }
                Outbound::Pong(payload) => ws.pong(payload)?,
                Outbound::Close(reason) => return ws.close(reason),
            }
            if batch.is_empty() {
                queues.outbox.take(&mut batch);
            }
        }
        // Pinged on schedule even when frames never stop coming: the client
        // may be only listening, and its reader times out without traffic.
        if Instant::now() >= next_ping {
            ws.ping()?;
            next_ping = Instant::now() + ping_interval;
        }
        ws.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(ids: &[MessageId]) -> Vec<StoredMessage> {
        ids.iter()
            .map(|&id| StoredMessage {
                id,
                sender_id: 1,
                receiver_id: 2,
                content: String::new(),
                created_at: chrono::Utc::now(),
                is_read: false,
            })
            .collect()
    }

    fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
        messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn sync_before_live_drops_live_repeats() {
        let mut once = ExactlyOnce::default();
        let mut page = messages(&[3, 5, 8]);
        assert!(!once.sync(&mut page));
        assert_eq!(ids(&page), [3, 5, 8]);
        assert!(!once.live(5), "already sent by sync");
        assert!(!once.live(8));
        assert!(once.live(9));
        // Sync continues after 8: ids from the first live one on are skipped.
        let mut next = messages(&[9, 10]);
        assert!(once.sync(&mut next));
        assert!(next.is_empty());
    }

    #[test]
    fn live_before_sync_keeps_only_older_sync_results() {
        let mut once = ExactlyOnce::default();
        assert!(once.live(7));
        assert!(once.live(9));
        let mut page = messages(&[2, 4, 7, 9]);
        assert!(once.sync(&mut page), "reached the live stream");
        assert_eq!(ids(&page), [2, 4]);
        assert!(once.live(11));
    }
}
