//! Storage of what running a server for a group needs: who may register
//! (invitations), who administers, who is disabled, which sessions an
//! account has, and password changes and resets.
//!
//! A trait of its own, which [`super::Store`] includes, so that the
//! message store's interface stays about messages. The rules live in
//! [`crate::accounts`]; what must hold against a race (an invitation used
//! twice at once, a reset link opened twice) is checked here, inside the
//! writing transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::StoreError;
use crate::models::{
    Role, SessionId, StoredThumbnail, User, UserId, serialize_optional_timestamp,
    serialize_timestamp,
};

/// What registering needs, decided by `--registration` (see
/// [`crate::accounts::admission`]); checked inside the transaction that
/// creates the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Anyone may register.
    Anyone,
    /// Only with a valid invitation (the code given, if any).
    Invited(Option<String>),
    /// Anyone while the server has no admin; after that, as `Invited`.
    AnyoneUntilAdmin(Option<String>),
}

/// Why a registration was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NotAdmitted {
    #[error("registration needs an invitation")]
    InviteRequired,
    #[error("unknown invitation code")]
    InviteUnknown,
    #[error("this invitation has been used up")]
    InviteUsedUp,
    #[error("this invitation has expired")]
    InviteExpired,
}

impl NotAdmitted {
    /// The machine-readable `code` of the refusal.
    pub fn code(self) -> &'static str {
        match self {
            NotAdmitted::InviteRequired => "invite_required",
            NotAdmitted::InviteUnknown => "invite_unknown",
            NotAdmitted::InviteUsedUp => "invite_used_up",
            NotAdmitted::InviteExpired => "invite_expired",
        }
    }
}

/// An invitation to be stored.
#[derive(Debug, Clone)]
pub struct NewInvite {
    pub code: String,
    /// `None`: made from the shell (`chat-server admin invite`).
    pub created_by: Option<UserId>,
    pub max_uses: u32,
    pub expires_at: Option<DateTime<Utc>>,
    pub now: DateTime<Utc>,
}

/// An invitation as `GET /api/invites` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invite {
    pub code: String,
    /// Where a browser registers with it (relative to the server).
    pub url: String,
    pub created_by_id: Option<UserId>,
    pub created_by_nickname: Option<String>,
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub expires_at: Option<DateTime<Utc>>,
    pub max_uses: u32,
    pub uses: u32,
}

/// The path that opens the web client's registration with `code` filled in.
pub fn invite_url(code: &str) -> String {
    format!("/?invite={code}")
}

/// One account as an admin sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSummary {
    pub id: UserId,
    pub nickname: String,
    pub email: String,
    pub role: Role,
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    /// The last request or connection of any of its sessions (to the
    /// minute); `None` when it never logged in.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    pub last_seen_at: Option<DateTime<Utc>>,
    pub disabled: bool,
    /// Live sessions.
    pub sessions: u32,
    pub display_name: Option<String>,
}

/// One live session, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionInfo {
    pub id: SessionId,
    #[serde(serialize_with = "serialize_timestamp")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_timestamp")]
    pub last_seen_at: DateTime<Utc>,
    #[serde(serialize_with = "serialize_timestamp")]
    pub expires_at: DateTime<Utc>,
    /// The address it logged in from.
    pub address: String,
    /// The browser's `User-Agent` at login.
    pub device: String,
}

/// Numbers for the admin page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    pub users: i64,
    pub admins: i64,
    pub disabled_users: i64,
    pub live_sessions: i64,
    /// Messages ever stored (ids are never reused; deleted ones count).
    pub messages: i64,
    pub attachments: i64,
    pub attachment_bytes: i64,
    pub open_invites: i64,
    /// Bytes of the database file and its write-ahead log.
    pub database_bytes: i64,
}

/// Where a login comes from, shown in the owner's list of sessions.
#[derive(Debug, Clone, Default)]
pub struct LoginPlace {
    pub address: String,
    pub device: String,
}

