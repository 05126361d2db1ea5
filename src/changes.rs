//! The stream of committed changes: everything the database commits that a
//! client must learn about, each with its place in one order, `seq`.
//!
//! The database writer assigns `seq` inside the committing transaction and
//! stores the change with it, then emits it as a [`Committed`] value on the
//! hub's private-message channel, in commit order. The hub routes it to
//! every connection that may see it; a client that was away asks for the
//! changes after the last `seq` it saw (`GET /api/sync?since=`, WebSocket
//! `sync` with `since`) and gets the same frames from the store. One
//! stream, two ways to read it, so that features added later (edits,
//! deletions, reactions...) are a new [`Change`] variant and nothing else.
//!
//! `docs/ARCHITECTURE.md` says why a client can never skip a change, also
//! when several transactions commit at once on a future PostgreSQL store.

use crossbeam_channel::Sender;
use serde::Serialize;

use crate::models::{Message, MessageId, UserId, format_timestamp};
use crate::repo::StoreError;

/// Position of a change in the stream: strictly increasing in commit order.
pub type Seq = i64;

/// Identifies one WebSocket connection (a user may have several).
pub type ConnId = u64;

/// What was committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A message was stored.
    MessageStored {
        message: Message,
        sender_nickname: String,
    },
    /// `reader_id` has read the conversation with `partner_id` up to message
    /// `up_to_id` (the partner's messages with an id up to it).
    ConversationRead {
        reader_id: UserId,
        partner_id: UserId,
        up_to_id: MessageId,
    },
}

impl Change {
    /// The users who see this change: both sides of the conversation.
    pub fn audience(&self) -> [UserId; 2] {
        match self {
            Change::MessageStored { message, .. } => [message.sender_id, message.receiver_id],
            Change::ConversationRead {
                reader_id,
                partner_id,
                ..
            } => [*reader_id, *partner_id],
        }
    }

    /// The frame a client gets for this change, live or in a sync page: the
    /// same bytes either way.
    pub fn frame(&self, seq: Seq) -> ChangeFrame<'_> {
        match self {
            Change::MessageStored {
                message,
                sender_nickname,
            } => ChangeFrame::PrivateMessage {
                message_id: message.id,
                from_user_id: message.sender_id,
                to_user_id: message.receiver_id,
                nickname: sender_nickname,
                content: &message.content,
                timestamp: format_timestamp(&message.created_at),
                seq,
            },
            Change::ConversationRead {
                reader_id,
                partner_id,
                up_to_id,
            } => ChangeFrame::MessagesRead {
                reader_id: *reader_id,
                partner_id: *partner_id,
                up_to_id: *up_to_id,
                seq,
            },
        }
    }
}

/// A change as a JSON frame (`docs/API.md`, "Server → client"). The field
/// names are the contract: `private_message` is the frame clients have
/// always read, with `seq` added.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChangeFrame<'a> {
    PrivateMessage {
        message_id: MessageId,
        from_user_id: UserId,
        to_user_id: UserId,
        /// The sender's nickname.
        nickname: &'a str,
        content: &'a str,
        timestamp: String,
        seq: Seq,
    },
    MessagesRead {
        reader_id: UserId,
        partner_id: UserId,
        up_to_id: MessageId,
        seq: Seq,
    },
}

/// Who asked for a write: the hub answers a WebSocket connection's send and
/// leaves that connection out when echoing to the sender's other ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A REST request (its worker gets the answer itself), or the server.
    Request,
    /// A WebSocket connection, with the `client_id` its send carried.
    Connection {
        conn: ConnId,
        client_id: Option<String>,
    },
}

impl Origin {
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Origin::Request => None,
            Origin::Connection { conn, .. } => Some(*conn),
        }
    }
}

/// A change that has committed, with its `seq` and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub seq: Seq,
    pub change: Change,
    pub origin: Origin,
}

/// What the database writer tells the hub, in commit order, on the hub's
/// private-message channel.
#[derive(Debug)]
pub enum Written {
    /// A change committed: route it to its audience.
    Committed(Committed),
    /// A connection's send repeated a `client_id`: nothing new was stored;
    /// `message` is the original, and only the sender is owed an answer.
    Repeated { message: Message, origin: Origin },
    /// A connection's send was not stored: the hub tells that connection.
    Failed {
        to_user_id: UserId,
        origin: Origin,
        error: StoreError,
    },
}

/// The writer's end of the hub's private-message channel.
pub type ChangeSink = Sender<Written>;

/// A sink that tells nobody, for tools that write without a hub (the
/// database seeder, benchmarks of the store alone, unit tests).
pub fn nowhere() -> ChangeSink {
    crossbeam_channel::bounded(0).0
}
