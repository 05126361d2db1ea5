//! The database writer: one thread that owns the only write connection and
//! commits many writes per transaction (group commit).
//!
//! A commit costs one fsync (with `--durability full`), whether it holds one
//! message or five hundred. So the writer takes every job that is waiting,
//! runs each inside its own savepoint (one failing job does not undo the
//! others), commits once, and only then answers each caller. Under load the
//! batches grow by themselves: while one commit runs, the next batch queues.
//! Nobody waits for a timer.
//!
//! Answers are given in commit order, on this thread, and a job may run an
//! `after_commit` step there before its caller hears back. The chat path
//! uses that to hand each new message to the hub in id order, which is what
//! lets a reconnecting client resume from the last id it saw.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::metrics::{Histogram, SECONDS_BUCKETS, SIZE_BUCKETS};
use crate::repo::StoreError;

/// Jobs waiting for the writer before callers start to wait for room.
const QUEUE_CAPACITY: usize = 4096;
/// Most jobs in one transaction: bounds the time a commit holds the lock and
/// the memory a batch holds.
const MAX_BATCH: usize = 512;

/// What the writer runs for one caller: the work inside the transaction,
/// then, once the commit is known, the answer.
pub struct Job {
    run: Box<dyn FnOnce(&mut Transaction<'_>) -> Completion + Send>,
    /// Called instead of `run` when no transaction could be started.
    fail: Box<dyn FnOnce(StoreError) + Send>,
}

/// Finishes a job after the commit: `Ok` if its transaction committed.
type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// The caller's side: queues jobs and waits for their answers.
pub struct Writer {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<WriterStats>,
}

/// Counters of the writer's work, for tests and `/metrics`.
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Writes (jobs) in those transactions.
    pub writes: AtomicU64,
    /// Writes per commit.
    pub batch_size: Histogram,
    /// Time from BEGIN to the end of COMMIT (the fsync, with `full`).
    pub commit_seconds: Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            commits: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            batch_size: Histogram::new(SIZE_BUCKETS),
            commit_seconds: Histogram::new(SECONDS_BUCKETS),
        }
    }
}

impl Writer {
    pub fn spawn(conn: Connection) -> std::io::Result<Writer> {
        let (jobs, queue) = crossbeam_channel::bounded(QUEUE_CAPACITY);
        let stats = Arc::new(WriterStats::default());
        let thread = {
            let stats = stats.clone();
            std::thread::Builder::new()
                .name("db-writer".into())
                .spawn(move || run(conn, &queue, &stats))?
        };
        Ok(Writer {
            jobs: Some(jobs),
            thread: Some(thread),
            stats,
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `work` in a transaction shared with other callers' work, then
    /// `after_commit` on the writer thread, in commit order, and returns
    /// `work`'s value once it is durable (per the connection's
    /// `synchronous` setting).
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        after_commit: impl FnOnce(&T) + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = crossbeam_channel::bounded(1);
        let fail_answer = answer.clone();
        let job = Job {
            run: Box::new(move |tx| {
                let result = in_savepoint(tx, work);
                Box::new(move |committed| {
                    let outcome = match (result, committed) {
                        (Ok(value), Ok(())) => {
                            after_commit(&value);
                            Ok(value)
                        }
                        (Ok(_), Err(e)) => Err(StoreError::Commit(e.to_string())),
                        (Err(e), _) => Err(e),
                    };
                    let _ = answer.send(outcome);
                })
            }),
            fail: Box::new(move |error| {
                let _ = fail_answer.send(Err(error));
            }),
        };
        let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
        jobs.send(job).map_err(|_| StoreError::Closed)?;
        answered.recv().map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Writer {
    /// Lets the writer finish the jobs already queued, then closes the
    /// connection (SQLite checkpoints the WAL when the last one closes).
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn in_savepoint<T>(
    tx: &mut Transaction<'_>,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let savepoint = tx.savepoint()?;
    let value = work(&savepoint)?; // dropping the savepoint rolls it back
    savepoint.commit()?;
    Ok(value)
}

fn run(mut conn: Connection, queue: &Receiver<Job>, stats: &WriterStats) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));

        let started = Instant::now();
        let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                log::error!("database writer cannot begin a transaction: {e}");
                for job in batch {
                    (job.fail)(StoreError::Commit(e.to_string()));
                }
                continue;
            }
        };
        let completions: Vec<Completion> =
            batch.into_iter().map(|job| (job.run)(&mut tx)).collect();
        let committed = tx.commit().map_err(StoreError::from);
        match &committed {
            Ok(()) => {
                stats.commit_seconds.observe_duration(started.elapsed());
                stats.batch_size.observe(completions.len() as f64);
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats
                    .writes
                    .fetch_add(completions.len() as u64, Ordering::Relaxed);
            }
            Err(e) => log::error!(
                "database commit of {} writes failed: {e}",
                completions.len()
            ),
        }
        for complete in completions {
            complete(committed.as_ref().map(|_| ()));
        }
    }
}
