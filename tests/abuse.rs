//! Limits against abuse, each through real clients: message rate, login
//! back-off, registration rate, cross-site requests, connection caps,
//! handshakes that never finish.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{TestServer, Ws, handshake_status};
use serde_json::json;

#[test]
fn senders_over_the_message_rate_are_told_to_wait_and_nothing_is_stored() {
    let server = TestServer::start_with(|c| {
        c.message_rate = 10.0;
        c.message_burst = 30;
    });
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut ws, _) = Ws::connect(&server, &alice);
    for i in 0..40 {
        ws.send_json(&json!({"type": "private_message", "to_user_id": bob_id, "content": "x", "client_id": format!("c{i}")}));
    }
    let mut accepted = 0;
    let mut limited = Vec::new();
    for _ in 0..40 {
        let answer = ws.recv_type("message_failed");
        if answer["error"] == "rate_limited" {
            assert!(answer.get("message_id").is_none());
            assert!(answer["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
            limited.push(answer["client_id"].as_str().expect("client_id").to_owned());
        } else {
            assert_eq!(answer["error"], "recipient_offline");
            accepted += 1;
        }
    }
    // The burst, plus whatever the rate refilled while they were sent.
    assert!((30..=33).contains(&accepted), "{accepted} accepted");
    assert_eq!(accepted + limited.len(), 40);
    assert_eq!(
        bob.get("/api/messages/unread").body["unread_count"],
        accepted
    );

    // REST shares the same budget: 429 with Retry-After.
    let response = ureq::post(&format!("{}/api/messages", server.base()))
        .set("Cookie", alice.cookie.as_deref().expect("cookie"))
        .send_json(json!({"to_user_id": bob_id, "content": "one more"}));
    match response {
        Err(ureq::Error::Status(429, r)) => {
            let retry: u64 = r
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("Retry-After seconds");
            assert!(retry >= 1);
        }
        other => panic!("expected 429, got {other:?}"),
    }
}

#[test]
fn failed_logins_back_off_per_account_and_logins_are_rate_limited_per_address() {
    let server = TestServer::start_with(|c| {
        c.login_free_failures = 3;
        c.login_max_backoff = Duration::from_secs(60);
    });
    let mut client = server.client();
    client.register("alice");
    for _ in 0..4 {
        assert_eq!(client.login("alice", "wrong password").status, 401);
    }
    // Now backing off: even the right password waits, with Retry-After.
    let blocked = client.login("alice", "password123");
    assert_eq!(blocked.status, 429, "{}", blocked.body);
    assert!(blocked.set_cookie.is_none());

    let server = TestServer::start_with(|c| c.login_rate = 5.0);
    let mut client = server.client();
    client.register("bob");
    for _ in 0..5 {
        assert_eq!(client.login("bob", "password123").status, 200);
    }
    assert_eq!(client.login("bob", "password123").status, 429);
}

#[test]
fn registrations_are_rate_limited_per_address() {
    let server = TestServer::start_with(|c| c.register_rate = 2.0);
    let client = server.client();
    client.register("one");
    client.register("two");
    let third = client.post(
        "/api/register",
        &json!({"nickname": "three", "email": "3@example.org", "password": "password123"}),
    );
    assert_eq!(third.status, 429);
}

#[test]
fn ipv6_clients_count_by_their_64_network() {
    // Behind a proxy, so that the client's address can be any address.
    let server = TestServer::start_with(|c| {
        c.register_rate = 1.0;
        c.trust_proxy = true;
    });
    let register = |n: u32, address: &str| {
        let result = ureq::post(&format!("{}/api/register", server.base()))
            .set("X-Forwarded-For", address)
            .send_json(json!({"nickname": format!("v6user{n}"),
                              "email": format!("v6user{n}@example.org"),
                              "password": "password123"}));
        match result {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(register(1, "2001:db8:aa:1::1"), 201);
    // Another address of the same /64 (a host may take any): the same limit.
    assert_eq!(register(2, "2001:db8:aa:1:ffff:eeee:dddd:cccc"), 429);
    // Another /64 is another network.
    assert_eq!(register(3, "2001:db8:aa:2::1"), 201);
}

#[test]
fn state_changing_requests_from_a_foreign_origin_are_refused() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let post = |origin: &str, path: &str, body: serde_json::Value| {
        let result = ureq::post(&format!("{}{path}", server.base()))
            .set("Cookie", alice.cookie.as_deref().expect("cookie"))
            .set("Origin", origin)
            .send_json(body);
        match result {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    let message = json!({"to_user_id": bob_id, "content": "forged?"});
    assert_eq!(
        post("https://evil.example", "/api/messages", message.clone()),
        403
    );
    assert_eq!(post("null", "/api/messages", message.clone()), 403);
    assert_eq!(post("https://evil.example", "/api/logout", json!({})), 403);
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 0);
    assert_eq!(alice.get("/api/me").status, 200, "the session survived");
    // The page's own origin may.
    let own = format!("http://localhost:{}", server.http_port());
    assert_eq!(post(&own, "/api/messages", message), 201);
}

#[test]
fn connections_are_capped_per_user() {
    let server = TestServer::start_with(|c| c.max_connections_per_user = 2);
    let (alice, _) = server.user("alice");
    let (bob, _) = server.user("bob");
    let (_tab1, _) = Ws::connect(&server, &alice);
    let (_tab2, _) = Ws::connect(&server, &alice);
    let third = Ws::try_connect(&server.ws_url(), alice.cookie.as_deref(), None);
    assert_eq!(handshake_status(third), 429);
    // Other users are not affected.
    let (_bob1, _) = Ws::connect(&server, &bob);
}

#[test]
fn connections_are_capped_in_total_before_any_thread_is_spent() {
    let server = TestServer::start_with(|c| c.max_connections = 3);
    let (alice, _) = server.user("alice");
    let (bob, _) = server.user("bob");
    let (_tab1, _) = Ws::connect(&server, &alice);
    let (_tab2, _) = Ws::connect(&server, &alice);
    let (_bob1, _) = Ws::connect(&server, &bob);
    // Three sockets open: the fourth gets a 503 from the acceptor itself.
    let fourth = Ws::try_connect(&server.ws_url(), bob.cookie.as_deref(), None);
    assert_eq!(handshake_status(fourth), 503);
}

#[test]
fn five_thousand_sockets_are_refused_and_the_server_keeps_serving() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 100;
        // No held socket may time out (and free its slot) during the loop.
        c.handshake_timeout = Duration::from_secs(120);
    });
    let (alice, _) = server.user("alice");
    let addr = server.ws_host();
    let mut sockets = Vec::new();
    let mut refused = 0;
    for _ in 0..5000 {
        let mut socket = TcpStream::connect(&addr).expect("connect");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut head = [0u8; 12];
        if socket.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 503") {
            refused += 1;
        } else {
            sockets.push(socket); // holds one of the 100 slots
        }
    }
    assert_eq!(sockets.len(), 100, "exactly the cap is held");
    assert_eq!(refused, 4900);
    // REST is unaffected.
    assert_eq!(alice.get("/api/me").status, 200);
    // Once the hostile sockets go, a real client gets in.
    drop(sockets);
    let mut ws = connect_once_a_slot_frees(&server, &alice);
    assert_eq!(ws.recv()["type"], "online_users");
}

