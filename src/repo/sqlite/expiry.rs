//! [`Expiry`] on SQLite, and deleting many messages for everyone at once
//! (what expiry, retention and account deletion share).

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::{
    ChangeRow, KIND_EXPIRY, SqliteStore, actions, emit_change, from_millis, log_change, millis,
    sql, touch_conversation,
};
use crate::changes::{Change, Origin, Seq};
use crate::models::{MessageId, UserId};
use crate::repo::expiry::{Expiry, RetentionRound};
use crate::repo::{ActionRequest, MessageAction, StoreError};

impl SqliteStore {
    /// Deletes for everyone the messages `find` names (id and sender), each
    /// exactly as its sender would with no time limit, in one writer
    /// transaction; their changes go to the change sink and their files to
    /// the file remover. Returns how many were deleted.
    pub(super) fn delete_for_everyone(
        &self,
        find: impl FnOnce(&Connection) -> Result<Vec<(MessageId, UserId)>, StoreError> + Send + 'static,
        now: DateTime<Utc>,
    ) -> Result<usize, StoreError> {
        let (changes, released) = (self.changes.clone(), self.released.0.clone());
        crate::repo::wait_for_reply(|reply| {
            self.writer.submit(
                move |conn| {
                    let mut done = Vec::new();
                    for (id, sender) in find(conn)? {
                        // Hidden by the sender for themselves or not, it
                        // goes for everyone.
                        conn.prepare_cached(sql::UNHIDE)?.execute((sender, id))?;
                        let request = ActionRequest {
                            user: sender,
                            message_id: id,
                            action: MessageAction::Delete {
                                for_everyone: true,
                                window: None,
                            },
                            now,
                        };
                        match actions::act(conn, request, false) {
                            Ok(deleted) => done.push(deleted),
                            Err(StoreError::Refused(refusal)) => {
                                log::warn!("deleting message {id} for everyone: {refusal}");
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(done)
                },
                move |outcome| {
                    let outcome = outcome.map(|done| {
                        let count = done.len();
                        for deleted in done {
                            emit_change(&changes, deleted.change, Origin::Request);
                            for sha256 in deleted.released_files {
                                let _ = released.try_send(sha256);
                            }
                        }
                        count
                    });
                    let _ = reply.send(outcome);
                },
            )
        })
    }
}

impl Expiry for SqliteStore {
    fn set_expiry(
        &self,
        by: UserId,
        partner: UserId,
        seconds: Option<i64>,
    ) -> Result<Seq, StoreError> {
        self.write_change(Origin::Request, move |conn| {
            conn.prepare_cached(sql::SET_EXPIRY)?.execute((
                by.min(partner),
                by.max(partner),
                seconds,
            ))?;
            let mut row = ChangeRow::new(KIND_EXPIRY, by, partner, 0);
            let detail = seconds.map(|s| s.to_string());
            row.detail = detail.as_deref();
            let seq = log_change(conn, row)?;
            touch_conversation(conn, by, partner, seq)?;
            let change = Change::ExpiryChanged {
                by_user_id: by,
                partner_id: partner,
                seconds,
            };
            Ok((seq, Some((seq, change))))
        })
    }

    fn expire_due(&self, now: DateTime<Utc>, limit: u32) -> Result<usize, StoreError> {
        let due = millis(now);
        self.delete_for_everyone(
            move |conn| {
                Ok(conn
                    .prepare_cached(sql::DUE_TO_EXPIRE)?
                    .query_map((due, limit), |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, _>>()?)
            },
            now,
        )
    }

    fn next_expiry(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let next: Option<i64> = self.read(|conn| {
            conn.prepare_cached(sql::NEXT_EXPIRY)?
                .query_row([], |row| row.get(0))
                .optional()
                .map(Option::flatten)
        })?;
        Ok(next.map(from_millis))
    }

    fn expire_older(
        &self,
        cutoff: DateTime<Utc>,
        after: MessageId,
        limit: u32,
    ) -> Result<RetentionRound, StoreError> {
        let cutoff_ms = millis(cutoff);
        // Read first: which of the next messages are old enough (ids grow
        // with time, so the first young one ends the round and the work).
        let rows: Vec<(MessageId, UserId, i64, bool)> = self.read(|conn| {
            conn.prepare_cached(sql::OLDEST_AFTER)?
                .query_map((after, limit), |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?
                .collect()
        })?;
        let mut due = Vec::new();
        let mut round = RetentionRound {
            deleted: 0,
            after,
            done: rows.len() < limit as usize,
        };
        for (id, sender, created_at, deleted) in rows {
            if created_at >= cutoff_ms {
                round.done = true;
                break;
            }
            round.after = id;
            if !deleted {
                due.push((id, sender));
            }
        }
        if !due.is_empty() {
            round.deleted = self.delete_for_everyone(move |_| Ok(due), cutoff)?;
        }
        Ok(round)
    }
}
