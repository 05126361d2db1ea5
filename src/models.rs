//! The records the server stores and hands out, in their JSON shapes.
//!
//! These types are the public contract of `docs/API.md`: REST responses and
//! WebSocket frames serialize them as they are, so a field renamed here is a
//! breaking change for every client.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

/// Row id of a user. SQLite rowids are `i64`, and so are ours.
pub type UserId = i64;
/// Row id of a message; ids grow with every insert and order a conversation.
pub type MessageId = i64;
/// Row id of a login session; logout closes the WebSockets opened with it.
pub type SessionId = i64;

/// An account as its owner sees it (`/api/me`, register, login).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: UserId,
    pub nickname: String,
    pub email: String,
    pub role: Role,
    /// Shown beside the nickname (any script, emoji); `None`: just the
    /// nickname.
    pub display_name: Option<String>,
    /// Their picture (`GET /api/users/{id}/avatar?v=...`); `None`: the web
    /// client draws their initial.
    pub avatar_url: Option<String>,
}

/// What an account may do beyond chatting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    /// Manages accounts, invitations and reports. The first account
    /// registered is one; `chat-server admin promote` makes others.
    Admin,
}

impl Role {
    /// The `users.role` column's text.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    pub fn from_column(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::Member
        }
    }
}

/// A live login: who it is, and until when. A WebSocket opened with it is
/// closed when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user: User,
    pub expires_at: DateTime<Utc>,
    /// When it was last used, to the minute (see `Accounts::touch_session`).
    pub last_seen_at: DateTime<Utc>,
}

/// A stored private message, exactly as every endpoint returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    pub id: MessageId,
    pub sender_id: UserId,
    pub receiver_id: UserId,
    pub content: String,
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    pub is_read: bool,
    /// The message this one answers, if any.
    pub reply_to: Option<ReplyTo>,
    /// When the content was last edited; `None`: never.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted for everyone (`content` is then empty).
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Who reacted with what, one entry per emoji.
    pub reactions: Vec<Reaction>,
    /// The file sent with it (`content` is then its caption, maybe empty).
    /// Boxed: most messages have none, and messages travel by value.
    pub attachment: Option<Box<Attachment>>,
    /// When it disappears (sent while its conversation had a timer).
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// An uploaded file, as its uploader (`POST /api/attachments`) and the
/// people it is sent to (a message's `attachment`) see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Attachment {
    pub id: i64,
    pub name: String,
    pub size: u64,
    /// Found from the bytes, never from the name or the client.
    pub mime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Where to download it (`GET /api/attachments/{id}`).
    #[serde(default)]
    pub url: String,
    /// An image's thumbnail (`GET /api/attachments/{id}/thumbnail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

impl Attachment {
    /// Fills in what is derived from the id.
    pub fn with_url(mut self) -> Attachment {
        self.url = attachment_url(self.id);
        self
    }
}

impl Message {
    /// A message as it is when stored: no edits, deletion or reactions yet.
    pub fn new(
        id: MessageId,
        sender_id: UserId,
        receiver_id: UserId,
        content: String,
        created_at: DateTime<Utc>,
    ) -> Message {
        Message {
            id,
            sender_id,
            receiver_id,
            content,
            created_at,
            is_read: false,
            reply_to: None,
            edited_at: None,
            deleted_at: None,
            reactions: Vec::new(),
            attachment: None,
            expires_at: None,
        }
    }
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplyTo {
    pub id: MessageId,
    pub sender_id: UserId,
    /// The first [`REPLY_EXCERPT_CHARS`] characters; `None` once the
    /// original was deleted for everyone.
    pub excerpt: Option<String>,
}

/// Characters of the original a reply shows.
pub const REPLY_EXCERPT_CHARS: usize = 100;

/// The users who reacted to a message with one emoji, in the order they did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reaction {
    pub emoji: String,
    pub user_ids: Vec<UserId>,
}

/// Where attachment `id` is served.
pub fn attachment_url(id: i64) -> String {
    format!("/api/attachments/{id}")
}

/// Where the thumbnail of attachment `id` is served.
pub fn thumbnail_url(id: i64) -> String {
    format!("/api/attachments/{id}/thumbnail")
}

/// A stored thumbnail: its bytes' SHA-256 (its name in the file store)
/// and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredThumbnail {
    pub sha256: String,
    pub mime: String,
}

/// An upload as the download endpoints need it: what its viewers see, and
/// where its bytes are.
#[derive(Debug, Clone)]
pub struct StoredAttachment {
    pub attachment: Attachment,
    pub sha256: String,
    pub thumbnail: Option<StoredThumbnail>,
}

/// An upload about to be recorded.
#[derive(Debug, Clone)]
pub struct NewAttachment {
    pub uploader_id: UserId,
    pub sha256: String,
    pub name: String,
    pub size: u64,
    pub mime: String,
    pub image: Option<(u32, u32)>,
    pub thumbnail: Option<StoredThumbnail>,
}

