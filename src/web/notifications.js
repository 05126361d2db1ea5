// Notifications while no tab is open: the browser subscribes to Web Push
// with the server's key, and the service worker (sw.js) shows what
// arrives. Permission is asked for only when the user clicks; logging out
// ends the subscription.

import { state } from "./state.js";
import { api } from "./api.js";
import { $ } from "./dom.js";

/** Where the service worker lives: its scope is the whole app. */
const WORKER = "/sw.js";

export function wireNotifications(openConversation) {
  $("notifications-toggle").addEventListener("click", toggle);
  if ("serviceWorker" in navigator) {
    // A click on a notification, in a tab already open.
    navigator.serviceWorker.addEventListener("message", (event) => {
      if (event.data && event.data.type === "open_conversation") openConversation(event.data.partner);
    });
  }
}

/** Tells the service worker which conversation this tab shows (`null`:
 *  none), so that it shows no notification for that one. */
export async function tellOnScreen(partner) {
  if (!supported()) return;
  const registration = await navigator.serviceWorker.getRegistration(WORKER);
  if (registration && registration.active) {
    registration.active.postMessage({ type: "on_screen", partner });
  }
}

/** Shows whether this browser gets notifications, on the account page. */
export async function showNotificationState() {
  const subscription = await currentSubscription();
  $("notifications-toggle").textContent = subscription
    ? "Stop notifications in this browser"
    : "Notify me of new messages while this app is closed";
  if (!supported()) {
    $("notifications-state").textContent = "This browser cannot show notifications from a website.";
  }
}

function supported() {
  return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
}

async function currentSubscription() {
  if (!supported()) return null;
  const registration = await navigator.serviceWorker.getRegistration(WORKER);
  return registration ? registration.pushManager.getSubscription() : null;
}

async function toggle() {
  const say = (text) => { $("notifications-state").textContent = text; };
  try {
    if (await currentSubscription()) {
      await unsubscribe(true);
      say("Notifications are off in this browser.");
    } else {
      say(await subscribe());
    }
  } catch (e) {
    say(`Notifications could not be turned on: ${e.message}`);
  }
  await showNotificationState();
}

/** Asks for permission, subscribes, tells the server; what to show. */
async function subscribe() {
  if (!supported()) return "This browser cannot show notifications from a website.";
  if (await Notification.requestPermission() !== "granted") {
    return "Notifications are blocked for this site in the browser's settings.";
  }
  const registration = await navigator.serviceWorker.register(WORKER);
  await navigator.serviceWorker.ready;
  await tellOnScreen(state.openPartner);
  const { public_key: key } = await api("GET", "/api/push/vapid-public-key");
  const subscription = await registration.pushManager.subscribe({
    userVisibleOnly: true,
    applicationServerKey: fromBase64Url(key),
  });
  await api("POST", "/api/push/subscriptions", subscription.toJSON());
  return "Notifications are on in this browser.";
}

/** Ends this browser's subscription; `tellServer` false once logged out
 *  (the server ended it with the session). */
export async function unsubscribe(tellServer) {
  const subscription = await currentSubscription().catch(() => null);
  if (!subscription) return;
  if (tellServer) {
    await api("DELETE", "/api/push/subscriptions", { endpoint: subscription.endpoint }).catch(() => {});
  }
  await subscription.unsubscribe();
}

function fromBase64Url(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}
