//! The checkpointer: one thread that copies the write-ahead log into the
//! database file, so that the writer thread never has to.
//!
//! In WAL mode every commit appends pages to the log, and a "checkpoint"
//! later copies them into the database file (with an fsync). By default
//! SQLite runs it inside whichever commit crosses the threshold, so one
//! unlucky batch of messages waits for the copy, which showed as a p99
//! many times the median. Here this thread
//! runs a `PASSIVE` checkpoint every [`CHECKPOINT_BUSY`] while messages are
//! being written (every [`CHECKPOINT_IDLE`] otherwise): it copies what it
//! can without blocking the writer or any reader.
//!
//! Small, frequent rounds matter: they cut the p99 at high load several
//! times over (why exactly is not proven: a small round is a short burst of
//! copying and fsync next to the writer on two cores). And a round that copies little can finish between two commits,
//! which is when SQLite starts the log over instead of growing it.
//!
//! A passive checkpoint never waits, so under a write load that never
//! pauses it may not catch up with the end of the log, and SQLite only
//! starts the log over once a checkpoint has. The writer's own automatic
//! checkpoint stays on, with a high threshold, for that case: it blocks
//! writes while it runs (three fsyncs), which is what lets the log start
//! over, and it finds most pages already copied. (Forcing such checkpoints
//! from this thread instead cost throughput and the p99.9.)
//!
//! The figures behind each of these choices are in docs/BENCHMARKS.md,
//! "Why the settings are what they are".

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};
use rusqlite::Connection;

use super::open_connection;

/// The pause between rounds while the log grows: short, so each round
/// copies (and syncs) little, but not zero, so it does not take a core.
pub const CHECKPOINT_BUSY: Duration = Duration::from_millis(20);
/// The pause between rounds while nothing is written: an idle server wakes
/// rarely.
pub const CHECKPOINT_IDLE: Duration = Duration::from_millis(200);

/// Counters for `/metrics`.
#[derive(Default)]
pub struct CheckpointStats {
    /// Checkpoints run.
    pub checkpoints: AtomicU64,
}

/// The running thread; stops when dropped.
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<CheckpointStats>,
}

impl Checkpointer {
    pub fn spawn(path: &Path) -> Result<Checkpointer, super::StoreError> {
        let conn = open_connection(path)?;
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let stats = Arc::new(CheckpointStats::default());
        let thread = {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("db-checkpointer".into())
                .spawn(move || {
                    let mut last_round = None;
                    let mut pause = CHECKPOINT_IDLE;
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                        let round = checkpoint(&conn, &stats);
                        // The log's state moved since the last round: the
                        // writer is busy, come back soon.
                        pause = if round.is_some() && round != last_round {
                            CHECKPOINT_BUSY
                        } else {
                            CHECKPOINT_IDLE
                        };
                        last_round = round;
                    }
                })?
        };
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
            stats,
        })
    }

    pub fn stats(&self) -> &CheckpointStats {
        &self.stats
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One passive checkpoint. Returns the frames in the log and how many of
/// them are in the database now, or `None` if it failed.
fn checkpoint(conn: &Connection, stats: &CheckpointStats) -> Option<(i64, i64)> {
    // Columns: busy, pages in the log, pages copied so far.
    let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match result {
        Ok(frames) => {
            stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            Some(frames)
        }
        Err(e) => {
            log::warn!("WAL checkpoint failed: {e}");
            None // retry after the idle pause, not in a tight loop
        }
    }
}
