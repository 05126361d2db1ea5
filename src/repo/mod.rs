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
//! their transaction has committed. The exceptions are the hot paths,
//! [`Store::insert_message`] and [`Store::act_on_message`] (edits,
//! deletions, reactions): they queue the write and return, so a WebSocket
//! reader can read its next frame meanwhile.
//!
//! Every write a client must learn about is a change ([`crate::changes`]):
//! once committed, the store emits it on the change sink it was opened
//! with (the hub's private-message channel), in commit order.

pub mod accounts;
pub mod expiry;
pub mod push;
pub mod reports;
mod sqlite;

pub use accounts::{Accounts, Admission, LoginPlace, NotAdmitted};
pub use expiry::Expiry;
pub use push::PushSubscriptions;
pub use reports::Reports;
pub use sqlite::{SearchIndex, SqliteStore, build_search_index, tune_writer};

use chrono::{DateTime, Utc};

#[cfg(doc)]
use crate::changes::Written;
use crossbeam_channel::Receiver;

use crate::changes::{Change, Origin, Seq};
use crate::models::{
    Attachment, Conversation, Message, MessageId, NewAttachment, NewMessage, Page, Session,
    SessionId, StoredAttachment, User, UserId, Version,
};

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
    /// This server keeps no search index (`--search off`).
    #[error("search is turned off on this server")]
    SearchOff,
    /// Anything else from the database: disk full, corruption, I/O errors.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The rules refused the write, as found inside its transaction.
    #[error("{0}")]
    Refused(Refusal),
    /// A registration the invitation rules refused (inside its
    /// transaction, so that a one-use invitation admits one account).
    #[error("{0}")]
    NotAdmitted(NotAdmitted),
}

/// Why a write about a message was refused: checked inside the writing
/// transaction, so that two actions racing each other cannot both pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such message, or not one of the user's conversations, or hidden
    /// by them: the same answer, so that nothing leaks its existence.
    #[error("no such message")]
    NoSuchMessage,
    /// Only the sender may do this.
    #[error("only the sender may do this")]
    NotTheSender,
    /// Past the edit window.
    #[error("too late: the edit window has passed")]
    EditWindowPassed,
    /// The message was deleted for everyone.
    #[error("the message was deleted")]
    Deleted,
    /// Every message has room for a few distinct emoji only.
    #[error("at most {} different reactions per message", MAX_REACTIONS)]
    TooManyReactions,
    /// `reply_to_id` is not a message of this conversation.
    #[error("reply_to_id must be a message of this conversation")]
    InvalidReply,
    /// The uploader's files would take more than their quota.
    #[error("upload quota reached")]
    QuotaExceeded,
    /// `attachment_id` is not an upload of the sender's that is unsent.
    #[error("attachment_id must be a file you uploaded and have not sent")]
    InvalidAttachment,
    /// A report is about a message one received, not one's own.
    #[error("you cannot report your own message")]
    OwnMessage,
}

/// Distinct emoji one message can carry.
pub const MAX_REACTIONS: i64 = 20;

/// Something a participant does to a stored message.
#[derive(Debug, Clone)]
pub enum MessageAction {
    /// The sender replaces the content (`window`: how long after sending;
    /// `None`, no limit).
    Edit {
        content: String,
        window: Option<std::time::Duration>,
    },
    /// For everyone (the sender, within `window`) or for me (either side).
    Delete {
        for_everyone: bool,
        window: Option<std::time::Duration>,
    },
    /// Adds (`on`) or takes back one emoji.
    React { emoji: String, on: bool },
}

impl MessageAction {
    /// The WebSocket frame that asks for it: named in its refusals.
    pub fn frame_type(&self) -> &'static str {
        match self {
            MessageAction::Edit { .. } => "edit_message",
            MessageAction::Delete { .. } => "delete_message",
            MessageAction::React { .. } => "react",
        }
    }
}

/// The outcome of a [`MessageAction`].
#[derive(Debug, Clone)]
pub struct Acted {
    /// The message after it, as the acting user sees it (for a deletion for
    /// me: as it was); read only for a caller that waits for it.
    pub message: Option<Message>,
    /// The change it made; `None` when it changed nothing (the same
    /// content, a reaction already there or already gone).
    pub seq: Option<Seq>,
}

