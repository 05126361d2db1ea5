//! Who blocked whom, and who keeps their read state private: consulted on
//! every send, typing frame and read mark, so it lives in memory.
//!
//! The store holds the truth (tables `blocks` and `users`); this copy is
//! loaded at start and changed right after each committed change, by the
//! same request. Readers (the send path, the hub) take a read lock for a
//! hash lookup and never wait for a query. On several nodes this becomes
//! a cache that the broker invalidates.

use std::collections::HashSet;
use std::sync::RwLock;

use crate::models::UserId;
use crate::repo::{Store, StoreError};

/// Blocks and read-receipt settings of every user.
#[derive(Debug, Default)]
pub struct Privacy {
    /// (blocker, blocked)
    blocks: RwLock<HashSet<(UserId, UserId)>>,
    /// Users who turned read receipts off.
    receipts_off: RwLock<HashSet<UserId>>,
}

impl Privacy {
    /// Loads what the store holds.
    pub fn load(store: &dyn Store) -> Result<Privacy, StoreError> {
        Ok(Privacy {
            blocks: RwLock::new(store.blocks()?.into_iter().collect()),
            receipts_off: RwLock::new(store.receipts_off()?.into_iter().collect()),
        })
    }

    /// Whether either of the two blocked the other: then nothing passes
    /// between them (messages, typing, presence).
    pub fn blocked_between(&self, a: UserId, b: UserId) -> bool {
        let blocks = read(&self.blocks);
        blocks.contains(&(a, b)) || blocks.contains(&(b, a))
    }

    /// Whether `blocker` blocked `blocked`.
    pub fn has_blocked(&self, blocker: UserId, blocked: UserId) -> bool {
        read(&self.blocks).contains(&(blocker, blocked))
    }

    /// The users `blocker` blocked.
    pub fn blocked_by(&self, blocker: UserId) -> Vec<UserId> {
        let mut blocked: Vec<UserId> = read(&self.blocks)
            .iter()
            .filter(|(by, _)| *by == blocker)
            .map(|(_, blocked)| *blocked)
            .collect();
        blocked.sort_unstable();
        blocked
    }

    pub fn set_blocked(&self, blocker: UserId, blocked: UserId, on: bool) {
        let mut blocks = self
            .blocks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if on {
            blocks.insert((blocker, blocked));
        } else {
            blocks.remove(&(blocker, blocked));
        }
    }

    /// Whether `user` lets partners learn how far they have read.
    pub fn sends_read_receipts(&self, user: UserId) -> bool {
        !read(&self.receipts_off).contains(&user)
    }

    /// Whether `a` and `b` learn how far the other has read: only when both
    /// send receipts (who does not send them does not see them either).
    pub fn receipts_between(&self, a: UserId, b: UserId) -> bool {
        let off = read(&self.receipts_off);
        !off.contains(&a) && !off.contains(&b)
    }

    pub fn set_sends_read_receipts(&self, user: UserId, on: bool) {
        let mut off = self
            .receipts_off
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if on {
            off.remove(&user);
        } else {
            off.insert(user);
        }
    }
}

/// A poisoned lock only means a thread panicked while holding it; the sets
/// themselves stay consistent (each change is one insert or remove).
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}
