-- Schema of the chat server, version 10.
--
-- Run once, on an empty database (PRAGMA user_version = 0), by
-- `repo::sqlite::schema::migrate`. This file always describes a fresh
-- database of the newest version; older files are brought up to date by the
-- numbered steps in `repo/sqlite/schema.rs`.
--
-- Every query the server runs per request is served by an index below; the
-- test `query_plans_use_indexes` checks that none of them scans a table.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    -- NOCASE makes "Alice" and "alice" the same nickname (nicknames are ASCII).
    nickname      TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    email         TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    -- Argon2id PHC string: algorithm, parameters, salt and hash in one field.
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL, -- milliseconds since the Unix epoch, UTC
    -- 0: the partner does not learn how far this user has read, and this
    -- user does not learn it of anyone either (PATCH /api/me).
    send_read_receipts INTEGER NOT NULL DEFAULT 1,
    -- 'admin' may manage accounts and invitations; the first account is one.
    role          TEXT    NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin')),
    -- Set while an admin has disabled the account: no session, no login.
    disabled_at   INTEGER,
    -- The last request or connection of any of its sessions (to the minute).
    last_seen_at  INTEGER,
    -- Set when the account was deleted: its row stays (its messages, now
    -- tombstones, refer to it) with every personal field erased.
    deleted_at    INTEGER,
    -- Shown beside the nickname; any script and emoji (see accounts/names.rs).
    display_name  TEXT,
    -- The picture: an image this user uploaded, shown as its thumbnail. It
    -- is never sent in a message and never removed as an unsent upload.
    avatar_attachment_id INTEGER REFERENCES attachments (id)
);
-- "Is there an admin?" (registration is open until there is one) and
-- "who is disabled?" (read by the server when another process changed it):
-- both are few rows among many, so each has a partial index.
CREATE INDEX users_admins ON users (id) WHERE role = 'admin';
CREATE INDEX users_disabled ON users (id) WHERE disabled_at IS NOT NULL;
-- Whether an upload is someone's picture (before it is removed or sent).
CREATE INDEX users_by_avatar ON users (avatar_attachment_id)
    WHERE avatar_attachment_id IS NOT NULL;

CREATE TABLE sessions (
    id          INTEGER PRIMARY KEY,
    -- SHA-256 of the cookie token: a stolen database does not log anyone in.
    token_hash  BLOB    NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    -- What the owner sees in their list of sessions: when it was last used
    -- (to the minute), from which address, and the browser's User-Agent.
    last_seen_at INTEGER NOT NULL DEFAULT 0,
    address      TEXT    NOT NULL DEFAULT '',
    device       TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- Invitations: registering with `--registration invite` needs one whose
-- uses are not used up and that has not expired. The code is what the
-- admin hands over; it lets someone create an account, never log in.
CREATE TABLE invites (
    code       TEXT    PRIMARY KEY,
    created_by INTEGER REFERENCES users (id), -- NULL: the operator's shell
    created_at INTEGER NOT NULL,
    expires_at INTEGER,                       -- NULL: never
    max_uses   INTEGER NOT NULL CHECK (max_uses > 0),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses <= max_uses)
) WITHOUT ROWID;
CREATE INDEX invites_by_creator ON invites (created_by);

