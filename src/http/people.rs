//! What users decide about each other, over REST: blocks, and the
//! settings of `PATCH /api/me` (read receipts, display name).

use serde::Deserialize;
use serde_json::{Value, json};

use super::handlers::{chat_error, path_segment};
use super::{ApiError, HttpRequest, Reply, guards::authenticate, read_json};
use crate::accounts;
use crate::app::App;
use crate::chat::people;
use crate::models::{User, UserId};
use crate::repo::StoreError;

/// The account as `GET /api/me` shows it: the user and their settings.
pub fn me_json(app: &App, user: &User) -> Value {
    json!({
        "id": user.id,
        "nickname": user.nickname,
        "email": user.email,
        "role": user.role,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
        "send_read_receipts": app.privacy.sends_read_receipts(user.id),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsBody {
    #[serde(default)]
    send_read_receipts: Option<bool>,
    /// A string sets it, `null` or `""` clears it; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    display_name: Option<Option<String>>,
}

/// Tells a field given as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /api/me {"send_read_receipts": false}`.
pub fn update_me(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, mut user) = authenticate(app, request)?;
    let body: SettingsBody = read_json(request)?;
    if let Some(wanted) = body.display_name {
        user.display_name =
            accounts::set_display_name(&*app.store, user.id, wanted.as_deref().unwrap_or(""))?;
    }
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvatarBody {
    attachment_id: i64,
}

/// `PUT /api/me/avatar {"attachment_id"}`: an image I uploaded (and have
/// not sent) becomes my picture; the one it replaces is removed.
pub fn set_avatar(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: AvatarBody = read_json(request)?;
    app.store
        .set_avatar(user.id, Some(body.attachment_id))
        .map_err(refused_attachment)?;
    me_after_change(app, user.id)
}

/// `DELETE /api/me/avatar`: back to the initial.
pub fn remove_avatar(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    app.store.set_avatar(user.id, None)?;
    me_after_change(app, user.id)
}

fn refused_attachment(e: StoreError) -> ApiError {
    match e {
        StoreError::Refused(refusal) => {
            ApiError::bad_request("attachment_id must be an image you uploaded and have not sent")
                .with_code(crate::chat::ChatError::Refused(refusal).code())
        }
        other => other.into(),
    }
}

/// `{"user": ...}` as it is now.
fn me_after_change(app: &App, user: UserId) -> Result<Reply, ApiError> {
    let user = app
        .store
        .user(user)?
        .ok_or_else(|| ApiError::internal("the user vanished"))?;
    Ok(Reply::ok(json!({ "user": me_json(app, &user) })))
}
