//! Creating and upgrading the database file.
//!
//! `PRAGMA user_version` records the schema version. A new file gets
//! `schema.sql` (the newest version) in one go; an older file runs the
//! numbered steps below, each in its own transaction, so an upgrade
//! interrupted halfway leaves a file at a consistent earlier version.

use rusqlite::{Connection, TransactionBehavior};

use crate::repo::StoreError;

/// The schema of a fresh database; it sets `PRAGMA user_version` itself.
const SCHEMA: &str = include_str!("../../../schema.sql");

/// The `user_version` this build reads and writes.
pub const SCHEMA_VERSION: i64 = 11;

/// Step to version N: the SQL that turns version N-1 into version N.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        2,
        "ALTER TABLE private_messages ADD COLUMN client_id TEXT;
         CREATE UNIQUE INDEX private_messages_by_client_id ON private_messages (sender_id, client_id)
             WHERE client_id IS NOT NULL;
         CREATE INDEX private_messages_by_sender ON private_messages (sender_id, id);
         CREATE INDEX private_messages_by_receiver ON private_messages (receiver_id, id);",
    ),
    // Read state moves from a flag per message to a watermark per
    // conversation (and its copy in the partner's row), and four indexes go:
    // each cost every message an insert. A conversation is read up to just
    // before its oldest unread message, so a message read out of order after
    // that one counts as unread again; the counts are recomputed to match.
    (
        3,
        "ALTER TABLE conversations ADD COLUMN last_read_id INTEGER NOT NULL DEFAULT 0;
         UPDATE conversations SET last_read_id = coalesce(
             (SELECT min(m.id) - 1 FROM private_messages m
              WHERE m.receiver_id = conversations.user_id
                AND m.sender_id = conversations.partner_id AND m.is_read = 0),
             last_message_id);
         ALTER TABLE conversations ADD COLUMN partner_read_id INTEGER NOT NULL DEFAULT 0;
         UPDATE conversations SET partner_read_id = coalesce(
             (SELECT p.last_read_id FROM conversations p
              WHERE p.user_id = conversations.partner_id AND p.partner_id = conversations.user_id),
             0);
         UPDATE conversations SET unread_count = (
             SELECT count(*) FROM private_messages m
             WHERE min(m.sender_id, m.receiver_id) = min(conversations.user_id, conversations.partner_id)
               AND max(m.sender_id, m.receiver_id) = max(conversations.user_id, conversations.partner_id)
               AND m.id > conversations.last_read_id
               AND m.sender_id = conversations.partner_id);
         DROP INDEX private_messages_unread;
         DROP INDEX private_messages_by_sender;
         DROP INDEX private_messages_by_receiver;
         DROP INDEX conversations_by_recency;
         ALTER TABLE private_messages DROP COLUMN is_read;",
    ),
    // The stream of committed changes. Every stored message becomes a
    // change, in id order, so that `sync` from seq 0 replays them all; read
    // state was not logged before, so only its present state (in
    // `conversations`) is known.
    (
        4,
        "CREATE TABLE changes (
             seq        INTEGER PRIMARY KEY,
             kind       INTEGER NOT NULL,
             user_id    INTEGER NOT NULL,
             partner_id INTEGER NOT NULL,
             message_id INTEGER NOT NULL
         );
         INSERT INTO changes (kind, user_id, partner_id, message_id)
             SELECT 1, sender_id, receiver_id, id FROM private_messages ORDER BY id;
         CREATE INDEX changes_by_conversation ON changes (
             min(user_id, partner_id), max(user_id, partner_id), seq
         );
         ALTER TABLE conversations ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
         UPDATE conversations SET last_seq = coalesce(
             (SELECT max(c.seq) FROM changes c
              WHERE min(c.user_id, c.partner_id) = min(conversations.user_id, conversations.partner_id)
                AND max(c.user_id, c.partner_id) = max(conversations.user_id, conversations.partner_id)),
             0);",
    ),
    // Replies, edits, deletions, reactions, blocking and the read-receipt
    // setting: new columns and tables only, so every existing row stays.
    (
        5,
        "ALTER TABLE users ADD COLUMN send_read_receipts INTEGER NOT NULL DEFAULT 1;
         ALTER TABLE private_messages ADD COLUMN reply_to_id INTEGER REFERENCES private_messages (id);
         ALTER TABLE private_messages ADD COLUMN edited_at INTEGER;
         ALTER TABLE private_messages ADD COLUMN deleted_at INTEGER;
         ALTER TABLE changes ADD COLUMN detail TEXT;
         ALTER TABLE changes ADD COLUMN flag INTEGER;
         CREATE INDEX changes_by_message ON changes (message_id) WHERE kind IN (3, 5);
         CREATE TABLE message_versions (
             message_id INTEGER NOT NULL REFERENCES private_messages (id),
             version    INTEGER NOT NULL,
             content    TEXT    NOT NULL,
             written_at INTEGER NOT NULL,
             PRIMARY KEY (message_id, version)
         ) WITHOUT ROWID;
         CREATE TABLE reactions (
             message_id INTEGER NOT NULL REFERENCES private_messages (id),
             emoji      TEXT    NOT NULL,
             user_id    INTEGER NOT NULL REFERENCES users (id),
             PRIMARY KEY (message_id, emoji, user_id)
         ) WITHOUT ROWID;
         CREATE TABLE hidden_messages (
             user_id    INTEGER NOT NULL REFERENCES users (id),
             message_id INTEGER NOT NULL REFERENCES private_messages (id),
             PRIMARY KEY (user_id, message_id)
         ) WITHOUT ROWID;
         CREATE TABLE blocks (
             blocker_id INTEGER NOT NULL REFERENCES users (id),
             blocked_id INTEGER NOT NULL REFERENCES users (id),
             created_at INTEGER NOT NULL,
             PRIMARY KEY (blocker_id, blocked_id)
         ) WITHOUT ROWID;",
    ),
    // Uploaded files' metadata (their bytes are in the files folder).
    (
        6,
        "CREATE TABLE attachments (
             id          INTEGER PRIMARY KEY,
             uploader_id INTEGER NOT NULL REFERENCES users (id),
             sha256      TEXT    NOT NULL,
             name        TEXT    NOT NULL,
             size        INTEGER NOT NULL,
             mime        TEXT    NOT NULL,
             width       INTEGER,
             height      INTEGER,
             created_at  INTEGER NOT NULL,
             message_id  INTEGER REFERENCES private_messages (id)
         );
         CREATE INDEX attachments_by_uploader ON attachments (uploader_id);
         CREATE INDEX attachments_by_sha256 ON attachments (sha256);
         CREATE INDEX attachments_by_message ON attachments (message_id) WHERE message_id IS NOT NULL;",
    ),
    // Thumbnails of images.
    (
        7,
        "ALTER TABLE attachments ADD COLUMN thumbnail_sha256 TEXT;
         ALTER TABLE attachments ADD COLUMN thumbnail_mime TEXT;
         CREATE INDEX attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;
         CREATE INDEX attachments_by_thumbnail ON attachments (thumbnail_sha256)
             WHERE thumbnail_sha256 IS NOT NULL;",
    ),
    // Roles, disabled accounts, invitations, password resets and what a
    // session list shows. The oldest account becomes the admin, as the
    // first one registered on a new server does.
    (
        8,
        "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
             CHECK (role IN ('member', 'admin'));
         ALTER TABLE users ADD COLUMN disabled_at INTEGER;
         ALTER TABLE users ADD COLUMN last_seen_at INTEGER;
         UPDATE users SET role = 'admin' WHERE id = (SELECT min(id) FROM users);
         CREATE INDEX users_admins ON users (id) WHERE role = 'admin';
         CREATE INDEX users_disabled ON users (id) WHERE disabled_at IS NOT NULL;
         ALTER TABLE sessions ADD COLUMN last_seen_at INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT '';
         ALTER TABLE sessions ADD COLUMN device TEXT NOT NULL DEFAULT '';
         UPDATE sessions SET last_seen_at = created_at;
         CREATE TABLE invites (
             code       TEXT    PRIMARY KEY,
             created_by INTEGER REFERENCES users (id),
             created_at INTEGER NOT NULL,
             expires_at INTEGER,
             max_uses   INTEGER NOT NULL CHECK (max_uses > 0),
             uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses <= max_uses)
         ) WITHOUT ROWID;
         CREATE INDEX invites_by_creator ON invites (created_by);
         CREATE TABLE password_resets (
             token_hash BLOB    PRIMARY KEY,
             user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
             expires_at INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE INDEX password_resets_by_user ON password_resets (user_id);",
    ),
    // Deleted accounts, display names, pictures, retired nicknames and
    // reports.
    (
        9,
        "ALTER TABLE users ADD COLUMN deleted_at INTEGER;
         ALTER TABLE users ADD COLUMN display_name TEXT;
         ALTER TABLE users ADD COLUMN avatar_attachment_id INTEGER REFERENCES attachments (id);
         CREATE INDEX users_by_avatar ON users (avatar_attachment_id)
             WHERE avatar_attachment_id IS NOT NULL;
         CREATE TABLE retired_nicknames (
             nickname TEXT    PRIMARY KEY COLLATE NOCASE,
             until    INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE TABLE reports (
             id          INTEGER PRIMARY KEY,
             reporter_id INTEGER NOT NULL REFERENCES users (id),
             message_id  INTEGER NOT NULL REFERENCES private_messages (id),
             reason      TEXT    NOT NULL,
             created_at  INTEGER NOT NULL,
             resolved_at INTEGER,
             resolved_by INTEGER REFERENCES users (id),
             resolution  TEXT
         );
         CREATE UNIQUE INDEX reports_once ON reports (reporter_id, message_id);
         CREATE INDEX reports_open ON reports (id) WHERE resolved_at IS NULL;",
    ),
    // Disappearing messages.
    (
        10,
        "ALTER TABLE private_messages ADD COLUMN expires_at INTEGER;
         CREATE INDEX private_messages_expiring ON private_messages (expires_at)
             WHERE expires_at IS NOT NULL AND deleted_at IS NULL;
         CREATE TABLE conversation_settings (
             user_a         INTEGER NOT NULL REFERENCES users (id),
             user_b         INTEGER NOT NULL REFERENCES users (id),
             expiry_seconds INTEGER CHECK (expiry_seconds > 0),
             PRIMARY KEY (user_a, user_b),
             CHECK (user_a < user_b)
         ) WITHOUT ROWID;",
    ),
    // Push notifications.
    (
        11,
        "CREATE TABLE push_subscriptions (
             id         INTEGER PRIMARY KEY,
             user_id    INTEGER NOT NULL REFERENCES users (id),
             session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
             endpoint   TEXT    NOT NULL UNIQUE,
             p256dh     BLOB    NOT NULL,
             auth       BLOB    NOT NULL,
             created_at INTEGER NOT NULL
         );
         CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);
         CREATE INDEX push_subscriptions_by_session ON push_subscriptions (session_id);
         CREATE TABLE server_secrets (
             name   TEXT PRIMARY KEY,
             secret BLOB NOT NULL
         ) WITHOUT ROWID;",
    ),
];

