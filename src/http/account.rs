//! What a user does about their own account: change the password, use a
//! reset link, see their sessions and end them, export their data, delete
//! the account.

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::guards::authenticate;
use super::handlers::path_segment;
use super::login::session_cookie;
use super::{ApiError, HttpRequest, Reply, read_json};
use crate::accounts;
use crate::app::App;
use crate::models::SessionId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /api/me/password`: needs the current password; every other
/// session ends, this one stays.
pub fn change_password(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (session, user) = authenticate(app, request)?;
    let body: PasswordBody = read_json(request)?;
    accounts::change_password(
        &*app.store,
        &app.hub,
        user.id,
        session,
        (&body.current_password, &body.new_password),
    )?;
    Ok(Reply::ok(json!({ "ok": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetBody {
    token: String,
    new_password: String,
}

/// `POST /api/password-reset {"token", "new_password"}`: no login needed;
/// the link works once, and every session of the account ends.
pub fn reset_password(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let body: ResetBody = read_json(request)?;
    let user = accounts::reset_password(
        &*app.store,
        Some(&app.hub),
        body.token.trim(),
        &body.new_password,
    )?;
    let nickname = app.store.user(user)?.map(|u| u.nickname);
    Ok(Reply::ok(json!({ "ok": true, "nickname": nickname })))
}

/// `GET /api/sessions`: my live sessions, most recently used first; the
/// one asking has `"current": true`.
pub fn list(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (current, user) = authenticate(app, request)?;
    let sessions: Vec<_> = app
        .store
        .sessions_of(user.id, Utc::now())?
        .into_iter()
        .map(|s| {
            let mut row = json!(s);
            row["current"] = json!(s.id == current);
            row
        })
        .collect();
    Ok(Reply::ok(json!({ "sessions": sessions })))
}

/// `DELETE /api/sessions/{id}`: ends one of my sessions and closes its
/// connections; ending the current one is a logout.
pub fn end(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (current, user) = authenticate(app, request)?;
    let id: SessionId = path_segment(request, 3)?
        .parse()
        .map_err(|_| ApiError::not_found("no such session"))?;
    if !app.store.end_session(user.id, id)? {
        return Err(ApiError::not_found("no such session"));
    }
    accounts::close_session_connections(&app.hub, id);
    log::info!("user {} ended one of their sessions", user.id);
    let reply = Reply::ok(json!({ "ok": true }));
    Ok(if id == current {
        reply.set_cookie(session_cookie(app, "", 0))
    } else {
        reply
    })
}

/// `DELETE /api/sessions`: ends every session but this one.
pub fn end_others(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (current, user) = authenticate(app, request)?;
    let ended = app.store.end_other_sessions(user.id, current)?;
    accounts::close_connections(
        &app.hub,
        user.id,
        Some(current),
        crate::ws::outbound::CloseReason::LoggedOut,
    );
    log::info!("user {} ended their {ended} other session(s)", user.id);
    Ok(Reply::ok(json!({ "ended": ended })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    password: String,
}

/// `DELETE /api/me {"password"}`: the account goes (see
/// [`accounts::delete_account`]); the cookie is cleared.
pub fn delete_me(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: DeleteBody = read_json(request)?;
    let stored = app.store.credentials(&user.nickname)?;
    if !crate::auth::verify_password(
        &body.password,
        stored.as_ref().map(|c| c.password_hash.as_str()),
    ) {
        return Err(ApiError::new(401, "the password is wrong"));
    }
    accounts::delete_account(&*app.store, Some(&app.hub), user.id)?;
    Ok(Reply::ok(json!({ "ok": true })).set_cookie(session_cookie(app, "", 0)))
}

/// Messages read per query while exporting.
const EXPORT_PAGE: u32 = 500;

/// `GET /api/me/export`: my account and every message I sent or received
/// (as I see them: not those I deleted for me), oldest first, as one JSON
/// document to keep.
pub fn export(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let mut messages = Vec::new();
    let mut after = 0;
    loop {
        let (page, more) = app.store.sync(user.id, after, EXPORT_PAGE)?;
        after = page.last().map_or(after, |m| m.id);
        messages.extend(page);
        if !more {
            break;
        }
    }
    let sessions = app.store.sessions_of(user.id, Utc::now())?;
    log::info!("user {} exported their data", user.id);
    Ok(Reply::ok(json!({
        "exported_at": crate::models::format_timestamp(&Utc::now()),
        "user": super::people::me_json(app, &user),
        "sessions": sessions,
        "blocked_user_ids": app.privacy.blocked_by(user.id),
        "messages": messages,
    })))
}
