//! Replies, edits and deletions through real clients: each is a change
//! with a `seq` that reaches every connection of both users (a deletion
//! for me: only mine), shows in history and the conversation list, and is
//! caught up by `sync` exactly once and in order. A deletion for everyone
//! takes the text out of the database file.

mod common;

use common::{TestServer, TwoOnline, Ws, database_bytes, holds, pm};
use serde_json::{Value, json};

fn history(client: &common::Client, partner: i64) -> Vec<Value> {
    let reply = client.get(&format!("/api/messages?user_id={partner}&limit=100"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["messages"].as_array().expect("messages").clone()
}

fn message(client: &common::Client, partner: i64, id: &Value) -> Value {
    history(client, partner)
        .into_iter()
        .find(|m| m["id"] == *id)
        .unwrap_or_else(|| panic!("message {id} is not in the history"))
}

#[test]
fn a_reply_carries_an_excerpt_of_its_original_until_the_original_is_deleted() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    let long = "é".repeat(150);
    let original = alice.send(bob_id, &long);
    // Over the WebSocket...
    bob_ws.send_json(&json!({"type": "private_message", "to_user_id": alice_id,
                             "content": "answer", "reply_to_id": original["id"]}));
    // (Alice's own send reached her socket first.)
    let live = loop {
        let frame = alice_ws.recv_type("private_message");
        if frame["from_user_id"] == bob_id {
            break frame;
        }
    };
    let excerpt = "é".repeat(100);
    assert_eq!(
        live["reply_to"],
        json!({"id": original["id"], "sender_id": alice_id, "excerpt": excerpt})
    );
    // ... and over REST, the same.
    let reply = bob.post(
        "/api/messages",
        &json!({"to_user_id": alice_id, "content": "again", "reply_to_id": original["id"]}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["message"]["reply_to"]["excerpt"], excerpt);
    let answer = message(&alice, bob_id, &live["message_id"]);
    assert_eq!(answer["reply_to"], live["reply_to"]);
    assert_eq!(
        message(&alice, bob_id, &original["id"])["reply_to"],
        Value::Null
    );

    // The original deleted for everyone: the excerpt goes, the link stays.
    let deleted = alice.delete(&format!("/api/messages/{}", original["id"]));
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let answer = message(&bob, alice_id, &live["message_id"]);
    assert_eq!(
        answer["reply_to"],
        json!({"id": original["id"], "sender_id": alice_id, "excerpt": null})
    );
}

#[test]
fn a_reply_to_another_conversation_or_a_deleted_message_is_refused_and_stores_nothing() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        ..
    } = TwoOnline::new(&server);
    let (carol, _) = server.user("carol");
    let elsewhere = carol.send(bob_id, "between carol and bob");
    let gone = bob.send(alice_id, "soon gone");
    assert_eq!(
        bob.delete(&format!("/api/messages/{}", gone["id"])).status,
        200
    );
    for bad in [elsewhere["id"].clone(), gone["id"].clone(), json!(999_999)] {
        let reply = alice.post(
            "/api/messages",
            &json!({"to_user_id": bob_id, "content": "x", "reply_to_id": bad}),
        );
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(reply.body["code"], "invalid_reply");
        alice_ws.send_json(&json!({"type": "private_message", "to_user_id": bob_id,
                                   "content": "x", "client_id": "r1", "reply_to_id": bad}));
        let failed = alice_ws.recv_type("message_failed");
        assert_eq!(failed["error"], "invalid_reply");
        assert_eq!(failed["client_id"], "r1");
    }
    assert_eq!(history(&alice, bob_id).len(), 1, "only the tombstone");
}

