//! `private_message`: store a message and deliver it, through the one send
//! path that REST shares ([`chat::send_message`]).

use tungstenite::Utf8Bytes;

use crate::changes::Origin;
use crate::chat::{self, SendRequest};
use crate::models::UserId;
use crate::ws::events::ServerEvent;
use crate::ws::outbound::Outbound;
use crate::ws::reader::Reader;

/// Returns at once: the next frame is read while this one is stored. The
/// hub answers a stored message, or one the database writer could not
/// store, with `message_delivered` / `message_failed`; a send refused by
/// the rules is answered here.
pub(in crate::ws) fn apply(reader: &Reader, request: SendRequest) -> bool {
    let (to_user_id, client_id) = (request.to_user_id, request.client_id.clone());
    let origin = Origin::Connection {
        conn: reader.id,
        client_id: client_id.clone(),
    };
    match chat::send_message(&reader.app, &reader.user, request, origin, None) {
        Ok(()) => true,
        Err(refused) => {
            if let chat::ChatError::RateLimited(_) = refused {
                log::warn!(
                    "audit: refused: message rate, user {} on connection {}",
                    reader.user.id,
                    reader.id
                );
            }
            reader.queue(Outbound::Frame(refused_send(
                to_user_id,
                client_id.as_deref(),
                &refused,
            )))
        }
    }
}

/// The `message_failed` answer to a send that was refused before or while
/// storing it.
fn refused_send(
    to_user_id: UserId,
    client_id: Option<&str>,
    refused: &chat::ChatError,
) -> Utf8Bytes {
    let retry_after_ms = match refused {
        chat::ChatError::RateLimited(wait) => {
            Some(wait.as_millis().try_into().unwrap_or(u64::MAX).max(1))
        }
        _ => None,
    };
    ServerEvent::MessageFailed {
        message_id: None,
        to_user_id: Some(to_user_id),
        action: None,
        client_id,
        error: refused.code(),
        retry_after_ms,
        seq: None,
    }
    .to_frame()
}
