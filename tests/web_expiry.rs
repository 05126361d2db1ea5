//! Disappearing messages in two real headless Chromium sessions: the timer
//! set from the conversation's menu, the notice both sides see, the mark
//! on a disappearing message, and the message vanishing when it expires.

mod common;

use std::time::Duration;

use common::TestServer;
use common::TwoInConversation;
use common::browser::q;
use serde_json::json;

#[test]
fn a_timer_is_announced_and_its_messages_vanish_from_both_pages() {
    let server = TestServer::start_with(|c| c.min_expiry = Duration::from_secs(1));
    let TwoInConversation {
        mut alice,
        mut bob,
        alice_rest,
        bob_rest,
        alice_id: _,
        bob_id,
    } = TwoInConversation::open(&server, "hello");

    // From the menu: one hour, announced on the other side.
    alice.eval(&format!(
        "(() => {{ const s = {}; s.value = '3600'; s.dispatchEvent(new Event('change')); return true; }})()",
        q("#expiry")
    ));
    bob.wait_for(
        &format!(
            "{}.textContent.includes('alice set messages to disappear after 1 hour')",
            q("#notice")
        ),
        "the notice",
    );
    bob.wait_for(
        &format!("{}.value === '3600'", q("#expiry")),
        "the menu follows",
    );
    let listed =
        bob_rest.get("/api/conversations").body["conversations"][0]["expiry_seconds"].clone();
    assert_eq!(listed, json!(3600));

    // Two seconds (not in the menu: set over REST), then a message.
    let set = alice_rest.request(
        "PUT",
        &format!("/api/conversations/{bob_id}/expiry"),
        Some(r#"{"seconds": 2}"#),
    );
    assert_eq!(set.status, 200);
    let id = alice_rest.send(bob_id, "this will vanish")["id"]
        .as_i64()
        .expect("id");
    let node = format!("#messages [data-message-id=\"{id}\"]");
    for page in [&mut alice, &mut bob] {
        page.wait_for(
            &format!("{}?.querySelector('.expires')", q(&node)),
            "the timer mark",
        );
    }
    for page in [&mut alice, &mut bob] {
        page.wait_for(&format!("!{}", q(&node)), "the message gone from the page");
    }
    // The older message stays.
    assert_eq!(
        bob.eval("[...document.querySelectorAll('#messages .bubble')].map((b) => b.textContent)"),
        json!(["hello"])
    );
}
