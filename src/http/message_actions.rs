//! What happens to a message after it is sent, over REST: edit, delete,
//! react, and the list of earlier versions. The same paths as the
//! WebSocket frames (`chat::actions`); the change reaches every connection
//! it concerns before the answer.

use serde::Deserialize;
use serde_json::json;

use super::handlers::{chat_error, path_id, path_segment};
use super::{ApiError, HttpRequest, Reply, guards::authenticate, query_text, read_json};
use crate::app::App;
use crate::changes::Origin;
use crate::chat::actions;

#[derive(Deserialize)]
struct EditBody {
    content: String,
}

/// `PATCH /api/messages/{id}` `{"content"}`: the sender, within the edit
/// window.
pub fn edit(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let id = path_id(request, 3)?;
    let body: EditBody = read_json(request)?;
    let acted = actions::and_wait(|reply| {
        actions::edit(app, &user, id, body.content, Origin::Request, reply)
    })
    .map_err(chat_error)?;
    Ok(Reply::ok(
        json!({ "message": acted.message, "seq": acted.seq }),
    ))
}

/// `DELETE /api/messages/{id}` (for everyone: the sender, within the edit
/// window) or `?for=me` (either participant).
pub fn delete(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let id = path_id(request, 3)?;
    let for_everyone = match query_text(&request.query, "for").as_deref() {
        None | Some("everyone") => true,
        Some("me") => false,
        Some(_) => return Err(ApiError::bad_request("for must be everyone or me")),
    };
    let acted = actions::and_wait(|reply| {
        actions::delete(app, &user, id, for_everyone, Origin::Request, reply)
    })
    .map_err(chat_error)?;
    Ok(Reply::ok(json!({
        "message_id": id,
        "for": if for_everyone { "everyone" } else { "me" },
        "seq": acted.seq,
    })))
}

/// `GET /api/messages/{id}/versions`: every version, oldest first, the
/// current one last; empty for a deleted message (they were erased).
pub fn versions(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let id = path_id(request, 3)?;
    let versions = actions::versions(app, user.id, id).map_err(chat_error)?;
    Ok(Reply::ok(json!({ "message_id": id, "versions": versions })))
}

/// `PUT /api/messages/{id}/reactions/{emoji}`.
pub fn react(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    set_reaction(app, request, true)
}

/// `DELETE /api/messages/{id}/reactions/{emoji}`.
pub fn unreact(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    set_reaction(app, request, false)
}

fn set_reaction(app: &App, request: &HttpRequest, on: bool) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let id = path_id(request, 3)?;
    let emoji = path_segment(request, 5)?;
    let acted = actions::and_wait(|reply| {
        actions::react(app, &user, id, &emoji, on, Origin::Request, reply)
    })
    .map_err(chat_error)?;
    Ok(Reply::ok(
        json!({ "message": acted.message, "seq": acted.seq }),
    ))
}
