//! Every statement the store runs, by name. Kept together so that the
//! query-plan test checks exactly what runs in production.

/// The columns of a message `m` as the user in parameter `$viewer` sees
/// them, in the order `message_at` reads them. A message is read when its
/// id is within the receiver's read watermark for this conversation (a
/// primary-key lookup per row); the sender learns it only while both users
/// send read receipts. (The conversation list gives its own expression for
/// this, from its row: `@read`.) A reply's original and the reactions are
/// one lookup each (its primary key; the reactions' range).
macro_rules! message_columns {
    ($viewer:literal) => {
        message_columns!(@read concat!(
            "m.id <= coalesce((SELECT r.last_read_id FROM conversations r
                               WHERE r.user_id = m.receiver_id AND r.partner_id = m.sender_id), 0)
             AND (m.receiver_id = ", $viewer, " OR ", receipts_shared!(), ")"
        ))
    };
    (@read $($is_read:tt)+) => {
        concat!(
            "m.id, m.sender_id, m.receiver_id, m.content, m.created_at, ",
            $($is_read)+,
            ", m.reply_to_id,
             (SELECT o.sender_id FROM private_messages o WHERE o.id = m.reply_to_id),
             (SELECT CASE WHEN o.deleted_at IS NULL THEN substr(o.content, 1, 100) END
              FROM private_messages o WHERE o.id = m.reply_to_id),
             m.edited_at, m.deleted_at,
             (SELECT json_group_array(json_array(x.emoji, x.user_id))
              FROM reactions x WHERE x.message_id = m.id),
             (SELECT json_object('id', a.id, 'name', a.name, 'size', a.size, 'mime', a.mime,
                                 'width', a.width, 'height', a.height, 'thumbnail_url',
                                 CASE WHEN a.thumbnail_sha256 IS NOT NULL
                                 THEN '/api/attachments/' || a.id || '/thumbnail' END)
              FROM attachments a WHERE a.message_id = m.id AND m.deleted_at IS NULL),
             m.expires_at"
        )
    };
}

/// Where user `$table` (a table alias and its dot, or nothing) keeps their
/// picture, or NULL: versioned by the upload, so a new picture is a new URL
/// and a cached old one never shows.
macro_rules! avatar_url {
    ($table:literal) => {
        concat!(
            "CASE WHEN ",
            $table,
            "avatar_attachment_id IS NOT NULL THEN '/api/users/' || ",
            $table,
            "id || '/avatar?v=' || ",
            $table,
            "avatar_attachment_id END"
        )
    };
}

/// Whether both sides of message `m` send read receipts.
macro_rules! receipts_shared {
    () => {
        "(SELECT min(p.send_read_receipts) FROM users p WHERE p.id IN (m.sender_id, m.receiver_id)) = 1"
    };
}

/// Whether message `m` is hidden from user ?6 (deleted for them only).
macro_rules! hidden_from_me {
    () => {
        "EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?6 AND h.message_id = m.id)"
    };
}

/// The first account on a server, or the first after every admin is gone,
/// becomes an admin.
pub const INSERT_USER: &str = "INSERT INTO users (nickname, email, password_hash, created_at, role)
     VALUES (?1, ?2, ?3, ?4,
             CASE WHEN EXISTS (SELECT 1 FROM users WHERE role = 'admin') THEN 'member' ELSE 'admin' END)";
pub const CREDENTIALS: &str = concat!(
    "SELECT id, nickname, email, role, display_name, ",
    avatar_url!(""),
    ", password_hash, disabled_at IS NOT NULL FROM users
     WHERE nickname = ?1 OR email = ?1"
);
pub const USER_BY_ID: &str = concat!(
    "SELECT id, nickname, email, role, display_name, ",
    avatar_url!(""),
    " FROM users WHERE id = ?1"
);
pub const USER_BY_NICKNAME: &str = concat!(
    "SELECT id, nickname, email, role, display_name, ",
    avatar_url!(""),
    " FROM users WHERE nickname = ?1"
);
/// The directory everyone sees: disabled (and deleted) accounts are not in
/// it.
pub const ALL_USERS: &str = concat!(
    "SELECT id, nickname, email, role, display_name, ",
    avatar_url!(""),
    " FROM users WHERE disabled_at IS NULL AND deleted_at IS NULL ORDER BY nickname, id"
);
/// Whether nickname ?1 belongs to a deleted account until after ?2.
pub const NICKNAME_RETIRED: &str =
    "SELECT EXISTS (SELECT 1 FROM retired_nicknames WHERE nickname = ?1 AND until > ?2)";

pub const DELETE_EXPIRED_SESSIONS: &str =
    "DELETE FROM sessions WHERE user_id = ?1 AND expires_at <= ?2";
pub const INSERT_SESSION: &str =
    "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at, address, device)
     VALUES (?1, ?2, ?3, ?4, ?3, ?5, ?6)";
/// A disabled account's sessions are deleted with it; the condition is for
/// a lookup that races the disabling.
pub const SESSION_BY_TOKEN: &str = concat!(
    "SELECT s.id, u.id, u.nickname, u.email, u.role, u.display_name, ",
    avatar_url!("u."),
    ", s.expires_at, s.last_seen_at
     FROM sessions s JOIN users u ON u.id = s.user_id
     WHERE s.token_hash = ?1 AND s.expires_at > ?2
       AND u.disabled_at IS NULL AND u.deleted_at IS NULL"
);
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = ?1";

