//! The REST API of `docs/API.md`: one function per endpoint (login has its
//! own file, [`super::login`]), and the routing table that picks it, after
//! the checks of [`super::guards`]. A `GET` of a web client file is
//! answered first, from [`assets`].

use serde::{Deserialize, Serialize};
use serde_json::json;
use tiny_http::Method;

use super::guards::{audit, authenticate, client_ip, json_or_empty, same_origin};
use super::login::{login, session_cookie};
use super::{
    ApiError, HttpRequest, HttpResponse, MAX_HEAD_BYTES, Reply, assets, query_i64, read_json,
};
use super::{account, admin, attachments, invites, message_actions, people, push, reports, search};
use crate::accounts;
use crate::app::App;
use crate::auth;
use crate::changes::Origin;
use crate::chat::{self, ChatError, SendRequest};
use crate::models::{Message, Page, UserId};

type Handler = fn(&App, &HttpRequest) -> Result<Reply, ApiError>;

/// Every endpoint: method, path, handler. A `{}` segment matches any one
/// segment, which the handler reads ([`path_segment`]); a path that matches
/// a route without one is never taken for one with (`/api/messages/read`
/// is not message "read").
const ROUTES: &[(Method, &str, Handler)] = &[
    (Method::Get, "/healthz", healthz),
    (Method::Get, "/api/config", client_config),
    (Method::Post, "/api/register", register),
    (Method::Post, "/api/login", login),
    (Method::Post, "/api/logout", logout),
    (Method::Post, "/api/password-reset", account::reset_password),
    (Method::Post, "/api/me/password", account::change_password),
    (Method::Delete, "/api/me", account::delete_me),
    (Method::Get, "/api/me/export", account::export),
    (Method::Put, "/api/me/avatar", people::set_avatar),
    (Method::Delete, "/api/me/avatar", people::remove_avatar),
    (Method::Get, "/api/users/{}/avatar", attachments::avatar),
    (Method::Delete, "/api/admin/users/{}", admin::delete),
    (Method::Get, "/api/sessions", account::list),
    (Method::Delete, "/api/sessions", account::end_others),
    (Method::Delete, "/api/sessions/{}", account::end),
    (Method::Post, "/api/invites", invites::create),
    (Method::Get, "/api/invites", invites::list),
    (Method::Delete, "/api/invites/{}", invites::delete),
    (Method::Get, "/api/admin/users", admin::users),
    (Method::Post, "/api/admin/users/{}/disable", admin::disable),
    (Method::Post, "/api/admin/users/{}/enable", admin::enable),
    (Method::Put, "/api/admin/users/{}/role", admin::set_role),
    (
        Method::Post,
        "/api/admin/users/{}/reset-link",
        admin::reset_link,
    ),
    (Method::Get, "/api/admin/stats", admin::stats),
    (
        Method::Get,
        "/api/push/vapid-public-key",
        push::vapid_public_key,
    ),
    (Method::Post, "/api/push/subscriptions", push::subscribe),
    (Method::Delete, "/api/push/subscriptions", push::unsubscribe),
    (Method::Post, "/api/reports", reports::create),
    (Method::Get, "/api/admin/reports", reports::open),
    (
        Method::Post,
        "/api/admin/reports/{}/resolve",
        reports::resolve,
    ),
    (Method::Get, "/api/me", me),
    (Method::Get, "/api/users", users),
    (Method::Post, "/api/messages", send_message),
    (Method::Get, "/api/messages", history),
    (Method::Get, "/api/search", search::search),
    (Method::Post, "/api/messages/read", mark_read),
    (Method::Get, "/api/messages/unread", unread_count),
    (Method::Get, "/api/conversations", conversations),
    (Method::Put, "/api/conversations/{}/expiry", set_expiry),
    (Method::Get, "/api/sync", sync),
    (Method::Patch, "/api/me", people::update_me),
    (Method::Patch, "/api/messages/{}", message_actions::edit),
    (Method::Delete, "/api/messages/{}", message_actions::delete),
    (
        Method::Get,
        "/api/messages/{}/versions",
        message_actions::versions,
    ),
    (
        Method::Put,
        "/api/messages/{}/reactions/{}",
        message_actions::react,
    ),
    (
        Method::Delete,
        "/api/messages/{}/reactions/{}",
        message_actions::unreact,
    ),
    (Method::Get, "/api/blocks", people::blocks),
    (Method::Put, "/api/blocks/{}", people::block),
    (Method::Delete, "/api/blocks/{}", people::unblock),
    (Method::Post, super::UPLOAD_PATH, attachments::upload),
    (Method::Get, "/api/attachments/{}", attachments::download),
    (
        Method::Get,
        "/api/attachments/{}/thumbnail",
        attachments::thumbnail,
    ),
];

