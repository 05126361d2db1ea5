//! The admin API, `/api/admin/...`: accounts with their last activity,
//! disabling and enabling them, roles, password-reset links, and the
//! server's numbers. Admins only; everyone else gets 403.

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::guards::authenticate_admin;
use super::handlers::path_segment;
use super::{ApiError, HttpRequest, Reply, read_json};
use crate::accounts;
use crate::app::App;
use crate::models::{Role, UserId};

/// The user id in `/api/admin/users/{id}/...`; 404 when it is none.
fn target(request: &HttpRequest) -> Result<UserId, ApiError> {
    path_segment(request, 4)?
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("no such user"))
}

/// `GET /api/admin/users`: every account, disabled ones too.
pub fn users(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    authenticate_admin(app, request)?;
    Ok(Reply::ok(json!({ "users": app.store.accounts()? })))
}

/// `POST /api/admin/users/{id}/disable`: sessions end, connections close
/// (code 4003) before the answer, logins are refused; messages stay.
pub fn disable(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, admin) = authenticate_admin(app, request)?;
    let user = target(request)?;
    if user == admin.id {
        return Err(ApiError::bad_request("an admin cannot disable themselves"));
    }
    accounts::set_disabled(&*app.store, Some(&app.hub), user, true)?;
    Ok(Reply::ok(json!({ "user_id": user, "disabled": true })))
}

/// `DELETE /api/admin/users/{id}`: the account goes, its messages become
/// tombstones (see [`accounts::delete_account`]).
pub fn delete(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, admin) = authenticate_admin(app, request)?;
    let user = target(request)?;
    if user == admin.id {
        return Err(ApiError::bad_request(
            "an admin deletes their own account with DELETE /api/me",
        ));
    }
    if app.store.user(user)?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    accounts::delete_account(&*app.store, Some(&app.hub), user)?;
    log::info!("audit: admin {} deleted account {user}", admin.id);
    Ok(Reply::ok(json!({ "user_id": user, "deleted": true })))
}

/// `POST /api/admin/users/{id}/enable`.
pub fn enable(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    authenticate_admin(app, request)?;
    let user = target(request)?;
    accounts::set_disabled(&*app.store, Some(&app.hub), user, false)?;
    Ok(Reply::ok(json!({ "user_id": user, "disabled": false })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: Role,
}

/// `PUT /api/admin/users/{id}/role {"role": "admin"}`.
pub fn set_role(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, admin) = authenticate_admin(app, request)?;
    let user = target(request)?;
    let body: RoleBody = read_json(request)?;
    if user == admin.id && body.role != Role::Admin {
        // Otherwise the last admin could leave the server without one.
        return Err(ApiError::bad_request("an admin cannot demote themselves"));
    }
    accounts::set_role(&*app.store, user, body.role)?;
    Ok(Reply::ok(json!({ "user_id": user, "role": body.role })))
}

/// `POST /api/admin/users/{id}/reset-link`: a one-time link that sets a
/// new password, valid for a day, for the admin to hand over.
pub fn reset_link(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    authenticate_admin(app, request)?;
    let user = target(request)?;
    let token = accounts::create_reset_token(&*app.store, user)?;
    let lifetime =
        chrono::Duration::from_std(accounts::RESET_LINK_LIFETIME).map_err(ApiError::internal)?;
    Ok(Reply::with_status(
        201,
        json!({
            "user_id": user,
            "token": token,
            "url": accounts::reset_path(&token),
            "expires_at": crate::models::format_timestamp(&(Utc::now() + lifetime)),
        }),
    ))
}

/// `GET /api/admin/stats`.
pub fn stats(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    authenticate_admin(app, request)?;
    let stats = app.store.stats(Utc::now())?;
    Ok(Reply::ok(json!({
        "stats": stats,
        "online_users": app.hub.online_count(),
        "registration": accounts::registration_mode(&app.config, &*app.store)?,
        "version": env!("CARGO_PKG_VERSION"),
    })))
}