// Accounts: invitations, roles, disabled accounts, sessions, passwords.

/// Uses the partial index `users_admins`.
pub const ADMIN_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM users WHERE role = 'admin')";
pub const ADMIN_COUNT: &str = "SELECT count(*) FROM users WHERE role = 'admin'";
pub const INVITE_STATE: &str = "SELECT expires_at, max_uses, uses FROM invites WHERE code = ?1";
pub const USE_INVITE: &str = "UPDATE invites SET uses = uses + 1 WHERE code = ?1";
pub const INSERT_INVITE: &str =
    "INSERT INTO invites (code, created_by, created_at, expires_at, max_uses)
     VALUES (?1, ?2, ?3, ?4, ?5)";
/// Invitations made by ?1, or all for NULL (an admin page lists them all).
pub const INVITES: &str = "SELECT i.code, i.created_by, u.nickname, i.created_at, i.expires_at,
            i.max_uses, i.uses
     FROM invites i LEFT JOIN users u ON u.id = i.created_by
     WHERE ?1 IS NULL OR i.created_by = ?1
     ORDER BY i.created_at DESC, i.code";
pub const DELETE_INVITE: &str =
    "DELETE FROM invites WHERE code = ?1 AND (?2 IS NULL OR created_by = ?2)";
/// Every account for the admin page (deleted ones are gone), with its live
/// sessions (at ?1).
pub const ACCOUNTS: &str = "SELECT u.id, u.nickname, u.email, u.role, u.created_at,
            u.last_seen_at, u.disabled_at IS NOT NULL,
            (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > ?1),
            u.display_name
     FROM users u WHERE u.deleted_at IS NULL ORDER BY u.nickname, u.id";
pub const SET_DISPLAY_NAME: &str = "UPDATE users SET display_name = ?2 WHERE id = ?1";
/// Every nickname and display name but user ?1's, for the confusables
/// check.
pub const OTHER_NAMES: &str =
    "SELECT nickname, display_name FROM users WHERE id <> ?1 AND deleted_at IS NULL";
/// Messages ?1 sent that are not deleted yet, at most ?2: through each of
/// their conversations' ranges of the conversation index.
pub const UNDELETED_SENT: &str = "SELECT m.id FROM conversations c
     JOIN private_messages m
       ON min(m.sender_id, m.receiver_id) = min(c.user_id, c.partner_id)
      AND max(m.sender_id, m.receiver_id) = max(c.user_id, c.partner_id)
     WHERE c.user_id = ?1 AND m.sender_id = ?1 AND m.deleted_at IS NULL
     LIMIT ?2";
pub const UNHIDE: &str = "DELETE FROM hidden_messages WHERE user_id = ?1 AND message_id = ?2";
/// What is left of a deleted account: its id, a name that says so, and when.
pub const ERASE_ACCOUNT: &str = "UPDATE users SET
         nickname = 'deleted user #' || id, email = '#' || id, password_hash = '',
         role = 'member', display_name = NULL, last_seen_at = NULL,
         deleted_at = ?2, send_read_receipts = 0
     WHERE id = ?1";
pub const RETIRE_NICKNAME: &str = "INSERT INTO retired_nicknames (nickname, until) VALUES (?1, ?2)
     ON CONFLICT (nickname) DO UPDATE SET until = excluded.until";
pub const DELETE_USER_INVITES: &str = "DELETE FROM invites WHERE created_by = ?1";
/// An image upload of user ?2 that can be a picture: unsent, with a
/// thumbnail.
pub const AVATAR_CANDIDATE: &str = "SELECT 1 FROM attachments
     WHERE id = ?1 AND uploader_id = ?2 AND message_id IS NULL AND thumbnail_sha256 IS NOT NULL";
pub const CURRENT_AVATAR: &str = "SELECT avatar_attachment_id FROM users WHERE id = ?1";
pub const SET_AVATAR: &str = "UPDATE users SET avatar_attachment_id = ?2 WHERE id = ?1";
/// The picture that was replaced goes, like an unsent upload.
pub const ERASE_ATTACHMENT: &str =
    "DELETE FROM attachments WHERE id = ?1 RETURNING sha256, thumbnail_sha256";
/// User ?1's picture: the thumbnail of their avatar upload.
pub const AVATAR_FILE: &str = "SELECT a.thumbnail_sha256, a.thumbnail_mime FROM users u
     JOIN attachments a ON a.id = u.avatar_attachment_id
     WHERE u.id = ?1 AND u.deleted_at IS NULL AND a.thumbnail_sha256 IS NOT NULL";
