//! Storage: everything the server keeps across restarts, behind one trait.
//!
//! The rest of the server talks to [`Store`], never to SQL. Today the only
//! implementation is [`SqliteStore`]; a PostgreSQL store for multi-node
//! deployments is a second implementation of the same trait, and nothing
//! outside this folder changes.
//!
//! Every method but one is a blocking call made from the thread that needs
//! the answer (an HTTP worker or a WebSocket reader), never from the hub, so
//! a slow query delays one request and nobody else. Writes return only after
//! their transaction has committed. The exception is the hot path,
//! [`Store::insert_message`]: it queues the message and calls back once it
//! is committed, so a WebSocket reader can read its next frame meanwhile.

mod sqlite;

pub use sqlite::{SqliteStore, tune_writer};

use chrono::{DateTime, Utc};

use crate::models::{Conversation, Message, NewMessage, Page, Session, SessionId, User, UserId};

/// What can go wrong in storage, in the words callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique column (nickname, email) already holds this value.
    #[error("{0} is already taken")]
    Taken(&'static str),
    /// A referenced user does not exist (e.g. the recipient of a message).
    #[error("unknown user")]
    UnknownUser,
    /// The database file belongs to a newer version of this server.
    #[error("database schema version {found} is newer than this server's {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
    /// The transaction holding this write did not commit.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store is shutting down and takes no more writes.
    #[error("the database is closed")]
    Closed,
    /// The database file or its folder could not be created privately.
    #[error("cannot prepare the database files: {0}")]
    Files(std::io::Error),
    /// The writer thread could not be started.
    #[error("cannot start the database writer: {0}")]
    Thread(#[from] std::io::Error),
    /// Anything else from the database: disk full, corruption, I/O errors.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
}

/// The result of storing a message.
#[derive(Debug, Clone)]
pub struct Stored {
    pub message: Message,
    /// `false` when the sender had already used this `client_id`: `message`
    /// is the one stored the first time, and nothing new was stored.
    pub created: bool,
}

/// Receives the outcome of [`Store::insert_message`] once its transaction
/// has committed (or failed), in commit (= id) order. The chat path hands
/// the message to the hub here, so every connection receives messages in id
/// order. It must not block: later commits wait for it.
pub type OnStored = Box<dyn FnOnce(Result<Stored, StoreError>) + Send>;

/// Stores a message and waits until it is committed: for callers with
/// nothing to do meanwhile and nobody to tell (tools, tests). The chat path
/// uses [`Store::insert_message`] directly.
pub fn insert_message_and_wait(
    store: &dyn Store,
    message: NewMessage,
) -> Result<Stored, StoreError> {
    crate::wait::wait_for(|done| store.insert_message(message, done))
        .unwrap_or(Err(StoreError::Closed))
}

/// A user and their stored password hash, for checking a login.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

/// The storage interface of the server. See the module docs for why it is a
/// trait.
pub trait Store: Send + Sync {
    /// Succeeds when the database answers a trivial query (`/healthz`).
    fn ping(&self) -> Result<(), StoreError>;

    /// Creates an account; [`StoreError::Taken`] when the nickname or email
    /// is already used, compared case-insensitively.
    fn create_user(
        &self,
        nickname: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<User, StoreError>;
    /// Finds an account by nickname or email, for login.
    fn credentials(&self, identifier: &str) -> Result<Option<Credentials>, StoreError>;
    fn user(&self, id: UserId) -> Result<Option<User>, StoreError>;
    /// Every account, sorted by nickname (case-insensitive).
    fn users(&self) -> Result<Vec<User>, StoreError>;

    /// Stores a new session under the hash of its token.
    fn create_session(
        &self,
        user_id: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<SessionId, StoreError>;
    /// The live session with this token hash and its user; `None` when the
    /// token is unknown or expired at `now`.
    fn session(&self, token_hash: &[u8], now: DateTime<Utc>)
    -> Result<Option<Session>, StoreError>;
    fn delete_session(&self, id: SessionId) -> Result<(), StoreError>;

    /// Queues a message to be stored, with both sides' conversation rows, in
    /// one transaction, unless the sender already used its `client_id`; and
    /// returns. `done` gets the outcome once the transaction has committed.
    /// Waits only while the store's queue is full (back-pressure).
    fn insert_message(&self, message: NewMessage, done: OnStored);
    /// One page of the conversation between `me` and `partner`, oldest first.
    fn history(&self, me: UserId, partner: UserId, page: Page) -> Result<Vec<Message>, StoreError>;
    /// Messages sent or received by `me` with an id above `after_id`, in id
    /// order, at most `limit`; and whether more remain.
    fn sync(
        &self,
        me: UserId,
        after_id: i64,
        limit: u32,
    ) -> Result<(Vec<Message>, bool), StoreError>;
    /// Marks every message from `partner` to `me` as read; returns how many
    /// changed.
    fn mark_read(&self, me: UserId, partner: UserId) -> Result<usize, StoreError>;
    /// Unread messages to `me` over all conversations.
    fn unread_count(&self, me: UserId) -> Result<i64, StoreError>;
    /// One row per partner of `me`, newest conversation first.
    fn conversations(&self, me: UserId) -> Result<Vec<Conversation>, StoreError>;

    /// Appends the store's own numbers to `/metrics` (Prometheus text).
    fn render_metrics(&self, _out: &mut String) {}
}