/// Brings the file to [`SCHEMA_VERSION`], or refuses a newer one.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
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
        return Ok(());
    }
    for (to, step) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", to)?;
        tx.commit()?;
        log::info!("upgraded database schema to version {to}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version-1 schema, as the first release created it.
    const SCHEMA_V1: &str = include_str!("../../../tests/fixtures/schema-v1.sql");
    /// The version-2 schema: read state was a flag on every message.
    const SCHEMA_V2: &str = include_str!("../../../tests/fixtures/schema-v2.sql");

    fn shape(conn: &Connection) -> Vec<String> {
        let mut shape: Vec<String> = conn
            .prepare("SELECT type, name FROM sqlite_master ORDER BY name")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(format!(
                        "{} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                    ))
                })?
                .collect()
            })
            .expect("schema objects");
        for table in [
            "users",
            "sessions",
            "private_messages",
            "conversations",
            "changes",
            "message_versions",
            "reactions",
            "hidden_messages",
            "blocks",
            "attachments",
            "invites",
            "password_resets",
            "retired_nicknames",
            "reports",
            "conversation_settings",
        ] {
            let columns: Vec<String> = conn
                .prepare(&format!(
                    "SELECT name, type FROM pragma_table_info('{table}') ORDER BY name"
                ))
                .and_then(|mut s| {
                    s.query_map([], |r| {
                        Ok(format!(
                            "{table}.{} {}",
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?
                        ))
                    })?
                    .collect()
                })
                .expect("columns");
            shape.extend(columns);
        }
        shape
    }

    #[test]
    fn a_version_1_file_is_upgraded_to_the_fresh_schema_keeping_its_data() {
        let mut old = Connection::open_in_memory().expect("db");
        old.execute_batch(SCHEMA_V1).expect("v1 schema");
        old.execute_batch(
            "INSERT INTO users VALUES (1, 'a', 'a@x', 'h', 0), (2, 'b', 'b@x', 'h', 0);
             INSERT INTO private_messages (sender_id, receiver_id, content, created_at)
                 VALUES (1, 2, 'kept', 0);",
        )
        .expect("v1 data");
        migrate(&mut old).expect("migrate");

        let mut fresh = Connection::open_in_memory().expect("db");
        migrate(&mut fresh).expect("create");

        assert_eq!(shape(&old), shape(&fresh));
        let version: i64 = old
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(version, SCHEMA_VERSION);
        let kept: String = old
            .query_row("SELECT content FROM private_messages", [], |r| r.get(0))
            .expect("message");
        assert_eq!(kept, "kept");
        // The oldest account administers, as a new server's first one does.
        let roles: Vec<(i64, String)> = old
            .prepare("SELECT id, role FROM users ORDER BY id")
            .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
            .expect("roles");
        assert_eq!(roles, vec![(1, "admin".into()), (2, "member".into())]);
        // Every stored message is a change, so that sync from 0 replays it.
        let change: (i64, i64, i64, i64) = old
            .query_row(
                "SELECT kind, user_id, partner_id, message_id FROM changes",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .expect("change");
        assert_eq!(change, (1, 1, 2, 1));
    }

    #[test]
    fn a_version_2_file_keeps_its_read_state_as_watermarks() {
        let mut old = Connection::open_in_memory().expect("db");
        old.execute_batch(SCHEMA_V2).expect("v2 schema");
        // 1 → 2: two read, then two unread. 2 → 1: one read. 3 → 1: one
        // unread, then one read out of order (it becomes unread: the
        // watermark stops before the oldest unread message).
        old.execute_batch(
            "INSERT INTO users VALUES (1, 'a', 'a@x', 'h', 0), (2, 'b', 'b@x', 'h', 0),
                                      (3, 'c', 'c@x', 'h', 0);
             INSERT INTO private_messages (id, sender_id, receiver_id, content, created_at, is_read)
                 VALUES (1, 1, 2, 'm', 0, 1), (2, 1, 2, 'm', 0, 1), (3, 2, 1, 'm', 0, 1),
                        (4, 1, 2, 'm', 0, 0), (5, 1, 2, 'm', 0, 0),
                        (6, 3, 1, 'm', 0, 0), (7, 3, 1, 'm', 0, 1);
             INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count)
                 VALUES (1, 2, 5, 0), (2, 1, 5, 2), (1, 3, 7, 1), (3, 1, 7, 0);",
        )
        .expect("v2 data");
        migrate(&mut old).expect("migrate");

        let flags = |a: i64, b: i64| -> Vec<(i64, bool)> {
            old.prepare(super::super::sql::HISTORY_PAGE)
                .and_then(|mut s| {
                    s.query_map((a.min(b), a.max(b), i64::MAX, 100, 0, a), |r| {
                        Ok((r.get(0)?, r.get(5)?))
                    })?
                    .collect()
                })
                .expect("history")
        };
        assert_eq!(
            flags(1, 2),
            vec![(5, false), (4, false), (3, true), (2, true), (1, true)]
        );
        assert_eq!(flags(1, 3), vec![(7, false), (6, false)]);
        let unread = |user: i64| -> i64 {
            old.query_row(super::super::sql::UNREAD_COUNT, [user], |r| r.get(0))
                .expect("unread")
        };
        assert_eq!((unread(1), unread(2), unread(3)), (2, 2, 0));
        // Every copy of a watermark equals the partner's own.
        let stale_copies: i64 = old
            .query_row(
                "SELECT count(*) FROM conversations c JOIN conversations p
                   ON p.user_id = c.partner_id AND p.partner_id = c.user_id
                 WHERE c.partner_read_id <> p.last_read_id",
                [],
                |r| r.get(0),
            )
            .expect("copies");
        assert_eq!(stale_copies, 0);
    }
}
