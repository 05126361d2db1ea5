//! Logs never contain passwords, session tokens or message bodies, even at
//! the most verbose level; refusals an operator may act on are logged.

mod common;

use common::{ServerProcess, Ws};
use serde_json::json;

#[test]
fn trace_logs_hold_no_passwords_tokens_or_message_bodies() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(
        &dir.path().join("chat.db"),
        &["--addr", "127.0.0.1:0", "--log-level", "trace"],
    );
    let password = "Pa55word-only-in-requests";
    let secret = "message body that must stay out of logs";
    let mut alice = server.client();
    let register = alice.post(
        "/api/register",
        &json!({"nickname": "alice", "email": "alice@example.org", "password": password}),
    );
    assert_eq!(register.status, 201);
    assert_eq!(alice.login("alice", password).status, 200);
    assert_eq!(
        alice.login("alice", "wrong-password-also-secret").status,
        401
    );
    let token = alice
        .cookie
        .clone()
        .expect("cookie")
        .trim_start_matches("session_token=")
        .to_owned();
    let mut bob = server.client();
    let bob_id = bob.register("bob");
    bob.login("bob", "password123");

    alice.send(bob_id, &format!("{secret} (rest)"));
    let ws_url = alice.get("/api/config").body["ws_url"]
        .as_str()
        .expect("ws_url")
        .to_owned();
    let mut ws = Ws::try_connect(&ws_url, alice.cookie.as_deref(), None).expect("ws");
    ws.send_json(&json!({"type": "private_message", "to_user_id": bob_id, "content": format!("{secret} (ws)")}));
    ws.recv_type("message_failed");
    ws.send_json(&json!({"type": "nonsense", "content": secret}));
    ws.recv_type("error");
    assert_eq!(alice.post("/api/logout", &json!({})).status, 200);

    let (code, log) = server.terminate();
    assert_eq!(code, Some(0));
    assert!(log.len() > 5, "trace logging produced lines: {log:?}");
    for line in &log {
        for needle in [
            password,
            "wrong-password-also-secret",
            token.as_str(),
            secret,
        ] {
            assert!(!line.contains(needle), "log line leaks {needle:?}: {line}");
        }
    }
}

#[test]
fn refused_logins_limits_and_origins_leave_an_audit_line_without_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = ServerProcess::start(
        &dir.path().join("chat.db"),
        &["--addr", "127.0.0.1:0", "--login-free-failures", "1"],
    );
    let mut alice = server.client();
    alice.register("alice");
    assert_eq!(alice.login("alice", "wrong-password-secret").status, 401);
    assert_eq!(alice.login("alice", "wrong-password-secret").status, 401);
    assert_eq!(alice.login("alice", "wrong-password-secret").status, 429);
    let forged = ureq::post(&format!("{}/api/register", server.base()))
        .set("Origin", "https://evil.example")
        .send_json(json!({"nickname": "mallory", "email": "m@x", "password": "password123"}));
    assert!(matches!(forged, Err(ureq::Error::Status(403, _))));

    let (_, log) = server.terminate();
    let audit: Vec<&String> = log.iter().filter(|line| line.contains("audit:")).collect();
    for expected in [
        "refused login: user 1",
        "refused: too many login attempts",
        "refused: origin not allowed",
    ] {
        assert!(
            audit
                .iter()
                .any(|line| line.contains(expected) && line.contains("127.0.0.1")),
            "no audit line with {expected:?}: {audit:#?}"
        );
    }
    for line in &audit {
        assert!(!line.contains("wrong-password-secret"), "{line}");
        assert!(!line.contains("alice"), "the identifier stays out: {line}");
    }
}
