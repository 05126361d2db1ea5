//! The web client's notifications in a real headless Chromium: the
//! service worker shows a push as a notification (read back with
//! `registration.getNotifications()`), not for the conversation open on
//! screen, and a conversation's address opens it.
//!
//! The push is handed to the service worker through the DevTools protocol
//! (`ServiceWorker.deliverPushMessage`): a headless browser has no push
//! service to subscribe with. What the server sends to a push service is
//! tested in `push.rs`.

mod common;

use common::TestServer;
use common::browser::{Browser, WAIT_MS, log_in, q};
use serde_json::json;

#[test]
fn the_service_worker_shows_a_push_and_the_conversation_it_names_opens() {
    let server = TestServer::start();
    let base = server.base();
    let (alice, alice_id) = server.user("alice");
    let (_carol, carol_id) = server.user("carol");
    let (_bob, bob_id) = server.user("bob");
    alice.send(bob_id, "hello bob");

    let mut page = Browser::launch(1000, 700);
    page.call(
        "Browser.grantPermissions",
        json!({ "permissions": ["notifications"], "origin": base }),
    );
    log_in(&mut page, &base, "bob");

    // Turning notifications on registers the service worker (subscribing
    // then needs a push service, which a headless browser does not reach).
    page.click("#open-account");
    page.click("#notifications-toggle");
    page.eval("navigator.serviceWorker.ready.then(() => true)");
    // DevTools reports the registrations it knows of, one event at a time.
    let scope = format!("{base}/");
    let mut update = page.call_then_event(
        "ServiceWorker.enable",
        json!({}),
        "ServiceWorker.workerRegistrationUpdated",
    );
    let registration_id = loop {
        let found = update["registrations"]
            .as_array()
            .and_then(|all| all.iter().find(|r| r["scopeURL"] == scope.as_str()))
            .and_then(|r| r["registrationId"].as_str());
        if let Some(id) = found {
            break id.to_owned();
        }
        update = page.next_event("ServiceWorker.workerRegistrationUpdated");
    };
    page.eval("document.querySelector('#account').close()");

    let deliver = |page: &mut Browser, from: i64, nickname: &str, preview: &str| {
        let push = json!({
            "type": "message", "from_user_id": from, "nickname": nickname,
            "message_id": 1, "preview": preview,
        });
        page.call(
            "ServiceWorker.deliverPushMessage",
            json!({ "origin": base, "registrationId": registration_id, "data": push.to_string() }),
        );
    };

    let shown = (0..DELIVERIES)
        .find_map(|_| {
            deliver(&mut page, alice_id, "alice", "Dinner at eight?");
            notifications_within(&mut page)
        })
        .expect("a notification");
    assert_eq!(shown[0]["title"], "alice");
    assert_eq!(shown[0]["body"], "Dinner at eight?");
    assert_eq!(shown[0]["tag"], format!("conversation-{alice_id}"));
    page.eval(
        "navigator.serviceWorker.getRegistration('/sw.js')
            .then((r) => r.getNotifications()).then((all) => all.forEach((n) => n.close()))",
    );

    // With alice's conversation on screen, her next push shows nothing;
    // carol's, delivered after it, does.
    page.click(&format!("#conversations li[data-user-id=\"{alice_id}\"]"));
    page.wait_for(
        &format!("location.hash === '#user-{alice_id}'"),
        "its address",
    );
    deliver(&mut page, alice_id, "alice", "are you there?");
    let shown = (0..DELIVERIES)
        .find_map(|_| {
            deliver(&mut page, carol_id, "carol", "hi from carol");
            notifications_within(&mut page)
        })
        .expect("carol's notification");
    assert_eq!(shown.as_array().map(Vec::len), Some(1), "{shown}");
    assert_eq!(shown[0]["title"], "carol");

    // A notification's click opens `/#user-N` when no tab is open: that
    // address opens the conversation. (From another page: a change of
    // the fragment alone loads nothing.)
    page.goto("about:blank");
    page.goto(&format!("{base}/#user-{carol_id}"));
    page.wait_for(
        &format!("{}.textContent.includes('carol')", q("#partner-name")),
        "carol's conversation open",
    );
}

/// Pushes handed over through DevTools before giving up: now and then
/// (a loaded CI machine) a delivery is lost before the service worker
/// sees it; a repeated one replaces the first (same tag).
const DELIVERIES: usize = 3;

/// The notifications shown, once there is one, asking again every 50 ms
/// (nothing tells the page when the service worker shows one); `None`
/// after a third of the browser helper's usual wait.
fn notifications_within(page: &mut Browser) -> Option<serde_json::Value> {
    let shown = page.eval(&format!(
        "(async () => {{
            const registration = await navigator.serviceWorker.getRegistration('/sw.js');
            const deadline = Date.now() + {WAIT_MS} / 3;
            while (Date.now() < deadline) {{
                const all = await registration.getNotifications();
                if (all.length > 0) return all.map((n) => ({{ title: n.title, body: n.body, tag: n.tag }}));
                await new Promise((resolve) => setTimeout(resolve, 50));
            }}
            return null;
        }})()"
    ));
    (!shown.is_null()).then_some(shown)
}
