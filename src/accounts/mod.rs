//! Running a server for a group: who may register, invitations, admins,
//! disabled accounts, password changes and reset links.
//!
//! One function per thing an admin, a member or the operator's shell does;
//! the REST handlers (`http/account.rs`, `http/admin.rs`) and the
//! `chat-server admin` subcommands ([`crate::cli`]) call the same ones.
//! What must hold against a race is checked in the store's transactions
//! ([`crate::repo::accounts`]).
//!
//! - [`names`]: display names, and names that imitate others.
//! - [`reports`]: messages reported to the admins, and what they do.
//! - [`watch`]: notices accounts disabled by another process (the shell).

pub mod names;
pub mod reports;
pub mod watch;

use std::time::Duration;

use chrono::{DateTime, Utc};
use crossbeam_channel::Sender;

use crate::auth;
use crate::config::{Config, RegistrationMode};
use crate::models::{Role, SessionId, User, UserId};
use crate::repo::accounts::{Invite, NewInvite};
use crate::repo::{Admission, NotAdmitted, Store, StoreError};
use crate::ws::hub::{Control, HubHandle};
use crate::ws::outbound::CloseReason;

/// Accounts one invitation can create at most.
pub const MAX_INVITE_USES: u32 = 1000;
/// The longest an invitation stays valid.
pub const MAX_INVITE_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// How long an invitation stays valid when its maker does not say.
pub const DEFAULT_INVITE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a password-reset link works: long enough to hand it over by
/// another channel, short enough that a forgotten one is soon useless.
pub const RESET_LINK_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// How stale a session's "last seen" may get before a request or a
/// connection refreshes it: to the minute is what a list of sessions
/// shows, and it costs a write per session per minute at most.
pub const LAST_SEEN_PRECISION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// How long ending a session's connections may take before the answer
/// goes anyway (it takes microseconds; the bound matters only if the hub
/// is stuck).
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Why an account operation was refused, in words a client can show.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("registration is closed on this server")]
    RegistrationClosed,
    #[error("{0}")]
    NotAdmitted(NotAdmitted),
    #[error("{0}")]
    Invalid(&'static str),
    #[error("{0} is already taken")]
    Taken(&'static str),
    #[error("no such user")]
    NoSuchUser,
    #[error("only admins may do this")]
    AdminsOnly,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("this reset link is unknown, used or expired")]
    InvalidResetLink,
    #[error("display_name looks too much like {0:?}, another user's name")]
    Imitates(String),
    #[error("{0}")]
    Message(crate::repo::Refusal),
    #[error("no such report")]
    NoSuchReport,
    #[error("the last admin cannot go: make someone else an admin first")]
    LastAdmin,
    #[error("this report is already resolved")]
    AlreadyResolved,
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Hashing or the random generator failed: a server fault.
    #[error("{0}")]
    Internal(String),
}

impl AccountError {
    /// The HTTP status this refusal is answered with.
    pub fn status(&self) -> u16 {
        match self {
            AccountError::RegistrationClosed
            | AccountError::NotAdmitted(_)
            | AccountError::AdminsOnly => 403,
            AccountError::Invalid(_) | AccountError::InvalidResetLink => 400,
            AccountError::Taken(_) | AccountError::Imitates(_) => 409,
            AccountError::NoSuchUser | AccountError::NoSuchReport => 404,
            AccountError::AlreadyResolved | AccountError::LastAdmin => 409,
            AccountError::Message(crate::repo::Refusal::NoSuchMessage) => 404,
            AccountError::Message(_) => 400,
            AccountError::WrongPassword => 401,
            AccountError::Store(_) | AccountError::Internal(_) => 500,
        }
    }

    /// A machine-readable reason, where a client may act on it.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            AccountError::RegistrationClosed => Some("registration_closed"),
            AccountError::NotAdmitted(why) => Some(why.code()),
            AccountError::Imitates(_) => Some("name_imitates_another"),
            _ => None,
        }
    }
}

