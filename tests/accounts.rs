//! Accounts and sessions through the real REST API.

mod common;

use common::TestServer;
use serde_json::json;
use std::time::Duration;

#[test]
fn register_returns_the_new_user() {
    let server = TestServer::start();
    let reply = server.client().post(
        "/api/register",
        &json!({"nickname": "alice", "email": "alice@example.org", "password": "password123"}),
    );
    assert_eq!(reply.status, 201);
    assert_eq!(reply.body["user"]["nickname"], "alice");
    assert_eq!(reply.body["user"]["email"], "alice@example.org");
    assert!(reply.body["user"]["id"].as_i64().is_some());
    assert!(reply.body["user"].get("password_hash").is_none());
    assert!(
        reply
            .content_type
            .is_some_and(|c| c.starts_with("application/json"))
    );
}

#[test]
fn register_rejects_invalid_input_with_400() {
    let server = TestServer::start();
    let client = server.client();
    let cases = [
        json!({"nickname": "al", "email": "a@example.org", "password": "password123"}),
        json!({"nickname": "a".repeat(33), "email": "a@example.org", "password": "password123"}),
        json!({"nickname": "bad name", "email": "a@example.org", "password": "password123"}),
        json!({"nickname": "alice", "email": "no-at-sign", "password": "password123"}),
        json!({"nickname": "alice", "email": "a@example.org", "password": "short"}),
        json!({"nickname": "alice", "email": "a@example.org", "password": "p".repeat(129)}),
        json!({"nickname": "alice", "email": "a@example.org"}),
        json!({"nickname": 5, "email": "a@example.org", "password": "password123"}),
    ];
    for body in cases {
        let reply = client.post("/api/register", &body);
        assert_eq!(reply.status, 400, "{body} -> {}", reply.body);
        assert!(reply.body["error"].is_string());
    }
    let reply = client.request("POST", "/api/register", Some("{not json"));
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["error"]
            .as_str()
            .is_some_and(|e| e.contains("JSON"))
    );
}

#[test]
fn register_rejects_taken_nickname_or_email_case_insensitively() {
    let server = TestServer::start();
    let client = server.client();
    client.register("alice");
    let same_nick = client.post(
        "/api/register",
        &json!({"nickname": "ALICE", "email": "other@example.org", "password": "password123"}),
    );
    assert_eq!(same_nick.status, 409);
    assert_eq!(same_nick.body["error"], "nickname is already taken");
    let same_email = client.post(
        "/api/register",
        &json!({"nickname": "alice2", "email": "Alice@Example.org", "password": "password123"}),
    );
    assert_eq!(same_email.status, 409);
    assert_eq!(same_email.body["error"], "email is already taken");
}

#[test]
fn login_sets_a_secure_session_cookie_and_me_works() {
    let server = TestServer::start();
    let mut client = server.client();
    let id = client.register("alice");
    assert_eq!(client.get("/api/me").status, 401);

    let reply = client.login("alice", "password123");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["user"]["id"], id);
    let cookie = reply.set_cookie.expect("Set-Cookie");
    assert!(cookie.starts_with("session_token="), "{cookie}");
    assert!(cookie.contains("HttpOnly"));
    assert!(cookie.contains("SameSite=Lax"));
    assert!(cookie.contains("Path=/"));
    assert!(!cookie.contains("Secure"));
    // At least 128 bits of token: 64 hex characters here.
    let token = cookie["session_token=".len()..]
        .split(';')
        .next()
        .expect("token");
    assert!(token.len() >= 32);

    let me = client.get("/api/me");
    assert_eq!(me.status, 200);
    assert_eq!(me.body["user"]["nickname"], "alice");

    // Login by email works too, case-insensitively.
    let mut by_email = server.client();
    assert_eq!(
        by_email.login("ALICE@example.org", "password123").status,
        200
    );
}

#[test]
fn secure_cookies_flag_adds_secure() {
    let server = TestServer::start_with(|c| c.secure_cookies = true);
    let mut client = server.client();
    client.register("alice");
    let reply = client.login("alice", "password123");
    assert!(reply.set_cookie.expect("cookie").contains("; Secure"));
}

#[test]
fn unknown_user_and_wrong_password_look_the_same() {
    let server = TestServer::start();
    let mut client = server.client();
    client.register("alice");
    let wrong_password = client.login("alice", "wrong-password");
    let unknown_user = client.login("nobody", "password123");
    assert_eq!(wrong_password.status, 401);
    assert_eq!(unknown_user.status, 401);
    assert_eq!(wrong_password.body, unknown_user.body);
    assert!(wrong_password.set_cookie.is_none());
    assert_eq!(client.get("/api/me").status, 401);
}

