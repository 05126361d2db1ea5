//! Reactions, typing, read receipts and blocking through real clients.

mod common;

use common::{TestServer, TwoOnline, Ws, pm};
use serde_json::{Value, json};

/// The path of a reaction: the emoji URL-encoded, as a browser sends it.
fn reaction_path(id: &Value, emoji: &str) -> String {
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    format!("/api/messages/{id}/reactions/{encoded}")
}

#[test]
fn reactions_reach_both_users_once_per_emoji_and_user_and_show_on_the_message() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    let sent = alice.send(bob_id, "lunch?");
    let id = sent["id"].clone();

    let thumbs = "👍🏽";
    let put = bob.put(&reaction_path(&id, thumbs));
    assert_eq!(put.status, 200, "{}", put.body);
    for ws in [&mut alice_ws, &mut bob_ws] {
        let frame = ws.recv_type("reaction");
        assert_eq!(
            frame,
            json!({"type": "reaction", "message_id": id, "emoji": thumbs, "user_id": bob_id,
                   "on": true, "seq": put.body["seq"]})
        );
    }
    // Once per user and emoji: a second PUT changes nothing.
    let again = bob.put(&reaction_path(&id, thumbs));
    assert_eq!((again.status, &again.body["seq"]), (200, &Value::Null));
    // Over the WebSocket, a ZWJ sequence.
    let family = "👩‍👩‍👧‍👦";
    alice_ws.send_json(&json!({"type": "react", "message_id": id, "emoji": family, "on": true}));
    assert_eq!(alice_ws.recv_type("reaction")["emoji"], family);
    assert_eq!(alice.put(&reaction_path(&id, thumbs)).status, 200);
    assert_eq!(alice_ws.recv_type("reaction")["user_id"], alice_id);
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    let reactions = &history.body["messages"][0]["reactions"];
    let mut by_emoji: Vec<(String, Vec<i64>)> = reactions
        .as_array()
        .expect("reactions")
        .iter()
        .map(|r| {
            let users = r["user_ids"].as_array().expect("users");
            let mut users: Vec<i64> = users.iter().filter_map(Value::as_i64).collect();
            users.sort_unstable();
            (r["emoji"].as_str().expect("emoji").to_owned(), users)
        })
        .collect();
    by_emoji.sort();
    let mut expected = vec![
        (thumbs.to_owned(), vec![alice_id, bob_id]),
        (family.to_owned(), vec![alice_id]),
    ];
    expected.sort();
    assert_eq!(by_emoji, expected);
    // Taking one back.
    let off = bob.delete(&reaction_path(&id, thumbs));
    assert_eq!(off.status, 200, "{}", off.body);
    let frame = alice_ws.recv_type("reaction");
    assert_eq!(
        (&frame["on"], &frame["user_id"]),
        (&json!(false), &json!(bob_id))
    );
    // Reactions never make a message unread again.
    bob.post("/api/messages/read", &json!({"user_id": alice_id}));
    alice.put(&reaction_path(&id, "🎉"));
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 0);
}

#[test]
fn anything_but_exactly_one_emoji_is_refused_and_a_message_holds_twenty() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        mut alice_ws,
        bob_id,
        ..
    } = TwoOnline::new(&server);
    let id = alice.send(bob_id, "react to me")["id"].clone();
    for bad in ["a", "👍👍", "🏽", "ok", " "] {
        let reply = alice.put(&reaction_path(&id, bad));
        assert_eq!(reply.status, 400, "{bad:?}: {}", reply.body);
        assert_eq!(reply.body["code"], "invalid_emoji");
    }
    alice_ws.send_json(
        &json!({"type": "react", "message_id": id, "emoji": "xx", "on": true,
                               "client_id": "r9"}),
    );
    let failed = alice_ws.recv_type("message_failed");
    assert_eq!(
        (&failed["error"], &failed["action"], &failed["client_id"]),
        (&json!("invalid_emoji"), &json!("react"), &json!("r9"))
    );
    let twenty = [
        "😀", "😂", "😍", "😎", "😭", "😡", "👍", "👎", "👏", "🙏", "🔥", "🎉", "❤️", "💯", "🤔",
        "😮", "😢", "🍕", "🚀", "🌈",
    ];
    for emoji in twenty {
        assert_eq!(alice.put(&reaction_path(&id, emoji)).status, 200, "{emoji}");
    }
    let one_more = alice.put(&reaction_path(&id, "🐙"));
    assert_eq!(
        (one_more.status, &one_more.body["code"]),
        (409, &json!("too_many_reactions"))
    );
    // One of the twenty again is fine (it is not a new emoji).
    assert_eq!(alice.delete(&reaction_path(&id, "😀")).status, 200);
    assert_eq!(alice.put(&reaction_path(&id, "🐙")).status, 200);
}

