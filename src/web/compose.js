// The composer: sending (optionally as a reply, optionally with the files
// in the tray), editing my last or any message, and telling the partner
// that I am typing.

import { state, thread } from "./state.js";
import { $ } from "./dom.js";
import { renderMessages } from "./messages.js";
import { submitEdit } from "./actions.js";
import { sendFrame } from "./socket.js";
import { uploading, takeAttachments } from "./uploads.js";

/** A `start` lasts 6 s on the server; repeat it well within that while
 * the user keeps typing. */
const TYPING_REPEAT_MS = 4000;
let typingSentAt = 0;
let typingTo = null;

/** Shows the reply or edit bar, and whether I can write at all. */
export function renderComposer() {
  const bar = $("compose-bar");
  const blocked = state.openPartner !== null && state.blocked.has(state.openPartner);
  $("input").disabled = blocked;
  $("input").placeholder = blocked ? "You blocked this person. Unblock to write." : "Message";
  if (state.editing !== null) {
    bar.hidden = false;
    $("compose-what").textContent = "Editing your message";
  } else if (state.replyTo) {
    bar.hidden = false;
    const r = state.replyTo;
    const who = r.sender_id === state.me.id ? "yourself" : (state.users.get(r.sender_id) || {}).nickname;
    $("compose-what").textContent = `Replying to ${who}: ${[...r.content].slice(0, 100).join("")}`;
  } else {
    bar.hidden = true;
  }
}

export function cancelCompose() {
  if (state.editing !== null) $("input").value = "";
  state.editing = null;
  state.replyTo = null;
  renderComposer();
}

export function submitComposer() {
  const content = $("input").value;
  if (state.editing !== null) {
    if (content.trim() === "") return;
    $("input").value = "";
    stopTyping();
    const id = state.editing;
    state.editing = null;
    renderComposer();
    submitEdit(id, content);
    return;
  }
  // Files wait for their uploads; then each goes in a message of its own,
  // the text with the first.
  if (uploading()) return;
  const attachments = takeAttachments();
  if (content.trim() === "" && attachments.length === 0) return;
  $("input").value = "";
  stopTyping();
  if (attachments.length === 0) {
    send(content, null);
    return;
  }
  attachments.forEach((attachment, i) => send(i === 0 ? content : "", attachment));
}

function send(content, attachment) {
  const partner = state.openPartner;
  if (partner === null) return;
  const replyTo = state.replyTo;
  state.replyTo = null;
  renderComposer();
  const clientId = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  state.pending.set(clientId, { partner, content, replyTo, attachment, state: "sending", created: new Date() });
  const frame = { type: "private_message", to_user_id: partner, content, client_id: clientId };
  if (replyTo) frame.reply_to_id = replyTo.id;
  if (attachment) frame.attachment_id = attachment.id;
  if (sendFrame(frame)) {
    const p = state.pending.get(clientId);
    p.sent = true;
    p.afterId = Math.max(0, ...thread(partner).messages.keys());
  } else {
    state.outbox.push(frame); // sent as soon as the connection is back
  }
  renderMessages({ scrollToBottom: true });
}

/** Called on every input: `start` now and then while there is text. */
export function onInput() {
  const partner = state.openPartner;
  if (partner === null || state.editing !== null) return;
  if ($("input").value.trim() === "") { stopTyping(); return; }
  const now = Date.now();
  if (typingTo === partner && now - typingSentAt < TYPING_REPEAT_MS) return;
  if (typingTo !== null && typingTo !== partner) stopTyping();
  if (sendFrame({ type: "typing", to_user_id: partner, state: "start" })) {
    typingTo = partner;
    typingSentAt = now;
  }
}

export function stopTyping() {
  if (typingTo === null) return;
  sendFrame({ type: "typing", to_user_id: typingTo, state: "stop" });
  typingTo = null;
  typingSentAt = 0;
}

/** Arrow-up in an empty composer edits my last message, as in Slack. */
export function editLastOwn() {
  const partner = state.openPartner;
  if (partner === null) return false;
  const mine = [...thread(partner).messages.values()]
    .filter((m) => m.sender_id === state.me.id && !m.deleted_at)
    .sort((a, b) => b.id - a.id);
  if (mine.length === 0) return false;
  state.replyTo = null;
  state.editing = mine[0].id;
  $("input").value = mine[0].content;
  renderComposer();
  return true;
}
