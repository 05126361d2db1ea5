//! [`Store`] on one SQLite file in WAL mode.
//!
//! SQLite allows one writer and many readers at a time, and so do we: every
//! write goes to the [`writer`] thread, which commits them in groups, and
//! reads take a connection from a small pool, so history queries never wait
//! for a commit.
//!
//! - [`schema`]: creating and upgrading the file.
//! - [`sql`]: every statement, by name.
//! - [`writer`]: the group-commit writer thread.
//! - [`checkpointer`]: copies the WAL into the database off the writer's path.
//! - [`actions`]: edits, deletions, reactions, blocks: writes about
//!   messages and people that are checked inside their transaction.
//! - [`accounts`]: invitations, roles, disabled accounts, sessions and
//!   passwords.
//! - [`reports`]: messages reported to the admins.
//! - [`expiry`]: disappearing messages, and deleting many for everyone.
//! - [`search_index`]: the full-text index of messages, in a file of its own.
//! - [`indexer`]: the thread that keeps it in step with the messages.

mod accounts;
mod actions;
pub mod checkpointer;
mod expiry;
mod indexer;
mod private_files;
mod push;
mod reports;
mod schema;
mod search_index;
mod sql;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row};

use super::{
    Acted, ActionRequest, Credentials, LoginPlace, ReadMark, Reply, Store, StoreError, Stored,
};
use crate::changes::{Change, ChangeSink, Committed, Origin, Seq, Written};
use crate::config::Durability;
use crate::metrics::{render_counter, render_gauge};
use crate::models::{
    Attachment, Conversation, Cursor, Message, MessageId, NewAttachment, NewMessage, Page,
    Reaction, ReplyTo, Role, Session, SessionId, StoredAttachment, StoredThumbnail, User, UserId,
    Version, attachment_url, thumbnail_url,
};
use checkpointer::Checkpointer;
use crossbeam_channel::{Receiver, Sender};
use indexer::Indexer;
pub use indexer::build as build_search_index;
pub use search_index::SearchIndex;
use writer::Writer;

/// How long a connection waits for a lock held by another process (a backup
/// tool, the sqlite3 shell) before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections open at most. Reads are short and CPU-bound, so a few
/// connections serve any number of callers; beyond them callers queue. A
/// bound matters: each connection holds three files and its own page cache,
/// and a connect storm of 10,000 WebSockets (each looking up its session at
/// once) opened thousands and ran out of file descriptors.
const MAX_READERS: usize = 8;
/// How long a search waits for the index to catch up with the changes
/// committed before it was asked (normally one indexer round): past this,
/// it answers from the index as it is.
const SEARCH_WAIT: Duration = Duration::from_secs(1);

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Writer,
    /// Where committed changes go (the hub's private-message channel).
    changes: ChangeSink,
    readers: ReaderPool,
    checkpointer: Checkpointer,
    /// Digests of files a committed write stopped referring to, for
    /// whoever removes unused files (see [`Store::released_files`]).
    released: (Sender<String>, Receiver<String>),
    /// The thread keeping the search index, if there is one (`--search`).
    /// Dropped after the writer: it takes out what the last writes
    /// deleted, then stops.
    indexer: Option<Indexer>,
}

/// Released digests held for the file remover; when it falls this far
/// behind, the rest are left to its periodic sweep.
const RELEASED_QUEUE: usize = 1024;

/// The read connections: opened on demand, at most [`MAX_READERS`], kept.
struct ReaderPool {
    path: PathBuf,
    /// Whether connections attach the search index's file.
    searchable: bool,
    state: Mutex<PoolState>,
    /// Signalled when a connection is returned.
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Connection>,
    open: usize,
}

/// A borrowed read connection; goes back to the pool when dropped, also
/// when the query panicked, so the pool never shrinks by accident.
struct PooledReader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl ReaderPool {
    fn new(path: &Path, searchable: bool) -> ReaderPool {
        ReaderPool {
            path: path.to_owned(),
            searchable,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        }
    }

    /// An idle connection, a new one while fewer than [`MAX_READERS`] are
    /// open, or else the next one returned.
    fn get(&self) -> Result<PooledReader<'_>, StoreError> {
        let mut state = lock(&self.state);
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(PooledReader {
                    pool: self,
                    conn: Some(conn),
                });
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                return match self.open() {
                    Ok(conn) => Ok(PooledReader {
                        pool: self,
                        conn: Some(conn),
                    }),
                    Err(e) => {
                        lock(&self.state).open -= 1;
                        self.returned.notify_one();
                        Err(e.into())
                    }
                };
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = open_connection(&self.path)?;
        if self.searchable {
            search_index::attach(&conn, &self.path)?;
        }
        Ok(conn)
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            lock(&self.pool.state).idle.push(conn);
            self.pool.returned.notify_one();
        }
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, brings its schema to
    /// [`schema::SCHEMA_VERSION`] and starts the writer thread. Committed
    /// changes go to `changes`, in commit order.
    pub fn open(
        path: &Path,
        durability: Durability,
        changes: ChangeSink,
    ) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, durability, changes, SearchIndex::On)
    }

    /// The same, with the search index as `search` says (built, dropped, or
    /// left as it is for a tool opening the file beside the server).
    pub fn open_with(
        path: &Path,
        durability: Durability,
        changes: ChangeSink,
        search: SearchIndex,
    ) -> Result<SqliteStore, StoreError> {
        private_files::prepare(path).map_err(StoreError::Files)?;
        let mut conn = open_connection(path)?;
        // WAL lets readers run while a write commits; it is a property of the
        // file, so setting it once is enough.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("SQLite refused WAL mode (got {mode}); reads will wait for writes");
        }
        // In WAL mode, NORMAL makes a commit survive a crash of the process
        // (the WAL is written before the commit returns); FULL also fsyncs
        // it, so the commit survives a power loss.
        let synchronous = match durability {
            Durability::Normal => "NORMAL",
            Durability::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
        tune_writer(&conn)?;
        schema::migrate(&mut conn)?;
        let searchable = search_index::ensure(&mut conn, path, search)?;
        Ok(SqliteStore {
            writer: Writer::spawn(conn)?,
            changes,
            readers: ReaderPool::new(path, searchable),
            checkpointer: Checkpointer::spawn(path)?,
            released: crossbeam_channel::bounded(RELEASED_QUEUE),
            indexer: searchable.then(|| Indexer::spawn(path)).transpose()?,
        })
    }

    /// Bytes of the database file and its write-ahead log.
    fn database_bytes(&self) -> u64 {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        let mut wal = self.readers.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.readers.path) + size(Path::new(&wal))
    }

    /// How many transactions and writes the writer has committed.
    pub fn writer_stats(&self) -> &writer::WriterStats {
        self.writer.stats()
    }

    fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.writer.write(work)
    }

    /// Runs a write that may log a change, and waits for its commit; the
    /// change goes to the change sink before the caller hears of it, so
    /// that the hub has it by the time the caller answers anyone.
    fn write_change<T: Send + 'static>(
        &self,
        origin: Origin,
        work: impl FnOnce(&Connection) -> Result<(T, Option<(Seq, Change)>), StoreError>
        + Send
        + 'static,
    ) -> Result<T, StoreError> {
        let changes = self.changes.clone();
        super::wait_for_reply(|reply| {
            self.writer.submit(work, move |outcome| {
                let outcome = outcome.map(|(value, change)| {
                    emit_change(&changes, change, origin);
                    value
                });
                let _ = reply.send(outcome);
            })
        })
    }

    /// The newest change's `seq`.
    fn latest_seq(&self) -> Result<Seq, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::LATEST_SEQ)?
                .query_row([], |row| row.get(0))
        })
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let reader = self.readers.get()?;
        let conn = reader.conn.as_ref().ok_or(StoreError::Closed)?;
        Ok(work(conn)?)
    }
}

