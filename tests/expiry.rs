//! Disappearing messages: a conversation's timer (`PUT
//! /api/conversations/{id}/expiry`), messages deleted for everyone when
//! due (also when the server was stopped then), and `--retention`.

mod common;

use std::time::Duration;

use common::{TestServer, TwoOnline, Ws};
use serde_json::json;

/// A server whose users may set timers of a second or two.
fn server() -> TestServer {
    TestServer::start_with(|c| c.min_expiry = Duration::from_secs(1))
}

fn set_timer(
    client: &common::Client,
    partner: i64,
    seconds: serde_json::Value,
) -> common::HttpReply {
    client.request(
        "PUT",
        &format!("/api/conversations/{partner}/expiry"),
        Some(&json!({ "seconds": seconds }).to_string()),
    )
}

#[test]
fn a_timer_reaches_both_sides_and_its_messages_disappear_when_due() {
    let server = server();
    let mut two = TwoOnline::new(&server);
    let before = two.alice.send(two.bob_id, "kept forever")["id"].clone();
    two.bob_ws.recv_type("private_message");

    let set = set_timer(&two.alice, two.bob_id, json!(2));
    assert_eq!(set.status, 200, "{}", set.body);
    for ws in [&mut two.alice_ws, &mut two.bob_ws] {
        let frame = ws.recv_type("expiry_changed");
        assert_eq!(
            (
                &frame["by_user_id"],
                &frame["partner_id"],
                &frame["seconds"]
            ),
            (&json!(two.alice_id), &json!(two.bob_id), &json!(2))
        );
        assert_eq!(frame["seq"], set.body["seq"]);
    }
    let list = two.bob.get("/api/conversations").body["conversations"][0].clone();
    assert_eq!(list["expiry_seconds"], 2);
    // A client that was away learns of it by syncing.
    let synced = two.bob.get("/api/sync?since=0").body["changes"].clone();
    let timer = synced
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["type"] == "expiry_changed")
        .cloned();
    assert_eq!(timer.expect("the timer change")["seconds"], 2);

    let sent = two.bob.send(two.alice_id, "this will vanish zanzibar");
    assert!(sent["expires_at"].is_string(), "{sent}");
    let id = sent["id"].clone();
    let live = two.alice_ws.recv_type("private_message");
    assert_eq!(live["expires_at"], sent["expires_at"]);
    assert_eq!(
        two.alice.get("/api/messages/unread").body["unread_count"],
        1
    );
    let search = two.alice.get("/api/search?q=zanzibar").body["results"]
        .as_array()
        .map(Vec::len);
    assert_eq!(search, Some(1));

    // At its time it goes for everyone, live.
    for ws in [&mut two.alice_ws, &mut two.bob_ws] {
        let deleted = ws.recv_type("message_deleted");
        assert_eq!(
            (&deleted["message_id"], &deleted["for"]),
            (&id, &json!("everyone"))
        );
    }
    let history = two
        .alice
        .get(&format!("/api/messages?user_id={}", two.bob_id));
    let tomb = common::message_in(&history.body, &id);
    assert_eq!(tomb.expect("tombstone")["content"], "");
    assert_eq!(
        two.alice.get("/api/messages/unread").body["unread_count"],
        0
    );
    assert_eq!(
        two.alice.get("/api/search?q=zanzibar").body["results"],
        json!([])
    );
    // Counted, and the index has followed (the search waited for it).
    let metrics = common::fetch_metrics(&server.base());
    assert_eq!(common::metric(&metrics, "chat_messages_expired_total"), 1.0);
    assert_eq!(
        common::metric(&metrics, "chat_search_index_behind_changes"),
        0.0
    );
    assert_eq!(
        common::metric(&metrics, "chat_search_index_unbuilt_through"),
        0.0
    );
    let kept = common::message_in(&history.body, &before);
    assert_eq!(kept.expect("older message")["content"], "kept forever");

    // Off again: new messages stay.
    assert_eq!(set_timer(&two.bob, two.alice_id, json!(null)).status, 200);
    assert!(two.bob.send(two.alice_id, "stays")["expires_at"].is_null());
}

#[test]
fn what_fell_due_while_the_server_was_stopped_is_gone_before_it_serves() {
    let mut server = server();
    let (alice, _) = server.user("alice");
    let (mut bob, bob_id) = server.user("bob");
    assert_eq!(set_timer(&alice, bob_id, json!(2)).status, 200);
    let secret = "the vault code is 93512 quetzalcoatl";
    let id = alice.send(bob_id, secret)["id"].clone();
    server.shutdown();
    // Only time passing makes it due.
    std::thread::sleep(Duration::from_millis(2100));
    let db = server.config.db.clone();
    server.restart();
    bob.base = server.base(); // a new port; the session is in the database
    let history = bob.get(&format!("/api/messages?user_id={}", 1));
    let message = common::message_in(&history.body, &id);
    assert_eq!(
        message.expect("tombstone")["content"],
        "",
        "deleted before the first request"
    );

    // Nothing of it is left in the file, the search index included.
    server.shutdown();
    let bytes = common::database_bytes(&db);
    for needle in ["quetzalcoatl", "93512"] {
        assert!(!common::holds(&bytes, needle), "{needle} is in the file");
    }
}

#[test]
fn retention_deletes_everything_older_for_everyone() {
    let server = TestServer::start_with(|c| c.retention = Some(Duration::from_secs(1)));
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let id = alice.send(bob_id, "old news")["id"].clone();
    assert_eq!(bob_ws.recv_type("private_message")["message_id"], id);
    assert_eq!(bob_ws.recv_type("message_deleted")["message_id"], id);
    let history = bob.get("/api/messages?user_id=1");
    assert_eq!(history.body["messages"][0]["content"], "");
}

#[test]
fn timers_are_checked() {
    let server = server();
    let (alice, alice_id) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    assert_eq!(set_timer(&alice, bob_id, json!(0)).status, 400);
    assert_eq!(
        set_timer(&alice, bob_id, json!(366 * 24 * 3600)).status,
        400
    );
    assert_eq!(set_timer(&alice, bob_id, json!("soon")).status, 400);
    assert_eq!(set_timer(&alice, alice_id, json!(60)).status, 400);
    assert_eq!(set_timer(&alice, 999, json!(60)).status, 404);
    assert_eq!(set_timer(&server.client(), bob_id, json!(60)).status, 401);
    // The default shortest timer is 30 s.
    let strict = TestServer::start();
    let (carol, _) = strict.user("carol");
    let (_, dave_id) = strict.user("dave");
    assert_eq!(set_timer(&carol, dave_id, json!(10)).status, 400);
    assert_eq!(set_timer(&carol, dave_id, json!(30)).status, 200);
}
