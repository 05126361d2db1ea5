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
//!   reached, gets the push again after [`RETRY_FIRST`], doubling, at most
//!   [`ATTEMPTS`] times (sooner or later if it says `Retry-After`, up to
//!   [`RETRY_LONGEST`]). 404 and 410 mean the subscription is gone: it is
//!   deleted.
//! - **Only public addresses** ([`super::address`]), unless the operator
//!   allows private ones.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use chrono::Utc;
use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use serde::Serialize;

use super::ece::{self, Receiver as Subscriber};
use super::vapid::{TOKEN_LIFETIME_SECONDS, VapidKey};
use crate::metrics::Metrics;
use crate::models::{Message, MessageId, UserId};
use crate::repo::Store;
use crate::repo::push::Subscription;

/// Threads that send pushes: each waits on one push service at a time.
pub const WORKERS: usize = 4;
/// How long a push service may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one push may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a push service keeps a push for a device that is off: a
/// notification a day late tells nothing the app will not show.
pub const TIME_TO_LIVE_SECONDS: u32 = 24 * 60 * 60;
/// Characters of the message in a push, when previews are on.
pub const PREVIEW_CHARS: usize = 100;
/// Tries of one push, the first included.
pub const ATTEMPTS: u32 = 4;
/// The wait before the first retry; each next one waits twice as long.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait a push service's `Retry-After` can ask for.
pub const RETRY_LONGEST: Duration = Duration::from_secs(60);
/// Push services whose signed token is kept (see [`Tokens`]).
const MAX_CACHED_TOKENS: usize = 1024;
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
    /// [`trusting`]).
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
    pub preview: String,
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
            preview: message.content.chars().take(PREVIEW_CHARS).collect(),
        };
        if let Err(TrySendError::Full(_)) = self.offers.try_send(offline) {
            self.metrics.pushes_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The payload the browser's service worker receives.
#[derive(Serialize)]
struct Payload<'a> {
    r#type: &'static str,
    from_user_id: UserId,
    nickname: &'a str,
    message_id: MessageId,
    #[serde(skip_serializing_if = "Option::is_none")]
    preview: Option<&'a str>,
}

/// One push to one subscription, maybe a retry.
struct Attempt {
    offline: Arc<Offline>,
    subscription: Subscription,
    /// Tries made so far.
    made: u32,
    /// What the push service asked for in `Retry-After`, if it did.
    retry_after: Option<Duration>,
}

/// Work for the workers.
enum Job {
    /// Push `Offline` to every subscription of its recipient.
    Recipient(Arc<Offline>),
    /// Try one subscription again.
    Again(Attempt),
}

