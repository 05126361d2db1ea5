// The web client: plain JavaScript, no framework, no build step.
//
// It speaks the protocol of docs/API.md: REST for accounts, history and
// conversations; one WebSocket for live messages, delivery answers and
// presence. Message text is only ever put into the page with textContent,
// never parsed as HTML.
"use strict";

const PAGE_SIZE = 30;            // messages per history request
const RECONNECT_MIN_MS = 500;    // first retry after a lost connection
const RECONNECT_MAX_MS = 10000;  // retries back off up to this
const LOAD_OLDER_AT_PX = 80;     // scrolling this close to the top loads more
const SYNC_PAGE = 200;           // messages per catch-up request after (re)connecting

const $ = (id) => document.getElementById(id);

const state = {
  me: null,                 // {id, nickname, email}
  users: new Map(),         // id -> {id, nickname, online}
  conversations: new Map(), // partner id -> {last_message, unread_count}
  threads: new Map(),       // partner id -> {messages: Map(id -> msg), complete, loading}
  pending: new Map(),       // client_id -> {partner, content, state, error, message_id}
  openPartner: null,
  ws: null,
  wsUrl: null,
  retryMs: RECONNECT_MIN_MS,
  reconnectTimer: null,
  // Catch-up: every message up to `cursor` has been seen. After each
  // (re)connect we ask the server for everything after it ("sync"); live
  // messages seen meanwhile only move the cursor once the sync is done.
  cursor: 0,
  liveMax: 0,
  syncing: false,
  outbox: [],               // frames typed while disconnected, sent on reconnect
};

// ---------------------------------------------------------------- REST ---

class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    throw new HttpError(0, "Cannot reach the server. Check your connection and try again.");
  }
  let data = {};
  try { data = await response.json(); } catch (e) { /* empty or not JSON */ }
  if (!response.ok) throw new HttpError(response.status, data.error || `HTTP ${response.status}`);
  return data;
}

// ------------------------------------------------------ log in / register ---

function showAuth(message) {
  disconnect();
  state.me = null;
  $("chat-view").hidden = true;
  $("auth-view").hidden = false;
  $("banner").hidden = true;
  switchAuthTab(false);
  $("auth-error").textContent = message || "";
}

function switchAuthTab(register) {
  $("login-form").hidden = register;
  $("register-form").hidden = !register;
  $("show-login").classList.toggle("active", !register);
  $("show-register").classList.toggle("active", register);
  $("auth-error").textContent = "";
}

async function onLogin(event) {
  event.preventDefault();
  const form = event.target;
  const identifier = form.identifier.value.trim();
  const password = form.password.value;
  try {
    await login(identifier, password);
  } catch (e) {
    $("auth-error").textContent =
      e.status === 401 ? "Wrong nickname, email or password." : e.message;
  }
}

async function onRegister(event) {
  event.preventDefault();
  const form = event.target;
  const nickname = form.nickname.value.trim();
  const password = form.password.value;
  try {
    await api("POST", "/api/register", { nickname, email: form.email.value.trim(), password });
  } catch (e) {
    $("auth-error").textContent =
      e.status === 409 ? `Sorry, that ${e.message.replace(" is already taken", "")} is already taken.` : e.message;
    return;
  }
  try {
    await login(nickname, password);
  } catch (e) {
    $("auth-error").textContent = e.message;
  }
}

async function login(identifier, password) {
  const { user } = await api("POST", "/api/login", { identifier, password });
  await startChat(user);
}

async function logout() {
  try { await api("POST", "/api/logout"); } catch (e) { /* the session may be gone already */ }
  showAuth("");
}

// ---------------------------------------------------------------- chat ---

async function startChat(user) {
  state.me = user;
  state.users.clear();
  state.conversations.clear();
  state.threads.clear();
  state.pending.clear();
  state.openPartner = null;
  $("auth-view").hidden = true;
  $("chat-view").hidden = false;
  $("me-name").textContent = user.nickname;
  $("me-avatar").textContent = initial(user.nickname);
  // The user may log out while this is still loading: after every wait,
  // stop if this is no longer the current login.
  try {
    const config = await api("GET", "/api/config");
    if (state.me !== user) return;
    state.wsUrl = config.ws_url;
    await refreshLists();
    if (state.me !== user) return;
    // Start from the newest message we know of; the first sync fills any
    // gap between this list and the WebSocket opening.
    state.cursor = Math.max(0, ...[...state.conversations.values()].map((c) => c.last_message.id));
  } catch (e) {
    if (state.me !== user) return;
    showAuth(e.status === 401 ? "Your session has ended. Please log in again." : e.message);
    return;
  }
  renderPane();
  connect();
}

