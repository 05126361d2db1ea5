//! A connection's reader thread: reads frames (against the keepalive
//! deadline), acts on each (sends, sync, history), and answers its own
//! client through the outbox, waiting while those answers pile up.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use crossbeam_channel::Sender;
use tungstenite::{Message, Utf8Bytes, WebSocket};

use super::events::{ClientEvent, ServerEvent};
use super::hub::ConnId;
use super::outbound::{CloseReason, CloseSignal, Outbound};
use super::outbox::{Outbox, PushError};
use super::reader_socket::ReaderSocket;
use super::writer::WRITE_WAIT;
use crate::app::App;
use crate::chat::{self, SendRequest};
use crate::metrics::Metrics;
use crate::models::{Page, User, UserId};

/// A connection's reader: whose connection it is, the server's context,
/// and where its answers go.
pub(super) struct Reader {
    pub(super) id: ConnId,
    pub(super) user: User,
    pub(super) app: App,
    pub(super) replies: Arc<Replies>,
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
pub(super) struct Replies {
    pub(super) id: ConnId,
    pub(super) outbox: Outbox,
    pub(super) outbox_capacity: usize,
    pub(super) close_signal: Arc<CloseSignal>,
    pub(super) metrics: Arc<Metrics>,
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