pub const SET_ROLE: &str = "UPDATE users SET role = ?2 WHERE id = ?1";
/// ?2: when it was disabled, or NULL to enable it.
pub const SET_DISABLED: &str = "UPDATE users SET disabled_at = ?2 WHERE id = ?1";
/// Uses the partial index `users_disabled`.
pub const DISABLED_USERS: &str = "SELECT id FROM users WHERE disabled_at IS NOT NULL";
pub const DELETE_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = ?1";
pub const DELETE_OTHER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = ?1 AND id <> ?2";
pub const DELETE_USER_SESSION: &str = "DELETE FROM sessions WHERE id = ?2 AND user_id = ?1";
/// One user's sessions: a handful, sorted when read.
pub const SESSIONS_OF: &str =
    "SELECT id, created_at, last_seen_at, expires_at, address, device FROM sessions
     WHERE user_id = ?1 AND expires_at > ?2 ORDER BY last_seen_at DESC, id DESC";
pub const TOUCH_SESSION: &str = "UPDATE sessions SET last_seen_at = ?2 WHERE id = ?1";
pub const TOUCH_USER: &str = "UPDATE users SET last_seen_at = ?2 WHERE id = ?1";
pub const SET_PASSWORD: &str = "UPDATE users SET password_hash = ?2 WHERE id = ?1";
pub const DELETE_USER_RESETS: &str = "DELETE FROM password_resets WHERE user_id = ?1";
pub const INSERT_RESET: &str =
    "INSERT INTO password_resets (token_hash, user_id, expires_at) VALUES (?1, ?2, ?3)";
/// A reset link works once: reading it deletes it.
pub const TAKE_RESET: &str =
    "DELETE FROM password_resets WHERE token_hash = ?1 RETURNING user_id, expires_at";
/// The admin page's numbers (?1: now). Counting scans; it runs when an
/// admin opens the page, not per message.
pub const STATS: &str = "SELECT
     (SELECT count(*) FROM users WHERE deleted_at IS NULL),
     (SELECT count(*) FROM users WHERE role = 'admin'),
     (SELECT count(*) FROM users WHERE disabled_at IS NOT NULL AND deleted_at IS NULL),
     (SELECT count(*) FROM sessions WHERE expires_at > ?1),
     (SELECT coalesce(max(id), 0) FROM private_messages),
     (SELECT count(*) FROM attachments),
     (SELECT coalesce(sum(size), 0) FROM attachments),
     (SELECT count(*) FROM invites WHERE uses < max_uses AND (expires_at IS NULL OR expires_at > ?1))";

// Reports.

/// A second report of the same message by the same user stores nothing.
pub const INSERT_REPORT: &str =
    "INSERT INTO reports (reporter_id, message_id, reason, created_at) VALUES (?1, ?2, ?3, ?4)
     ON CONFLICT (reporter_id, message_id) DO NOTHING";
pub const REPORT_ID: &str = "SELECT id FROM reports WHERE reporter_id = ?1 AND message_id = ?2";
/// The open reports (a partial index holds just those), oldest first.
pub const OPEN_REPORTS: &str = "SELECT r.id, r.reporter_id, ru.nickname, m.sender_id,
            su.nickname, r.reason, r.created_at, r.resolved_at, r.resolution, r.message_id,
            m.receiver_id
     FROM reports r
     JOIN users ru ON ru.id = r.reporter_id
     JOIN private_messages m ON m.id = r.message_id
     JOIN users su ON su.id = m.sender_id
     WHERE r.resolved_at IS NULL ORDER BY r.id";
pub const REPORTED: &str = "SELECT r.message_id, m.sender_id, r.resolved_at IS NOT NULL
     FROM reports r JOIN private_messages m ON m.id = r.message_id WHERE r.id = ?1";
pub const RESOLVE_REPORT: &str =
    "UPDATE reports SET resolved_at = ?3, resolved_by = ?2, resolution = ?4
     WHERE id = ?1 AND resolved_at IS NULL";

/// Stores nothing when this sender already used this client_id.
pub const INSERT_MESSAGE: &str = "INSERT INTO private_messages
         (sender_id, receiver_id, content, created_at, client_id, reply_to_id, expires_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
     ON CONFLICT (sender_id, client_id) WHERE client_id IS NOT NULL DO NOTHING";
/// The disappearing-messages timer of the conversation (?1, ?2), ?1 < ?2.
pub const EXPIRY_SECONDS: &str =
    "SELECT expiry_seconds FROM conversation_settings WHERE user_a = ?1 AND user_b = ?2";
pub const SET_EXPIRY: &str =
    "INSERT INTO conversation_settings (user_a, user_b, expiry_seconds) VALUES (?1, ?2, ?3)
     ON CONFLICT (user_a, user_b) DO UPDATE SET expiry_seconds = excluded.expiry_seconds";
/// Messages due to disappear at ?1, soonest first, at most ?2.
pub const DUE_TO_EXPIRE: &str = "SELECT id, sender_id FROM private_messages
     WHERE expires_at IS NOT NULL AND deleted_at IS NULL AND expires_at <= ?1
     ORDER BY expires_at LIMIT ?2";
/// When the next message disappears.
pub const NEXT_EXPIRY: &str = "SELECT min(expires_at) FROM private_messages
     WHERE expires_at IS NOT NULL AND deleted_at IS NULL";
/// `--retention`: messages after id ?1, oldest first, at most ?2, with
/// when they were sent (the caller stops at the first one young enough).
pub const OLDEST_AFTER: &str = "SELECT id, sender_id, created_at, deleted_at IS NOT NULL
     FROM private_messages WHERE id > ?1 ORDER BY id LIMIT ?2";
/// Message ?1 as user ?2 sees it.
pub const MESSAGE_BY_ID: &str = concat!(
    "SELECT ",
    message_columns!("?2"),
    " FROM private_messages m WHERE m.id = ?1"
);
/// What an action on message ?1 by user ?2 must know: its two sides, when
/// it was sent and deleted, whether ?2 has hidden it, and what a reply to
/// it shows.
pub const MESSAGE_FACTS: &str = "SELECT m.sender_id, m.receiver_id, m.created_at, m.deleted_at,
            EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?2 AND h.message_id = m.id),
            substr(m.content, 1, 100)
     FROM private_messages m WHERE m.id = ?1";
