// Files in messages: images as thumbnails whose box has its final size
// before they load (the conversation never jumps), opening full size in a
// lightbox; other files as cards with name, size and a download link.

import { $, el, formatSize } from "./dom.js";

/** The thumbnails' longest side, as the server makes them. */
const THUMBNAIL_SIDE = 320;

export function attachmentNode(attachment) {
  if (attachment.thumbnail_url && attachment.width && attachment.height) {
    return imageNode(attachment);
  }
  return fileCard(attachment);
}

function imageNode(a) {
  const scale = Math.min(1, THUMBNAIL_SIDE / Math.max(a.width, a.height));
  const button = el("button", "thumb");
  button.type = "button";
  button.setAttribute("aria-label", `Open ${a.name}`);
  const img = el("img");
  img.src = a.thumbnail_url;
  img.alt = a.name;
  img.loading = "lazy";
  img.decoding = "async";
  // The box is reserved at its final size: nothing moves when it loads.
  img.width = Math.max(1, Math.round(a.width * scale));
  img.height = Math.max(1, Math.round(a.height * scale));
  button.append(img);
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    openLightbox(a);
  });
  return button;
}

function fileCard(a) {
  const card = el("a", "file-card");
  card.href = a.url;
  card.download = a.name;
  card.append(el("span", "file-icon", "📄"));
  const text = el("span", "file-text");
  const name = el("span", "file-name", a.name);
  name.dir = "auto";
  text.append(name, el("span", "file-size", `${formatSize(a.size)} · Download`));
  card.append(text);
  card.addEventListener("click", (event) => event.stopPropagation());
  return card;
}

/** Shows the image full size over the page; Esc, a click or ✕ closes. */
function openLightbox(a) {
  const box = $("lightbox");
  const img = $("lightbox-image");
  img.src = a.url;
  img.alt = a.name;
  $("lightbox-download").href = a.url;
  $("lightbox-download").download = a.name;
  box.showModal();
}

export function wireLightbox() {
  const box = $("lightbox");
  box.addEventListener("click", (event) => {
    if (event.target === box || event.target.id === "lightbox-close") box.close();
  });
  box.addEventListener("close", () => { $("lightbox-image").removeAttribute("src"); });
}
