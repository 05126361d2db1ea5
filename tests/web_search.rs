//! Search in the web client, in a real headless Chromium: the box finds an
//! old message with its matched words marked, and choosing the result
//! opens the conversation scrolled to that message, marked.

mod common;

use common::TestServer;
use common::browser::{Browser, log_in, q, save_screenshot};

#[test]
fn a_search_result_opens_the_conversation_at_the_message() {
    let server = TestServer::start();
    let base = server.base();
    let (_, alice_id) = server.user("alice");
    let (bob, _) = server.user("bob");
    let old = bob.send(alice_id, "Shall we meet at the Café Central on Friday?")["id"]
        .as_i64()
        .expect("id");
    // Far enough back that it is not on the first page, nor the second.
    for i in 0..160 {
        bob.send(alice_id, &format!("later message {i}"));
    }

    let mut page = Browser::launch(1280, 800);
    log_in(&mut page, &base, "alice");
    page.type_into("#search", "cafe central");
    let result = format!("#search-results li[data-message-id=\"{old}\"]");
    page.wait_for(&q(&result), "the result");
    let marks = page.eval(&format!(
        "[...document.querySelectorAll({:?})].map((m) => m.textContent)",
        format!("{result} mark")
    ));
    assert_eq!(marks, serde_json::json!(["Café", "Central"]));
    assert!(
        page.eval(&format!("{}.hidden", q("#lists")))
            .as_bool()
            .expect("bool")
    );
    save_screenshot(&mut page, "13-search");

    page.click(&result);
    let found = format!("#messages [data-message-id=\"{old}\"]");
    page.wait_for(
        &format!("{}?.classList.contains('found')", q(&found)),
        "the message marked",
    );
    let visible = page.eval(&format!(
        r##"(() => {{
            const box = document.querySelector("#messages").getBoundingClientRect();
            const r = {}.getBoundingClientRect();
            return r.top >= box.top && r.bottom <= box.bottom;
        }})()"##,
        q(&found)
    ));
    assert_eq!(visible, true, "scrolled into view");

    // Escape: back to the lists.
    page.click("#search");
    page.press_key("Escape", 27);
    page.wait_for(&format!("!{}.hidden", q("#lists")), "the lists again");
}
