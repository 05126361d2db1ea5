//! `react`: add or take back an emoji reaction, through the path REST
//! shares ([`chat::actions::react`]). The `reaction` change reaches both
//! users' connections, this one included.

use crate::chat;
use crate::models::MessageId;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(
    reader: &Reader,
    message_id: MessageId,
    emoji: &str,
    on: bool,
    client_id: Option<String>,
) -> bool {
    let origin = super::origin(reader, client_id.clone());
    let outcome = chat::actions::react(
        &reader.app,
        &reader.user,
        message_id,
        emoji,
        on,
        origin,
        None,
    );
    super::answer_action(reader, "react", message_id, client_id.as_deref(), outcome)
}