async function refreshLists() {
  const [{ users }, { conversations }] = await Promise.all([
    api("GET", "/api/users"),
    api("GET", "/api/conversations"),
  ]);
  state.users = new Map(users.map((u) => [u.id, u]));
  state.conversations = new Map(conversations.map((c) =>
    [c.user_id, { last_message: c.last_message, unread_count: c.unread_count }]));
  renderSidebar();
}

function partnerOf(message) {
  return message.sender_id === state.me.id ? message.receiver_id : message.sender_id;
}

function thread(partner) {
  if (!state.threads.has(partner)) {
    // seenUpTo: the partner has read my messages up to this id.
    state.threads.set(partner, {
      messages: new Map(), complete: false, loading: false, loaded: false, seenUpTo: 0,
    });
  }
  return state.threads.get(partner);
}

/** Adds stored messages to a thread; returns how many were new. */
function addMessages(partner, messages) {
  const t = thread(partner);
  let added = 0;
  for (const m of messages) {
    if (!t.messages.has(m.id)) { t.messages.set(m.id, m); added++; }
    // A stored message of mine says whether the partner had read it.
    if (m.sender_id === state.me.id && m.is_read) t.seenUpTo = Math.max(t.seenUpTo, m.id);
  }
  return added;
}

/** Records a message as the newest of its conversation (for the sidebar). */
function noteLastMessage(message, countUnread) {
  const partner = partnerOf(message);
  const c = state.conversations.get(partner) || { last_message: null, unread_count: 0 };
  if (!c.last_message || message.id >= c.last_message.id) c.last_message = message;
  if (countUnread) c.unread_count += 1;
  state.conversations.set(partner, c);
}

async function openConversation(partner) {
  state.openPartner = partner;
  $("chat-view").classList.add("open");
  renderSidebar();
  renderPane();
  const t = thread(partner);
  if (!t.loaded) {
    await loadNewest(partner);
    t.loaded = true;
  }
  renderMessages({ scrollToBottom: true });
  await markRead(partner);
  $("input").focus();
}

async function loadNewest(partner) {
  const { messages } = await api("GET", `/api/messages?user_id=${partner}&limit=${PAGE_SIZE}`);
  addMessages(partner, messages);
  if (messages.length < PAGE_SIZE) thread(partner).complete = true;
}

async function loadOlder() {
  const partner = state.openPartner;
  const t = partner && thread(partner);
  if (!t || t.loading || t.complete || t.messages.size === 0) return;
  t.loading = true;
  const oldest = Math.min(...t.messages.keys());
  try {
    const { messages } = await api("GET",
      `/api/messages?user_id=${partner}&limit=${PAGE_SIZE}&before_id=${oldest}`);
    if (messages.length < PAGE_SIZE) t.complete = true;
    if (partner !== state.openPartner) return;
    // Keep the view still: what was on screen stays where it was.
    const box = $("messages");
    const fromBottom = box.scrollHeight - box.scrollTop;
    addMessages(partner, messages);
    renderMessages({});
    box.scrollTop = box.scrollHeight - fromBottom;
  } finally {
    t.loading = false;
  }
}

/** Marks a conversation read on the server, then clears its badge: the
 * badge only goes once the server agrees (if the request fails, it stays
 * and the next open tries again). */
async function markRead(partner) {
  const c = state.conversations.get(partner);
  if (!c || c.unread_count === 0 || c.marking) return;
  c.marking = true;
  try {
    await api("POST", "/api/messages/read", { user_id: partner });
    c.unread_count = 0;
    renderSidebar();
  } catch (e) {
    /* the badge stays; the next open retries */
  } finally {
    c.marking = false;
  }
}

/** Someone read a conversation: if it was me (another tab, or this one),
 * its badge goes; if it was my partner, my messages up to there are seen. */
function onMessagesRead(frame) {
  if (frame.reader_id === state.me.id) {
    const c = state.conversations.get(frame.partner_id);
    if (!c) return;
    if (c.last_message && frame.up_to_id >= c.last_message.id) c.unread_count = 0;
    else refreshLists(); // read part of the way: the server counts the rest
    renderSidebar();
  } else if (frame.partner_id === state.me.id) {
    const t = thread(frame.reader_id);
    t.seenUpTo = Math.max(t.seenUpTo, frame.up_to_id);
    if (frame.reader_id === state.openPartner) renderMessages({});
  }
}

function send(content) {
  const partner = state.openPartner;
  if (partner === null || content.trim() === "") return;
  const clientId = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  state.pending.set(clientId, { partner, content, state: "sending", created: new Date() });
  const frame = { type: "private_message", to_user_id: partner, content, client_id: clientId };
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify(frame));
    const p = state.pending.get(clientId);
    p.sent = true;
    p.afterId = Math.max(0, ...thread(partner).messages.keys());
  } else {
    state.outbox.push(frame); // sent as soon as the connection is back
  }
  renderMessages({ scrollToBottom: true });
}

