//! Sending pushes, off every path a message takes.
//!
//! The hub offers each message whose recipient has no open connection
//! ([`PushQueue::offer`]); it never waits: when the queue is full the push
//! is dropped and counted, never the message. One dispatcher thread then
//! decides when to push, and a few workers do the slow part (read the
//! subscriptions, encrypt, POST with timeouts):
//!
//! - **Coalescing.** The first message to an offline user is pushed at
//!   once. Later ones within [`PushSettings::coalesce`] wait, and only the
//!   newest of them is pushed when that window ends: a burst of fifty
//!   messages in a minute gives two pushes per subscription. Each push
//!   also names its conversation (`Topic`), so a push service that holds
//!   several for a sleeping phone keeps only the newest.
//! - **Retries.** A push service that answers 429 or 5xx, or cannot be
//!   reached, gets the push again after
//!   [`RETRY_FIRST`](super::dispatcher::RETRY_FIRST), doubling, at most
//!   [`ATTEMPTS`](super::sender::ATTEMPTS) times (sooner or later if it
//!   says `Retry-After`, up to
//!   [`RETRY_LONGEST`](super::dispatcher::RETRY_LONGEST)). 404 and 410 mean the subscription is gone: it is
//!   deleted.
//! - **Only public addresses** ([`super::address`]), unless the operator
//!   allows private ones.
//!
//! Here: the queue and the threads. [`super::dispatcher`] decides when,
//! [`super::sender`] sends one push, [`super::client`] is the HTTP client.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

use super::client;
use super::dispatcher::Dispatcher;
use super::sender::{Tokens, Worker};
use super::vapid::VapidKey;
use crate::metrics::Metrics;
use crate::models::{Message, MessageId, UserId};
use crate::repo::Store;
use crate::repo::push::Subscription;

/// Threads that send pushes: each waits on one push service at a time.
pub const WORKERS: usize = 4;
/// At shutdown, how long pushes in flight may take to finish; a worker
/// still waiting on a push service then is left to its timeout.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// What the operator chose (`--push-*`).
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Put the first characters of the message in the push.
    pub preview: bool,
    /// Send to private addresses too, and over plain `http` (tests, LAN
    /// push services).
    pub allow_private: bool,
    /// After a push, how long further messages to that user wait.
    pub coalesce: Duration,
    /// Pushes that may wait, for the dispatcher and for the workers each
    /// (`--push-queue`); beyond that they are dropped.
    pub queue: usize,
    /// TLS that trusts more than the public roots (`--push-ca-file`, see
    /// [`client::trusting`](super::client::trusting)).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Who runs this server, for push services (`mailto:` or `https:`).
    pub contact: Option<String>,
}

/// A message for a user who was not connected.
#[derive(Debug, Clone)]
pub struct Offline {
    pub recipient: UserId,
    pub sender: UserId,
    pub message_id: MessageId,
}

/// The hub's side: offers messages, never waits.
#[derive(Clone)]
pub struct PushQueue {
    offers: Sender<Offline>,
    metrics: Arc<Metrics>,
}

impl PushQueue {
    /// A queue that pushes nothing (hub tests).
    #[cfg(test)]
    pub fn nowhere(metrics: Arc<Metrics>) -> PushQueue {
        let (offers, _) = bounded(0);
        PushQueue { offers, metrics }
    }

    /// Queues a push for `message`, whose recipient has no connection.
    pub fn offer(&self, message: &Message) {
        let offline = Offline {
            recipient: message.receiver_id,
            sender: message.sender_id,
            message_id: message.id,
        };
        if let Err(TrySendError::Full(_)) = self.offers.try_send(offline) {
            self.metrics.pushes_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One push to one subscription, maybe a retry.
pub(super) struct Attempt {
    pub(super) offline: Arc<Offline>,
    pub(super) subscription: Subscription,
    /// Tries made so far.
    pub(super) made: u32,
    /// What the push service asked for in `Retry-After`, if it did.
    pub(super) retry_after: Option<Duration>,
}

/// Work for the workers.
pub(super) enum Job {
    /// Push `Offline` to every subscription of its recipient.
    Recipient(Arc<Offline>),
    /// Try one subscription again.
    Again(Attempt),
}

/// The running push threads; [`Pusher::stop`] ends them.
pub struct Pusher {
    stop: Sender<()>,
    dispatcher: JoinHandle<()>,
    /// Each worker sends on it (or drops it) when it ends.
    workers_done: Receiver<()>,
    /// Set at shutdown: workers take no further job.
    stopping: Arc<AtomicBool>,
}

impl Pusher {
    pub fn spawn(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        vapid: Arc<VapidKey>,
        settings: PushSettings,
    ) -> io::Result<(PushQueue, Pusher)> {
        let (offers, offered) = bounded(settings.queue);
        let (jobs, work) = bounded::<Job>(settings.queue);
        let (retries, retried) = bounded::<Attempt>(settings.queue);
        let (stop, stopped) = bounded(1);
        let (worker_done, workers_done) = bounded(WORKERS);
        let stopping = Arc::new(AtomicBool::new(false));
        let agent = client::agent(settings.allow_private, settings.tls.clone());
        let tokens = Arc::new(Tokens::new(vapid, settings.contact.clone()));
        for n in 0..WORKERS {
            let worker = Worker {
                store: store.clone(),
                metrics: metrics.clone(),
                tokens: tokens.clone(),
                settings: settings.clone(),
                agent: agent.clone(),
                retries: retries.clone(),
            };
            let (work, done, stopping) = (work.clone(), worker_done.clone(), stopping.clone());
            thread::Builder::new()
                .name(format!("push-{n}"))
                .spawn(move || {
                    crate::background::lower_priority("a push thread");
                    for job in work {
                        if stopping.load(Ordering::Relaxed) {
                            break;
                        }
                        worker.run(job);
                    }
                    let _ = done.send(());
                })?;
        }
        let dispatcher = Dispatcher::new(settings.coalesce, jobs, metrics.clone());
        let dispatcher = thread::Builder::new()
            .name("push-dispatcher".into())
            .spawn(move || dispatcher.run(&offered, &retried, &stopped))?;
        let pusher = Pusher {
            stop,
            dispatcher,
            workers_done,
            stopping,
        };
        Ok((PushQueue { offers, metrics }, pusher))
    }

    /// Ends the threads; pushes not yet sent are dropped. Waits at most
    /// [`STOP_WAIT`] for the pushes in flight.
    pub fn stop(self) {
        self.stopping.store(true, Ordering::Relaxed);
        let _ = self.stop.send(());
        let _ = self.dispatcher.join();
        let deadline = Instant::now() + STOP_WAIT;
        for _ in 0..WORKERS {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.workers_done.recv_timeout(left).is_err() {
                log::warn!("push: stopping with a push in flight; it ends with its timeout");
                return;
            }
        }
    }
}
