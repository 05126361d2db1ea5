//! [`Store`] on one SQLite file in WAL mode.
//!
//! SQLite allows one writer and many readers at a time. We mirror that: all
//! writes go through one connection behind a mutex (so they queue in our
//! process rather than spin on `SQLITE_BUSY`), and reads take a connection
//! from a small pool, so history queries never wait for a write to commit.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior};

use super::{Credentials, Store, StoreError};
use crate::models::{Conversation, Cursor, Message, NewMessage, Page, SessionId, User, UserId};

/// The schema of a fresh database; it sets `PRAGMA user_version` itself.
const SCHEMA: &str = include_str!("../../schema.sql");
/// The `user_version` this build reads and writes.
pub const SCHEMA_VERSION: i64 = 1;
/// How long a connection waits for a lock held by another process (a backup
/// tool, the sqlite3 shell) before giving up with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Read connections kept open between requests. More can be open at once
/// under load; the extra ones are closed when returned.
const MAX_IDLE_READERS: usize = 8;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: ReaderPool,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` and brings its schema to
    /// [`SCHEMA_VERSION`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let mut writer = open_connection(path)?;
        // WAL lets readers run while a write commits; it is a property of the
        // file, so setting it once on the writer is enough.
        let mode: String =
            writer.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            log::warn!("SQLite refused WAL mode (got {mode}); reads will wait for writes");
        }
        migrate(&mut writer)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: ReaderPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            },
        })
    }

    fn write<T>(
        &self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let pooled = lock(&self.readers.idle).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_connection(&self.readers.path)?,
        };
        let result = work(&conn);
        let mut idle = lock(&self.readers.idle);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
        Ok(result?)
    }
}

/// A poisoned mutex only means another thread panicked while holding it; a
/// SQLite connection stays consistent (an open transaction rolls back when
/// dropped), so we keep using it rather than spread the panic.
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
    // NORMAL in WAL mode: a committed transaction survives a crash of the
    // process; only a power loss can take the last commits back.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == 0 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(SCHEMA)?;
        tx.commit()?;
        log::info!("created database schema version {SCHEMA_VERSION}");
    }
    Ok(())
}

fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
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

/// Every statement the store runs, by name. Kept together so that the
/// query-plan test below checks exactly what runs in production.
pub(crate) mod sql {
    pub const INSERT_USER: &str = "INSERT INTO users (nickname, email, password_hash, created_at)
         VALUES (?1, ?2, ?3, ?4)";
    pub const CREDENTIALS: &str = "SELECT id, nickname, email, password_hash FROM users
         WHERE nickname = ?1 OR email = ?1";
    pub const USER_BY_ID: &str = "SELECT id, nickname, email FROM users WHERE id = ?1";
    pub const ALL_USERS: &str = "SELECT id, nickname, email FROM users ORDER BY nickname, id";
    pub const DELETE_EXPIRED_SESSIONS: &str =
        "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2";
    pub const INSERT_SESSION: &str =
        "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4)";
    pub const SESSION_BY_TOKEN: &str = "SELECT s.id, u.id, u.nickname, u.email
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = ?1";
    pub const INSERT_MESSAGE: &str =
        "INSERT INTO private_messages (sender_id, receiver_id, content, created_at)
         VALUES (?1, ?2, ?3, ?4)";
    pub const UPSERT_SENDER_CONVERSATION: &str =
        "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count)
         VALUES (?1, ?2, ?3, 0)
         ON CONFLICT (user_id, partner_id)
         DO UPDATE SET last_message_id = excluded.last_message_id";
    pub const UPSERT_RECEIVER_CONVERSATION: &str =
        "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count)
         VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (user_id, partner_id)
         DO UPDATE SET last_message_id = excluded.last_message_id,
         unread_count = unread_count + 1";
    pub const HISTORY_PAGE: &str =
        "SELECT id, sender_id, receiver_id, content, created_at, is_read FROM private_messages
         WHERE min(sender_id, receiver_id) = ?1 AND max(sender_id, receiver_id) = ?2
         AND id < ?3
         ORDER BY id DESC LIMIT ?4 OFFSET ?5";
    pub const MARK_MESSAGES_READ: &str = "UPDATE private_messages SET is_read = 1
         WHERE receiver_id = ?1 AND sender_id = ?2 AND is_read = 0";
    pub const RESET_UNREAD: &str = "UPDATE conversations SET unread_count = 0
         WHERE user_id = ?1 AND partner_id = ?2";
    pub const UNREAD_COUNT: &str =
        "SELECT COALESCE(SUM(unread_count), 0) FROM conversations WHERE user_id = ?1";
    pub const CONVERSATIONS: &str = "SELECT c.partner_id, u.nickname, c.unread_count,
         m.id, m.sender_id, m.receiver_id, m.content, m.created_at, m.is_read
         FROM conversations c
         JOIN users u ON u.id = c.partner_id
         JOIN private_messages m ON m.id = c.last_message_id
         WHERE c.user_id = ?1
         ORDER BY c.last_message_id DESC";

    /// (name, statement) of every query, for the plan test.
    #[cfg(test)]
    pub const ALL: &[(&str, &str)] = &[
        ("INSERT_USER", INSERT_USER),
        ("CREDENTIALS", CREDENTIALS),
        ("USER_BY_ID", USER_BY_ID),
        ("ALL_USERS", ALL_USERS),
        ("DELETE_EXPIRED_SESSIONS", DELETE_EXPIRED_SESSIONS),
        ("INSERT_SESSION", INSERT_SESSION),
        ("SESSION_BY_TOKEN", SESSION_BY_TOKEN),
        ("DELETE_SESSION", DELETE_SESSION),
        ("INSERT_MESSAGE", INSERT_MESSAGE),
        ("UPSERT_SENDER_CONVERSATION", UPSERT_SENDER_CONVERSATION),
        ("UPSERT_RECEIVER_CONVERSATION", UPSERT_RECEIVER_CONVERSATION),
        ("HISTORY_PAGE", HISTORY_PAGE),
        ("MARK_MESSAGES_READ", MARK_MESSAGES_READ),
        ("RESET_UNREAD", RESET_UNREAD),
        ("UNREAD_COUNT", UNREAD_COUNT),
        ("CONVERSATIONS", CONVERSATIONS),
    ];
}

/// Reads the six message columns (`id, sender_id, receiver_id, content,
/// created_at, is_read`) starting at column `at`.
fn message_at(row: &Row<'_>, at: usize) -> rusqlite::Result<Message> {
    Ok(Message {
        id: row.get(at)?,
        sender_id: row.get(at + 1)?,
        receiver_id: row.get(at + 2)?,
        content: row.get(at + 3)?,
        created_at: timestamp(row, at + 4)?,
        is_read: row.get(at + 5)?,
    })
}

fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(at)?,
        nickname: row.get(at + 1)?,
        email: row.get(at + 2)?,
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

impl Store for SqliteStore {
    fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
    }

    fn create_user(
        &self,
        nickname: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        self.write(|tx| {
            let inserted = tx.prepare_cached(sql::INSERT_USER)?.execute((
                nickname,
                email,
                password_hash,
                millis(Utc::now()),
            ));
            match inserted {
                Ok(_) => Ok(User {
                    id: tx.last_insert_rowid(),
                    nickname: nickname.to_owned(),
                    email: email.to_owned(),
                }),
                Err(e) if constraint_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE) => {
                    // SQLite names the column: "UNIQUE constraint failed: users.email".
                    let column = if e.to_string().contains("users.email") {
                        "email"
                    } else {
                        "nickname"
                    };
                    Err(StoreError::Taken(column))
                }
                Err(e) => Err(e.into()),
            }
        })
    }

    fn credentials(&self, identifier: &str) -> Result<Option<Credentials>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::CREDENTIALS)?
                .query_row([identifier], |row| {
                    Ok(Credentials {
                        user: user_at(row, 0)?,
                        password_hash: row.get(3)?,
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
    ) -> Result<SessionId, StoreError> {
        let now = millis(Utc::now());
        self.write(|tx| {
            // Expired sessions of this user are garbage; dropping them here
            // keeps the table bounded without a background job.
            tx.prepare_cached(sql::DELETE_EXPIRED_SESSIONS)?
                .execute((user_id, now))?;
            tx.prepare_cached(sql::INSERT_SESSION)?.execute((
                token_hash,
                user_id,
                now,
                millis(expires_at),
            ))?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn session(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<(SessionId, User)>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::SESSION_BY_TOKEN)?
                .query_row((token_hash, millis(now)), |row| {
                    Ok((row.get(0)?, user_at(row, 1)?))
                })
                .optional()
        })
    }

    fn delete_session(&self, id: SessionId) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.prepare_cached(sql::DELETE_SESSION)?.execute([id])?;
            Ok(())
        })
    }

    fn insert_message(&self, new: NewMessage) -> Result<Message, StoreError> {
        self.write(|tx| {
            let inserted = tx.prepare_cached(sql::INSERT_MESSAGE)?.execute((
                new.sender_id,
                new.receiver_id,
                &new.content,
                millis(new.created_at),
            ));
            if let Err(e) = inserted {
                return Err(
                    if constraint_code(&e) == Some(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY) {
                        StoreError::UnknownUser
                    } else {
                        e.into()
                    },
                );
            }
            let id = tx.last_insert_rowid();
            // The sender's row: newest message, unread unchanged.
            tx.prepare_cached(sql::UPSERT_SENDER_CONVERSATION)?
                .execute((new.sender_id, new.receiver_id, id))?;
            // The receiver's row: newest message, one more unread.
            tx.prepare_cached(sql::UPSERT_RECEIVER_CONVERSATION)?
                .execute((new.receiver_id, new.sender_id, id))?;
            Ok(Message {
                id,
                sender_id: new.sender_id,
                receiver_id: new.receiver_id,
                content: new.content,
                created_at: new.created_at,
                is_read: false,
            })
        })
    }

    fn history(&self, me: UserId, partner: UserId, page: Page) -> Result<Vec<Message>, StoreError> {
        let (before_id, offset) = match page.cursor {
            Cursor::Offset(offset) => (i64::MAX, offset),
            Cursor::BeforeId(id) => (id, 0),
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

    fn mark_read(&self, me: UserId, partner: UserId) -> Result<usize, StoreError> {
        self.write(|tx| {
            let marked = tx
                .prepare_cached(sql::MARK_MESSAGES_READ)?
                .execute((me, partner))?;
            tx.prepare_cached(sql::RESET_UNREAD)?
                .execute((me, partner))?;
            Ok(marked)
        })
    }

    fn unread_count(&self, me: UserId) -> Result<i64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::UNREAD_COUNT)?
                .query_row([me], |row| row.get(0))
        })
    }

    fn conversations(&self, me: UserId) -> Result<Vec<Conversation>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(sql::CONVERSATIONS)?
                .query_map([me], |row| {
                    Ok(Conversation {
                        partner_id: row.get(0)?,
                        partner_nickname: row.get(1)?,
                        unread_count: row.get(2)?,
                        last_message: message_at(row, 3)?,
                    })
                })?
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "No full scans per request": every statement but the user list (which
    /// lists everyone by design) must find its rows through an index, and
    /// none may sort in a temporary B-tree.
    #[test]
    fn query_plans_use_indexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("plans.db")).expect("open");
        let conn = lock(&store.writer);
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
                let full_scan = step.starts_with("SCAN") && *name != "ALL_USERS";
                assert!(!full_scan, "{name} scans a table: {plan:?}");
                // A rowid range is a scan of everything older or newer.
                assert!(
                    !step.contains("(rowid<") && !step.contains("(rowid>"),
                    "{name}: {plan:?}"
                );
                assert!(!step.contains("TEMP B-TREE"), "{name} sorts: {plan:?}");
            }
            if let Some((_, index)) = EXPECTED_INDEXES.iter().find(|(n, _)| n == name) {
                assert!(
                    plan.iter().any(|step| step.contains(index)),
                    "{name} should use {index}: {plan:?}"
                );
            }
        }
    }

    /// The hot queries and the index each was designed for.
    const EXPECTED_INDEXES: &[(&str, &str)] = &[
        ("HISTORY_PAGE", "private_messages_by_conversation"),
        ("MARK_MESSAGES_READ", "private_messages_unread"),
        ("CONVERSATIONS", "conversations_by_recency"),
        ("UNREAD_COUNT", "conversations"),
        ("SESSION_BY_TOKEN", "sqlite_autoindex_sessions_1"),
        ("CREDENTIALS", "sqlite_autoindex_users"),
    ];

    #[test]
    fn schema_version_is_recorded_and_newer_files_are_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("version.db");
        drop(SqliteStore::open(&path).expect("open"));
        let conn = Connection::open(&path).expect("reopen");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        drop(conn);
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
