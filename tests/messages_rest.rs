//! Messages over the REST API: sending, paging, unread counts,
//! conversations.

mod common;

use common::{TestServer, ids};
use serde_json::json;

#[test]
fn send_returns_the_stored_message() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let reply = alice.post(
        "/api/messages",
        &json!({"to_user_id": bob_id, "content": "hi bob 👋"}),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let message = &reply.body["message"];
    assert_eq!(message["sender_id"], alice_id);
    assert_eq!(message["receiver_id"], bob_id);
    assert_eq!(message["content"], "hi bob 👋");
    assert_eq!(message["is_read"], false);
    let created_at = message["created_at"].as_str().expect("created_at");
    // RFC 3339, UTC, milliseconds: 2026-11-25T23:18:52.123Z
    assert_eq!(created_at.len(), 24, "{created_at}");
    assert!(created_at.ends_with('Z'));
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
}

#[test]
fn send_rejects_bad_messages() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let cases = [
        (json!({"to_user_id": bob_id, "content": ""}), 400),
        (json!({"to_user_id": bob_id, "content": "   \n"}), 400),
        (
            json!({"to_user_id": bob_id, "content": "x".repeat(4001)}),
            400,
        ),
        (json!({"to_user_id": alice_id, "content": "me"}), 400),
        (json!({"to_user_id": 999_999, "content": "who?"}), 404),
        (json!({"to_user_id": "two", "content": "typed"}), 400),
        (json!({"content": "no recipient"}), 400),
    ];
    for (body, status) in cases {
        let reply = alice.post("/api/messages", &body);
        assert_eq!(reply.status, status, "{body} -> {}", reply.body);
        assert!(reply.body["error"].is_string());
    }
    // 4,000 characters is the limit, counted in characters, not bytes.
    let at_limit = "é".repeat(4000);
    alice.send(bob_id, &at_limit);
    // Nothing of the rejected sends was stored.
    let history = alice.get(&format!("/api/messages?user_id={bob_id}&limit=100"));
    assert_eq!(history.body["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        server
            .client()
            .post(
                "/api/messages",
                &json!({"to_user_id": bob_id, "content": "anon"})
            )
            .status,
        401
    );
}

#[test]
fn history_pages_from_the_newest_end_with_offset_and_before_id() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (_, carol_id) = server.user("carol");
    let alice_id = alice.get("/api/me").body["user"]["id"]
        .as_i64()
        .expect("id");
    let mut sent = Vec::new();
    for i in 0..45 {
        // Both directions, plus noise in another conversation.
        let message = if i % 2 == 0 {
            alice.send(bob_id, &format!("a{i}"))
        } else {
            bob.send(alice_id, &format!("b{i}"))
        };
        sent.push(message["id"].as_i64().expect("id"));
        alice.send(carol_id, "noise");
    }

    let page = |query: &str| {
        let reply = alice.get(&format!("/api/messages?user_id={bob_id}&{query}"));
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        ids(&reply.body["messages"])
    };
    // Default: the newest 20, oldest first.
    assert_eq!(page(""), sent[25..45]);
    assert_eq!(page("limit=20&offset=20"), sent[5..25]);
    assert_eq!(page("limit=20&offset=40"), sent[0..5]);
    assert_eq!(page("limit=20&offset=45"), Vec::<i64>::new());
    // before_id: stable while new messages arrive.
    let first = page("limit=10");
    alice.send(bob_id, "new while scrolling");
    assert_eq!(
        page(&format!("limit=10&before_id={}", first[0])),
        sent[25..35]
    );
    // Bob sees the same conversation.
    let bobs = bob.get(&format!(
        "/api/messages?user_id={alice_id}&limit=5&offset=1"
    ));
    assert_eq!(ids(&bobs.body["messages"]), sent[40..45]);
}

#[test]
fn history_rejects_bad_parameters_with_400() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    for query in [
        "".to_string(),
        "user_id=abc".to_string(),
        format!("user_id={bob_id}&limit=0"),
        format!("user_id={bob_id}&limit=101"),
        format!("user_id={bob_id}&limit=-1"),
        format!("user_id={bob_id}&offset=-5"),
        format!("user_id={bob_id}&offset=x"),
        format!("user_id={bob_id}&before_id=0"),
        format!("user_id={bob_id}&offset=1&before_id=5"),
        format!("user_id={bob_id}&limit=99999999999999999999999"),
    ] {
        let reply = alice.get(&format!("/api/messages?{query}"));
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(reply.body["error"].is_string());
    }
    assert_eq!(alice.get("/api/messages?user_id=424242").status, 404);
    assert_eq!(
        server
            .client()
            .get(&format!("/api/messages?user_id={bob_id}"))
            .status,
        401
    );
}

