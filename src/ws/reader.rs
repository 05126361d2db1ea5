//! A connection's reader thread: reads frames (against the keepalive
//! deadline), acts on each (sends, sync, history), and answers its own
//! client through the outbox, waiting while those answers pile up.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::Sender;
use tungstenite::{Message, WebSocket};

use super::commands;
use super::events::{ClientEvent, ServerEvent};
use super::hub::ConnId;
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{Outbox, PushError};
use super::queries::{Query, QueryRequest};
use super::reader_socket::ReaderSocket;
use super::writer::WRITE_WAIT;
use crate::app::App;
use crate::chat::search::SearchRequest;
use crate::chat::{self, SendRequest};
use crate::metrics::Metrics;
use crate::models::User;

/// A connection's reader: whose connection it is, the server's context,
/// and where its answers go.
pub(super) struct Reader {
    pub(in crate::ws) id: ConnId,
    pub(in crate::ws) user: User,
    pub(in crate::ws) app: App,
    pub(in crate::ws) replies: Replies,
    /// Capacity 1: taken for each page queued, given back by the writer
    /// once it has written it.
    pub(super) page_slot: Sender<()>,
    /// No frame is acted on after the session has ended.
    pub(super) session_ends: Instant,
}

impl Reader {
    pub(super) fn run(&self, ws: &mut WebSocket<ReaderSocket>) {
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
                Message::Binary(_) => self.reply(&ServerEvent::error(
                    "binary frames are not supported; send JSON text frames",
                )),
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
            Err(error) => return self.reply(&ServerEvent::error(&error)),
        };
        // One file per kind of frame (`ws::commands`): a new kind is a new
        // file and one arm here.
        match event {
            ClientEvent::PrivateMessage {
                to_user_id,
                content,
                client_id,
                reply_to_id,
                attachment_id,
            } => commands::send::apply(
                self,
                SendRequest {
                    to_user_id,
                    content,
                    client_id,
                    reply_to_id,
                    attachment_id,
                },
            ),
            ClientEvent::Typing { to_user_id, state } => {
                commands::typing::apply(self, to_user_id, state)
            }
            ClientEvent::EditMessage {
                message_id,
                content,
                client_id,
            } => commands::edit::apply(self, message_id, content, client_id),
            ClientEvent::DeleteMessage {
                message_id,
                deleted_for,
                client_id,
            } => commands::delete::apply(self, message_id, deleted_for, client_id),
            ClientEvent::React {
                message_id,
                emoji,
                on,
                client_id,
            } => commands::react::apply(self, message_id, &emoji, on, client_id),
            ClientEvent::Sync {
                after_id,
                since,
                limit,
            } => commands::sync::apply(self, after_id, since, limit),
            ClientEvent::MarkRead { user_id, up_to_id } => {
                commands::mark_read::apply(self, user_id, up_to_id)
            }
            ClientEvent::LoadHistory {
                to_user_id,
                offset,
                before_id,
                limit,
                around_id,
            } => commands::history::apply(self, to_user_id, offset, before_id, limit, around_id),
            ClientEvent::Search {
                q,
                user_id,
                limit,
                before,
            } => commands::search::apply(
                self,
                SearchRequest {
                    q,
                    user_id,
                    limit,
                    before,
                },
            ),
        }
    }

    /// Answers a failed request with an `error` frame; logs storage faults
    /// (the client's mistakes are not worth a log line).
    pub(in crate::ws) fn reply_error(&self, error: &chat::ChatError, doing: &str) -> bool {
        if let chat::ChatError::Store(store_error) = error {
            log::error!("connection {}: {doing}: {store_error}", self.id);
        }
        self.reply(&ServerEvent::error(&error.to_string()))
    }

    /// Asks the hub for a history or sync page once the previous page has
    /// been written; the query pool queues the answer. Pages can be
    /// megabytes; without this a client that asks and never reads could
    /// park `--outbox-capacity` of them in memory. Waiting here only stalls
    /// this client's own reader.
    pub(in crate::ws) fn request_page(&self, query: Query) -> bool {
        // Fails only when the writer has gone: the connection is over.
        self.page_slot.send(()).is_ok()
            && self.app.hub.request(QueryRequest {
                conn: self.id,
                user: self.user.id,
                query,
            })
    }

    pub(in crate::ws) fn reply(&self, event: &ServerEvent<'_>) -> bool {
        self.queue(Outbound::Frame(event.to_frame()))
    }

    /// Queues an answer to this client's own request, waiting while its
    /// answers fill its share of the outbox: a client that sends faster
    /// than it reads is simply read more slowly.
    pub(in crate::ws) fn queue(&self, item: Outbound) -> bool {
        self.replies.queue_own(item)
    }
}

/// The reader's way to its own connection's outbox, for its replies.
pub(super) struct Replies {
    pub(super) id: ConnId,
    pub(super) outbox: Outbox,
    pub(super) outbox_capacity: usize,
    pub(super) close_signal: Arc<CloseSignal>,
    pub(super) metrics: Arc<Metrics>,
}

impl Replies {
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
