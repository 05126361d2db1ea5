//! The database writer: one thread that owns the only write connection and
//! commits many writes per transaction (group commit).
//!
//! A commit costs one fsync (with `--durability full`), whether it holds one
//! message or five hundred. So the writer takes every job that is waiting,
//! runs them one after the other in one transaction, commits once, and only
//! then answers each caller. Under load the batches grow by themselves:
//! while one commit runs, the next batch queues. Nobody waits for a timer.
//!
//! One failing job must not undo the others. A savepoint per job would do
//! it, but costs more than the chat insert itself (SQLite copies each page a
//! savepoint touches; docs/BENCHMARKS.md has the figure). The writer
//! relies on SQLite's statement atomicity instead: a failed statement leaves
//! nothing behind, so a job that fails having changed no row (a refused
//! insert, an unknown user) is simply left out. A job that fails after it
//! changed rows (an I/O error between two statements) would leave half a
//! write, so then the whole batch is rolled back and every caller told.
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
    /// Runs the work in `tx`; returns whether it succeeded, and what to do
    /// once the commit is known.
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> (bool, Completion);
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
    fn run(self: Box<Self>, tx: &Transaction<'_>) -> (bool, Completion) {
        let Submitted { work, done, .. } = *self;
        let result = work(tx);
        let succeeded = result.is_ok();
        let completion: Completion = Box::new(move |committed| {
            done(match (result, committed) {
                (Ok(value), Ok(())) => Ok(value),
                (Ok(_), Err(e)) => Err(StoreError::Commit(e.to_string())),
                (Err(e), _) => Err(e),
            })
        });
        (succeeded, completion)
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

    /// Jobs waiting for the writer thread (tests use it to know a batch is
    /// queued before letting the writer go).
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.jobs.as_ref().map_or(0, Sender::len)
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
        crate::repo::wait_for_reply(|reply| {
            self.submit(work, move |outcome| {
                let _ = reply.send(outcome);
            })
        })
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

fn run(mut conn: Connection, queue: &Receiver<Job>, stats: &WriterStats) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));

        let started = Instant::now();
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                log::error!("database writer cannot begin a transaction: {e}");
                for job in batch {
                    job.fail(StoreError::Commit(e.to_string()));
                }
                continue;
            }
        };
        let (completions, broken) = run_batch(&tx, batch);
        let committed = match broken {
            None => tx.commit().map_err(StoreError::from),
            Some(why) => Err(StoreError::Commit(why.into())), // dropping tx rolls back
        };
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

/// Runs a batch's jobs in `tx`. Returns their completions, and why the
/// transaction must not be committed, if it must not.
fn run_batch(tx: &Transaction<'_>, batch: Vec<Job>) -> (Vec<Completion>, Option<&'static str>) {
    let mut completions = Vec::with_capacity(batch.len());
    let mut broken = None;
    for job in batch {
        if broken.is_some() {
            // Not run: nothing of it would be kept.
            job.fail(StoreError::Commit("rolled back with its batch".into()));
            continue;
        }
        let changes_before = tx.total_changes();
        let (succeeded, completion) = job.run(tx);
        completions.push(completion);
        if !succeeded {
            if tx.is_autocommit() {
                // SQLite gave up the whole transaction (some I/O errors do).
                broken = Some("the transaction was aborted by a failed write");
            } else if tx.total_changes() != changes_before {
                broken = Some("a failed write left partial changes");
            }
        }
    }
    (completions, broken)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer on a fresh file with one table, and a way to make its next
    /// jobs share one batch: the writer is held inside a job (its own
    /// batch) until the returned sender releases it, and the jobs queued
    /// meanwhile form the next batch.
    fn writer_with_queued_batch() -> (tempfile::TempDir, Writer, Sender<()>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = Connection::open(dir.path().join("w.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")
            .expect("schema");
        let writer = Writer::spawn(conn).expect("writer");
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        let (started, holding) = crossbeam_channel::bounded::<()>(1);
        writer.submit(
            move |_| {
                let _ = started.send(());
                released.recv().map_err(|_| StoreError::Closed)
            },
            |_| {},
        );
        holding.recv().expect("the writer holds");
        (dir, writer, release)
    }

    fn insert(x: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send {
        move |conn| {
            conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
            Ok(())
        }
    }

    fn count(writer: &Writer) -> i64 {
        writer
            .write(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?))
            .expect("count")
    }

    #[test]
    fn a_job_that_fails_without_changes_is_left_out_of_its_batch() {
        let (_dir, writer, release) = writer_with_queued_batch();
        let (outcome, outcomes) = crossbeam_channel::unbounded();
        for x in [1, 1, 2] {
            let outcome = outcome.clone();
            writer.submit(insert(x), move |r| {
                let _ = outcome.send(r.is_ok());
            });
        }
        release.send(()).expect("release");
        let results: Vec<bool> = outcomes.iter().take(3).collect();
        assert_eq!(results, [true, false, true], "the duplicate alone fails");
        assert_eq!(count(&writer), 2);
        // The holding job, the batch of three, the count.
        assert_eq!(writer.stats().commits.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_job_that_fails_after_changing_rows_rolls_back_its_batch() {
        let (_dir, writer, release) = writer_with_queued_batch();
        let (outcome, outcomes) = crossbeam_channel::unbounded();
        let half_done = |conn: &Connection| -> Result<(), StoreError> {
            conn.execute("INSERT INTO t (x) VALUES (10)", [])?;
            conn.execute("INSERT INTO t (x) VALUES (10)", [])?; // fails
            Ok(())
        };
        let tell = |outcome: &Sender<bool>| {
            let outcome = outcome.clone();
            move |r: Result<(), StoreError>| {
                let _ = outcome.send(r.is_ok());
            }
        };
        writer.submit(insert(1), tell(&outcome));
        writer.submit(half_done, tell(&outcome));
        writer.submit(insert(2), tell(&outcome));
        release.send(()).expect("release");
        let results: Vec<bool> = outcomes.iter().take(3).collect();
        assert_eq!(results.iter().filter(|ok| **ok).count(), 0, "{results:?}");
        assert_eq!(count(&writer), 0, "nothing of the batch was kept");
    }
}