/// The result of storing a message.
#[derive(Debug, Clone)]
pub struct Stored {
    pub message: Message,
    /// The change that stored it; `None` when the sender had already used
    /// this `client_id`: `message` is then the one stored the first time,
    /// and nothing new was stored.
    pub seq: Option<Seq>,
}

impl Stored {
    /// Whether this write stored the message (not a repeated `client_id`).
    pub fn created(&self) -> bool {
        self.seq.is_some()
    }
}

/// An action on a message, as the store takes it.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    pub user: UserId,
    pub message_id: MessageId,
    pub action: MessageAction,
    /// The time the rules (the edit window) and the change use.
    pub now: DateTime<Utc>,
}

/// Where a caller that waits for a write gets its outcome: a channel, so
/// that the answer crosses threads as a value.
pub type Reply<T> = crossbeam_channel::Sender<Result<T, StoreError>>;

/// The outcome of marking a conversation read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadMark {
    /// The conversation is now read up to this message id (0: no message).
    pub up_to_id: MessageId,
    /// How many of the partner's messages became read.
    pub marked: usize,
    /// The change that moved the watermark; `None` when nothing moved (it
    /// never moves backwards).
    pub seq: Option<Seq>,
}

/// Calls `start` with a [`Reply`] and waits for the answer sent on it: the
/// one way a caller with nothing to do meanwhile (a REST handler, a tool)
/// waits for a write. [`StoreError::Closed`] when the reply was dropped
/// unanswered (the store is shutting down).
pub fn wait_for_reply<T>(start: impl FnOnce(Reply<T>)) -> Result<T, StoreError> {
    let (reply, answer) = crossbeam_channel::bounded(1);
    start(reply);
    answer.recv().unwrap_or(Err(StoreError::Closed))
}

/// Stores a message and waits until it is committed: for callers with
/// nothing to do meanwhile (REST, tools, tests). Live delivery is the
/// change sink's business, as for every write.
pub fn insert_message_and_wait(
    store: &dyn Store,
    message: NewMessage,
) -> Result<Stored, StoreError> {
    wait_for_reply(|reply| store.insert_message(message, Origin::Request, Some(reply)))
}

/// A user and their stored password hash, for checking a login.
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
    /// An admin disabled the account: a right password still gets no
    /// session.
    pub disabled: bool,
}

