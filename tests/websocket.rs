//! The WebSocket protocol through real sockets: live delivery, answers to
//! every send, presence, history, bad frames, origins, logout, slow clients,
//! keepalive.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, TwoOnline, Ws, handshake_status, pm};
use serde_json::{Value, json};
use tungstenite::Message;

#[test]
fn two_users_chat_live_with_delivery_answers() {
    let server = TestServer::start();
    let TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob_id,
        mut bob_ws,
        ..
    } = TwoOnline::new(&server);

    alice_ws.send_json(&pm(bob_id, "hello bob", "c-1"));
    let received = bob_ws.recv_type("private_message");
    assert_eq!(received["from_user_id"], alice_id);
    assert_eq!(received["to_user_id"], bob_id);
    assert_eq!(received["nickname"], "alice");
    assert_eq!(received["content"], "hello bob");
    let message_id = received["message_id"].as_i64().expect("message_id");
    assert!(
        received["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let answer = alice_ws.recv_type("message_delivered");
    assert_eq!(answer["message_id"], message_id);
    assert_eq!(answer["to_user_id"], bob_id);
    assert_eq!(answer["client_id"], "c-1");
    assert_eq!(answer["timestamp"], received["timestamp"]);

    bob_ws.send_json(
        &json!({"type": "private_message", "to_user_id": alice_id, "content": "hi alice"}),
    );
    let reply = alice_ws.recv_type("private_message");
    assert_eq!(reply["content"], "hi alice");
    assert_eq!(reply["nickname"], "bob");
    let answer = bob_ws.recv_type("message_delivered");
    assert_eq!(answer["client_id"], Value::Null);

    // Both messages are stored.
    let history = alice.get(&format!("/api/messages?user_id={bob_id}"));
    let contents: Vec<&str> = history.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    assert_eq!(contents, ["hello bob", "hi alice"]);
}

#[test]
fn messages_arrive_in_order_and_every_send_is_answered() {
    let server = TestServer::start();
    let TwoOnline {
        mut alice_ws,
        bob_id,
        mut bob_ws,
        ..
    } = TwoOnline::new(&server);
    const N: usize = 200;
    for i in 0..N {
        alice_ws.send_json(&pm(bob_id, &format!("m{i}"), &format!("c{i}")));
    }
    let mut last_id = 0;
    for i in 0..N {
        let frame = bob_ws.recv_type("private_message");
        assert_eq!(frame["content"], format!("m{i}"));
        let id = frame["message_id"].as_i64().expect("id");
        assert!(id > last_id);
        last_id = id;
    }
    for i in 0..N {
        let answer = alice_ws.recv();
        assert_eq!(answer["type"], "message_delivered", "{answer}");
        assert_eq!(answer["client_id"], format!("c{i}"));
    }
}

#[test]
fn sends_to_offline_users_are_stored_and_reported_failed() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);

    alice_ws.send_json(&pm(bob_id, "are you there?", "c-9"));
    let answer = alice_ws.recv_type("message_failed");
    assert_eq!(answer["error"], "recipient_offline");
    assert_eq!(answer["client_id"], "c-9");
    assert_eq!(answer["to_user_id"], bob_id);
    let message_id = answer["message_id"]
        .as_i64()
        .expect("stored, so it has an id");

    // Bob finds it in history and in his unread count.
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 1);
    let alice_id = alice.get("/api/me").body["user"]["id"].clone();
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    assert_eq!(history.body["messages"][0]["id"], message_id);
}

#[test]
fn rejected_sends_get_an_error_code_and_store_nothing() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);
    let cases = [
        (pm(bob_id, "", "e1"), "invalid", bob_id),
        (pm(bob_id, &"x".repeat(4001), "e2"), "too_long", bob_id),
        (pm(alice_id, "self", "e3"), "invalid", alice_id),
        (pm(987_654, "ghost", "e4"), "unknown_recipient", 987_654),
        (pm(bob_id, "long id", &"c".repeat(65)), "invalid", bob_id),
    ];
    for (frame, code, to) in cases {
        alice_ws.send_json(&frame);
        let answer = alice_ws.recv_type("message_failed");
        assert_eq!(answer["error"], code, "{answer}");
        assert_eq!(answer["to_user_id"], to);
        assert_eq!(answer["client_id"], frame["client_id"]);
        assert!(answer.get("message_id").is_none(), "{answer}");
    }
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 0);
    assert_eq!(
        alice.get("/api/conversations").body["conversations"],
        json!([])
    );
}

