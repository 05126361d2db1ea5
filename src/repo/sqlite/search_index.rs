//! The search index: an FTS5 table beside the messages, kept in step with
//! them: a new message is indexed by the statement after the one that
//! stores it ([`index_new_message`]), and a trigger re-indexes a message
//! whose content changes (an edit, a deletion for everyone, an expiry),
//! so that no later write path can forget it. (Not a trigger on insert:
//! with a trigger on it, SQLite checks every table that refers to
//! `private_messages` on each insert, by scanning the ones without an
//! index on the referring column.)
//!
//! It holds, per message that can be found, its words as
//! [`crate::search::text`] folds them (the `search_words` SQL function,
//! registered on every connection) and a `scope` naming its two users and
//! its conversation (`u12 u34 c12x34`), which a query always includes: a
//! search never even looks at another conversation's messages. The table
//! is contentless: it keeps the words' postings, not the text. A message
//! that changes or goes is taken out with FTS5's `delete` command, given
//! the words it was indexed with (the function is deterministic), and with
//! `secure-delete` that removes its entries from the index's pages at once:
//! a message deleted for everyone, or expired, leaves none of its words in
//! the file. (A `contentless_delete` table would only mark the row deleted
//! and keep its words on disk until a merge.)
//!
//! `--search off` drops the index and its triggers (nothing of the text is
//! kept twice); turning it on again rebuilds it from the messages.

use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OptionalExtension};

use crate::repo::StoreError;

/// Whether the server keeps a search index (`--search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchIndex {
    /// Build it if missing, keep it in step.
    On,
    /// Drop it if present.
    Off,
    /// Leave it as it is (tools that open the database beside the server).
    AsIs,
}

/// The `scope` of a message from `sender` to `receiver`.
pub fn scope(sender: i64, receiver: i64) -> String {
    format!(
        "u{sender} u{receiver} {}",
        conversation_scope(sender, receiver)
    )
}

/// The scope word of the conversation between `a` and `b`.
pub fn conversation_scope(a: i64, b: i64) -> String {
    format!("c{}x{}", a.min(b), a.max(b))
}

/// Registers the functions the triggers call. Every connection that may
/// write a message needs them (the server's do; a tool writing with its own
/// connection calls this too).
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8
        | FunctionFlags::SQLITE_DETERMINISTIC
        | FunctionFlags::SQLITE_INNOCUOUS;
    conn.create_scalar_function("search_words", 1, flags, |ctx| {
        let text: String = ctx.get(0)?;
        Ok(crate::search::text::indexed(&text))
    })?;
    conn.create_scalar_function("search_scope", 2, flags, |ctx| {
        Ok(scope(ctx.get(0)?, ctx.get(1)?))
    })
}

/// The index's definition. `prefix`: FTS5 keeps the words' beginnings of
/// these lengths as words of their own, so that a query for a word's
/// beginning ("hol", and a bare word is always also a beginning) reads one
/// list in order and stops at a page of results, instead of merging the
/// lists of every word it begins, whole (300 ms for a word in half of 10
/// million messages, 5 ms with it: docs/BENCHMARKS.md). Longer beginnings
/// are rarer, and merged as they are.
const TABLE: &str = "CREATE VIRTUAL TABLE search USING fts5(
        body, scope,
        content = '',
        prefix = '2 3 4 5 6',
        tokenize = 'unicode61 remove_diacritics 2'
    )";

const CREATE: &str = "
    INSERT INTO search (search, rank) VALUES ('secure-delete', 1);
    -- Merge segments less eagerly: each commit of the writer adds one, and
    -- merging them four at a time (the default) cost sends a third of
    -- their throughput (docs/BENCHMARKS.md).
    INSERT INTO search (search, rank) VALUES ('automerge', 16);
    CREATE TRIGGER search_on_change AFTER UPDATE OF content, deleted_at ON private_messages
    BEGIN
        INSERT INTO search (search, rowid, body, scope)
        SELECT 'delete', old.id, search_words(old.content), search_scope(old.sender_id, old.receiver_id)
        WHERE old.deleted_at IS NULL AND old.content <> '';
        INSERT INTO search (rowid, body, scope)
        SELECT new.id, search_words(new.content), search_scope(new.sender_id, new.receiver_id)
        WHERE new.deleted_at IS NULL AND new.content <> '';
    END;
    INSERT INTO search (rowid, body, scope)
    SELECT id, search_words(content), search_scope(sender_id, receiver_id)
    FROM private_messages WHERE deleted_at IS NULL AND content <> '';";

const DROP: &str = "
    DROP TRIGGER IF EXISTS search_on_change;
    DROP TABLE IF EXISTS search;";

/// Adds a message just stored to the index (when the server keeps one).
pub fn index_new_message(
    conn: &Connection,
    id: i64,
    content: &str,
    sender: i64,
    receiver: i64,
) -> rusqlite::Result<()> {
    if content.is_empty() {
        return Ok(()); // a file without a caption: no words
    }
    conn.prepare_cached(
        "INSERT INTO search (rowid, body, scope) VALUES (?1, search_words(?2), search_scope(?3, ?4))",
    )?
    .execute((id, content, sender, receiver))?;
    Ok(())
}

/// Brings the index to `wanted`: builds it (from every message that can
/// be found) or drops it, in one transaction. Returns whether the index
/// exists now.
pub fn ensure(conn: &mut Connection, wanted: SearchIndex) -> Result<bool, StoreError> {
    let definition: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'search'",
            [],
            |row| row.get(0),
        )
        .optional()?;
    let exists = definition.is_some();
    // An index made with another definition is made again.
    let outdated = definition.is_some_and(|sql| sql != TABLE);
    match wanted {
        SearchIndex::On if !exists || outdated => {
            let started = std::time::Instant::now();
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
            tx.execute_batch(DROP)?;
            tx.execute_batch(TABLE)?;
            tx.execute_batch(CREATE)?;
            tx.commit()?;
            log::info!("built the search index in {:?}", started.elapsed());
            Ok(true)
        }
        SearchIndex::Off if exists => {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
            tx.execute_batch(DROP)?;
            tx.commit()?;
            log::info!("dropped the search index (--search off)");
            Ok(false)
        }
        _ => Ok(exists),
    }
}
