//! `delete_message`: for everyone (the sender) or for me, through the path
//! REST shares ([`chat::actions::delete`]). The `message_deleted` change
//! reaches both users' connections, or only mine for a deletion for me.

use crate::chat;
use crate::models::MessageId;
use crate::ws::events::DeleteFor;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(
    reader: &Reader,
    message_id: MessageId,
    deleted_for: DeleteFor,
    client_id: Option<String>,
) -> bool {
    let origin = super::origin(reader, client_id.clone());
    let for_everyone = deleted_for == DeleteFor::Everyone;
    let outcome = chat::actions::delete(
        &reader.app,
        &reader.user,
        message_id,
        for_everyone,
        origin,
        None,
    );
    super::answer_action(
        reader,
        "delete_message",
        message_id,
        client_id.as_deref(),
        outcome,
    )
}
