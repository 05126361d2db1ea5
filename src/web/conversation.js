// Opening a conversation: its history page by page (newest first, older
// ones as the user scrolls up), and marking it read.

import { state, thread, addMessages, markedRead } from "./state.js";
import { api } from "./api.js";
import { $ } from "./dom.js";
import { renderSidebar, renderPane } from "./sidebar.js";
import { renderMessages, renderTyping } from "./messages.js";
import { renderComposer } from "./compose.js";
import { clearTray } from "./uploads.js";
import { tellOnScreen } from "./notifications.js";

export const PAGE_SIZE = 50;        // messages per history request
export const LOAD_OLDER_AT_PX = 80; // scrolling this close to the top loads more

export async function openConversation(partner) {
  if (state.openPartner !== partner) {
    state.replyTo = null;
    state.editing = null;
    clearTray(); // files picked for one person never go to another
  }
  state.openPartner = partner;
  // The conversation's address: a reload, or a notification's click,
  // opens it again.
  history.replaceState(null, "", `#user-${partner}`);
  tellOnScreen(partner);
  $("chat-view").classList.add("open");
  renderSidebar();
  renderPane();
  renderComposer();
  renderTyping();
  const t = thread(partner);
  if (!t.loaded) {
    await loadNewest(partner);
    t.loaded = true;
  }
  renderMessages({ scrollToBottom: true });
  await markRead(partner);
  $("input").focus();
}

/** Messages per request while reaching back to a found message. */
const REACH_BACK_PAGE = 100;
/** How long a found message stays marked. */
const FOUND_MARK_MS = 4000;

/** Opens the conversation with `partner` at message `id` (a search
 * result): the pages from the newest back to it are loaded, so that the
 * thread stays whole, then it is scrolled to and marked a moment. */
export async function openConversationAt(partner, id) {
  await openConversation(partner);
  const t = thread(partner);
  while (!t.messages.has(id) && !t.complete && partner === state.openPartner) {
    const oldest = Math.min(...t.messages.keys());
    const { messages } = await api("GET",
      `/api/messages?user_id=${partner}&limit=${REACH_BACK_PAGE}&before_id=${oldest}`);
    addMessages(partner, messages);
    if (messages.length < REACH_BACK_PAGE) t.complete = true;
  }
  if (partner !== state.openPartner) return;
  renderMessages({});
  const node = document.querySelector(`#messages [data-message-id="${id}"]`);
  if (!node) return; // deleted meanwhile
  node.scrollIntoView({ block: "center" });
  node.classList.add("found");
  setTimeout(() => node.classList.remove("found"), FOUND_MARK_MS);
}

export function closeConversation() {
  clearTray();
  state.openPartner = null;
  history.replaceState(null, "", location.pathname);
  tellOnScreen(null);
  $("chat-view").classList.remove("open");
  renderSidebar();
  renderPane();
}

async function loadNewest(partner) {
  const { messages } = await api("GET", `/api/messages?user_id=${partner}&limit=${PAGE_SIZE}`);
  addMessages(partner, messages);
  if (messages.length < PAGE_SIZE) thread(partner).complete = true;
}

export async function loadOlder() {
  const partner = state.openPartner;
  const t = partner !== null && thread(partner);
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
 * and the next open tries again). A message that arrives while a mark is
 * on its way is marked by a second request right after it. */
export async function markRead(partner) {
  const c = state.conversations.get(partner);
  if (!c || c.unread_count === 0) return;
  if (c.marking) { c.markAgain = true; return; }
  c.marking = true;
  try {
    const { up_to_id } = await api("POST", "/api/messages/read", { user_id: partner });
    markedRead(c, up_to_id);
    renderSidebar();
  } catch (e) {
    /* the badge stays; the next open retries */
  } finally {
    c.marking = false;
    if (c.markAgain) {
      c.markAgain = false;
      markRead(partner);
    }
  }
}
