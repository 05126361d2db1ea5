//! Web Push over REST: the server's public key, and each session's
//! subscriptions (`src/push/` sends the pushes).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::guards::authenticate;
use super::{ApiError, HttpRequest, Reply, read_json};
use crate::app::App;
use crate::push::endpoint;
use crate::repo::push::{Subscribed, Subscription};

/// Subscriptions one user may have: one per browser or phone they use.
pub const MAX_SUBSCRIPTIONS_PER_USER: u32 = 10;

/// `GET /api/push/vapid-public-key`: what a browser subscribes with
/// (`applicationServerKey`). Not a secret: no login needed.
pub fn vapid_public_key(app: &App, _request: &HttpRequest) -> Result<Reply, ApiError> {
    Ok(Reply::ok(json!({ "public_key": app.vapid.public_key() })))
}

/// A `PushSubscription` as browsers serialize it (`toJSON()`).
#[derive(Deserialize)]
struct SubscriptionBody {
    endpoint: String,
    keys: Keys,
    /// Browsers add it (usually null); ignored.
    #[serde(rename = "expirationTime")]
    #[allow(dead_code)]
    expiration_time: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

/// `POST /api/push/subscriptions {"endpoint", "keys": {"p256dh", "auth"}}`:
/// push to this browser while this session lasts.
pub fn subscribe(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (session, user) = authenticate(app, request)?;
    let body: SubscriptionBody = read_json(request)?;
    let subscription = check(app, body)?;
    let endpoint = subscription.endpoint.clone();
    match app.store.subscribe(
        user.id,
        session,
        subscription,
        MAX_SUBSCRIPTIONS_PER_USER,
        Utc::now(),
    )? {
        Subscribed::Stored => Ok(Reply::with_status(201, json!({ "endpoint": endpoint }))),
        Subscribed::TooMany => Err(ApiError::new(
            409,
            format!(
                "at most {MAX_SUBSCRIPTIONS_PER_USER} push subscriptions per user: remove one first"
            ),
        )),
    }
}

/// The subscription, decoded, if a push can be sent to it.
fn check(app: &App, body: SubscriptionBody) -> Result<Subscription, ApiError> {
    let allow_private = app.config.push_allow_private_endpoints;
    endpoint::check(&body.endpoint, allow_private).map_err(ApiError::bad_request)?;
    let decode = |text: &str| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok();
    let p256dh = decode(&body.keys.p256dh)
        .filter(|key| p256::PublicKey::from_sec1_bytes(key).is_ok() && key.len() == 65)
        .ok_or_else(|| {
            ApiError::bad_request("keys.p256dh must be an uncompressed P-256 public key, base64url")
        })?;
    let auth = decode(&body.keys.auth)
        .filter(|auth| auth.len() == 16)
        .ok_or_else(|| ApiError::bad_request("keys.auth must be 16 bytes, base64url"))?;
    Ok(Subscription {
        endpoint: body.endpoint,
        p256dh,
        auth,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointBody {
    endpoint: String,
}

/// `DELETE /api/push/subscriptions {"endpoint"}`: no more pushes there.
pub fn unsubscribe(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let (_, user) = authenticate(app, request)?;
    let body: EndpointBody = read_json(request)?;
    if !app.store.unsubscribe(user.id, &body.endpoint)? {
        return Err(ApiError::not_found("no such push subscription"));
    }
    Ok(Reply::ok(json!({ "ok": true })))
}