#[test]
fn an_edit_reaches_both_users_keeps_its_versions_and_follows_the_rules() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    let (mut alice_tab, _) = Ws::connect(&server, &alice);
    let sent = alice.send(bob_id, "helo");
    let id = sent["id"].as_i64().expect("id");

    // REST edit: every connection of both users hears it.
    let edited = alice.patch(&format!("/api/messages/{id}"), &json!({"content": "hello"}));
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["message"]["content"], "hello");
    let edited_at = edited.body["message"]["edited_at"].clone();
    assert!(edited_at.is_string());
    for ws in [&mut alice_ws, &mut alice_tab, &mut bob_ws] {
        let frame = ws.recv_type("message_edited");
        assert_eq!(
            frame,
            json!({"type": "message_edited", "message_id": id, "content": "hello",
                   "edited_at": edited_at, "seq": edited.body["seq"]})
        );
    }
    // WebSocket edit: the change is the answer.
    alice_ws.send_json(&json!({"type": "edit_message", "message_id": id,
                               "content": "hello!", "client_id": "e1"}));
    let frame = alice_ws.recv_type("message_edited");
    assert_eq!(frame["content"], "hello!");
    assert_eq!(bob_ws.recv_type("message_edited")["seq"], frame["seq"]);

    // Both see the current text and every version, oldest first.
    assert_eq!(message(&bob, alice_id, &json!(id))["content"], "hello!");
    for client in [&alice, &bob] {
        let versions = client.get(&format!("/api/messages/{id}/versions"));
        assert_eq!(versions.status, 200, "{}", versions.body);
        let texts: Vec<&str> = versions.body["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|v| v["content"].as_str().expect("content"))
            .collect();
        assert_eq!(texts, ["helo", "hello", "hello!"]);
    }
    // The conversation list shows the current text.
    let list = bob.get("/api/conversations");
    assert_eq!(
        list.body["conversations"][0]["last_message"]["content"],
        "hello!"
    );

    // The rules: only the sender (403), only a message one can see (404),
    // the content rules of a send (400), never a deleted one (409).
    let not_sender = bob.patch(&format!("/api/messages/{id}"), &json!({"content": "mine"}));
    assert_eq!(not_sender.status, 403, "{}", not_sender.body);
    // Over the WebSocket, the database's refusal comes back through the hub.
    bob_ws.send_json(
        &json!({"type": "edit_message", "message_id": id, "content": "mine",
                             "client_id": "b1"}),
    );
    let refused = bob_ws.recv_type("message_failed");
    assert_eq!(
        refused,
        json!({"type": "message_failed", "message_id": id, "action": "edit_message",
               "client_id": "b1", "error": "not_the_sender"})
    );
    let (carol, _) = server.user("carol");
    for path in [format!("/api/messages/{id}"), "/api/messages/424242".into()] {
        let unseen = carol.patch(&path, &json!({"content": "x"}));
        assert_eq!(unseen.status, 404, "{}", unseen.body);
        assert_eq!(unseen.body["error"], "no such message");
    }
    let empty = alice.patch(
        &format!("/api/messages/{id}"),
        &json!({"content": " \u{200B}"}),
    );
    assert_eq!(empty.status, 400, "{}", empty.body);
    let too_long = alice.patch(
        &format!("/api/messages/{id}"),
        &json!({"content": "x".repeat(4001)}),
    );
    assert_eq!(too_long.status, 400, "{}", too_long.body);
    alice_ws.send_json(&json!({"type": "edit_message", "message_id": id, "content": ""}));
    let failed = alice_ws.recv_type("message_failed");
    assert_eq!(
        (failed["action"].as_str(), failed["message_id"].as_i64()),
        (Some("edit_message"), Some(id))
    );
    assert_eq!(alice.delete(&format!("/api/messages/{id}")).status, 200);
    let after = alice.patch(&format!("/api/messages/{id}"), &json!({"content": "back"}));
    assert_eq!(after.status, 409, "{}", after.body);
    assert_eq!(after.body["code"], "deleted");
}

#[test]
fn past_the_edit_window_the_sender_can_neither_edit_nor_delete_for_everyone() {
    let server = TestServer::start_with(|c| c.edit_window = std::time::Duration::from_millis(1));
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let id = alice.send(bob_id, "fixed")["id"].clone();
    // Time passing, not synchronisation: the window is 1 ms.
    std::thread::sleep(std::time::Duration::from_millis(5));
    let edit = alice.patch(&format!("/api/messages/{id}"), &json!({"content": "x"}));
    assert_eq!(
        (edit.status, &edit.body["code"]),
        (403, &json!("edit_window_passed"))
    );
    let delete = alice.delete(&format!("/api/messages/{id}"));
    assert_eq!(delete.status, 403, "{}", delete.body);
    // For me is always allowed, to either side.
    assert_eq!(
        alice.delete(&format!("/api/messages/{id}?for=me")).status,
        200
    );
    assert_eq!(
        bob.delete(&format!("/api/messages/{id}?for=me")).status,
        200
    );
}

