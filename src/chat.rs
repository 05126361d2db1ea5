//! The one path every message takes: check, store, hand to the hub.
//!
//! `POST /api/messages` and a WebSocket `private_message` frame both call
//! [`send_message`], so the rules, the storage and the live delivery are the
//! same whichever way a message comes in. Reading history has the same
//! single entry point, [`history`].

use chrono::Utc;

use crate::app::App;
use crate::models::{Message, NewMessage, Page, User, UserId};
use crate::repo::StoreError;
use crate::ws::hub::{AckTo, ConnId, HubEvent};

/// Longest message, in characters (Unicode scalar values, not bytes).
pub const MAX_CONTENT_CHARS: usize = 4000;
/// Longest `client_id`, in bytes: it is an opaque tag echoed to the client.
pub const MAX_CLIENT_ID_BYTES: usize = 64;

/// Why a send or a history request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("content must not be empty")]
    EmptyContent,
    #[error("content must be at most {MAX_CONTENT_CHARS} characters")]
    TooLong,
    #[error("cannot send a message to yourself")]
    ToSelf,
    #[error("client_id must be at most {MAX_CLIENT_ID_BYTES} bytes")]
    BadClientId,
    #[error("unknown user")]
    UnknownUser,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChatError {
    /// The machine-readable code of a WebSocket `message_failed` frame.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::EmptyContent | ChatError::ToSelf | ChatError::BadClientId => "invalid",
            ChatError::TooLong => "too_long",
            ChatError::UnknownUser => "unknown_recipient",
            ChatError::Store(_) => "internal_error",
        }
    }
}

/// A send as a client asked for it.
pub struct SendRequest {
    pub to_user_id: UserId,
    pub content: String,
    pub client_id: Option<String>,
}

/// Validates and stores a message, then queues it for live delivery.
///
/// `origin` is the WebSocket connection that sent it, if any: the hub sends
/// that connection its `message_delivered` / `message_failed` answer and
/// skips it when echoing to the sender's other connections. Returns once the
/// message has committed, so a caller that acknowledges it never
/// acknowledges a message that could still be lost.
pub fn send_message(
    app: &App,
    sender: &User,
    request: SendRequest,
    origin: Option<ConnId>,
) -> Result<Message, ChatError> {
    if request.to_user_id == sender.id {
        return Err(ChatError::ToSelf);
    }
    if request.content.trim().is_empty() {
        return Err(ChatError::EmptyContent);
    }
    if request.content.chars().count() > MAX_CONTENT_CHARS {
        return Err(ChatError::TooLong);
    }
    if request
        .client_id
        .as_ref()
        .is_some_and(|id| id.len() > MAX_CLIENT_ID_BYTES)
    {
        return Err(ChatError::BadClientId);
    }

    let message = app
        .store
        .insert_message(NewMessage {
            sender_id: sender.id,
            receiver_id: request.to_user_id,
            content: request.content,
            created_at: Utc::now(),
        })
        .map_err(|e| match e {
            StoreError::UnknownUser => ChatError::UnknownUser,
            other => ChatError::Store(other),
        })?;

    let delivered = app.hub.send(HubEvent::Deliver {
        message: message.clone(),
        sender_nickname: sender.nickname.clone(),
        ack: origin.map(|conn| AckTo {
            conn,
            client_id: request.client_id,
        }),
    });
    if !delivered {
        // Only during shutdown. The message is stored; clients get it from
        // history when they reconnect.
        log::debug!("message {} stored while the hub was stopping", message.id);
    }
    Ok(message)
}

/// A page of the conversation between `me` and `partner`, oldest first.
/// An unknown partner is an error rather than an empty page, so a typo in a
/// user id does not look like an empty conversation.
pub fn history(
    app: &App,
    me: UserId,
    partner: UserId,
    page: Page,
) -> Result<Vec<Message>, ChatError> {
    let messages = app.store.history(me, partner, page)?;
    // Only an empty page needs the extra lookup.
    if messages.is_empty() && app.store.user(partner)?.is_none() {
        return Err(ChatError::UnknownUser);
    }
    Ok(messages)
}
