//! Reports over REST: `POST /api/reports` for anyone about a message they
//! received; `GET /api/admin/reports` and
//! `POST /api/admin/reports/{id}/resolve` for admins.

use serde::Deserialize;
use serde_json::json;

use super::guards::{authenticate, authenticate_admin};
use super::handlers::path_segment;
use super::{ApiError, HttpRequest, Reply, read_json};
use crate::accounts::reports;
use crate::app::App;
use crate::repo::reports::Resolution;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportBody {
    message_id: i64,
    #[serde(default)]
    reason: String,
}

/// `POST /api/reports {"message_id", "reason"?}`.
pub fn create(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: ReportBody = read_json(request)?;
    let id = reports::report(&*app.store, user.id, body.message_id, &body.reason)?;
    Ok(Reply::with_status(201, json!({ "report_id": id })))
}

/// `GET /api/admin/reports`: the open ones, oldest first, each with the
/// message in its context.
pub fn open(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    authenticate_admin(app, request)?;
    Ok(Reply::ok(json!({ "reports": app.store.open_reports()? })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveBody {
    resolution: Resolution,
}

/// `POST /api/admin/reports/{id}/resolve {"resolution": "dismissed" |
/// "message_deleted" | "sender_disabled"}`.
pub fn resolve(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, admin) = authenticate_admin(app, request)?;
    let id: i64 = path_segment(request, 4)?
        .parse()
        .map_err(|_| ApiError::not_found("no such report"))?;
    let body: ResolveBody = read_json(request)?;
    reports::resolve(&*app.store, Some(&app.hub), admin.id, id, body.resolution)?;
    Ok(Reply::ok(
        json!({ "report_id": id, "resolution": body.resolution }),
    ))
}
