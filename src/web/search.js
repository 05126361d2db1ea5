// Searching old messages: the box above the lists, the results with the
// matched words marked, and opening one where it stands in its
// conversation. Highlights come from the server as character ranges; the
// marks are built here as text nodes and <mark> elements, never as HTML.

import { state } from "./state.js";
import { api } from "./api.js";
import { $, el, formatWhen } from "./dom.js";
import { openConversationAt } from "./conversation.js";

const TYPING_PAUSE_MS = 300;   // search once the typing pauses this long
const PAGE = 20;               // results per request
const CONTEXT_CHARS = 40;      // shown before the first match of a long message
let timer = null;
let current = { q: "", next: null };

export function wireSearch() {
  $("search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => run($("search").value), TYPING_PAUSE_MS);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run($("search").value);
  });
  $("search").addEventListener("keydown", (event) => {
    if (event.key === "Escape") { $("search").value = ""; run(""); }
  });
  $("search-more").addEventListener("click", () => more());
}

/** Back to the lists, the search forgotten (a new login). */
export function clearSearch() {
  $("search").value = "";
  showResults(false);
  current = { q: "", next: null };
}

function showResults(on) {
  $("search-view").hidden = !on;
  $("lists").hidden = on;
}

async function run(text) {
  const q = text.trim();
  if (q === current.q && q !== "") return;
  current = { q, next: null };
  if (!q) { showResults(false); return; }
  showResults(true);
  $("search-results").replaceChildren();
  await load(q, null);
}

async function more() {
  if (current.next) await load(current.q, current.next);
}

async function load(q, before) {
  $("search-status").textContent = "Searching…";
  $("search-more").hidden = true;
  const params = new URLSearchParams({ q, limit: String(PAGE) });
  if (before) params.set("before", before);
  let page;
  try {
    page = await api("GET", `/api/search?${params}`);
  } catch (e) {
    if (q === current.q) $("search-status").textContent = e.message;
    return;
  }
  if (q !== current.q) return; // a newer search has started
  current.next = page.next || null;
  $("search-results").append(...page.results.map(resultItem));
  const shown = $("search-results").children.length;
  $("search-status").textContent = shown === 0 ? "Nothing found." : "";
  $("search-more").hidden = !current.next;
}

function resultItem({ message, highlights }) {
  const partner = message.sender_id === state.me.id ? message.receiver_id : message.sender_id;
  const name = (state.users.get(partner) || {}).nickname || `user ${partner}`;
  const li = el("li", "result");
  li.dataset.messageId = message.id;
  li.dataset.userId = partner;
  const who = el("div", "who");
  const head = el("div", "nick");
  head.append(el("span", "nickname", message.sender_id === state.me.id ? `You → ${name}` : name));
  who.append(head, marked(message.content, highlights));
  li.append(who, el("span", "time", formatWhen(message.created_at)));
  li.addEventListener("click", () => openConversationAt(partner, message.id));
  return li;
}

/** The content with its matched ranges in <mark>, cut before the first
 * match when the message is long. Ranges count code points. */
function marked(content, highlights) {
  const chars = Array.from(content);
  const node = el("div", "preview");
  let at = 0;
  if (highlights.length > 0 && highlights[0][0] > CONTEXT_CHARS) {
    at = highlights[0][0] - CONTEXT_CHARS;
    node.append("…");
  }
  for (const [start, end] of highlights) {
    if (start < at || end > chars.length || start >= end) continue;
    node.append(chars.slice(at, start).join(""), el("mark", "", chars.slice(start, end).join("")));
    at = end;
  }
  node.append(chars.slice(at).join(""));
  return node;
}