fn store_error(e: StoreError) -> AccountError {
    match e {
        StoreError::Taken(what) => AccountError::Taken(what),
        StoreError::NotAdmitted(why) => AccountError::NotAdmitted(why),
        other => AccountError::Store(other),
    }
}

/// What registering needs under `config` (see `--registration`).
pub fn admission(config: &Config, invite: Option<String>) -> Result<Admission, AccountError> {
    match config.registration {
        Some(RegistrationMode::Open) => Ok(Admission::Anyone),
        Some(RegistrationMode::Invite) => Ok(Admission::Invited(invite)),
        Some(RegistrationMode::Closed) => Err(AccountError::RegistrationClosed),
        None => Ok(Admission::AnyoneUntilAdmin(invite)),
    }
}

/// Which mode is in force now: `--registration`, or by default `open`
/// until an admin exists and `invite` after (what `GET /api/config` tells
/// the web client, so that it asks for a code only when one is needed).
pub fn registration_mode(
    config: &Config,
    store: &dyn Store,
) -> Result<RegistrationMode, StoreError> {
    match config.registration {
        Some(mode) => Ok(mode),
        None if store.admin_exists()? => Ok(RegistrationMode::Invite),
        None => Ok(RegistrationMode::Open),
    }
}

/// A new account, if the rules and `--registration` let it in.
pub fn register(
    store: &dyn Store,
    config: &Config,
    (nickname, email, password): (&str, &str, &str),
    invite: Option<String>,
) -> Result<User, AccountError> {
    let admission = admission(config, invite)?;
    auth::validate_registration(nickname, email, password).map_err(AccountError::Invalid)?;
    let hash = auth::hash_password(password).map_err(|e| AccountError::Internal(e.to_string()))?;
    let user = store
        .create_user(nickname, email, &hash, admission)
        .map_err(store_error)?;
    log::info!("registered user {} ({})", user.id, user.role.as_str());
    Ok(user)
}

/// Whether `user` may create invitations.
pub fn may_invite(config: &Config, user: &User) -> bool {
    user.role == Role::Admin || config.members_can_invite
}

/// A fresh invitation code: 120 random bits in 24 letters and digits
/// that read aloud without confusion (no 0/O, 1/I/L).
fn new_invite_code() -> Result<String, AccountError> {
    const ALPHABET: &[u8; 32] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZa";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| AccountError::Internal(e.to_string()))?;
    // 32 letters: each byte's low 5 bits pick one uniformly.
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect())
}

/// Creates an invitation for `uses` accounts, valid for `lifetime` from
/// `now`. `created_by` is `None` from the shell.
pub fn create_invite(
    store: &dyn Store,
    created_by: Option<UserId>,
    uses: u32,
    lifetime: Duration,
    now: DateTime<Utc>,
) -> Result<Invite, AccountError> {
    if !(1..=MAX_INVITE_USES).contains(&uses) {
        return Err(AccountError::Invalid("uses must be 1-1000"));
    }
    if lifetime.is_zero() || lifetime > MAX_INVITE_LIFETIME {
        return Err(AccountError::Invalid(
            "expires_in_seconds must be 1 second to 1 year",
        ));
    }
    let lifetime = chrono::Duration::from_std(lifetime)
        .map_err(|_| AccountError::Invalid("expires_in_seconds is too large"))?;
    let invite = store.create_invite(NewInvite {
        code: new_invite_code()?,
        created_by,
        max_uses: uses,
        expires_at: Some(now + lifetime),
        now,
    })?;
    log::info!(
        "audit: invitation for {uses} account(s) created by {}",
        created_by.map_or_else(|| "the shell".to_owned(), |id| format!("user {id}"))
    );
    Ok(invite)
}