#[test]
fn unknown_user_and_wrong_password_take_similar_time() {
    // Both paths run one full Argon2 verification. Samples alternate between
    // the two so that load from parallel tests hits both alike; medians are
    // compared. Without the dummy verification the unknown-user path is
    // about 100x faster, far outside the factor allowed here.
    let server = TestServer::start();
    let mut client = server.client();
    client.register("alice");
    let mut wrong_password = Vec::new();
    let mut unknown_user = Vec::new();
    for _ in 0..9 {
        for (identifier, samples) in [
            ("alice", &mut wrong_password),
            ("nobody", &mut unknown_user),
        ] {
            let start = std::time::Instant::now();
            assert_eq!(client.login(identifier, "wrong-password").status, 401);
            samples.push(start.elapsed());
        }
    }
    let median = |samples: &mut Vec<Duration>| {
        samples.sort();
        samples[samples.len() / 2]
    };
    let (wrong_password, unknown_user) = (median(&mut wrong_password), median(&mut unknown_user));
    let ratio = wrong_password.as_secs_f64() / unknown_user.as_secs_f64();
    assert!(
        (0.25..4.0).contains(&ratio),
        "wrong password {wrong_password:?} vs unknown user {unknown_user:?}"
    );
}

#[test]
fn logout_ends_the_session() {
    let server = TestServer::start();
    let (client, _) = server.user("alice");
    let reply = client.post("/api/logout", &json!({}));
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .set_cookie
            .expect("cookie cleared")
            .contains("Max-Age=0")
    );
    assert_eq!(client.get("/api/me").status, 401);
    assert_eq!(client.post("/api/logout", &json!({})).status, 401);
}

#[test]
fn expired_sessions_are_refused_everywhere() {
    // A zero TTL makes every session expire at once; no waiting needed.
    let server = TestServer::start_with(|c| c.session_ttl = Duration::ZERO);
    let (client, _) = server.user("alice");
    assert!(client.cookie.is_some());
    assert_eq!(client.get("/api/me").status, 401);
    assert_eq!(client.get("/api/users").status, 401);
    assert_eq!(client.get("/api/conversations").status, 401);
    let ws = common::Ws::try_connect(&server.ws_url(), client.cookie.as_deref(), None);
    assert_eq!(common::handshake_status(ws), 401);
}

#[test]
fn forged_cookies_are_refused() {
    let server = TestServer::start();
    let mut client = server.client();
    client.cookie = Some(format!("session_token={}", "a".repeat(64)));
    assert_eq!(client.get("/api/me").status, 401);
    client.cookie = Some("session_token=".into());
    assert_eq!(client.get("/api/me").status, 401);
}

#[test]
fn users_are_listed_by_nickname_with_online_state() {
    let server = TestServer::start();
    let (carol, _) = server.user("carol");
    let (_alice, alice_id) = server.user("Alice");
    let (bob, _) = server.user("bob");
    assert_eq!(server.client().get("/api/users").status, 401);

    // Bob opens a WebSocket: he is online once his connection is registered,
    // which the online_users frame he receives proves.
    let (_bob_ws, _) = common::Ws::connect(&server, &bob);
    let reply = carol.get("/api/users");
    assert_eq!(reply.status, 200);
    let users = reply.body["users"].as_array().expect("users").clone();
    let names: Vec<&str> = users
        .iter()
        .map(|u| u["nickname"].as_str().expect("nickname"))
        .collect();
    assert_eq!(names, ["Alice", "bob", "carol"]);
    assert_eq!(users[0]["id"], alice_id);
    assert_eq!(users[0]["online"], false);
    assert_eq!(users[1]["online"], true);
    assert!(users[0].get("email").is_none(), "emails stay private");
}

#[test]
fn config_and_health_need_no_login() {
    let server = TestServer::start();
    let client = server.client();
    let config = client.get("/api/config");
    assert_eq!(config.status, 200);
    assert_eq!(config.body["ws_url"], server.ws_url());
    let health = client.get("/healthz");
    assert_eq!(health.status, 200);
}

#[test]
fn public_ws_url_is_handed_out_as_configured() {
    let server =
        TestServer::start_with(|c| c.public_ws_url = Some("wss://chat.example.org/ws".into()));
    let config = server.client().get("/api/config");
    assert_eq!(config.body["ws_url"], "wss://chat.example.org/ws");
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let server = TestServer::start();
    let client = server.client();
    let missing = client.get("/api/nope");
    assert_eq!(missing.status, 404);
    assert!(missing.body["error"].is_string());
    let wrong_method = client.get("/api/login");
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.body["error"].is_string());
}

#[test]
fn oversized_bodies_are_refused_with_413() {
    let server = TestServer::start();
    let password = "p".repeat(1024 * 1024);
    let body = json!({"nickname": "alice", "email": "a@example.org", "password": password});
    let reply = server.client().post("/api/register", &body);
    assert_eq!(reply.status, 413);
}
