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
//! Callers either wait for their answer ([`Writer::write`]) or leave a
//! completion that runs on this thread, in commit order, once the commit is
//! known ([`Writer::submit`]). The chat path submits: a WebSocket reader
//! does not wait for the disk before reading its next frame, and each new
//! message is handed to the hub in id order, which is what lets a
//! reconnecting client resume from the last id it saw.

use std::marker::PhantomData;
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
type Job = Box<dyn PendingWrite>;

/// A queued write. Exactly one of the two methods is called.
trait PendingWrite: Send {
    /// Runs the work in its own savepoint of `tx`; returns what to do once
    /// the commit is known.
    fn run(self: Box<Self>, tx: &mut Transaction<'_>) -> Completion;
    /// No transaction could be started: answer with `error`.
    fn fail(self: Box<Self>, error: StoreError);
}

/// A caller's work and the completion that receives its outcome.
struct Submitted<T, W, D> {
    work: W,
    done: D,
    value: PhantomData<fn() -> T>,
}

impl<T, W, D> PendingWrite for Submitted<T, W, D>
where
    T: Send + 'static,
    W: FnOnce(&Connection) -> Result<T, StoreError> + Send,
    D: FnOnce(Result<T, StoreError>) + Send + 'static,
{
    fn run(self: Box<Self>, tx: &mut Transaction<'_>) -> Completion {
        let Submitted { work, done, .. } = *self;
        let result = in_savepoint(tx, work);
        Box::new(move |committed| {
            done(match (result, committed) {
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(e)) => Err(StoreError::Commit(e.to_string())),
                (Err(e), _) => Err(e),
            })
        })
    }

    fn fail(self: Box<Self>, error: StoreError) {
        (self.done)(Err(error));
    }
}

/// Finishes a job after the commit: `Ok` if its transaction committed.
type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// The caller's side: queues jobs.
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

    /// Queues `work` to run in a transaction shared with other callers'
    /// work, and returns without waiting for it. Once the commit is known,
    /// `done` gets `work`'s value (durable per the connection's
    /// `synchronous` setting) or the error, on the writer thread, in commit
    /// order. `done` must not block: the next commit waits for it.
    ///
    /// Waits only while the queue is full: that wait is the back-pressure
    /// that keeps a flood of writes from growing memory.
    pub fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        done: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) {
        let job: Job = Box::new(Submitted {
            work,
            done,
            value: PhantomData,
        });
        match self.jobs.as_ref() {
            Some(jobs) => {
                if let Err(crossbeam_channel::SendError(job)) = jobs.send(job) {
                    job.fail(StoreError::Closed);
                }
            }
            None => job.fail(StoreError::Closed),
        }
    }

    /// Like [`Writer::submit`], but waits for the answer.
    pub fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = crossbeam_channel::bounded(1);
        self.submit(work, move |outcome| {
            let _ = answer.send(outcome);
        });
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
                    job.fail(StoreError::Commit(e.to_string()));
                }
                continue;
            }
        };
        let completions: Vec<Completion> = batch.into_iter().map(|job| job.run(&mut tx)).collect();
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
