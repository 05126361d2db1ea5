//! The delivery contract of docs/GUARANTEES.md, each part through real
//! clients: idempotent sends, sync that misses nothing and repeats nothing,
//! and acknowledged messages surviving a SIGKILL.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Barrier};

use common::{ServerProcess, TestServer, Ws, ids, pm};
use serde_json::{Value, json};

#[test]
fn a_repeated_client_id_over_rest_returns_the_original_and_stores_nothing() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let body = json!({"to_user_id": bob_id, "content": "once", "client_id": "r-1"});
    let first = alice.post("/api/messages", &body);
    assert_eq!(first.status, 201);
    let again = alice.post("/api/messages", &body);
    assert_eq!(again.status, 200, "a repeat creates nothing");
    assert_eq!(again.body["message"], first.body["message"]);
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 1);
}

#[test]
fn a_repeated_client_id_over_websocket_is_answered_with_the_original_id_and_not_redelivered() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    alice_ws.await_presence(&[bob_id], true);

    alice_ws.send_json(&pm(bob_id, "once", "w-1"));
    let first = alice_ws.recv_type("message_delivered");
    alice_ws.send_json(&pm(bob_id, "once", "w-1"));
    let again = alice_ws.recv_type("message_delivered");
    assert_eq!(again["message_id"], first["message_id"]);
    // A REST retry of the same send finds it too.
    let rest = alice.post(
        "/api/messages",
        &json!({"to_user_id": bob_id, "content": "once", "client_id": "w-1"}),
    );
    assert_eq!(rest.status, 200);
    assert_eq!(rest.body["message"]["id"], first["message_id"]);

    // Bob got it once: the next message he sees is the next one sent.
    alice_ws.send_json(&pm(bob_id, "twice", "w-2"));
    assert_eq!(bob_ws.recv_type("private_message")["content"], "once");
    assert_eq!(bob_ws.recv_type("private_message")["content"], "twice");
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 2);
}

#[test]
fn racing_retries_on_two_connections_store_each_send_once() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    const SENDS: usize = 50;
    // Both tabs send the same 50 client_ids at the same moment.
    let barrier = Arc::new(Barrier::new(2));
    let tabs: Vec<_> = (0..2)
        .map(|_| {
            let (mut ws, _) = Ws::connect(&server, &alice);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..SENDS {
                    ws.send_json(&pm(bob_id, &format!("m{i}"), &format!("race-{i}")));
                }
                let mut answers = HashMap::new();
                while answers.len() < SENDS {
                    let frame = ws.recv();
                    if frame["type"] == "message_failed" {
                        let client_id = frame["client_id"].as_str().expect("client_id").to_owned();
                        answers.insert(client_id, frame["message_id"].as_i64().expect("id"));
                    }
                }
                answers
            })
        })
        .collect();
    let answers: Vec<HashMap<String, i64>> =
        tabs.into_iter().map(|t| t.join().expect("tab")).collect();
    assert_eq!(answers[0], answers[1], "both tabs got the same message ids");
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], SENDS);
    let history = bob.get(&format!(
        "/api/messages?user_id={}&limit=100",
        alice.get("/api/me").body["user"]["id"]
    ));
    assert_eq!(
        history.body["messages"].as_array().map(Vec::len),
        Some(SENDS)
    );
}

#[test]
fn rest_sync_pages_through_everything_after_an_id_exactly_once() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, _) = server.user("carol");
    let mut mine = Vec::new();
    for i in 0..25 {
        mine.push(
            alice.send(bob_id, &format!("a{i}"))["id"]
                .as_i64()
                .expect("id"),
        );
        mine.push(
            bob.send(alice_id, &format!("b{i}"))["id"]
                .as_i64()
                .expect("id"),
        );
        carol.send(bob_id, "not alice's"); // other people's messages stay out
    }
    let mut seen: Vec<i64> = Vec::new();
    let mut after = 0;
    loop {
        let page = alice.get(&format!("/api/sync?after_id={after}&limit=7"));
        assert_eq!(page.status, 200, "{}", page.body);
        let page_ids = ids(&page.body["messages"]);
        assert!(page_ids.len() <= 7);
        seen.extend(&page_ids);
        if page.body["has_more"] == false {
            break;
        }
        after = *page_ids.last().expect("a page with more has messages");
    }
    assert_eq!(
        seen, mine,
        "every message to or by alice, in id order, once"
    );
    for bad in [
        "",
        "after_id=-1",
        "after_id=x",
        "after_id=0&limit=0",
        "after_id=0&limit=501",
    ] {
        assert_eq!(alice.get(&format!("/api/sync?{bad}")).status, 400, "{bad}");
    }
    assert_eq!(server.client().get("/api/sync?after_id=0").status, 401);
}

