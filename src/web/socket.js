// The WebSocket: connecting and reconnecting with back-off, catching up by
// change (`sync` with `since`) after every (re)connect, and handing each
// frame to the code that applies it.

import { state, thread } from "./state.js";
import { api } from "./api.js";
import { $ } from "./dom.js";
import { refreshLists, renderSidebar, renderPane } from "./sidebar.js";
import { renderMessages, renderTyping } from "./messages.js";
import { applyChange, onTyping, settlePending } from "./changes.js";
import { markRead } from "./conversation.js";
import { showAuth } from "./auth.js";

const RECONNECT_MIN_MS = 500;    // first retry after a lost connection
const RECONNECT_MAX_MS = 10000;  // retries back off up to this
const SYNC_PAGE = 200;           // changes per catch-up request

/** Sends a frame if the socket is open; returns whether it did. */
export function sendFrame(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

export function connect() {
  clearTimeout(state.reconnectTimer);
  // Presence as lists, one frame per batch (see docs/API.md).
  const separator = state.wsUrl.includes("?") ? "&" : "?";
  const ws = new WebSocket(`${state.wsUrl}${separator}presence=batch`);
  state.ws = ws;
  ws.onopen = () => {
    state.retryMs = RECONNECT_MIN_MS;
    $("banner").hidden = true;
    for (const frame of state.outbox.splice(0)) {
      ws.send(JSON.stringify(frame));
      const p = state.pending.get(frame.client_id);
      if (p) { p.sent = true; p.afterId = Math.max(0, ...thread(p.partner).messages.keys()); }
    }
    startSync();
  };
  ws.onmessage = (event) => {
    if (state.ws !== ws) return; // closed on purpose: nothing more to show
    let frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    onFrame(frame);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return; // replaced or shut on purpose
    state.ws = null;
    if (event.code === 4001) { showAuth("You were logged out."); return; }
    if (event.code === 4002) { showAuth("Your session expired. Please log in again."); return; }
    if (event.code === 4003) { showAuth("Your account has been disabled by an admin."); return; }
    if (event.code === 4004) { showAuth("This account was deleted."); return; }
    scheduleReconnect();
  };
}

export function disconnect() {
  clearTimeout(state.reconnectTimer);
  const ws = state.ws;
  state.ws = null;
  state.syncing = false;
  state.outbox = [];
  if (ws) ws.close();
}

function scheduleReconnect() {
  // While disconnected we cannot know who is online or typing.
  for (const u of state.users.values()) u.online = u.id === state.me.id;
  state.typing.clear();
  renderSidebar();
  renderPane();
  renderTyping();
  $("banner").hidden = false;
  $("banner").textContent = "Connection lost. Reconnecting…";
  const delay = state.retryMs * (0.75 + Math.random() / 2);
  state.retryMs = Math.min(Math.max(state.retryMs, RECONNECT_MIN_MS) * 2, RECONNECT_MAX_MS);
  state.reconnectTimer = setTimeout(async () => {
    if (!state.me) return;
    // A refused handshake looks like any lost connection; ask REST why.
    try {
      await api("GET", "/api/me");
    } catch (e) {
      if (e.status === 401) { showAuth("Your session has ended. Please log in again."); return; }
      scheduleReconnect(); // server still down
      return;
    }
    connect();
  }, delay);
}

/** Asks for every change after the cursor, page by page. */
function startSync() {
  state.syncing = true;
  document.body.dataset.sync = "running"; // visible to tests and devtools
  state.liveMax = state.cursor;
  requestSyncPage();
}

function requestSyncPage() {
  sendFrame({ type: "sync", since: state.cursor, limit: SYNC_PAGE });
}

/** A change arrived: it moves the cursor, or waits for the sync. */
function seen(seq) {
  if (!seq) return;
  if (state.syncing) state.liveMax = Math.max(state.liveMax, seq);
  else state.cursor = Math.max(state.cursor, seq);
}

function onSyncPage(frame) {
  for (const change of frame.changes) applyChange(change, false);
  state.cursor = Math.max(state.cursor, frame.next_since);
  if (frame.has_more) requestSyncPage();
  else finishSync();
}

/** Caught up: settle what was in flight and refresh counts from the server. */
async function finishSync() {
  state.syncing = false;
  state.cursor = Math.max(state.cursor, state.liveMax);
  settleUnanswered();
  try { await refreshLists(); } catch (e) { /* shown on the next change */ }
  if (state.openPartner !== null) {
    renderMessages({ scrollToBottom: true });
    if (document.visibilityState === "visible") await markRead(state.openPartner);
  }
  document.body.dataset.sync = "done";
}

/**
 * Sends that went out before the connection dropped and were never
 * answered: if history now holds them, they were stored; otherwise they
 * were lost on the way and are shown as failed, for the user to resend.
 */
function settleUnanswered() {
  for (const [clientId, p] of state.pending) {
    if (!p.sent || p.state !== "sending") continue;
    const stored = [...thread(p.partner).messages.values()].find((m) =>
      m.id > p.afterId && m.sender_id === state.me.id && m.content === p.content);
    if (stored) {
      state.pending.delete(clientId);
    } else {
      p.state = "failed";
      p.error = "connection lost, not sent";
    }
  }
}

function onFrame(frame) {
  switch (frame.type) {
    case "online_users": {
      const online = new Set(frame.users.map((u) => u.id));
      for (const u of state.users.values()) u.online = online.has(u.id) || u.id === state.me.id;
      for (const u of frame.users) if (!state.users.has(u.id)) refreshLists();
      renderSidebar();
      renderPane();
      break;
    }
    case "user_online":
    case "user_offline": {
      const online = frame.type === "user_online";
      let someoneNew = false;
      for (const u of frame.users) {
        const user = state.users.get(u.id);
        if (user) user.online = online;
        else someoneNew = true;
        if (!online) state.typing.delete(u.id);
      }
      if (someoneNew) refreshLists(); // registered since we loaded the list
      renderSidebar();
      renderPane();
      renderTyping();
      break;
    }
    case "private_message":
    case "messages_read":
    case "message_edited":
    case "message_deleted":
    case "reaction":
    case "expiry_changed":
      seen(frame.seq);
      applyChange(frame, true);
      break;
    case "typing":
      onTyping(frame);
      break;
    case "message_delivered":
      seen(frame.seq);
      settlePending(frame, "delivered");
      break;
    case "message_failed":
      seen(frame.seq);
      if (!frame.action) settlePending(frame, frame.error === "recipient_offline" ? "sent" : "failed");
      break;
    case "sync":
      onSyncPage(frame);
      break;
    case "error":
      console.warn("server:", frame.error);
      break;
  }
}
