//! The indexer: one thread that keeps the [search index](super::search_index)
//! in step with the messages, off the writer's path.
//!
//! It follows the stream of committed changes (the `changes` table) from
//! the last `seq` it indexed: a message stored, edited or deleted for
//! everyone is indexed again from what its row holds now (or taken out).
//! That is idempotent and needs nothing from the change but the message's
//! id, so a batch may hold several changes of one message, and edits the
//! stream has forgotten (a deletion erases them) are not missed. The
//! index and the `seq` it reached are in the same file and commit together:
//! after a crash the indexer resumes where its last commit left it.
//!
//! Each round takes everything that committed since the last one, in
//! batches of up to [`FOLLOW_BATCH`] changes, one transaction each: under
//! load the batches grow, and a large batch costs FTS5 one segment where
//! the writer's small commits cost one each. A round runs every
//! [`ROUND_PERIOD`], and at once when a search asks for it
//! ([`Indexer::wait_for`]).
//!
//! Messages that existed when the index was made are added by the build,
//! [`BUILD_CHUNK`] ids at a time between rounds, newest first; the stream
//! leaves them to it.
//!
//! Its transactions only read the database file (a snapshot, in WAL mode),
//! so the writer never waits for the indexer, and the indexer never waits
//! for the writer. And it runs at a lower CPU priority ([`crate::background`]): indexing
//! a message costs about as much CPU as storing and delivering it, so on a
//! server whose cores are all busy, messages go first and the index
//! catches up when the load eases (docs/BENCHMARKS.md has both figures).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;

use super::{StoreError, lock, open_connection, search_index, sql};
use crate::changes::Seq;

/// Changes indexed in one transaction at most: bounds how long its read
/// snapshot keeps the database's log from starting over (a deletion costs
/// the index far more than a new message: secure-delete rewrites the pages
/// of each of its words).
const FOLLOW_BATCH: i64 = 5_000;
/// Changes looked at per transaction when the server stops ([`purge`]).
const PURGE_BATCH: i64 = 500;
/// Message ids the build adds per transaction.
const BUILD_CHUNK: i64 = 5_000;
/// The pause between rounds: long enough that a round indexes a batch,
/// not a message (each commit of the index adds a segment that FTS5 merges
/// later), short enough that the index stays close behind. A search does
/// not wait for it: it wakes the thread.
pub const ROUND_PERIOD: Duration = Duration::from_millis(500);
/// How long the indexer may take, when the server stops, to take out of
/// the index what was deleted since its last round. After a burst of
/// deletions (a million messages expiring at once) that can take minutes;
/// whatever is left then goes at the next start, first thing.
const PURGE_LIMIT: Duration = Duration::from_secs(5);
/// The pause after a round failed (the index's file unwritable, say), so
/// that the log is not flooded with the same error.
const ROUND_FAILED: Duration = Duration::from_secs(5);
/// Page cache of the indexer's connection to the index, in KiB: FTS5
/// merges rewrite many pages of it.
const INDEX_CACHE_KIB: i64 = 32 * 1024;

/// How far the index is, as its last commit recorded it.
struct Progress {
    reached: Mutex<Reached>,
    advanced: Condvar,
}

#[derive(Clone, Copy)]
struct Reached {
    /// Every change up to it is in the index.
    seq: Seq,
    /// The highest id of the messages the build has still to add (0: it
    /// added them all).
    unbuilt_through: i64,
}

impl Progress {
    fn new(conn: &Connection) -> rusqlite::Result<Progress> {
        let (seq, unbuilt_through) = state(conn)?;
        Ok(Progress {
            reached: Mutex::new(Reached {
                seq,
                unbuilt_through,
            }),
            advanced: Condvar::new(),
        })
    }

    fn advance(&self, reached: Reached) {
        *lock(&self.reached) = reached;
        self.advanced.notify_all();
    }
}

/// The running thread. Dropped, it takes out of the index what was edited
/// or deleted since its last round ([`purge`]), and stops.
pub struct Indexer {
    wake: Sender<()>,
    stopping: Arc<AtomicBool>,
    progress: Arc<Progress>,
    thread: Option<JoinHandle<()>>,
}