/// One version of an edited message's content
/// (`GET /api/messages/{id}/versions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub content: String,
    /// When this version was sent, or written by an edit.
    #[serde(serialize_with = "serialize_timestamp")]
    pub written_at: DateTime<Utc>,
}

/// A message that is about to be stored: what the sender chose, nothing the
/// database assigns.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub sender_id: UserId,
    pub receiver_id: UserId,
    pub content: String,
    pub created_at: DateTime<Utc>,
    /// The sender's tag for this send; a repeat of it stores nothing new.
    pub client_id: Option<String>,
    /// The sender's nickname, for the change's frame (not stored with the
    /// message: it is the user's).
    pub sender_nickname: String,
    /// The message this one answers; the store checks that it belongs to
    /// the same conversation.
    pub reply_to_id: Option<MessageId>,
    /// A file the sender uploaded and has not sent yet; the store checks.
    pub attachment_id: Option<i64>,
}

/// One row of `GET /api/conversations`, before the hub adds `online`.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub partner_id: UserId,
    pub partner_nickname: String,
    pub last_message: Message,
    pub unread_count: i64,
    /// The conversation's newest change: a client starts its `since` sync
    /// from the highest of these.
    pub last_seq: i64,
    /// Its disappearing-messages timer; `None`: off.
    pub expiry_seconds: Option<i64>,
}

/// Which page of a conversation to read. Pages are counted from the newest
/// message because chat clients open at the bottom and scroll up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// At most this many messages (1..=[`Page::MAX_LIMIT`]).
    pub limit: u32,
    pub cursor: Cursor,
}

/// Where a page ends, on its newest side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Skip this many of the newest messages. Simple, but a page shifts when
    /// new messages arrive while the user scrolls.
    Offset(u32),
    /// Only messages with an id below this one: stable under new arrivals.
    BeforeId(MessageId),
    /// This message with those just before and after it: a search result
    /// opened in its context.
    Around(MessageId),
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Builds a page from the optional request fields shared by REST and
    /// WebSocket, so both reject the same input with the same words.
    pub fn from_request(
        limit: Option<i64>,
        offset: Option<i64>,
        before_id: Option<i64>,
    ) -> Result<Page, &'static str> {
        let limit = match limit {
            None => Self::DEFAULT_LIMIT,
            Some(l) if (1..=i64::from(Self::MAX_LIMIT)).contains(&l) => l as u32,
            Some(_) => return Err("limit must be between 1 and 100"),
        };
        let cursor = match (offset, before_id) {
            (Some(_), Some(_)) => return Err("give either offset or before_id, not both"),
            (None, Some(id)) if id >= 1 => Cursor::BeforeId(id),
            (None, Some(_)) => return Err("before_id must be a positive message id"),
            (Some(o), None) => match u32::try_from(o) {
                Ok(o) => Cursor::Offset(o),
                Err(_) => return Err("offset must be between 0 and 4294967295"),
            },
            (None, None) => Cursor::Offset(0),
        };
        Ok(Page { limit, cursor })
    }

    /// The same page centred on message `around_id`, if one is asked for
    /// (`around_id` goes with neither `offset` nor `before_id`).
    pub fn around(self, around_id: Option<i64>) -> Result<Page, &'static str> {
        match (around_id, self.cursor) {
            (None, _) => Ok(self),
            (Some(id), Cursor::Offset(0)) if id >= 1 => Ok(Page {
                cursor: Cursor::Around(id),
                ..self
            }),
            (Some(id), Cursor::Offset(0)) if id < 1 => {
                Err("around_id must be a positive message id")
            }
            (Some(_), _) => Err("give only one of offset, before_id and around_id"),
        }
    }
}

/// Timestamps go out as RFC 3339 in UTC with milliseconds, e.g.
/// `2026-11-25T23:18:52.123Z`, the precision they are stored with.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// For `#[serde(serialize_with)]`: a time as [`format_timestamp`] writes it.
pub fn serialize_timestamp<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(t))
}

/// The same for an optional time (`null` when absent).
pub fn serialize_optional_timestamp<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_timestamp(t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_rejects_out_of_range_values() {
        assert!(Page::from_request(Some(0), None, None).is_err());
        assert!(Page::from_request(Some(101), None, None).is_err());
        assert!(Page::from_request(None, Some(-1), None).is_err());
        assert!(Page::from_request(None, None, Some(0)).is_err());
        assert!(Page::from_request(None, Some(1), Some(5)).is_err());
        assert_eq!(
            Page::from_request(None, None, None),
            Ok(Page {
                limit: 20,
                cursor: Cursor::Offset(0)
            })
        );
        assert_eq!(
            Page::from_request(Some(100), None, Some(7)),
            Ok(Page {
                limit: 100,
                cursor: Cursor::BeforeId(7)
            })
        );
    }
}
