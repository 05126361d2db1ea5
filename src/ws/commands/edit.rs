//! `edit_message`: the sender replaces a message's content, through the
//! path REST shares ([`chat::actions::edit`]). The `message_edited` change
//! reaches both users' connections, this one included.

use crate::chat;
use crate::models::MessageId;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(
    reader: &Reader,
    message_id: MessageId,
    content: String,
    client_id: Option<String>,
) -> bool {
    let origin = super::origin(reader, client_id.clone());
    let outcome = chat::actions::edit(&reader.app, &reader.user, message_id, content, origin, None);
    super::answer_action(
        reader,
        "edit_message",
        message_id,
        client_id.as_deref(),
        outcome,
    )
}
