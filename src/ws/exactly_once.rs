//! The writer's memory that makes sync exactly-once: each message reaches a
//! connection once, whether live or in a sync page, however the two
//! interleave.

use crate::models::{Message as StoredMessage, MessageId};

/// What the writer remembers to send each message exactly once, when a
/// client syncs while live messages arrive.
///
/// Live messages reach a connection in id order (the hub gets them in commit
/// order) and a sync page holds every message in its id range that had
/// committed when it was read. So: once a live message `f` went out, every
/// later message to this connection comes live too, and sync may skip ids
/// from `f` on; and a live message no higher than the highest id sync sent
/// was already in that sync page.
#[derive(Default)]
pub(super) struct ExactlyOnce {
    first_live: Option<MessageId>,
    max_synced: MessageId,
}

impl ExactlyOnce {
    /// Whether live message `id` still has to be sent.
    pub(super) fn live(&mut self, id: MessageId) -> bool {
        if id <= self.max_synced {
            return false;
        }
        self.first_live.get_or_insert(id);
        true
    }

    /// Keeps the sync results not delivered live; returns whether any were
    /// dropped (then sync has reached the live stream: nothing more to ask).
    pub(super) fn sync(&mut self, messages: &mut Vec<StoredMessage>) -> bool {
        let before = messages.len();
        if let Some(first_live) = self.first_live {
            messages.retain(|m| m.id < first_live);
        }
        if let Some(last) = messages.last() {
            self.max_synced = self.max_synced.max(last.id);
        }
        messages.len() < before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(ids: &[MessageId]) -> Vec<StoredMessage> {
        ids.iter()
            .map(|&id| StoredMessage {
                id,
                sender_id: 1,
                receiver_id: 2,
                content: String::new(),
                created_at: chrono::Utc::now(),
                is_read: false,
            })
            .collect()
    }

    fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
        messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn sync_before_live_drops_live_repeats() {
        let mut once = ExactlyOnce::default();
        let mut page = messages(&[3, 5, 8]);
        assert!(!once.sync(&mut page));
        assert_eq!(ids(&page), [3, 5, 8]);
        assert!(!once.live(5), "already sent by sync");
        assert!(!once.live(8));
        assert!(once.live(9));
        // Sync continues after 8: ids from the first live one on are skipped.
        let mut next = messages(&[9, 10]);
        assert!(once.sync(&mut next));
        assert!(next.is_empty());
    }

    #[test]
    fn live_before_sync_keeps_only_older_sync_results() {
        let mut once = ExactlyOnce::default();
        assert!(once.live(7));
        assert!(once.live(9));
        let mut page = messages(&[2, 4, 7, 9]);
        assert!(once.sync(&mut page), "reached the live stream");
        assert_eq!(ids(&page), [2, 4]);
        assert!(once.live(11));
    }
}
