// The service worker: shows a notification for each push (a message that
// arrived while no tab of mine was connected, see docs/API.md), and opens
// its conversation when the notification is clicked. A plain script, not
// a module: every browser that has push runs it.

// The conversation each tab has on screen, as the tabs tell it (a tab's
// address is not enough: browsers report the one it was opened with). If
// the browser stops this worker, this is forgotten, and a notification is
// shown after all.
const onScreen = new Map();

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "on_screen" && event.source) {
    onScreen.set(event.source.id, event.data.partner);
  }
});

self.addEventListener("push", (event) => {
  let push = null;
  try {
    push = event.data ? event.data.json() : null;
  } catch (e) {
    push = null;
  }
  if (!push || push.type !== "message") return;
  event.waitUntil(notify(push));
});

async function notify(push) {
  // A tab showing that very conversation needs no notification.
  const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const watching = tabs.some((tab) =>
    tab.visibilityState === "visible" && onScreen.get(tab.id) === push.from_user_id);
  if (watching) return;
  await self.registration.showNotification(push.nickname, {
    body: push.preview !== undefined ? push.preview : `New message from ${push.nickname}`,
    // One notification per conversation: a newer one replaces it.
    tag: `conversation-${push.from_user_id}`,
    renotify: true,
    icon: "/favicon.svg",
    data: { partner: push.from_user_id, message_id: push.message_id },
  });
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const partner = event.notification.data && event.notification.data.partner;
  if (typeof partner !== "number") return;
  event.waitUntil(openConversation(partner));
});

/** Focuses a tab of the app and opens the conversation there, or opens one. */
async function openConversation(partner) {
  const tabs = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  const tab = tabs.find((t) => new URL(t.url).origin === self.location.origin);
  if (tab) {
    await tab.focus();
    tab.postMessage({ type: "open_conversation", partner });
    return;
  }
  // The conversation's address in the app (see conversation.js).
  await self.clients.openWindow(`/#user-${partner}`);
}
