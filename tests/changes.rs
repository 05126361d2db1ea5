//! The stream of committed changes through real clients: every live frame
//! that carries a change carries its `seq`; `sync` with `since` replays the
//! same frames, in order, each exactly once across live frames and pages;
//! read state is a change that reaches every connection of both users.

mod common;

use std::collections::BTreeSet;

use common::{TestServer, TwoOnline, Ws, pm};
use serde_json::{Value, json};

/// Every change of a REST sync from `since`, paged by `limit`.
fn rest_changes(client: &common::Client, since: i64, limit: u32) -> Vec<Value> {
    let mut changes = Vec::new();
    let mut since = since;
    loop {
        let page = client.get(&format!("/api/sync?since={since}&limit={limit}"));
        assert_eq!(page.status, 200, "{}", page.body);
        let batch = page.body["changes"].as_array().expect("changes").clone();
        assert!(batch.len() <= limit as usize);
        changes.extend(batch);
        since = page.body["next_since"].as_i64().expect("next_since");
        if page.body["has_more"] == false {
            return changes;
        }
    }
}

fn seqs(changes: &[Value]) -> Vec<i64> {
    changes
        .iter()
        .map(|c| c["seq"].as_i64().expect("seq"))
        .collect()
}

#[test]
fn live_frames_carry_their_seq_and_sync_replays_the_same_frames() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = TwoOnline::new(&server);
    let (carol, _) = server.user("carol");

    alice_ws.send_json(&pm(bob_id, "one", "c1"));
    let live_one = bob_ws.recv_type("private_message");
    let delivered = alice_ws.recv_type("message_delivered");
    assert_eq!(delivered["seq"], live_one["seq"]);
    carol.send(bob_id, "not alice's business");
    bob.send(alice_id, "two");
    let live_two = alice_ws.recv_type("private_message");
    assert!(live_two["seq"].as_i64() > live_one["seq"].as_i64());

    // Bob reads alice's message: both of them hear it. The watermark is
    // the conversation's newest message (his own reply).
    let read = bob.post("/api/messages/read", &json!({"user_id": alice_id}));
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["marked"], 1);
    assert_eq!(read.body["up_to_id"], live_two["message_id"]);
    let read_by_bob = alice_ws.recv_type("messages_read");
    assert_eq!(
        read_by_bob,
        json!({"type": "messages_read", "reader_id": bob_id, "partner_id": alice_id,
               "up_to_id": live_two["message_id"], "seq": read.body["seq"]})
    );
    assert_eq!(bob_ws.recv_type("messages_read"), read_by_bob);

    // Alice's sync from 0 is exactly what she saw live, byte for byte,
    // carol's message to bob left out.
    let replayed = rest_changes(&alice, 0, 2);
    assert_eq!(replayed.len(), 3, "{replayed:?}");
    assert_eq!(replayed, [live_one, live_two, read_by_bob]);
    let ordered = seqs(&replayed);
    assert!(ordered.windows(2).all(|w| w[0] < w[1]), "{ordered:?}");

    // Over the WebSocket, the same.
    alice_ws.send_json(&json!({"type": "sync", "since": 0, "limit": 10}));
    let page = alice_ws.recv_type("sync");
    assert_eq!(page["since"], 0);
    assert_eq!(page["has_more"], false);
    // Everything in it reached this connection live already.
    assert_eq!(page["changes"], json!([]));
    assert!(page["next_since"].as_i64().is_some());
}