pub const MESSAGE_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    message_columns!("?1"),
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
    "INSERT INTO changes (kind, user_id, partner_id, message_id, detail, flag)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
/// A change in ?1's conversation with ?2, seq ?3: ?1's row says so (a
/// change both see runs it for each side: one row by its key is cheaper
/// than both through an OR, which collects them in a temporary table).
pub const TOUCH_MY_CONVERSATION: &str =
    "UPDATE conversations SET last_seq = ?3 WHERE user_id = ?1 AND partner_id = ?2";

/// Edits, step 1: the current content becomes the next earlier version.
pub const SAVE_VERSION: &str = "INSERT INTO message_versions (message_id, version, content, written_at)
     SELECT m.id,
            coalesce((SELECT max(v.version) FROM message_versions v WHERE v.message_id = m.id), 0) + 1,
            m.content, coalesce(m.edited_at, m.created_at)
     FROM private_messages m WHERE m.id = ?1";
/// Step 2: the new content.
pub const EDIT_MESSAGE: &str =
    "UPDATE private_messages SET content = ?2, edited_at = ?3 WHERE id = ?1";
/// The earlier versions of message ?1, oldest first (the current one is
/// the message's row).
pub const EARLIER_VERSIONS: &str = "SELECT content, written_at FROM message_versions
     WHERE message_id = ?1 ORDER BY version";

/// Deletion for everyone: the content goes (secure_delete zeroes its bytes
/// in the file), with every earlier version and reaction ...
pub const ERASE_MESSAGE: &str =
    "UPDATE private_messages SET content = '', deleted_at = ?2 WHERE id = ?1";
/// What else message ?1 has: versions, reactions, files. Most messages
/// have none, and a DELETE of a range from a table with foreign keys
/// collects the rows in a temporary table first, even when there are
/// none: opening one costs more than the rest of a deletion.
pub const MESSAGE_EXTRAS: &str = "SELECT
         EXISTS (SELECT 1 FROM message_versions WHERE message_id = ?1),
         EXISTS (SELECT 1 FROM reactions WHERE message_id = ?1),
         EXISTS (SELECT 1 FROM attachments WHERE message_id = ?1)";
pub const ERASE_VERSIONS: &str = "DELETE FROM message_versions WHERE message_id = ?1";
pub const ERASE_REACTIONS: &str = "DELETE FROM reactions WHERE message_id = ?1";
/// ... and the edits and reactions in the stream, which named them.
pub const ERASE_MESSAGE_CHANGES: &str =
    "DELETE FROM changes WHERE message_id = ?1 AND kind IN (3, 5)";
/// Whether message ?1 counts as unread for its receiver ?2: beyond their
/// watermark, not deleted, not hidden by them.
pub const COUNTS_AS_UNREAD: &str = "SELECT m.id > coalesce(
         (SELECT c.last_read_id FROM conversations c
          WHERE c.user_id = ?2 AND c.partner_id = m.sender_id), 0)
       AND m.deleted_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?2 AND h.message_id = m.id)
     FROM private_messages m WHERE m.id = ?1";
/// One unread message fewer for ?1 in the conversation with ?2.
pub const ONE_LESS_UNREAD: &str = "UPDATE conversations SET unread_count = max(unread_count - 1, 0)
     WHERE user_id = ?1 AND partner_id = ?2";
/// Deletion for me.
pub const HIDE_MESSAGE: &str =
    "INSERT OR IGNORE INTO hidden_messages (user_id, message_id) VALUES (?1, ?2)";
/// ?1's conversation row with ?2 points at its newest message, unless ?1
/// hid it: then at the newest message ?1 still sees (the list hides the
/// conversation when there is none).
pub const LAST_VISIBLE_MESSAGE: &str = "SELECT m.id FROM private_messages m
     WHERE min(m.sender_id, m.receiver_id) = min(?1, ?2)
       AND max(m.sender_id, m.receiver_id) = max(?1, ?2)
       AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?1 AND h.message_id = m.id)
     ORDER BY m.id DESC LIMIT 1";
pub const SET_LAST_MESSAGE: &str =
    "UPDATE conversations SET last_message_id = ?3 WHERE user_id = ?1 AND partner_id = ?2";

/// Reactions: the distinct emoji on message ?1, and whether ?2 is one.
pub const REACTION_STATE: &str = "SELECT count(DISTINCT emoji),
            EXISTS (SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2),
            EXISTS (SELECT 1 FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3)
     FROM reactions WHERE message_id = ?1";
pub const ADD_REACTION: &str =
    "INSERT INTO reactions (message_id, emoji, user_id) VALUES (?1, ?2, ?3)";