/// What the dispatcher waits for, by time.
enum Due {
    /// The coalescing window of this user ends.
    WindowEnds(UserId),
    /// A retry.
    Retry(Attempt),
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
        let agent = agent(settings.allow_private, settings.tls.clone());
        let tokens = Arc::new(Tokens {
            vapid,
            contact: settings.contact.clone(),
            signed: Mutex::new(HashMap::new()),
        });
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
        let dispatcher = Dispatcher {
            coalesce: settings.coalesce,
            jobs,
            windows: HashMap::new(),
            due: BinaryHeap::new(),
            next_order: 0,
            metrics: metrics.clone(),
        };
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

/// A user's coalescing window.
struct Window {
    /// The newest message that arrived during it, to push when it ends.
    waiting: Option<Offline>,
}

struct Dispatcher {
    coalesce: Duration,
    jobs: Sender<Job>,
    /// Users pushed to within the last `coalesce`.
    windows: HashMap<UserId, Window>,
    /// What happens when, soonest first; the counter keeps equal times in
    /// order and spares `Due` an ordering.
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    next_order: u64,
    metrics: Arc<Metrics>,
}

impl Dispatcher {
    fn run(
        mut self,
        offered: &Receiver<Offline>,
        retried: &Receiver<Attempt>,
        stop: &Receiver<()>,
    ) {
        let mut waiting: HashMap<u64, Due> = HashMap::new();
        loop {
            let timeout = self
                .due
                .peek()
                .map_or(Duration::from_secs(3600), |Reverse((at, _))| {
                    at.saturating_duration_since(Instant::now())
                });
            crossbeam_channel::select! {
                recv(offered) -> offline => match offline {
                    Ok(offline) => self.offer(offline, &mut waiting),
                    Err(_) => return,
                },
                recv(retried) -> attempt => {
                    if let Ok(attempt) = attempt {
                        let wait = attempt
                            .retry_after
                            .map_or_else(|| retry_wait(attempt.made), |asked| asked.min(RETRY_LONGEST));
                        self.schedule(Instant::now() + wait, Due::Retry(attempt), &mut waiting);
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
                match waiting.remove(&order) {
                    Some(Due::WindowEnds(user)) => self.window_ends(user, &mut waiting),
                    Some(Due::Retry(attempt)) => self.hand(Job::Again(attempt)),
                    None => {}
                }
            }
        }
    }

    fn offer(&mut self, offline: Offline, waiting: &mut HashMap<u64, Due>) {
        match self.windows.get_mut(&offline.recipient) {
            // Pushed to recently: this one waits for the window's end.
            Some(window) => window.waiting = Some(offline),
            None => {
                let user = offline.recipient;
                self.windows.insert(user, Window { waiting: None });
                self.schedule(
                    Instant::now() + self.coalesce,
                    Due::WindowEnds(user),
                    waiting,
                );
                self.hand(Job::Recipient(Arc::new(offline)));
            }
        }
    }

    /// Pushes what waited, and starts a new window if something did.
    fn window_ends(&mut self, user: UserId, waiting: &mut HashMap<u64, Due>) {
        let Some(window) = self.windows.remove(&user) else {
            return;
        };
        if let Some(offline) = window.waiting {
            self.offer(offline, waiting);
        }
    }

    fn schedule(&mut self, at: Instant, due: Due, waiting: &mut HashMap<u64, Due>) {
        let order = self.next_order;
        self.next_order += 1;
        waiting.insert(order, due);
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

struct Worker {
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    tokens: Arc<Tokens>,
    settings: PushSettings,
    agent: ureq::Agent,
    retries: Sender<Attempt>,
}

/// Signed VAPID tokens by push service: a token is good for
/// [`TOKEN_LIFETIME_SECONDS`], so one signature serves every push to that
/// service for hours instead of costing one per push.
struct Tokens {
    vapid: Arc<VapidKey>,
    contact: Option<String>,
    /// Audience → (expiry, `Authorization` header).
    signed: Mutex<HashMap<String, (i64, String)>>,
}

impl Tokens {
    /// The header for a push to `audience`: the cached one while it has
    /// more than half its lifetime left, else a new one.
    fn authorization(&self, audience: &str) -> String {
        let now = Utc::now().timestamp();
        let mut signed = self
            .signed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((expires, header)) = signed.get(audience)
            && expires - now > TOKEN_LIFETIME_SECONDS / 2
        {
            return header.clone();
        }
        let expires = now + TOKEN_LIFETIME_SECONDS;
        let header = self
            .vapid
            .authorization(audience, expires, self.contact.as_deref());
        // Push services are few; a server that met too many starts over.
        if signed.len() >= MAX_CACHED_TOKENS {
            signed.clear();
        }
        signed.insert(audience.to_owned(), (expires, header.clone()));
        header
    }
}

/// What a push service answered.
enum Outcome {
    Sent,
    /// Try again later (429, 5xx, no answer), after what the service
    /// asked for if it did.
    Again(Option<Duration>),
    /// The subscription no longer exists (404, 410).
    Gone,
    /// Refused for good (another 4xx): logged, not retried.
    Refused,
}

impl Worker {
    fn run(&self, job: Job) {
        match job {
            Job::Recipient(offline) => {
                let subscriptions = match self.store.subscriptions_of(offline.recipient, Utc::now())
                {
                    Ok(subscriptions) => subscriptions,
                    Err(e) => {
                        log::error!("push to user {}: {e}", offline.recipient);
                        return;
                    }
                };
                for subscription in subscriptions {
                    self.attempt(Attempt {
                        offline: offline.clone(),
                        subscription,
                        made: 0,
                        retry_after: None,
                    });
                }
            }
            Job::Again(attempt) => self.attempt(attempt),
        }
    }

    fn attempt(&self, mut attempt: Attempt) {
        attempt.made += 1;
        match self.send(&attempt.offline, &attempt.subscription) {
            Outcome::Sent => {
                self.metrics.pushes_sent.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Gone => {
                self.metrics
                    .push_subscriptions_gone
                    .fetch_add(1, Ordering::Relaxed);
                if let Err(e) = self
                    .store
                    .forget_subscription(&attempt.subscription.endpoint)
                {
                    log::error!("forgetting a push subscription: {e}");
                }
            }
            Outcome::Again(retry_after) if attempt.made < ATTEMPTS => {
                attempt.retry_after = retry_after;
                if self.retries.try_send(attempt).is_err() {
                    self.metrics.pushes_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outcome::Again(_) | Outcome::Refused => {
                self.metrics.pushes_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn send(&self, offline: &Offline, subscription: &Subscription) -> Outcome {
        let nickname = match self.store.user(offline.sender) {
            Ok(Some(user)) => user.nickname,
            Ok(None) => return Outcome::Refused,
            Err(e) => {
                log::error!("push: reading user {}: {e}", offline.sender);
                return Outcome::Again(None);
            }
        };
        let payload = Payload {
            r#type: "message",
            from_user_id: offline.sender,
            nickname: &nickname,
            message_id: offline.message_id,
            preview: self.settings.preview.then_some(offline.preview.as_str()),
        };
        let Ok(plaintext) = serde_json::to_vec(&payload) else {
            return Outcome::Refused;
        };
        let body = match ece::Sender::random()
            .map_err(|e| e.to_string())
            .and_then(|sender| {
                let subscriber = Subscriber {
                    p256dh: &subscription.p256dh,
                    auth: &subscription.auth,
                };
                ece::encrypt(&plaintext, &subscriber, &sender).map_err(|e| e.to_string())
            }) {
            Ok(body) => body,
            Err(e) => {
                log::warn!(
                    "push: cannot encrypt for a subscription of user {}: {e}",
                    offline.recipient
                );
                return Outcome::Refused;
            }
        };
        let Some(audience) = super::endpoint::audience(&subscription.endpoint) else {
            return Outcome::Refused;
        };
        let authorization = self.tokens.authorization(&audience);
        let response = self
            .agent
            .post(&subscription.endpoint)
            .set("TTL", &TIME_TO_LIVE_SECONDS.to_string())
            .set("Urgency", "high")
            .set("Topic", &format!("conversation-{}", offline.sender))
            .set("Content-Encoding", "aes128gcm")
            .set("Content-Type", "application/octet-stream")
            .set("Authorization", &authorization)
            .send_bytes(&body);
        match response {
            Ok(_) => Outcome::Sent,
            Err(ureq::Error::Status(404 | 410, _)) => Outcome::Gone,
            Err(ureq::Error::Status(code, response)) if code == 429 || code >= 500 => {
                let asked = response
                    .header("Retry-After")
                    .and_then(|seconds| seconds.trim().parse().ok())
                    .map(Duration::from_secs);
                Outcome::Again(asked)
            }
            Err(ureq::Error::Status(code, _)) => {
                log::warn!(
                    "push to {audience} for user {}: refused with {code}",
                    offline.recipient
                );
                Outcome::Refused
            }
            Err(ureq::Error::Transport(e)) if refused_address(&e) => {
                log::warn!(
                    "push to {audience} for user {}: refused, it resolves to no public address",
                    offline.recipient
                );
                Outcome::Refused
            }
            Err(ureq::Error::Transport(e)) => {
                // The kind only: the error's text holds the endpoint, a
                // capability.
                log::warn!(
                    "push to {audience} for user {}: {}",
                    offline.recipient,
                    e.kind()
                );
                Outcome::Again(None)
            }
        }
    }
}

/// Whether `error` is [`PublicOnly`] refusing every address: that does
/// not change with a retry.
fn refused_address(error: &ureq::Transport) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<io::Error>())
        .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
}

/// The HTTP client pushes go through: timeouts, no redirects, no proxy,
/// a resolver that hands it public addresses only, and `tls` if given
/// (else the public roots of trust).
fn agent(allow_private: bool, tls: Option<Arc<rustls::ClientConfig>>) -> ureq::Agent {
    let mut builder = ureq::AgentBuilder::new()
        .timeout_connect(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirects(0)
        .resolver(PublicOnly { allow_private });
    if let Some(tls) = tls {
        builder = builder.tls_config(tls);
    }
    builder.build()
}

/// A TLS client that trusts the public roots and the certificates in the
/// PEM file at `path` (`--push-ca-file`).
pub fn trusting(path: &Path) -> io::Result<Arc<rustls::ClientConfig>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let mut added = 0;
    for certificate in CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
    {
        let certificate = certificate.map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        roots
            .add(certificate)
            .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
        added += 1;
    }
    if added == 0 {
        return Err(invalid(format!("{}: no certificate", path.display())));
    }
    rustls::ClientConfig::builder_with_provider(rustls::crypto::ring::default_provider().into())
        .with_safe_default_protocol_versions()
        .map(|builder| Arc::new(builder.with_root_certificates(roots).with_no_client_auth()))
        .map_err(|e| invalid(e.to_string()))
}

/// Resolves a push service's name, and keeps only the addresses a push
/// may go to: the client connects to nothing else.
struct PublicOnly {
    allow_private: bool,
}

impl ureq::Resolver for PublicOnly {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private {
            return Ok(addresses);
        }
        let public: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| super::address::is_public(address.ip()))
            .collect();
        if public.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the push service resolves to no public address",
            ));
        }
        Ok(public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_is_reused_until_half_its_lifetime_is_left() {
        let key = super::super::ece::random_secret_key().expect("key");
        let tokens = Tokens {
            vapid: Arc::new(VapidKey::new(key)),
            contact: None,
            signed: Mutex::new(HashMap::new()),
        };
        let audience = "https://push.example.net";
        let keep = |expires_in: i64, header: &str| {
            let expires = Utc::now().timestamp() + expires_in;
            let mut signed = tokens.signed.lock().expect("lock");
            signed.insert(audience.to_owned(), (expires, header.to_owned()));
        };
        keep(TOKEN_LIFETIME_SECONDS - 60, "cached");
        assert_eq!(tokens.authorization(audience), "cached");
        keep(TOKEN_LIFETIME_SECONDS / 2 - 60, "old");
        let fresh = tokens.authorization(audience);
        assert!(fresh.starts_with("vapid t="), "{fresh}");
        assert_eq!(tokens.authorization(audience), fresh);
    }
}