impl Indexer {
    /// Starts the thread on the index of the database at `db`, which
    /// [`search_index::ensure`] has made.
    pub fn spawn(db: &Path) -> Result<Indexer, StoreError> {
        let conn = connect(db)?;
        let progress = Arc::new(Progress::new(&conn)?);
        // One pending wake is enough: the round it starts sees everything.
        let (wake, woken) = crossbeam_channel::bounded(1);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (progress, stopping) = (progress.clone(), stopping.clone());
            std::thread::Builder::new()
                .name("search-indexer".into())
                .spawn(move || {
                    crate::background::lower_priority("the search indexer");
                    run(conn, &progress, &woken, &stopping)
                })?
        };
        Ok(Indexer {
            wake,
            stopping,
            progress,
            thread: Some(thread),
        })
    }

    /// Waits until the index holds every message and every change up to
    /// `seq`, at most `timeout`; returns whether it does. Wakes the
    /// thread, so a search right after a send does not wait for the next
    /// round.
    pub fn wait_for(&self, seq: Seq, timeout: Duration) -> bool {
        let caught_up = |reached: &Reached| reached.unbuilt_through == 0 && reached.seq >= seq;
        let mut reached = lock(&self.progress.reached);
        if caught_up(&reached) {
            return true;
        }
        let _ = self.wake.try_send(());
        let deadline = Instant::now() + timeout;
        while !caught_up(&reached) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            reached = self
                .progress
                .advanced
                .wait_timeout(reached, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        true
    }

    /// The `seq` every change up to which is indexed, and the highest
    /// message id the build has still to add (0: none).
    pub fn progress(&self) -> (Seq, i64) {
        let reached = *lock(&self.progress.reached);
        (reached.seq, reached.unbuilt_through)
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.wake.try_send(());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut conn: Connection, progress: &Progress, woken: &Receiver<()>, stopping: &AtomicBool) {
    // The first round at once: a build to start, or changes made while
    // the server was stopped.
    let mut pause = Duration::ZERO;
    loop {
        let _ = woken.recv_timeout(pause);
        if stopping.load(Ordering::SeqCst) {
            if let Err(e) = purge(&mut conn) {
                log::warn!("search index: taking out what was deleted: {e}");
            }
            return;
        }
        pause = match round(&mut conn, progress, stopping) {
            // The build goes on without a pause (the rounds between its
            // chunks keep the stream followed).
            Ok(Building(true)) => Duration::ZERO,
            Ok(Building(false)) => ROUND_PERIOD,
            Err(e) => {
                log::warn!("search index: a round failed, retrying: {e}");
                ROUND_FAILED
            }
        };
    }
}

/// Whether the build has more to do.
struct Building(bool);

/// Follows the stream to its end (or until the server stops), then builds
/// one chunk if any is left.
fn round(
    conn: &mut Connection,
    progress: &Progress,
    stopping: &AtomicBool,
) -> Result<Building, StoreError> {
    loop {
        let (reached, done) = follow(conn)?;
        progress.advance(reached);
        if done || stopping.load(Ordering::SeqCst) {
            break;
        }
    }
    if !build_chunk(conn)? {
        return Ok(Building(false));
    }
    let (seq, unbuilt_through) = state(conn)?;
    progress.advance(Reached {
        seq,
        unbuilt_through,
    });
    Ok(Building(unbuilt_through > 0))
}

/// One transaction of the stream: indexes the messages of up to
/// [`FOLLOW_BATCH`] changes. Returns how far the index is now, and whether
/// it was already at the stream's end (nothing to do).
fn follow(conn: &mut Connection) -> Result<(Reached, bool), StoreError> {
    // Deferred: it reads the database and writes only the index's file,
    // so the database's write lock is never taken.
    let tx = conn.transaction()?;
    let (from, unbuilt_through) = state(&tx)?;
    let latest: Seq = tx
        .prepare_cached(sql::LATEST_SEQ)?
        .query_row([], |row| row.get(0))?;
    if latest <= from {
        let reached = Reached {
            seq: from,
            unbuilt_through,
        };
        return Ok((reached, true));
    }
    let to = latest.min(from + FOLLOW_BATCH);
    let changed: Vec<(i64, i64)> = tx
        .prepare_cached(sql::INDEX_FOLLOW)?
        .query_map((from, to, unbuilt_through), |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    for (kind, message_id) in changed {
        // A new message was never indexed; anything else may have been.
        if kind != super::KIND_MESSAGE {
            tx.prepare_cached(sql::UNINDEX_MESSAGE)?
                .execute([message_id])?;
        }
        tx.prepare_cached(sql::INDEX_MESSAGE)?
            .execute([message_id])?;
    }
    tx.prepare_cached(sql::SET_INDEX_STATE)?
        .execute((to, unbuilt_through))?;
    tx.commit()?;
    let reached = Reached {
        seq: to,
        unbuilt_through,
    };
    Ok((reached, false))
}

/// When the server stops: takes the messages edited or deleted since the
/// last round out of the index, so that no deleted text stays in its file
/// while the server is down, however far behind the index is (within
/// [`PURGE_LIMIT`]). The `seq` stays: the next start follows those changes
/// again (which indexes the edited ones anew, and finds the others gone),
/// and everything else that was not indexed yet.
fn purge(conn: &mut Connection) -> Result<(), StoreError> {
    let started = Instant::now();
    let (indexed, unbuilt_through) = state(conn)?;
    let latest: Seq = conn
        .prepare_cached(sql::LATEST_SEQ)?
        .query_row([], |row| row.get(0))?;
    let mut from = indexed;
    while from < latest {
        if started.elapsed() > PURGE_LIMIT {
            log::warn!(
                "search index: stopping with changes {from}..{latest} not taken out; \
                 they go at the next start"
            );
            break;
        }
        let to = latest.min(from + PURGE_BATCH);
        let tx = conn.transaction()?;
        let changed: Vec<i64> = tx
            .prepare_cached(sql::INDEX_REMOVALS)?
            .query_map((from, to, unbuilt_through), |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        for message_id in changed {
            tx.prepare_cached(sql::UNINDEX_MESSAGE)?
                .execute([message_id])?;
        }
        tx.commit()?;
        from = to;
    }
    Ok(())
}

/// Adds the next [`BUILD_CHUNK`] ids of the messages the index was made
/// without, if any are left. Returns whether any were.
fn build_chunk(conn: &mut Connection) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    let (seq, unbuilt_through) = state(&tx)?;
    if unbuilt_through <= 0 {
        return Ok(false);
    }
    let below = (unbuilt_through - BUILD_CHUNK).max(0);
    tx.prepare_cached(sql::INDEX_OLDER)?
        .execute((below, unbuilt_through))?;
    tx.prepare_cached(sql::SET_INDEX_STATE)?
        .execute((seq, below))?;
    tx.commit()?;
    if below == 0 {
        log::info!("the search index holds every message");
    }
    Ok(true)
}

/// The `seq` the index reached and the highest id still to be built.
fn state(conn: &Connection) -> rusqlite::Result<(Seq, i64)> {
    conn.prepare_cached(sql::INDEX_STATE)?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
}

/// A connection to the database with the index's file attached, ready to
/// index.
pub(super) fn connect(db: &Path) -> Result<Connection, StoreError> {
    let conn = open_connection(db)?;
    search_index::register_functions(&conn)?;
    search_index::attach(&conn, db)?;
    // The index is derived from the database: a commit lost to a power
    // cut is indexed again, so it need not wait for the disk.
    conn.pragma_update(Some(search_index::SCHEMA), "synchronous", "NORMAL")?;
    conn.pragma_update(Some(search_index::SCHEMA), "cache_size", -INDEX_CACHE_KIB)?;
    Ok(conn)
}

/// Builds the whole index of the database at `db` now, on this thread
/// (the seeding tool's index, before it measures searches).
pub fn build(db: &Path) -> Result<(), StoreError> {
    let mut conn = open_connection(db)?;
    search_index::ensure(&mut conn, db, search_index::SearchIndex::On)?;
    drop(conn);
    let mut conn = connect(db)?;
    while {
        follow(&mut conn)?;
        build_chunk(&mut conn)?
    } {}
    Ok(())
}
