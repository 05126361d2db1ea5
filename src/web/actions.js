// What a user does to a message or a person: reply, edit, delete, react,
// report, block, and the read-receipt setting. Each goes through REST; the change
// comes back over the WebSocket to every tab, this one included, and is
// applied there (changes.js), so all tabs show the same.

import { state } from "./state.js";
import { api } from "./api.js";
import { $ } from "./dom.js";
import { refreshLists, renderPane } from "./sidebar.js";
import { renderComposer } from "./compose.js";

/** Explains a refusal in the conversation's own words. */
function complain(e) {
  const words = {
    edit_window_passed: "It is too late to change this message.",
    deleted: "This message was deleted.",
    too_many_reactions: "This message has as many different reactions as it can hold.",
    recipient_unavailable: "You cannot message this person.",
  };
  $("notice").textContent = words[e.code] || e.message;
  $("notice").hidden = false;
  setTimeout(() => { $("notice").hidden = true; }, 4000);
}

export function startReply(message) {
  state.editing = null;
  state.replyTo = message;
  renderComposer();
  $("input").focus();
}

export function startEdit(message) {
  state.replyTo = null;
  state.editing = message.id;
  $("input").value = message.content;
  renderComposer();
  $("input").focus();
}

export async function submitEdit(id, content) {
  try {
    await api("PATCH", `/api/messages/${id}`, { content });
  } catch (e) {
    complain(e);
  }
}

export async function deleteMessage(message, forEveryone) {
  const path = `/api/messages/${message.id}${forEveryone ? "" : "?for=me"}`;
  try {
    await api("DELETE", path);
  } catch (e) {
    complain(e);
  }
}

/** Tells the admins about a message received (the server keeps one report
 * per message and person). */
export async function reportMessage(message) {
  try {
    await api("POST", "/api/reports", { message_id: message.id });
    $("notice").textContent = "Reported to the admins.";
    $("notice").hidden = false;
    setTimeout(() => { $("notice").hidden = true; }, 4000);
  } catch (e) {
    complain(e);
  }
}

export async function toggleReaction(message, emoji) {
  const entry = message.reactions.find((r) => r.emoji === emoji);
  const mine = !!entry && entry.user_ids.includes(state.me.id);
  try {
    await api(mine ? "DELETE" : "PUT", `/api/messages/${message.id}/reactions/${encodeURIComponent(emoji)}`);
  } catch (e) {
    complain(e);
  }
}

export async function toggleBlock(partner) {
  const blocked = state.blocked.has(partner);
  try {
    await api(blocked ? "DELETE" : "PUT", `/api/blocks/${partner}`);
    await refreshLists();
    renderPane();
    renderComposer();
  } catch (e) {
    complain(e);
  }
}

/** Sets the open conversation's disappearing-messages timer (seconds, or
 * null for off); the change comes back as `expiry_changed`. */
export async function setExpiry(partner, seconds) {
  try {
    await api("PUT", `/api/conversations/${partner}/expiry`, { seconds });
  } catch (e) {
    complain(e);
  }
}

export async function setReadReceipts(on) {
  try {
    const { user } = await api("PATCH", "/api/me", { send_read_receipts: on });
    state.me.send_read_receipts = user.send_read_receipts;
    // What the server has now (the box itself changes at the click).
    $("receipts").dataset.saved = String(user.send_read_receipts);
  } catch (e) {
    complain(e);
  }
  $("receipts").checked = state.me.send_read_receipts;
}
