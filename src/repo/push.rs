//! Storage of Web Push: the subscriptions of each session, and the
//! server's VAPID key.

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::models::{SessionId, UserId};

/// What a browser gave when it subscribed (decoded and checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub endpoint: String,
    /// Its P-256 public key, uncompressed (65 bytes).
    pub p256dh: Vec<u8>,
    /// Its authentication secret (16 bytes).
    pub auth: Vec<u8>,
}

/// What storing a subscription did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscribed {
    /// Stored, or moved to this session with its new keys.
    Stored,
    /// The user already has the most subscriptions allowed.
    TooMany,
}

pub trait PushSubscriptions {
    /// Stores `subscription` for `user`'s `session`, unless they have
    /// `max_per_user` other ones. The same endpoint again replaces the old
    /// row (a browser renews its keys).
    fn subscribe(
        &self,
        user: UserId,
        session: SessionId,
        subscription: Subscription,
        max_per_user: u32,
        now: DateTime<Utc>,
    ) -> Result<Subscribed, StoreError>;
    /// Removes `user`'s subscription at `endpoint`; whether there was one.
    fn unsubscribe(&self, user: UserId, endpoint: &str) -> Result<bool, StoreError>;
    /// The subscriptions of `user`'s sessions that have not ended by `now`.
    fn subscriptions_of(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<Subscription>, StoreError>;
    /// Forgets the subscription at `endpoint`, whoever's it was: its push
    /// service said it is gone (404, 410).
    fn forget_subscription(&self, endpoint: &str) -> Result<(), StoreError>;
    /// The secret named `name`; stores `fresh` under it first if there is
    /// none, so that every caller and every restart gets the same one.
    fn server_secret(&self, name: &str, fresh: Vec<u8>) -> Result<Vec<u8>, StoreError>;
}
