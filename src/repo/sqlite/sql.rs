//! Every statement the store runs, by name. Kept together so that the
//! query-plan test checks exactly what runs in production.

/// The columns of a message `m`, in the order `message_at` reads them. A
/// message is read when its id is within the receiver's read watermark for
/// this conversation (a primary-key lookup per row).
macro_rules! message_columns {
    () => {
        "m.id, m.sender_id, m.receiver_id, m.content, m.created_at,
         m.id <= coalesce((SELECT r.last_read_id FROM conversations r
                           WHERE r.user_id = m.receiver_id AND r.partner_id = m.sender_id), 0)"
    };
}

pub const INSERT_USER: &str = "INSERT INTO users (nickname, email, password_hash, created_at)
     VALUES (?1, ?2, ?3, ?4)";
pub const CREDENTIALS: &str = "SELECT id, nickname, email, password_hash FROM users
     WHERE nickname = ?1 OR email = ?1";
pub const USER_BY_ID: &str = "SELECT id, nickname, email FROM users WHERE id = ?1";
pub const ALL_USERS: &str = "SELECT id, nickname, email FROM users ORDER BY nickname, id";

pub const DELETE_EXPIRED_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2";
pub const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
     VALUES (?1, ?2, ?3, ?4)";
pub const SESSION_BY_TOKEN: &str = "SELECT s.id, u.id, u.nickname, u.email, s.expires_at
     FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = ?1 AND s.expires_at > ?2";
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = ?1";

/// Stores nothing when this sender already used this client_id.
pub const INSERT_MESSAGE: &str =
    "INSERT INTO private_messages (sender_id, receiver_id, content, created_at, client_id)
     VALUES (?1, ?2, ?3, ?4, ?5)
     ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING";
pub const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM private_messages m WHERE m.sender_id = ?1 AND m.client_id = ?2"
);
pub const UPSERT_SENDER_CONVERSATION: &str =
    "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count, last_seq)
     VALUES (?1, ?2, ?3, 0, ?4)
     ON CONFLICT (user_id, partner_id)
     DO UPDATE SET last_message_id = excluded.last_message_id, last_seq = excluded.last_seq";
pub const UPSERT_RECEIVER_CONVERSATION: &str =
    "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count, last_seq)
     VALUES (?1, ?2, ?3, 1, ?4)
     ON CONFLICT (user_id, partner_id)
     DO UPDATE SET last_message_id = excluded.last_message_id,
                   unread_count = unread_count + 1, last_seq = excluded.last_seq";

/// Appends a change to the stream; its seq is the new rowid.
pub const INSERT_CHANGE: &str =
    "INSERT INTO changes (kind, user_id, partner_id, message_id) VALUES (?1, ?2, ?3, ?4)";
/// Changes since ?2, step 1: the partners of ?1 whose conversation changed
/// after ?2 (a range of the primary key, one row per partner).
pub const CHANGED_PARTNERS: &str = "SELECT partner_id FROM conversations
     WHERE user_id = ?1 AND last_seq > ?2";
/// Step 2, per partner: the changes of conversation (?1, ?2) after seq ?3
/// and before seq ?4, oldest first, at most ?5 rows, with what their frames
/// show (the nickname of who made it; a stored message's row).
pub const CONVERSATION_CHANGES: &str =
    "SELECT c.seq, c.kind, c.user_id, c.partner_id, c.message_id,
            u.nickname, m.sender_id, m.receiver_id, m.content, m.created_at
     FROM changes c
     JOIN users u ON u.id = c.user_id
     LEFT JOIN private_messages m ON c.kind = 1 AND m.id = c.message_id
     WHERE min(c.user_id, c.partner_id) = ?1 AND max(c.user_id, c.partner_id) = ?2
       AND c.seq > ?3 AND c.seq < ?4
     ORDER BY c.seq LIMIT ?5";

/// A page of one conversation, newest first (the caller reverses it).
pub const HISTORY_PAGE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM private_messages m
     WHERE min(m.sender_id, m.receiver_id) = ?1 AND max(m.sender_id, m.receiver_id) = ?2
       AND m.id < ?3
     ORDER BY m.id DESC LIMIT ?4 OFFSET ?5"
);

/// Sync, step 1: the partners of ?1 whose conversation has a message newer
/// than ?2 (a range of the primary key, one row per partner).
pub const SYNC_PARTNERS: &str = "SELECT partner_id FROM conversations
     WHERE user_id = ?1 AND last_message_id > ?2";