/// Message `id` of the conversation (`a`, `b`) amid its neighbours, oldest
/// first, as `viewer` sees them: up to `limit` messages, the older half
/// (with `id` itself) before it and the rest after. Paged through the
/// conversation index like any history page.
fn page_around(
    conn: &Connection,
    (a, b): (UserId, UserId),
    id: MessageId,
    viewer: UserId,
    limit: u32,
) -> rusqlite::Result<Vec<Message>> {
    let (low, high) = (a.min(b), a.max(b));
    let after = limit / 2;
    let mut messages: Vec<Message> = conn
        .prepare_cached(sql::HISTORY_PAGE)?
        .query_map(
            (low, high, id.saturating_add(1), limit - after, 0, viewer),
            |row| message_at(row, 0),
        )?
        .collect::<Result<_, _>>()?;
    messages.reverse();
    if after > 0 {
        let later: Vec<Message> = conn
            .prepare_cached(sql::SYNC_CONVERSATION_PAGE)?
            .query_map((low, high, id, i64::MAX, after, viewer), |row| {
                message_at(row, 0)
            })?
            .collect::<Result<_, _>>()?;
        messages.extend(later);
    }
    Ok(messages)
}

/// Tells the change sink of a change that has committed, if the write made
/// one. Sending fails only when nobody listens (shutdown, tools).
fn emit_change(changes: &ChangeSink, change: Option<(Seq, Change)>, origin: Origin) {
    if let Some((seq, change)) = change {
        let _ = changes.send(Written::Committed(Committed {
            seq,
            change,
            origin,
        }));
    }
}

/// A poisoned mutex only means another thread panicked while holding it;
/// the pool's connections stay usable, so we keep going rather than spread
/// the panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // A deletion for everyone must take the text out of the file, not just
    // out of sight: freed space is overwritten with zeros.
    conn.pragma_update(None, "secure_delete", true)?;
    // Every statement of `sql` stays prepared (rusqlite keeps 16 by default,
    // fewer than the writer uses, and re-preparing costs a parse).
    conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
    Ok(conn)
}

/// Settings of the write connection, measured with `examples/sqlite_baseline`:
/// each message updates an index and two conversation rows at random
/// places, so a commit dirties a few pages per message, and a larger page
/// cache keeps those pages in memory instead of re-reading them through the
/// kernel. Checkpoints run on their own thread (see [`checkpointer`]); the
/// writer checkpoints itself only at `WRITER_CHECKPOINT_PAGES`, which a
/// write load that never pauses reaches. Public for the baseline, which must
/// run with the same settings to be a fair floor.
pub fn tune_writer(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?; // negative: KiB
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
}

/// Prepared statements kept per connection: all of `sql`, with room to
/// spare.
const PREPARED_STATEMENTS: usize = 64;
/// WAL pages (4 KiB) at which the writer checkpoints inside a commit (1 GiB).
/// Under a write load that never pauses, the checkpointer's passive rounds
/// never reach the end of the log, and a checkpoint that blocks writes is
/// the only kind that lets the log start over; each one stalls every send
/// for its fsyncs. A high threshold makes that rare, which is what the p99
/// at high load needs (docs/BENCHMARKS.md, "Why the settings are what they
/// are"). Under lighter load the checkpointer finishes between commits and
/// the log starts over long before this. The cost: after such a burst the
/// log file keeps its size until the server stops (a `journal_size_limit`
/// would cut it back, but the truncate itself stalls the writer).
const WRITER_CHECKPOINT_PAGES: i64 = 256 * 1024;
/// Page cache of the write connection, in KiB.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The time `ms` milliseconds after the epoch (the epoch itself for a time
/// chrono cannot hold).
fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn timestamp(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let ms: i64 = row.get(idx)?;
    Utc.timestamp_millis_opt(ms).single().ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            rusqlite::types::Type::Integer,
            format!("timestamp {ms} out of range").into(),
        )
    })
}

/// Reads the thirteen message columns of `sql::message_columns` starting
/// at column `at`.
fn message_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Message> {
    let reply_to = match row.get::<_, Option<MessageId>>(at + 6)? {
        Some(id) => Some(ReplyTo {
            id,
            sender_id: row.get::<_, Option<UserId>>(at + 7)?.unwrap_or(0),
            excerpt: row.get(at + 8)?,
        }),
        None => None,
    };
    Ok(Message {
        id: row.get(at)?,
        sender_id: row.get(at + 1)?,
        receiver_id: row.get(at + 2)?,
        content: row.get(at + 3)?,
        created_at: timestamp(row, at + 4)?,
        is_read: row.get(at + 5)?,
        reply_to,
        edited_at: optional_timestamp(row, at + 9)?,
        deleted_at: optional_timestamp(row, at + 10)?,
        reactions: reactions_at(row, at + 11)?,
        attachment: attachment_at(row, at + 12)?,
        expires_at: optional_timestamp(row, at + 13)?,
    })
}

/// The file digests a `RETURNING sha256, thumbnail_sha256` row holds.
pub(super) fn digests_at(row: &Row<'_>) -> rusqlite::Result<Vec<String>> {
    let file: String = row.get(0)?;
    let thumbnail: Option<String> = row.get(1)?;
    Ok(std::iter::once(file).chain(thumbnail).collect())
}

/// The attachment column: a JSON object, or NULL.
fn attachment_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<Box<Attachment>>> {
    let Some(json) = row.get::<_, Option<String>>(idx)? else {
        return Ok(None);
    };
    let attachment: Attachment = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(Some(Box::new(attachment.with_url())))
}

fn optional_timestamp(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match row.get::<_, Option<i64>>(idx)? {
        Some(_) => timestamp(row, idx).map(Some),
        None => Ok(None),
    }
}

/// The reactions column: `[[emoji, user_id], ...]` in (emoji, user) order,
/// grouped by emoji.
fn reactions_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Vec<Reaction>> {
    let Some(json) = row.get::<_, Option<String>>(idx)? else {
        return Ok(Vec::new());
    };
    let pairs: Vec<(String, UserId)> = serde_json::from_str(&json).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, e.into())
    })?;
    let mut reactions: Vec<Reaction> = Vec::new();
    for (emoji, user_id) in pairs {
        match reactions.last_mut() {
            Some(last) if last.emoji == emoji => last.user_ids.push(user_id),
            _ => reactions.push(Reaction {
                emoji,
                user_ids: vec![user_id],
            }),
        }
    }
    Ok(reactions)
}

/// A user from the columns id, nickname, email, role, display_name,
/// avatar URL starting at `at`.
fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(at)?,
        nickname: row.get(at + 1)?,
        email: row.get(at + 2)?,
        role: Role::from_column(&row.get::<_, String>(at + 3)?),
        display_name: row.get(at + 4)?,
        avatar_url: row.get(at + 5)?,
    })
}