#[test]
fn rest_sends_are_delivered_live_like_websocket_sends() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let (mut alice_tab, _) = Ws::connect(&server, &alice);
    let stored = alice.send(bob_id, "via REST");
    let live = bob_ws.recv_type("private_message");
    assert_eq!(live["message_id"], stored["id"]);
    assert_eq!(live["from_user_id"], alice_id);
    assert_eq!(live["content"], "via REST");
    // The sender's open tab sees it too, so all her devices stay in sync.
    let echo = alice_tab.recv_type("private_message");
    assert_eq!(echo["message_id"], stored["id"]);
}

/// Presence is coalesced under load (see `ws::hub`); what each client ends
/// up knowing must not change: everyone but itself, each arrival announced
/// at most once, nobody announced who was already in its `online_users`.
#[test]
fn a_connect_storm_leaves_every_client_with_the_same_exact_online_list() {
    const USERS: usize = 24;
    let server = TestServer::start();
    let users: Vec<_> = (0..USERS)
        .map(|i| server.user(&format!("storm{i}")))
        .collect();
    let all: std::collections::BTreeSet<i64> = users.iter().map(|(_, id)| *id).collect();
    // Everyone connects at once, then reads until it knows everyone else.
    let start = std::sync::Arc::new(std::sync::Barrier::new(USERS));
    let threads: Vec<_> = users
        .into_iter()
        .map(|(client, me)| {
            let (start, url) = (start.clone(), server.ws_url());
            let all = all.clone();
            std::thread::spawn(move || {
                start.wait();
                let mut ws =
                    Ws::try_connect(&url, client.cookie.as_deref(), None).expect("connect");
                let first = ws.recv_type("online_users");
                let mut online: std::collections::BTreeSet<i64> = first["users"]
                    .as_array()
                    .expect("users")
                    .iter()
                    .map(|u| u["id"].as_i64().expect("id"))
                    .collect();
                assert!(!online.contains(&me), "{me} listed itself");
                let others: std::collections::BTreeSet<i64> =
                    all.iter().copied().filter(|id| *id != me).collect();
                while online != others {
                    let (came_online, named) = ws.recv_presence();
                    assert!(came_online, "nobody left, yet {named:?} went offline");
                    for user in named {
                        let id = user["id"].as_i64().expect("id");
                        assert_ne!(id, me, "{me} was told it came online");
                        assert!(
                            online.insert(id),
                            "{me} was told twice that {id} came online"
                        );
                    }
                }
                ws // kept open until every client is done
            })
        })
        .collect();
    let sockets: Vec<Ws> = threads
        .into_iter()
        .map(|t| t.join().expect("client thread"))
        .collect();
    assert_eq!(sockets.len(), USERS);
}

#[test]
fn a_user_who_comes_and_goes_quickly_ends_offline_for_everyone() {
    // Presence changes close together are sent together, each user once
    // with their latest state. However they are batched, a client that
    // applies every presence frame ends with the server's list.
    let server = TestServer::start();
    let (watcher, watcher_id) = server.user("watcher");
    let (flapper, flapper_id) = server.user("flapper");
    let (late, late_id) = server.user("late");
    let (mut watcher_ws, _) = Ws::connect(&server, &watcher);
    for _ in 0..5 {
        let (mut ws, _) = Ws::connect(&server, &flapper);
        ws.socket.close(None).expect("close");
        // Answered once the hub has forgotten the connection, so each
        // departure is queued before the next arrival.
        assert!(ws.expect_close().is_some());
    }
    let (_late_ws, _) = Ws::connect(&server, &late);

    // `late` came last: once it is announced, everything before it is too.
    let mut online = std::collections::BTreeSet::new();
    while !online.contains(&late_id) {
        let (came_online, users) = watcher_ws.recv_presence();
        let mut named = std::collections::BTreeSet::new();
        for user in &users {
            let id = user["id"].as_i64().expect("id");
            assert!(named.insert(id), "{id} named twice in {users:?}");
            if came_online {
                online.insert(id);
            } else {
                online.remove(&id);
            }
        }
    }
    assert_eq!(online, [late_id].into(), "flapper {flapper_id} left");
    assert_eq!(
        watcher.get("/api/users").body["users"]
            .as_array()
            .expect("users")
            .iter()
            .filter(|u| u["online"] == true)
            .map(|u| u["id"].as_i64().expect("id"))
            .collect::<std::collections::BTreeSet<_>>(),
        [watcher_id, late_id].into(),
        "the REST list agrees (and counts the watcher)"
    );
}

