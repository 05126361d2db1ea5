// The web client: plain JavaScript modules, no framework, no build step.
//
// It speaks the protocol of docs/API.md: REST for accounts, history,
// conversations and actions on messages; one WebSocket for live changes,
// typing, delivery answers and presence. Message text is only ever put
// into the page with textContent, never parsed as HTML.
//
// The modules, each with one job:
//   state.js         what the page knows
//   api.js           REST calls
//   socket.js        the WebSocket: connect, reconnect, catch up, dispatch
//   changes.js       applying change frames, typing, answers to sends
//   auth.js          log in, register, log out, start the chat
//   sidebar.js       the conversation list, people, the pane's header
//   conversation.js  opening a conversation, history pages, marking read
//   search.js        searching old messages, opening a result in place
//   messages.js      drawing the open conversation
//   compose.js       sending, replying, editing, typing signals
//   uploads.js       attaching files: pick, drop, paste, progress, cancel
//   media.js         files in messages: thumbnails, lightbox, file cards
//   actions.js       edit, delete, react, block, settings (REST)
//   account.js       my account: name, password, sessions, export, deletion
//   notifications.js push notifications: subscribing, on a click only
//   sw.js            the service worker that shows them (not a module)
//   admin.js         the admin page: invitations, reports, accounts, numbers
//   dom.js           DOM and date helpers

import { state } from "./state.js";
import { api } from "./api.js";
import { $ } from "./dom.js";
import { onLogin, onRegister, onReset, switchAuthTab, logout, startChat, showAuth } from "./auth.js";
import { openConversation, closeConversation, loadOlder, markRead, LOAD_OLDER_AT_PX } from "./conversation.js";
import { submitComposer, cancelCompose, onInput, editLastOwn, stopTyping } from "./compose.js";
import { toggleBlock, setReadReceipts, setExpiry } from "./actions.js";
import { wireUploads } from "./uploads.js";
import { wireLightbox } from "./media.js";
import { wireAdmin } from "./admin.js";
import { wireAccount } from "./account.js";
import { wireSearch } from "./search.js";
import { wireNotifications } from "./notifications.js";

function wireUp() {
  $("login-form").addEventListener("submit", onLogin);
  $("register-form").addEventListener("submit", onRegister);
  $("reset-form").addEventListener("submit", onReset);
  $("show-login").addEventListener("click", () => switchAuthTab(false));
  $("show-register").addEventListener("click", () => switchAuthTab(true));
  $("logout").addEventListener("click", logout);
  $("back").addEventListener("click", () => { stopTyping(); closeConversation(); });
  $("block").addEventListener("click", () => toggleBlock(state.openPartner));
  $("expiry").addEventListener("change", (event) =>
    setExpiry(state.openPartner, event.target.value ? Number(event.target.value) : null));
  $("receipts").addEventListener("change", (event) => setReadReceipts(event.target.checked));
  $("compose-cancel").addEventListener("click", cancelCompose);
  wireUploads();
  wireLightbox();
  wireAdmin();
  wireAccount();
  wireSearch();
  wireNotifications(openConversation);
  $("messages").addEventListener("scroll", () => {
    if ($("messages").scrollTop < LOAD_OLDER_AT_PX) loadOlder();
  });
  $("input").addEventListener("input", onInput);
  $("input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      $("composer").requestSubmit();
    } else if (event.key === "Escape") {
      cancelCompose();
    } else if (event.key === "ArrowUp" && $("input").value === "" && editLastOwn()) {
      event.preventDefault();
    }
  });
  $("composer").addEventListener("submit", (event) => {
    event.preventDefault();
    submitComposer();
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