-- One-time password-reset links an admin made for a user (there is no
-- mail server: the admin hands the link over). Only the token's SHA-256.
CREATE TABLE password_resets (
    token_hash BLOB    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX password_resets_by_user ON password_resets (user_id);

-- Nicknames of deleted accounts, not to be taken by someone else until
-- `until` (so that nobody can pose as a person who just left).
CREATE TABLE retired_nicknames (
    nickname TEXT    PRIMARY KEY COLLATE NOCASE,
    until    INTEGER NOT NULL
) WITHOUT ROWID;

-- Messages users reported to the admins, and what an admin did about them.
CREATE TABLE reports (
    id          INTEGER PRIMARY KEY,
    reporter_id INTEGER NOT NULL REFERENCES users (id),
    message_id  INTEGER NOT NULL REFERENCES private_messages (id),
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    resolved_at INTEGER,
    resolved_by INTEGER REFERENCES users (id),
    -- 'dismissed', 'message_deleted' or 'sender_disabled'
    resolution  TEXT
);
-- One report per message and reporter; the open ones, oldest first.
CREATE UNIQUE INDEX reports_once ON reports (reporter_id, message_id);
CREATE INDEX reports_open ON reports (id) WHERE resolved_at IS NULL;

CREATE TABLE private_messages (
    -- AUTOINCREMENT: ids are never reused, so "after id N" and "before id N"
    -- stay meaningful for clients that remember ids.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sender_id   INTEGER NOT NULL REFERENCES users (id),
    receiver_id INTEGER NOT NULL REFERENCES users (id),
    content     TEXT    NOT NULL,
    created_at  INTEGER NOT NULL, -- milliseconds since the Unix epoch, UTC
    -- The sender's own tag for this send (optional). A retried send with the
    -- same tag finds the stored message instead of storing a second one.
    client_id   TEXT,
    -- The message of the same conversation this one answers (optional).
    reply_to_id INTEGER REFERENCES private_messages (id),
    -- When the content was last edited (earlier versions: message_versions).
    edited_at   INTEGER,
    -- When it was deleted for everyone: content is then '' and every
    -- earlier version and reaction is gone; the row stays, so that ids,
    -- paging and sync stay stable.
    deleted_at  INTEGER,
    -- When it disappears (sent while its conversation had a timer): then
    -- it is deleted for everyone, like any deletion.
    expires_at  INTEGER,
    CHECK (sender_id <> receiver_id)
);

-- Idempotent sends: one message per (sender, client_id).
CREATE UNIQUE INDEX private_messages_by_client_id ON private_messages (sender_id, client_id)
    WHERE client_id IS NOT NULL;

-- Every message costs one insert per index, inside the writer's commit, so
-- there are only two: the one above and the one below. History, sync ("what
-- is new in my conversations") and the read state are all served by this
-- index and the conversations table.
--
-- History of one conversation, newest first: both directions share one key
-- (the smaller user id, the larger user id), so a page is one index range.
CREATE INDEX private_messages_by_conversation ON private_messages (
    min(sender_id, receiver_id), max(sender_id, receiver_id), id
);

-- Messages still to disappear, soonest first: only those that will.
CREATE INDEX private_messages_expiring ON private_messages (expires_at)
    WHERE expires_at IS NOT NULL AND deleted_at IS NULL;

-- What both sides of a conversation set for it, one row per pair
-- (user_a < user_b): the disappearing-messages timer (NULL: off). A send
-- reads it by primary key.
CREATE TABLE conversation_settings (
    user_a         INTEGER NOT NULL REFERENCES users (id),
    user_b         INTEGER NOT NULL REFERENCES users (id),
    expiry_seconds INTEGER CHECK (expiry_seconds > 0),
    PRIMARY KEY (user_a, user_b),
    CHECK (user_a < user_b)
) WITHOUT ROWID;

-- One row per (user, partner): the conversation list, unread counts and
-- read state are read from here instead of aggregating all messages on every
-- request. It is kept in step with private_messages inside the same
-- transactions. A message updates two rows in place; no index on this table
-- changes, so the conversation list is sorted when read (one row per partner).
CREATE TABLE conversations (
    user_id         INTEGER NOT NULL REFERENCES users (id),
    partner_id      INTEGER NOT NULL REFERENCES users (id),
    last_message_id INTEGER NOT NULL REFERENCES private_messages (id),
    -- Read state as a watermark: the partner's messages to this user with
    -- an id up to this one are read, later ones are not. Marking a
    -- conversation read changes this row, not one row per message.
    last_read_id    INTEGER NOT NULL DEFAULT 0,
    -- A copy of the partner's row's last_read_id (how far the partner has
    -- read this user's messages), changed with it: the conversation list
    -- then tells whether each last message was read without a second row.
    partner_read_id INTEGER NOT NULL DEFAULT 0,
    unread_count    INTEGER NOT NULL DEFAULT 0 CHECK (unread_count >= 0),
    -- The conversation's newest change (see `changes`): sync asks which
    -- conversations changed after a seq. Both rows of a conversation carry
    -- it, set by the writes that already update them.
    last_seq        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, partner_id)
) WITHOUT ROWID;

-- The stream of committed changes (src/changes.rs): one row per change a
-- client must learn about, in commit order. `seq` is assigned inside the
-- transaction that commits the change: the rowid, max + 1, which the single
-- writer makes strictly increasing in commit order. (Not AUTOINCREMENT: its
-- counter would cost every message one more write. Old changes will only
-- ever be pruned from the oldest end, so max + 1 never hands out a seq
-- twice.) Every change belongs to a conversation and both its users see
-- it; a client that was away reads, for each partner whose conversation
-- row has a `last_seq` above the last seq it saw, that conversation's
-- range of this index: one index per change, like the message index.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY,
    -- 1: message stored, 2: conversation read, 3: message edited,
    -- 4: message deleted, 5: reaction, 6: disappearing-messages timer set
    -- (detail: its seconds, NULL: off; message_id 0)
    kind       INTEGER NOT NULL,
    user_id    INTEGER NOT NULL, -- who made it: sender, reader, editor...
    partner_id INTEGER NOT NULL, -- the other side
    message_id INTEGER NOT NULL, -- the message; for a read: read up to it
    detail     TEXT,             -- a reaction's emoji
    flag       INTEGER           -- a reaction: on; a deletion: for everyone
);
CREATE INDEX changes_by_conversation ON changes (
    min(user_id, partner_id), max(user_id, partner_id), seq
);
-- A deletion for everyone erases the message's edits and reactions from
-- the stream too; only those kinds are indexed, so a send costs nothing.
CREATE INDEX changes_by_message ON changes (message_id) WHERE kind IN (3, 5);

-- Earlier contents of edited messages, oldest first (version 1 is what was
-- sent). Erased when the message is deleted for everyone.
CREATE TABLE message_versions (
    message_id INTEGER NOT NULL REFERENCES private_messages (id),
    version    INTEGER NOT NULL,
    content    TEXT    NOT NULL,
    written_at INTEGER NOT NULL, -- when this version was sent or edited
    PRIMARY KEY (message_id, version)
) WITHOUT ROWID;

-- One row per (message, emoji, user): a message's reactions are one range.
CREATE TABLE reactions (
    message_id INTEGER NOT NULL REFERENCES private_messages (id),
    emoji      TEXT    NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    PRIMARY KEY (message_id, emoji, user_id)
) WITHOUT ROWID;

-- Messages a user deleted for themselves: hidden from their history,
-- sync, conversation list and unread counts only.
CREATE TABLE hidden_messages (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    message_id INTEGER NOT NULL REFERENCES private_messages (id),
    PRIMARY KEY (user_id, message_id)
) WITHOUT ROWID;

-- Who blocked whom. Read into memory at start (the send path and the hub
-- consult it without a query) and kept in step by every change.
CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES users (id),
    blocked_id INTEGER NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) WITHOUT ROWID;

