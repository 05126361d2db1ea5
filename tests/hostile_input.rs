//! The table of hostile inputs in docs/GUARANTEES.md, one test each: every
//! one gets a clear error (or is stored verbatim, when it is valid text),
//! no thread dies, and the server keeps serving.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::{Client, TestServer, Ws};
use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// A server, alice with an open socket, bob's id; and a check that the
/// server still answers, run at the end of each test.
struct Setup {
    server: TestServer,
    alice: Client,
    ws: Ws,
    bob: Client,
    bob_id: i64,
}

fn setup() -> Setup {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (ws, _) = Ws::connect(&server, &alice);
    Setup {
        server,
        alice,
        ws,
        bob,
        bob_id,
    }
}

impl Setup {
    fn still_serving(&mut self) {
        assert_eq!(self.alice.get("/api/me").status, 200);
        let (mut ws, _) = Ws::connect(&self.server, &self.alice);
        ws.send_json(&json!({"type": "private_message", "to_user_id": self.bob_id, "content": "ok", "client_id": "alive"}));
        assert_eq!(ws.recv_type("message_failed")["client_id"], "alive");
    }
}

fn raw_text_frame(payload: Vec<u8>, fin: bool, opcode: OpCode) -> Message {
    Message::Frame(Frame::message(payload, opcode, fin))
}

#[test]
fn invalid_utf8_in_a_text_frame_closes_with_1007() {
    let mut s = setup();
    s.ws.socket
        .send(raw_text_frame(
            vec![b'{', 0xff, 0xfe, b'}'],
            true,
            OpCode::Data(Data::Text),
        ))
        .expect("send");
    let close = s.ws.expect_close().expect("close frame");
    assert_eq!(u16::from(close.code), 1007);
    s.still_serving();
}

#[test]
fn binary_frames_get_an_error_frame() {
    let mut s = setup();
    s.ws.socket
        .send(Message::binary(vec![0u8; 100]))
        .expect("send");
    assert_eq!(s.ws.recv()["type"], "error");
    s.still_serving();
}

#[test]
fn fragmented_frames_are_reassembled_and_oversize_ones_close_with_1009() {
    let mut s = setup();
    let text = json!({"type": "private_message", "to_user_id": s.bob_id, "content": "in pieces", "client_id": "frag"})
        .to_string()
        .into_bytes();
    let (a, rest) = text.split_at(10);
    let (b, c) = rest.split_at(10);
    s.ws.socket
        .send(raw_text_frame(a.to_vec(), false, OpCode::Data(Data::Text)))
        .expect("first");
    s.ws.socket
        .send(raw_text_frame(
            b.to_vec(),
            false,
            OpCode::Data(Data::Continue),
        ))
        .expect("middle");
    s.ws.socket
        .send(raw_text_frame(
            c.to_vec(),
            true,
            OpCode::Data(Data::Continue),
        ))
        .expect("last");
    assert_eq!(s.ws.recv_type("message_failed")["client_id"], "frag");
    assert_eq!(
        s.bob.get("/api/messages/unread").body["unread_count"],
        1,
        "stored once"
    );

    // 3 fragments of 30 KiB: each small, together over 64 KiB.
    for (i, opcode) in [Data::Text, Data::Continue, Data::Continue]
        .into_iter()
        .enumerate()
    {
        let sent = s.ws.socket.send(raw_text_frame(
            vec![b'x'; 30 * 1024],
            i == 2,
            OpCode::Data(opcode),
        ));
        if sent.is_err() {
            break; // the server may already have closed
        }
    }
    let close = s.ws.expect_close().expect("close frame");
    assert_eq!(u16::from(close.code), 1009);
    s.still_serving();
}

#[test]
fn json_nested_ten_thousand_deep_is_refused_cleanly() {
    let mut s = setup();
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    s.ws.socket.send(Message::text(deep.clone())).expect("send");
    assert_eq!(s.ws.recv()["type"], "error");
    let object = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    for body in [&deep, &object] {
        assert_eq!(
            s.alice.request("POST", "/api/messages", Some(body)).status,
            400
        );
        assert_eq!(
            s.alice.request("POST", "/api/register", Some(body)).status,
            400
        );
    }
    s.still_serving();
}

#[test]
fn numbers_beyond_i64_are_refused() {
    let mut s = setup();
    let huge = r#"{"type":"private_message","to_user_id":99999999999999999999999,"content":"x"}"#;
    s.ws.socket.send(Message::text(huge)).expect("send");
    assert_eq!(s.ws.recv()["type"], "error");
    let huge_float = r#"{"type":"load_history","to_user_id":1e300}"#;
    s.ws.socket.send(Message::text(huge_float)).expect("send");
    assert_eq!(s.ws.recv()["type"], "error");
    let body = r#"{"to_user_id":18446744073709551616,"content":"x"}"#;
    assert_eq!(
        s.alice.request("POST", "/api/messages", Some(body)).status,
        400
    );
    assert_eq!(
        s.alice
            .get("/api/messages?user_id=18446744073709551616")
            .status,
        400
    );
    s.still_serving();
}

