//! The writer's memory that makes sync exactly-once: each change reaches a
//! connection once, whether live or in a sync page, however the two
//! interleave.

/// What the writer remembers to send each change exactly once, when a
/// client syncs while live changes arrive. Keyed by `seq` for `sync` with
/// `since`, and by message id for the older `sync` with `after_id`: both
/// orders are the commit order.
///
/// Live changes reach a connection in commit order (the hub gets them in
/// that order), all of them from the moment it registered, and a sync page
/// holds every change in its range that had committed when it was read.
/// So: once a live change `f` went out, every later change comes live too,
/// and sync may skip keys from `f` on; and a live change no higher than the
/// highest key sync sent was already in that sync page.
#[derive(Default)]
pub(super) struct ExactlyOnce {
    first_live: Option<i64>,
    max_synced: i64,
}

impl ExactlyOnce {
    /// Whether the live change with `key` still has to be sent.
    pub(super) fn live(&mut self, key: i64) -> bool {
        if key <= self.max_synced {
            return false;
        }
        self.first_live.get_or_insert(key);
        true
    }

    /// Keeps the sync results not delivered live; returns whether any were
    /// dropped (then sync has reached the live stream: nothing more to ask).
    pub(super) fn sync<T>(&mut self, page: &mut Vec<T>, key: impl Fn(&T) -> i64) -> bool {
        let before = page.len();
        if let Some(first_live) = self.first_live {
            page.retain(|item| key(item) < first_live);
        }
        if let Some(last) = page.last() {
            self.max_synced = self.max_synced.max(key(last));
        }
        page.len() < before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{Message as StoredMessage, MessageId};

    fn messages(ids: &[MessageId]) -> Vec<StoredMessage> {
        ids.iter()
            .map(|&id| StoredMessage::new(id, 1, 2, String::new(), chrono::Utc::now()))
            .collect()
    }

    fn ids(messages: &[StoredMessage]) -> Vec<MessageId> {
        messages.iter().map(|m| m.id).collect()
    }

    #[test]
    fn sync_before_live_drops_live_repeats() {
        let mut once = ExactlyOnce::default();
        let mut page = messages(&[3, 5, 8]);
        assert!(!once.sync(&mut page, |m| m.id));
        assert_eq!(ids(&page), [3, 5, 8]);
        assert!(!once.live(5), "already sent by sync");
        assert!(!once.live(8));
        assert!(once.live(9));
        // Sync continues after 8: ids from the first live one on are skipped.
        let mut next = messages(&[9, 10]);
        assert!(once.sync(&mut next, |m| m.id));
        assert!(next.is_empty());
    }

    #[test]
    fn live_before_sync_keeps_only_older_sync_results() {
        let mut once = ExactlyOnce::default();
        assert!(once.live(7));
        assert!(once.live(9));
        let mut page = messages(&[2, 4, 7, 9]);
        assert!(once.sync(&mut page, |m| m.id), "reached the live stream");
        assert_eq!(ids(&page), [2, 4]);
        assert!(once.live(11));
    }
}
