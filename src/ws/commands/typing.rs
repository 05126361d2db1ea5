//! `typing`: tell the partner I am typing, or stopped. Nothing is stored
//! and nothing is answered: the hub passes it on within its rate, or drops
//! it (`ws::typing`).

use crate::models::UserId;
use crate::ws::events::TypingState;
use crate::ws::reader::Reader;

pub(in crate::ws) fn apply(reader: &Reader, to_user_id: UserId, state: TypingState) -> bool {
    reader
        .app
        .hub
        .typing(reader.user.id, to_user_id, state == TypingState::Start);
    true
}