pub const REMOVE_REACTION: &str =
    "DELETE FROM reactions WHERE message_id = ?1 AND emoji = ?2 AND user_id = ?3";

/// Uploads: a new one, and the bytes a user's uploads hold (the quota).
pub const INSERT_ATTACHMENT: &str = "INSERT INTO attachments
         (uploader_id, sha256, name, size, mime, width, height, created_at,
          thumbnail_sha256, thumbnail_mime)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
/// An upload of user ?2 that no message carries yet, to send with one.
/// Attachment ?1 if it is an unsent upload of user ?2 (and not their
/// picture, which is never sent).
pub const UNSENT_ATTACHMENT: &str =
    "SELECT json_object('id', id, 'name', name, 'size', size, 'mime', mime,
                        'width', width, 'height', height, 'thumbnail_url',
                        CASE WHEN thumbnail_sha256 IS NOT NULL
                        THEN '/api/attachments/' || id || '/thumbnail' END)
     FROM attachments WHERE id = ?1 AND uploader_id = ?2 AND message_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_attachment_id = attachments.id)";
/// A message deleted for everyone loses its file: the row goes, and the
/// bytes once no other row holds them.
pub const ERASE_ATTACHMENTS: &str =
    "DELETE FROM attachments WHERE message_id = ?1 RETURNING sha256, thumbnail_sha256";
/// Uploads never sent, made before ?1 (milliseconds): removed.
pub const ERASE_UNSENT_ATTACHMENTS: &str =
    "DELETE FROM attachments WHERE message_id IS NULL AND created_at < ?1
       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.avatar_attachment_id = attachments.id)
     RETURNING sha256, thumbnail_sha256";
/// Whether some row still refers to the stored file ?1.
pub const FILE_IN_USE: &str = "SELECT EXISTS (SELECT 1 FROM attachments WHERE sha256 = ?1)
         OR EXISTS (SELECT 1 FROM attachments WHERE thumbnail_sha256 = ?1)";
/// It goes with message ?2.
pub const ATTACH: &str = "UPDATE attachments SET message_id = ?2 WHERE id = ?1";

/// Attachment ?1 if user ?2 may see it: its uploader, or a side of a
/// conversation it was sent in (and not deleted from).
pub const ATTACHMENT_FOR_VIEWER: &str =
    "SELECT a.id, a.name, a.size, a.mime, a.width, a.height, a.sha256,
            a.thumbnail_sha256, a.thumbnail_mime
     FROM attachments a
     WHERE a.id = ?1 AND (a.uploader_id = ?2 OR EXISTS (
         SELECT 1 FROM private_messages m
         WHERE m.id = a.message_id AND m.deleted_at IS NULL AND ?2 IN (m.sender_id, m.receiver_id)))";
pub const UPLOADED_BYTES: &str =
    "SELECT coalesce(sum(size), 0) FROM attachments WHERE uploader_id = ?1";

/// Blocks and the read-receipt setting, all of them, read once at start.
pub const ALL_BLOCKS: &str = "SELECT blocker_id, blocked_id FROM blocks";
pub const ADD_BLOCK: &str =
    "INSERT OR IGNORE INTO blocks (blocker_id, blocked_id, created_at) VALUES (?1, ?2, ?3)";
pub const REMOVE_BLOCK: &str = "DELETE FROM blocks WHERE blocker_id = ?1 AND blocked_id = ?2";
pub const RECEIPTS_OFF: &str = "SELECT id FROM users WHERE send_read_receipts = 0";
pub const SET_READ_RECEIPTS: &str = "UPDATE users SET send_read_receipts = ?2 WHERE id = ?1";
/// Changes since ?2, step 1: the partners of ?1 whose conversation changed
/// after ?2 (a range of the primary key, one row per partner).
pub const CHANGED_PARTNERS: &str = "SELECT partner_id FROM conversations
     WHERE user_id = ?1 AND last_seq > ?2";
/// Step 2, per partner: the changes of conversation (?1, ?2) after seq ?3
/// and before seq ?4, oldest first, at most ?5 rows, that ?6 may see, with
/// what their frames show (the nickname of who made it; the message's row
/// for a stored or edited message). ?6 does not see another's deletions
/// for themselves, the partner's read marks when either of the two keeps
/// them private, nor anything of a message ?6 has hidden but the hiding.
pub const CONVERSATION_CHANGES: &str = concat!(
    "SELECT c.seq, c.kind, c.user_id, c.partner_id, c.message_id, c.detail, c.flag,
            u.nickname, ",
    message_columns!("?6"),
    " FROM changes c
     JOIN users u ON u.id = c.user_id
     LEFT JOIN private_messages m ON c.kind IN (1, 3) AND m.id = c.message_id
     WHERE min(c.user_id, c.partner_id) = ?1 AND max(c.user_id, c.partner_id) = ?2
       AND c.seq > ?3 AND c.seq < ?4
       AND (c.kind <> 4 OR c.flag = 1 OR c.user_id = ?6)
       AND (c.kind <> 2 OR c.user_id = ?6
            OR (SELECT min(p.send_read_receipts) FROM users p
                WHERE p.id IN (c.user_id, c.partner_id)) = 1)
       AND (c.kind IN (2, 4) OR NOT EXISTS (SELECT 1 FROM hidden_messages h
                                             WHERE h.user_id = ?6 AND h.message_id = c.message_id))
     ORDER BY c.seq LIMIT ?5"
);

