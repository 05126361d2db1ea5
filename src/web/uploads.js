// Attaching files: the attach button, dropping files on the conversation,
// pasting an image; each file uploads at once, with a progress bar and a
// cancel button, in the tray above the composer. What is in the tray is
// sent with the next message (one file per message; the text is the
// first file's caption).

import { state } from "./state.js";
import { $, el, formatSize } from "./dom.js";

/** Files in the tray: {file, progress (0-1), xhr, attachment, error,
 * preview, waiting}. */
const tray = [];
/** Uploads at once; more wait their turn (the server takes 16 at once
 * from everyone, and one person pasting twenty photos should not take
 * them all). */
const UPLOADS_AT_ONCE = 3;

/** Starts uploading each of `files` (a FileList or an array of Files). */
export function addFiles(files) {
  if (state.openPartner === null || state.blocked.has(state.openPartner)) return;
  for (const file of files) {
    const item = { file, progress: 0, xhr: null, attachment: null, error: null, preview: null, waiting: true };
    if (file.type.startsWith("image/")) item.preview = URL.createObjectURL(file);
    tray.push(item);
  }
  startWaiting();
  renderTray();
}

/** Starts waiting uploads while fewer than UPLOADS_AT_ONCE run. */
function startWaiting() {
  for (const item of tray) {
    if (tray.filter((i) => i.xhr !== null).length >= UPLOADS_AT_ONCE) return;
    if (item.waiting) {
      item.waiting = false;
      upload(item);
    }
  }
}

/** Uploads one file as the raw body. XMLHttpRequest, not fetch: only it
 * reports upload progress. */
function upload(item) {
  const xhr = new XMLHttpRequest();
  item.xhr = xhr;
  xhr.open("POST", `/api/attachments?name=${encodeURIComponent(item.file.name || "pasted-image")}`);
  xhr.responseType = "json";
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      item.progress = event.loaded / event.total;
      renderTray();
    }
  });
  xhr.addEventListener("load", () => {
    item.xhr = null;
    const body = xhr.response || {};
    if (xhr.status === 201 && body.attachment) {
      item.attachment = body.attachment;
      item.progress = 1;
    } else {
      item.error = body.error || `upload failed (HTTP ${xhr.status})`;
    }
    startWaiting();
    renderTray();
  });
  xhr.addEventListener("error", () => {
    item.xhr = null;
    item.error = "upload failed: cannot reach the server";
    startWaiting();
    renderTray();
  });
  xhr.send(item.file);
}

/** Cancels an upload in progress, or takes a file out of the tray. */
function remove(item) {
  if (item.xhr) item.xhr.abort();
  item.xhr = null;
  if (item.preview) URL.revokeObjectURL(item.preview);
  tray.splice(tray.indexOf(item), 1);
  startWaiting();
  renderTray();
  $("input").focus();
}

/** Whether files are still uploading (sending waits for them). */
export function uploading() {
  return tray.some((item) => item.xhr !== null || item.waiting);
}

/** Takes the uploaded files out of the tray, to send; failed ones stay
 * (with their error) until removed. */
export function takeAttachments() {
  const done = tray.filter((item) => item.attachment);
  for (const item of done) {
    if (item.preview) URL.revokeObjectURL(item.preview);
    tray.splice(tray.indexOf(item), 1);
  }
  renderTray();
  return done.map((item) => item.attachment);
}

/** Empties the tray (another conversation was opened, or logout). */
export function clearTray() {
  for (const item of tray) item.waiting = false; // none starts on the way out
  for (const item of [...tray]) remove(item);
}

export function renderTray() {
  const box = $("tray");
  box.replaceChildren();
  box.hidden = tray.length === 0;
  for (const item of tray) {
    const row = el("div", item.error ? "tray-item failed" : "tray-item");
    if (item.preview) {
      const img = el("img", "tray-preview");
      img.src = item.preview;
      img.alt = "";
      row.append(img);
    }
    const label = el("span", "tray-name", item.file.name || "pasted image");
    label.title = label.textContent;
    row.append(label, el("span", "tray-size", formatSize(item.file.size)));
    if (item.error) {
      row.append(el("span", "tray-error", item.error));
    } else if (!item.attachment) {
      const bar = el("progress", "tray-progress");
      bar.max = 1;
      bar.value = item.progress;
      row.append(bar);
    }
    const cancel = el("button", "link tray-remove", "✕");
    cancel.type = "button";
    const busy = item.xhr !== null || item.waiting;
    cancel.setAttribute("aria-label", busy ? `Cancel uploading ${item.file.name}` : `Remove ${item.file.name}`);
    cancel.addEventListener("click", () => remove(item));
    row.append(cancel);
    box.append(row);
  }
  $("send").disabled = uploading();
  $("send").textContent = uploading() ? "Uploading…" : "Send";
}

/** Drop on the conversation and paste into the composer add files. */
export function wireUploads() {
  $("attach").addEventListener("click", () => $("file-input").click());
  $("file-input").addEventListener("change", (event) => {
    addFiles(event.target.files);
    event.target.value = "";
  });
  const pane = $("pane");
  pane.addEventListener("dragover", (event) => {
    if (![...event.dataTransfer.types].includes("Files")) return;
    event.preventDefault();
    pane.classList.add("dropping");
  });
  pane.addEventListener("dragleave", (event) => {
    if (event.target === pane) pane.classList.remove("dropping");
  });
  pane.addEventListener("drop", (event) => {
    pane.classList.remove("dropping");
    if (event.dataTransfer.files.length === 0) return;
    event.preventDefault();
    addFiles(event.dataTransfer.files);
  });
  $("input").addEventListener("paste", (event) => {
    const files = [...(event.clipboardData ? event.clipboardData.files : [])];
    if (files.length === 0) return; // plain text pastes as usual
    event.preventDefault();
    addFiles(files);
  });
}
