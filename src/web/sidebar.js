// The list side: conversations (newest first, with unread badges) and the
// people without a conversation yet; the open conversation's header; the
// tab title's unread count.

import { state, totalUnread, applyListRow } from "./state.js";
import { api } from "./api.js";
import { $, el, fillAvatar, formatWhen } from "./dom.js";
import { openConversation } from "./conversation.js";

/** Reads the users, conversations and blocks from the server. A list read
 * while messages arrive is still right: see `conversation()` in state.js. */
export async function refreshLists() {
  const lists = await Promise.all([
    api("GET", "/api/users"),
    api("GET", "/api/conversations"),
    api("GET", "/api/blocks"),
  ]);
  const [{ users }, { conversations }, { blocks }] = lists;
  state.users = new Map(users.map((u) => [u.id, u]));
  const listed = new Set(conversations.map((c) => c.user_id));
  // Gone from the list (every message deleted for me): gone here, unless
  // it only began after the list was read.
  for (const [partner, c] of state.conversations) {
    if (!listed.has(partner) && c.base_last_id > 0) state.conversations.delete(partner);
  }
  for (const row of conversations) applyListRow(row);
  state.blocked = new Set(blocks.map((b) => b.id));
  renderSidebar();
}

function personItem(user, extra) {
  const li = el("li");
  li.dataset.userId = user.id;
  li.classList.toggle("active", user.id === state.openPartner);
  const avatar = el("span", "avatar");
  fillAvatar(avatar, user);
  const who = el("div", "who");
  const nick = el("div", "nick");
  const dot = el("span", "dot");
  dot.classList.toggle("online", !!user.online);
  nick.append(dot, el("span", "nickname", user.nickname));
  if (user.display_name) nick.append(el("span", "display-name", user.display_name));
  if (state.blocked.has(user.id)) nick.append(el("span", "blocked-mark", "blocked"));
  who.append(nick);
  li.append(avatar, who);
  if (extra) extra(li, who);
  li.addEventListener("click", () => openConversation(user.id));
  return li;
}

function preview(message) {
  const mine = message.sender_id === state.me.id;
  let text = message.deleted_at ? "This message was deleted" : message.content;
  // A file: its name, then the caption if there is one.
  if (!message.deleted_at && message.attachment) {
    text = `📎 ${message.attachment.name}${text ? ` · ${text}` : ""}`;
  }
  return (mine ? "You: " : "") + text;
}

export function renderSidebar() {
  if (!state.me) return;
  const conversations = [...state.conversations.entries()]
    .filter(([, c]) => c.last_message)
    .sort((a, b) => b[1].last_message.id - a[1].last_message.id);
  $("conversations").replaceChildren(...conversations.map(([partner, c]) => {
    const user = state.users.get(partner) || { id: partner, nickname: `user ${partner}`, online: false };
    return personItem(user, (li, who) => {
      const typing = state.typing.get(partner);
      who.append(el("div", typing ? "preview typing-preview" : "preview",
        typing ? "typing…" : preview(c.last_message)));
      li.append(el("span", "time", formatWhen(c.last_message.created_at)));
      if (c.unread_count > 0) li.append(el("span", "badge", String(c.unread_count)));
    });
  }));
  $("no-conversations").hidden = conversations.length > 0;
  // Everyone else: each person is listed once, in one of the two lists.
  const people = [...state.users.values()]
    .filter((u) => u.id !== state.me.id && !(state.conversations.get(u.id) || {}).last_message)
    .sort((a, b) => a.nickname.localeCompare(b.nickname));
  $("people").replaceChildren(...people.map((u) => personItem(u)));
  $("people-heading").hidden = people.length === 0;
  const unread = totalUnread();
  document.title = unread > 0 ? `(${unread}) Chat` : "Chat";
}

export function renderPane() {
  const partner = state.openPartner;
  const user = partner !== null ? state.users.get(partner) : null;
  $("empty").hidden = partner !== null;
  $("composer").hidden = partner === null;
  $("messages").hidden = partner === null;
  $("partner-name").textContent = user ? user.nickname : "";
  $("partner-name").title = user && user.display_name ? user.display_name : "";
  $("partner-dot").hidden = !user;
  $("partner-dot").classList.toggle("online", !!(user && user.online));
  $("block").hidden = partner === null;
  $("expiry-setting").hidden = partner === null;
  const timer = partner !== null ? (state.conversations.get(partner) || {}).expiry_seconds : null;
  $("expiry").value = timer ? String(timer) : "";
  if ($("expiry").value !== (timer ? String(timer) : "")) {
    // A timer the menu does not offer (set by another client): shown as is.
    const option = el("option", "", `${timer} s`);
    option.value = String(timer);
    $("expiry").append(option);
    $("expiry").value = String(timer);
  }
  $("block").textContent = state.blocked.has(partner) ? "Unblock" : "Block";
}
