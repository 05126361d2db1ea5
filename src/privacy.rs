//! Who blocked whom, and who keeps their read state private: consulted on
//! every send, typing frame and read mark, so it lives in memory.
//!
//! The store holds the truth (tables `blocks` and `users`); this copy is
//! loaded at start and changed right after each committed change, by the
//! same request. Readers (the send path, the hub) take a read lock for a
//! hash lookup and never wait for a query. On several nodes this becomes
//! a cache that the broker invalidates.
//!
//! Two users kept apart (either blocked the other) do not see each other's
//! presence: connections are not told the other came online, `online_users`
//! leaves them out, and a block tells both at once that the other went
//! offline (an unblock, that they are online, if they are).

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use crate::models::UserId;
use crate::repo::{Store, StoreError};

/// Blocks and read-receipt settings of every user.
#[derive(Debug, Default)]
pub struct Privacy {
    blocks: RwLock<Blocks>,
    /// Users who turned read receipts off.
    receipts_off: RwLock<HashSet<UserId>>,
}

/// The blocks, and who is kept apart from whom (blocked either way): the
/// question presence asks for every connection, answered by one lookup.
#[derive(Debug, Default)]
struct Blocks {
    /// (blocker, blocked)
    pairs: HashSet<(UserId, UserId)>,
    /// user → the users they are kept apart from
    apart: HashMap<UserId, HashSet<UserId>>,
}

impl Blocks {
    fn set(&mut self, blocker: UserId, blocked: UserId, on: bool) {
        if on {
            self.pairs.insert((blocker, blocked));
        } else {
            self.pairs.remove(&(blocker, blocked));
        }
        let apart =
            self.pairs.contains(&(blocker, blocked)) || self.pairs.contains(&(blocked, blocker));
        for (a, b) in [(blocker, blocked), (blocked, blocker)] {
            if apart {
                self.apart.entry(a).or_default().insert(b);
            } else if let Some(set) = self.apart.get_mut(&a) {
                set.remove(&b);
                if set.is_empty() {
                    self.apart.remove(&a);
                }
            }
        }
    }
}

impl Privacy {
    /// Loads what the store holds.
    pub fn load(store: &dyn Store) -> Result<Privacy, StoreError> {
        let mut blocks = Blocks::default();
        for (blocker, blocked) in store.blocks()? {
            blocks.set(blocker, blocked, true);
        }
        Ok(Privacy {
            blocks: RwLock::new(blocks),
            receipts_off: RwLock::new(store.receipts_off()?.into_iter().collect()),
        })
    }

    /// Whether either of the two blocked the other: then nothing passes
    /// between them (messages, typing, presence).
    pub fn blocked_between(&self, a: UserId, b: UserId) -> bool {
        read(&self.blocks)
            .apart
            .get(&a)
            .is_some_and(|set| set.contains(&b))
    }

    /// The users `user` is kept apart from (blocked either way): usually
    /// none, and then nothing is allocated.
    pub fn kept_apart(&self, user: UserId) -> HashSet<UserId> {
        read(&self.blocks)
            .apart
            .get(&user)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `blocker` blocked `blocked`.
    pub fn has_blocked(&self, blocker: UserId, blocked: UserId) -> bool {
        read(&self.blocks).pairs.contains(&(blocker, blocked))
    }

    /// The users `blocker` blocked.
    pub fn blocked_by(&self, blocker: UserId) -> Vec<UserId> {
        let mut blocked: Vec<UserId> = read(&self.blocks)
            .pairs
            .iter()
            .filter(|(by, _)| *by == blocker)
            .map(|(_, blocked)| *blocked)
            .collect();
        blocked.sort_unstable();
        blocked
    }

    pub fn set_blocked(&self, blocker: UserId, blocked: UserId, on: bool) {
        self.blocks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .set(blocker, blocked, on);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_users_stay_apart_while_either_blocks_the_other() {
        let privacy = Privacy::default();
        privacy.set_blocked(1, 2, true);
        privacy.set_blocked(2, 1, true);
        assert!(privacy.blocked_between(2, 1));
        privacy.set_blocked(1, 2, false);
        assert!(privacy.blocked_between(1, 2), "2 still blocks 1");
        assert_eq!(privacy.kept_apart(1), HashSet::from([2]));
        privacy.set_blocked(2, 1, false);
        assert!(!privacy.blocked_between(1, 2));
        assert!(privacy.kept_apart(1).is_empty());
        assert!(privacy.kept_apart(2).is_empty());
    }
}