#[test]
fn a_deletion_for_everyone_leaves_a_tombstone_and_is_never_unread() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    alice.send(bob_id, "stays");
    let gone = alice.send(bob_id, "oops");
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 2);
    let not_sender = bob.delete(&format!("/api/messages/{}", gone["id"]));
    assert_eq!(not_sender.status, 403, "{}", not_sender.body);

    alice_ws.send_json(&json!({"type": "delete_message", "message_id": gone["id"]}));
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.recv_type("message_deleted");
        assert_eq!(
            (&frame["message_id"], &frame["for"]),
            (&gone["id"], &json!("everyone"))
        );
        assert!(frame["seq"].is_i64());
    }
    let tombstone = message(&bob, alice_id, &gone["id"]);
    assert_eq!(tombstone["content"], "");
    assert!(tombstone["deleted_at"].is_string());
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 1);
    let list = bob.get("/api/conversations");
    assert_eq!(list.body["conversations"][0]["unread_count"], 1);
    assert!(list.body["conversations"][0]["last_message"]["deleted_at"].is_string());
    let again = alice.delete(&format!("/api/messages/{}", gone["id"]));
    assert_eq!(again.status, 409, "{}", again.body);
    let versions = bob.get(&format!("/api/messages/{}/versions", gone["id"]));
    assert_eq!(versions.body["versions"], json!([]));
}

#[test]
fn a_deletion_for_me_hides_the_message_from_me_only() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    let first = alice.send(bob_id, "first");
    let last = alice.send(bob_id, "last");
    bob_ws.recv_type("private_message");
    bob_ws.recv_type("private_message");
    let hidden = bob.delete(&format!("/api/messages/{}?for=me", last["id"]));
    assert_eq!(hidden.status, 200, "{}", hidden.body);
    assert_eq!(hidden.body["for"], "me");
    let frame = bob_ws.recv_type("message_deleted");
    assert_eq!(
        (&frame["for"], &frame["seq"]),
        (&json!("me"), &hidden.body["seq"])
    );

    // Hidden from bob's history, sync, list and unread count...
    assert_eq!(history(&bob, alice_id).len(), 1);
    let synced = bob.get("/api/sync?after_id=0");
    assert_eq!(synced.body["messages"].as_array().map(Vec::len), Some(1));
    let list = bob.get("/api/conversations");
    assert_eq!(
        list.body["conversations"][0]["last_message"]["id"],
        first["id"]
    );
    assert_eq!(list.body["conversations"][0]["unread_count"], 1);
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 1);
    // ... and from anything bob can do to it.
    let react = bob.put(&format!(
        "/api/messages/{}/reactions/%F0%9F%91%8D",
        last["id"]
    ));
    assert_eq!(react.status, 404, "{}", react.body);
    // Alice still has it, and never heard of bob's deletion.
    assert_eq!(history(&alice, bob_id).len(), 2);
    alice_ws.send_json(&pm(bob_id, "after", "a1"));
    let next = alice_ws.recv();
    assert_ne!(next["type"], "message_deleted", "{next}");
    let changes = alice.get("/api/sync?since=0");
    assert!(
        !changes.body["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["type"] == "message_deleted"),
        "{}",
        changes.body
    );
    // Hiding every message hides the conversation from bob's list.
    bob.delete(&format!("/api/messages/{}?for=me", first["id"]));
    let after = history(&bob, alice_id);
    assert_eq!(after.len(), 1, "only alice's newest: {after:?}");
}

