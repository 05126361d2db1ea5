//! Disappearing messages: the thread that deletes what is due.
//!
//! A message sent while its conversation has a timer carries `expires_at`;
//! `--retention` makes every message due once it is that old. Either way it
//! goes as a deletion for everyone by its sender: its text, versions,
//! reactions, search entry and file go, and both sides hear
//! `message_deleted`, live or when they sync. The deletions are writes
//! like any other, queued for the database writer in batches, so live
//! traffic passes between them; the hub only relays their changes.
//!
//! At start, [`catch_up`] runs before the server takes a connection: what
//! fell due while it was stopped is gone before anyone can read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::metrics::Metrics;
use crate::models::MessageId;
use crate::repo::{Store, StoreError};

/// Messages deleted per transaction at start, before the server takes a
/// connection: nobody waits for the writer then.
pub const START_BATCH: u32 = 500;
/// Messages deleted per transaction while the server runs. Every send
/// committed beside a batch waits for it, so it is small.
pub const LIVE_BATCH: u32 = 4;
/// While the server runs, the sweep pauses after each batch for this many
/// times as long as the batch took: it takes at most a fifth of the
/// writer's time, and sends the rest. A backlog of a million then takes
/// minutes, and messages keep their latency (docs/BENCHMARKS.md).
pub const LIVE_PAUSE_FACTOR: u32 = 4;
/// How often the thread looks for messages that fell due: a message
/// disappears at most this long after its time.
pub const PERIOD: Duration = Duration::from_millis(500);

/// Where `--retention` left off: ids only grow, so each round starts after
/// the last message it looked at.
#[derive(Debug, Default, Clone, Copy)]
struct RetentionCursor(MessageId);

/// Deletes everything due now, timers and `--retention` alike, batch by
/// batch; returns how many messages went.
pub fn catch_up(store: &dyn Store, retention: Option<Duration>) -> Result<usize, StoreError> {
    let mut cursor = RetentionCursor::default();
    let sweep = Sweep {
        store,
        retention,
        batch: START_BATCH,
        pause_factor: 0,
        stop: &crossbeam_channel::never(),
        expired: &AtomicU64::new(0),
    };
    sweep.run(&mut cursor)
}

/// One pass over what is due.
struct Sweep<'a> {
    store: &'a dyn Store,
    retention: Option<Duration>,
    /// Messages per transaction.
    batch: u32,
    /// The pause after a batch, in multiples of the time it took.
    pause_factor: u32,
    /// Asked to stop: looked at between two batches.
    stop: &'a Receiver<()>,
    /// Counts the messages deleted.
    expired: &'a AtomicU64,
}

impl Sweep<'_> {
    fn run(&self, cursor: &mut RetentionCursor) -> Result<usize, StoreError> {
        let mut deleted = 0;
        while self.stop.is_empty() {
            let started = Instant::now();
            let batch = self.store.expire_due(Utc::now(), self.batch)?;
            self.count(&mut deleted, batch);
            if batch < self.batch as usize {
                break;
            }
            self.pause(started);
        }
        if let Some(age) = self
            .retention
            .and_then(|age| chrono::Duration::from_std(age).ok())
        {
            while self.stop.is_empty() {
                let started = Instant::now();
                let round = self
                    .store
                    .expire_older(Utc::now() - age, cursor.0, self.batch)?;
                self.count(&mut deleted, round.deleted);
                cursor.0 = round.after;
                if round.done {
                    break;
                }
                self.pause(started);
            }
        }
        Ok(deleted)
    }

    /// Leaves the writer to others for a while after a batch that began
    /// at `started`.
    fn pause(&self, started: Instant) {
        if self.pause_factor > 0 {
            thread::sleep(started.elapsed() * self.pause_factor);
        }
    }

    fn count(&self, deleted: &mut usize, batch: usize) {
        *deleted += batch;
        self.expired.fetch_add(batch as u64, Ordering::Relaxed);
    }
}

/// The expiry thread; stopped by [`Expirer::stop`].
pub struct Expirer {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Expirer {
    pub fn spawn(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        retention: Option<Duration>,
    ) -> std::io::Result<Expirer> {
        let (stop, stopped) = bounded(1);
        let thread = thread::Builder::new()
            .name("expiry".into())
            .spawn(move || {
                let sweep = Sweep {
                    store: &*store,
                    retention,
                    batch: LIVE_BATCH,
                    pause_factor: LIVE_PAUSE_FACTOR,
                    stop: &stopped,
                    expired: &metrics.messages_expired,
                };
                run(&sweep)
            })?;
        Ok(Expirer { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run(sweep: &Sweep<'_>) {
    let mut cursor = RetentionCursor::default();
    while let Err(RecvTimeoutError::Timeout) = sweep.stop.recv_timeout(PERIOD) {
        match sweep.run(&mut cursor) {
            Ok(0) => {}
            Ok(n) => log::info!("{n} message(s) disappeared"),
            Err(StoreError::Closed) => return,
            Err(e) => log::error!("deleting messages that are due: {e}"),
        }
    }
}
