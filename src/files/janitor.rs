//! Removing files nobody refers to any more.
//!
//! A stored file is shared by every upload of the same bytes, so it can go
//! only when the last row that names it is gone. Rows go when a message is
//! deleted for everyone (the store then releases their digests, see
//! [`Store::released_files`]) and when an upload stays unsent for
//! `--unsent-upload-lifetime`. This thread takes both, asks the database
//! whether anything still refers to each file, and removes it if not.
//!
//! At start it also looks at every stored file once: a crash between
//! storing a file and recording its row (or between deleting a row and
//! removing its file) leaves a file that nothing refers to, and this is
//! where it goes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, select};

use super::store::FileStore;
use crate::metrics::Metrics;
use crate::repo::Store;

/// The longest wait between two looks for unsent uploads; a short
/// lifetime (in tests) is looked at four times per lifetime.
const MAX_SWEEP_PERIOD: Duration = Duration::from_secs(60 * 60);

/// The thread that removes unused files; stopped by [`Janitor::stop`].
pub struct Janitor {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl Janitor {
    pub fn spawn(
        store: Arc<dyn Store>,
        files: Arc<FileStore>,
        metrics: Arc<Metrics>,
        unsent_lifetime: Duration,
    ) -> std::io::Result<Janitor> {
        let (stop, stopped) = bounded(1);
        let released = store.released_files();
        let janitor = Cleaner {
            store,
            files,
            metrics,
        };
        let thread = thread::Builder::new()
            .name("file-janitor".into())
            .spawn(move || janitor.run(&released, &stopped, unsent_lifetime))?;
        Ok(Janitor { stop, thread })
    }

    pub fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

/// Removes the file `sha256` if no upload refers to it (also what an
/// upload that was refused calls for its bytes).
pub fn remove_if_unused(
    store: &Arc<dyn Store>,
    files: &FileStore,
    metrics: &Metrics,
    sha256: &str,
) {
    let in_use = |sha256: &str| {
        store
            .file_in_use(sha256)
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    match files.remove_if_unused(sha256, in_use) {
        Ok(true) => {
            metrics.files_removed.fetch_add(1, Ordering::Relaxed);
            log::debug!("removed the unused file {sha256}");
        }
        Ok(false) => {}
        Err(e) => log::warn!("cannot remove the unused file {sha256}: {e}"),
    }
}

/// What the thread works with.
struct Cleaner {
    store: Arc<dyn Store>,
    files: Arc<FileStore>,
    metrics: Arc<Metrics>,
}

impl Cleaner {
    fn run(&self, released: &Receiver<String>, stopped: &Receiver<()>, unsent_lifetime: Duration) {
        self.sweep_all();
        let period = (unsent_lifetime / 4).clamp(Duration::from_millis(10), MAX_SWEEP_PERIOD);
        let mut next_sweep = Instant::now();
        loop {
            select! {
                recv(released) -> sha256 => match sha256 {
                    Ok(sha256) => self.remove_if_unused(&sha256),
                    Err(_) => return,
                },
                recv(stopped) -> _ => return,
                default(next_sweep.saturating_duration_since(Instant::now())) => {
                    self.remove_unsent(unsent_lifetime);
                    next_sweep = Instant::now() + period;
                }
            }
        }
    }

    fn remove_if_unused(&self, sha256: &str) {
        remove_if_unused(&self.store, &self.files, &self.metrics, sha256);
    }

    /// Removes uploads older than `lifetime` that no message carries.
    fn remove_unsent(&self, lifetime: Duration) {
        let Some(before) = chrono::Duration::from_std(lifetime)
            .ok()
            .and_then(|age| chrono::Utc::now().checked_sub_signed(age))
        else {
            return;
        };
        match self.store.remove_unsent_attachments(before) {
            Ok(digests) => {
                if !digests.is_empty() {
                    log::info!("removing {} unsent uploads", digests.len());
                }
                for sha256 in digests {
                    self.remove_if_unused(&sha256);
                }
            }
            Err(e) => log::warn!("cannot remove unsent uploads: {e}"),
        }
    }

    /// Looks at every stored file once.
    fn sweep_all(&self) {
        match self.files.all_names() {
            Ok(names) => {
                for sha256 in names {
                    self.remove_if_unused(&sha256);
                }
            }
            Err(e) => log::warn!("cannot list the stored files: {e}"),
        }
    }
}
