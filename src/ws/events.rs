//! The WebSocket protocol: JSON text frames with a `type` field.
//!
//! [`ClientEvent`] is what a client may send, [`ServerEvent`] what the server
//! sends. Field names are part of the public contract (`docs/API.md`).

use serde::{Deserialize, Serialize};
use tungstenite::Utf8Bytes;

use crate::changes::{ChangeFrame, Seq};
use crate::chat::search::Hit;
use crate::models::{Message, MessageId, UserId};

/// A frame from a client.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientEvent {
    /// Send a message to `to_user_id`.
    PrivateMessage {
        to_user_id: UserId,
        content: String,
        #[serde(default)]
        client_id: Option<String>,
        /// The message of this conversation that this one answers.
        #[serde(default)]
        reply_to_id: Option<MessageId>,
        /// A file I uploaded, sent with this message.
        #[serde(default)]
        attachment_id: Option<i64>,
    },
    /// I am typing to `to_user_id` (`"start"`), or stopped (`"stop"`).
    Typing {
        to_user_id: UserId,
        state: TypingState,
    },
    /// Replace the content of my message `message_id`.
    EditMessage {
        message_id: MessageId,
        content: String,
        #[serde(default)]
        client_id: Option<String>,
    },
    /// Delete message `message_id` for everyone (default; mine only) or
    /// for me.
    DeleteMessage {
        message_id: MessageId,
        #[serde(default, rename = "for")]
        deleted_for: DeleteFor,
        #[serde(default)]
        client_id: Option<String>,
    },
    /// Add (`on`) or take back a reaction.
    React {
        message_id: MessageId,
        emoji: String,
        on: bool,
        #[serde(default)]
        client_id: Option<String>,
    },
    /// Catch-up after a reconnect: every change visible to me after `since`
    /// (a `seq`), or, the older form, every message to or by me after
    /// message `after_id`. Exactly one of the two.
    Sync {
        #[serde(default)]
        after_id: Option<i64>,
        #[serde(default)]
        since: Option<i64>,
        #[serde(default)]
        limit: Option<i64>,
    },
    /// I have read the conversation with `user_id` up to `up_to_id`
    /// (default: its newest message).
    MarkRead {
        user_id: UserId,
        #[serde(default)]
        up_to_id: Option<MessageId>,
    },
    /// A page of the conversation with `to_user_id` (with `around_id`:
    /// that message amid its neighbours).
    LoadHistory {
        to_user_id: UserId,
        #[serde(default)]
        offset: Option<i64>,
        #[serde(default)]
        before_id: Option<i64>,
        #[serde(default)]
        limit: Option<i64>,
        #[serde(default)]
        around_id: Option<i64>,
    },
    /// Messages of my conversations (or of the one with `user_id`) that
    /// match `q`, newest first; `before`: the `next` of the previous page.
    Search {
        q: String,
        #[serde(default)]
        user_id: Option<UserId>,
        #[serde(default)]
        limit: Option<i64>,
        #[serde(default)]
        before: Option<String>,
    },
}

/// The `state` of a `typing` frame.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TypingState {
    Start,
    Stop,
}

/// Whom a deletion is for.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DeleteFor {
    #[default]
    Everyone,
    Me,
}

impl ClientEvent {
    /// Parses one text frame. The error text is meant for the client's
    /// `error` frame: serde says which field or type was wrong.
    pub fn parse(frame: &str) -> Result<ClientEvent, String> {
        serde_json::from_str(frame).map_err(|e| format!("invalid frame: {e}"))
    }
}

/// An online user, as listed in `online_users`.
#[derive(Debug, Clone, Serialize)]
pub struct OnlineUser<'a> {
    pub id: UserId,
    pub nickname: &'a str,
}