#[test]
fn a_reconnecting_client_gets_each_message_exactly_once_while_new_ones_arrive() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);

    // Bob saw up to `last_seen`, then went away; 30 messages came meanwhile.
    let last_seen = alice.send(bob_id, "before")["id"].as_i64().expect("id");
    let mut expected = BTreeSet::new();
    for i in 0..30 {
        expected.insert(
            alice.send(bob_id, &format!("missed {i}"))["id"]
                .as_i64()
                .expect("id"),
        );
    }

    // Bob reconnects and syncs in small pages while alice keeps writing.
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let writer = std::thread::spawn(move || {
        let mut sent = Vec::new();
        for i in 0..30 {
            alice_ws.send_json(&pm(bob_id, &format!("live {i}"), &format!("l{i}")));
        }
        while sent.len() < 30 {
            let frame = alice_ws.recv();
            if frame["type"] == "message_delivered" {
                sent.push(frame["message_id"].as_i64().expect("id"));
            }
        }
        sent
    });
    let mut received = Vec::new();
    let mut after = last_seen;
    bob_ws.send_json(&json!({"type": "sync", "after_id": after, "limit": 4}));
    let mut syncing = true;
    while syncing || received.len() < 60 {
        let frame = bob_ws.recv();
        match frame["type"].as_str() {
            Some("private_message") => received.push(frame["message_id"].as_i64().expect("id")),
            Some("sync") => {
                let page = ids(&frame["messages"]);
                received.extend(&page);
                if frame["has_more"] == true {
                    after = page.last().copied().unwrap_or(after);
                    bob_ws.send_json(&json!({"type": "sync", "after_id": after, "limit": 4}));
                } else {
                    syncing = false;
                }
            }
            _ => {}
        }
    }
    expected.extend(writer.join().expect("writer"));
    let unique: BTreeSet<i64> = received.iter().copied().collect();
    assert_eq!(
        unique.len(),
        received.len(),
        "no message twice: {received:?}"
    );
    assert_eq!(unique, expected, "no message missed");
}

/// SIGKILL while clients send: every acknowledged message is there after a
/// restart, once; the file is intact; unread counts match the messages.
fn survives_sigkill(durability: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let args = ["--addr", "127.0.0.1:0", "--durability", durability];
    let server = ServerProcess::start(&db, &args);
    let mut senders = Vec::new();
    let mut recipient_ids = Vec::new();
    for n in 0..4 {
        let mut client = server.client();
        client.register(&format!("sender{n}"));
        client.login(&format!("sender{n}"), "password123");
        senders.push(client);
        let mut recipient = server.client();
        recipient_ids.push(recipient.register(&format!("recipient{n}")));
        drop(recipient.login(&format!("recipient{n}"), "password123"));
    }
    let ws_url = senders[0].get("/api/config").body["ws_url"]
        .as_str()
        .expect("ws_url")
        .to_owned();

    // Each sender streams messages and records every acknowledged id; it
    // says so once it has 50, so the kill lands mid-stream.
    let (going, under_way) = std::sync::mpsc::channel();
    let acked: Vec<_> = senders
        .iter()
        .zip(&recipient_ids)
        .map(|(client, &to)| {
            let mut ws = Ws::try_connect(&ws_url, client.cookie.as_deref(), None).expect("ws");
            let going = going.clone();
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for i in 0..100_000 {
                    let frame = pm(to, &format!("m{i}"), &format!("k{i}"));
                    let sent = ws
                        .socket
                        .send(tungstenite::Message::text(frame.to_string()));
                    if sent.is_err() {
                        break;
                    }
                    match ws.socket.read() {
                        Ok(tungstenite::Message::Text(text)) => {
                            let answer: Value = serde_json::from_str(text.as_str()).expect("json");
                            if let Some(id) = answer["message_id"].as_i64() {
                                acked.push((
                                    id,
                                    answer["client_id"].as_str().unwrap_or("").to_owned(),
                                ));
                                if acked.len() == 50 {
                                    let _ = going.send(());
                                }
                            }
                        }
                        _ => break, // the server is gone
                    }
                }
                acked
            })
        })
        .collect();

    for _ in 0..senders.len() {
        under_way
            .recv_timeout(common::RECV_TIMEOUT)
            .expect("every sender got going");
    }
    let status = std::process::Command::new("kill")
        .args(["-KILL", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let acked: Vec<(i64, String)> = acked
        .into_iter()
        .flat_map(|t| t.join().expect("sender"))
        .collect();
    assert!(
        acked.len() > 100,
        "only {} messages were acknowledged",
        acked.len()
    );
    drop(server);

    // Restart on the same file: the file is checked and migrated on open.
    let restarted = ServerProcess::start(&db, &args);
    drop(restarted.terminate());
    let conn = rusqlite::Connection::open(&db).expect("open");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    for (id, client_id) in &acked {
        let copies: i64 = conn
            .query_row(
                "SELECT count(*) FROM private_messages WHERE id = ?1 AND client_id = ?2",
                (id, client_id),
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(copies, 1, "acked message {id} ({client_id})");
    }
    let duplicates: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM private_messages GROUP BY sender_id, client_id HAVING count(*) > 1)",
            [],
            |r| r.get(0),
        )
        .expect("duplicates");
    assert_eq!(duplicates, 0);
    let mismatched: i64 = conn
        .query_row(
            "SELECT count(*) FROM conversations c WHERE c.unread_count <>
               (SELECT count(*) FROM private_messages m
                WHERE m.receiver_id = c.user_id AND m.sender_id = c.partner_id
                  AND m.id > c.last_read_id)",
            [],
            |r| r.get(0),
        )
        .expect("unread check");
    assert_eq!(mismatched, 0, "unread counts match the stored messages");
}

#[test]
fn acknowledged_messages_survive_sigkill_with_normal_durability() {
    survives_sigkill("normal");
}

#[test]
fn acknowledged_messages_survive_sigkill_with_full_durability() {
    survives_sigkill("full");
}