/// A page of one conversation as ?6 sees it, newest first (the caller
/// reverses it).
pub const HISTORY_PAGE: &str = concat!(
    "SELECT ",
    message_columns!("?6"),
    " FROM private_messages m
     WHERE min(m.sender_id, m.receiver_id) = ?1 AND max(m.sender_id, m.receiver_id) = ?2
       AND m.id < ?3 AND NOT ",
    hidden_from_me!(),
    " ORDER BY m.id DESC LIMIT ?4 OFFSET ?5"
);

/// Search, one page: the messages of the index query ?1 (which names the
/// scope: my conversations, or one of them) with an id below ?2, newest
/// first, at most ?3, as ?6 sees them; never one deleted for everyone or
/// for ?6. (?4 and ?5 are unused: ?6 is the viewer in every message query.)
pub const SEARCH: &str = concat!(
    "SELECT ",
    message_columns!("?6"),
    " FROM idx.search JOIN private_messages m ON m.id = search.rowid
     WHERE search MATCH ?1 AND search.rowid < ?2 AND m.deleted_at IS NULL AND NOT ",
    hidden_from_me!(),
    " ORDER BY search.rowid DESC LIMIT ?3"
);

/// The newest change's seq (0 before the first): what a search waits for
/// the index to reach.
pub const LATEST_SEQ: &str = "SELECT coalesce(max(seq), 0) FROM changes";

/// The indexer (`indexer.rs`), following the stream: the changes after
/// seq ?1 up to ?2 that store (1), edit (3) or delete for everyone (4, flag
/// 1) a message above id ?3 (those up to it are the build's), in order.
pub const INDEX_FOLLOW: &str = "SELECT kind, message_id FROM changes
     WHERE seq > ?1 AND seq <= ?2 AND message_id > ?3
       AND (kind IN (1, 3) OR (kind = 4 AND flag = 1))
     ORDER BY seq";
/// What the indexer takes out when the server stops, before following:
/// the messages edited or deleted for everyone after seq ?1 up to ?2,
/// above id ?3.
pub const INDEX_REMOVALS: &str = "SELECT message_id FROM changes
     WHERE seq > ?1 AND seq <= ?2 AND message_id > ?3
       AND (kind = 3 OR (kind = 4 AND flag = 1))";
/// Indexes message ?1 as its row is now (nothing if it is deleted or has
/// no text).
pub const INDEX_MESSAGE: &str = "INSERT OR REPLACE INTO idx.search (rowid, body, scope)
     SELECT id, search_words(content), search_scope(sender_id, receiver_id)
     FROM private_messages WHERE id = ?1 AND deleted_at IS NULL AND content <> ''";
/// Takes message ?1 out of the index.
pub const UNINDEX_MESSAGE: &str = "DELETE FROM idx.search WHERE rowid = ?1";
/// The build: indexes the messages with an id above ?1 and up to ?2.
pub const INDEX_OLDER: &str = "INSERT OR REPLACE INTO idx.search (rowid, body, scope)
     SELECT id, search_words(content), search_scope(sender_id, receiver_id)
     FROM private_messages WHERE id > ?1 AND id <= ?2 AND deleted_at IS NULL AND content <> ''";
/// How far the index is (see `search_index.rs`).
pub const INDEX_STATE: &str = "SELECT seq, unbuilt_through FROM idx.search_state";
pub const SET_INDEX_STATE: &str = "UPDATE idx.search_state SET seq = ?1, unbuilt_through = ?2";

/// Sync, step 1: the partners of ?1 whose conversation has a message newer
/// than ?2 (a range of the primary key, one row per partner).
pub const SYNC_PARTNERS: &str = "SELECT partner_id FROM conversations
     WHERE user_id = ?1 AND last_message_id > ?2";
/// Sync, step 2, per partner: the conversation (?1, ?2) after id ?3 and
/// before id ?4, oldest first, at most ?5 rows, as ?6 sees it.
pub const SYNC_CONVERSATION_PAGE: &str = concat!(
    "SELECT ",
    message_columns!("?6"),
    " FROM private_messages m
     WHERE min(m.sender_id, m.receiver_id) = ?1 AND max(m.sender_id, m.receiver_id) = ?2
       AND m.id > ?3 AND m.id < ?4 AND NOT ",
    hidden_from_me!(),
    " ORDER BY m.id LIMIT ?5"
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
       AND m.id > ?3 AND m.sender_id = ?2 AND m.deleted_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = ?1 AND h.message_id = m.id)";
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
pub const CONVERSATIONS: &str = concat!(
    "SELECT c.partner_id, u.nickname, c.unread_count, c.last_seq,
            (SELECT s.expiry_seconds FROM conversation_settings s
             WHERE s.user_a = min(c.user_id, c.partner_id)
               AND s.user_b = max(c.user_id, c.partner_id)), ",
    message_columns!(@read concat!(
        "CASE WHEN m.receiver_id = c.user_id THEN m.id <= c.last_read_id
              ELSE m.id <= c.partner_read_id AND ", receipts_shared!(), " END"
    )),
    " FROM conversations c
     JOIN users u ON u.id = c.partner_id
     JOIN private_messages m ON m.id = c.last_message_id
     WHERE c.user_id = ?1
       AND NOT EXISTS (SELECT 1 FROM hidden_messages h
                       WHERE h.user_id = ?1 AND h.message_id = c.last_message_id)
     ORDER BY c.last_message_id DESC"
);