#[test]
fn presence_with_two_tabs_of_one_user() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, carol_id) = server.user("carol");

    let (mut bob_ws, online) = Ws::connect(&server, &bob);
    assert_eq!(online["users"], json!([]));

    let (mut tab1, online) = Ws::connect(&server, &alice);
    assert_eq!(online["users"], json!([{"id": bob_id, "nickname": "bob"}]));
    let came =
        |id, nickname| json!({"type": "user_online", "users": [{"id": id, "nickname": nickname}]});
    let left =
        |id, nickname| json!({"type": "user_offline", "users": [{"id": id, "nickname": nickname}]});
    assert_eq!(bob_ws.recv(), came(alice_id, "alice"));

    // A second tab: alice is not announced again. The next presence frame
    // bob gets names carol only, which proves nothing was sent for alice's
    // second tab.
    let (mut tab2, online) = Ws::connect(&server, &alice);
    assert_eq!(online["users"], json!([{"id": bob_id, "nickname": "bob"}]));
    let (_carol_ws, _) = Ws::connect(&server, &carol);
    assert_eq!(bob_ws.recv(), came(carol_id, "carol"));

    // A message to alice reaches both tabs.
    bob_ws.send_json(&pm(alice_id, "to both tabs", "b1"));
    assert_eq!(tab1.recv_type("private_message")["content"], "to both tabs");
    assert_eq!(tab2.recv_type("private_message")["content"], "to both tabs");
    // A message from one tab is echoed to the other, not to itself.
    tab1.send_json(&pm(bob_id, "from tab1", "t1"));
    assert_eq!(tab2.recv_type("private_message")["content"], "from tab1");
    assert_eq!(tab1.recv_type("message_delivered")["client_id"], "t1");

    // Closing one tab keeps alice online. The server answers our close once
    // the hub has forgotten the tab; then carol leaves, and bob's next
    // presence frame names carol only, not alice.
    tab1.socket.close(None).expect("close");
    assert!(tab1.expect_close().is_some());
    drop(_carol_ws);
    assert_eq!(bob_ws.recv_type("user_offline"), left(carol_id, "carol"));
    assert!(
        bob.get("/api/users").body["users"][0]["online"]
            .as_bool()
            .expect("flag"),
        "alice is still online"
    );

    // Closing the last tab makes alice offline.
    tab2.socket.close(None).expect("close");
    assert_eq!(bob_ws.recv_type("user_offline"), left(alice_id, "alice"));
    assert_eq!(bob.get("/api/users").body["users"][0]["online"], false);
}

#[test]
fn history_over_websocket_uses_the_rest_paging_rules() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let sent: Vec<Value> = (0..25)
        .map(|i| alice.send(bob_id, &format!("h{i}")))
        .collect();
    let (mut ws, _) = Ws::connect(&server, &alice);

    ws.send_json(&json!({"type": "load_history", "to_user_id": bob_id}));
    let page = ws.recv_type("history");
    assert_eq!(page["to_user_id"], bob_id);
    assert_eq!(page["offset"], 0);
    let messages = page["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 20);
    assert_eq!(messages[0], sent[5]);
    assert_eq!(messages[19], sent[24]);

    ws.send_json(&json!({"type": "load_history", "to_user_id": bob_id, "offset": 20, "limit": 10}));
    let page = ws.recv_type("history");
    assert_eq!(page["offset"], 20);
    assert_eq!(page["messages"], json!(sent[0..5]));

    let before = sent[10]["id"].clone();
    ws.send_json(
        &json!({"type": "load_history", "to_user_id": bob_id, "before_id": before, "limit": 3}),
    );
    let page = ws.recv_type("history");
    assert_eq!(page["messages"], json!(sent[7..10]));

    ws.send_json(&json!({"type": "load_history", "to_user_id": bob_id, "limit": 0}));
    assert!(ws.recv_type("error")["error"].as_str().is_some());
    ws.send_json(&json!({"type": "load_history", "to_user_id": bob_id, "offset": -1}));
    assert!(ws.recv_type("error")["error"].as_str().is_some());
    ws.send_json(&json!({"type": "load_history", "to_user_id": 777_777}));
    assert_eq!(ws.recv_type("error")["error"], "unknown user");
}