/// The storage of accounts beyond creating them and logging in.
pub trait Accounts {
    /// Creates an account if `admission` allows (an invitation's use is
    /// counted in the same transaction); [`StoreError::Taken`] when the
    /// nickname or email is already used, compared case-insensitively;
    /// [`StoreError::NotAdmitted`] when the invitation does not hold. The
    /// first account of a server with no admin becomes one.
    fn create_user(
        &self,
        nickname: &str,
        email: &str,
        password_hash: &str,
        admission: Admission,
    ) -> Result<User, StoreError>;
    /// Whether some account is an admin (registration is open until one is).
    fn admin_exists(&self) -> Result<bool, StoreError>;
    /// How many accounts are admins (the last one may not go).
    fn admin_count(&self) -> Result<i64, StoreError>;
    fn user_by_nickname(&self, nickname: &str) -> Result<Option<User>, StoreError>;
    /// Every account, disabled ones too, sorted by nickname.
    fn accounts(&self) -> Result<Vec<AccountSummary>, StoreError>;
    /// `false` when there is no such user.
    fn set_role(&self, user: UserId, role: Role) -> Result<bool, StoreError>;
    /// Disables (every session of the account is deleted in the same
    /// transaction) or enables an account; `false` when there is no such
    /// user.
    fn set_disabled(
        &self,
        user: UserId,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// The disabled accounts (few), to notice ones disabled elsewhere.
    fn disabled_users(&self) -> Result<Vec<UserId>, StoreError>;

    fn create_invite(&self, invite: NewInvite) -> Result<Invite, StoreError>;
    /// The invitations made by `created_by`, or every one for `None`,
    /// newest first.
    fn invites(&self, created_by: Option<UserId>) -> Result<Vec<Invite>, StoreError>;
    /// Deletes invitation `code` if `created_by` made it (any, for `None`);
    /// whether it did.
    fn delete_invite(&self, code: &str, created_by: Option<UserId>) -> Result<bool, StoreError>;

    /// `user`'s live sessions, most recently used first.
    fn sessions_of(&self, user: UserId, now: DateTime<Utc>)
    -> Result<Vec<SessionInfo>, StoreError>;
    /// Ends `user`'s session `id`; whether it was theirs and existed.
    fn end_session(&self, user: UserId, id: SessionId) -> Result<bool, StoreError>;
    /// Ends every session of `user` but `keep`; returns how many ended.
    fn end_other_sessions(&self, user: UserId, keep: SessionId) -> Result<usize, StoreError>;
    /// Records that session `id` of `user` was used at `now`. Queued, not
    /// waited for: it only feeds "last seen".
    fn touch_session(&self, id: SessionId, user: UserId, now: DateTime<Utc>);

    /// Replaces `user`'s password hash and ends every session but `keep`
    /// (and every reset link), in one transaction.
    fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: Option<SessionId>,
    ) -> Result<(), StoreError>;
    /// Stores a reset link's token hash for `user`, replacing earlier ones.
    fn create_password_reset(
        &self,
        user: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Uses a reset link: if `token_hash` is a live one, deletes it, sets
    /// the password and ends every session of its user, in one
    /// transaction; returns the user. `None` for an unknown, used or
    /// expired link.
    fn use_password_reset(
        &self,
        token_hash: &[u8],
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, StoreError>;

    fn stats(&self, now: DateTime<Utc>) -> Result<ServerStats, StoreError>;

    /// Sets (or, with `None`, clears) `user`'s display name.
    fn set_display_name(&self, user: UserId, name: Option<&str>) -> Result<(), StoreError>;
    /// The nickname and display name of every account but `user`'s, for
    /// the confusables check.
    fn other_names(&self, user: UserId) -> Result<Vec<(String, Option<String>)>, StoreError>;
    /// Deletes for everyone up to `limit` of the messages `user` sent, one
    /// transaction, each exactly as the sender's own deletion for everyone
    /// (its changes reach the change sink, its files the file remover);
    /// returns how many. Called until it returns 0 when an account goes.
    fn delete_sent_messages(
        &self,
        user: UserId,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError>;
    /// Erases an account's personal fields (nickname, email, password,
    /// display name, picture), its sessions, reset links and invitations,
    /// and keeps
    /// its nickname from anyone else until `retired_until`. The row stays:
    /// its messages (tombstones by then) refer to it. `false` when there is
    /// no such user.
    /// Makes upload `attachment` (an image of `user`'s, unsent, with a
    /// thumbnail; [`super::Refusal::InvalidAttachment`] otherwise) their
    /// picture, or with `None` removes it. A picture replaced is removed
    /// like an unsent upload.
    fn set_avatar(&self, user: UserId, attachment: Option<i64>) -> Result<(), StoreError>;
    /// Where `user`'s picture is kept, if they have one.
    fn avatar(&self, user: UserId) -> Result<Option<StoredThumbnail>, StoreError>;
    fn erase_account(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        retired_until: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}
