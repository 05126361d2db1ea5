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
use std::thread::{self, JoinHandle};
use std::time::Duration;

use chrono::Utc;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::models::MessageId;
use crate::repo::{Store, StoreError};

/// Messages deleted per transaction: small enough that a send waits for
/// one batch at most, large enough that a backlog goes quickly.
pub const BATCH: u32 = 500;
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
    sweep(store, retention, &mut cursor)
}

fn sweep(
    store: &dyn Store,
    retention: Option<Duration>,
    cursor: &mut RetentionCursor,
) -> Result<usize, StoreError> {
    let mut deleted = 0;
    loop {
        let batch = store.expire_due(Utc::now(), BATCH)?;
        deleted += batch;
        if batch < BATCH as usize {
            break;
        }
    }
    if let Some(age) = retention.and_then(|age| chrono::Duration::from_std(age).ok()) {
        loop {
            let round = store.expire_older(Utc::now() - age, cursor.0, BATCH)?;
            deleted += round.deleted;
            cursor.0 = round.after;
            if round.done {
                break;
            }
        }
    }
    Ok(deleted)
}

/// The expiry thread; stopped by [`Expirer::stop`].
pub struct Expirer {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Expirer {
    pub fn spawn(store: Arc<dyn Store>, retention: Option<Duration>) -> std::io::Result<Expirer> {
        let (stop, stopped) = bounded(1);
        let thread = thread::Builder::new()
            .name("expiry".into())
            .spawn(move || run(&*store, retention, &stopped))?;
        Ok(Expirer { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run(store: &dyn Store, retention: Option<Duration>, stopped: &Receiver<()>) {
    let mut cursor = RetentionCursor::default();
    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(PERIOD) {
        match sweep(store, retention, &mut cursor) {
            Ok(0) => {}
            Ok(n) => log::info!("{n} message(s) disappeared"),
            Err(StoreError::Closed) => return,
            Err(e) => log::error!("deleting messages that are due: {e}"),
        }
    }
}