#[test]
fn bad_frames_get_error_frames_and_the_connection_stays_open() {
    let server = TestServer::start();
    let TwoOnline {
        alice_ws: mut ws,
        bob_id,
        mut bob_ws,
        ..
    } = TwoOnline::new(&server);
    let bad_frames = [
        "not json at all".to_string(),
        "{}".to_string(),
        r#"{"type":"dance"}"#.to_string(),
        r#"{"type":"private_message","to_user_id":"bob","content":"x"}"#.to_string(),
        r#"{"type":"private_message","to_user_id":1}"#.to_string(),
        r#"{"type":"private_message","to_user_id":99999999999999999999999,"content":"x"}"#
            .to_string(),
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
        "\"just a string\"".to_string(),
    ];
    for frame in &bad_frames {
        ws.socket.send(Message::text(frame.clone())).expect("send");
        let answer = ws.recv();
        assert_eq!(answer["type"], "error", "for {frame:.40}: {answer}");
        assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    ws.socket
        .send(Message::binary(vec![1u8, 2, 3]))
        .expect("send binary");
    assert_eq!(ws.recv()["type"], "error");

    // Still open and working.
    ws.send_json(&pm(bob_id, "still here", "ok"));
    assert_eq!(bob_ws.recv_type("private_message")["content"], "still here");
    assert_eq!(ws.recv_type("message_delivered")["client_id"], "ok");
}

#[test]
fn frames_over_64_kib_close_the_connection_with_1009() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (mut ws, _) = Ws::connect(&server, &alice);
    let huge = format!(
        r#"{{"type":"private_message","to_user_id":2,"content":"{}"}}"#,
        "x".repeat(70 * 1024)
    );
    ws.socket.send(Message::text(huge)).expect("send");
    let frame = ws.expect_close().expect("close frame");
    assert_eq!(u16::from(frame.code), 1009);
}

#[test]
fn handshake_checks_cookie_origin_and_path() {
    let server = TestServer::start_with(|c| {
        c.allowed_origins = vec!["https://chat.example.org".into()];
    });
    let (alice, _) = server.user("alice");
    let cookie = alice.cookie.as_deref();
    let url = server.ws_url();
    let port = server.http_port();

    assert_eq!(handshake_status(Ws::try_connect(&url, None, None)), 401);
    assert_eq!(
        handshake_status(Ws::try_connect(&url, Some("session_token=forged"), None)),
        401
    );
    for origin in [
        "https://evil.example.com".to_string(),
        format!("http://localhost:{port}.evil.com"),
        format!("http://localhost:{}", port + 7),
        "null".to_string(),
    ] {
        assert_eq!(
            handshake_status(Ws::try_connect(&url, cookie, Some(&origin))),
            403,
            "{origin}"
        );
    }
    for origin in [
        format!("http://localhost:{port}"),
        format!("http://127.0.0.1:{port}"),
        "https://chat.example.org".to_string(),
    ] {
        let mut ws = Ws::try_connect(&url, cookie, Some(&origin))
            .unwrap_or_else(|e| panic!("{origin} should be allowed: {e}"));
        assert_eq!(ws.recv()["type"], "online_users");
    }
    let wrong_path = url.replace("/ws", "/other");
    assert_eq!(
        handshake_status(Ws::try_connect(&wrong_path, cookie, None)),
        404
    );
}

#[test]
fn logout_closes_the_sessions_websockets_only() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let mut other_device = server.client();
    other_device.login("alice", "password123");
    let (mut ws, _) = Ws::connect(&server, &alice);
    let (mut other_ws, _) = Ws::connect(&server, &other_device);
    let (bob, bob_id) = server.user("bob");
    let (_bob_ws, _) = Ws::connect(&server, &bob); // keeps bob online

    assert_eq!(alice.post("/api/logout", &json!({})).status, 200);
    let frame = ws.expect_close().expect("close frame");
    assert_eq!(u16::from(frame.code), 4001);
    assert_eq!(frame.reason.as_str(), "logged out");

    // The other device's session is untouched.
    other_ws.send_json(&pm(bob_id, "still logged in", "d2"));
    assert_eq!(other_ws.recv_type("message_delivered")["client_id"], "d2");
}

