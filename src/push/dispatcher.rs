//! When to push: the first message to an offline user at once, the rest
//! of a burst when its coalescing window ends, and retries when they are
//! due. One thread; it only keeps time and hands jobs to the senders.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::delivery::{Attempt, Job, Offline};
use crate::metrics::Metrics;
use crate::models::UserId;

/// The wait before the first retry; each next one waits twice as long.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait a push service's `Retry-After` can ask for.
pub const RETRY_LONGEST: Duration = Duration::from_secs(60);

/// What the dispatcher waits for, by time.
enum Due {
    /// The coalescing window of this user ends.
    WindowEnds(UserId),
    /// A retry.
    Retry(Attempt),
}

/// A user's coalescing window.
struct Window {
    /// The newest message that arrived during it, to push when it ends.
    waiting: Option<Offline>,
}

pub(super) struct Dispatcher {
    coalesce: Duration,
    jobs: Sender<Job>,
    /// Users pushed to within the last `coalesce`.
    windows: HashMap<UserId, Window>,
    /// When things are due, soonest first, by their number in
    /// `scheduled` (a number keeps equal times in order and spares `Due`
    /// an ordering).
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    scheduled: HashMap<u64, Due>,
    next_order: u64,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    pub(super) fn new(coalesce: Duration, jobs: Sender<Job>, metrics: Arc<Metrics>) -> Dispatcher {
        Dispatcher {
            coalesce,
            jobs,
            windows: HashMap::new(),
            due: BinaryHeap::new(),
            scheduled: HashMap::new(),
            next_order: 0,
            metrics,
        }
    }

    pub(super) fn run(
        mut self,
        offered: &Receiver<Offline>,
        retried: &Receiver<Attempt>,
        stop: &Receiver<()>,
    ) {
        loop {
            let timeout = self
                .due
                .peek()
                .map_or(Duration::from_secs(3600), |Reverse((at, _))| {
                    at.saturating_duration_since(Instant::now())
                });
            crossbeam_channel::select! {
                recv(offered) -> offline => match offline {
                    Ok(offline) => self.offer(offline),
                    Err(_) => return,
                },
                recv(retried) -> attempt => {
                    if let Ok(attempt) = attempt {
                        let wait = attempt
                            .retry_after
                            .map_or_else(|| retry_wait(attempt.made), |asked| asked.min(RETRY_LONGEST));
                        self.schedule(Instant::now() + wait, Due::Retry(attempt));
                    }
                },
                recv(stop) -> _ => return,
                default(timeout) => {}
            }
            let now = Instant::now();
            while let Some(Reverse((at, order))) = self.due.peek().copied() {
                if at > now {
                    break;
                }
                self.due.pop();
                match self.scheduled.remove(&order) {
                    Some(Due::WindowEnds(user)) => self.window_ends(user),
                    Some(Due::Retry(attempt)) => self.hand(Job::Again(attempt)),
                    None => {}
                }
            }
        }
    }

    fn offer(&mut self, offline: Offline) {
        match self.windows.get_mut(&offline.recipient) {
            // Pushed to recently: this one waits for the window's end.
            Some(window) => window.waiting = Some(offline),
            None => {
                let user = offline.recipient;
                self.windows.insert(user, Window { waiting: None });
                self.schedule(Instant::now() + self.coalesce, Due::WindowEnds(user));
                self.hand(Job::Recipient(Arc::new(offline)));
            }
        }
    }

    /// Pushes what waited, and starts a new window if something did.
    fn window_ends(&mut self, user: UserId) {
        let Some(window) = self.windows.remove(&user) else {
            return;
        };
        if let Some(offline) = window.waiting {
            self.offer(offline);
        }
    }

    fn schedule(&mut self, at: Instant, due: Due) {
        let order = self.next_order;
        self.next_order += 1;
        self.scheduled.insert(order, due);
        self.due.push(Reverse((at, order)));
    }

    /// Gives a job to the workers, or drops it if they are that far behind.
    fn hand(&self, job: Job) {
        if self.jobs.try_send(job).is_err() {
            self.metrics.pushes_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How long to wait before try number `made + 1`.
fn retry_wait(made: u32) -> Duration {
    RETRY_FIRST.saturating_mul(1 << made.saturating_sub(1).min(16))
}
