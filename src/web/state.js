// Everything the page knows, in one object, and the small helpers that
// keep its parts consistent. No DOM here.

export const state = {
  me: null,                 // {id, nickname, email, send_read_receipts}
  users: new Map(),         // id -> {id, nickname, online}
  conversations: new Map(), // partner id -> see conversation()
  threads: new Map(),       // partner id -> see thread()
  pending: new Map(),       // client_id -> {partner, content, state, error, replyTo}
  typing: new Map(),        // partner id -> true while they type to me
  blocked: new Set(),       // ids of the users I blocked
  openPartner: null,
  replyTo: null,            // the message the next send answers
  editing: null,            // the id of my message being edited
  ws: null,
  wsUrl: null,
  retryMs: 0,
  reconnectTimer: null,
  // Catch-up by change: every change up to `cursor` (a seq) has been seen.
  // After each (re)connect we ask for everything after it ("sync"); live
  // changes seen meanwhile only move the cursor once the sync is done.
  cursor: 0,
  liveMax: 0,
  syncing: false,
  outbox: [],               // frames typed while disconnected, sent on reconnect
};

/** Forgets everything of the previous login. */
export function resetState(user) {
  state.me = user;
  state.users.clear();
  state.conversations.clear();
  state.threads.clear();
  state.pending.clear();
  state.typing.clear();
  state.blocked.clear();
  state.openPartner = null;
  state.replyTo = null;
  state.editing = null;
  state.cursor = 0;
}

export function partnerOf(message) {
  return message.sender_id === state.me.id ? message.receiver_id : message.sender_id;
}

export function thread(partner) {
  if (!state.threads.has(partner)) {
    state.threads.set(partner, {
      messages: new Map(), // id -> Message (docs/API.md), plus `delivery`
      complete: false,     // the oldest message is loaded
      loading: false,
      loaded: false,
      seenUpTo: 0,         // the partner has read my messages up to this id
    });
  }
  return state.threads.get(partner);
}

/** The message with this id, wherever it is loaded. */
export function findMessage(id) {
  for (const t of state.threads.values()) {
    const m = t.messages.get(id);
    if (m) return m;
  }
  return null;
}

/** Adds stored messages to a thread; returns how many were new. */
export function addMessages(partner, messages) {
  const t = thread(partner);
  let added = 0;
  for (const m of messages) {
    if (!t.messages.has(m.id)) { t.messages.set(m.id, m); added++; }
    // A stored message of mine says whether the partner had read it.
    if (m.sender_id === state.me.id && m.is_read) t.seenUpTo = Math.max(t.seenUpTo, m.id);
  }
  return added;
}

/**
 * A conversation of the list. Its unread count is exact whatever order
 * messages, sync pages and list refreshes arrive in: the server's count
 * as of the list (`base_unread`, which covers every message up to
 * `base_last_id`), plus the incoming messages seen since with a larger
 * id (`extra`, a set: each counts once).
 */
export function conversation(partner) {
  if (!state.conversations.has(partner)) {
    state.conversations.set(partner, {
      last_message: null, last_seq: 0, unread_count: 0,
      base_unread: 0, base_last_id: 0, extra: new Set(),
    });
  }
  return state.conversations.get(partner);
}

/** Takes the server's word for a conversation (a list row). */
export function applyListRow(row) {
  const c = conversation(row.user_id);
  c.base_unread = row.unread_count;
  c.base_last_id = row.last_message.id;
  c.extra = new Set([...c.extra].filter((id) => id > c.base_last_id));
  if (!c.last_message || row.last_message.id >= c.last_message.id) c.last_message = row.last_message;
  c.last_seq = Math.max(c.last_seq, row.last_seq || 0);
  c.unread_count = c.base_unread + c.extra.size;
  c.expiry_seconds = row.expiry_seconds ?? null;
}

/** Everything up to `upToId` is read (by me). */
export function markedRead(c, upToId) {
  c.base_unread = 0;
  c.base_last_id = Math.max(c.base_last_id, upToId);
  c.extra = new Set([...c.extra].filter((id) => id > upToId));
  c.unread_count = c.extra.size;
}

/** Records a message as the newest of its conversation (for the sidebar). */
export function noteLastMessage(message, countUnread) {
  const c = conversation(partnerOf(message));
  if (!c.last_message || message.id >= c.last_message.id) c.last_message = message;
  if (countUnread && message.id > c.base_last_id && !c.extra.has(message.id)) {
    c.extra.add(message.id);
    c.unread_count = c.base_unread + c.extra.size;
  }
}

/** A message object from a `private_message` frame (live or replayed). */
export function messageFromFrame(frame) {
  return {
    id: frame.message_id, sender_id: frame.from_user_id, receiver_id: frame.to_user_id,
    content: frame.content, created_at: frame.timestamp, is_read: false,
    reply_to: frame.reply_to || null, edited_at: frame.edited_at || null,
    deleted_at: frame.deleted_at || null, reactions: [],
    attachment: frame.attachment || null, expires_at: frame.expires_at || null,
  };
}

/** Unread messages over all conversations (the tab title shows it). */
export function totalUnread() {
  let total = 0;
  for (const c of state.conversations.values()) total += c.unread_count;
  return total;
}