/// ?1's subscriptions other than the one at ?2 (a renewal replaces it).
pub const OTHER_PUSH_SUBSCRIPTIONS: &str =
    "SELECT count(*) FROM push_subscriptions WHERE user_id = ?1 AND endpoint <> ?2";
pub const UPSERT_PUSH_SUBSCRIPTION: &str =
    "INSERT INTO push_subscriptions (user_id, session_id, endpoint, p256dh, auth, created_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
     ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id,
         session_id = excluded.session_id, p256dh = excluded.p256dh, auth = excluded.auth,
         created_at = excluded.created_at";
pub const DELETE_PUSH_SUBSCRIPTION: &str =
    "DELETE FROM push_subscriptions WHERE user_id = ?1 AND endpoint = ?2";
/// ?1's subscriptions whose session has not expired at ?2.
pub const PUSH_SUBSCRIPTIONS_OF: &str = "SELECT p.endpoint, p.p256dh, p.auth
     FROM push_subscriptions p JOIN sessions s ON s.id = p.session_id
     WHERE p.user_id = ?1 AND s.expires_at > ?2 ORDER BY p.id";
pub const FORGET_PUSH_SUBSCRIPTION: &str = "DELETE FROM push_subscriptions WHERE endpoint = ?1";
pub const KEEP_SERVER_SECRET: &str =
    "INSERT INTO server_secrets (name, secret) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING";
pub const SERVER_SECRET: &str = "SELECT secret FROM server_secrets WHERE name = ?1";

