//! The one path every message takes: check, store, hand to the hub.
//!
//! `POST /api/messages` and a WebSocket `private_message` frame both call
//! [`send_message`], so the rules, the storage and the live delivery are the
//! same whichever way a message comes in. Reading history and catching up
//! after a reconnect have single entry points too: [`history`], [`sync`].
//! What happens to a message after it is sent is in [`actions`] (edit,
//! delete, react), what users decide about each other in [`people`]
//! (block, read receipts), and finding old messages in [`search`].

pub mod actions;
pub mod expiry;
pub mod people;
pub mod search;

use chrono::Utc;

use crate::app::App;
use crate::changes::{Change, Origin, Seq};
use crate::models::{Message, MessageId, NewMessage, Page, User, UserId};
use crate::repo::{ReadMark, Refusal, Reply, Store, StoreError, Stored, wait_for_reply};

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
    /// The recipient blocked the sender, or the sender the recipient; the
    /// words do not say which.
    #[error("the recipient is unavailable")]
    RecipientUnavailable,
    /// A reaction that is not exactly one emoji.
    #[error("emoji must be exactly one emoji")]
    InvalidEmoji,
    /// A search query that cannot be searched for; the text says why.
    #[error("{0}")]
    BadQuery(crate::search::QueryError),
    /// The server keeps no search index (`--search off`).
    #[error("search is turned off on this server")]
    SearchOff,
    /// The rules refused an action on a message (see [`Refusal`]).
    #[error(transparent)]
    Refused(Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ChatError {
    /// A storage failure in the words of a send: an unknown recipient is the
    /// client's mistake, anything else the server's.
    pub fn from_store(error: StoreError) -> ChatError {
        match error {
            StoreError::UnknownUser => ChatError::UnknownUser,
            StoreError::Refused(refusal) => ChatError::Refused(refusal),
            other => ChatError::Store(other),
        }
    }

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
            ChatError::RecipientUnavailable => "recipient_unavailable",
            ChatError::InvalidEmoji => "invalid_emoji",
            ChatError::BadQuery(_) => "invalid_query",
            ChatError::SearchOff => "search_off",
            ChatError::Refused(refusal) => match refusal {
                Refusal::NoSuchMessage => "not_found",
                Refusal::NotTheSender => "not_the_sender",
                Refusal::EditWindowPassed => "edit_window_passed",
                Refusal::Deleted => "deleted",
                Refusal::TooManyReactions => "too_many_reactions",
                Refusal::InvalidReply => "invalid_reply",
                Refusal::QuotaExceeded => "quota_exceeded",
                Refusal::InvalidAttachment => "invalid_attachment",
                Refusal::OwnMessage => "own_message",
            },
            ChatError::Store(_) => "internal_error",
        }
    }

    /// The HTTP status of this refusal.
    pub fn status(&self) -> u16 {
        match self {
            ChatError::UnknownUser | ChatError::Refused(Refusal::NoSuchMessage) => 404,
            ChatError::RateLimited(_) => 429,
            ChatError::RecipientUnavailable
            | ChatError::Refused(Refusal::NotTheSender | Refusal::EditWindowPassed) => 403,
            ChatError::Refused(Refusal::Deleted | Refusal::TooManyReactions) => 409,
            ChatError::Refused(Refusal::QuotaExceeded) => 413,
            ChatError::SearchOff => 503,
            ChatError::Store(_) => 500,
            _ => 400,
        }
    }
}

/// A send as a client asked for it.
pub struct SendRequest {
    pub to_user_id: UserId,
    pub content: String,
    pub client_id: Option<String>,
    /// The message of this conversation that this one answers.
    pub reply_to_id: Option<MessageId>,
    /// A file the sender uploaded, sent with this message (whose content
    /// is then a caption, and may be empty).
    pub attachment_id: Option<i64>,
}

