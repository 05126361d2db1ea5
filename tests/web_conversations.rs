//! The web client's conversation features in two real headless Chromium
//! sessions: typing, ticks, replies, edits, deletions, reactions, blocking,
//! the unread count in the tab title, the dark theme, and each person
//! listed once.

mod common;

use common::TestServer;
use common::browser::{Browser, log_in, open_with, q, save_screenshot};
use serde_json::json;

/// The message node of `id` in the open conversation.
fn msg(id: i64) -> String {
    format!("#messages [data-message-id=\"{id}\"]")
}

/// Shows a message's actions (a tap, as on a phone) and clicks one.
fn act(page: &mut Browser, id: i64, action: &str) {
    page.click(&format!("{} .bubble", msg(id)));
    page.click(&format!("{} .action[title=\"{action}\"]", msg(id)));
}

#[test]
fn two_people_use_every_conversation_feature_in_real_browsers() {
    let server = TestServer::start();
    let base = server.base();
    let (alice_rest, alice_id) = server.user("alice");
    let (bob_rest, bob_id) = server.user("bob");
    let (carol_rest, _) = server.user("carol");
    let first = alice_rest.send(bob_id, "are you coming tonight?")["id"]
        .as_i64()
        .expect("id");

    let mut alice = Browser::launch(1280, 800);
    let mut bob = Browser::launch(1280, 800);
    log_in(&mut alice, &base, "alice");
    log_in(&mut bob, &base, "bob");
    // Each person is listed once: bob is a conversation, not also a person.
    assert_eq!(
        alice.eval(&format!(
            "document.querySelectorAll('.sidebar [data-user-id=\"{bob_id}\"]').length"
        )),
        1
    );
    open_with(&mut alice, bob_id);
    open_with(&mut bob, alice_id);

    // ---- typing ----
    alice.type_into("#input", "yes, ");
    let typing = bob.wait_for(
        &format!("!{0}.hidden && {0}.textContent", q("#typing")),
        "typing line",
    );
    assert_eq!(typing, "alice is typing…");
    alice.call("Input.insertText", json!({"text": "at eight"}));
    alice.press_enter(false);
    bob.wait_for(
        &format!("{}.hidden", q("#typing")),
        "typing line gone on send",
    );
    let answer = bob.wait_for(
        "[...document.querySelectorAll('#messages .msg:not(.mine)')]\
         .find(m => m.querySelector('.bubble').textContent === 'yes, at eight')?.dataset.messageId",
        "alice's answer shown",
    );
    let answer: i64 = answer.as_str().expect("id").parse().expect("id");

    // ---- ticks: bob has it open, so alice sees it seen ----
    alice.wait_for(
        &format!(
            "{}?.textContent === 'Seen'",
            q(&format!("{} .state", msg(answer)))
        ),
        "seen tick",
    );

    // ---- reply, and a click on the quote finds the original ----
    act(&mut bob, first, "Reply");
    bob.wait_for(&format!("!{}.hidden", q("#compose-bar")), "reply bar");
    bob.type_into("#input", "great, see you");
    bob.press_enter(false);
    let quote = alice.wait_for(
        &format!(
            "{}?.textContent",
            q("#messages .msg:not(.mine) .quote .quote-text")
        ),
        "quoted reply",
    );
    assert_eq!(quote, "are you coming tonight?");
    alice.click("#messages .msg:not(.mine) .quote");
    alice.wait_for(
        &format!("{}.classList.contains('highlight')", q(&msg(first))),
        "original highlighted",
    );

    // ---- edit the last own message with the up arrow ----
    alice.eval("document.getElementById('input').focus()");
    alice.press_key("ArrowUp", 38);
    assert_eq!(
        alice.eval("document.getElementById('input').value"),
        "yes, at eight"
    );
    alice.type_into("#input", "yes, at nine");
    alice.press_enter(false);
    bob.wait_for(
        &format!(
            "{0}?.textContent === 'yes, at nine' && {1} !== null",
            q(&format!("{} .bubble", msg(answer))),
            q(&format!("{} .edited", msg(answer)))
        ),
        "edited text and mark",
    );

    // ---- reactions: add, count, toggle ----
    act(&mut bob, answer, "React");
    bob.click(&format!("{} .pick", msg(answer)));
    alice.wait_for(
        &format!(
            "{}?.textContent === '👍 1'",
            q(&format!("{} .reaction", msg(answer)))
        ),
        "reaction shown",
    );
    alice.click(&format!("{} .reaction", msg(answer)));
    for page in [&mut alice, &mut bob] {
        page.wait_for(
            &format!(
                "{}?.textContent === '👍 2'",
                q(&format!("{} .reaction", msg(answer)))
            ),
            "second reaction",
        );
    }
    alice.click(&format!("{} .reaction", msg(answer)));
    for page in [&mut alice, &mut bob] {
        page.wait_for(
            &format!(
                "{}?.textContent === '👍 1'",
                q(&format!("{} .reaction", msg(answer)))
            ),
            "reaction taken back",
        );
    }

    // ---- delete for everyone ----
    act(&mut alice, answer, "Delete for everyone");
    for page in [&mut alice, &mut bob] {
        page.wait_for(
            &format!(
                "{}?.textContent === 'This message was deleted'",
                q(&format!("{} .bubble", msg(answer)))
            ),
            "tombstone",
        );
    }
    assert_eq!(
        bob.eval(&format!(
            "{} === null",
            q(&format!("{} .reaction", msg(answer)))
        )),
        true,
        "its reactions went with it"
    );

    // ---- the tab title counts unread messages ----
    carol_rest.send(bob_id, "psst");
    bob.wait_for("document.title === '(1) Chat'", "unread count in the title");

    // ---- block and unblock ----
    bob.click("#block");
    bob.wait_for(
        &format!(
            "{}.textContent === 'Unblock' && {}.disabled",
            q("#block"),
            q("#input")
        ),
        "blocked",
    );
    alice.type_into("#input", "hello?");
    alice.press_enter(false);
    let failed = alice.wait_for(
        &format!("{}?.textContent", q("#messages .msg.mine .state.failed")),
        "refused send",
    );
    assert_eq!(failed, "failed: you cannot message this person");
    bob.click("#block");
    bob.wait_for(&format!("!{}.disabled", q("#input")), "unblocked");

    // ---- without read receipts, alice no longer learns that bob read ----
    bob.click("#receipts");
    bob.wait_for(
        &format!("{}.dataset.saved === 'false'", q("#receipts")),
        "receipts off, saved",
    );
    assert_eq!(
        bob_rest.get("/api/me").body["user"]["send_read_receipts"],
        false
    );
    alice.type_into("#input", "did you read this?");
    alice.press_enter(false);
    let unseen = alice
        .wait_for(
            "[...document.querySelectorAll('#messages .msg.mine')]\
             .find(m => m.querySelector('.bubble').textContent === 'did you read this?')?.dataset.messageId",
            "alice's question stored",
        )
        .as_str()
        .expect("id")
        .parse::<i64>()
        .expect("id");
    // Bob has the conversation open: he reads it at once. Then he answers;
    // by the time alice sees the answer, a read mark would have come.
    bob.wait_for(
        &format!("{} !== null", q(&msg(unseen))),
        "question shown to bob",
    );
    // Its badge goes once the server has the read mark, which is sent to
    // whoever may have it before the server answers.
    bob.wait_for(
        &format!(
            "{} === null",
            q(&format!(
                "#conversations li[data-user-id=\"{alice_id}\"] .badge"
            ))
        ),
        "bob's read mark stored",
    );
    bob.type_into("#input", "maybe");
    bob.press_enter(false);
    alice.wait_for(
        "[...document.querySelectorAll('#messages .msg:not(.mine) .bubble')].some(b => b.textContent === 'maybe')",
        "bob's answer",
    );
    assert_eq!(
        bob_rest.get("/api/messages/unread").body["unread_count"],
        1,
        "only carol's"
    );
    assert_ne!(
        alice.eval(&format!(
            "{}?.textContent",
            q(&format!("{} .state", msg(unseen)))
        )),
        "Seen"
    );
    bob.click("#receipts");
    bob.wait_for(
        &format!("{}.dataset.saved === 'true'", q("#receipts")),
        "receipts on, saved",
    );

    // ---- delete for me: gone from bob's page, still on alice's ----
    act(&mut bob, unseen, "Delete for me");
    bob.wait_for(&format!("{} === null", q(&msg(unseen))), "hidden for bob");
    assert_eq!(
        alice.eval(&format!("{} !== null", q(&msg(unseen)))),
        true,
        "alice keeps it"
    );

    // ---- after a reload, my messages still show their state ----
    alice.goto(&base);
    alice.wait_for("document.body.dataset.sync === 'done'", "reloaded");
    open_with(&mut alice, bob_id);
    // (Receipts are on again, so the read state shows again.)
    let state = alice.wait_for(
        &format!("{}?.textContent", q(&format!("{} .state", msg(unseen)))),
        "state after reload",
    );
    assert_eq!(state, "Seen");
    let earlier = alice.eval(&format!(
        "{}?.textContent",
        q(&format!("{} .state", msg(first)))
    ));
    assert_eq!(earlier, "✓✓", "read, and not the last one read");

    // ---- the dark theme follows the system setting ----
    // (getComputedStyle recomputes styles: no waiting needed.)
    let background = "getComputedStyle(document.documentElement).backgroundColor";
    assert_eq!(bob.eval(background), "rgb(243, 244, 247)");
    bob.color_scheme("dark");
    assert_eq!(bob.eval(background), "rgb(20, 22, 27)");
    save_screenshot(&mut bob, "9-dark-conversation");
}

#[test]
fn the_page_has_an_icon() {
    let server = TestServer::start();
    let response = ureq::get(&format!("{}/favicon.svg", server.base()))
        .call()
        .expect("favicon");
    assert_eq!(response.header("content-type"), Some("image/svg+xml"));
    let html = ureq::get(&server.base())
        .call()
        .expect("page")
        .into_string()
        .expect("html");
    assert!(html.contains(r#"rel="icon" href="/favicon.svg""#));
}