#[test]
fn equal_timestamps_neither_shuffle_nor_drop_messages_at_page_boundaries() {
    let mut server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let sent: Vec<i64> = (0..30)
        .map(|i| {
            alice.send(bob_id, &format!("m{i}"))["id"]
                .as_i64()
                .expect("id")
        })
        .collect();
    // Give every message the same timestamp, directly in the database file.
    server.shutdown();
    {
        let db = rusqlite::Connection::open(server.config.db.clone()).expect("open db");
        db.execute("UPDATE private_messages SET created_at = 1700000000000", [])
            .expect("update");
    }
    server.restart();
    let mut alice = alice;
    alice.base = server.base();

    for limit in [1, 7, 10, 30] {
        let mut seen = Vec::new();
        let mut before: Option<i64> = None;
        loop {
            let cursor = before.map_or(String::new(), |b| format!("&before_id={b}"));
            let reply = alice.get(&format!(
                "/api/messages?user_id={bob_id}&limit={limit}{cursor}"
            ));
            let page = ids(&reply.body["messages"]);
            if page.is_empty() {
                break;
            }
            before = Some(page[0]);
            seen.splice(0..0, page);
        }
        assert_eq!(seen, sent, "before_id paging, limit {limit}");

        let mut seen = Vec::new();
        for offset in (0..).step_by(limit) {
            let reply = alice.get(&format!(
                "/api/messages?user_id={bob_id}&limit={limit}&offset={offset}"
            ));
            let page = ids(&reply.body["messages"]);
            if page.is_empty() {
                break;
            }
            seen.splice(0..0, page);
        }
        assert_eq!(seen, sent, "offset paging, limit {limit}");
    }
}

#[test]
fn unread_counts_and_conversations_across_three_users() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, carol_id) = server.user("carol");

    bob.send(alice_id, "bob 1");
    bob.send(alice_id, "bob 2");
    carol.send(alice_id, "carol 1");
    let last_to_bob = alice.send(bob_id, "alice to bob");
    carol.send(bob_id, "carol to bob");

    let unread = |client: &common::Client| {
        let reply = client.get("/api/messages/unread");
        assert_eq!(reply.status, 200);
        reply.body["unread_count"].as_i64().expect("count")
    };
    assert_eq!(unread(&alice), 3);
    assert_eq!(unread(&bob), 2);
    assert_eq!(unread(&carol), 0);

    // Alice: bob's conversation is newest (her own reply), then carol's.
    let reply = alice.get("/api/conversations");
    assert_eq!(reply.status, 200);
    let rows = reply.body["conversations"]
        .as_array()
        .expect("rows")
        .clone();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["user_id"], bob_id);
    assert_eq!(rows[0]["nickname"], "bob");
    assert_eq!(rows[0]["online"], false);
    assert_eq!(rows[0]["unread_count"], 2);
    assert_eq!(rows[0]["last_message"], last_to_bob);
    assert_eq!(rows[1]["user_id"], carol_id);
    assert_eq!(rows[1]["unread_count"], 1);
    assert_eq!(rows[1]["last_message"]["content"], "carol 1");

    // Marking bob's messages read clears that conversation only.
    let marked = alice.post("/api/messages/read", &json!({"user_id": bob_id}));
    assert_eq!(marked.status, 200);
    assert_eq!(marked.body["marked"], 2);
    assert_eq!(unread(&alice), 1);
    let again = alice.post("/api/messages/read", &json!({"user_id": bob_id}));
    assert_eq!(again.body["marked"], 0);
    let rows = alice.get("/api/conversations").body["conversations"].clone();
    assert_eq!(rows[0]["unread_count"], 0);
    assert_eq!(rows[1]["unread_count"], 1);
    // Marking does not touch the messages alice sent.
    assert_eq!(unread(&bob), 2);
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    let read_flags: Vec<bool> = history.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["is_read"].as_bool().expect("flag"))
        .collect();
    assert_eq!(read_flags, [true, true, false]);

    // Bob's view, newest first: carol's message is the newest of all.
    let rows = bob.get("/api/conversations").body["conversations"].clone();
    assert_eq!(rows[0]["user_id"], carol_id);
    assert_eq!(rows[1]["user_id"], alice_id);
    assert_eq!(rows[1]["last_message"]["is_read"], false);

    // Bob reads alice's message: both views of that last message say so.
    let marked = bob.post("/api/messages/read", &json!({"user_id": alice_id}));
    assert_eq!(marked.body["marked"], 1);
    let rows = bob.get("/api/conversations").body["conversations"].clone();
    assert_eq!(rows[1]["last_message"]["is_read"], true);
    let rows = alice.get("/api/conversations").body["conversations"].clone();
    assert_eq!(rows[0]["user_id"], bob_id);
    assert_eq!(rows[0]["last_message"]["is_read"], true);

    assert_eq!(
        alice
            .post("/api/messages/read", &json!({"user_id": "x"}))
            .status,
        400
    );
    for path in ["/api/messages/unread", "/api/conversations"] {
        assert_eq!(server.client().get(path).status, 401);
    }
    assert_eq!(
        server
            .client()
            .post("/api/messages/read", &json!({"user_id": bob_id}))
            .status,
        401
    );
}