-- Files users uploaded: what they are, not their bytes (those are in the
-- files folder, under their SHA-256, shared by every row with the same
-- bytes). An upload belongs to its uploader until a message carries it.
CREATE TABLE attachments (
    id          INTEGER PRIMARY KEY,
    uploader_id INTEGER NOT NULL REFERENCES users (id),
    sha256      TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    mime        TEXT    NOT NULL,
    width       INTEGER,
    height      INTEGER,
    created_at  INTEGER NOT NULL,
    message_id  INTEGER REFERENCES private_messages (id),
    -- An image's thumbnail (longest side 320 px), stored like any file.
    thumbnail_sha256 TEXT,
    thumbnail_mime   TEXT
);
-- A user's uploads (the quota sums them); who else holds the same bytes.
CREATE INDEX attachments_by_uploader ON attachments (uploader_id);
CREATE INDEX attachments_by_sha256 ON attachments (sha256);
-- A message's file (one lookup per message read).
CREATE INDEX attachments_by_message ON attachments (message_id) WHERE message_id IS NOT NULL;
-- Uploads not sent yet, oldest first (those unsent too long are removed).
CREATE INDEX attachments_unsent ON attachments (created_at) WHERE message_id IS NULL;
-- Whether some row still refers to a stored thumbnail (before removing it).
CREATE INDEX attachments_by_thumbnail ON attachments (thumbnail_sha256)
    WHERE thumbnail_sha256 IS NOT NULL;

-- Web Push subscriptions: where to send a push for a user who is not
-- connected. Each belongs to the session that made it, and goes with it
-- (logout, expiry, a password change).
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    -- The push service's URL for this browser: a capability, not shown.
    endpoint   TEXT    NOT NULL UNIQUE,
    p256dh     BLOB    NOT NULL,
    auth       BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);
CREATE INDEX push_subscriptions_by_session ON push_subscriptions (session_id);

-- Secrets the server makes once and keeps with its data (the VAPID key).
CREATE TABLE server_secrets (
    name   TEXT PRIMARY KEY,
    secret BLOB NOT NULL
) WITHOUT ROWID;

PRAGMA user_version = 11;