/// Connects `client`, retrying while the server answers 503: slots free as
/// the server's threads notice closed sockets, an instant after the close.
fn connect_once_a_slot_frees(server: &TestServer, client: &common::Client) -> Ws {
    let deadline = std::time::Instant::now() + common::RECV_TIMEOUT;
    loop {
        match Ws::try_connect(&server.ws_url(), client.cookie.as_deref(), None) {
            Ok(ws) => return ws,
            Err(tungstenite::Error::Http(r)) if r.status() == 503 => {
                assert!(std::time::Instant::now() < deadline, "slot never freed");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_handshake_that_never_finishes_is_dropped_and_frees_its_slot() {
    let server = TestServer::start_with(|c| {
        c.max_connections = 1;
        c.handshake_timeout = Duration::from_millis(300);
    });
    let (alice, _) = server.user("alice");
    let addr = server.ws_host();
    let mut stalled = TcpStream::connect(&addr).expect("connect");
    stalled
        .write_all(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
        .expect("half a request");
    stalled
        .set_read_timeout(Some(common::RECV_TIMEOUT))
        .expect("timeout");
    // The only slot is taken while it stalls.
    let blocked = Ws::try_connect(&server.ws_url(), alice.cookie.as_deref(), None);
    assert_eq!(handshake_status(blocked), 503);
    // The server hangs up on it...
    let mut rest = Vec::new();
    let read = stalled.read_to_end(&mut rest);
    assert!(read.is_ok() || rest.is_empty(), "closed by the server");
    // ...and the slot is free again.
    connect_once_a_slot_frees(&server, &alice);
}

/// Logs in with ureq directly: status, and every `Set-Cookie` pair.
fn login_from(
    server: &TestServer,
    address: &str,
    device: Option<&str>,
    password: &str,
) -> (u16, Vec<String>) {
    let mut request =
        ureq::post(&format!("{}/api/login", server.base())).set("X-Forwarded-For", address);
    if let Some(device) = device {
        request = request.set("Cookie", device);
    }
    let response = match request.send_json(json!({"identifier": "alice", "password": password})) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let cookies = response
        .all("set-cookie")
        .iter()
        .filter_map(|c| c.split(';').next())
        .map(str::to_owned)
        .collect();
    (response.status(), cookies)
}

#[test]
fn a_strangers_guesses_cannot_lock_the_owner_out_of_a_browser_they_used_before() {
    let server = TestServer::start_with(|c| {
        c.login_free_failures = 3;
        c.login_max_backoff = Duration::from_secs(60);
        c.trust_proxy = true; // so that the attacker can seem to rotate addresses
    });
    server.client().register("alice");
    let (status, cookies) = login_from(&server, "10.0.0.1", None, "password123");
    assert_eq!(status, 200);
    let device = cookies
        .iter()
        .find(|c| c.starts_with("device="))
        .expect("a device cookie")
        .clone();

    // Eleven wrong guesses, each from another address.
    for n in 0..11 {
        let (status, _) = login_from(&server, &format!("192.0.2.{n}"), None, "wrong guess");
        assert!(status == 401 || status == 429, "{status}");
    }
    // Strangers now back off on this account, even with the right password...
    let (status, _) = login_from(&server, "198.51.100.7", None, "password123");
    assert_eq!(status, 429);
    // ...but the owner's browser, from any address, is not a stranger.
    let (status, _) = login_from(&server, "203.0.113.9", Some(&device), "password123");
    assert_eq!(status, 200);
    // A cookie stolen for another account, or forged, is a stranger's.
    let forged = device.replace("device=", "device=0");
    let (status, _) = login_from(&server, "198.51.100.8", Some(&forged), "password123");
    assert_eq!(status, 429);
}

#[test]
fn a_login_with_a_huge_identifier_is_refused_without_a_lookup() {
    let server = TestServer::start();
    let client = server.client();
    let started = std::time::Instant::now();
    let reply = client.post(
        "/api/login",
        &json!({"identifier": "a".repeat(60_000), "password": "password123"}),
    );
    assert_eq!(reply.status, 401);
    // No Argon2 verification was spent on it.
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn forms_and_doubled_origins_cannot_post() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let cookie = alice.cookie.as_deref().expect("cookie");
    let status = |result: Result<ureq::Response, ureq::Error>| match result {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    };
    let url = format!("{}/api/messages", server.base());
    let body = format!(r#"{{"to_user_id":{bob_id},"content":"from a form"}}"#);
    // What a plain HTML form can send, without any Origin.
    for content_type in [
        "application/x-www-form-urlencoded",
        "text/plain",
        "multipart/form-data; boundary=x",
    ] {
        let sent = ureq::post(&url)
            .set("Cookie", cookie)
            .set("Content-Type", content_type)
            .send_string(&body);
        assert_eq!(status(sent), 415, "{content_type}");
    }
    // Two Origin headers: which would a check believe? Neither.
    let own = format!("http://localhost:{}", server.http_port());
    let mut raw = TcpStream::connect(("127.0.0.1", server.http_port())).expect("connect");
    write!(
        raw,
        "POST /api/messages HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nOrigin: {own}\r\n\
         Origin: https://evil.example\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut answer = String::new();
    raw.read_to_string(&mut answer).expect("read");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("more than one Origin header"), "{answer}");
    assert_eq!(
        alice.get(&format!("/api/messages?user_id={bob_id}")).body["messages"],
        json!([])
    );
    // JSON with a charset is JSON.
    let sent = ureq::post(&url)
        .set("Cookie", cookie)
        .set("Content-Type", "application/json; charset=utf-8")
        .send_string(&body);
    assert_eq!(status(sent), 201);
}

#[test]
fn metrics_answer_loopback_clients_or_the_bearer_of_the_token_only() {
    let get = |server: &TestServer, forwarded: Option<&str>, token: Option<&str>| {
        let mut request = ureq::get(&format!("{}/metrics", server.base()));
        if let Some(address) = forwarded {
            request = request.set("X-Forwarded-For", address);
        }
        if let Some(token) = token {
            request = request.set("Authorization", &format!("Bearer {token}"));
        }
        match request.call() {
            Ok(r) => r.status(),
            Err(ureq::Error::Status(code, _)) => code,
            Err(e) => panic!("{e}"),
        }
    };
    // Behind a proxy, a visitor from outside is not loopback.
    let server = TestServer::start_with(|c| c.trust_proxy = true);
    assert_eq!(get(&server, None, None), 200);
    assert_eq!(get(&server, Some("203.0.113.5"), None), 403);

    let server = TestServer::start_with(|c| c.metrics_token = Some("s3cret-token".into()));
    assert_eq!(get(&server, None, None), 401);
    assert_eq!(get(&server, None, Some("wrong")), 401);
    assert_eq!(get(&server, None, Some("s3cret-token")), 200);
}