/// Whether `path` matches `pattern` (see [`ROUTES`]).
fn path_matches(pattern: &str, path: &str) -> bool {
    let mut segments = path.split('/');
    pattern.split('/').all(|want| {
        segments
            .next()
            .is_some_and(|got| want == "{}" || want == got)
    }) && segments.next().is_none()
}

/// Segment `index` of the request's path (0 is the empty one before the
/// first `/`), percent-decoded; 400 when it is not UTF-8.
pub fn path_segment(request: &HttpRequest, index: usize) -> Result<String, ApiError> {
    let raw = request.path.split('/').nth(index).unwrap_or("");
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| ApiError::bad_request("the path is not valid UTF-8"))
}

/// A message id from segment `index` of the path; 404 when it is none.
pub fn path_id(request: &HttpRequest, index: usize) -> Result<i64, ApiError> {
    path_segment(request, index)?
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::not_found("no such message"))
}

/// Answers one request. Every outcome, error or not, is a response with
/// a JSON body (or a web client file).
pub fn route(app: &App, request: &HttpRequest) -> HttpResponse {
    let path = request.path.as_str();
    // HEAD is GET without the body, which tiny_http leaves out.
    let method = match &request.method {
        Method::Head => &Method::Get,
        other => other,
    };

    // tiny_http refuses a longer head while reading it; this holds for
    // requests built without it too (the fuzz target).
    let header_bytes: usize = request
        .headers
        .iter()
        .map(|(name, value)| name.len() + value.len())
        .sum();
    if header_bytes > MAX_HEAD_BYTES {
        return HttpResponse::json(431, &json!({ "error": "request headers too large" }));
    }
    if request.header_values("Origin").nth(1).is_some() {
        // Which one would a check believe? Neither.
        audit(app, request, "refused: more than one Origin header");
        return HttpResponse::json(400, &json!({ "error": "more than one Origin header" }));
    }

    if *method == Method::Get
        && let Some(asset) = assets::find(path)
    {
        return HttpResponse {
            status: 200,
            headers: vec![
                ("Content-Type", asset.content_type.into()),
                (
                    "Content-Security-Policy",
                    assets::content_security_policy(&ws_url(app, request)),
                ),
                // Revalidate on every load, so an upgraded server is picked up.
                ("Cache-Control", "no-cache".into()),
                ("X-Frame-Options", "DENY".into()),
            ],
            body: asset.body.to_owned(),
            file: None,
        };
    }

    if *method == Method::Get && path == "/metrics" {
        return metrics(app, request);
    }

    let mut on_path: Vec<&(Method, &str, Handler)> =
        ROUTES.iter().filter(|(_, p, _)| *p == path).collect();
    if on_path.is_empty() {
        on_path = ROUTES
            .iter()
            .filter(|(_, p, _)| path_matches(p, path))
            .collect();
    }
    let result = match on_path.iter().find(|(m, _, _)| m == method) {
        Some(_) if *method != Method::Get && !same_origin(app, request) => {
            audit(app, request, "refused: origin not allowed");
            Err(ApiError::new(403, "origin not allowed"))
        }
        // An upload's body is the file itself, of any type.
        Some(_)
            if *method != Method::Get && path != super::UPLOAD_PATH && !json_or_empty(request) =>
        {
            audit(app, request, "refused: not application/json");
            Err(ApiError::new(
                415,
                "state-changing requests must have Content-Type: application/json",
            ))
        }
        Some((_, _, handler)) => handler(app, request),
        None if on_path.is_empty() => Err(ApiError::not_found("no such endpoint")),
        None => Err(ApiError::new(405, "method not allowed")),
    };

    match result {
        Ok(Reply { raw: Some(raw), .. }) => raw,
        Ok(reply) => {
            let response = match reply.body {
                Ok(text) => HttpResponse::json_text(reply.status, text),
                Err(e) => {
                    log::error!("{method} {path}: the answer could not be serialized: {e}");
                    return HttpResponse::json(500, &json!({ "error": "internal server error" }));
                }
            };
            reply
                .set_cookies
                .into_iter()
                .fold(response, |response, cookie| {
                    response.with_header("Set-Cookie", cookie)
                })
        }
        Err(error) => {
            if let Some(cause) = &error.cause {
                log::error!("{method} {path}: {cause}");
            }
            if error.status == 429 {
                audit(app, request, &format!("refused: {}", error.message));
            }
            let body = match error.code {
                Some(code) => json!({ "error": error.message, "code": code }),
                None => json!({ "error": error.message }),
            };
            let response = error.headers.into_iter().fold(
                HttpResponse::json(error.status, &body),
                |r, (name, value)| r.with_header(name, value),
            );
            match error.retry_after {
                Some(seconds) => response.with_header("Retry-After", seconds.to_string()),
                None => response,
            }
        }
    }
}