/// Validates a message and queues it for storage; returns without waiting.
/// A message refused by the rules (empty, too long, over the rate...) is
/// refused here, as an `Err`, on the caller's thread, and nothing is queued.
///
/// Once it is committed, the database writer hands the change to the hub
/// (`changes::Written`), which delivers it live and answers `origin` when
/// that is a WebSocket connection (`message_delivered` / `message_failed`),
/// in commit order: the order in which every connection receives messages.
/// Then `reply`, if given, gets the outcome. A repeated `client_id` stores
/// nothing and returns the original message (`Stored::seq` = `None`); the
/// hub then only answers the sender.
pub fn send_message(
    app: &App,
    sender: &User,
    request: SendRequest,
    origin: Origin,
    reply: Option<Reply<Stored>>,
) -> Result<(), ChatError> {
    if let Err(refused) = check(app, sender, &request) {
        app.metrics.count_failure(refused.code());
        return Err(refused);
    }
    let new = NewMessage {
        sender_id: sender.id,
        receiver_id: request.to_user_id,
        content: request.content,
        created_at: Utc::now(),
        client_id: request.client_id,
        sender_nickname: sender.nickname.clone(),
        reply_to_id: request.reply_to_id,
        attachment_id: request.attachment_id,
    };
    app.store.insert_message(new, origin, reply);
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
    let outcome = wait_for_reply(|reply| {
        refused = send_message(app, sender, request, Origin::Request, Some(reply)).err();
    });
    if let Some(refused) = refused {
        return Err(refused); // counted by send_message
    }
    let outcome = outcome.map_err(ChatError::from_store);
    if let Err(e) = &outcome {
        app.metrics.count_failure(e.code());
    }
    outcome
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
    match request.attachment_id {
        // A file's caption may be empty, not longer than a message.
        Some(_) if request.content.chars().count() > MAX_CONTENT_CHARS => {
            return Err(ChatError::TooLong);
        }
        Some(id) if id < 1 => return Err(ChatError::Refused(Refusal::InvalidAttachment)),
        Some(_) => {}
        None => check_content(&request.content)?,
    }
    if app.privacy.blocked_between(sender.id, request.to_user_id) {
        return Err(ChatError::RecipientUnavailable);
    }
    if request.reply_to_id.is_some_and(|id| id < 1) {
        return Err(ChatError::Refused(Refusal::InvalidReply));
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

/// The rules every content follows, sent or edited.
fn check_content(content: &str) -> Result<(), ChatError> {
    if !content.chars().any(is_visible) {
        return Err(ChatError::EmptyContent);
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(ChatError::TooLong);
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
    store: &dyn Store,
    me: UserId,
    partner: UserId,
    page: Page,
) -> Result<Vec<Message>, ChatError> {
    let messages = store.history(me, partner, page)?;
    // Only an empty page needs the extra lookup.
    if messages.is_empty() && store.user(partner)?.is_none() {
        return Err(ChatError::UnknownUser);
    }
    Ok(messages)
}

/// Everything sent to or by `me` after message `after_id`, in id order, one
/// page at a time; and whether more remain. A client that remembers the
/// last id it saw catches up with this after a reconnect.
pub fn sync(
    store: &dyn Store,
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
    let limit = sync_limit(limit)?;
    Ok(store.sync(me, after_id, limit)?)
}

/// Every change visible to `me` with a `seq` above `since`, in `seq` order,
/// one page at a time; and whether more remain. A client that remembers the
/// last `seq` it saw catches up with this on every kind of change.
pub fn changes_since(
    store: &dyn Store,
    me: UserId,
    since: Option<i64>,
    limit: Option<i64>,
) -> Result<(Vec<(Seq, Change)>, bool), ChatError> {
    let since = match since {
        Some(seq) if seq >= 0 => seq,
        Some(_) => return Err(ChatError::BadParameter("since must be 0 or a seq")),
        None => return Err(ChatError::BadParameter("since is required")),
    };
    let limit = sync_limit(limit)?;
    Ok(store.changes_since(me, since, limit)?)
}

/// Marks the messages of `partner` to `me` read up to `up_to` (default: the
/// newest). The change reaches every connection of both users through the
/// hub before this returns.
pub fn mark_read(
    app: &App,
    me: UserId,
    partner: UserId,
    up_to: Option<MessageId>,
    origin: Origin,
) -> Result<ReadMark, ChatError> {
    if up_to.is_some_and(|id| id < 1) {
        return Err(ChatError::BadParameter("up_to_id must be a message id"));
    }
    Ok(app.store.mark_read(me, partner, up_to, origin)?)
}

fn sync_limit(limit: Option<i64>) -> Result<u32, ChatError> {
    match limit {
        None => Ok(SYNC_DEFAULT_LIMIT),
        Some(l) if (1..=i64::from(SYNC_MAX_LIMIT)).contains(&l) => Ok(l as u32),
        Some(_) => Err(ChatError::BadParameter("limit must be between 1 and 500")),
    }
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
