//! What a client's frames do, one file per kind of frame (as mini-redis has
//! one per command). Each `apply` runs on the connection's reader thread
//! with the [`Reader`](super::reader::Reader) that read the frame, and
//! returns whether the connection goes on. A new kind of frame is a variant
//! of [`ClientEvent`](super::events::ClientEvent), a file here, and one arm
//! in `Reader::on_text`.

pub(super) mod delete;
pub(super) mod edit;
pub(super) mod history;
pub(super) mod mark_read;
pub(super) mod react;
pub(super) mod search;
pub(super) mod send;
pub(super) mod sync;
pub(super) mod typing;

use crate::changes::Origin;
use crate::chat::ChatError;
use crate::models::MessageId;
use crate::ws::events::ServerEvent;
use crate::ws::reader::Reader;

/// The end of an edit, deletion or reaction, as far as the reader sees it.
/// Queued: the hub answers (the change, which comes back to this
/// connection like to every other; nothing when it changed nothing; or a
/// refusal found in the database). Refused here, before it was queued: a
/// `message_failed` frame naming the action and the message.
fn answer_action(
    reader: &Reader,
    action: &'static str,
    message_id: MessageId,
    client_id: Option<&str>,
    queued: Result<(), ChatError>,
) -> bool {
    let Err(error) = queued else {
        return true;
    };
    let retry_after_ms = match &error {
        ChatError::RateLimited(wait) => Some(wait.as_millis().try_into().unwrap_or(u64::MAX)),
        _ => None,
    };
    reader.reply(&ServerEvent::MessageFailed {
        message_id: Some(message_id),
        to_user_id: None,
        action: Some(action),
        client_id,
        error: error.code(),
        retry_after_ms,
        seq: None,
    })
}

/// Where a connection's action comes from, for the hub.
fn origin(reader: &Reader, client_id: Option<String>) -> Origin {
    Origin::Connection {
        conn: reader.id,
        client_id,
    }
}