/// `GET /metrics`: for loopback clients (the operator's Prometheus on the
/// same box) or, with `--metrics-token`, for whoever presents it. Behind a
/// proxy with `--trust-proxy`, the forwarded address is what counts.
fn metrics(app: &App, request: &HttpRequest) -> HttpResponse {
    let allowed = match &app.config.metrics_token {
        Some(token) => request
            .header_values("Authorization")
            .next()
            .and_then(|value| value.strip_prefix("Bearer "))
            .is_some_and(|offered| auth::constant_time_eq(offered.trim(), token)),
        None => client_ip(app, request).is_loopback(),
    };
    if !allowed {
        audit(app, request, "refused: metrics");
        let status = if app.config.metrics_token.is_some() {
            401
        } else {
            403
        };
        return HttpResponse::json(status, &json!({ "error": "metrics are not public" }));
    }
    let mut text = String::new();
    app.metrics.render(&mut text, app.hub.queue_depth());
    app.store.render_metrics(&mut text);
    HttpResponse {
        status: 200,
        headers: vec![
            (
                "Content-Type",
                "text/plain; version=0.0.4; charset=utf-8".into(),
            ),
            ("Cache-Control", "no-store".into()),
        ],
        body: text,
        file: None,
    }
}

fn healthz(app: &App, _: &HttpRequest) -> Result<Reply, ApiError> {
    match app.store.ping() {
        Ok(()) => Ok(Reply::ok(json!({ "status": "ok" }))),
        Err(e) => {
            log::error!("health check: {e}");
            Err(ApiError::new(503, "database unavailable"))
        }
    }
}

/// Tells clients where the WebSocket endpoint is, and whether registering
/// needs an invitation.
fn client_config(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let registration = accounts::registration_mode(&app.config, &*app.store)?;
    Ok(Reply::ok(json!({
        "ws_url": ws_url(app, request),
        "registration": registration,
    })))
}

/// `--public-ws-url`, or else the WebSocket port on the host the client
/// used, but only a host this server is configured to be reached at (an
/// allowed origin's): the page's own host is what makes the browser send
/// the session cookie with the handshake, and a `Host` header we do not
/// know is never written into a page or its policy.
fn ws_url(app: &App, request: &HttpRequest) -> String {
    if let Some(url) = &app.config.public_ws_url {
        return url.clone();
    }
    let port = app.ws_addr.port();
    let known = |host: &&str| {
        app.allowed_origins.iter().any(|origin| {
            origin
                .split_once("://")
                .map(|(_, authority)| authority)
                .and_then(host_without_port)
                .is_some_and(|allowed| allowed.eq_ignore_ascii_case(host))
        })
    };
    let host = request
        .header_values("Host")
        .next()
        .and_then(host_without_port)
        .filter(known)
        .map_or_else(|| default_host(app), str::to_owned);
    format!("ws://{host}:{port}/ws")
}

