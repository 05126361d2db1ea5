//! The web client end to end: two real headless Chromium sessions against a
//! real server. Needs Debian's `chromium` (the README's test command
//! installs it).
//!
//! Screenshots of the main states go to `target/screenshots/`; with
//! `UPDATE_SCREENSHOTS=1` they replace the ones in `docs/screenshots/`.

mod common;

use common::browser::{Browser, q, save_screenshot};
use common::{ServerProcess, TestServer, free_port};

fn register_in_page(page: &mut Browser, nickname: &str, email: &str) {
    page.click("#show-register");
    page.type_into("#register-form [name=nickname]", nickname);
    page.type_into("#register-form [name=email]", email);
    page.type_into("#register-form [name=password]", "password123");
    page.click("#register-form button[type=submit]");
}

fn person(id: i64) -> String {
    format!("#people li[data-user-id=\"{id}\"]")
}

fn conversation(id: i64) -> String {
    format!("#conversations li[data-user-id=\"{id}\"]")
}

#[test]
fn two_people_chat_in_real_browsers() {
    // The real binary, on fixed ports so that the pages can reconnect to
    // it after the restart below.
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let (http_port, ws_port) = (free_port(), free_port());
    let (addr, ws_addr) = (
        format!("127.0.0.1:{http_port}"),
        format!("127.0.0.1:{ws_port}"),
    );
    let args = ["--addr", addr.as_str(), "--ws-addr", ws_addr.as_str()];
    let server = ServerProcess::start(&db, &args);
    let base = server.base();
    let new_user = |nickname: &str| {
        let mut client = server.client();
        let id = client.register(nickname);
        client.login(nickname, "password123");
        (client, id)
    };

    // carol exists already and has written bob 100 messages, for scrolling.
    let (carol, carol_id) = new_user("carol");

    // ---- alice registers, logs out, mistypes her password, logs in ----
    let mut alice = Browser::launch(1280, 800);
    alice.goto(&base);
    alice.wait_for("document.body.dataset.ready === 'true'", "page ready");
    alice.wait_for(&format!("!{}.hidden", q("#auth-view")), "login form shown");
    save_screenshot(&mut alice, "1-login");
    register_in_page(&mut alice, "alice", "alice@example.org");
    alice.wait_for(
        &format!("{}.textContent === 'alice'", q("#me-name")),
        "alice logged in",
    );
    alice.click("#logout");
    alice.wait_for(&format!("!{}.hidden", q("#auth-view")), "logged out");
    alice.type_into("#login-form [name=identifier]", "alice");
    alice.type_into("#login-form [name=password]", "not my password");
    alice.click("#login-form button[type=submit]");
    let error = alice.wait_for(
        &format!("{}.textContent", q("#auth-error")),
        "wrong password error",
    );
    assert_eq!(error, "Wrong nickname, email or password.");
    alice.type_into("#login-form [name=password]", "password123");
    alice.click("#login-form button[type=submit]");
    alice.wait_for(&format!("!{}.hidden", q("#chat-view")), "alice back in");

    let mut alice_rest = server.client(); // a second session, for ids
    alice_rest.login("alice", "password123");
    let alice_id = alice_rest.get("/api/me").body["user"]["id"]
        .as_i64()
        .expect("alice id");

    // ---- bob tries a taken nickname, then registers ----
    let mut bob = Browser::launch(1280, 800);
    bob.goto(&base);
    bob.wait_for("document.body.dataset.ready === 'true'", "page ready");
    register_in_page(&mut bob, "ALICE", "bob@example.org");
    let error = bob.wait_for(&format!("{}.textContent", q("#auth-error")), "taken error");
    assert_eq!(error, "Sorry, that nickname is already taken.");
    save_screenshot(&mut bob, "2-register-error");
    register_in_page(&mut bob, "bob", "bob@example.org");
    bob.wait_for(
        &format!("{}.textContent === 'bob'", q("#me-name")),
        "bob logged in",
    );
    let mut bob_rest = server.client();
    bob_rest.login("bob", "password123");
    let bob_id = bob_rest.get("/api/me").body["user"]["id"]
        .as_i64()
        .expect("bob id");
    for i in 0..100 {
        carol.send(bob_id, &format!("old message {i}"));
    }

    // ---- they see each other online ----
    alice.wait_for(
        &format!("{} !== null", q(&format!("{} .dot.online", person(bob_id)))),
        "bob online for alice",
    );
    bob.wait_for(
        &format!(
            "{} !== null",
            q(&format!("{} .dot.online", person(alice_id)))
        ),
        "alice online for bob",
    );

    // ---- alice writes; bob gets an unread badge ----
    alice.click(&person(bob_id));
    alice.wait_for(&format!("!{}.hidden", q("#composer")), "conversation open");
    alice.type_into("#input", "Hello Bob! 👋");
    alice.press_enter(true); // Shift+Enter: a new line, not a send
    alice.call(
        "Input.insertText",
        serde_json::json!({"text": "Second line"}),
    );
    alice.press_enter(false);
    alice.wait_for(
        &format!("{} !== null", q("#messages .msg.mine .state.delivered")),
        "delivered state",
    );
    let sent = alice.eval(&format!("{}.textContent", q("#messages .msg.mine .bubble")));
    assert_eq!(sent, "Hello Bob! 👋\nSecond line");

    let badge = bob.wait_for(
        &format!(
            "{}?.textContent",
            q(&format!("{} .badge", conversation(alice_id)))
        ),
        "unread badge",
    );
    assert_eq!(badge, "1");
    save_screenshot(&mut bob, "3-unread-badge");

    // ---- bob opens it: badge clears, message shown, he replies ----
    bob.click(&conversation(alice_id));
    bob.wait_for(
        &format!(
            "{} === null",
            q(&format!("{} .badge", conversation(alice_id)))
        ),
        "badge cleared",
    );
    // Alice learns at once that bob has read it.
    let seen = alice.wait_for(
        &format!("{}?.textContent", q("#messages .msg.mine .state.seen")),
        "seen marker",
    );
    assert_eq!(seen, "Seen");
    let received = bob.wait_for(
        &format!("{}?.textContent", q("#messages .msg:not(.mine) .bubble")),
        "message shown",
    );
    assert_eq!(received, "Hello Bob! 👋\nSecond line");
    assert_eq!(
        bob_rest.get("/api/messages/unread").body["unread_count"],
        100,
        "alice's message is read; carol's 100 are not"
    );
    // The page counts them too, though they arrived while it was busy
    // (logging in, catching up, refreshing its lists).
    bob.wait_for(
        &format!(
            "{}?.textContent === '100'",
            q(&format!("{} .badge", conversation(carol_id)))
        ),
        "carol's 100 counted",
    );
    bob.type_into("#input", "Hi Alice, مرحبا, long: ");
    bob.call(
        "Input.insertText",
        serde_json::json!({"text": "x".repeat(300)}),
    );
    bob.press_enter(false);
    let reply = alice.wait_for(
        &format!("{}?.textContent", q("#messages .msg:not(.mine) .bubble")),
        "bob's reply",
    );
    assert!(
        reply
            .as_str()
            .is_some_and(|r| r.starts_with("Hi Alice, مرحبا"))
    );
    // A long word wraps instead of widening the page.
    assert_eq!(
        alice.eval("document.documentElement.scrollWidth <= window.innerWidth"),
        true
    );

    // ---- markup in a message is shown as text ----
    let hostile =
        r#"<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold?</b>"#;
    alice.type_into("#input", hostile);
    alice.press_enter(false);
    let shown = bob.wait_for(
        "[...document.querySelectorAll('#messages .msg:not(.mine) .bubble')]\
         .map(b => b.textContent).find(t => t.startsWith('<script>'))",
        "hostile message shown",
    );
    assert_eq!(shown, hostile);
    assert_eq!(bob.eval("typeof window.pwned"), "undefined");
    assert_eq!(
        bob.eval(
            "document.querySelectorAll('#messages img, #messages b, #messages script').length"
        ),
        0
    );
    save_screenshot(&mut bob, "4-conversation");
    save_screenshot(&mut alice, "5-conversation-alice");

    // ---- bob scrolls back through carol's 100 messages ----
    bob.click(&conversation(carol_id));
    bob.wait_for(
        &format!(
            "{}?.textContent === 'old message 99'",
            q("#messages .msg:last-child .bubble")
        ),
        "newest of carol's messages",
    );
    let mut pages = 0;
    loop {
        let count = bob.eval("document.querySelectorAll('#messages .msg').length");
        if count == 100 {
            break;
        }
        pages += 1;
        assert!(pages < 10, "older messages did not load");
        // Scroll to the top and remember which message is on screen there.
        let anchor = bob.eval(
            "(() => { const box = document.getElementById('messages'); box.scrollTop = 0; \
             const first = box.querySelector('.msg'); return [first.dataset.messageId, first.getBoundingClientRect().top]; })()",
        );
        bob.wait_for(
            &format!("document.querySelectorAll('#messages .msg').length > {count}"),
            "an older page",
        );
        // The message that was at the top has not jumped: older ones were
        // added above it, out of view.
        let top_now = bob.eval(&format!(
            "document.querySelector('[data-message-id=\"{}\"]').getBoundingClientRect().top",
            anchor[0].as_str().expect("id")
        ));
        let moved = (top_now.as_f64().expect("top") - anchor[1].as_f64().expect("top")).abs();
        assert!(
            moved < 2.0,
            "view jumped by {moved}px while loading older messages"
        );
    }
    let texts = bob
        .eval("[...document.querySelectorAll('#messages .msg .bubble')].map(b => b.textContent)");
    let expected: Vec<String> = (0..100).map(|i| format!("old message {i}")).collect();
    assert_eq!(
        texts,
        serde_json::json!(expected),
        "all 100, in order, once"
    );

    // ---- the server restarts; both pages reconnect and chat again ----
    let (exit_code, _) = server.terminate();
    assert_eq!(exit_code, Some(0));
    for page in [&mut alice, &mut bob] {
        page.wait_for(&format!("!{}.hidden", q("#banner")), "reconnecting banner");
    }
    save_screenshot(&mut alice, "6-reconnecting");
    let server = ServerProcess::start(&db, &args);
    // Sent right after the restart, before the pages' next reconnect
    // attempt (at least 375 ms away): bob's page gets it through sync when
    // it reconnects, in the conversation it has open.
    carol.send(bob_id, "while you were away");
    for page in [&mut alice, &mut bob] {
        page.wait_for(&format!("{}.hidden", q("#banner")), "reconnected");
    }
    bob.wait_for(
        &format!(
            "{}?.textContent === 'while you were away'",
            q("#messages .msg:last-child .bubble")
        ),
        "missed message refilled",
    );
    // The lists are refreshed after the sync and re-ordered (carol's is now
    // the newest conversation): click only once that is done.
    for page in [&mut alice, &mut bob] {
        page.wait_for("document.body.dataset.sync === 'done'", "sync finished");
    }
    bob.click(&conversation(alice_id));
    alice.type_into("#input", "after the restart");
    alice.press_enter(false);
    bob.wait_for(
        &format!(
            "{}?.textContent === 'after the restart'",
            q("#messages .msg:last-child .bubble")
        ),
        "message after restart",
    );
    // Bob has the conversation open: delivered, then read at once.
    alice.wait_for(
        &format!(
            "{}?.textContent === 'Seen'",
            q("#messages .msg.mine:last-child .state")
        ),
        "seen after restart",
    );

    // ---- phone width: one pane at a time ----
    alice.set_viewport(390, 760);
    alice.wait_for(
        &format!("getComputedStyle({}).display === 'none'", q(".sidebar")),
        "sidebar hidden while a conversation is open",
    );
    save_screenshot(&mut alice, "7-phone-conversation");
    alice.click("#back");
    alice.wait_for(
        &format!("getComputedStyle({}).display === 'none'", q("#pane")),
        "conversation hidden on the list",
    );
    save_screenshot(&mut alice, "8-phone-list");

    // ---- a server that cannot be reached is said so ----
    alice.set_viewport(1280, 800);
    alice.click("#logout");
    alice.wait_for(&format!("!{}.hidden", q("#auth-view")), "logged out");
    let (exit_code, _) = server.terminate();
    assert_eq!(exit_code, Some(0));
    alice.type_into("#login-form [name=identifier]", "alice");
    alice.type_into("#login-form [name=password]", "password123");
    alice.click("#login-form button[type=submit]");
    let error = alice.wait_for(
        &format!("{}.textContent", q("#auth-error")),
        "unreachable error",
    );
    assert!(
        error
            .as_str()
            .is_some_and(|e| e.starts_with("Cannot reach the server")),
        "{error}"
    );
}

#[test]
fn pages_are_served_with_a_strict_content_security_policy() {
    let server = TestServer::start();
    for (path, content_type) in [
        ("/", "text/html"),
        ("/app.js", "text/javascript"),
        ("/app.css", "text/css"),
    ] {
        let response = ureq::get(&format!("{}{path}", server.base()))
            .call()
            .expect("asset");
        assert_eq!(response.status(), 200);
        assert!(
            response
                .header("content-type")
                .is_some_and(|c| c.starts_with(content_type)),
            "{path}"
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        let csp = response.header("content-security-policy").expect("CSP");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(csp.contains(&server.ws_url()), "{csp}");
    }
    let html = ureq::get(&server.base())
        .call()
        .expect("page")
        .into_string()
        .expect("html");
    assert!(!html.contains("<script>"), "no inline script");
}
