//! Writes about a stored message that only some users may make (edits,
//! deletions, reactions, the message a reply answers), and blocks.
//!
//! Each runs inside the writer's transaction and checks its rules there,
//! against the rows as they are at commit: an edit racing a deletion, or
//! two reactions racing for the last free emoji, cannot both pass.

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension};

use super::{
    ChangeRow, KIND_DELETED, KIND_EDITED, KIND_REACTION, log_change, message_at, millis, sql,
    timestamp, touch_conversation,
};
use crate::changes::{Change, Seq};
use crate::models::{Message, MessageId, REPLY_EXCERPT_CHARS, ReplyTo, UserId, Version};
use crate::repo::{Acted, ActionRequest, MAX_REACTIONS, MessageAction, Refusal, StoreError};

/// What the rules need to know of a message, as `user` sees it.
pub(super) struct Facts {
    pub(super) sender_id: UserId,
    pub(super) receiver_id: UserId,
    created_at: DateTime<Utc>,
    deleted: bool,
    excerpt: String,
}

impl Facts {
    /// The other side of the conversation, for `user`.
    fn partner_of(&self, user: UserId) -> UserId {
        if user == self.sender_id {
            self.receiver_id
        } else {
            self.sender_id
        }
    }

    fn within(&self, window: Option<Duration>, now: DateTime<Utc>) -> bool {
        window.is_none_or(|window| {
            chrono::Duration::from_std(window)
                .is_ok_and(|window| now.signed_duration_since(self.created_at) <= window)
        })
    }
}

/// Message `id` if `user` may see it: one of their conversations and not
/// hidden by them. Anything else is [`Refusal::NoSuchMessage`], whether it
/// exists or not.
pub(super) fn facts(conn: &Connection, id: MessageId, user: UserId) -> Result<Facts, StoreError> {
    let found = conn
        .prepare_cached(sql::MESSAGE_FACTS)?
        .query_row((id, user), |row| {
            Ok((
                Facts {
                    sender_id: row.get(0)?,
                    receiver_id: row.get(1)?,
                    created_at: timestamp(row, 2)?,
                    deleted: row.get::<_, Option<i64>>(3)?.is_some(),
                    excerpt: row.get(5)?,
                },
                row.get::<_, bool>(4)?,
            ))
        })
        .optional()?;
    match found {
        Some((facts, false)) if user == facts.sender_id || user == facts.receiver_id => Ok(facts),
        _ => Err(StoreError::Refused(Refusal::NoSuchMessage)),
    }
}

/// What a new message from `sender` to `receiver` shows of message `id`,
/// which it answers: it must be a message of their conversation that the
/// sender sees and that is not deleted.
pub(super) fn reply_target(
    conn: &Connection,
    id: MessageId,
    sender: UserId,
    receiver: UserId,
) -> Result<ReplyTo, StoreError> {
    let invalid = StoreError::Refused(Refusal::InvalidReply);
    let facts = match facts(conn, id, sender) {
        Ok(facts) => facts,
        Err(StoreError::Refused(_)) => return Err(invalid),
        Err(other) => return Err(other),
    };
    if facts.partner_of(sender) != receiver || facts.deleted {
        return Err(invalid);
    }
    Ok(ReplyTo {
        id,
        sender_id: facts.sender_id,
        excerpt: Some(facts.excerpt.chars().take(REPLY_EXCERPT_CHARS).collect()),
    })
}

