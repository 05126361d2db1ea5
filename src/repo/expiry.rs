//! Storage of disappearing messages: a conversation's timer, and deleting
//! what is due (by the timer, or by `--retention`).

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::changes::Seq;
use crate::models::{MessageId, UserId};

/// What one round of `--retention` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRound {
    /// Messages deleted in it.
    pub deleted: usize,
    /// Where the next round starts looking (ids only grow).
    pub after: MessageId,
    /// A message sent after the cutoff was reached: nothing older is left.
    pub done: bool,
}

pub trait Expiry {
    /// Sets the disappearing-messages timer of the conversation between
    /// `by` and `partner` (`None`: off); the change goes to the change sink
    /// before this returns.
    fn set_expiry(
        &self,
        by: UserId,
        partner: UserId,
        seconds: Option<i64>,
    ) -> Result<Seq, StoreError>;
    /// Deletes for everyone, each as its sender would, up to `limit`
    /// messages due at `now`, in one transaction; returns how many.
    fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<usize, StoreError>;
    /// When the next message is due, if one is.
    fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// `--retention`: deletes for everyone up to `limit` of the messages
    /// after id `after` that were sent before `cutoff`, oldest first.
    fn expire_older(
        &self,
        cutoff: DateTime<Utc>,
        after: MessageId,
        limit: u32,
    ) -> Result<RetentionRound, StoreError>;
}