/// Disables or enables `user`. Disabling deletes their sessions in the
/// same transaction; `hub`, when the server runs in this process, closes
/// their connections before this returns (from the shell, the server's
/// [`watch`] does it).
pub fn set_disabled(
    store: &dyn Store,
    hub: Option<&HubHandle>,
    user: UserId,
    disabled: bool,
) -> Result<(), AccountError> {
    if !store.set_disabled(user, disabled, Utc::now())? {
        return Err(AccountError::NoSuchUser);
    }
    if disabled && let Some(hub) = hub {
        close_connections(hub, user, None, CloseReason::AccountDisabled);
    }
    log::info!(
        "audit: user {user} {}",
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(())
}

/// Makes `user` an admin (or a member again).
pub fn set_role(store: &dyn Store, user: UserId, role: Role) -> Result<(), AccountError> {
    if !store.set_role(user, role)? {
        return Err(AccountError::NoSuchUser);
    }
    log::info!("audit: user {user} is now {}", role.as_str());
    Ok(())
}

/// A one-time password-reset token for `user` (earlier ones stop
/// working). The link is `/?reset=TOKEN`; the admin hands it over.
pub fn create_reset_token(store: &dyn Store, user: UserId) -> Result<String, AccountError> {
    if store.user(user)?.is_none() {
        return Err(AccountError::NoSuchUser);
    }
    let (token, hash) =
        auth::new_session_token().map_err(|e| AccountError::Internal(e.to_string()))?;
    let lifetime = chrono::Duration::from_std(RESET_LINK_LIFETIME)
        .map_err(|e| AccountError::Internal(e.to_string()))?;
    store.create_password_reset(user, &hash, Utc::now() + lifetime)?;
    log::info!("audit: password-reset link made for user {user}");
    Ok(token)
}

/// The path of the web client's page that uses a reset token.
pub fn reset_path(token: &str) -> String {
    format!("/?reset={token}")
}

/// Sets a new password with a reset token: once, while it is live. Every
/// session of the account ends.
pub fn reset_password(
    store: &dyn Store,
    hub: Option<&HubHandle>,
    token: &str,
    new_password: &str,
) -> Result<UserId, AccountError> {
    auth::validate_password(new_password).map_err(AccountError::Invalid)?;
    // Not even a lookup for a token of the wrong shape.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AccountError::InvalidResetLink);
    }
    let hash =
        auth::hash_password(new_password).map_err(|e| AccountError::Internal(e.to_string()))?;
    let user = store
        .use_password_reset(&auth::hash_token(token), &hash, Utc::now())?
        .ok_or(AccountError::InvalidResetLink)?;
    if let Some(hub) = hub {
        close_connections(hub, user, None, CloseReason::LoggedOut);
    }
    log::info!("audit: user {user} set a new password with a reset link");
    Ok(user)
}

/// Changes `user`'s password after checking the current one; every
/// session but `keep` (the one asking) ends.
pub fn change_password(
    store: &dyn Store,
    hub: &HubHandle,
    user: UserId,
    keep: SessionId,
    (current, new): (&str, &str),
) -> Result<(), AccountError> {
    auth::validate_password(new).map_err(AccountError::Invalid)?;
    let nickname = store.user(user)?.ok_or(AccountError::NoSuchUser)?.nickname;
    let credentials = store.credentials(&nickname)?;
    let stored = credentials.as_ref().map(|c| c.password_hash.as_str());
    if !auth::verify_password(current, stored) {
        return Err(AccountError::WrongPassword);
    }
    let hash = auth::hash_password(new).map_err(|e| AccountError::Internal(e.to_string()))?;
    store.set_password(user, &hash, Some(keep))?;
    close_connections(hub, user, Some(keep), CloseReason::LoggedOut);
    log::info!("audit: user {user} changed their password");
    Ok(())
}

/// Closes the connections of `session` (logged out, or ended from another
/// session) and waits, briefly, until the hub has: after that none of them
/// acts on another frame.
pub fn close_session_connections(hub: &HubHandle, session: SessionId) {
    close_and_wait(hub, &format!("session {session}"), |closed| {
        Control::CloseSession { session, closed }
    });
}

