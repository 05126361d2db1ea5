//! `mark_read`: I have read a conversation up to a message. The change
//! (`messages_read`) reaches every connection of both users through the
//! hub, this one included: that is its answer. Marking that moves nothing
//! (it never goes backwards) sends nothing.

use crate::changes::Origin;
use crate::chat;
use crate::models::{MessageId, UserId};
use crate::ws::reader::Reader;

/// Waits for the commit (a few milliseconds): only this client's reading
/// pauses, and its next frame is acted on after the change went out.
pub(in crate::ws) fn apply(reader: &Reader, user_id: UserId, up_to_id: Option<MessageId>) -> bool {
    let origin = Origin::Connection {
        conn: reader.id,
        client_id: None,
    };
    match chat::mark_read(&reader.app, reader.user.id, user_id, up_to_id, origin) {
        Ok(_) => true,
        Err(e) => reader.reply_error(&e, "marking read"),
    }
}
