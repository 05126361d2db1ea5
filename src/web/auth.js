// Logging in, registering, logging out, and starting the chat for a user.

import { state, resetState } from "./state.js";
import { api } from "./api.js";
import { $, fillAvatar } from "./dom.js";
import { refreshLists, renderPane } from "./sidebar.js";
import { connect, disconnect } from "./socket.js";
import { clearTray } from "./uploads.js";
import { clearSearch } from "./search.js";
import { openConversation } from "./conversation.js";
import { unsubscribe } from "./notifications.js";

// An invitation link (/?invite=CODE) opens the registration with the code
// filled in; a reset link (/?reset=TOKEN) opens the new-password form.
const linked = new URLSearchParams(location.search);

export function showAuth(message) {
  disconnect();
  state.me = null;
  $("chat-view").hidden = true;
  $("auth-view").hidden = false;
  $("banner").hidden = true;
  $("admin").close();
  $("account").close();
  const invite = linked.get("invite");
  if (invite) $("register-form").invite.value = invite;
  switchAuthTab(Boolean(invite));
  if (linked.get("reset")) showResetForm();
  $("auth-error").textContent = message || "";
  document.title = "Chat";
  askForInvitationIfNeeded();
}

/** Shows the invitation field when the server registers by invitation. */
async function askForInvitationIfNeeded() {
  try {
    const config = await api("GET", "/api/config");
    $("invite-field").hidden = config.registration !== "invite" && !linked.get("invite");
    $("show-register").hidden = config.registration === "closed";
  } catch (e) { /* the field stays as it is; registering says what is wrong */ }
}

export function switchAuthTab(register) {
  $("login-form").hidden = register;
  $("register-form").hidden = !register;
  $("reset-form").hidden = true;
  $("show-login").classList.toggle("active", !register);
  $("show-register").classList.toggle("active", register);
  $("auth-error").textContent = "";
}

function showResetForm() {
  $("login-form").hidden = true;
  $("register-form").hidden = true;
  $("reset-form").hidden = false;
}

export async function onReset(event) {
  event.preventDefault();
  try {
    const { nickname } = await api("POST", "/api/password-reset",
      { token: linked.get("reset"), new_password: event.target.password.value });
    linked.delete("reset");
    history.replaceState(null, "", "/");
    switchAuthTab(false);
    if (nickname) $("login-form").identifier.value = nickname;
    $("auth-error").textContent = "Your password is set. Log in with it.";
  } catch (e) {
    $("auth-error").textContent = e.message;
  }
}

export async function onLogin(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await login(form.identifier.value.trim(), form.password.value);
  } catch (e) {
    $("auth-error").textContent =
      e.status === 401 ? "Wrong nickname, email or password." : e.message;
  }
}

export async function onRegister(event) {
  event.preventDefault();
  const form = event.target;
  const nickname = form.nickname.value.trim();
  const password = form.password.value;
  try {
    const invite = form.invite.value.trim() || undefined;
    await api("POST", "/api/register", { nickname, email: form.email.value.trim(), password, invite });
  } catch (e) {
    $("auth-error").textContent =
      e.status === 409 ? `Sorry, that ${e.message.replace(" is already taken", "")} is already taken.` : e.message;
    return;
  }
  if (linked.has("invite")) { // used: the next visit is a login
    linked.delete("invite");
    history.replaceState(null, "", "/");
  }
  try {
    await login(nickname, password);
  } catch (e) {
    $("auth-error").textContent = e.message;
  }
}

async function login(identifier, password) {
  await api("POST", "/api/login", { identifier, password });
  // /api/me has the settings too.
  const { user } = await api("GET", "/api/me");
  await startChat(user);
}

export async function logout() {
  // Closed first, on purpose: the server's "logged out" close (4001) that
  // follows must not be shown as news to the user who asked for it.
  disconnect();
  clearTray();
  // Whatever is still loading for this login sees it is over (startChat
  // checks), instead of reporting the logout as an error of its own.
  state.me = null;
  try { await api("POST", "/api/logout"); } catch (e) { /* the session may be gone already */ }
  // The server ended this browser's push subscription with the session.
  await unsubscribe(false).catch(() => {});
  showAuth("");
}

export async function startChat(user) {
  resetState(user);
  clearSearch();
  $("auth-view").hidden = true;
  $("chat-view").hidden = false;
  $("me-name").textContent = user.nickname;
  fillAvatar($("me-avatar"), user);
  $("receipts").checked = user.send_read_receipts !== false;
  $("open-admin").hidden = user.role !== "admin";
  // The user may log out while this is still loading: after every wait,
  // stop if this is no longer the current login.
  try {
    const config = await api("GET", "/api/config");
    if (state.me !== user) return;
    state.wsUrl = config.ws_url;
    await refreshLists();
    if (state.me !== user) return;
    // Start from the newest change we know of; the first sync fills any
    // gap between this list and the WebSocket opening.
    state.cursor = Math.max(0, ...[...state.conversations.values()].map((c) => c.last_seq || 0));
  } catch (e) {
    if (state.me !== user) return;
    showAuth(e.status === 401 ? "Your session has ended. Please log in again." : e.message);
    return;
  }
  renderPane();
  connect();
  // Opened at a conversation's address (a notification, a reload).
  const linked = /^#user-(\d+)$/.exec(location.hash);
  if (linked) await openConversation(Number(linked[1]));
}