#[test]
fn a_client_that_stops_reading_is_dropped_without_slowing_the_others() {
    // A tiny outbound queue makes the slow client overflow quickly.
    let server = TestServer::start_with(|c| c.outbox_capacity = 8);
    let (slow, slow_id) = server.user("slowpoke");
    let (flooder, _) = server.user("flooder");
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");

    let (mut alice_ws, _) = Ws::connect(&server, &alice);
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let (_slow_ws, _) = Ws::connect(&server, &slow); // never read again
    alice_ws.await_presence(&[bob_id, slow_id], true);

    // Flood the slow client with large messages from another thread until
    // the server drops it.
    let flooding = std::thread::spawn(move || {
        let content = "z".repeat(4000);
        for _ in 0..20_000 {
            let reply = flooder.post(
                "/api/messages",
                &json!({"to_user_id": slow_id, "content": content}),
            );
            assert_eq!(reply.status, 201);
            let users = flooder.get("/api/users").body["users"].clone();
            let slow_online = users
                .as_array()
                .expect("users")
                .iter()
                .any(|u| u["id"] == slow_id && u["online"] == true);
            if !slow_online {
                return true;
            }
        }
        false
    });

    // Meanwhile alice and bob chat at full speed, one round trip at a time.
    let mut worst = Duration::ZERO;
    for i in 0..300 {
        let start = Instant::now();
        alice_ws.send_json(&pm(bob_id, &format!("ping {i}"), &i.to_string()));
        assert_eq!(
            bob_ws.recv_type("private_message")["content"],
            format!("ping {i}")
        );
        assert_eq!(
            alice_ws.recv_type("message_delivered")["client_id"],
            i.to_string()
        );
        worst = worst.max(start.elapsed());
    }
    assert!(
        worst < Duration::from_secs(2),
        "a chat round trip took {worst:?} while another client was stuck"
    );

    assert!(
        flooding.join().expect("flooder"),
        "slow client was never dropped"
    );
    // Everyone else is told it went offline, and its messages are stored.
    alice_ws.await_presence(&[slow_id], false);
    let stored = slow.get("/api/messages/unread").body["unread_count"]
        .as_i64()
        .expect("count");
    assert!(stored > 8);

    // It recovers: a new connection syncs everything it never read.
    let (mut again, _) = Ws::connect(&server, &slow);
    let mut recovered = 0;
    let mut after = 0;
    loop {
        again.send_json(&json!({"type": "sync", "after_id": after, "limit": 500}));
        let page = again.recv_type("sync");
        let messages = page["messages"].as_array().expect("messages");
        recovered += messages.len() as i64;
        if page["has_more"] != true {
            break;
        }
        after = messages.last().and_then(|m| m["id"].as_i64()).expect("id");
    }
    assert_eq!(recovered, stored);
}

#[test]
fn keepalive_pings_readers_and_drops_silent_clients() {
    let server = TestServer::start_with(|c| {
        c.ping_interval = Some(Duration::from_millis(200));
        c.pong_wait = Duration::from_millis(600);
    });
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");

    // A client that reads gets pings, answers them (tungstenite does), and
    // stays connected well past the pong wait.
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let mut pings = 0;
    while pings < 6 {
        if let Message::Ping(_) = bob_ws.socket.read().expect("read") {
            pings += 1;
        }
    }
    bob_ws.socket.flush().expect("flush pong");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);
    alice_ws.send_json(&pm(bob_id, "still alive?", "k"));
    assert_eq!(
        bob_ws.recv_type("private_message")["content"],
        "still alive?"
    );

    // A client that never reads never answers a ping: it is dropped.
    let (carol, carol_id) = server.user("carol");
    let (_silent, _) = Ws::connect(&server, &carol);
    alice_ws.await_presence(&[carol_id], true);
    // Bob stopped reading too, so he may go first; wait for carol.
    alice_ws.await_presence(&[carol_id], false);
}

#[test]
fn presence_comes_as_a_frame_per_user_unless_the_client_asks_for_lists() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, carol_id) = server.user("carol");
    // Alice speaks the protocol as first published: no `?presence=batch`.
    let mut published = Ws::open(&server.ws_url(), alice.cookie.as_deref(), None)
        .unwrap_or_else(|e| panic!("connect: {e}"));
    assert_eq!(published.recv_type("online_users")["users"], json!([]));
    let (bob_ws, _) = Ws::connect(&server, &bob);
    let (carol_ws, _) = Ws::connect(&server, &carol);
    let mut came = [published.recv(), published.recv()];
    came.sort_by_key(|frame| frame["from_user_id"].as_i64());
    assert_eq!(
        came,
        [
            json!({"type": "user_online", "from_user_id": bob_id, "nickname": "bob"}),
            json!({"type": "user_online", "from_user_id": carol_id, "nickname": "carol"}),
        ]
    );
    drop(bob_ws);
    assert_eq!(
        published.recv(),
        json!({"type": "user_offline", "from_user_id": bob_id, "nickname": "bob"})
    );
    drop(carol_ws);
}