/// Sync, step 2, per partner: the conversation (?1, ?2) after id ?3 and
/// before id ?4, oldest first, at most ?5 rows.
pub const SYNC_CONVERSATION_PAGE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM private_messages m
     WHERE min(m.sender_id, m.receiver_id) = ?1 AND max(m.sender_id, m.receiver_id) = ?2
       AND m.id > ?3 AND m.id < ?4
     ORDER BY m.id LIMIT ?5"
);

/// Marking ?2's messages to ?1 read, step 1: the conversation's newest
/// message, the watermark so far and how many were unread.
pub const READ_STATE: &str = "SELECT last_message_id, last_read_id, unread_count FROM conversations
     WHERE user_id = ?1 AND partner_id = ?2";
/// Step 2, when read only part of the way: ?2's messages to ?1 after ?3
/// (they stay unread).
pub const UNREAD_AFTER: &str = "SELECT count(*) FROM private_messages m
     WHERE min(m.sender_id, m.receiver_id) = min(?1, ?2)
       AND max(m.sender_id, m.receiver_id) = max(?1, ?2)
       AND m.id > ?3 AND m.sender_id = ?2";
/// Step 3: ?1 has read everything up to ?3, and ?4 remain unread; change
/// ?5 says so ...
pub const MARK_CONVERSATION_READ: &str =
    "UPDATE conversations SET last_read_id = ?3, unread_count = ?4, last_seq = ?5
     WHERE user_id = ?1 AND partner_id = ?2";
/// ... and step 4, the copy of that in ?2's row (`partner_read_id`).
pub const MARK_READ_BY_PARTNER: &str =
    "UPDATE conversations SET partner_read_id = ?3, last_seq = ?4
     WHERE user_id = ?2 AND partner_id = ?1";
pub const UNREAD_COUNT: &str =
    "SELECT COALESCE(SUM(unread_count), 0) FROM conversations WHERE user_id = ?1";
/// Newest conversation first. The sort is over this user's partners only
/// (one row each); an index kept in that order would cost every message two
/// more index updates. Whether the last message was read comes from the
/// row itself (`partner_read_id`), not from a lookup per partner.
pub const CONVERSATIONS: &str = "SELECT c.partner_id, u.nickname, c.unread_count,
            m.id, m.sender_id, m.receiver_id, m.content, m.created_at,
            m.id <= CASE WHEN m.receiver_id = c.user_id
                         THEN c.last_read_id ELSE c.partner_read_id END
     FROM conversations c
     JOIN users u ON u.id = c.partner_id
     JOIN private_messages m ON m.id = c.last_message_id
     WHERE c.user_id = ?1
     ORDER BY c.last_message_id DESC";

/// (name, statement) of every query, for the plan test.
#[cfg(test)]
pub const ALL: &[(&str, &str)] = &[
    ("INSERT_USER", INSERT_USER),
    ("CREDENTIALS", CREDENTIALS),
    ("USER_BY_ID", USER_BY_ID),
    ("ALL_USERS", ALL_USERS),
    ("DELETE_EXPIRED_SESSIONS", DELETE_EXPIRED_SESSIONS),
    ("INSERT_SESSION", INSERT_SESSION),
    ("SESSION_BY_TOKEN", SESSION_BY_TOKEN),
    ("DELETE_SESSION", DELETE_SESSION),
    ("INSERT_MESSAGE", INSERT_MESSAGE),
    ("MESSAGE_BY_CLIENT_ID", MESSAGE_BY_CLIENT_ID),
    ("UPSERT_SENDER_CONVERSATION", UPSERT_SENDER_CONVERSATION),
    ("UPSERT_RECEIVER_CONVERSATION", UPSERT_RECEIVER_CONVERSATION),
    ("INSERT_CHANGE", INSERT_CHANGE),
    ("CHANGED_PARTNERS", CHANGED_PARTNERS),
    ("CONVERSATION_CHANGES", CONVERSATION_CHANGES),
    ("HISTORY_PAGE", HISTORY_PAGE),
    ("SYNC_PARTNERS", SYNC_PARTNERS),
    ("SYNC_CONVERSATION_PAGE", SYNC_CONVERSATION_PAGE),
    ("READ_STATE", READ_STATE),
    ("UNREAD_AFTER", UNREAD_AFTER),
    ("MARK_CONVERSATION_READ", MARK_CONVERSATION_READ),
    ("MARK_READ_BY_PARTNER", MARK_READ_BY_PARTNER),
    ("UNREAD_COUNT", UNREAD_COUNT),
    ("CONVERSATIONS", CONVERSATIONS),
];
