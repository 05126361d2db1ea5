//! The search index: an FTS5 table in a file of its own beside the
//! database (`chat.db-search`), kept by the [`indexer`](super::indexer)
//! thread, which follows the stream of committed changes.
//!
//! Why a file of its own, written by a thread of its own: indexing a
//! message costs more than storing it (its words, and their beginnings,
//! go into a B-tree each), and inside the writer's transaction it cost
//! sends most of their throughput (docs/BENCHMARKS.md). SQLite has one
//! write lock per file, so an index in the same file would hold the
//! writer up whenever it commits; in its own file it is written at its
//! own pace, in large batches, while the writer commits messages.
//!
//! It holds, per message that can be found, its words as
//! [`crate::search::text`] folds them (the `search_words` SQL function)
//! and a `scope` naming its two users and its conversation
//! (`u12 u34 c12x34`), which a query always includes: a search never even
//! looks at another conversation's messages. The table keeps the folded
//! words (not the text) as its content, so that a message that changes or
//! goes is taken out by its rowid alone, once its own text is gone; with
//! FTS5's `secure-delete` and SQLite's `secure_delete` its entries and its
//! words are overwritten at once: a message deleted for everyone, or
//! expired, leaves none of its words in the file.
//!
//! The file is derived data: `--search off` removes it, a missing or
//! outdated one is made again from the messages, and a backup leaves it out.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::functions::FunctionFlags;

use super::private_files;
use crate::repo::StoreError;

/// Whether the server keeps a search index (`--search`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchIndex {
    /// Build it if missing, keep it in step.
    On,
    /// Remove it if present.
    Off,
    /// Leave it as it is (tools that open the database beside the server).
    AsIs,
}

/// The schema name the index's file is attached as, on every connection
/// that searches or indexes.
pub const SCHEMA: &str = "idx";

/// The index's file for the database at `db`.
pub fn path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-search");
    PathBuf::from(name)
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

/// Registers the functions the indexer's statements call.
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
/// are rarer, and merged as they are. `columnsize=0`: results come in
/// rowid order, never ranked, so the sizes ranking needs are not kept.
const TABLE: &str = "CREATE VIRTUAL TABLE idx.search USING fts5(
        body, scope,
        prefix = '2 3 4 5 6',
        columnsize = 0,
        tokenize = 'unicode61 remove_diacritics 2'
    )";

/// The rest of a new index file: `secure-delete`, and how far the indexer
/// got. `seq`: every change up to it is in the index. `unbuilt_through`:
/// messages with an id up to it, which existed when the file was made,
/// are still to be added (newest first, so recent messages are found
/// first); 0 once they all are. `definition`: the [`TABLE`] the file was
/// made with; a file made with another is made again.
const CREATE: &str = "
    INSERT INTO idx.search (search, rank) VALUES ('secure-delete', 1);
    CREATE TABLE idx.search_state (
        seq             INTEGER NOT NULL,
        unbuilt_through INTEGER NOT NULL,
        definition      TEXT NOT NULL
    );";

/// Attaches the index's file as [`SCHEMA`]. Used by every connection that
/// reads or writes it.
pub fn attach(conn: &Connection, db: &Path) -> rusqlite::Result<()> {
    let file = path(db);
    conn.execute(
        &format!("ATTACH DATABASE ?1 AS {SCHEMA}"),
        [file.to_string_lossy()],
    )?;
    Ok(())
}

/// Brings the index to `wanted` before the server starts: removes it, or
/// makes sure its file exists with the current definition (empty and ready
/// to be built if it was missing or outdated). Also takes out the index an
/// earlier version kept inside the database file. Returns whether the
/// server searches.
pub fn ensure(conn: &mut Connection, db: &Path, wanted: SearchIndex) -> Result<bool, StoreError> {
    drop_in_file_index(conn)?;
    let file = path(db);
    match wanted {
        SearchIndex::AsIs => Ok(false),
        SearchIndex::Off => {
            if file.exists() {
                remove(&file).map_err(StoreError::Files)?;
                log::info!("removed the search index (--search off)");
            }
            Ok(false)
        }
        SearchIndex::On => {
            if current(db) {
                // Readable by the server's user only, like the database.
                private_files::prepare(&file).map_err(StoreError::Files)?;
            } else {
                remove(&file).map_err(StoreError::Files)?;
                create(conn, db)?;
            }
            Ok(true)
        }
    }
}

/// Whether the index's file exists and was made with [`TABLE`]. A file
/// that cannot be read as one (an older layout, a damaged file) is not.
fn current(db: &Path) -> bool {
    if !path(db).exists() {
        return false;
    }
    let definition = || -> rusqlite::Result<String> {
        let conn = Connection::open_in_memory()?;
        attach(&conn, db)?;
        conn.query_row("SELECT definition FROM idx.search_state", [], |row| {
            row.get(0)
        })
    };
    definition().is_ok_and(|definition| definition == TABLE)
}

/// Makes an empty index file whose build covers every message there is.
fn create(conn: &mut Connection, db: &Path) -> Result<(), StoreError> {
    private_files::prepare(&path(db)).map_err(StoreError::Files)?;
    attach(conn, db)?;
    conn.pragma_update(Some(SCHEMA), "journal_mode", "WAL")?;
    let tx = conn.transaction()?;
    tx.execute_batch(TABLE)?;
    tx.execute_batch(CREATE)?;
    tx.execute(
        "INSERT INTO idx.search_state (seq, unbuilt_through, definition)
         VALUES ((SELECT coalesce(max(seq), 0) FROM changes),
                 (SELECT coalesce(max(id), 0) FROM private_messages), ?1)",
        [TABLE],
    )?;
    tx.commit()?;
    conn.execute(&format!("DETACH DATABASE {SCHEMA}"), [])?;
    log::info!("made an empty search index; it is built in the background");
    Ok(())
}

/// Removes the index's file and its companions (missing ones are fine).
fn remove(file: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Versions before the index had its own file kept it in the database,
/// with a trigger on every edit: both go.
fn drop_in_file_index(conn: &mut Connection) -> Result<(), StoreError> {
    let present: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name IN ('search', 'search_on_change'))",
        [],
        |row| row.get(0),
    )?;
    if present {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)?;
        tx.execute_batch(
            "DROP TRIGGER IF EXISTS search_on_change;
             DROP TABLE IF EXISTS search;",
        )?;
        tx.commit()?;
        log::info!("moved the search index out of the database file");
    }
    Ok(())
}