/// The WebSocket listener's own address, or `localhost` when it listens on
/// every interface.
fn default_host(app: &App) -> String {
    match app.ws_addr.ip() {
        ip if ip.is_unspecified() => "localhost".into(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    }
}

/// `example.org:8080` → `example.org`, `[::1]:8080` → `[::1]`. `None` for
/// anything that is not a plain host name or address.
fn host_without_port(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    let plain = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
    plain.then_some(name)
}

#[derive(Deserialize)]
struct RegisterBody {
    nickname: String,
    email: String,
    password: String,
    /// An invitation code, needed with `--registration invite`.
    #[serde(default)]
    invite: Option<String>,
}

fn register(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    app.limits
        .registrations
        .check(crate::limits::address_key(client_ip(app, request)))
        .map_err(|wait| ApiError::too_many("too many registrations from this address", wait))?;
    let body: RegisterBody = read_json(request)?;
    let user = accounts::register(
        &*app.store,
        &app.config,
        (&body.nickname, &body.email, &body.password),
        body.invite,
    )
    .inspect_err(|e| {
        if e.status() == 403 {
            audit(app, request, &format!("refused registration: {e}"));
        }
    })?;
    Ok(Reply::with_status(201, json!({ "user": user })))
}

fn logout(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (session_id, user) = authenticate(app, request)?;
    app.store.delete_session(session_id)?;
    // After this answer, none of the session's sockets acts on a frame.
    accounts::close_session_connections(&app.hub, session_id);
    log::info!("user {} logged out", user.id);
    Ok(Reply::ok(json!({ "ok": true })).set_cookie(session_cookie(app, "", 0)))
}

fn me(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    Ok(Reply::ok(json!({ "user": people::me_json(app, &user) })))
}

fn users(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, me) = authenticate(app, request)?;
    let users: Vec<_> = app
        .store
        .users()?
        .into_iter()
        .map(|u| {
            json!({
                "id": u.id,
                "nickname": u.nickname,
                "display_name": u.display_name,
                "avatar_url": u.avatar_url,
                "online": seen_online(app, me.id, u.id),
            })
        })
        .collect();
    Ok(Reply::ok(json!({ "users": users })))
}

#[derive(Deserialize)]
struct SendBody {
    to_user_id: i64,
    content: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    reply_to_id: Option<i64>,
    #[serde(default)]
    attachment_id: Option<i64>,
}

fn send_message(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: SendBody = read_json(request)?;
    let send = SendRequest {
        to_user_id: body.to_user_id,
        content: body.content,
        client_id: body.client_id,
        reply_to_id: body.reply_to_id,
        attachment_id: body.attachment_id,
    };
    let stored = chat::send_message_and_wait(app, &user, send).map_err(chat_error)?;
    // 201 for a new message; 200 for a repeated client_id, which stored
    // nothing and returns the original.
    let status = if stored.created() { 201 } else { 200 };
    Ok(Reply::with_status(
        status,
        json!({ "message": stored.message }),
    ))
}

/// A refusal in HTTP words: its status, its text and its code.
pub fn chat_error(e: ChatError) -> ApiError {
    match e {
        ChatError::RateLimited(wait) => ApiError::too_many(e.to_string(), wait),
        ChatError::Store(store) => store.into(),
        refused => ApiError::new(refused.status(), refused.to_string()).with_code(refused.code()),
    }
}

fn history(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let query = request.query.as_str();
    let partner =
        query_i64(query, "user_id")?.ok_or_else(|| ApiError::bad_request("user_id is required"))?;
    let around_id = query_i64(query, "around_id")?;
    let page = Page::from_request(
        query_i64(query, "limit")?,
        query_i64(query, "offset")?,
        query_i64(query, "before_id")?,
    )
    .and_then(|page| page.around(around_id))
    .map_err(ApiError::bad_request)?;
    let messages = chat::history(&*app.store, user.id, partner, page).map_err(chat_error)?;
    Ok(Reply::ok(json!({ "messages": messages })))
}