#[test]
fn marking_read_reaches_every_tab_and_the_partner_and_never_goes_back() {
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
    let sent: Vec<i64> = (0..3)
        .map(|i| {
            alice.send(bob_id, &format!("m{i}"))["id"]
                .as_i64()
                .expect("id")
        })
        .collect();

    bob_ws.send_json(&json!({"type": "mark_read", "user_id": alice_id, "up_to_id": sent[1]}));
    let expected = |frame: &Value| {
        assert_eq!(frame["reader_id"], bob_id);
        assert_eq!(frame["partner_id"], alice_id);
        assert_eq!(frame["up_to_id"], sent[1]);
        frame["seq"].as_i64().expect("seq")
    };
    let seq = expected(&bob_ws.recv_type("messages_read"));
    assert_eq!(expected(&bob_tab.recv_type("messages_read")), seq);
    assert_eq!(expected(&alice_ws.recv_type("messages_read")), seq);
    let unread = bob.get("/api/messages/unread");
    assert_eq!(unread.body["unread_count"], 1);

    // Backwards: nothing moves, nothing is said.
    let back = bob.post(
        "/api/messages/read",
        &json!({"user_id": alice_id, "up_to_id": sent[0]}),
    );
    assert_eq!(back.status, 200);
    assert_eq!(back.body["up_to_id"], sent[1]);
    assert_eq!(back.body["seq"], Value::Null);
    // Default: up to the newest. The next frame alice gets is that one.
    let all = bob.post("/api/messages/read", &json!({"user_id": alice_id}));
    assert_eq!(all.body["up_to_id"], sent[2]);
    let frame = alice_ws.recv_type("messages_read");
    assert_eq!(frame["up_to_id"], sent[2]);
    assert!(frame["seq"].as_i64() > Some(seq));

    // Bad input is a clear error.
    bob_ws.send_json(&json!({"type": "mark_read", "user_id": alice_id, "up_to_id": 0}));
    assert_eq!(
        bob_ws.recv_type("error")["error"],
        "up_to_id must be a message id"
    );
    bob_ws.send_json(&json!({"type": "mark_read"}));
    assert_eq!(bob_ws.recv_type("error")["type"], "error");
    let bad = bob.post(
        "/api/messages/read",
        &json!({"user_id": alice_id, "up_to_id": -3}),
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn sync_by_seq_is_exactly_once_while_new_changes_arrive() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);

    // Bob saw up to `last_seen`, then went away; 30 changes came meanwhile.
    let before = rest_changes(&bob, 0, 500);
    let last_seen = seqs(&before).last().copied().unwrap_or(0);
    for i in 0..30 {
        alice.send(bob_id, &format!("missed {i}"));
    }
    // Bob reconnects and syncs in small pages while alice keeps writing and
    // bob's other device marks the conversation read.
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let writer = std::thread::spawn(move || {
        for i in 0..30 {
            alice_ws.send_json(&pm(bob_id, &format!("live {i}"), &format!("l{i}")));
        }
        let mut answered = 0;
        while answered < 30 {
            if alice_ws.recv()["type"] == "message_delivered" {
                answered += 1;
            }
        }
    });
    let marker = std::thread::spawn(move || {
        for _ in 0..5 {
            bob.post("/api/messages/read", &json!({"user_id": alice_id}));
        }
        bob
    });
    let mut received: Vec<i64> = Vec::new();
    bob_ws.send_json(&json!({"type": "sync", "since": last_seen, "limit": 4}));
    let mut syncing = true;
    while syncing {
        let frame = bob_ws.recv();
        match frame["type"].as_str() {
            Some("private_message" | "messages_read") => {
                received.push(frame["seq"].as_i64().expect("seq"));
            }
            Some("sync") => {
                let page = frame["changes"].as_array().expect("changes");
                received.extend(seqs(page));
                if frame["has_more"] == true {
                    let since = frame["next_since"].as_i64().expect("next_since");
                    bob_ws.send_json(&json!({"type": "sync", "since": since, "limit": 4}));
                } else {
                    syncing = false;
                }
            }
            _ => {}
        }
    }
    writer.join().expect("writer");
    let bob = marker.join().expect("marker");
    // Whatever is still on its way live, the store has: compare with it.
    let stored: Vec<i64> = seqs(&rest_changes(&bob, last_seen, 500));
    while received.len() < stored.len() {
        let frame = bob_ws.recv();
        if let Some(seq) = frame["seq"].as_i64() {
            received.push(seq);
        }
    }
    let unique: BTreeSet<i64> = received.iter().copied().collect();
    assert_eq!(unique.len(), received.len(), "a change arrived twice");
    assert_eq!(
        unique.into_iter().collect::<Vec<_>>(),
        stored,
        "every change exactly once"
    );
}

#[test]
fn sync_refuses_bad_cursors_with_a_clear_error() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    for bad in [
        "since=-1",
        "since=x",
        "since=0&limit=0",
        "since=0&limit=501",
        "since=0&after_id=0",
    ] {
        let reply = alice.get(&format!("/api/sync?{bad}"));
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body["error"].is_string());
    }
    assert_eq!(server.client().get("/api/sync?since=0").status, 401);
    let (mut ws, _) = Ws::connect(&server, &alice);
    for frame in [
        json!({"type": "sync"}),
        json!({"type": "sync", "since": 0, "after_id": 0}),
        json!({"type": "sync", "since": -1}),
    ] {
        ws.send_json(&frame);
        assert_eq!(ws.recv_type("error")["type"], "error", "{frame}");
    }
    // The connection still works.
    ws.send_json(&json!({"type": "sync", "since": 0}));
    assert_eq!(ws.recv_type("sync")["changes"], json!([]));
}