/// (name, statement) of every query, for the plan test.
#[cfg(test)]
pub const ALL: &[(&str, &str)] = &[
    ("OTHER_PUSH_SUBSCRIPTIONS", OTHER_PUSH_SUBSCRIPTIONS),
    ("UPSERT_PUSH_SUBSCRIPTION", UPSERT_PUSH_SUBSCRIPTION),
    ("DELETE_PUSH_SUBSCRIPTION", DELETE_PUSH_SUBSCRIPTION),
    ("PUSH_SUBSCRIPTIONS_OF", PUSH_SUBSCRIPTIONS_OF),
    ("FORGET_PUSH_SUBSCRIPTION", FORGET_PUSH_SUBSCRIPTION),
    ("KEEP_SERVER_SECRET", KEEP_SERVER_SECRET),
    ("SERVER_SECRET", SERVER_SECRET),
    ("INSERT_USER", INSERT_USER),
    ("CREDENTIALS", CREDENTIALS),
    ("USER_BY_ID", USER_BY_ID),
    ("ALL_USERS", ALL_USERS),
    ("DELETE_EXPIRED_SESSIONS", DELETE_EXPIRED_SESSIONS),
    ("INSERT_SESSION", INSERT_SESSION),
    ("SESSION_BY_TOKEN", SESSION_BY_TOKEN),
    ("DELETE_SESSION", DELETE_SESSION),
    ("USER_BY_NICKNAME", USER_BY_NICKNAME),
    ("ADMIN_EXISTS", ADMIN_EXISTS),
    ("ADMIN_COUNT", ADMIN_COUNT),
    ("INVITE_STATE", INVITE_STATE),
    ("USE_INVITE", USE_INVITE),
    ("INSERT_INVITE", INSERT_INVITE),
    ("INVITES", INVITES),
    ("DELETE_INVITE", DELETE_INVITE),
    ("ACCOUNTS", ACCOUNTS),
    ("SET_ROLE", SET_ROLE),
    ("SET_DISABLED", SET_DISABLED),
    ("DISABLED_USERS", DISABLED_USERS),
    ("DELETE_USER_SESSIONS", DELETE_USER_SESSIONS),
    ("DELETE_OTHER_SESSIONS", DELETE_OTHER_SESSIONS),
    ("DELETE_USER_SESSION", DELETE_USER_SESSION),
    ("SESSIONS_OF", SESSIONS_OF),
    ("TOUCH_SESSION", TOUCH_SESSION),
    ("TOUCH_USER", TOUCH_USER),
    ("SET_PASSWORD", SET_PASSWORD),
    ("DELETE_USER_RESETS", DELETE_USER_RESETS),
    ("INSERT_RESET", INSERT_RESET),
    ("TAKE_RESET", TAKE_RESET),
    ("STATS", STATS),
    ("NICKNAME_RETIRED", NICKNAME_RETIRED),
    ("SET_DISPLAY_NAME", SET_DISPLAY_NAME),
    ("OTHER_NAMES", OTHER_NAMES),
    ("UNDELETED_SENT", UNDELETED_SENT),
    ("UNHIDE", UNHIDE),
    ("ERASE_ACCOUNT", ERASE_ACCOUNT),
    ("RETIRE_NICKNAME", RETIRE_NICKNAME),
    ("DELETE_USER_INVITES", DELETE_USER_INVITES),
    ("AVATAR_CANDIDATE", AVATAR_CANDIDATE),
    ("CURRENT_AVATAR", CURRENT_AVATAR),
    ("SET_AVATAR", SET_AVATAR),
    ("ERASE_ATTACHMENT", ERASE_ATTACHMENT),
    ("AVATAR_FILE", AVATAR_FILE),
    ("INSERT_REPORT", INSERT_REPORT),
    ("REPORT_ID", REPORT_ID),
    ("OPEN_REPORTS", OPEN_REPORTS),
    ("REPORTED", REPORTED),
    ("RESOLVE_REPORT", RESOLVE_REPORT),
    ("INSERT_MESSAGE", INSERT_MESSAGE),
    ("EXPIRY_SECONDS", EXPIRY_SECONDS),
    ("SET_EXPIRY", SET_EXPIRY),
    ("DUE_TO_EXPIRE", DUE_TO_EXPIRE),
    ("NEXT_EXPIRY", NEXT_EXPIRY),
    ("OLDEST_AFTER", OLDEST_AFTER),
    ("MESSAGE_BY_CLIENT_ID", MESSAGE_BY_CLIENT_ID),
    ("MESSAGE_BY_ID", MESSAGE_BY_ID),
    ("MESSAGE_FACTS", MESSAGE_FACTS),
    ("TOUCH_MY_CONVERSATION", TOUCH_MY_CONVERSATION),
    ("SAVE_VERSION", SAVE_VERSION),
    ("EDIT_MESSAGE", EDIT_MESSAGE),
    ("EARLIER_VERSIONS", EARLIER_VERSIONS),
    ("ERASE_MESSAGE", ERASE_MESSAGE),
    ("MESSAGE_EXTRAS", MESSAGE_EXTRAS),
    ("ERASE_VERSIONS", ERASE_VERSIONS),
    ("ERASE_REACTIONS", ERASE_REACTIONS),
    ("ERASE_MESSAGE_CHANGES", ERASE_MESSAGE_CHANGES),
    ("COUNTS_AS_UNREAD", COUNTS_AS_UNREAD),
    ("ONE_LESS_UNREAD", ONE_LESS_UNREAD),
    ("HIDE_MESSAGE", HIDE_MESSAGE),
    ("LAST_VISIBLE_MESSAGE", LAST_VISIBLE_MESSAGE),
    ("SET_LAST_MESSAGE", SET_LAST_MESSAGE),
    ("REACTION_STATE", REACTION_STATE),
    ("ADD_REACTION", ADD_REACTION),
    ("REMOVE_REACTION", REMOVE_REACTION),
    ("ADD_BLOCK", ADD_BLOCK),
    ("REMOVE_BLOCK", REMOVE_BLOCK),
    ("SET_READ_RECEIPTS", SET_READ_RECEIPTS),
    ("INSERT_ATTACHMENT", INSERT_ATTACHMENT),
    ("UPLOADED_BYTES", UPLOADED_BYTES),
    ("ATTACHMENT_FOR_VIEWER", ATTACHMENT_FOR_VIEWER),
    ("UNSENT_ATTACHMENT", UNSENT_ATTACHMENT),
    ("ATTACH", ATTACH),
    ("ERASE_ATTACHMENTS", ERASE_ATTACHMENTS),
    ("ERASE_UNSENT_ATTACHMENTS", ERASE_UNSENT_ATTACHMENTS),
    ("FILE_IN_USE", FILE_IN_USE),
    ("UPSERT_SENDER_CONVERSATION", UPSERT_SENDER_CONVERSATION),
    ("UPSERT_RECEIVER_CONVERSATION", UPSERT_RECEIVER_CONVERSATION),
    ("INSERT_CHANGE", INSERT_CHANGE),
    ("CHANGED_PARTNERS", CHANGED_PARTNERS),
    ("CONVERSATION_CHANGES", CONVERSATION_CHANGES),
    ("HISTORY_PAGE", HISTORY_PAGE),
    ("SEARCH", SEARCH),
    ("LATEST_SEQ", LATEST_SEQ),
    ("INDEX_FOLLOW", INDEX_FOLLOW),
    ("INDEX_REMOVALS", INDEX_REMOVALS),
    ("INDEX_MESSAGE", INDEX_MESSAGE),
    ("UNINDEX_MESSAGE", UNINDEX_MESSAGE),
    ("INDEX_OLDER", INDEX_OLDER),
    ("INDEX_STATE", INDEX_STATE),
    ("SET_INDEX_STATE", SET_INDEX_STATE),
    ("SYNC_PARTNERS", SYNC_PARTNERS),
    ("SYNC_CONVERSATION_PAGE", SYNC_CONVERSATION_PAGE),
    ("READ_STATE", READ_STATE),
    ("UNREAD_AFTER", UNREAD_AFTER),
    ("MARK_CONVERSATION_READ", MARK_CONVERSATION_READ),
    ("MARK_READ_BY_PARTNER", MARK_READ_BY_PARTNER),
    ("UNREAD_COUNT", UNREAD_COUNT),
    ("CONVERSATIONS", CONVERSATIONS),
];
