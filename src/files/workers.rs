//! A small pool of threads for image work (metadata removal, thumbnails).
//!
//! Decoding a photo takes a core for a tenth of a second and up to
//! [`super::image::MAX_IMAGE_PIXELS`] times 4 bytes of memory. On the REST
//! workers, a burst of uploads would take every worker and that much
//! memory per worker; here at most [`ImageWorkers::threads`] images are
//! decoded at once and the others wait their turn (holding only where
//! their bytes are), so the server's memory stays bounded whatever
//! arrives. A full queue is told to retry (503).

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::thread;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::image::{ImageError, Prepared, prepare};

/// Where an image's bytes are.
#[derive(Debug)]
pub enum ImageSource {
    /// A file (the upload as its connection's thread wrote it to disk).
    File(PathBuf),
    /// In memory (a body that was not written to disk).
    Bytes(Vec<u8>),
}

/// Why image work was not done.
#[derive(Debug, thiserror::Error)]
pub enum WorkError {
    /// Every thread is busy and the queue is full: retry later.
    #[error("too many images are being processed")]
    Busy,
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("reading the upload failed: {0}")]
    Io(#[from] std::io::Error),
}

struct Job {
    source: ImageSource,
    mime: String,
    keep_metadata: bool,
    reply: Sender<Result<Prepared, WorkError>>,
}

/// The pool's queue; the threads end when it is dropped.
#[derive(Debug, Clone)]
pub struct ImageWorkers {
    jobs: Sender<Job>,
    threads: usize,
}

impl ImageWorkers {
    /// Starts `threads` threads (at least one), with room for `queued`
    /// images waiting (a waiting image holds its path, not its bytes).
    pub fn start(threads: usize, queued: usize) -> std::io::Result<ImageWorkers> {
        let threads = threads.max(1);
        let (jobs, queue) = bounded::<Job>(queued);
        for n in 0..threads {
            let queue: Receiver<Job> = queue.clone();
            thread::Builder::new()
                .name(format!("images-{n}"))
                .spawn(move || {
                    crate::background::lower_priority("an image thread");
                    for job in queue {
                        // A decoder that panics on a hostile file must
                        // not take the thread (and the pool) with it.
                        let done = panic::catch_unwind(AssertUnwindSafe(|| {
                            run(job.source, &job.mime, job.keep_metadata)
                        }))
                        .unwrap_or_else(|_| {
                            Err(ImageError::Undecodable("the decoder failed".into()).into())
                        });
                        // The asker may have gone (its connection closed).
                        let _ = job.reply.send(done);
                    }
                })?;
        }
        Ok(ImageWorkers { jobs, threads })
    }

    /// How many images are worked on at once.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Prepares an image (see [`prepare`]) on the pool and waits for it;
    /// [`WorkError::Busy`] at once when the queue is full.
    pub fn prepare(
        &self,
        source: ImageSource,
        mime: &str,
        keep_metadata: bool,
    ) -> Result<Prepared, WorkError> {
        let (reply, done) = bounded(1);
        let job = Job {
            source,
            mime: mime.to_owned(),
            keep_metadata,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(WorkError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(std::io::Error::other("the image workers have stopped").into());
            }
        }
        done.recv()
            .map_err(|_| std::io::Error::other("an image worker stopped"))?
    }
}

fn run(source: ImageSource, mime: &str, keep_metadata: bool) -> Result<Prepared, WorkError> {
    let bytes = match source {
        ImageSource::File(path) => std::fs::read(path)?,
        ImageSource::Bytes(bytes) => bytes,
    };
    Ok(prepare(bytes, mime, keep_metadata)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `nice` value of this process's thread named `name`, from
    /// `/proc` (field 19 of `stat`).
    fn niceness_of(name: &str) -> Option<i64> {
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let task = task.ok()?.path();
            let comm = std::fs::read_to_string(task.join("comm")).ok()?;
            if comm.trim() == name {
                let stat = std::fs::read_to_string(task.join("stat")).ok()?;
                // After the command name (in parentheses): state is field 3.
                let after = stat.rsplit_once(')')?.1;
                return after.split_whitespace().nth(16)?.parse().ok();
            }
        }
        None
    }

    #[test]
    fn image_threads_run_at_a_lower_priority_and_survive_bad_input() {
        let workers = ImageWorkers::start(1, 4).expect("start");
        // A file that is no image: an answer, not a dead thread.
        let answer = workers.prepare(
            ImageSource::Bytes(b"not a png".to_vec()),
            "image/png",
            false,
        );
        assert!(matches!(
            answer,
            Err(WorkError::Image(ImageError::Undecodable(_)))
        ));
        let niceness = niceness_of("images-0").expect("the thread is listed");
        // Relative to the process's own (a test run may itself be niced).
        // SAFETY: getpriority only reads its integer arguments.
        let ours = i64::from(unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
        assert_eq!(
            niceness,
            (ours + i64::from(crate::background::NICENESS)).min(19)
        );
    }
}