#[test]
fn negative_and_huge_limits_and_offsets_are_refused() {
    let mut s = setup();
    let bob = s.bob_id;
    for query in [
        format!("user_id={bob}&limit=-1"),
        format!("user_id={bob}&limit=1000000"),
        format!("user_id={bob}&offset=-1"),
        format!("user_id={bob}&offset=9223372036854775807"),
        format!("user_id={bob}&before_id=-5"),
    ] {
        assert_eq!(
            s.alice.get(&format!("/api/messages?{query}")).status,
            400,
            "{query}"
        );
    }
    for query in [
        "after_id=-1",
        "after_id=0&limit=-3",
        "after_id=0&limit=99999999999",
    ] {
        assert_eq!(
            s.alice.get(&format!("/api/sync?{query}")).status,
            400,
            "{query}"
        );
    }
    for frame in [
        json!({"type": "load_history", "to_user_id": bob, "limit": -1}),
        json!({"type": "load_history", "to_user_id": bob, "offset": -1}),
        json!({"type": "load_history", "to_user_id": bob, "limit": 1_000_000_000}),
        json!({"type": "sync", "after_id": -1}),
        json!({"type": "sync", "after_id": 0, "limit": 0}),
    ] {
        s.ws.send_json(&frame);
        assert_eq!(s.ws.recv_type("error")["type"], "error", "{frame}");
    }
    s.still_serving();
}

#[test]
fn sql_metacharacters_are_just_text() {
    let mut s = setup();
    let nasty = r#"'; DROP TABLE private_messages; -- " OR 1=1 /* \ %_"#;
    let stored = s.alice.send(s.bob_id, nasty);
    assert_eq!(stored["content"], nasty);
    let history = s.bob.get(&format!(
        "/api/messages?user_id={}",
        stored["sender_id"].as_i64().expect("id")
    ));
    assert_eq!(history.body["messages"][0]["content"], nasty);
    let mut intruder = s.server.client();
    assert_eq!(intruder.login("' OR '1'='1", "' OR '1'='1").status, 401);
    assert_eq!(intruder.login("alice' --", "password123").status, 401);
    let bad_nick = s.server.client().post(
        "/api/register",
        &json!({"nickname": "x'; DROP TABLE users;--", "email": "e@x", "password": "password123"}),
    );
    assert_eq!(bad_nick.status, 400);
    s.still_serving();
}

#[test]
fn nul_and_zero_width_characters_are_stored_verbatim_but_not_in_nicknames() {
    let mut s = setup();
    let text = "a\u{0}b\u{200b}c\u{feff}d\u{202e}e";
    s.ws.send_json(&json!({"type": "private_message", "to_user_id": s.bob_id, "content": text, "client_id": "z"}));
    let answer = s.ws.recv_type("message_failed");
    let id = answer["message_id"].as_i64().expect("stored");
    let alice_id = s.alice.get("/api/me").body["user"]["id"].clone();
    let history = s.bob.get(&format!("/api/messages?user_id={alice_id}"));
    assert_eq!(history.body["messages"][0]["id"], id);
    assert_eq!(history.body["messages"][0]["content"], text);
    for nickname in ["ali\u{200b}ce", "ali\u{0}ce"] {
        let reply = s.server.client().post(
            "/api/register",
            &json!({"nickname": nickname, "email": "z@x", "password": "password123"}),
        );
        assert_eq!(reply.status, 400, "{nickname:?}");
    }
    s.still_serving();
}

#[test]
fn content_made_only_of_invisible_characters_is_refused_on_both_paths() {
    let mut s = setup();
    let invisible = "\u{200b}\u{2060}\u{feff}\u{3164} \u{00a0}\u{fe0f}";
    s.ws.send_json(&json!({"type": "private_message", "to_user_id": s.bob_id, "content": invisible, "client_id": "ghost"}));
    let answer = s.ws.recv_type("message_failed");
    assert_eq!(answer["client_id"], "ghost");
    assert_eq!(answer["error"], "invalid");
    assert!(answer["message_id"].is_null(), "nothing stored: {answer}");
    let reply = s.alice.post(
        "/api/messages",
        &json!({"to_user_id": s.bob_id, "content": invisible}),
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"], "content must not be empty");
    s.still_serving();
}

/// Sends raw bytes, returns what came back before the server closed.
fn raw_exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(common::RECV_TIMEOUT))
        .expect("timeout");
    let _ = stream.write_all(request); // the server may stop reading early
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    answer
}

#[test]
fn megabyte_headers_and_cookies_are_refused() {
    let mut s = setup();
    let big = "a".repeat(1024 * 1024);
    let http_addr = s.server.base().trim_start_matches("http://").to_owned();
    for header in [
        format!("Cookie: session_token={big}"),
        format!("X-Filler: {big}"),
    ] {
        let request =
            format!("GET /api/me HTTP/1.1\r\nHost: x\r\n{header}\r\nConnection: close\r\n\r\n");
        let answer = raw_exchange(&http_addr, request.as_bytes());
        assert!(
            answer.starts_with(b"HTTP/1.1 431"),
            "{:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        );
    }
    // The WebSocket handshake refuses it too: no upgrade, connection closed.
    let ws_addr = s.server.ws_host();
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Cookie: session_token={big}\r\n\r\n"
    );
    let answer = raw_exchange(&ws_addr, request.as_bytes());
    assert!(!answer.starts_with(b"HTTP/1.1 101"));
    s.still_serving();
}

#[test]
fn megabyte_passwords_are_refused_without_hashing() {
    let mut s = setup();
    let password = "p".repeat(1024 * 1024);
    let register = json!({"nickname": "carol", "email": "c@x", "password": password});
    assert_eq!(
        s.server.client().post("/api/register", &register).status,
        413
    );
    let login = json!({"identifier": "alice", "password": password});
    assert_eq!(s.server.client().post("/api/login", &login).status, 413);
    // Just under the body limit, still far over the password rule.
    let login = json!({"identifier": "alice", "password": "p".repeat(60_000)});
    let reply: Value = s.server.client().post("/api/login", &login).body;
    assert_eq!(reply["error"], "invalid nickname, email or password");
    s.still_serving();
}
