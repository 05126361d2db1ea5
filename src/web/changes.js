// Applying what the server says happened: every change frame (live, or
// replayed by sync), typing, and the answers to my sends. One function
// per kind of frame; `applyChange` picks it.

import {
  state, thread, partnerOf, addMessages, noteLastMessage, findMessage, messageFromFrame, markedRead,
  conversation,
} from "./state.js";
import { $ } from "./dom.js";
import { refreshLists, renderSidebar, renderPane } from "./sidebar.js";
import { renderMessages, renderTyping } from "./messages.js";
import { markRead } from "./conversation.js";

/** Applies one change frame (it has a `seq`). `live`: it just happened. */
export function applyChange(frame, live) {
  switch (frame.type) {
    case "private_message": onMessage(frame, live); break;
    case "messages_read": onMessagesRead(frame); break;
    case "message_edited": onEdited(frame); break;
    case "message_deleted": onDeleted(frame); break;
    case "reaction": onReaction(frame); break;
    case "expiry_changed": onExpiryChanged(frame, live); break;
  }
}

/** How long a timer is, in words: "1 day", "5 minutes". */
export function timerWords(seconds) {
  const units = [[604800, "week"], [86400, "day"], [3600, "hour"], [60, "minute"], [1, "second"]];
  const [size, name] = units.find(([size]) => seconds % size === 0 && seconds >= size) || [1, "second"];
  const n = seconds / size;
  return `${n} ${name}${n === 1 ? "" : "s"}`;
}

/** The conversation's timer changed: kept for the header, and said in the
 * conversation when it just happened. */
function onExpiryChanged(frame, live) {
  const partner = frame.by_user_id === state.me.id ? frame.partner_id : frame.by_user_id;
  const c = conversation(partner);
  c.expiry_seconds = frame.seconds;
  if (partner !== state.openPartner) return;
  renderPane();
  if (!live) return;
  const who = frame.by_user_id === state.me.id ? "You" : (state.users.get(partner) || {}).nickname || "Your partner";
  $("notice").textContent = frame.seconds === null
    ? `${who} turned off disappearing messages.`
    : `${who} set messages to disappear after ${timerWords(frame.seconds)}.`;
  $("notice").hidden = false;
  setTimeout(() => { $("notice").hidden = true; }, NOTICE_MS);
}

/** How long a notice about the conversation stays. */
const NOTICE_MS = 8000;

function rerender(partner) {
  if (partner === state.openPartner) renderMessages({});
  renderSidebar();
}

function onMessage(frame, live) {
  const message = messageFromFrame(frame);
  const partner = partnerOf(message);
  const incoming = message.sender_id !== state.me.id;
  if (!addMessages(partner, [message])) return; // already have it
  if (!state.users.has(partner)) refreshLists();
  // Replayed or live, an incoming message after the list is unread until a
  // read mark (live, or later in the same replay) says otherwise.
  noteLastMessage(message, incoming && !message.deleted_at);
  if (incoming) state.typing.delete(partner); // a message ends typing
  if (partner === state.openPartner) {
    const box = $("messages");
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    renderMessages({ scrollToBottom: atBottom || !incoming });
    renderTyping();
    const viewing = document.visibilityState === "visible";
    if (viewing && incoming && live) markRead(partner);
  }
  renderSidebar();
}

/** Someone read a conversation: if it was me (another tab, or this one),
 * its badge goes; if it was my partner, my messages up to there are seen. */
function onMessagesRead(frame) {
  if (frame.reader_id === state.me.id) {
    const c = state.conversations.get(frame.partner_id);
    if (!c) return;
    markedRead(c, frame.up_to_id);
    // Read part of the way: the server counts what is left.
    if (c.last_message && frame.up_to_id < c.last_message.id) refreshLists();
    renderSidebar();
  } else if (frame.partner_id === state.me.id) {
    const t = thread(frame.reader_id);
    t.seenUpTo = Math.max(t.seenUpTo, frame.up_to_id);
    if (frame.reader_id === state.openPartner) renderMessages({});
  }
}

function onEdited(frame) {
  const m = findMessage(frame.message_id);
  if (m) {
    m.content = frame.content;
    m.edited_at = frame.edited_at;
    rerender(partnerOf(m));
  }
  for (const c of state.conversations.values()) {
    if (c.last_message && c.last_message.id === frame.message_id) {
      c.last_message = { ...c.last_message, content: frame.content, edited_at: frame.edited_at };
    }
  }
  renderSidebar();
}

function onDeleted(frame) {
  const m = findMessage(frame.message_id);
  if (frame.for === "me") {
    if (m) {
      thread(partnerOf(m)).messages.delete(m.id);
      rerender(partnerOf(m));
    }
    refreshLists(); // the list shows the newest message I still see
    return;
  }
  if (m) {
    m.content = "";
    m.deleted_at = m.deleted_at || new Date().toISOString();
    m.reactions = [];
    rerender(partnerOf(m));
  }
  // Replies to it lose their excerpt.
  for (const t of state.threads.values()) {
    for (const reply of t.messages.values()) {
      if (reply.reply_to && reply.reply_to.id === frame.message_id) reply.reply_to = { ...reply.reply_to, excerpt: null };
    }
  }
  for (const c of state.conversations.values()) {
    if (c.last_message && c.last_message.id === frame.message_id) {
      c.last_message = { ...c.last_message, content: "", deleted_at: new Date().toISOString() };
    }
  }
  if (state.openPartner !== null) renderMessages({});
  // A deleted message is never unread: the server's counts say how many remain.
  refreshLists();
}

function onReaction(frame) {
  const m = findMessage(frame.message_id);
  if (!m) return;
  let entry = m.reactions.find((r) => r.emoji === frame.emoji);
  if (frame.on) {
    if (!entry) { entry = { emoji: frame.emoji, user_ids: [] }; m.reactions = [...m.reactions, entry]; }
    if (!entry.user_ids.includes(frame.user_id)) entry.user_ids = [...entry.user_ids, frame.user_id];
  } else if (entry) {
    entry.user_ids = entry.user_ids.filter((id) => id !== frame.user_id);
    m.reactions = m.reactions.filter((r) => r.user_ids.length > 0);
  }
  m.reactions = [...m.reactions]; // a new value: the node is rebuilt
  rerender(partnerOf(m));
}

/** The partner is typing to me, or stopped (the server says when it lapses). */
export function onTyping(frame) {
  if (frame.state === "start") state.typing.set(frame.from_user_id, true);
  else state.typing.delete(frame.from_user_id);
  renderTyping();
  renderSidebar();
}

/** A send was answered: the message is stored (with an id) or refused. */
export function settlePending(frame, outcome) {
  const p = state.pending.get(frame.client_id);
  if (!p) return;
  if (frame.message_id) {
    const message = {
      id: frame.message_id, sender_id: state.me.id, receiver_id: p.partner,
      content: p.content, created_at: frame.timestamp || new Date().toISOString(), is_read: false,
      reply_to: p.replyTo ? { id: p.replyTo.id, sender_id: p.replyTo.sender_id, excerpt: [...p.replyTo.content].slice(0, 100).join("") } : null,
      edited_at: null, deleted_at: null, reactions: [],
    };
    state.pending.delete(frame.client_id);
    addMessages(p.partner, [message]);
    thread(p.partner).messages.get(message.id).delivery = outcome;
    noteLastMessage(message, false);
    renderSidebar();
  } else {
    p.state = "failed";
    p.error = frame.error === "recipient_unavailable" ? "you cannot message this person" : frame.error;
  }
  if (p.partner === state.openPartner) renderMessages({});
}
