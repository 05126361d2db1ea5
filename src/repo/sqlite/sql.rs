//! Every statement the store runs, by name. Kept together so that the
//! query-plan test checks exactly what runs in production.

/// The columns of a message, in the order `message_at` reads them.
macro_rules! message_columns {
    () => {
        "id, sender_id, receiver_id, content, created_at, is_read"
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
pub const SESSION_BY_TOKEN: &str = "SELECT s.id, u.id, u.nickname, u.email
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
    " FROM private_messages WHERE sender_id = ?1 AND client_id = ?2"
);
pub const UPSERT_SENDER_CONVERSATION: &str =
    "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count)
     VALUES (?1, ?2, ?3, 0)
     ON CONFLICT (user_id, partner_id)
     DO UPDATE SET last_message_id = excluded.last_message_id";
pub const UPSERT_RECEIVER_CONVERSATION: &str =
    "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count)
     VALUES (?1, ?2, ?3, 1)
     ON CONFLICT (user_id, partner_id)
     DO UPDATE SET last_message_id = excluded.last_message_id,
                   unread_count = unread_count + 1";

/// A page of one conversation, newest first (the caller reverses it).
pub const HISTORY_PAGE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM private_messages
     WHERE min(sender_id, receiver_id) = ?1 AND max(sender_id, receiver_id) = ?2 AND id < ?3
     ORDER BY id DESC LIMIT ?4 OFFSET ?5"
);

/// Messages sent or received by ?1 with id > ?2, oldest first, at most ?3.
/// Each side is an ordered range of its own index, cut to ?3 rows before
/// the two are merged, so the sort is over at most 2 × ?3 rows.
pub const SYNC_PAGE: &str = concat!(
    "SELECT * FROM (SELECT ",
    message_columns!(),
    " FROM private_messages WHERE sender_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3)
     UNION ALL
     SELECT * FROM (SELECT ",
    message_columns!(),
    " FROM private_messages WHERE receiver_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3)
     ORDER BY id LIMIT ?3"
);

pub const MARK_MESSAGES_READ: &str = "UPDATE private_messages SET is_read = 1
     WHERE receiver_id = ?1 AND sender_id = ?2 AND is_read = 0";
pub const RESET_UNREAD: &str = "UPDATE conversations SET unread_count = 0
     WHERE user_id = ?1 AND partner_id = ?2";
pub const UNREAD_COUNT: &str =
    "SELECT COALESCE(SUM(unread_count), 0) FROM conversations WHERE user_id = ?1";
pub const CONVERSATIONS: &str = "SELECT c.partner_id, u.nickname, c.unread_count,
            m.id, m.sender_id, m.receiver_id, m.content, m.created_at, m.is_read
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
    ("HISTORY_PAGE", HISTORY_PAGE),
    ("SYNC_PAGE", SYNC_PAGE),
    ("MARK_MESSAGES_READ", MARK_MESSAGES_READ),
    ("RESET_UNREAD", RESET_UNREAD),
    ("UNREAD_COUNT", UNREAD_COUNT),
    ("CONVERSATIONS", CONVERSATIONS),
];