/// The storage interface of the server. See the module docs for why it is a
/// trait.
pub trait Store: Accounts + Expiry + PushSubscriptions + Reports + Send + Sync {
    /// Succeeds when the database answers a trivial query (`/healthz`).
    fn ping(&self) -> Result<(), StoreError>;

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
        place: LoginPlace,
    ) -> Result<SessionId, StoreError>;
    /// The live session with this token hash and its user; `None` when the
    /// token is unknown or expired at `now`.
    fn session(&self, token_hash: &[u8], now: DateTime<Utc>)
    -> Result<Option<Session>, StoreError>;
    fn delete_session(&self, id: SessionId) -> Result<(), StoreError>;

    /// Queues a message to be stored, with both sides' conversation rows and
    /// its change, in one transaction, unless the sender already used its
    /// `client_id`; and returns. Once the transaction has committed, the
    /// change sink hears of it ([`Written`]), then `reply`, if any, gets the
    /// outcome. Waits only while the store's queue is full (back-pressure).
    fn insert_message(&self, message: NewMessage, origin: Origin, reply: Option<Reply<Stored>>);
    /// One page of the conversation between `me` and `partner`, oldest first.
    fn history(&self, me: UserId, partner: UserId, page: Page) -> Result<Vec<Message>, StoreError>;
    /// The messages of `me`'s conversations (only the one with `partner`,
    /// if given) that `query` matches (in the index's language: see
    /// [`crate::search::Query::to_index_query`]), with an id below
    /// `before`, newest first, at most `limit`; never one deleted for
    /// everyone or for `me`. [`StoreError::SearchOff`] without an index.
    fn search(
        &self,
        me: UserId,
        partner: Option<UserId>,
        query: &str,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError>;
    /// Messages sent or received by `me` with an id above `after_id`, in id
    /// order, at most `limit`; and whether more remain.
    fn sync(
        &self,
        me: UserId,
        after_id: i64,
        limit: u32,
    ) -> Result<(Vec<Message>, bool), StoreError>;
    /// The changes `me` may see with a `seq` above `since`, in `seq` order,
    /// at most `limit`; and whether more remain.
    fn changes_since(
        &self,
        me: UserId,
        since: Seq,
        limit: u32,
    ) -> Result<(Vec<(Seq, Change)>, bool), StoreError>;
    /// Marks the messages from `partner` to `me` read up to `up_to` (the
    /// newest message when `None`, or when `up_to` is beyond it), never
    /// backwards. Waits for the commit; a watermark that moved is a change,
    /// which the change sink hears of first.
    fn mark_read(
        &self,
        me: UserId,
        partner: UserId,
        up_to: Option<MessageId>,
        origin: Origin,
    ) -> Result<ReadMark, StoreError>;
    /// Queues `action` to message `id` on behalf of `user`, to be done if
    /// the rules allow (checked inside the transaction), and returns, as
    /// [`Store::insert_message`] does. Once committed, a change goes to the
    /// change sink; then `reply`, if any, gets the outcome. A refusal goes
    /// to `reply`, or, for a connection that did not ask for one, to the
    /// change sink ([`Written::Refused`]), which tells that connection.
    fn act_on_message(&self, request: ActionRequest, origin: Origin, reply: Option<Reply<Acted>>);
    /// Message `id` as `viewer` sees it now, if they may (one of their
    /// conversations, not hidden by them); `None` otherwise, whether it
    /// exists or not. A push reads it just before it goes: an edit or a
    /// deletion since it was sent counts.
    fn message(&self, viewer: UserId, id: MessageId) -> Result<Option<Message>, StoreError>;
    /// Every version of message `id` that `me` may see, oldest first (the
    /// current one last); [`Refusal::NoSuchMessage`] as for any action.
    fn versions(&self, me: UserId, id: MessageId) -> Result<Vec<Version>, StoreError>;
    /// Every (blocker, blocked) pair, to load at start.
    fn blocks(&self) -> Result<Vec<(UserId, UserId)>, StoreError>;
    /// `blocker` blocks (`on`) or unblocks `blocked`.
    fn set_block(&self, blocker: UserId, blocked: UserId, on: bool) -> Result<(), StoreError>;
    /// Users who keep how far they have read to themselves, to load at start.
    fn receipts_off(&self) -> Result<Vec<UserId>, StoreError>;
    fn set_send_read_receipts(&self, user: UserId, on: bool) -> Result<(), StoreError>;

    /// Records an upload whose bytes are stored, if the uploader's uploads
    /// with it stay within `quota` bytes (checked inside the transaction);
    /// [`Refusal::QuotaExceeded`] otherwise.
    fn insert_attachment(&self, new: NewAttachment, quota: u64) -> Result<Attachment, StoreError>;
    /// Attachment `id` and where its bytes are, if `viewer` may see it
    /// (its uploader, or a side of a conversation it was sent in); `None`
    /// whether it exists or not.
    fn attachment(&self, viewer: UserId, id: i64) -> Result<Option<StoredAttachment>, StoreError>;
    /// Removes the uploads that no message carried and that were made
    /// before `before`; returns the digests of the files they held.
    fn remove_unsent_attachments(&self, before: DateTime<Utc>) -> Result<Vec<String>, StoreError>;
    /// Whether some upload still refers to the stored file `sha256`
    /// (as its bytes or its thumbnail).
    fn file_in_use(&self, sha256: &str) -> Result<bool, StoreError>;
    /// Digests of stored files that a committed write stopped referring to
    /// (a message deleted for everyone): each may now be unused. Best
    /// effort: when nobody takes them, a periodic sweep finds them.
    fn released_files(&self) -> Receiver<String>;

    /// Unread messages to `me` over all conversations.
    fn unread_count(&self, me: UserId) -> Result<i64, StoreError>;
    /// One row per partner of `me`, newest conversation first.
    fn conversations(&self, me: UserId) -> Result<Vec<Conversation>, StoreError>;

    /// Appends the store's own numbers to `/metrics` (Prometheus text).
    fn render_metrics(&self, _out: &mut String) {}
}