#[test]
fn typing_reaches_the_partner_and_stops_when_the_typer_sends_or_leaves() {
    let server = TestServer::start();
    let TwoOnline {
        alice_id,
        mut alice_ws,
        bob_id,
        mut bob_ws,
        ..
    } = TwoOnline::new(&server);
    alice_ws.send_json(&json!({"type": "typing", "to_user_id": bob_id, "state": "start"}));
    assert_eq!(
        bob_ws.recv_type("typing"),
        json!({"type": "typing", "from_user_id": alice_id, "state": "start"})
    );
    // Sending ends it: the stop comes before the message.
    alice_ws.send_json(&pm(bob_id, "done typing", "t1"));
    let next = bob_ws.recv();
    assert_eq!(
        next,
        json!({"type": "typing", "from_user_id": alice_id, "state": "stop"})
    );
    assert_eq!(bob_ws.recv()["type"], "private_message");

    // Leaving ends it too (a second later: the rate is one frame a second;
    // the start is held until then, then passed on).
    alice_ws.send_json(&json!({"type": "typing", "to_user_id": bob_id, "state": "start"}));
    assert_eq!(bob_ws.recv_type("typing")["state"], "start");
    drop(alice_ws);
    let stop = bob_ws.recv_type("typing");
    assert_eq!(
        (&stop["from_user_id"], &stop["state"]),
        (&json!(alice_id), &json!("stop"))
    );
}

#[test]
fn a_typing_start_lapses_after_six_seconds() {
    let server = TestServer::start();
    let TwoOnline {
        mut alice_ws,
        bob_id,
        mut bob_ws,
        ..
    } = TwoOnline::new(&server);
    alice_ws.send_json(&json!({"type": "typing", "to_user_id": bob_id, "state": "start"}));
    assert_eq!(bob_ws.recv_type("typing")["state"], "start");
    let started = std::time::Instant::now();
    assert_eq!(bob_ws.recv_type("typing")["state"], "stop");
    let lapsed = started.elapsed();
    assert!(
        lapsed >= std::time::Duration::from_millis(5_500),
        "stopped after {lapsed:?}"
    );
}

#[test]
fn a_typing_flood_is_limited_to_one_frame_a_second_without_errors() {
    let server = TestServer::start();
    let TwoOnline {
        mut alice_ws,
        bob_id,
        mut bob_ws,
        ..
    } = TwoOnline::new(&server);
    for i in 0..200 {
        let state = if i % 2 == 0 { "start" } else { "stop" };
        alice_ws.send_json(&json!({"type": "typing", "to_user_id": bob_id, "state": state}));
    }
    // A message after the flood: everything before it on bob's socket is
    // what the flood produced.
    alice_ws.send_json(&pm(bob_id, "after the flood", "f1"));
    let mut typing = 0;
    loop {
        let frame = bob_ws.recv();
        if frame["type"] == "private_message" {
            break;
        }
        assert_eq!(frame["type"], "typing", "{frame}");
        typing += 1;
    }
    // The first start, and the stop the message brings.
    assert!(typing <= 2, "{typing} typing frames reached bob");
    // Alice got no error for any of them: her next frame is the answer.
    assert_eq!(alice_ws.recv()["type"], "message_delivered");
}

#[test]
fn without_read_receipts_neither_side_learns_how_far_the_other_has_read() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    let (mut bob_tab, _) = Ws::connect(&server, &bob);
    let off = bob.patch("/api/me", &json!({"send_read_receipts": false}));
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.body["user"]["send_read_receipts"], false);
    assert_eq!(bob.get("/api/me").body["user"]["send_read_receipts"], false);

    let to_bob = alice.send(bob_id, "did you read this?");
    let mark = bob.post("/api/messages/read", &json!({"user_id": alice_id}));
    assert!(mark.body["seq"].is_i64());
    // Bob's own tabs hear it; alice does not (her next frame is bob's
    // message below).
    for ws in [&mut bob_ws, &mut bob_tab] {
        assert_eq!(ws.recv_type("messages_read")["seq"], mark.body["seq"]);
    }
    bob.send(alice_id, "yes");
    let next = loop {
        let frame = alice_ws.recv();
        if frame["type"] != "private_message" || frame["from_user_id"] == bob_id {
            break frame;
        }
    };
    assert_eq!(next["type"], "private_message", "{next}");
    let history = alice.get(&format!("/api/messages?user_id={bob_id}"));
    let mine = history.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == to_bob["id"])
        .cloned()
        .expect("alice's message");
    assert_eq!(mine["is_read"], false, "alice must not learn bob read it");
    let changes = alice.get("/api/sync?since=0");
    assert!(
        !changes.body["changes"]
            .as_array()
            .expect("changes")
            .iter()
            .any(|c| c["type"] == "messages_read" && c["reader_id"] == bob_id),
        "{}",
        changes.body
    );
    // Both ways: alice's read marks no longer reach bob either.
    let alice_mark = alice.post("/api/messages/read", &json!({"user_id": bob_id}));
    assert!(alice_mark.body["seq"].is_i64());
    assert_eq!(alice_ws.recv_type("messages_read")["reader_id"], alice_id);
    alice.send(bob_id, "ping");
    let next = bob_ws.recv();
    assert_eq!(next["type"], "private_message", "{next}");
    // On again: read state flows again.
    bob.patch("/api/me", &json!({"send_read_receipts": true}));
    bob.post("/api/messages/read", &json!({"user_id": alice_id}));
    assert_eq!(alice_ws.recv_type("messages_read")["reader_id"], bob_id);
}

