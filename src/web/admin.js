// The admin page: invitations (make one, copy its link, withdraw it),
// reported messages in their context (dismiss, delete, disable the
// sender), accounts with their last activity (disable, enable, reset
// link, delete), and the server's numbers. Shown only to admins; the server refuses everyone else
// anyway (403).

import { api } from "./api.js";
import { $, el, formatSize } from "./dom.js";

export function wireAdmin() {
  $("open-admin").addEventListener("click", openAdmin);
  $("admin-close").addEventListener("click", () => $("admin").close());
  $("invite-form").addEventListener("submit", createInvite);
}

async function openAdmin() {
  $("admin-error").textContent = "";
  $("admin").showModal();
  await refresh();
}

async function refresh() {
  try {
    const [{ users }, { invites }, stats] = await Promise.all([
      api("GET", "/api/admin/users"),
      api("GET", "/api/invites"),
      api("GET", "/api/admin/stats"),
    ]);
    renderUsers(users);
    renderInvites(invites);
    renderReports((await api("GET", "/api/admin/reports")).reports);
    const s = stats.stats;
    $("admin-stats").textContent =
      `${s.users} accounts, ${stats.online_users} online · ${s.messages} messages · ` +
      `${s.attachments} files (${formatSize(s.attachment_bytes)}) · ` +
      `database ${formatSize(s.database_bytes)} · registration: ${stats.registration} · v${stats.version}`;
  } catch (e) {
    $("admin-error").textContent = e.message;
  }
}

/** Runs an admin action, then shows the new state (or what went wrong). */
async function act(method, path, body) {
  try {
    const answer = await api(method, path, body);
    await refresh();
    return answer;
  } catch (e) {
    $("admin-error").textContent = e.message;
    return null;
  }
}

function lastSeen(iso) {
  return iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "never";
}

function renderUsers(users) {
  const rows = users.map((user) => {
    const row = el("tr");
    row.dataset.userId = user.id;
    row.append(el("td", "", user.nickname), el("td", "", user.role),
      el("td", "", lastSeen(user.last_seen_at)), el("td", "", user.disabled ? "disabled" : "active"));
    const buttons = el("td", "admin-actions");
    const toggle = el("button", "link", user.disabled ? "Enable" : "Disable");
    toggle.type = "button";
    toggle.dataset.action = user.disabled ? "enable" : "disable";
    toggle.addEventListener("click", () =>
      act("POST", `/api/admin/users/${user.id}/${toggle.dataset.action}`));
    const reset = el("button", "link", "Reset link");
    reset.type = "button";
    reset.addEventListener("click", async () => {
      const made = await act("POST", `/api/admin/users/${user.id}/reset-link`);
      if (made) showLink(`Password link for ${user.nickname} (works once, for 24 hours)`, made.url);
    });
    const remove = el("button", "link danger-link", "Delete");
    remove.type = "button";
    remove.addEventListener("click", () => {
      if (window.confirm(`Delete ${user.nickname}'s account and every message they sent?`)) {
        act("DELETE", `/api/admin/users/${user.id}`);
      }
    });
    buttons.append(toggle, reset, remove);
    row.append(buttons);
    return row;
  });
  $("admin-users").replaceChildren(...rows);
}

function renderReports(reports) {
  $("no-reports").hidden = reports.length > 0;
  $("reports").replaceChildren(...reports.map((report) => {
    const item = el("li", "report");
    item.dataset.reportId = report.id;
    item.append(el("div", "hint",
      `${report.reporter_nickname} reported ${report.sender_nickname}${report.reason ? `: “${report.reason}”` : ""}`));
    const context = el("ol", "report-context");
    for (const m of report.context) {
      const line = el("li", m.id === (report.message && report.message.id) ? "reported" : "",
        m.deleted_at ? "(deleted)" : m.content || (m.attachment ? `📎 ${m.attachment.name}` : ""));
      line.prepend(el("b", "", m.sender_id === report.sender_id ? `${report.sender_nickname}: ` : `${report.reporter_nickname}: `));
      context.append(line);
    }
    item.append(context);
    for (const [resolution, label] of [["dismissed", "Dismiss"], ["message_deleted", "Delete message"], ["sender_disabled", "Disable sender"]]) {
      const b = el("button", "link", label);
      b.type = "button";
      b.dataset.resolution = resolution;
      b.addEventListener("click", () =>
        act("POST", `/api/admin/reports/${report.id}/resolve`, { resolution }));
      item.append(b);
    }
    return item;
  }));
}

function renderInvites(invites) {
  const items = invites.map((invite) => {
    const item = el("li");
    item.dataset.code = invite.code;
    const expired = invite.expires_at && new Date(invite.expires_at) < new Date();
    const state = invite.uses >= invite.max_uses ? "used up" : expired ? "expired" : "open";
    const link = el("input", "invite-link");
    link.readOnly = true;
    link.value = new URL(invite.url, location.origin).href;
    const withdraw = el("button", "link", "Withdraw");
    withdraw.type = "button";
    withdraw.addEventListener("click", () =>
      act("DELETE", `/api/invites/${encodeURIComponent(invite.code)}`));
    item.append(link, el("span", "hint", ` ${invite.uses}/${invite.max_uses} used · ${state} `), withdraw);
    return item;
  });
  $("invites").replaceChildren(...items);
}

/** A link to hand over, selected so that it can be copied at once. */
function showLink(what, url) {
  const box = el("input", "invite-link");
  box.readOnly = true;
  box.value = new URL(url, location.origin).href;
  const item = el("li", "made");
  item.append(el("span", "", `${what}: `), box);
  $("invites").prepend(item);
  box.select();
}

async function createInvite(event) {
  event.preventDefault();
  const form = event.target;
  const made = await act("POST", "/api/invites", {
    uses: Number(form.uses.value) || 1,
    expires_in_seconds: Number(form.days.value) * 24 * 3600,
  });
  if (made) $("invites").querySelector(`[data-code="${CSS.escape(made.invite.code)}"] input`)?.select();
}
