//! Who may ask: the checks a request passes before its handler runs (the
//! browser origin, the declared body type, the session), the client's
//! address behind a proxy, and the audit line for each refusal.

use std::net::IpAddr;

use chrono::Utc;

use super::{ApiError, HttpRequest};
use crate::app::App;
use crate::auth;
use crate::models::{Role, SessionId, User};
use crate::origin;
use crate::repo::LoginPlace;

/// Whether a state-changing request may proceed: browsers send `Origin` on
/// every POST, so a foreign one is a cross-site request forgery attempt
/// (SameSite=Lax cookies already stop most; this stops the rest).
pub(super) fn same_origin(app: &App, request: &HttpRequest) -> bool {
    request
        .header_values("Origin")
        .next()
        .is_none_or(|o| origin::is_allowed(&app.allowed_origins, o))
}

/// Whether a state-changing request's body is declared as JSON. A plain
/// HTML form can only send `application/x-www-form-urlencoded`,
/// `multipart/form-data` or `text/plain`, and cross-site requests with any
/// other type need a CORS preflight, which we never grant: so a form on
/// another site cannot post here, even from a browser that sends no
/// `Origin`. A request with neither a body nor a `Content-Type` (`curl -X
/// POST .../logout`) declares nothing and passes.
pub(super) fn json_or_empty(request: &HttpRequest) -> bool {
    let mut types = request.header_values("Content-Type");
    match (types.next(), types.next()) {
        (None, _) => request.body.is_empty() && !request.body_too_large,
        (Some(value), None) => value
            .split(';')
            .next()
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
        (Some(_), Some(_)) => false,
    }
}

/// One line in the log for each refusal an operator may want to act on
/// (a login guessed at, a limit hit, a forged origin): the client's
/// address, the method and path, and why; never a body or a cookie.
pub(super) fn audit(app: &App, request: &HttpRequest, what: &str) {
    log::warn!(
        "audit: {} {} {} from {}",
        what,
        request.method,
        request.path,
        client_ip(app, request)
    );
}

/// The client's address for per-address limits: the peer, or with
/// `--trust-proxy` and a loopback peer, the last `X-Forwarded-For` entry
/// (the address the proxy saw).
pub(super) fn client_ip(app: &App, request: &HttpRequest) -> IpAddr {
    let peer = request.peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if !(app.config.trust_proxy && peer.is_loopback()) {
        return peer;
    }
    request
        .header_values("X-Forwarded-For")
        .last()
        .and_then(|list| list.rsplit(',').next())
        .and_then(|ip| ip.trim().parse().ok())
        .unwrap_or(peer)
}

/// The session and user behind the request's cookie, or 401.
pub(super) fn authenticate(
    app: &App,
    request: &HttpRequest,
) -> Result<(SessionId, User), ApiError> {
    let token = auth::session_token_from_cookies(request.header_values("Cookie"))
        .ok_or_else(ApiError::unauthorized)?;
    let now = Utc::now();
    let session = app
        .store
        .session(&auth::hash_token(token), now)?
        .ok_or_else(ApiError::unauthorized)?;
    if now - session.last_seen_at >= crate::accounts::LAST_SEEN_PRECISION {
        app.store.touch_session(session.id, session.user.id, now);
    }
    Ok((session.id, session.user))
}

/// The same, for admins only: 403 for anyone else.
pub(super) fn authenticate_admin(
    app: &App,
    request: &HttpRequest,
) -> Result<(SessionId, User), ApiError> {
    let (session, user) = authenticate(app, request)?;
    if user.role != Role::Admin {
        audit(
            app,
            request,
            &format!("refused: user {} is not an admin", user.id),
        );
        return Err(ApiError::new(403, "only admins may do this"));
    }
    Ok((session, user))
}

/// Where a login comes from, for the owner's list of sessions: the
/// address, and the browser's `User-Agent` (cut to a length a list shows,
/// without control characters).
pub(super) fn login_place(app: &App, request: &HttpRequest) -> LoginPlace {
    const MAX_DEVICE_CHARS: usize = 200;
    let device = request
        .header_values("User-Agent")
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_DEVICE_CHARS)
        .collect();
    LoginPlace {
        address: client_ip(app, request).to_string(),
        device,
    }
}
