//! Reports: a user tells the admins about a message they received; an
//! admin looks at it in its context and dismisses the report, deletes the
//! message for everyone (as its sender could), or disables the sender.

use chrono::Utc;

use super::{AccountError, set_disabled};
use crate::changes::Origin;
use crate::models::{MessageId, UserId};
use crate::repo::reports::Resolution;
use crate::repo::{ActionRequest, MessageAction, Store, StoreError, wait_for_reply};
use crate::ws::hub::HubHandle;

/// The longest reason a reporter may give, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// Reports message `message_id`, received by `reporter`; returns the
/// report's id (the first one's, if they reported it before).
pub fn report(
    store: &dyn Store,
    reporter: UserId,
    message_id: MessageId,
    reason: &str,
) -> Result<i64, AccountError> {
    let reason = reason.trim();
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(AccountError::Invalid(
            "reason must be at most 1000 characters",
        ));
    }
    let id = store
        .create_report(reporter, message_id, reason, Utc::now())
        .map_err(|e| match e {
            StoreError::Refused(refusal) => AccountError::Message(refusal),
            other => AccountError::Store(other),
        })?;
    log::info!("audit: user {reporter} reported message {message_id} (report {id})");
    Ok(id)
}

/// Resolves report `id` as `admin` decides: the action is taken first,
/// then the report is closed.
pub fn resolve(
    store: &dyn Store,
    hub: Option<&HubHandle>,
    admin: UserId,
    id: i64,
    resolution: Resolution,
) -> Result<(), AccountError> {
    let reported = store.reported(id)?.ok_or(AccountError::NoSuchReport)?;
    if reported.resolved {
        return Err(AccountError::AlreadyResolved);
    }
    match resolution {
        Resolution::Dismissed => {}
        Resolution::MessageDeleted => {
            // As its sender deleting it for everyone, with no time limit:
            // both sides see it go, live or when they sync.
            let request = ActionRequest {
                user: reported.sender_id,
                message_id: reported.message_id,
                action: MessageAction::Delete {
                    for_everyone: true,
                    window: None,
                },
                now: Utc::now(),
            };
            let deleted =
                wait_for_reply(|reply| store.act_on_message(request, Origin::Request, Some(reply)));
            match deleted {
                Ok(_) | Err(StoreError::Refused(crate::repo::Refusal::Deleted)) => {}
                Err(StoreError::Refused(refusal)) => return Err(AccountError::Message(refusal)),
                Err(e) => return Err(e.into()),
            }
        }
        Resolution::SenderDisabled => set_disabled(store, hub, reported.sender_id, true)?,
    }
    if !store.resolve_report(id, admin, resolution, Utc::now())? {
        return Err(AccountError::AlreadyResolved);
    }
    log::info!(
        "audit: admin {admin} resolved report {id}: {}",
        resolution.as_str()
    );
    Ok(())
}
