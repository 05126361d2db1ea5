// The open conversation: day separators, runs of messages with one time
// each, ticks on my messages, replies as quotes, files and images,
// "edited", deleted messages, reactions, and the actions on each message.
//
// Nodes are kept per message and rebuilt only when what they show
// changes, so that a conversation of thousands of messages re-renders in
// a few milliseconds when one message arrives or changes.

import { state, thread } from "./state.js";
import { $, el, formatTime, dayLabel } from "./dom.js";
import { startReply, startEdit, deleteMessage, toggleReaction, reportMessage } from "./actions.js";
import { attachmentNode } from "./media.js";

/** Messages closer than this, from one sender, share one time. */
const RUN_GAP_MS = 5 * 60 * 1000;
/** The emoji the picker offers. Any single emoji is accepted by the server. */
export const QUICK_EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🙏", "🎉", "🔥"];

const STATE_TEXT = {
  sending: "Sending…",
  sent: "✓ Sent",
  delivered: "✓✓ Delivered",
  read: "✓✓",
  seen: "Seen",
};

/** message id -> {signature, node}: rebuilt when the signature changes. */
const nodes = new Map();
/** Day separators by day, and the "scroll up" hint: kept like messages. */
const days = new Map();
const olderHint = el("div", "loading-older", "Scroll up for older messages");

export function renderMessages({ scrollToBottom }) {
  const partner = state.openPartner;
  if (partner === null) return;
  const t = thread(partner);
  const partnerName = (state.users.get(partner) || {}).nickname || "";
  const list = [];
  if (!t.complete && t.messages.size > 0) list.push(olderHint);
  // A disappearing message that went is not shown at all (no tombstone).
  const stored = [...t.messages.values()]
    .filter((m) => !(m.expires_at && m.deleted_at))
    .sort((a, b) => a.id - b.id);
  // "Seen" goes under the last of my messages the partner has read.
  let lastSeen = 0;
  for (const m of stored) {
    if (m.sender_id === state.me.id && m.id <= t.seenUpTo && !m.deleted_at) lastSeen = m.id;
  }
  let previousDay = null;
  stored.forEach((m, i) => {
    const day = when(m).day;
    if (day !== previousDay) {
      list.push(dayNode(day, m.created_at));
      previousDay = day;
    }
    const next = stored[i + 1];
    const endsRun = !next || next.sender_id !== m.sender_id
      || when(next).ms - when(m).ms > RUN_GAP_MS || when(next).day !== day;
    const mine = m.sender_id === state.me.id;
    let delivery = null;
    if (mine && !m.deleted_at) delivery = m.id === lastSeen ? "seen" : m.id <= t.seenUpTo ? "read" : (m.delivery || "sent");
    list.push(messageNode(m, { mine, endsRun, delivery, sender: partnerName }));
  });
  for (const [clientId, p] of state.pending) {
    if (p.partner !== partner) continue;
    const node = pendingNode(p);
    node.dataset.clientId = clientId;
    list.push(node);
  }
  const box = $("messages");
  reconcile(box, list);
  // Forget nodes of messages no longer shown (deleted for me, other thread).
  if (nodes.size > t.messages.size + 500) {
    for (const id of nodes.keys()) if (!t.messages.has(id)) nodes.delete(id);
  }
  if (scrollToBottom) box.scrollTop = box.scrollHeight;
}

/**
 * Makes `box`'s children be `list`, touching only what differs: a new
 * message is one insertion, an older page fifty, a changed message one
 * replacement. (Replacing all children on every change made the browser
 * lay out thousands of messages for each one that arrived.)
 */
function reconcile(box, list) {
  const wanted = new Set(list);
  let current = box.firstChild;
  for (const node of list) {
    while (current && !wanted.has(current)) {
      const next = current.nextSibling;
      current.remove();
      current = next;
    }
    if (current === node) {
      current = current.nextSibling;
    } else {
      box.insertBefore(node, current);
    }
  }
  while (current) {
    const next = current.nextSibling;
    current.remove();
    current = next;
  }
}

/** A message's time as milliseconds and as its local day, parsed once. */
const times = new WeakMap();
function when(m) {
  let t = times.get(m);
  if (!t) {
    const date = new Date(m.created_at);
    t = { ms: date.getTime(), day: date.toDateString() };
    times.set(m, t);
  }
  return t;
}

/** The separator of one day ("Today", "Yesterday", a date). */
function dayNode(day, iso) {
  const label = dayLabel(iso);
  const cached = days.get(day);
  if (cached && cached.textContent === label) return cached;
  const node = el("div", "day", label);
  days.set(day, node);
  return node;
}

/** The node of a stored message, from the cache when nothing changed. */
function messageNode(m, view) {
  const signature = `${m.content}\u0000${m.edited_at}\u0000${m.deleted_at}\u0000${
    m.reactions.length > 0 ? JSON.stringify(m.reactions) : ""}\u0000${
    m.reply_to ? JSON.stringify(m.reply_to) : ""}\u0000${m.attachment ? m.attachment.id : ""}\u0000${view.endsRun}\u0000${view.delivery}\u0000${view.sender}`;
  const cached = nodes.get(m.id);
  if (cached && cached.signature === signature) return cached.node;
  const node = buildMessage(m, view);
  // An open action bar or emoji picker stays open through a change.
  if (cached && cached.node.classList.contains("show-actions")) node.classList.add("show-actions");
  nodes.set(m.id, { signature, node });
  return node;
}