/// Closes `user`'s connections (all but session `keep`'s) and waits,
/// briefly, until the hub has: after that none of them acts on a frame.
pub fn close_connections(
    hub: &HubHandle,
    user: UserId,
    keep: Option<SessionId>,
    reason: CloseReason,
) {
    close_and_wait(hub, &format!("user {user}"), |closed| Control::CloseUser {
        user,
        keep,
        reason,
        closed,
    });
}

/// Asks the hub to close connections and waits for its word (it takes
/// microseconds; [`CLOSE_WAIT`] bounds it only if the hub is stuck).
fn close_and_wait(hub: &HubHandle, whose: &str, control: impl FnOnce(Sender<()>) -> Control) {
    let (closed, all_closed) = crossbeam_channel::bounded(1);
    if hub.control(control(closed)) && all_closed.recv_timeout(CLOSE_WAIT).is_err() {
        log::warn!("closing the connections of {whose}: the hub did not confirm in time");
    }
}

/// How long a deleted account's nickname stays unavailable to others.
pub const NICKNAME_RETIREMENT: Duration = Duration::from_secs(30 * 24 * 3600);
/// Messages deleted per transaction when an account goes: each batch holds
/// the writer briefly, so other people's messages pass in between.
const DELETION_BATCH: u32 = 500;

/// Sets `user`'s display name (`None` or blank: none), unless it imitates
/// another account's nickname or display name.
pub fn set_display_name(
    store: &dyn Store,
    user: UserId,
    wanted: &str,
) -> Result<Option<String>, AccountError> {
    let name = names::clean_display_name(wanted).map_err(AccountError::Invalid)?;
    if let Some(name) = &name {
        let others = store.other_names(user)?;
        let all = others
            .iter()
            .flat_map(|(nickname, display)| [Some(nickname.as_str()), display.as_deref()])
            .flatten();
        if let Some(imitated) = names::imitated(name, all) {
            return Err(AccountError::Imitates(imitated.to_owned()));
        }
    }
    store.set_display_name(user, name.as_deref())?;
    Ok(name)
}

/// Deletes `user`'s account: every session ends (and, with `hub`, every
/// connection closes), every message they sent is deleted for everyone,
/// in batches, exactly as they would delete it themselves (their partners
/// see it go, live or when they sync), and the account's personal fields
/// are erased. Its nickname stays unavailable to others for
/// [`NICKNAME_RETIREMENT`]. Messages others sent them stay with the others.
pub fn delete_account(
    store: &dyn Store,
    hub: Option<&HubHandle>,
    user: UserId,
) -> Result<(), AccountError> {
    // Without an admin, registration would open to anyone again (the
    // default mode), and the next stranger would administer the server.
    let admins = store.admin_count()?;
    let is_admin = store.user(user)?.is_some_and(|u| u.role == Role::Admin);
    if is_admin && admins <= 1 {
        return Err(AccountError::LastAdmin);
    }
    let now = Utc::now();
    let retirement = chrono::Duration::from_std(NICKNAME_RETIREMENT)
        .map_err(|e| AccountError::Internal(e.to_string()))?;
    // The account first: from this commit on nobody logs in to it, and no
    // new message of it can slip past the deletions that follow.
    if !store.erase_account(user, now, now + retirement)? {
        return Err(AccountError::NoSuchUser);
    }
    if let Some(hub) = hub {
        close_connections(hub, user, None, CloseReason::AccountDeleted);
    }
    let mut deleted = 0;
    loop {
        let batch = store.delete_sent_messages(user, DELETION_BATCH, now)?;
        if batch == 0 {
            break;
        }
        deleted += batch;
    }
    log::info!("audit: account {user} deleted with its {deleted} sent message(s)");
    Ok(())
}
