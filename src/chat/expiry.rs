//! Setting a conversation's disappearing-messages timer: the one path for
//! `PUT /api/conversations/{user_id}/expiry`.

use super::ChatError;
use crate::app::App;
use crate::changes::Seq;
use crate::models::UserId;

/// The longest timer: a year. (The shortest is `--min-expiry`, 30 s:
/// less would vanish before it is read.)
pub const MAX_SECONDS: i64 = 365 * 24 * 3600;

/// `me` sets (or, with `None`, turns off) the timer of the conversation with
/// `partner`; messages sent after it carry `expires_at`. Both sides get the
/// `expiry_changed` change.
pub fn set_expiry(
    app: &App,
    me: UserId,
    partner: UserId,
    seconds: Option<i64>,
) -> Result<Seq, ChatError> {
    let shortest = i64::try_from(app.config.min_expiry.as_secs()).unwrap_or(MAX_SECONDS);
    if let Some(s) = seconds
        && !(shortest.max(1)..=MAX_SECONDS).contains(&s)
    {
        return Err(ChatError::BadParameter(
            "seconds must be from --min-expiry (30 s) to 31536000 (a year), or null",
        ));
    }
    if partner == me {
        return Err(ChatError::ToSelf);
    }
    if app.store.user(partner)?.is_none() {
        return Err(ChatError::UnknownUser);
    }
    let seq = app.store.set_expiry(me, partner, seconds)?;
    log::info!("user {me} set the timer of a conversation to {seconds:?} s");
    Ok(seq)
}