#[test]
fn a_blocked_user_can_send_nothing_and_typing_stops_both_ways() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    alice.send(bob_id, "before");
    bob_ws.recv_type("private_message");
    let block = bob.put(&format!("/api/blocks/{alice_id}"));
    assert_eq!(block.status, 200, "{}", block.body);
    let listed = bob.get("/api/blocks");
    assert_eq!(
        listed.body["blocks"],
        json!([{"id": alice_id, "nickname": "alice"}])
    );
    let list = bob.get("/api/conversations");
    assert_eq!(list.body["conversations"][0]["blocked"], true);

    // Refused both ways, with words that do not say why; nothing stored.
    for (from, to) in [(&alice, bob_id), (&bob, alice_id)] {
        let refused = from.post("/api/messages", &json!({"to_user_id": to, "content": "hi"}));
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(refused.body["code"], "recipient_unavailable");
    }
    alice_ws.send_json(&pm(bob_id, "let me in", "b1"));
    let failed = alice_ws.recv_type("message_failed");
    assert_eq!(failed["error"], "recipient_unavailable");
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    assert_eq!(history.body["messages"].as_array().map(Vec::len), Some(1));
    // (The block told bob that alice went offline.)
    bob_ws.await_presence(&[alice_id], false);

    // Typing passes neither way: a typing frame, then a frame that does
    // reach (bob's own read mark echoes to him), shows nothing came first.
    alice_ws.send_json(&json!({"type": "typing", "to_user_id": bob_id, "state": "start"}));
    bob_ws.send_json(&json!({"type": "typing", "to_user_id": alice_id, "state": "start"}));
    bob_ws.send_json(&json!({"type": "mark_read", "user_id": alice_id}));
    let next = bob_ws.recv();
    assert_eq!(next["type"], "messages_read", "{next}");

    // Unblocked: messages pass again.
    assert_eq!(bob.delete(&format!("/api/blocks/{alice_id}")).status, 200);
    assert_eq!(bob.get("/api/blocks").body["blocks"], json!([]));
    alice.send(bob_id, "after");
    let bad = bob.put("/api/blocks/987654");
    assert_eq!(bad.status, 404, "{}", bad.body);
    let me = bob.put(&format!("/api/blocks/{bob_id}"));
    assert_eq!(me.status, 400, "{}", me.body);
}

#[test]
fn users_kept_apart_by_a_block_do_not_see_each_other_online() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        bob_ws,
    } = TwoOnline::new(&server);
    let mut bob_ws = bob_ws;
    let online_for = |client: &common::Client, id: i64| -> Value {
        let users = client.get("/api/users").body["users"].clone();
        users
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["id"] == id)
            .map(|u| u["online"].clone())
            .expect("listed")
    };
    assert_eq!(online_for(&bob, alice_id), true);
    assert_eq!(bob.put(&format!("/api/blocks/{alice_id}")).status, 200);
    // Both are told at once that the other left.
    alice_ws.await_presence(&[bob_id], false);
    bob_ws.await_presence(&[alice_id], false);
    assert_eq!(online_for(&bob, alice_id), false);
    assert_eq!(online_for(&alice, bob_id), false);
    // A new connection of either does not list the other.
    let (mut alice_tab, online) = Ws::connect(&server, &alice);
    assert_eq!(online["users"], json!([]), "{online}");
    // Bob leaving and coming back is not announced to alice as an
    // arrival (a departure may be: it changes nothing for her list).
    drop(bob_ws);
    let (carol, carol_id) = server.user("carol");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let (_carol_ws, _) = Ws::connect(&server, &carol);
    loop {
        let (online, users) = alice_tab.recv_presence();
        if online {
            assert_eq!(users, vec![json!({"id": carol_id, "nickname": "carol"})]);
            break;
        }
    }
    // Unblocked: each is told the other is online.
    assert_eq!(bob.delete(&format!("/api/blocks/{alice_id}")).status, 200);
    alice_ws.await_presence(&[bob_id], true);
    bob_ws.await_presence(&[alice_id], true);
    assert_eq!(online_for(&alice, bob_id), true);
}
