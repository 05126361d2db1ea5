// The account dialog: display name, picture, password, the sessions
// logged in (and ending them), downloading one's data, deleting the
// account.

import { state } from "./state.js";
import { api } from "./api.js";
import { $, el, fillAvatar } from "./dom.js";
import { showAuth } from "./auth.js";
import { refreshLists } from "./sidebar.js";
import { showNotificationState } from "./notifications.js";

export function wireAccount() {
  $("open-account").addEventListener("click", openAccount);
  $("account-close").addEventListener("click", () => $("account").close());
  $("name-form").addEventListener("submit", saveName);
  $("password-form").addEventListener("submit", changePassword);
  $("end-others").addEventListener("click", endOthers);
  $("export").addEventListener("click", downloadExport);
  $("delete-form").addEventListener("submit", deleteAccount);
  $("avatar-input").addEventListener("change", choosePicture);
  $("avatar-remove").addEventListener("click", () => setPicture(null));
}

/** Shows my account's new state everywhere it appears. */
function showMe(user) {
  Object.assign(state.me, user);
  fillAvatar($("account-avatar"), state.me);
  fillAvatar($("me-avatar"), state.me);
  $("avatar-remove").hidden = !state.me.avatar_url;
}

async function choosePicture(event) {
  const file = event.target.files[0];
  event.target.value = "";
  if (!file) return;
  try {
    const response = await fetch(`/api/attachments?name=${encodeURIComponent(file.name)}`, {
      method: "POST", credentials: "same-origin", body: file,
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    await setPicture(answer.attachment.id);
  } catch (e) {
    say(e.message);
  }
}

async function setPicture(attachmentId) {
  try {
    const { user } = attachmentId === null
      ? await api("DELETE", "/api/me/avatar")
      : await api("PUT", "/api/me/avatar", { attachment_id: attachmentId });
    showMe(user);
    say(attachmentId === null ? "Picture removed." : "Picture saved.");
    await refreshLists();
  } catch (e) {
    say(e.code === "invalid_attachment" ? "That file is not an image this server can show." : e.message);
  }
}

function say(text) {
  $("account-notice").textContent = text;
}

async function openAccount() {
  say("");
  $("name-form").display_name.value = state.me.display_name || "";
  showMe({});
  $("account").showModal();
  await showNotificationState();
  await renderSessions();
}

async function renderSessions() {
  try {
    const { sessions } = await api("GET", "/api/sessions");
    $("sessions").replaceChildren(...sessions.map((s) => {
      const item = el("li");
      item.dataset.sessionId = s.id;
      const when = new Date(s.last_seen_at).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
      item.append(el("span", "", `${s.current ? "This browser" : s.device || "Unknown device"} · ${s.address} · ${when}`));
      if (!s.current) {
        const end = el("button", "link", "Log out");
        end.type = "button";
        end.addEventListener("click", async () => {
          try { await api("DELETE", `/api/sessions/${s.id}`); } catch (e) { say(e.message); }
          await renderSessions();
        });
        item.append(end);
      }
      return item;
    }));
  } catch (e) {
    say(e.message);
  }
}

async function saveName(event) {
  event.preventDefault();
  try {
    const { user } = await api("PATCH", "/api/me", { display_name: event.target.display_name.value });
    state.me.display_name = user.display_name;
    say("Saved.");
    await refreshLists();
  } catch (e) {
    say(e.code === "name_imitates_another" ? "That name looks like someone else's. Choose another." : e.message);
  }
}

async function changePassword(event) {
  event.preventDefault();
  const form = event.target;
  try {
    await api("POST", "/api/me/password", { current_password: form.current.value, new_password: form.new.value });
    form.reset();
    say("Password changed. Your other sessions were logged out.");
    await renderSessions();
  } catch (e) {
    say(e.status === 401 ? "The current password is wrong." : e.message);
  }
}

async function endOthers() {
  try {
    const { ended } = await api("DELETE", "/api/sessions");
    say(`Logged out ${ended} other session${ended === 1 ? "" : "s"}.`);
  } catch (e) {
    say(e.message);
  }
  await renderSessions();
}

async function downloadExport() {
  try {
    const data = await api("GET", "/api/me/export");
    const link = $("export-link");
    URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    link.hidden = false;
    link.click();
  } catch (e) {
    say(e.message);
  }
}

async function deleteAccount(event) {
  event.preventDefault();
  if (!window.confirm("Delete your account and every message you sent? This cannot be undone.")) return;
  try {
    await api("DELETE", "/api/me", { password: event.target.password.value });
    $("account").close();
    showAuth("Your account was deleted.");
  } catch (e) {
    say(e.status === 401 ? "The password is wrong." : e.message);
  }
}
