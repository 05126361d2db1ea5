//! `POST /api/login`: the password check, the back-off that guesses meet,
//! and the two cookies a login sets (the session's, and the device cookie
//! that tells the owner's browsers from strangers next time).

use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

use super::guards::{audit, client_ip, login_place};
use super::{ApiError, HttpRequest, Reply, read_json};
use crate::app::App;
use crate::auth::{self, SESSION_COOKIE};
use crate::limits::{LoginKey, address_key};

#[derive(Deserialize)]
struct LoginBody {
    identifier: String,
    password: String,
}

pub(super) fn login(app: &App, request: &HttpRequest) -> Result<Reply, ApiError> {
    let ip = client_ip(app, request);
    let too_many = |wait| ApiError::too_many("too many login attempts; wait and try again", wait);
    app.limits.logins.check(address_key(ip)).map_err(too_many)?;
    let body: LoginBody = read_json(request)?;
    let identifier = body.identifier.trim();
    let failures = &app.limits.login_failures;
    let address = LoginKey::Address(ip).key();
    failures.check(&address).map_err(too_many)?;
    let refused = |account: Option<&str>, who: &str| {
        if let Some(account) = account {
            failures.failed(account);
        }
        failures.failed(&address);
        audit(app, request, &format!("refused login: {who}"));
        ApiError::new(401, "invalid nickname, email or password")
    };
    // No account has a password outside the rules or an identifier that
    // long: refuse without a lookup or a hash of a possibly huge input.
    // This reveals nothing about which accounts exist.
    if identifier.len() > auth::MAX_IDENTIFIER_BYTES
        || auth::validate_password(&body.password).is_err()
    {
        return Err(refused(None, "malformed"));
    }
    let credentials = app.store.credentials(identifier)?;
    // Guesses back off per account for strangers, and per browser for the
    // browsers the owner already logged in from (their device cookie): a
    // stranger's guesses cannot lock the owner out of those.
    let device = credentials.as_ref().and_then(|c| {
        auth::cookie_value(request.header_values("Cookie"), auth::DEVICE_COOKIE)
            .and_then(|cookie| app.device_key.verify(cookie, c.user.id))
    });
    let account = match (&credentials, device) {
        (Some(_), Some(nonce)) => LoginKey::Device(nonce),
        (Some(c), None) => LoginKey::StrangersToAccount(c.user.id),
        (None, _) => LoginKey::StrangersToUnknownName(identifier),
    }
    .key();
    let who = match &credentials {
        Some(c) => format!("user {}", c.user.id),
        None => "unknown account".to_owned(),
    };
    failures.check(&account).map_err(too_many)?;
    let stored_hash = credentials.as_ref().map(|c| c.password_hash.as_str());
    let verified = auth::verify_password(&body.password, stored_hash);
    let Some((user, disabled)) = credentials
        .filter(|_| verified)
        .map(|c| (c.user, c.disabled))
    else {
        return Err(refused(Some(&account), &who));
    };

    failures.succeeded(&account);
    if disabled {
        audit(
            app,
            request,
            &format!("refused login: user {} is disabled", user.id),
        );
        return Err(ApiError::new(403, "this account is disabled").with_code("account_disabled"));
    }
    let (token, token_hash) = auth::new_session_token().map_err(ApiError::internal)?;
    let ttl = app.config.session_ttl;
    let expires_at = Utc::now()
        + chrono::Duration::from_std(ttl)
            .map_err(|_| ApiError::internal("session TTL too large"))?;
    app.store
        .create_session(user.id, &token_hash, expires_at, login_place(app, request))?;
    log::info!("user {} logged in", user.id);
    let device_cookie = app.device_key.issue(user.id).map_err(ApiError::internal)?;
    Ok(Reply::ok(json!({ "user": user }))
        .set_cookie(session_cookie(app, &token, ttl.as_secs()))
        .set_cookie(device_cookie_header(app, &device_cookie)))
}

/// How long a browser stays known to an account after a login.
const DEVICE_COOKIE_MAX_AGE_SECS: u64 = 365 * 24 * 3600;

/// The device cookie goes only to the login endpoint: nothing else reads it.
fn device_cookie_header(app: &App, value: &str) -> String {
    let secure = secure_attribute(app);
    format!(
        "{}={value}; HttpOnly; SameSite=Strict; Path=/api/login; Max-Age={DEVICE_COOKIE_MAX_AGE_SECS}{secure}",
        auth::DEVICE_COOKIE
    )
}

pub(super) fn session_cookie(app: &App, token: &str, max_age_secs: u64) -> String {
    let secure = secure_attribute(app);
    format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}"
    )
}

/// `; Secure` with `--secure-cookies` (served over HTTPS), for every cookie
/// a login sets.
fn secure_attribute(app: &App) -> &'static str {
    if app.config.secure_cookies {
        "; Secure"
    } else {
        ""
    }
}
