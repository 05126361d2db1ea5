//! Sending one push: the payload, encrypted for the subscription
//! (RFC 8291), the VAPID token (RFC 8292), the POST, and what its answer
//! means.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use crossbeam_channel::Sender as Channel;
use serde::Serialize;

use super::client;
use super::delivery::{Attempt, Job, Offline, PushSettings};
use super::ece::{self, Receiver as Subscriber};
use super::vapid::{TOKEN_LIFETIME_SECONDS, VapidKey};
use crate::metrics::Metrics;
use crate::models::{MessageId, UserId};
use crate::repo::Store;
use crate::repo::push::Subscription;

/// How long a push service keeps a push for a device that is off: a
/// notification a day late tells nothing the app will not show.
pub const TIME_TO_LIVE_SECONDS: u32 = 24 * 60 * 60;
/// Characters of the message in a push, when previews are on.
pub const PREVIEW_CHARS: usize = 100;
/// Tries of one push, the first included.
pub const ATTEMPTS: u32 = 4;
/// Push services whose signed token is kept (see [`Tokens`]).
const MAX_CACHED_TOKENS: usize = 1024;

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

pub(super) struct Worker {
    pub(super) store: Arc<dyn Store>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) tokens: Arc<Tokens>,
    pub(super) settings: PushSettings,
    pub(super) agent: ureq::Agent,
    pub(super) retries: Channel<Attempt>,
}

/// Signed VAPID tokens by push service: a token is good for
/// [`TOKEN_LIFETIME_SECONDS`], so one signature serves every push to that
/// service for hours instead of costing one per push.
pub(super) struct Tokens {
    vapid: Arc<VapidKey>,
    contact: Option<String>,
    /// Audience → (expiry, `Authorization` header).
    signed: Mutex<HashMap<String, (i64, String)>>,
}

impl Tokens {
    pub(super) fn new(vapid: Arc<VapidKey>, contact: Option<String>) -> Tokens {
        Tokens {
            vapid,
            contact,
            signed: Mutex::new(HashMap::new()),
        }
    }

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
    /// Nothing to push any more: the message was deleted, has
    /// disappeared, or was hidden by its recipient since it was sent.
    Withdrawn,
    /// Refused for good (another 4xx): logged, not retried.
    Refused,
}

/// A push as it goes to every subscription of its recipient: the message
/// as it is now, read once per job.
struct Prepared {
    plaintext: Vec<u8>,
    time_to_live: u32,
}

impl Worker {
    pub(super) fn run(&self, job: Job) {
        let offline = match &job {
            Job::Recipient(offline) => offline.clone(),
            Job::Again(attempt) => attempt.offline.clone(),
        };
        // Read again for a retry too: the message may have gone since.
        let prepared = match self.prepare(&offline) {
            Ok(prepared) => prepared,
            Err(Outcome::Withdrawn) => return,
            Err(_) => {
                self.metrics.pushes_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
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
                    let attempt = Attempt {
                        offline: offline.clone(),
                        subscription,
                        made: 0,
                        retry_after: None,
                    };
                    self.attempt(attempt, &prepared);
                }
            }
            Job::Again(attempt) => self.attempt(attempt, &prepared),
        }
    }

    fn attempt(&self, mut attempt: Attempt, prepared: &Prepared) {
        attempt.made += 1;
        match self.send(prepared, &attempt.offline, &attempt.subscription) {
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
            Outcome::Withdrawn => {}
        }
    }

    /// The payload and TTL of `offline`'s push, from the message as it is
    /// now: a push coalesced for a minute must not show what its sender
    /// has since edited away or deleted.
    fn prepare(&self, offline: &Offline) -> Result<Prepared, Outcome> {
        let message = match self.store.message(offline.recipient, offline.message_id) {
            Ok(Some(message)) if message.deleted_at.is_none() => message,
            Ok(_) => return Err(Outcome::Withdrawn),
            Err(e) => {
                log::error!("push: reading message {}: {e}", offline.message_id);
                return Err(Outcome::Again(None));
            }
        };
        // A disappearing message: the push service keeps it no longer.
        let time_to_live = match message.expires_at {
            Some(at) => match u32::try_from((at - Utc::now()).num_seconds()) {
                Ok(0) | Err(_) => return Err(Outcome::Withdrawn),
                Ok(left) => left.min(TIME_TO_LIVE_SECONDS),
            },
            None => TIME_TO_LIVE_SECONDS,
        };
        let preview: String = message.content.chars().take(PREVIEW_CHARS).collect();
        let nickname = match self.store.user(offline.sender) {
            Ok(Some(user)) => user.nickname,
            Ok(None) => return Err(Outcome::Refused),
            Err(e) => {
                log::error!("push: reading user {}: {e}", offline.sender);
                return Err(Outcome::Again(None));
            }
        };
        let payload = Payload {
            r#type: "message",
            from_user_id: offline.sender,
            nickname: &nickname,
            message_id: offline.message_id,
            preview: self.settings.preview.then_some(preview.as_str()),
        };
        let plaintext = serde_json::to_vec(&payload).map_err(|_| Outcome::Refused)?;
        Ok(Prepared {
            plaintext,
            time_to_live,
        })
    }

    /// Encrypts `prepared` for `subscription` and posts it.
    fn send(&self, prepared: &Prepared, offline: &Offline, subscription: &Subscription) -> Outcome {
        let body = match ece::Sender::random()
            .map_err(|e| e.to_string())
            .and_then(|sender| {
                let subscriber = Subscriber {
                    p256dh: &subscription.p256dh,
                    auth: &subscription.auth,
                };
                ece::encrypt(&prepared.plaintext, &subscriber, &sender).map_err(|e| e.to_string())
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
            .set("TTL", &prepared.time_to_live.to_string())
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
            Err(ureq::Error::Transport(e)) if client::refused_address(&e) => {
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