/// A frame to a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent<'a> {
    /// Sent once, first, on every new connection: who else is online.
    /// The hub sends it from the encoding it keeps (`ws::presence`), which
    /// a test holds equal to this.
    OnlineUsers { users: Vec<OnlineUser<'a>> },
    /// Other users who came online (opened their first connection) since
    /// the last presence frames or the `online_users` list, for clients
    /// that asked for lists (`?presence=batch`). Changes are collected for
    /// a moment and sent together, each user once, with their latest state.
    /// Built by `ws::presence`, which a test holds equal to this.
    UserOnline { users: Vec<OnlineUser<'a>> },
    /// Other users who went offline (closed their last connection); sent
    /// like `UserOnline`, and never naming a user that one names.
    UserOffline { users: Vec<OnlineUser<'a>> },
    /// The published form of `user_online`, one frame per user: what a
    /// client gets unless it asked for lists (`?presence=batch`).
    #[serde(rename = "user_online")]
    UserCameOnline {
        from_user_id: UserId,
        nickname: &'a str,
    },
    /// The published form of `user_offline`, one frame per user.
    #[serde(rename = "user_offline")]
    UserWentOffline {
        from_user_id: UserId,
        nickname: &'a str,
    },
    // A stored message (`private_message`) and the other changes are
    // `crate::changes::ChangeFrame`s: the same bytes live and in sync pages.
    /// Answer to a send that reached at least one recipient connection.
    MessageDelivered {
        message_id: MessageId,
        to_user_id: UserId,
        client_id: Option<&'a str>,
        timestamp: String,
        /// The change that stored it; absent for a repeated `client_id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<Seq>,
    },
    /// Answer to a send that reached no recipient connection (`message_id`
    /// set: stored, recipient offline) or was rejected (no `message_id`);
    /// or to an edit, deletion or reaction that was refused (`action` names
    /// the frame, `message_id` its message, and there is no `to_user_id`).
    MessageFailed {
        #[serde(skip_serializing_if = "Option::is_none")]
        message_id: Option<MessageId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to_user_id: Option<UserId>,
        #[serde(skip_serializing_if = "Option::is_none")]
        action: Option<&'a str>,
        client_id: Option<&'a str>,
        error: &'a str,
        /// With `rate_limited`: when a retry would be accepted.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
        /// With `message_id`: the change that stored it (absent for a
        /// repeated `client_id`).
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<Seq>,
    },
    /// Answer to `load_history`.
    History {
        to_user_id: UserId,
        offset: i64,
        #[serde(skip_serializing_if = "Option::is_none")]
        before_id: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        around_id: Option<i64>,
        messages: &'a [Message],
    },
    /// Answer to `search`: the page of `GET /api/search`, with the query
    /// it answers.
    Search {
        q: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        user_id: Option<UserId>,
        results: &'a [Hit],
        #[serde(skip_serializing_if = "Option::is_none")]
        next: Option<&'a str>,
    },
    /// Answer to `sync`: messages after `after_id` in id order, without
    /// those this connection receives live. With `has_more`, ask again from
    /// the last message's id.
    Sync {
        after_id: i64,
        messages: &'a [Message],
        has_more: bool,
    },
    /// `from_user_id` is typing to this user (`"start"`), or stopped.
    Typing {
        from_user_id: UserId,
        state: &'static str,
    },
    /// A frame the server could not act on; the connection stays open.
    Error {
        error: &'a str,
        /// When the server was too busy to act on it: ask again after this.
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

impl ServerEvent<'_> {
    /// An `error` frame about a client's frame.
    pub fn error(error: &str) -> ServerEvent<'_> {
        ServerEvent::Error {
            error,
            retry_after_ms: None,
        }
    }

    /// Serializes the frame once; the result is cheap to clone, so a frame
    /// fanned out to many connections is encoded a single time.
    pub fn to_frame(&self) -> Utf8Bytes {
        to_frame(self)
    }
}

impl ChangeFrame<'_> {
    pub fn to_frame(&self) -> Utf8Bytes {
        to_frame(self)
    }
}

/// The answer to `sync` with `since`, around change frames that are already
/// encoded (the same bytes as live): `{"type":"sync","since":…,"changes":
/// […],"has_more":…,"next_since":…}`. A test holds it equal to serde's.
pub fn sync_changes_frame(
    since: Seq,
    changes: &[Utf8Bytes],
    has_more: bool,
    next_since: Seq,
) -> Utf8Bytes {
    let body: usize = changes.iter().map(|c| c.len() + 1).sum();
    let mut frame = String::with_capacity(body + 96);
    frame.push_str(r#"{"type":"sync","since":"#);
    frame.push_str(&since.to_string());
    frame.push_str(r#","changes":["#);
    for (i, change) in changes.iter().enumerate() {
        if i > 0 {
            frame.push(',');
        }
        frame.push_str(change.as_str());
    }
    frame.push_str(r#"],"has_more":"#);
    frame.push_str(if has_more { "true" } else { "false" });
    frame.push_str(r#","next_since":"#);
    frame.push_str(&next_since.to_string());
    frame.push('}');
    frame.into()
}

fn to_frame(event: &impl Serialize) -> Utf8Bytes {
    // Serializing these plain structs cannot fail (string keys, no maps
    // with non-string keys, no failing Serialize impls).
    match serde_json::to_string(event) {
        Ok(json) => json.into(),
        Err(e) => {
            log::error!("could not serialize a server event: {e}");
            r#"{"type":"error","error":"internal error"}"#.into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_frames() {
        assert_eq!(
            ClientEvent::parse(r#"{"type":"private_message","to_user_id":2,"content":"hi"}"#),
            Ok(ClientEvent::PrivateMessage {
                to_user_id: 2,
                content: "hi".into(),
                client_id: None,
                reply_to_id: None,
                attachment_id: None,
            })
        );
        assert!(ClientEvent::parse(r#"{"type":"private_message","to_user_id":"2"}"#).is_err());
        assert!(ClientEvent::parse(r#"{"type":"dance"}"#).is_err());
        assert!(ClientEvent::parse("not json").is_err());
        let deep = "[".repeat(10_000);
        assert!(ClientEvent::parse(&deep).is_err());
    }

    #[test]
    fn failed_without_id_omits_the_field() {
        let frame = ServerEvent::MessageFailed {
            message_id: None,
            to_user_id: Some(3),
            action: None,
            client_id: Some("c1"),
            error: "too_long",
            retry_after_ms: None,
            seq: None,
        }
        .to_frame();
        assert_eq!(
            frame.as_str(),
            r#"{"type":"message_failed","to_user_id":3,"client_id":"c1","error":"too_long"}"#
        );
    }

    #[test]
    fn the_sync_changes_frame_is_valid_json_of_the_published_shape() {
        let changes: Vec<Utf8Bytes> = vec![
            r#"{"type":"messages_read","reader_id":1,"partner_id":2,"up_to_id":5,"seq":7}"#.into(),
            r#"{"type":"messages_read","reader_id":2,"partner_id":1,"up_to_id":6,"seq":9}"#.into(),
        ];
        for page in [&changes[..], &[]] {
            let frame = sync_changes_frame(3, page, true, 9);
            let parsed: serde_json::Value = serde_json::from_str(frame.as_str()).expect("json");
            let listed: Vec<serde_json::Value> = page
                .iter()
                .map(|c| serde_json::from_str(c.as_str()).expect("change"))
                .collect();
            assert_eq!(
                parsed,
                serde_json::json!({"type": "sync", "since": 3, "changes": listed,
                                   "has_more": true, "next_since": 9})
            );
        }
    }
}