/// Message `id` as `viewer` sees it, if they may see it at all.
pub(super) fn visible_message(
    conn: &Connection,
    id: MessageId,
    viewer: UserId,
) -> Result<Option<Message>, StoreError> {
    match facts(conn, id, viewer) {
        Ok(_) => message_by_id(conn, id, viewer).map(Some),
        Err(StoreError::Refused(Refusal::NoSuchMessage)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Message `id` as `viewer` sees it.
fn message_by_id(conn: &Connection, id: MessageId, viewer: UserId) -> Result<Message, StoreError> {
    Ok(conn
        .prepare_cached(sql::MESSAGE_BY_ID)?
        .query_row((id, viewer), |row| message_at(row, 0))?)
}

/// Does the requested action. Returns the outcome (with the message as it
/// is now only if `with_message`: a WebSocket's action does not need it)
/// and the change it logged, if it changed anything.
/// What an action did, once committed.
pub(super) struct Done {
    pub acted: Acted,
    /// The change to tell the hub of (none for a reaction that was there).
    pub change: Option<(Seq, Change)>,
    /// Digests of files no longer referred to by this message.
    pub released_files: Vec<String>,
}

pub(super) fn act(
    conn: &Connection,
    request: ActionRequest,
    with_message: bool,
) -> Result<Done, StoreError> {
    let ActionRequest {
        user,
        message_id: id,
        action,
        now,
    } = request;
    let facts = facts(conn, id, user)?;
    let partner = facts.partner_of(user);
    let refuse = |refusal| Err(StoreError::Refused(refusal));
    let only_sender = |window| {
        if user != facts.sender_id {
            refuse(Refusal::NotTheSender)
        } else if facts.deleted {
            refuse(Refusal::Deleted)
        } else if !facts.within(window, now) {
            refuse(Refusal::EditWindowPassed)
        } else {
            Ok(())
        }
    };
    let mut released_files = Vec::new();
    let change = match action {
        MessageAction::Edit { content, window } => {
            only_sender(window)?;
            edit(conn, &facts, id, content, now)?
        }
        MessageAction::Delete {
            for_everyone: true,
            window,
        } => {
            only_sender(window)?;
            let (change, released) = delete_for_everyone(conn, &facts, id, user, now)?;
            released_files = released;
            Some(change)
        }
        MessageAction::Delete {
            for_everyone: false,
            ..
        } => {
            // The answer shows the message as it was.
            let message = match with_message {
                true => Some(message_by_id(conn, id, user)?),
                false => None,
            };
            let change = hide(conn, &facts, id, user)?;
            return Ok(Done {
                acted: Acted {
                    message,
                    seq: Some(change.0),
                },
                change: Some(change),
                released_files,
            });
        }
        MessageAction::React { emoji, on } => {
            if facts.deleted {
                return Err(StoreError::Refused(Refusal::Deleted));
            }
            react(conn, id, user, partner, emoji, on)?
        }
    };
    let message = match with_message {
        true => Some(message_by_id(conn, id, user)?),
        false => None,
    };
    let seq = change.as_ref().map(|(seq, _)| *seq);
    Ok(Done {
        acted: Acted { message, seq },
        change,
        released_files,
    })
}

fn edit(
    conn: &Connection,
    facts: &Facts,
    id: MessageId,
    content: String,
    now: DateTime<Utc>,
) -> Result<Option<(Seq, Change)>, StoreError> {
    if message_by_id(conn, id, facts.sender_id)?.content == content {
        return Ok(None);
    }
    conn.prepare_cached(sql::SAVE_VERSION)?.execute([id])?;
    conn.prepare_cached(sql::EDIT_MESSAGE)?
        .execute((id, &content, millis(now)))?;
    let (sender, receiver) = (facts.sender_id, facts.receiver_id);
    let seq = log_change(conn, ChangeRow::new(KIND_EDITED, sender, receiver, id))?;
    touch_conversation(conn, sender, receiver, seq)?;
    let edited_at = DateTime::from_timestamp_millis(millis(now)).unwrap_or(now);
    Ok(Some((
        seq,
        Change::MessageEdited {
            message_id: id,
            sender_id: sender,
            receiver_id: receiver,
            content,
            edited_at,
        },
    )))
}

/// Whether message `id` counts as unread for `receiver`; if so, it stops
/// counting (it is about to be deleted or hidden).
fn stop_counting_unread(
    conn: &Connection,
    id: MessageId,
    receiver: UserId,
    sender: UserId,
) -> Result<(), StoreError> {
    let unread: bool = conn
        .prepare_cached(sql::COUNTS_AS_UNREAD)?
        .query_row((id, receiver), |row| row.get(0))?;
    if unread {
        conn.prepare_cached(sql::ONE_LESS_UNREAD)?
            .execute((receiver, sender))?;
    }
    Ok(())
}

fn delete_for_everyone(
    conn: &Connection,
    facts: &Facts,
    id: MessageId,
    user: UserId,
    now: DateTime<Utc>,
) -> Result<((Seq, Change), Vec<String>), StoreError> {
    let partner = facts.receiver_id;
    stop_counting_unread(conn, id, partner, user)?;
    conn.prepare_cached(sql::ERASE_MESSAGE)?
        .execute((id, millis(now)))?;
    let (versions, reactions, files): (bool, bool, bool) = conn
        .prepare_cached(sql::MESSAGE_EXTRAS)?
        .query_row([id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let mut released = Vec::new();
    if files {
        for digests in conn
            .prepare_cached(sql::ERASE_ATTACHMENTS)?
            .query_map([id], super::digests_at)?
        {
            released.extend(digests?);
        }
    }
    for (has, erase) in [
        (versions, sql::ERASE_VERSIONS),
        (reactions, sql::ERASE_REACTIONS),
        (true, sql::ERASE_MESSAGE_CHANGES),
    ] {
        if has {
            conn.prepare_cached(erase)?.execute([id])?;
        }
    }
    let mut row = ChangeRow::new(KIND_DELETED, user, partner, id);
    row.flag = Some(true);
    let seq = log_change(conn, row)?;
    touch_conversation(conn, user, partner, seq)?;
    let change = Change::MessageDeleted {
        message_id: id,
        user_id: user,
        partner_id: partner,
        for_everyone: true,
    };
    Ok(((seq, change), released))
}

/// Deletion for me: hidden from `user` only.
fn hide(
    conn: &Connection,
    facts: &Facts,
    id: MessageId,
    user: UserId,
) -> Result<(Seq, Change), StoreError> {
    let partner = facts.partner_of(user);
    if user == facts.receiver_id {
        stop_counting_unread(conn, id, user, partner)?;
    }
    conn.prepare_cached(sql::HIDE_MESSAGE)?
        .execute((user, id))?;
    // The conversation list shows the newest message I still see.
    let last: Option<MessageId> = conn
        .prepare_cached(sql::READ_STATE)?
        .query_row((user, partner), |row| row.get(0))
        .optional()?;
    if last == Some(id) {
        let visible: Option<MessageId> = conn
            .prepare_cached(sql::LAST_VISIBLE_MESSAGE)?
            .query_row((user, partner), |row| row.get(0))
            .optional()?;
        if let Some(visible) = visible {
            conn.prepare_cached(sql::SET_LAST_MESSAGE)?
                .execute((user, partner, visible))?;
        }
    }
    let mut row = ChangeRow::new(KIND_DELETED, user, partner, id);
    row.flag = Some(false);
    let seq = log_change(conn, row)?;
    conn.prepare_cached(sql::TOUCH_MY_CONVERSATION)?
        .execute((user, partner, seq))?;
    Ok((
        seq,
        Change::MessageDeleted {
            message_id: id,
            user_id: user,
            partner_id: partner,
            for_everyone: false,
        },
    ))
}

fn react(
    conn: &Connection,
    id: MessageId,
    user: UserId,
    partner: UserId,
    emoji: String,
    on: bool,
) -> Result<Option<(Seq, Change)>, StoreError> {
    let (distinct, emoji_present, mine): (i64, bool, bool) = conn
        .prepare_cached(sql::REACTION_STATE)?
        .query_row((id, &emoji, user), |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?;
    if on == mine {
        return Ok(None); // already there, or already gone
    }
    if on {
        if !emoji_present && distinct >= MAX_REACTIONS {
            return Err(StoreError::Refused(Refusal::TooManyReactions));
        }
        conn.prepare_cached(sql::ADD_REACTION)?
            .execute((id, &emoji, user))?;
    } else {
        conn.prepare_cached(sql::REMOVE_REACTION)?
            .execute((id, &emoji, user))?;
    }
    let mut row = ChangeRow::new(KIND_REACTION, user, partner, id);
    row.detail = Some(&emoji);
    row.flag = Some(on);
    let seq = log_change(conn, row)?;
    touch_conversation(conn, user, partner, seq)?;
    Ok(Some((
        seq,
        Change::Reaction {
            message_id: id,
            user_id: user,
            partner_id: partner,
            emoji,
            on,
        },
    )))
}

/// Every version of message `id` that `me` may see, oldest first.
pub(super) fn versions(
    conn: &Connection,
    me: UserId,
    id: MessageId,
) -> Result<Vec<Version>, StoreError> {
    if facts(conn, id, me)?.deleted {
        return Ok(Vec::new()); // erased with the message
    }
    // One snapshot for both reads: an edit in between would show twice.
    let _snapshot = conn.unchecked_transaction()?;
    let mut versions = conn
        .prepare_cached(sql::EARLIER_VERSIONS)?
        .query_map([id], |row| {
            Ok(Version {
                content: row.get(0)?,
                written_at: timestamp(row, 1)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let current = message_by_id(conn, id, me)?;
    versions.push(Version {
        written_at: current.edited_at.unwrap_or(current.created_at),
        content: current.content,
    });
    Ok(versions)
}

/// `blocker` blocks (`on`) or unblocks `blocked`.
pub(super) fn set_block(
    conn: &Connection,
    blocker: UserId,
    blocked: UserId,
    on: bool,
) -> Result<(), StoreError> {
    if on {
        conn.prepare_cached(sql::ADD_BLOCK)?
            .execute((blocker, blocked, millis(Utc::now())))?;
    } else {
        conn.prepare_cached(sql::REMOVE_BLOCK)?
            .execute((blocker, blocked))?;
    }
    Ok(())
}
