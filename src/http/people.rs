//! What users decide about each other, over REST: blocks, and the
//! read-receipt setting of `PATCH /api/me`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::handlers::{chat_error, path_segment};
use super::{ApiError, HttpRequest, Reply, guards::authenticate, read_json};
use crate::app::App;
use crate::chat::people;
use crate::models::User;

/// The account as `GET /api/me` shows it: the user and their settings.
pub fn me_json(app: &App, user: &User) -> Value {
    json!({
        "id": user.id,
        "nickname": user.nickname,
        "email": user.email,
        "role": user.role,
        "send_read_receipts": app.privacy.sends_read_receipts(user.id),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    send_read_receipts: Option<bool>,
}

/// `PATCH /api/me {"send_read_receipts": false}`.
pub fn update_me(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: SettingsBody = read_json(request)?;
    if let Some(on) = body.send_read_receipts {
        people::set_send_read_receipts(app, user.id, on).map_err(chat_error)?;
    }
    Ok(Reply::ok(json!({ "user": me_json(app, &user) })))
}

/// `GET /api/blocks`: the users I blocked.
pub fn blocks(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let mut blocked = Vec::new();
    for id in app.privacy.blocked_by(user.id) {
        if let Some(other) = app.store.user(id)? {
            blocked.push(json!({ "id": other.id, "nickname": other.nickname }));
        }
    }
    Ok(Reply::ok(json!({ "blocks": blocked })))
}

/// `PUT /api/blocks/{user_id}`.
pub fn block(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    set_block(app, request, true)
}

/// `DELETE /api/blocks/{user_id}`.
pub fn unblock(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    set_block(app, request, false)
}

fn set_block(app: &App, request: &HttpRequest, on: bool) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let other: i64 = path_segment(request, 3)?
        .parse()
        .map_err(|_| ApiError::not_found("unknown user"))?;
    people::set_block(app, user.id, other, on).map_err(chat_error)?;
    log::info!(
        "audit: user {} {} user {other}",
        user.id,
        if on { "blocked" } else { "unblocked" }
    );
    Ok(Reply::ok(json!({ "user_id": other, "blocked": on })))
}
