//! Invitations over REST: `POST /api/invites`, `GET /api/invites`,
//! `DELETE /api/invites/{code}`. Admins make and see all of them; with
//! `--members-can-invite`, members make and see their own.

use std::time::Duration;

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::guards::authenticate;
use super::handlers::path_segment;
use super::{ApiError, HttpRequest, Reply, read_json};
use crate::accounts::{self, DEFAULT_INVITE_LIFETIME};
use crate::app::App;
use crate::models::{Role, User, UserId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteBody {
    /// Accounts it can create (default 1).
    #[serde(default)]
    uses: Option<u32>,
    /// How long it stays valid (default 7 days).
    #[serde(default)]
    expires_in_seconds: Option<u64>,
}

/// Who may make invitations, and whose they see: `None` for an admin
/// (everyone's), the member's own id with `--members-can-invite`.
fn inviter(app: &App, request: &HttpRequest) -> Result<(User, Option<UserId>), ApiError> {
    let (_, user) = authenticate(app, request)?;
    if !accounts::may_invite(&app.config, &user) {
        return Err(ApiError::new(403, "only admins may invite"));
    }
    let scope = (user.role != Role::Admin).then_some(user.id);
    Ok((user, scope))
}

/// `POST /api/invites {"uses": 1, "expires_in_seconds": 604800}`.
pub fn create(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (user, _) = inviter(app, request)?;
    let body: InviteBody = if request.body.is_empty() {
        InviteBody {
            uses: None,
            expires_in_seconds: None,
        }
    } else {
        read_json(request)?
    };
    let lifetime = body
        .expires_in_seconds
        .map_or(DEFAULT_INVITE_LIFETIME, Duration::from_secs);
    let invite = accounts::create_invite(
        &*app.store,
        Some(user.id),
        body.uses.unwrap_or(1),
        lifetime,
        Utc::now(),
    )?;
    Ok(Reply::with_status(201, json!({ "invite": invite })))
}

/// `GET /api/invites`: newest first.
pub fn list(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, scope) = inviter(app, request)?;
    let invites = app.store.invites(scope)?;
    Ok(Reply::ok(json!({ "invites": invites })))
}

/// `DELETE /api/invites/{code}`: the code stops working.
pub fn delete(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (user, scope) = inviter(app, request)?;
    let code = path_segment(request, 3)?;
    if !app.store.delete_invite(&code, scope)? {
        return Err(ApiError::not_found("no such invitation"));
    }
    log::info!("audit: user {} deleted an invitation", user.id);
    Ok(Reply::ok(json!({ "ok": true })))
}