/// `since` (a seq): every change after it. `after_id`, the older form:
/// every message after it. Exactly one of the two.
fn sync(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let query = request.query.as_str();
    let limit = query_i64(query, "limit")?;
    match (query_i64(query, "after_id")?, query_i64(query, "since")?) {
        (after_id @ Some(_), None) => {
            let (messages, has_more) =
                chat::sync(&*app.store, user.id, after_id, limit).map_err(chat_error)?;
            Ok(Reply::ok(
                json!({ "messages": messages, "has_more": has_more }),
            ))
        }
        (None, since @ Some(_)) => {
            let (changes, has_more) =
                chat::changes_since(&*app.store, user.id, since, limit).map_err(chat_error)?;
            let next_since = changes.last().map_or(since, |(seq, _)| Some(*seq));
            let changes: Vec<_> = changes
                .iter()
                .map(|(seq, change)| change.frame(*seq))
                .collect();
            Ok(Reply::ok(json!({
                "changes": changes,
                "has_more": has_more,
                "next_since": next_since,
            })))
        }
        _ => Err(ApiError::bad_request(
            "give either since (a seq) or after_id (a message id)",
        )),
    }
}

#[derive(Deserialize)]
struct MarkReadBody {
    user_id: i64,
    #[serde(default)]
    up_to_id: Option<i64>,
}

/// Same path as the WebSocket's `mark_read`: the change reaches every
/// connection of both users before this answers.
fn mark_read(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: MarkReadBody = read_json(request)?;
    let mark = chat::mark_read(app, user.id, body.user_id, body.up_to_id, Origin::Request)
        .map_err(chat_error)?;
    Ok(Reply::ok(json!({
        "marked": mark.marked,
        "reader_id": user.id,
        "partner_id": body.user_id,
        "up_to_id": mark.up_to_id,
        "seq": mark.seq,
    })))
}

fn unread_count(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let count = app.store.unread_count(user.id)?;
    Ok(Reply::ok(json!({ "unread_count": count })))
}

fn conversations(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    /// One row of the list, as the client sees it.
    #[derive(Serialize)]
    struct Row<'a> {
        user_id: UserId,
        nickname: &'a str,
        online: bool,
        last_message: &'a Message,
        unread_count: i64,
        /// I blocked this partner.
        blocked: bool,
        last_seq: i64,
        /// The disappearing-messages timer; `null`: off.
        expiry_seconds: Option<i64>,
    }
    #[derive(Serialize)]
    struct List<'a> {
        conversations: Vec<Row<'a>>,
    }
    let (_, user) = authenticate(app, request)?;
    let conversations = app.store.conversations(user.id)?;
    let rows = conversations
        .iter()
        .map(|c| Row {
            user_id: c.partner_id,
            nickname: &c.partner_nickname,
            online: seen_online(app, user.id, c.partner_id),
            last_message: &c.last_message,
            unread_count: c.unread_count,
            blocked: app.privacy.has_blocked(user.id, c.partner_id),
            last_seq: c.last_seq,
            expiry_seconds: c.expiry_seconds,
        })
        .collect();
    Ok(Reply::ok(List {
        conversations: rows,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpiryBody {
    /// `null` (or left out) turns the timer off.
    seconds: Option<i64>,
}

/// `PUT /api/conversations/{user_id}/expiry {"seconds": N | null}`.
fn set_expiry(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let partner: UserId = path_segment(request, 3)?
        .parse()
        .map_err(|_| ApiError::not_found("unknown user"))?;
    let body: ExpiryBody = read_json(request)?;
    let seq = chat::expiry::set_expiry(app, user.id, partner, body.seconds).map_err(chat_error)?;
    Ok(Reply::ok(json!({
        "by_user_id": user.id,
        "partner_id": partner,
        "seconds": body.seconds,
        "seq": seq,
    })))
}

/// Whether `viewer` sees `user` online: not while either blocked the other.
fn seen_online(app: &App, viewer: UserId, user: UserId) -> bool {
    app.hub.is_online(user) && !app.privacy.blocked_between(viewer, user)
}

#[cfg(test)]
mod tests {
    use super::host_without_port;

    #[test]
    fn hosts() {
        assert_eq!(host_without_port("example.org:8080"), Some("example.org"));
        assert_eq!(host_without_port("localhost"), Some("localhost"));
        assert_eq!(host_without_port("[::1]:8080"), Some("[::1]"));
        assert_eq!(host_without_port("evil\"host"), None);
        assert_eq!(host_without_port(""), None);
    }
}