#[test]
fn a_client_that_was_away_gets_every_edit_deletion_reaction_and_read_mark_once_in_order() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let ids: Vec<i64> = (0..10)
        .map(|i| {
            let sender = if i % 2 == 0 { &alice } else { &bob };
            let to = if i % 2 == 0 { bob_id } else { alice_id };
            sender.send(to, &format!("message {i}"))["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    let since = bob.get("/api/sync?since=0").body["next_since"]
        .as_i64()
        .expect("next_since");

    // Bob's WebSocket is away. Alice edits her messages twice each, both
    // react to bob's (bob from another device: his own changes count
    // too), three read marks move, and bob sends and deletes five more.
    let mut expected: Vec<(String, i64)> = Vec::new();
    let mine: Vec<i64> = ids.iter().step_by(2).copied().collect();
    for round in 0..2 {
        for id in &mine {
            let r = alice.patch(
                &format!("/api/messages/{id}"),
                &json!({"content": format!("edit {round}")}),
            );
            assert_eq!(r.status, 200, "{}", r.body);
            expected.push(("message_edited".into(), *id));
        }
    }
    let emoji = ["%F0%9F%91%8D", "%E2%9D%A4%EF%B8%8F"];
    for id in ids.iter().skip(1).step_by(2) {
        for e in emoji {
            for who in [&alice, &bob] {
                let r = who.put(&format!("/api/messages/{id}/reactions/{e}"));
                assert_eq!(r.status, 200, "{}", r.body);
                expected.push(("reaction".into(), *id));
            }
        }
    }
    for (i, id) in ids.iter().enumerate().take(3) {
        let reader = if i % 2 == 0 { &bob } else { &alice };
        let partner = if i % 2 == 0 { alice_id } else { bob_id };
        let r = reader.post(
            "/api/messages/read",
            &json!({"user_id": partner, "up_to_id": id}),
        );
        assert!(r.body["seq"].is_i64(), "{}", r.body);
        expected.push(("messages_read".into(), *id));
    }
    // Five deletions for everyone of messages nobody edited or reacted to.
    for i in 0..5 {
        let id = bob.send(alice_id, &format!("to delete {i}"))["id"]
            .as_i64()
            .expect("id");
        expected.push(("private_message".into(), id));
        assert_eq!(bob.delete(&format!("/api/messages/{id}")).status, 200);
        expected.push(("message_deleted".into(), id));
    }

    // Bob comes back and syncs over the WebSocket in small pages.
    let (mut ws, _) = Ws::connect(&server, &bob);
    let mut seen: Vec<Value> = Vec::new();
    let mut since = since;
    loop {
        ws.send_json(&json!({"type": "sync", "since": since, "limit": 7}));
        let page = ws.recv_type("sync");
        seen.extend(page["changes"].as_array().expect("changes").iter().cloned());
        since = page["next_since"].as_i64().expect("next_since");
        if page["has_more"] == false {
            break;
        }
    }
    let got: Vec<(String, i64)> = seen
        .iter()
        .map(|c| {
            let id = c["message_id"].as_i64().or(c["up_to_id"].as_i64());
            (c["type"].as_str().unwrap_or("").to_owned(), id.unwrap_or(0))
        })
        .collect();
    assert_eq!(got, expected);
    let seqs: Vec<i64> = seen
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    // The replayed stored messages of deleted ones carry no text.
    for c in seen.iter().filter(|c| c["type"] == "private_message") {
        assert_eq!(c["content"], "");
        assert!(c["deleted_at"].is_string());
    }
}

#[test]
fn after_a_deletion_for_everyone_the_text_is_nowhere_in_the_database_file() {
    let mut server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let secret = "the-secret-4f9a2c";
    let draft = "earlier-draft-77b1e0";
    let id = alice.send(bob_id, draft)["id"].clone();
    let edited = alice.patch(&format!("/api/messages/{id}"), &json!({"content": secret}));
    assert_eq!(edited.status, 200);
    let reply = bob.post(
        "/api/messages",
        &json!({"to_user_id": alice_id, "content": "ok", "reply_to_id": id}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(
        bob.put(&format!("/api/messages/{id}/reactions/%F0%9F%98%AE"))
            .status,
        200
    );
    let db_path = server.config.db.clone();
    assert!(
        holds(&database_bytes(&db_path), secret),
        "the test must see the text first"
    );

    assert_eq!(alice.delete(&format!("/api/messages/{id}")).status, 200);
    server.shutdown();
    let file = database_bytes(&db_path);
    assert!(!holds(&file, secret), "the text is still in the file");
    assert!(
        !holds(&file, draft),
        "an earlier version is still in the file"
    );
}
