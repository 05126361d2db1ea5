//! The one path every message takes: check, store, hand to the hub.
//!
//! `POST /api/messages` and a WebSocket `private_message` frame both call
//! [`send_message`], so the rules, the storage and the live delivery are the
//! same whichever way a message comes in. Reading history and catching up
//! after a reconnect have single entry points too: [`history`], [`sync`].

use std::sync::atomic::Ordering;

use chrono::Utc;

use crate::app::App;
use crate::models::{Message, NewMessage, Page, User, UserId};
use crate::repo::{OnStored, StoreError, Stored};
use crate::ws::hub::{AckTo, ConnId, HubEvent};

/// Longest message, in characters (Unicode scalar values, not bytes).
pub const MAX_CONTENT_CHARS: usize = 4000;
/// Longest `client_id`, in bytes: it is an opaque tag echoed to the client.
pub const MAX_CLIENT_ID_BYTES: usize = 64;
/// Messages per sync page, unless the client asks for fewer.
pub const SYNC_DEFAULT_LIMIT: u32 = 100;
/// Most messages per sync page.
pub const SYNC_MAX_LIMIT: u32 = 500;

/// Why a send or a history request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error("content must not be empty")]
    EmptyContent,
    #[error("content must be at most {MAX_CONTENT_CHARS} characters")]
    TooLong,
    #[error("cannot send a message to yourself")]
    ToSelf,
    #[error("client_id must be 1 to {MAX_CLIENT_ID_BYTES} bytes")]
    BadClientId,
    #[error("unknown user")]
    UnknownUser,
    /// The sender is over the message rate; try again after this long.
    #[error("too many messages; slow down")]
    RateLimited(std::time::Duration),
    /// A request parameter out of range; the text says which.
    #[error("{0}")]
    BadParameter(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChatError {
    /// The machine-readable code of a WebSocket `message_failed` frame.
    pub fn code(&self) -> &'static str {
        match self {
            ChatError::EmptyContent
            | ChatError::ToSelf
            | ChatError::BadClientId
            | ChatError::BadParameter(_) => "invalid",
            ChatError::TooLong => "too_long",
            ChatError::UnknownUser => "unknown_recipient",
            ChatError::RateLimited(_) => "rate_limited",
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

/// Hears how a send ended: the stored message, or why it was refused.
/// Called exactly once: right away for a refused request, otherwise on the
/// database writer thread after the commit, once the hub has the message.
/// It must not block.
pub type OnSent = Box<dyn FnOnce(Result<Stored, ChatError>) + Send>;

/// Validates a message, queues it for storage, and returns without waiting;
/// once it is committed it goes to the hub for live delivery, then
/// `on_sent` hears the outcome. A message refused by the rules (empty, too
/// long, over the rate...) is refused here, as an `Err`, on the caller's
/// thread, and `on_sent` is not called.
///
/// `origin` is the WebSocket connection that sent it, if any: the hub sends
/// that connection its `message_delivered` / `message_failed` answer and
/// skips it when echoing to the sender's other connections.
///
/// The hand-off to the hub happens on the database writer thread right
/// after the commit, so the hub sees messages in id order, and before
/// `on_sent` runs: a caller that acknowledges the message never
/// acknowledges one that could still be lost. A repeated `client_id` stores
/// nothing and returns the original message (`Stored::created` = false);
/// the hub then only answers the sender.
pub fn send_message(
    app: &App,
    sender: &User,
    request: SendRequest,
    origin: Option<ConnId>,
    on_sent: OnSent,
) -> Result<(), ChatError> {
    let metrics = app.metrics.clone();
    let on_sent: OnSent = Box::new(move |result| {
        match &result {
            Ok(stored) if stored.created => {
                metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {}
            Err(e) => metrics.count_failure(e.code()),
        }
        on_sent(result);
    });
    if let Err(refused) = check(app, sender, &request) {
        app.metrics.count_failure(refused.code());
        return Err(refused);
    }

    let hub = app.hub.clone();
    let sender_nickname = sender.nickname.clone();
    let ack = origin.map(|conn| AckTo {
        conn,
        client_id: request.client_id.clone(),
    });
    let deliver: OnStored = Box::new(move |outcome| {
        let stored = match outcome {
            Ok(stored) => stored,
            Err(StoreError::UnknownUser) => return on_sent(Err(ChatError::UnknownUser)),
            Err(other) => return on_sent(Err(ChatError::Store(other))),
        };
        let queued = hub.send(HubEvent::Deliver {
            message: stored.message.clone(),
            sender_nickname,
            ack,
            fan_out: stored.created,
        });
        if !queued {
            // Only during shutdown. The message is stored; clients get it
            // through sync when they reconnect.
            log::debug!(
                "message {} stored while the hub was stopping",
                stored.message.id
            );
        }
        on_sent(Ok(stored));
    });
    let new = NewMessage {
        sender_id: sender.id,
        receiver_id: request.to_user_id,
        content: request.content,
        created_at: Utc::now(),
        client_id: request.client_id,
    };
    app.store.insert_message(new, deliver);
    Ok(())
}

/// [`send_message`] for a caller that answers only once the message is
/// stored (`POST /api/messages`).
pub fn send_message_and_wait(
    app: &App,
    sender: &User,
    request: SendRequest,
) -> Result<Stored, ChatError> {
    let mut refused = None;
    let outcome = crate::wait::wait_for(|on_sent| {
        refused = send_message(app, sender, request, None, on_sent).err();
    });
    match (refused, outcome) {
        (Some(refused), _) => Err(refused),
        (None, Some(outcome)) => outcome,
        (None, None) => Err(ChatError::Store(StoreError::Closed)),
    }
}

/// The rules a send must pass before it is stored.
fn check(app: &App, sender: &User, request: &SendRequest) -> Result<(), ChatError> {
    if request.to_user_id == sender.id {
        return Err(ChatError::ToSelf);
    }
    app.limits
        .messages
        .check(sender.id)
        .map_err(ChatError::RateLimited)?;
    if !request.content.chars().any(is_visible) {
        return Err(ChatError::EmptyContent);
    }
    if request.content.chars().count() > MAX_CONTENT_CHARS {
        return Err(ChatError::TooLong);
    }
    if request
        .client_id
        .as_ref()
        .is_some_and(|id| id.is_empty() || id.len() > MAX_CLIENT_ID_BYTES)
    {
        return Err(ChatError::BadClientId);
    }
    Ok(())
}

/// Whether `c` shows as something: not white space, not a control
/// character, not one of Unicode's default-ignorable code points (zero-width
/// spaces and joiners, variation selectors, the Hangul fillers, tags...), so
/// that a message cannot be made of nothing anyone can see.
fn is_visible(c: char) -> bool {
    use icu_properties::CodePointSetData;
    use icu_properties::props::DefaultIgnorableCodePoint;
    !(c.is_whitespace()
        || c.is_control()
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c))
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

/// Everything sent to or by `me` after message `after_id`, in id order, one
/// page at a time; and whether more remain. A client that remembers the
/// last id it saw catches up with this after a reconnect.
pub fn sync(
    app: &App,
    me: UserId,
    after_id: Option<i64>,
    limit: Option<i64>,
) -> Result<(Vec<Message>, bool), ChatError> {
    let after_id = match after_id {
        Some(id) if id >= 0 => id,
        Some(_) => {
            return Err(ChatError::BadParameter(
                "after_id must be 0 or a message id",
            ));
        }
        None => return Err(ChatError::BadParameter("after_id is required")),
    };
    let limit = match limit {
        None => SYNC_DEFAULT_LIMIT,
        Some(l) if (1..=i64::from(SYNC_MAX_LIMIT)).contains(&l) => l as u32,
        Some(_) => return Err(ChatError::BadParameter("limit must be between 1 and 500")),
    };
    Ok(app.store.sync(me, after_id, limit)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_made_only_of_invisible_characters_is_empty() {
        for invisible in [
            " \t\n",
            "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}",
            "\u{3164}\u{115F}\u{FE0F}\u{E0041}\u{AD}",
            "\u{00A0}\u{3000}\u{1}",
        ] {
            assert!(!invisible.chars().any(is_visible), "{invisible:?}");
        }
        for visible in ["a", "\u{200B}x", "👍🏽", "日本"] {
            assert!(visible.chars().any(is_visible), "{visible:?}");
        }
    }
}
