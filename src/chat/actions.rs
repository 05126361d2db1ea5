//! What happens to a message after it is sent: edits, deletions,
//! reactions. REST (`PATCH`/`DELETE /api/messages/{id}`, `.../reactions`)
//! and WebSocket frames (`edit_message`, `delete_message`, `react`) call
//! these, so the rules are the same both ways.
//!
//! Like a send ([`super::send_message`]), an action is checked here (what
//! needs no database), queued for the database writer, and the function
//! returns: a WebSocket reader reads its next frame meanwhile. The writer
//! checks the rest inside its transaction; the change reaches every
//! connection it concerns through the hub, and a refusal reaches the
//! connection that asked, as `message_failed`. A REST caller waits for the
//! outcome instead ([`and_wait`]).

use chrono::Utc;

use super::{ChatError, check_content};
use crate::app::App;
use crate::changes::Origin;
use crate::models::{MessageId, User, UserId, Version};
use crate::repo::{Acted, ActionRequest, MessageAction, Reply, wait_for_reply};

/// The sender replaces the content of message `id`, within the edit
/// window; the content follows the rules of a send.
pub fn edit(
    app: &App,
    user: &User,
    id: MessageId,
    content: String,
    origin: Origin,
    reply: Option<Reply<Acted>>,
) -> Result<(), ChatError> {
    check_content(&content)?;
    let window = app.config.edit_window();
    let action = MessageAction::Edit { content, window };
    act(app, user, id, action, origin, reply)
}

/// Deletes message `id` for everyone (its sender, within the edit window)
/// or for `user` only.
pub fn delete(
    app: &App,
    user: &User,
    id: MessageId,
    for_everyone: bool,
    origin: Origin,
    reply: Option<Reply<Acted>>,
) -> Result<(), ChatError> {
    let window = app.config.edit_window();
    let action = MessageAction::Delete {
        for_everyone,
        window,
    };
    act(app, user, id, action, origin, reply)
}

/// Adds (`on`) or takes back `user`'s reaction `emoji` to message `id`.
pub fn react(
    app: &App,
    user: &User,
    id: MessageId,
    emoji: &str,
    on: bool,
    origin: Origin,
    reply: Option<Reply<Acted>>,
) -> Result<(), ChatError> {
    if !is_one_emoji(emoji) {
        return Err(ChatError::InvalidEmoji);
    }
    let action = MessageAction::React {
        emoji: emoji.to_owned(),
        on,
    };
    act(app, user, id, action, origin, reply)
}

/// Runs one of the functions above for a caller that answers only once
/// the action has committed (REST): `start` gets the reply to pass on.
pub fn and_wait(
    start: impl FnOnce(Option<Reply<Acted>>) -> Result<(), ChatError>,
) -> Result<Acted, ChatError> {
    let mut refused = None;
    let outcome = wait_for_reply(|reply| refused = start(Some(reply)).err());
    if let Some(refused) = refused {
        return Err(refused);
    }
    outcome.map_err(ChatError::from_store)
}

/// Every version of message `id`, oldest first, for either participant.
pub fn versions(app: &App, me: UserId, id: MessageId) -> Result<Vec<Version>, ChatError> {
    app.store.versions(me, id).map_err(ChatError::from_store)
}

/// Edits and reactions count against the same rate as sends: each is a
/// write that every connection of both users hears of.
fn act(
    app: &App,
    user: &User,
    id: MessageId,
    action: MessageAction,
    origin: Origin,
    reply: Option<Reply<Acted>>,
) -> Result<(), ChatError> {
    app.limits
        .messages
        .check(user.id)
        .map_err(ChatError::RateLimited)?;
    let request = ActionRequest {
        user: user.id,
        message_id: id,
        action,
        now: Utc::now(),
    };
    app.store.act_on_message(request, origin, reply);
    Ok(())
}

/// Whether `text` is exactly one emoji as Unicode lists them (emoji-test,
/// fully qualified or not): skin tones, ZWJ sequences, flags and keycaps
/// included; a lone skin-tone modifier or hair component is not one.
pub fn is_one_emoji(text: &str) -> bool {
    emojis::get(text).is_some()
}

#[cfg(test)]
mod tests {
    use super::is_one_emoji;

    #[test]
    fn one_emoji_as_unicode_defines_it() {
        for one in ["👍", "👍🏽", "❤️", "👩‍👩‍👧‍👦", "🧑🏿‍🚀", "🇫🇷", "#️⃣", "🏳️‍🌈", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]
        {
            assert!(is_one_emoji(one), "{one:?} is one emoji");
        }
        for not_one in ["", "a", "ok", "👍👍", "👍 ", "🏽", "\u{200D}", "🇫", "1"] {
            assert!(!is_one_emoji(not_one), "{not_one:?} is not one emoji");
        }
    }
}
