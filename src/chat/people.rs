//! What users decide about each other: blocking, and whether partners
//! learn how far they have read. Stored first, then the in-memory copy
//! ([`crate::privacy`]) that the send path and the hub consult.

use super::ChatError;
use crate::app::App;
use crate::models::UserId;
use crate::ws::hub::Control;

/// `me` blocks (`on`) or unblocks `other`. From then on neither can send
/// to the other, typing does not pass, and presence is not shown.
pub fn set_block(app: &App, me: UserId, other: UserId, on: bool) -> Result<(), ChatError> {
    if other == me {
        return Err(ChatError::BadParameter("cannot block yourself"));
    }
    if app.store.user(other)?.is_none() {
        return Err(ChatError::UnknownUser);
    }
    app.store
        .set_block(me, other, on)
        .map_err(ChatError::from_store)?;
    app.privacy.set_blocked(me, other, on);
    app.hub.control(Control::BlockChanged {
        blocker: me,
        blocked: other,
        on,
    });
    Ok(())
}

/// Turns `me`'s read receipts on or off.
pub fn set_send_read_receipts(app: &App, me: UserId, on: bool) -> Result<(), ChatError> {
    app.store.set_send_read_receipts(me, on)?;
    app.privacy.set_sends_read_receipts(me, on);
    Ok(())
}