function buildMessage(m, { mine, endsRun, delivery, sender }) {
  const wrap = el("div", mine ? "msg mine" : "msg");
  wrap.dataset.messageId = m.id;
  if (m.deleted_at) wrap.classList.add("deleted");
  if (m.reply_to) wrap.append(quoteNode(m.reply_to));
  if (m.attachment && !m.deleted_at) wrap.append(attachmentNode(m.attachment));
  const bubble = el("div", "bubble", m.deleted_at ? "This message was deleted" : m.content);
  bubble.dir = "auto";
  // A file without a caption has no bubble (the bubble still opens the
  // actions on touch screens when there is one).
  if (m.deleted_at || m.content !== "" || !m.attachment) wrap.append(bubble);
  if (m.reactions.length > 0) wrap.append(reactionsNode(m));
  const meta = el("div", "meta");
  const parts = [];
  if (m.edited_at && !m.deleted_at) parts.push(el("span", "edited", "edited"));
  if (m.expires_at && !m.deleted_at) {
    const mark = el("span", "expires", "⏱");
    mark.title = `Disappears ${new Date(m.expires_at).toLocaleString()}`;
    parts.push(mark);
  }
  if (endsRun) parts.push(el("time", "", formatTime(m.created_at)));
  if (!mine && endsRun && sender) parts.unshift(el("span", "sender", sender));
  if (mine && delivery) parts.push(el("span", `state ${delivery}`, STATE_TEXT[delivery]));
  parts.forEach((part, i) => { if (i > 0) meta.append(" · "); meta.append(part); });
  if (parts.length > 0) wrap.append(meta);
  if (!m.deleted_at) wrap.append(actionsNode(m, mine));
  // Touch screens have no hover: a tap on the bubble shows the actions.
  bubble.addEventListener("click", () => wrap.classList.toggle("show-actions"));
  return wrap;
}

function pendingNode(p) {
  const wrap = el("div", "msg mine");
  if (p.replyTo) wrap.append(quoteNode(p.replyTo));
  if (p.attachment) wrap.append(attachmentNode(p.attachment));
  const bubble = el("div", "bubble", p.content);
  bubble.dir = "auto";
  if (p.content !== "" || !p.attachment) wrap.append(bubble);
  const meta = el("div", "meta");
  const text = p.state === "failed" ? `failed: ${p.error || "error"}` : STATE_TEXT[p.state] || "";
  meta.append(el("span", `state ${p.state}`, text));
  wrap.append(meta);
  return wrap;
}

/** A reply's quote of its original; a click scrolls to the original. */
function quoteNode(reply) {
  const quote = el("button", "quote");
  quote.type = "button";
  const who = reply.sender_id === state.me.id ? "You" : (state.users.get(reply.sender_id) || {}).nickname || "";
  quote.append(el("span", "quote-who", who));
  quote.append(el("span", "quote-text", reply.excerpt === null ? "Deleted message" : reply.excerpt));
  quote.addEventListener("click", (event) => {
    event.stopPropagation();
    const original = document.querySelector(`#messages [data-message-id="${reply.id}"]`);
    if (!original) return;
    original.scrollIntoView({ block: "center" });
    original.classList.add("highlight");
    setTimeout(() => original.classList.remove("highlight"), 1500);
  });
  return quote;
}

function reactionsNode(m) {
  const row = el("div", "reactions");
  for (const r of m.reactions) {
    const mineToo = r.user_ids.includes(state.me.id);
    const chip = el("button", mineToo ? "reaction mine" : "reaction", `${r.emoji} ${r.user_ids.length}`);
    chip.type = "button";
    chip.dataset.emoji = r.emoji;
    chip.title = r.user_ids.map((id) => (id === state.me.id ? "You" : (state.users.get(id) || {}).nickname)).join(", ");
    chip.addEventListener("click", () => toggleReaction(m, r.emoji));
    row.append(chip);
  }
  return row;
}

function actionsNode(m, mine) {
  const bar = el("div", "actions");
  const button = (label, title, onClick) => {
    const b = el("button", "action", label);
    b.type = "button";
    b.title = title;
    b.setAttribute("aria-label", title);
    b.addEventListener("click", (event) => { event.stopPropagation(); onClick(); });
    bar.append(b);
    return b;
  };
  button("↩", "Reply", () => startReply(m));
  const picker = el("div", "picker");
  for (const emoji of QUICK_EMOJI) {
    const b = el("button", "pick", emoji);
    b.type = "button";
    b.addEventListener("click", (event) => { event.stopPropagation(); toggleReaction(m, emoji); });
    picker.append(b);
  }
  button("☺", "React", () => bar.classList.toggle("picking"));
  if (mine) button("✎", "Edit", () => startEdit(m));
  button("🗑", "Delete for me", () => deleteMessage(m, false)).classList.add("delete-me");
  if (mine) button("⊘", "Delete for everyone", () => deleteMessage(m, true)).classList.add("delete-all");
  if (!mine) button("⚑", "Report to the admins", () => reportMessage(m)).classList.add("report");
  bar.append(picker);
  return bar;
}

/** Shows who is typing to me in the open conversation. */
export function renderTyping() {
  const partner = state.openPartner;
  const typing = partner !== null && state.typing.get(partner);
  const name = partner !== null ? (state.users.get(partner) || {}).nickname : "";
  $("typing").hidden = !typing;
  $("typing").textContent = typing ? `${name} is typing…` : "";
}
