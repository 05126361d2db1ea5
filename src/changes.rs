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

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;
use serde::Serialize;

use crate::models::{Attachment, Message, MessageId, ReplyTo, UserId, format_timestamp};
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
    /// The sender replaced a message's content.
    MessageEdited {
        message_id: MessageId,
        sender_id: UserId,
        receiver_id: UserId,
        content: String,
        edited_at: DateTime<Utc>,
    },
    /// `user_id` deleted a message for everyone (its sender) or for
    /// themselves only (either side; only their own connections hear it).
    MessageDeleted {
        message_id: MessageId,
        user_id: UserId,
        partner_id: UserId,
        for_everyone: bool,
    },
    /// `user_id` added (`on`) or took back a reaction to a message of their
    /// conversation with `partner_id`.
    Reaction {
        message_id: MessageId,
        user_id: UserId,
        partner_id: UserId,
        emoji: String,
        on: bool,
    },
    /// `by_user_id` set the disappearing-messages timer of the conversation
    /// with `partner_id` (`None`: off).
    ExpiryChanged {
        by_user_id: UserId,
        partner_id: UserId,
        seconds: Option<i64>,
    },
}

impl Change {
    /// The users who see this change: both sides of the conversation, but
    /// for a deletion for me, only me. (Whether a partner sees a read mark
    /// also depends on both users' receipt settings: the hub's business.)
    pub fn audience(&self) -> Vec<UserId> {
        match self {
            Change::MessageStored { message, .. } => vec![message.sender_id, message.receiver_id],
            Change::ConversationRead {
                reader_id,
                partner_id,
                ..
            } => vec![*reader_id, *partner_id],
            Change::MessageEdited {
                sender_id,
                receiver_id,
                ..
            } => vec![*sender_id, *receiver_id],
            Change::MessageDeleted {
                user_id,
                for_everyone: false,
                ..
            } => vec![*user_id],
            Change::MessageDeleted {
                user_id,
                partner_id,
                ..
            }
            | Change::Reaction {
                user_id,
                partner_id,
                ..
            }
            | Change::ExpiryChanged {
                by_user_id: user_id,
                partner_id,
                ..
            } => vec![*user_id, *partner_id],
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
                reply_to: message.reply_to.as_ref(),
                attachment: message.attachment.as_deref(),
                edited_at: message.edited_at.as_ref().map(format_timestamp),
                deleted_at: message.deleted_at.as_ref().map(format_timestamp),
                expires_at: message.expires_at.as_ref().map(format_timestamp),
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
            Change::MessageEdited {
                message_id,
                content,
                edited_at,
                ..
            } => ChangeFrame::MessageEdited {
                message_id: *message_id,
                content,
                edited_at: format_timestamp(edited_at),
                seq,
            },
            Change::MessageDeleted {
                message_id,
                for_everyone,
                ..
            } => ChangeFrame::MessageDeleted {
                message_id: *message_id,
                deleted_for: if *for_everyone { "everyone" } else { "me" },
                seq,
            },
            Change::Reaction {
                message_id,
                user_id,
                emoji,
                on,
                ..
            } => ChangeFrame::Reaction {
                message_id: *message_id,
                emoji,
                user_id: *user_id,
                on: *on,
                seq,
            },
            Change::ExpiryChanged {
                by_user_id,
                partner_id,
                seconds,
            } => ChangeFrame::ExpiryChanged {
                by_user_id: *by_user_id,
                partner_id: *partner_id,
                seconds: *seconds,
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
        /// The message this one answers.
        #[serde(skip_serializing_if = "Option::is_none")]
        reply_to: Option<&'a ReplyTo>,
        /// The file sent with it.
        #[serde(skip_serializing_if = "Option::is_none")]
        attachment: Option<&'a Attachment>,
        /// In a sync page, a message edited since: its content is the
        /// current one (its `message_edited` changes follow).
        #[serde(skip_serializing_if = "Option::is_none")]
        edited_at: Option<String>,
        /// In a sync page, a message deleted for everyone since: no content.
        #[serde(skip_serializing_if = "Option::is_none")]
        deleted_at: Option<String>,
        /// When it disappears (its conversation had a timer).
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<String>,
        seq: Seq,
    },
    MessagesRead {
        reader_id: UserId,
        partner_id: UserId,
        up_to_id: MessageId,
        seq: Seq,
    },
    MessageEdited {
        message_id: MessageId,
        content: &'a str,
        edited_at: String,
        seq: Seq,
    },
    MessageDeleted {
        message_id: MessageId,
        /// `"everyone"` or `"me"`.
        #[serde(rename = "for")]
        deleted_for: &'static str,
        seq: Seq,
    },
    Reaction {
        message_id: MessageId,
        emoji: &'a str,
        user_id: UserId,
        on: bool,
        seq: Seq,
    },
    ExpiryChanged {
        by_user_id: UserId,
        partner_id: UserId,
        /// `null`: messages no longer disappear.
        seconds: Option<i64>,
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
    /// A connection's edit, deletion or reaction was refused (or failed):
    /// the hub tells that connection which (`action`, a frame type).
    Refused {
        message_id: MessageId,
        action: &'static str,
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