/** A send was answered: the message is stored (with an id) or refused. */
function settlePending(frame, outcome) {
  const p = state.pending.get(frame.client_id);
  if (!p) return;
  if (frame.message_id) {
    const message = {
      id: frame.message_id, sender_id: state.me.id, receiver_id: p.partner,
      content: p.content, created_at: frame.timestamp || new Date().toISOString(), is_read: false,
    };
    state.pending.delete(frame.client_id);
    addMessages(p.partner, [message]);
    thread(p.partner).messages.get(message.id).delivery = outcome;
    noteLastMessage(message, false);
    renderSidebar();
  } else {
    p.state = "failed";
    p.error = frame.error;
  }
  if (p.partner === state.openPartner) renderMessages({});
}

// ----------------------------------------------------------- WebSocket ---

function connect() {
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
    let frame;
    try { frame = JSON.parse(event.data); } catch (e) { return; }
    onFrame(frame);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return; // replaced or shut on purpose
    state.ws = null;
    if (event.code === 4001) { showAuth("You were logged out."); return; }
    if (event.code === 4002) { showAuth("Your session expired. Please log in again."); return; }
    scheduleReconnect();
  };
}

function disconnect() {
  clearTimeout(state.reconnectTimer);
  const ws = state.ws;
  state.ws = null;
  state.syncing = false;
  state.outbox = [];
  if (ws) ws.close();
}

async function scheduleReconnect() {
  // While disconnected we cannot know who is online: show nobody as online.
  for (const u of state.users.values()) u.online = u.id === state.me.id;
  renderSidebar();
  renderPane();
  $("banner").hidden = false;
  $("banner").textContent = "Connection lost. Reconnecting…";
  const delay = state.retryMs * (0.75 + Math.random() / 2);
  state.retryMs = Math.min(state.retryMs * 2, RECONNECT_MAX_MS);
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

/** Asks for everything after the cursor, page by page (see `onFrame`). */
function startSync() {
  state.syncing = true;
  document.body.dataset.sync = "running"; // visible to tests and devtools
  state.liveMax = state.cursor;
  requestSyncPage();
}

function requestSyncPage() {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ type: "sync", after_id: state.cursor, limit: SYNC_PAGE }));
  }
}

/** A message id arrived: it moves the cursor, or waits for the sync. */
function seen(id) {
  if (state.syncing) state.liveMax = Math.max(state.liveMax, id);
  else state.cursor = Math.max(state.cursor, id);
}

function onSyncPage(frame) {
  for (const m of frame.messages) {
    addMessages(partnerOf(m), [m]);
    noteLastMessage(m, false);
  }
  if (frame.messages.length > 0) {
    state.cursor = Math.max(state.cursor, frame.messages[frame.messages.length - 1].id);
  }
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
      }
      if (someoneNew) refreshLists(); // registered since we loaded the list
      renderSidebar();
      renderPane();
      break;
    }
    case "private_message": {
      const message = {
        id: frame.message_id, sender_id: frame.from_user_id, receiver_id: frame.to_user_id,
        content: frame.content, created_at: frame.timestamp, is_read: false,
      };
      const partner = partnerOf(message);
      const incoming = message.sender_id !== state.me.id;
      const viewing = partner === state.openPartner && document.visibilityState === "visible";
      seen(message.id);
      if (!addMessages(partner, [message])) break; // already have it
      if (!state.users.has(partner)) refreshLists();
      noteLastMessage(message, incoming);
      if (partner === state.openPartner) {
        const box = $("messages");
        const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
        renderMessages({ scrollToBottom: atBottom || !incoming });
        if (viewing && incoming) markRead(partner);
      }
      renderSidebar();
      break;
    }
    case "messages_read":
      onMessagesRead(frame);
      break;
    case "message_delivered":
      seen(frame.message_id);
      settlePending(frame, "delivered");
      break;
    case "message_failed":
      if (frame.message_id) seen(frame.message_id);
      settlePending(frame, frame.error === "recipient_offline" ? "offline" : "failed");
      break;
    case "sync":
      onSyncPage(frame);
      break;
    case "error":
      console.warn("server:", frame.error);
      break;
  }
}

// -------------------------------------------------------------- render ---

