//! What happens to a message after it is sent: edits, deletions,
//! reactions. REST (`PATCH`/`DELETE /api/messages/{id}`, `.../reactions`)
//! and WebSocket frames (`edit_message`, `delete_message`, `react`) call
//! these, so the rules are the same both ways. Each waits for its commit;
//! the change reaches every connection it concerns through the hub first.

use chrono::Utc;

use super::{ChatError, check_content};
use crate::app::App;
use crate::changes::Origin;
use crate::models::{MessageId, User, UserId, Version};
use crate::repo::{Acted, MessageAction};

/// The sender replaces the content of message `id`, within the edit
/// window; the content follows the rules of a send.
pub fn edit(
    app: &App,
    user: &User,
    id: MessageId,
    content: String,
    origin: Origin,
) -> Result<Acted, ChatError> {
    check_content(&content)?;
    let window = app.config.edit_window();
    act(
        app,
        user,
        id,
        MessageAction::Edit { content, window },
        origin,
    )
}

/// Deletes message `id` for everyone (its sender, within the edit window)
/// or for `user` only.
pub fn delete(
    app: &App,
    user: &User,
    id: MessageId,
    for_everyone: bool,
    origin: Origin,
) -> Result<Acted, ChatError> {
    let window = app.config.edit_window();
    let action = MessageAction::Delete {
        for_everyone,
        window,
    };
    act(app, user, id, action, origin)
}

/// Adds (`on`) or takes back `user`'s reaction `emoji` to message `id`.
pub fn react(
    app: &App,
    user: &User,
    id: MessageId,
    emoji: &str,
    on: bool,
    origin: Origin,
) -> Result<Acted, ChatError> {
    if !is_one_emoji(emoji) {
        return Err(ChatError::InvalidEmoji);
    }
    let action = MessageAction::React {
        emoji: emoji.to_owned(),
        on,
    };
    act(app, user, id, action, origin)
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
) -> Result<Acted, ChatError> {
    app.limits
        .messages
        .check(user.id)
        .map_err(ChatError::RateLimited)?;
    app.store
        .act_on_message(user.id, id, action, Utc::now(), origin)
        .map_err(ChatError::from_store)
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