fn constraint_code(err: &rusqlite::Error) -> Option<i32> {
    match err {
        rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation => {
            Some(e.extended_code)
        }
        _ => None,
    }
}

/// The `kind` column of `changes`.
const KIND_MESSAGE: i64 = 1;
const KIND_READ: i64 = 2;
const KIND_EDITED: i64 = 3;
const KIND_DELETED: i64 = 4;
const KIND_REACTION: i64 = 5;
const KIND_EXPIRY: i64 = 6;

/// A change as a row of `changes`.
struct ChangeRow<'a> {
    kind: i64,
    user_id: UserId,
    partner_id: UserId,
    message_id: MessageId,
    detail: Option<&'a str>,
    flag: Option<bool>,
}

impl ChangeRow<'_> {
    fn new(kind: i64, user_id: UserId, partner_id: UserId, message_id: MessageId) -> Self {
        ChangeRow {
            kind,
            user_id,
            partner_id,
            message_id,
            detail: None,
            flag: None,
        }
    }
}

/// Appends a change to the stream inside the current transaction; returns
/// its seq. One writer, so seqs grow in commit order.
fn log_change(conn: &Connection, change: ChangeRow<'_>) -> Result<Seq, StoreError> {
    conn.prepare_cached(sql::INSERT_CHANGE)?.execute((
        change.kind,
        change.user_id,
        change.partner_id,
        change.message_id,
        change.detail,
        change.flag,
    ))?;
    Ok(conn.last_insert_rowid())
}

/// Both rows of conversation (`a`, `b`) learn of its newest change, `seq`.
fn touch_conversation(conn: &Connection, a: UserId, b: UserId, seq: Seq) -> Result<(), StoreError> {
    let mut touch = conn.prepare_cached(sql::TOUCH_MY_CONVERSATION)?;
    touch.execute((a, b, seq))?;
    touch.execute((b, a, seq))?;
    Ok(())
}

/// Stores a message unless its (sender, client_id) is taken, keeps both
/// conversation rows in step and logs the change. Runs inside the writer's
/// transaction.
fn insert_message(conn: &Connection, new: NewMessage) -> Result<Stored, StoreError> {
    let reply_to = match new.reply_to_id {
        Some(id) => Some(actions::reply_target(
            conn,
            id,
            new.sender_id,
            new.receiver_id,
        )?),
        None => None,
    };
    // A repeated send with a file: the original, before the file (which
    // it carries by now) could be refused as already sent.
    if new.attachment_id.is_some()
        && new.client_id.is_some()
        && let Some(message) = conn
            .prepare_cached(sql::MESSAGE_BY_CLIENT_ID)?
            .query_row((new.sender_id, &new.client_id), |row| message_at(row, 0))
            .optional()?
    {
        return Ok(Stored { message, seq: None });
    }
    // Checked before anything is written: a refused send changes nothing.
    let attachment = match new.attachment_id {
        Some(id) => {
            let json: Option<String> = conn
                .prepare_cached(sql::UNSENT_ATTACHMENT)?
                .query_row((id, new.sender_id), |row| row.get(0))
                .optional()?;
            let json = json.ok_or(StoreError::Refused(super::Refusal::InvalidAttachment))?;
            let attachment: Attachment = serde_json::from_str(&json)
                .map_err(|e| StoreError::Commit(format!("attachment {id}: {e}")))?;
            Some(Box::new(attachment.with_url()))
        }
        None => None,
    };
    // A message sent while the conversation has a timer disappears then.
    let (low, high) = (
        new.sender_id.min(new.receiver_id),
        new.sender_id.max(new.receiver_id),
    );
    let expiry_seconds: Option<i64> = conn
        .prepare_cached(sql::EXPIRY_SECONDS)?
        .query_row((low, high), |row| row.get(0))
        .optional()?
        .flatten();
    let expires_at = expiry_seconds.map(|s| millis(new.created_at) + s * 1000);
    let inserted = conn.prepare_cached(sql::INSERT_MESSAGE)?.execute((
        new.sender_id,
        new.receiver_id,
        &new.content,
        millis(new.created_at),
        &new.client_id,
        new.reply_to_id,
        expires_at,
    ));
    match inserted {
        Ok(1) => {}
        Ok(_) => {
            // This sender already used this client_id: hand back the original.
            let message = conn
                .prepare_cached(sql::MESSAGE_BY_CLIENT_ID)?
                .query_row((new.sender_id, &new.client_id), |row| message_at(row, 0))?;
            return Ok(Stored { message, seq: None });
        }
        Err(e) if constraint_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) => {
            return Err(StoreError::UnknownUser);
        }
        Err(e) => return Err(e.into()),
    }
    let id = conn.last_insert_rowid();
    if let Some(attachment) = &attachment {
        conn.prepare_cached(sql::ATTACH)?
            .execute((attachment.id, id))?;
    }
    let seq = log_change(
        conn,
        ChangeRow::new(KIND_MESSAGE, new.sender_id, new.receiver_id, id),
    )?;
    // The sender's row: newest message and change, unread unchanged.
    conn.prepare_cached(sql::UPSERT_SENDER_CONVERSATION)?
        .execute((new.sender_id, new.receiver_id, id, seq))?;
    // The receiver's row: newest message and change, one more unread.
    conn.prepare_cached(sql::UPSERT_RECEIVER_CONVERSATION)?
        .execute((new.receiver_id, new.sender_id, id, seq))?;
    // What a later read returns: the stored precision is 1 ms.
    let created_at =
        DateTime::from_timestamp_millis(millis(new.created_at)).unwrap_or(new.created_at);
    let mut message = Message::new(id, new.sender_id, new.receiver_id, new.content, created_at);
    message.reply_to = reply_to;
    message.attachment = attachment;
    message.expires_at = expires_at.map(from_millis);
    Ok(Stored {
        message,
        seq: Some(seq),
    })
}