function initial(nickname) {
  return (nickname || "?").charAt(0).toUpperCase();
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatTime(iso) {
  const date = new Date(iso);
  const now = new Date();
  if (date.toDateString() === now.toDateString()) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

function personItem(user, extra) {
  const li = el("li");
  li.dataset.userId = user.id;
  li.classList.toggle("active", user.id === state.openPartner);
  const avatar = el("span", "avatar", initial(user.nickname));
  const who = el("div", "who");
  const nick = el("div", "nick");
  const dot = el("span", "dot");
  dot.classList.toggle("online", !!user.online);
  nick.append(dot, el("span", "nickname", user.nickname));
  who.append(nick);
  li.append(avatar, who);
  if (extra) extra(li, who);
  li.addEventListener("click", () => openConversation(user.id));
  return li;
}

function renderSidebar() {
  if (!state.me) return;
  const conversations = [...state.conversations.entries()]
    .filter(([, c]) => c.last_message)
    .sort((a, b) => b[1].last_message.id - a[1].last_message.id);
  const list = $("conversations");
  list.replaceChildren(...conversations.map(([partner, c]) => {
    const user = state.users.get(partner) || { id: partner, nickname: `user ${partner}`, online: false };
    return personItem(user, (li, who) => {
      const mine = c.last_message.sender_id === state.me.id;
      who.append(el("div", "preview", (mine ? "You: " : "") + c.last_message.content));
      li.append(el("span", "time", formatTime(c.last_message.created_at)));
      if (c.unread_count > 0) li.append(el("span", "badge", String(c.unread_count)));
    });
  }));
  $("no-conversations").hidden = conversations.length > 0;
  const people = [...state.users.values()]
    .filter((u) => u.id !== state.me.id)
    .sort((a, b) => a.nickname.localeCompare(b.nickname));
  $("people").replaceChildren(...people.map((u) => personItem(u)));
}

function renderPane() {
  const partner = state.openPartner;
  const user = partner !== null ? state.users.get(partner) : null;
  $("empty").hidden = partner !== null;
  $("composer").hidden = partner === null;
  $("messages").hidden = partner === null;
  $("partner-name").textContent = user ? user.nickname : "";
  $("partner-dot").hidden = !user;
  $("partner-dot").classList.toggle("online", !!(user && user.online));
}

const STATE_TEXT = {
  sending: "sending…",
  delivered: "delivered",
  offline: "stored, recipient offline",
  seen: "Seen",
};

function messageNode({ mine, content, time, delivery, error, sender }) {
  const wrap = el("div", mine ? "msg mine" : "msg");
  const bubble = el("div", "bubble", content);
  bubble.dir = "auto";
  const meta = el("div", "meta");
  meta.append(el("span", "sender", mine ? "You" : sender), " · ", el("time", "", time));
  if (mine && delivery) {
    const text = delivery === "failed" ? `failed: ${error || "error"}` : STATE_TEXT[delivery] || "";
    meta.append(" · ", el("span", `state ${delivery}`, text));
  }
  wrap.append(bubble, meta);
  return wrap;
}

function renderMessages({ scrollToBottom }) {
  const partner = state.openPartner;
  if (partner === null) return;
  const t = thread(partner);
  const partnerName = (state.users.get(partner) || {}).nickname || "";
  const nodes = [];
  if (!t.complete && t.messages.size > 0) nodes.push(el("div", "loading-older", "Scroll up for older messages"));
  const stored = [...t.messages.values()].sort((a, b) => a.id - b.id);
  // "Seen" goes under the last of my messages the partner has read.
  let lastSeen = 0;
  for (const m of stored) {
    if (m.sender_id === state.me.id && m.id <= t.seenUpTo) lastSeen = m.id;
  }
  for (const m of stored) {
    const node = messageNode({
      mine: m.sender_id === state.me.id, content: m.content, time: formatTime(m.created_at),
      delivery: m.id === lastSeen ? "seen" : m.delivery, sender: partnerName,
    });
    node.dataset.messageId = m.id;
    nodes.push(node);
  }
  for (const [clientId, p] of state.pending) {
    if (p.partner !== partner) continue;
    const node = messageNode({
      mine: true, content: p.content, time: formatTime(p.created.toISOString()),
      delivery: p.state, error: p.error,
    });
    node.dataset.clientId = clientId;
    nodes.push(node);
  }
  const box = $("messages");
  box.replaceChildren(...nodes);
  if (scrollToBottom) box.scrollTop = box.scrollHeight;
}

// --------------------------------------------------------------- start ---

function wireUp() {
  $("login-form").addEventListener("submit", onLogin);
  $("register-form").addEventListener("submit", onRegister);
  $("show-login").addEventListener("click", () => switchAuthTab(false));
  $("show-register").addEventListener("click", () => switchAuthTab(true));
  $("logout").addEventListener("click", logout);
  $("back").addEventListener("click", () => {
    state.openPartner = null;
    $("chat-view").classList.remove("open");
    renderSidebar();
    renderPane();
  });
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < LOAD_OLDER_AT_PX) loadOlder();
  });
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send($("input").value);
    $("input").value = "";
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state.openPartner !== null) markRead(state.openPartner);
  });
}

async function boot() {
  wireUp();
  try {
    const { user } = await api("GET", "/api/me");
    await startChat(user);
  } catch (e) {
    showAuth(e.status === 401 ? "" : e.message);
  }
  document.body.dataset.ready = "true"; // for tests: the page has settled
}

boot();
