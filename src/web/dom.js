// Small DOM and formatting helpers. Text always goes in as textContent:
// nothing a user typed is ever parsed as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function initial(nickname) {
  return (nickname || "?").charAt(0).toUpperCase();
}

/** Fills an avatar circle: the user's picture, or else their initial. */
export function fillAvatar(node, user) {
  if (user && user.avatar_url) {
    const img = el("img");
    img.src = user.avatar_url;
    img.alt = "";
    node.replaceChildren(img);
  } else {
    node.textContent = initial(user && user.nickname);
  }
}

/** "812 B", "4.2 KB", "25.0 MB": a file's size for people. */
export function formatSize(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ["KB", "MB", "GB"];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit += 1; }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function formatTime(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/** A time for the conversation list: the hour today, else the date. */
export function formatWhen(iso) {
  const date = new Date(iso);
  if (date.toDateString() === new Date().toDateString()) return formatTime(iso);
  return date.toLocaleDateString([], { month: "short", day: "numeric" });
}

/** "Today", "Yesterday", or the date, for a day separator. */
export function dayLabel(iso) {
  const date = new Date(iso);
  const today = new Date();
  const yesterday = new Date(today);
  yesterday.setDate(today.getDate() - 1);
  if (date.toDateString() === today.toDateString()) return "Today";
  if (date.toDateString() === yesterday.toDateString()) return "Yesterday";
  const sameYear = date.getFullYear() === today.getFullYear();
  return date.toLocaleDateString([], sameYear
    ? { weekday: "long", month: "long", day: "numeric" }
    : { year: "numeric", month: "long", day: "numeric" });
}