/// Tells of a message write once its transaction is known to have
/// committed or failed: a change (or a repeat) goes to the change sink, and
/// the outcome to the caller's reply; a failure goes to whoever waits for
/// it: the connection that sent the message (through the sink), or the
/// REST caller. The hub hears first, so that a caller that acknowledges a
/// message never acknowledges one the hub has not got. Sending fails only
/// when nobody listens (shutdown, tools).
fn finish_message_write(
    outcome: Result<Stored, StoreError>,
    sent: SentBy,
    changes: &ChangeSink,
    reply: Option<Reply<Stored>>,
) {
    let SentBy {
        to_user_id,
        sender_nickname,
        origin,
    } = sent;
    match outcome {
        Ok(stored) => {
            // The message is copied only for a caller that waits for it.
            let (message, answer) = match reply {
                Some(reply) => (stored.message.clone(), Some((reply, stored.clone()))),
                None => (stored.message, None),
            };
            let written = match stored.seq {
                Some(seq) => Written::Committed(Committed {
                    seq,
                    change: Change::MessageStored {
                        message,
                        sender_nickname,
                    },
                    origin,
                }),
                None => Written::Repeated { message, origin },
            };
            let _ = changes.send(written);
            if let Some((reply, stored)) = answer {
                let _ = reply.send(Ok(stored));
            }
        }
        Err(error) if origin.conn().is_some() => {
            let _ = changes.send(Written::Failed {
                to_user_id,
                origin,
                error,
            });
        }
        Err(error) => {
            if let Some(reply) = reply {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// What the change of a message write needs besides the stored row.
struct SentBy {
    to_user_id: UserId,
    sender_nickname: String,
    origin: Origin,
}

/// Moves `me`'s read watermark for `partner` up to `up_to` (or the newest
/// message), never backwards, and logs the change. Runs inside the
/// writer's transaction.
fn mark_read(
    conn: &Connection,
    me: UserId,
    partner: UserId,
    up_to: Option<MessageId>,
) -> Result<ReadMark, StoreError> {
    let state: Option<(i64, i64, i64)> = conn
        .prepare_cached(sql::READ_STATE)?
        .query_row((me, partner), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    // No conversation yet: nothing to mark.
    let Some((newest, read_so_far, unread)) = state else {
        return Ok(ReadMark {
            up_to_id: 0,
            marked: 0,
            seq: None,
        });
    };
    let target = up_to.map_or(newest, |id| id.min(newest));
    if target <= read_so_far {
        return Ok(ReadMark {
            up_to_id: read_so_far,
            marked: 0,
            seq: None,
        });
    }
    let still_unread: i64 = if target == newest {
        0
    } else {
        conn.prepare_cached(sql::UNREAD_AFTER)?
            .query_row((me, partner, target), |row| row.get(0))?
    };
    let seq = log_change(conn, ChangeRow::new(KIND_READ, me, partner, target))?;
    conn.prepare_cached(sql::MARK_CONVERSATION_READ)?.execute((
        me,
        partner,
        target,
        still_unread,
        seq,
    ))?;
    conn.prepare_cached(sql::MARK_READ_BY_PARTNER)?
        .execute((me, partner, target, seq))?;
    Ok(ReadMark {
        up_to_id: target,
        marked: usize::try_from(unread - still_unread).unwrap_or(0),
        seq: Some(seq),
    })
}

/// One row of `CONVERSATION_CHANGES` as the change it logged.
fn change_at(row: &Row<'_>) -> rusqlite::Result<(Seq, Change)> {
    let seq: Seq = row.get(0)?;
    let kind: i64 = row.get(1)?;
    let (user_id, partner_id, message_id): (UserId, UserId, MessageId) =
        (row.get(2)?, row.get(3)?, row.get(4)?);
    let flag = row.get::<_, Option<bool>>(6)?.unwrap_or(false);
    // The message's columns start at 8 (for a stored or edited message).
    let change = match kind {
        KIND_READ => Change::ConversationRead {
            reader_id: user_id,
            partner_id,
            up_to_id: message_id,
        },
        KIND_EDITED => {
            let message = message_at(row, 8)?;
            Change::MessageEdited {
                message_id,
                sender_id: message.sender_id,
                receiver_id: message.receiver_id,
                edited_at: message.edited_at.unwrap_or(message.created_at),
                content: message.content,
            }
        }
        KIND_DELETED => Change::MessageDeleted {
            message_id,
            user_id,
            partner_id,
            for_everyone: flag,
        },
        KIND_EXPIRY => Change::ExpiryChanged {
            by_user_id: user_id,
            partner_id,
            seconds: row
                .get::<_, Option<String>>(5)?
                .and_then(|seconds| seconds.parse().ok()),
        },
        KIND_REACTION => Change::Reaction {
            message_id,
            user_id,
            partner_id,
            emoji: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
            on: flag,
        },
        _ => {
            let mut message = message_at(row, 8)?;
            // Frames of stored messages do not carry read state (the read
            // changes do), nor reactions (the reaction changes do).
            message.is_read = false;
            message.reactions.clear();
            Change::MessageStored {
                sender_nickname: row.get(7)?,
                message,
            }
        }
    };
    Ok((seq, change))
}

/// A page of what is new for `me` after `after` (a message id or a seq),
/// in `key` order, at most `limit`; and whether more remain. Both kinds of
/// sync read it the same way: `partners` lists the partners whose
/// conversation has something newer (one row each), and `page` reads one
/// conversation's range, oldest first (`?1`, `?2`: the conversation; `?3`
/// after, `?4` before, `?5` at most). Once `limit + 1` rows are in hand, a
/// later conversation can only contribute keys below the newest of them, so
/// the work stays within `limit + 1` rows per partner however long the
/// backlog.
fn page_over_conversations<T>(
    conn: &Connection,
    (partners, page): (&str, &str),
    (me, after, limit): (UserId, i64, u32),
    row_to_item: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
    key: impl Fn(&T) -> i64,
) -> rusqlite::Result<(Vec<T>, bool)> {
    // One row more than asked tells whether more remain.
    let wanted = limit + 1;
    // One snapshot for all the statements below: a page must hold
    // everything of its range that had committed when it was read
    // (docs/GUARANTEES.md, sync). Read-only, so dropping it at the end (a
    // rollback) is all the cleanup it needs.
    let _snapshot = conn.unchecked_transaction()?;
    let partners = conn
        .prepare_cached(partners)?
        .query_map((me, after), |row| row.get::<_, UserId>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut page = conn.prepare_cached(page)?;
    let mut items: Vec<T> = Vec::new();
    let mut before = i64::MAX;
    for partner in partners {
        let rows = page.query_map(
            (me.min(partner), me.max(partner), after, before, wanted, me),
            &row_to_item,
        )?;
        for item in rows {
            items.push(item?);
        }
        if items.len() >= wanted as usize {
            items.sort_unstable_by_key(&key);
            items.truncate(wanted as usize);
            before = items.last().map_or(before, &key);
        }
    }
    items.sort_unstable_by_key(&key);
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    Ok((items, has_more))
}

impl Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn credentials(&self, identifier: &str) -> Result<Option<Credentials>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::CREDENTIALS)?
                .query_row([identifier], |row| {
                    Ok(Credentials {
                        user: user_at(row, 0)?,
                        password_hash: row.get(6)?,
                        disabled: row.get(7)?,
                    })
                })
                .optional()
        })
    }

    fn user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::USER_BY_ID)?
                .query_row([id], |row| user_at(row, 0))
                .optional()
        })
    }

    fn users(&self) -> Result<Vec<User>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::ALL_USERS)?
                .query_map([], |row| user_at(row, 0))?
                .collect()
        })
    }

    fn create_session(
        &self,
        user_id: UserId,
        token_hash: &[u8],
        expires_at: DateTime<Utc>,
        place: LoginPlace,
    ) -> Result<SessionId, StoreError> {
        let now = millis(Utc::now());
        let token_hash = token_hash.to_vec();
        self.write(move |conn| {
            // Expired sessions of this user are garbage; dropping them here
            // keeps the table bounded without a background job.
            conn.prepare_cached(sql::DELETE_EXPIRED_SESSIONS)?
                .execute((user_id, now))?;
            conn.prepare_cached(sql::INSERT_SESSION)?.execute((
                &token_hash,
                user_id,
                now,
                millis(expires_at),
                &place.address,
                &place.device,
            ))?;
            let session = conn.last_insert_rowid();
            conn.prepare_cached(sql::TOUCH_USER)?
                .execute((user_id, now))?;
            Ok(session)
        })
    }

    fn session(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<Session>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::SESSION_BY_TOKEN)?
                .query_row((token_hash, millis(now)), |row| {
                    Ok(Session {
                        id: row.get(0)?,
                        user: user_at(row, 1)?,
                        expires_at: timestamp(row, 7)?,
                        last_seen_at: timestamp(row, 8)?,
                    })
                })
                .optional()
        })
    }

    fn delete_session(&self, id: SessionId) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(sql::DELETE_SESSION)?.execute([id])?;
            Ok(())
        })
    }

    fn insert_message(&self, mut new: NewMessage, origin: Origin, reply: Option<Reply<Stored>>) {
        let changes = self.changes.clone();
        let sent = SentBy {
            to_user_id: new.receiver_id,
            sender_nickname: std::mem::take(&mut new.sender_nickname),
            origin,
        };
        self.writer.submit(
            move |conn| insert_message(conn, new),
            move |outcome| finish_message_write(outcome, sent, &changes, reply),
        );
    }

    fn history(&self, me: UserId, partner: UserId, page: Page) -> Result<Vec<Message>, StoreError> {
        let (before_id, offset) = match page.cursor {
            Cursor::Offset(offset) => (i64::MAX, offset),
            Cursor::BeforeId(id) => (id, 0),
            Cursor::Around(id) => {
                return self.read(|conn| page_around(conn, (me, partner), id, me, page.limit));
            }
        };
        let mut messages = self.read(|conn| {
            conn.prepare_cached(sql::HISTORY_PAGE)?
                .query_map(
                    (
                        me.min(partner),
                        me.max(partner),
                        before_id,
                        page.limit,
                        offset,
                        me,
                    ),
                    |row| message_at(row, 0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
        })?;
        // Read newest first to page from the bottom; hand out oldest first,
        // the order a chat window shows.
        messages.reverse();
        Ok(messages)
    }

    fn search(
        &self,
        me: UserId,
        partner: Option<UserId>,
        query: &str,
        before: MessageId,
        limit: u32,
    ) -> Result<Vec<Message>, StoreError> {
        let Some(indexer) = &self.indexer else {
            return Err(StoreError::SearchOff);
        };
        // What was committed before the search was asked is found (and
        // what was deleted is not), once the index has caught up with it.
        if !indexer.wait_for(self.latest_seq()?, SEARCH_WAIT) {
            log::warn!("search index is more than {SEARCH_WAIT:?} behind; searching it as it is");
        }
        let scope = match partner {
            Some(partner) => search_index::conversation_scope(me, partner),
            None => format!("u{me}"),
        };
        let index_query = format!("scope : \"{scope}\" AND {query}");
        self.read(|conn| {
            conn.prepare_cached(sql::SEARCH)?
                .query_map((&index_query, before, limit, 0, 0, me), |row| {
                    message_at(row, 0)
                })?
                .collect()
        })
    }

    fn sync(
        &self,
        me: UserId,
        after_id: i64,
        limit: u32,
    ) -> Result<(Vec<Message>, bool), StoreError> {
        self.read(|conn| {
            page_over_conversations(
                conn,
                (sql::SYNC_PARTNERS, sql::SYNC_CONVERSATION_PAGE),
                (me, after_id, limit),
                |row| message_at(row, 0),
                |m| m.id,
            )
        })
    }

    fn changes_since(
        &self,
        me: UserId,
        since: Seq,
        limit: u32,
    ) -> Result<(Vec<(Seq, Change)>, bool), StoreError> {
        self.read(|conn| {
            page_over_conversations(
                conn,
                (sql::CHANGED_PARTNERS, sql::CONVERSATION_CHANGES),
                (me, since, limit),
                change_at,
                |(seq, _)| *seq,
            )
        })
    }

    fn mark_read(
        &self,
        me: UserId,
        partner: UserId,
        up_to: Option<MessageId>,
        origin: Origin,
    ) -> Result<ReadMark, StoreError> {
        self.write_change(origin, move |conn| {
            let mark = mark_read(conn, me, partner, up_to)?;
            let change = mark.seq.map(|seq| {
                let change = Change::ConversationRead {
                    reader_id: me,
                    partner_id: partner,
                    up_to_id: mark.up_to_id,
                };
                (seq, change)
            });
            Ok((mark, change))
        })
    }

    fn act_on_message(&self, request: ActionRequest, origin: Origin, reply: Option<Reply<Acted>>) {
        let changes = self.changes.clone();
        let released = self.released.0.clone();
        let (message_id, action) = (request.message_id, request.action.frame_type());
        let with_message = reply.is_some();
        self.writer.submit(
            move |conn| actions::act(conn, request, with_message),
            move |outcome| match outcome {
                Ok(actions::Done {
                    acted,
                    change,
                    released_files,
                }) => {
                    emit_change(&changes, change, origin);
                    for sha256 in released_files {
                        let _ = released.try_send(sha256);
                    }
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(acted));
                    }
                }
                Err(error) => match reply {
                    Some(reply) => {
                        let _ = reply.send(Err(error));
                    }
                    None => {
                        let _ = changes.send(Written::Refused {
                            message_id,
                            action,
                            origin,
                            error,
                        });
                    }
                },
            },
        );
    }

    fn message(&self, viewer: UserId, id: MessageId) -> Result<Option<Message>, StoreError> {
        let reader = self.readers.get()?;
        let conn = reader.conn.as_ref().ok_or(StoreError::Closed)?;
        actions::visible_message(conn, id, viewer)
    }

    fn versions(&self, me: UserId, id: MessageId) -> Result<Vec<Version>, StoreError> {
        let reader = self.readers.get()?;
        let conn = reader.conn.as_ref().ok_or(StoreError::Closed)?;
        actions::versions(conn, me, id)
    }

    fn blocks(&self) -> Result<Vec<(UserId, UserId)>, StoreError> {
        self.read(|conn| {
            conn.prepare(sql::ALL_BLOCKS)?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
    }

    fn set_block(&self, blocker: UserId, blocked: UserId, on: bool) -> Result<(), StoreError> {
        self.write(
            move |conn| match actions::set_block(conn, blocker, blocked, on) {
                Err(StoreError::Database(e))
                    if constraint_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) =>
                {
                    Err(StoreError::UnknownUser)
                }
                other => other,
            },
        )
    }

    fn insert_attachment(&self, new: NewAttachment, quota: u64) -> Result<Attachment, StoreError> {
        self.write(move |conn| {
            let used: i64 = conn
                .prepare_cached(sql::UPLOADED_BYTES)?
                .query_row([new.uploader_id], |row| row.get(0))?;
            let used = u64::try_from(used).unwrap_or(0);
            if used.saturating_add(new.size) > quota {
                return Err(StoreError::Refused(super::Refusal::QuotaExceeded));
            }
            let (width, height) = new.image.unzip();
            let (thumbnail_sha256, thumbnail_mime) =
                new.thumbnail.as_ref().map(|t| (&t.sha256, &t.mime)).unzip();
            conn.prepare_cached(sql::INSERT_ATTACHMENT)?.execute((
                new.uploader_id,
                &new.sha256,
                &new.name,
                i64::try_from(new.size).unwrap_or(i64::MAX),
                &new.mime,
                width,
                height,
                millis(Utc::now()),
                thumbnail_sha256,
                thumbnail_mime,
            ))?;
            let id = conn.last_insert_rowid();
            Ok(Attachment {
                id,
                name: new.name,
                size: new.size,
                mime: new.mime,
                width,
                height,
                url: attachment_url(id),
                thumbnail_url: new.thumbnail.map(|_| thumbnail_url(id)),
            })
        })
    }

    fn remove_unsent_attachments(&self, before: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        let before = millis(before);
        self.write(move |conn| {
            let mut statement = conn.prepare_cached(sql::ERASE_UNSENT_ATTACHMENTS)?;
            let rows = statement.query_map([before], digests_at)?;
            let mut digests = Vec::new();
            for row in rows {
                digests.extend(row?);
            }
            Ok(digests)
        })
    }

    fn file_in_use(&self, sha256: &str) -> Result<bool, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::FILE_IN_USE)?
                .query_row([sha256], |row| row.get(0))
        })
    }

    fn released_files(&self) -> Receiver<String> {
        self.released.1.clone()
    }

    fn attachment(&self, viewer: UserId, id: i64) -> Result<Option<StoredAttachment>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::ATTACHMENT_FOR_VIEWER)?
                .query_row((id, viewer), |row| {
                    let size: i64 = row.get(2)?;
                    let thumbnail_sha256: Option<String> = row.get(7)?;
                    let thumbnail_mime: Option<String> = row.get(8)?;
                    let thumbnail = thumbnail_sha256
                        .zip(thumbnail_mime)
                        .map(|(sha256, mime)| StoredThumbnail { sha256, mime });
                    Ok(StoredAttachment {
                        attachment: Attachment {
                            id,
                            name: row.get(1)?,
                            size: u64::try_from(size).unwrap_or(0),
                            mime: row.get(3)?,
                            width: row.get(4)?,
                            height: row.get(5)?,
                            url: attachment_url(id),
                            thumbnail_url: thumbnail.as_ref().map(|_| thumbnail_url(id)),
                        },
                        sha256: row.get(6)?,
                        thumbnail,
                    })
                })
                .optional()
        })
    }

    fn receipts_off(&self) -> Result<Vec<UserId>, StoreError> {
        self.read(|conn| {
            conn.prepare(sql::RECEIPTS_OFF)?
                .query_map([], |row| row.get(0))?
                .collect()
        })
    }

    fn set_send_read_receipts(&self, user: UserId, on: bool) -> Result<(), StoreError> {
        self.write(move |conn| {
            conn.prepare_cached(sql::SET_READ_RECEIPTS)?
                .execute((user, on))?;
            Ok(())
        })
    }

    fn unread_count(&self, me: UserId) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::UNREAD_COUNT)?
                .query_row([me], |row| row.get(0))
        })
    }

    fn render_metrics(&self, out: &mut String) {
        use std::sync::atomic::Ordering;
        let stats = self.writer.stats();
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        render_counter(
            out,
            "chat_db_commits_total",
            "Write transactions committed.",
            load(&stats.commits),
        );
        render_counter(
            out,
            "chat_db_writes_total",
            "Writes in those transactions.",
            load(&stats.writes),
        );
        stats.batch_size.render(
            out,
            "chat_db_commit_batch_size",
            "Writes per commit (group commit).",
        );
        stats.commit_seconds.render(
            out,
            "chat_db_commit_seconds",
            "Time to run and commit one batch.",
        );
        let checkpoints = self.checkpointer.stats();
        render_counter(
            out,
            "chat_db_checkpoints_total",
            "WAL checkpoints run by the checkpointer thread.",
            load(&checkpoints.checkpoints),
        );
        if let Some(indexer) = &self.indexer {
            let (indexed, unbuilt_through) = indexer.progress();
            let latest = self.latest_seq().unwrap_or(indexed);
            render_gauge(
                out,
                "chat_search_index_behind_changes",
                "Committed changes the search index has yet to follow.",
                latest - indexed,
            );
            render_gauge(
                out,
                "chat_search_index_unbuilt_through",
                "Highest message id the search index has still to build (0: it holds every message).",
                unbuilt_through,
            );
        }
    }

    fn conversations(&self, me: UserId) -> Result<Vec<Conversation>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::CONVERSATIONS)?
                .query_map([me], |row| {
                    Ok(Conversation {
                        partner_id: row.get(0)?,
                        partner_nickname: row.get(1)?,
                        unread_count: row.get(2)?,
                        last_seq: row.get(3)?,
                        expiry_seconds: row.get(4)?,
                        last_message: message_at(row, 5)?,
                    })
                })?
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::Accounts;
    use crate::repo::insert_message_and_wait;

    /// A fresh database and the indexer's connection to it, which sees
    /// every table any statement of `sql` names.
    fn a_connection_to_every_table() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("statements.db");
        SqliteStore::open(&path, Durability::Normal, crate::changes::nowhere()).expect("open");
        let conn = indexer::connect(&path).expect("connection");
        (dir, conn)
    }

    /// "No full scans per request": every statement but the user list (which
    /// lists everyone by design) must find its rows through an index, and
    /// none may sort in a temporary B-tree.
    #[test]
    fn query_plans_use_indexes() {
        let (_dir, conn) = a_connection_to_every_table();
        for (name, statement) in sql::ALL {
            let mut explain = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
                .expect("prepare");
            let mut rows = explain.raw_query();
            let mut plan = Vec::new();
            while let Some(row) = rows.next().expect("plan row") {
                plan.push(row.get::<_, String>(3).expect("detail"));
            }
            for step in &plan {
                // Scanning a subquery's (limited) rows, or the one row of
                // a SELECT without a table, is not a table scan.
                // Nor is reading a partial index whole: it holds only
                // the rows wanted (the admins, the disabled accounts).
                let full_scan = step.starts_with("SCAN")
                    && !step.starts_with("SCAN (subquery")
                    && !step.contains("VIRTUAL TABLE INDEX")
                    && step != "SCAN CONSTANT ROW"
                    && !PARTIAL_INDEXES.iter().any(|index| step.ends_with(index))
                    && !LISTS_EVERYTHING.contains(name);
                assert!(!full_scan, "{name} scans a table: {plan:?}");
                // A rowid range is a scan of everything older or newer
                // (unless the statement means to walk the messages or the
                // stream in order, a page at a time: --retention, the
                // search indexer).
                assert!(
                    !step.contains("(rowid<") && !step.contains("(rowid>")
                        || WALKS_IN_ORDER.contains(name),
                    "{name}: {plan:?}"
                );
                // The conversation list sorts one row per partner (see
                // sql.rs), a session list one row per session. The
                // search index answers in rowid order itself.
                let sorts = step.contains("TEMP B-TREE") && !SORTS_FEW_ROWS.contains(name);
                assert!(!sorts, "{name} sorts: {plan:?}");
            }
            for (_, index) in EXPECTED_INDEXES.iter().filter(|(n, _)| n == name) {
                assert!(
                    plan.iter().any(|step| step.contains(index)),
                    "{name} should use {index}: {plan:?}"
                );
            }
        }
    }

    /// A write that may change several rows of a table with foreign keys
    /// (or that returns rows) first collects them in a temporary table,
    /// which SQLite opens and frees each time. None of the writes a send,
    /// an edit, a reaction or a deletion makes may: only those listed,
    /// which run when there is something to delete or for rare requests.
    #[test]
    fn writes_on_the_message_paths_open_no_temporary_table() {
        let (_dir, conn) = a_connection_to_every_table();
        for (name, statement) in sql::ALL {
            let verb = statement.split_whitespace().next().unwrap_or("");
            if !["INSERT", "UPDATE", "DELETE"].contains(&verb)
                || OPEN_A_TEMPORARY_TABLE.contains(name)
            {
                continue;
            }
            let mut explain = conn
                .prepare(&format!("EXPLAIN {statement}"))
                .expect("prepare");
            let mut rows = explain.raw_query();
            while let Some(row) = rows.next().expect("program row") {
                let opcode: String = row.get(1).expect("opcode");
                assert_ne!(opcode, "OpenEphemeral", "{name}");
            }
        }
    }

    /// Writes that collect their rows first: each runs only when the
    /// message has such rows (`MESSAGE_EXTRAS`), for an edit's old version,
    /// or for a request about an account or a file.
    const OPEN_A_TEMPORARY_TABLE: &[&str] = &[
        "ERASE_VERSIONS",
        "ERASE_REACTIONS",
        "ERASE_ATTACHMENTS",
        "SAVE_VERSION",
        "ERASE_ATTACHMENT",
        "ERASE_UNSENT_ATTACHMENTS",
        "DELETE_USER_RESETS",
        "TAKE_RESET",
        "DELETE_USER_INVITES",
    ];

    /// An operator may run ANALYZE (SQLite advises `PRAGMA optimize`). Had
    /// the build STAT4, its statistics would make SQLite compile a
    /// statement again each time a new value is bound to a parameter
    /// compared with an indexed column, as if the schema had changed: a
    /// parse per execution. `.cargo/config.toml` builds SQLite without it.
    #[test]
    fn statistics_never_make_a_statement_compile_again() {
        let (dir, store) = store_with_two_users(Durability::Normal);
        let mut users = vec![1, 2];
        for n in 0..30 {
            let nickname = format!("user{n}");
            let user = store
                .create_user(
                    &nickname,
                    &format!("{nickname}@x"),
                    "h",
                    crate::repo::Admission::Anyone,
                )
                .expect("user");
            users.push(user.id);
        }
        for (n, &receiver) in users.iter().enumerate().skip(1) {
            let mut message = new_message(1, receiver, None);
            message.created_at += chrono::Duration::milliseconds(n as i64);
            insert_message_and_wait(&*store, message).expect("message");
        }
        let conn = indexer::connect(&dir.path().join("t.db")).expect("connection");
        conn.execute_batch("ANALYZE").expect("analyze");
        for statement in [
            sql::TOUCH_MY_CONVERSATION,
            sql::READ_STATE,
            sql::HISTORY_PAGE,
        ] {
            let mut prepared = conn.prepare(statement).expect("prepare");
            let mut run_with = |partner: UserId| {
                // Me, a partner, and a large number for anything else.
                for index in 1..=prepared.parameter_count() {
                    let value = [1, partner].get(index - 1).copied().unwrap_or(1_000);
                    prepared.raw_bind_parameter(index, value).expect("bind");
                }
                let mut rows = prepared.raw_query();
                while rows.next().expect("row").is_some() {}
                drop(rows);
                prepared.get_status(rusqlite::StatementStatus::RePrepare)
            };
            // (The first run may compile it again once, if another
            // connection of the store changed a schema since.)
            let after_first = run_with(users[1]);
            for &partner in &users[2..] {
                assert_eq!(run_with(partner), after_first, "{statement}");
            }
        }
    }

    /// Statements that read every row by design: the user directory, what
    /// the admin page lists and counts (run when an admin looks), and the
    /// search index's state (one row).
    const LISTS_EVERYTHING: &[&str] = &[
        "ALL_USERS",
        "ACCOUNTS",
        "INVITES",
        "STATS",
        "OTHER_NAMES",
        "INDEX_STATE",
        "SET_INDEX_STATE",
    ];
    /// Statements that walk a table in rowid order, a bounded range at a
    /// time.
    const WALKS_IN_ORDER: &[&str] = &[
        "OLDEST_AFTER",
        "INDEX_FOLLOW",
        "INDEX_REMOVALS",
        "INDEX_OLDER",
    ];
    /// Statements that sort what they found, a handful of rows.
    const SORTS_FEW_ROWS: &[&str] = &["CONVERSATIONS", "SESSIONS_OF", "INVITES"];
    /// Indexes that hold only the rows their queries want.
    const PARTIAL_INDEXES: &[&str] = &["users_admins", "users_disabled", "reports_open"];

    /// The hot queries and the index each was designed for.
    const EXPECTED_INDEXES: &[(&str, &str)] = &[
        ("HISTORY_PAGE", "private_messages_by_conversation"),
        ("READ_STATE", "PRIMARY KEY"),
        ("MARK_CONVERSATION_READ", "PRIMARY KEY"),
        ("MARK_READ_BY_PARTNER", "PRIMARY KEY"),
        ("CONVERSATIONS", "PRIMARY KEY"),
        ("UNREAD_COUNT", "conversations"),
        ("SESSION_BY_TOKEN", "sqlite_autoindex_sessions_1"),
        ("CREDENTIALS", "sqlite_autoindex_users"),
        ("MESSAGE_BY_CLIENT_ID", "private_messages_by_client_id"),
        ("SYNC_PARTNERS", "PRIMARY KEY"),
        ("CHANGED_PARTNERS", "PRIMARY KEY"),
        ("CONVERSATION_CHANGES", "changes_by_conversation"),
        ("UNREAD_AFTER", "private_messages_by_conversation"),
        ("SYNC_CONVERSATION_PAGE", "private_messages_by_conversation"),
        ("ERASE_ATTACHMENTS", "attachments_by_message"),
        ("ERASE_UNSENT_ATTACHMENTS", "attachments_unsent"),
        ("FILE_IN_USE", "attachments_by_thumbnail"),
        ("ADMIN_EXISTS", "users_admins"),
        ("DISABLED_USERS", "users_disabled"),
        ("SESSIONS_OF", "sessions_by_user"),
        ("UNDELETED_SENT", "private_messages_by_conversation"),
        ("DUE_TO_EXPIRE", "private_messages_expiring"),
        ("NEXT_EXPIRY", "private_messages_expiring"),
        ("EXPIRY_SECONDS", "PRIMARY KEY"),
    ];

    fn new_message(sender_id: UserId, receiver_id: UserId, client_id: Option<&str>) -> NewMessage {
        NewMessage {
            sender_id,
            receiver_id,
            content: "hi".into(),
            created_at: Utc::now(),
            client_id: client_id.map(str::to_owned),
            // The users of `store_with_two_users`.
            sender_nickname: if sender_id == 1 { "alice" } else { "bob" }.into(),
            reply_to_id: None,
            attachment_id: None,
        }
    }

    fn store_with_two_users(
        durability: Durability,
    ) -> (tempfile::TempDir, std::sync::Arc<SqliteStore>) {
        let (dir, store, _changes) = store_with_two_users_and_changes(durability);
        (dir, store)
    }

    /// Also returns what the store tells the hub.
    fn store_with_two_users_and_changes(
        durability: Durability,
    ) -> (
        tempfile::TempDir,
        std::sync::Arc<SqliteStore>,
        crossbeam_channel::Receiver<Written>,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (sink, changes) = crossbeam_channel::unbounded();
        let store = SqliteStore::open(&dir.path().join("t.db"), durability, sink).expect("open");
        store
            .create_user("alice", "a@x", "h", crate::repo::Admission::Anyone)
            .expect("alice");
        store
            .create_user("bob", "b@x", "h", crate::repo::Admission::Anyone)
            .expect("bob");
        (dir, std::sync::Arc::new(store), changes)
    }

    /// Commits only append to the WAL (the writer's own checkpoint starts at
    /// 1 GiB of log); the checkpointer thread copies it into the database
    /// file, which therefore grows without anyone else checkpointing.
    #[test]
    fn the_checkpointer_copies_the_log_into_the_database() {
        let (dir, store) = store_with_two_users(Durability::Normal);
        let file = dir.path().join("t.db");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let before = size();
        for i in 0..300 {
            let mut message = new_message(1, 2, None);
            message.content = format!("message {i} {}", "x".repeat(200));
            insert_message_and_wait(&*store, message).expect("insert");
        }
        use std::sync::atomic::Ordering;
        let checkpoints = || {
            store
                .checkpointer
                .stats()
                .checkpoints
                .load(Ordering::Relaxed)
        };
        // The file grows while a round copies; the round is counted when it
        // ends. Wait for both.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() <= before || checkpoints() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed into the database file"
            );
            std::thread::sleep(checkpointer::CHECKPOINT_BUSY);
        }
    }

    /// Writes that queue while a commit runs share the next one: 64 senders
    /// waiting behind a busy writer are committed together, not one by one.
    #[test]
    fn concurrent_writes_are_committed_in_groups() {
        use std::sync::atomic::Ordering;
        let (_dir, store) = store_with_two_users(Durability::Full);
        // Hold the writer in a job until all 64 are queued behind it (their
        // threads alone would arrive one by one on a busy machine).
        let (started, writer_held) = crossbeam_channel::bounded::<()>(1);
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        store.writer.submit(
            move |_| {
                let _ = started.send(());
                let _ = released.recv();
                Ok(())
            },
            |_: Result<(), StoreError>| {},
        );
        writer_held.recv().expect("the held job runs");
        let commits_before = store.writer_stats().commits.load(Ordering::Relaxed);
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    insert_message_and_wait(&*store, new_message(1, 2, None)).expect("insert")
                })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.writer.queued() < 64 {
            assert!(
                std::time::Instant::now() < deadline,
                "the writes never queued"
            );
            std::thread::yield_now();
        }
        drop(release);
        let mut ids: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread").message.id)
            .collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 64);
        let commits = store.writer_stats().commits.load(Ordering::Relaxed) - commits_before;
        // The held job's commit, then (at most) one for all 64.
        assert!(commits <= 2, "64 queued writes took {commits} commits");
        assert_eq!(store.unread_count(2).expect("unread"), 64);
    }

    #[test]
    fn changes_reach_the_sink_in_seq_order_and_a_repeated_client_id_stores_nothing() {
        let (_dir, store, changes) = store_with_two_users_and_changes(Durability::Normal);
        // Queued without waiting: the three may share a commit.
        for (from, to) in [(1, 2), (1, 2), (2, 1)] {
            let origin = Origin::Connection {
                conn: 7,
                client_id: Some("c1".into()),
            };
            store.insert_message(new_message(from, to, Some("c1")), origin, None);
        }
        let [first, again, other_sender] = [(); 3].map(|()| changes.recv().expect("an event"));
        let (Written::Committed(first), Written::Repeated { message, .. }) = (first, again) else {
            panic!("expected a change, then a repeat");
        };
        let Written::Committed(other_sender) = other_sender else {
            panic!("expected a change");
        };
        let Change::MessageStored {
            message: original, ..
        } = &first.change
        else {
            panic!("a message");
        };
        assert_eq!(&message, original);
        assert!(first.seq < other_sender.seq);
        assert_eq!(store.unread_count(2).expect("unread"), 1);
        let (all, more) = store.sync(1, 0, 10).expect("sync");
        assert_eq!(all.len(), 2);
        assert!(!more);
        // The stream replays the same changes.
        let (replayed, more) = store.changes_since(1, 0, 10).expect("changes");
        let seqs: Vec<Seq> = replayed.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [first.seq, other_sender.seq]);
        assert_eq!(replayed[0].1, first.change);
        assert!(!more);
    }

    #[test]
    fn marking_read_is_a_change_and_never_moves_backwards() {
        let (_dir, store, changes) = store_with_two_users_and_changes(Durability::Normal);
        let ids: Vec<MessageId> = (0..3)
            .map(|_| {
                insert_message_and_wait(&*store, new_message(1, 2, None))
                    .expect("insert")
                    .message
                    .id
            })
            .collect();
        let _ = changes.try_iter().count();
        let partial = store
            .mark_read(2, 1, Some(ids[1]), Origin::Request)
            .expect("mark");
        assert_eq!((partial.up_to_id, partial.marked), (ids[1], 2));
        assert_eq!(store.unread_count(2).expect("unread"), 1);
        let Ok(Written::Committed(change)) = changes.try_recv() else {
            panic!("the sink heard of it before mark_read returned");
        };
        assert_eq!(change.seq, partial.seq.expect("a change"));
        assert_eq!(
            change.change,
            Change::ConversationRead {
                reader_id: 2,
                partner_id: 1,
                up_to_id: ids[1]
            }
        );
        let backwards = store
            .mark_read(2, 1, Some(ids[0]), Origin::Request)
            .expect("mark");
        assert_eq!((backwards.up_to_id, backwards.seq), (ids[1], None));
        assert!(changes.try_recv().is_err(), "nothing moved, nothing said");
        // Beyond the newest message: read up to the newest.
        let all = store
            .mark_read(2, 1, Some(i64::MAX), Origin::Request)
            .expect("mark");
        assert_eq!((all.up_to_id, all.marked), (ids[2], 1));
        assert_eq!(store.unread_count(2).expect("unread"), 0);
        // Both users see it in the stream.
        for user in [1, 2] {
            let (replayed, _) = store
                .changes_since(user, change.seq - 1, 10)
                .expect("since");
            assert_eq!(replayed.len(), 2, "user {user}: {replayed:?}");
            assert_eq!(replayed[0], (change.seq, change.change.clone()));
        }
    }

    #[test]
    fn an_unknown_recipient_is_refused_and_stores_nothing() {
        let (_dir, store) = store_with_two_users(Durability::Normal);
        let unknown = insert_message_and_wait(&*store, new_message(1, 99, None));
        assert!(matches!(unknown, Err(StoreError::UnknownUser)));
        let ok = insert_message_and_wait(&*store, new_message(1, 2, None)).expect("insert");
        assert_eq!(store.sync(2, 0, 10).expect("sync").0, [ok.message]);
    }

    #[test]
    fn schema_version_is_recorded_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("version.db");
        drop(
            SqliteStore::open(&path, Durability::Normal, crate::changes::nowhere()).expect("open"),
        );
        let conn = Connection::open(&path).expect("reopen");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, schema::SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", schema::SCHEMA_VERSION + 1)
            .expect("bump");
        drop(conn);
        assert!(matches!(
            SqliteStore::open(&path, Durability::Normal, crate::changes::nowhere()),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
