//! What a connection's writer thread is asked to do, and how the hub and a
//! connection's threads tell each other that it is ending: the vocabulary
//! shared by the hub (`ws::hub`), the reader and writer (`ws::reader`,
//! `ws::writer`) and the queue between them (`ws::outbox`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use tungstenite::{Bytes, Utf8Bytes};

use super::presence::PresenceChange;
use crate::changes::Seq;
use crate::models::{Message, MessageId, UserId};

/// Why the server closes a WebSocket: the code and reason text of its close
/// frame (RFC 6455 section 7.4; 4000-4999 are ours).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// 1000: the connection ends normally (both sides let go).
    Normal,
    /// 1001: the server is shutting down.
    GoingAway,
    /// 1002: the client broke the protocol (an unmasked frame, a reserved
    /// bit, a bad opcode...).
    ProtocolError,
    /// 1007: a text frame was not valid UTF-8.
    InvalidData,
    /// 1008 (policy violation): the client did not read its frames fast
    /// enough and its outbound queue filled up.
    TooSlow,
    /// 1009: a frame or message exceeded the size limit.
    TooBig,
    /// 4001: the session was logged out.
    LoggedOut,
    /// 4002: the session expired (log in again).
    SessionExpired,
    /// 4003: an admin disabled the account.
    AccountDisabled,
    /// 4004: the account was deleted.
    AccountDeleted,
}

impl CloseReason {
    const ALL: [CloseReason; 10] = [
        CloseReason::Normal,
        CloseReason::GoingAway,
        CloseReason::ProtocolError,
        CloseReason::InvalidData,
        CloseReason::TooSlow,
        CloseReason::TooBig,
        CloseReason::LoggedOut,
        CloseReason::SessionExpired,
        CloseReason::AccountDisabled,
        CloseReason::AccountDeleted,
    ];

    pub fn code(self) -> u16 {
        match self {
            CloseReason::Normal => 1000,
            CloseReason::GoingAway => 1001,
            CloseReason::ProtocolError => 1002,
            CloseReason::InvalidData => 1007,
            CloseReason::TooSlow => 1008,
            CloseReason::TooBig => 1009,
            CloseReason::LoggedOut => 4001,
            CloseReason::SessionExpired => 4002,
            CloseReason::AccountDisabled => 4003,
            CloseReason::AccountDeleted => 4004,
        }
    }

    /// The reason text sent with the code.
    pub fn text(self) -> &'static str {
        match self {
            CloseReason::Normal => "",
            CloseReason::GoingAway => "server shutting down",
            CloseReason::ProtocolError => "protocol error",
            CloseReason::InvalidData => "text frame is not valid UTF-8",
            CloseReason::TooSlow => "too slow: outbound queue full",
            CloseReason::TooBig => "frame too big",
            CloseReason::LoggedOut => "logged out",
            CloseReason::SessionExpired => "session expired",
            CloseReason::AccountDisabled => "account disabled",
            CloseReason::AccountDeleted => "account deleted",
        }
    }

    pub fn from_code(code: u16) -> Option<CloseReason> {
        CloseReason::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// What a connection's writer thread is asked to send.
#[derive(Debug)]
pub enum Outbound {
    /// A JSON text frame about no change in particular (presence, errors,
    /// answers to repeated sends).
    Frame(Utf8Bytes),
    /// A live frame that hands this connection committed change `seq`: a
    /// `private_message` or `messages_read`, or the answer to this
    /// connection's own send (then `message_id` is the stored message's).
    /// They arrive in `seq` order; the writer uses them to keep sync
    /// exactly-once.
    Change {
        seq: Seq,
        message_id: Option<MessageId>,
        frame: Utf8Bytes,
    },
    /// A `history` answer, or the `error` that answers a history or sync
    /// request. At most one page is queued at a time per connection (see
    /// `ws::reader`); the writer frees the slot once it is written.
    Page(Utf8Bytes),
    /// A page of `sync` results by message id, filtered by the writer
    /// against what it has already sent live.
    SyncPage {
        after_id: MessageId,
        messages: Vec<Message>,
        has_more: bool,
    },
    /// A page of `sync` results by `seq`: each change with its encoded
    /// frame, filtered by the writer against what it has already sent live.
    ChangesPage {
        since: Seq,
        changes: Vec<(Seq, Utf8Bytes)>,
        has_more: bool,
    },
    /// A batch of presence changes shared by every connection; the writer
    /// sends those from index `from` on (older ones are in this
    /// connection's `online_users`), minus its own user's, in the form the
    /// client asked for (`ws::presence`).
    Presence {
        changes: Arc<[PresenceChange]>,
        from: usize,
        own_user: UserId,
    },
    /// The answer to a client's ping (the reader must not write itself).
    Pong(Bytes),
    /// Send a close frame and stop.
    Close(CloseReason),
}

impl Outbound {
    pub(super) fn change(seq: Seq, message_id: Option<MessageId>, frame: &Utf8Bytes) -> Outbound {
        Outbound::Change {
            seq,
            message_id,
            frame: frame.clone(),
        }
    }
}

/// Shared flags between the hub and a connection's threads: `close` tells
/// the writer to close even when its queue is full and a `Close` cannot be
/// queued behind the backlog; `end_reading` tells the reader that the hub
/// has closed the connection, so that it acts on no further frame while the
/// writer still sends what was queued before the close.
#[derive(Debug, Default)]
pub struct CloseSignal {
    code: AtomicU16,
    reading_ended: AtomicBool,
}

impl CloseSignal {
    pub fn close(&self, reason: CloseReason) {
        self.end_reading();
        // The first reason wins; 0 means "open".
        let _ = self
            .code
            .compare_exchange(0, reason.code(), Ordering::AcqRel, Ordering::Acquire);
    }
    pub fn requested(&self) -> Option<CloseReason> {
        CloseReason::from_code(self.code.load(Ordering::Acquire))
    }
    pub fn end_reading(&self) {
        self.reading_ended.store(true, Ordering::Release);
    }
    pub fn reading_ended(&self) -> bool {
        self.reading_ended.load(Ordering::Acquire)
    }
}
