//! What a user does about their own account: change the password, use a
//! reset link, see their sessions and end them.

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
