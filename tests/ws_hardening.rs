//! The WebSocket side against a hostile or merely eager client (issue 12):
//! deadlines that cannot be dodged, protocol errors named as such, sessions
//! that end their sockets, and answers for every frame of a client that
//! sends faster than it reads.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{TestServer, Ws, pm};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn a_handshake_sent_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    let server = TestServer::start_with(|c| c.handshake_timeout = Duration::from_secs(1));
    let mut stream = TcpStream::connect(server.ws_host()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let writer = {
        let mut stream = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            // One byte every 200 ms: never a pause long enough for a
            // per-read timeout.
            for byte in b"GET /ws HTTP/1.1\r\nX-Slow: "
                .iter()
                .chain(b"a".repeat(200).iter())
            {
                if stream.write_all(&[*byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
    drop(stream);
    let _ = writer.join();
}

#[test]
fn a_protocol_violation_closes_with_1002() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (mut ws, _) = Ws::connect(&server, &alice);
    // A text frame with RSV1 set and no extension negotiated (RFC 6455
    // section 5.2: "MUST Fail the WebSocket Connection"), masked as a
    // client's must be.
    let frame = [0xC1u8, 0x81, 1, 2, 3, 4, b'x' ^ 1];
    ws.socket.get_mut().write_all(&frame).expect("raw frame");
    let close = ws.expect_close().expect("a close frame");
    assert_eq!(close.code, CloseCode::Protocol, "{close:?}");
}

#[test]
fn a_socket_is_closed_when_its_session_expires() {
    let server = TestServer::start_with(|c| c.session_ttl = Duration::from_secs(2));
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let (mut ws, _) = Ws::connect(&server, &alice);
    let started = Instant::now();
    let close = ws.expect_close().expect("a close frame");
    assert_eq!(close.code, CloseCode::Library(4002), "{close:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // And nothing it might still send is acted on: the session is gone.
    assert_eq!(
        alice.get(&format!("/api/messages?user_id={bob_id}")).status,
        401
    );
}

#[test]
fn a_client_that_pipelines_a_thousand_sends_gets_an_answer_to_each_and_stays_connected() {
    let server = TestServer::start_with(|c| {
        c.message_rate = 10.0;
        c.message_burst = 30;
    });
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let (mut ws, _) = Ws::connect(&server, &alice);
    let count = 1000;
    for n in 0..count {
        let frame = pm(bob_id, "hi", &format!("c{n}")).to_string();
        ws.socket.write(Message::text(frame)).expect("queue frame");
    }
    ws.socket.flush().expect("send all");
    // Most are over the rate: each still gets its answer, in order, and the
    // connection stays open however far the answers lag behind the sends.
    // (Stored ones are answered message_failed "recipient_offline" with
    // their id, as bob is not connected; refused ones carry no id.)
    let (mut stored, mut refused) = (0, 0);
    while stored + refused < count {
        let frame = ws.recv();
        match (frame["type"].as_str(), frame["message_id"].is_number()) {
            (Some("message_delivered" | "message_failed"), true) => stored += 1,
            (Some("message_failed"), false) => {
                assert_eq!(frame["error"], "rate_limited", "{frame}");
                refused += 1;
            }
            _ => {}
        }
    }
    assert!(stored >= 30, "{stored}");
    ws.send_json(&pm(bob_id, "still here?", "last"));
    let last = ws.recv();
    assert!(
        matches!(
            last["type"].as_str(),
            Some("message_failed" | "message_delivered")
        ),
        "{last}"
    );
}

#[test]
fn frames_after_a_logout_are_not_acted_on() {
    let server = TestServer::start();
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut ws, _) = Ws::connect(&server, &alice);
    assert_eq!(
        alice.post("/api/logout", &serde_json::json!({})).status,
        200
    );
    // Frames sent after the logout: none of them is stored.
    for n in 0..50 {
        let frame = pm(bob_id, "after logout", &format!("late{n}")).to_string();
        if ws.socket.write(Message::text(frame)).is_err() {
            break;
        }
    }
    let _ = ws.socket.flush();
    let close = ws.expect_close();
    assert!(
        close
            .as_ref()
            .is_none_or(|c| c.code == CloseCode::Library(4001)),
        "{close:?}"
    );
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    assert_eq!(
        history.body["messages"],
        serde_json::json!([]),
        "{}",
        history.body
    );
}

#[test]
fn a_client_that_trickles_an_unfinished_frame_is_closed_after_the_pong_wait() {
    // Pings every 0.9 s (9/10 of the pong wait).
    let server = TestServer::start_with(|c| c.pong_wait = Duration::from_secs(1));
    let (alice, _) = server.user("alice");
    let (mut ws, _) = Ws::connect(&server, &alice);
    let mut raw = ws.socket.get_ref().try_clone().expect("clone");
    let started = Instant::now();
    let trickler = std::thread::spawn(move || {
        // A masked text frame announcing 1,000 bytes, then one byte every
        // 200 ms: the socket is never silent for long, but no frame ends.
        if raw
            .write_all(&[0x81, 0xFE, 0x03, 0xE8, 1, 2, 3, 4])
            .is_err()
        {
            return;
        }
        while started.elapsed() < Duration::from_secs(10) {
            if raw.write_all(b"x").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // The server's pings are read (and answered, which only adds bytes to
    // the unfinished frame) until it gives up on the connection.
    let _ = ws.expect_close();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
    let _ = trickler.join();
}
