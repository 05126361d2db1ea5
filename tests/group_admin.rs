//! Running a server for a group: registration modes, invitations, admins,
//! disabling accounts, password changes and reset links, sessions, and the
//! `chat-server admin` subcommands against a running server.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use chat_server::config::RegistrationMode;
use common::{Client, ServerProcess, TestServer, Ws};
use serde_json::{Value, json};

fn register_body(nickname: &str, invite: Option<&str>) -> Value {
    let mut body = json!({
        "nickname": nickname,
        "email": format!("{nickname}@example.org"),
        "password": "password123",
    });
    if let Some(code) = invite {
        body["invite"] = json!(code);
    }
    body
}

/// Registers and logs in `nickname` with an invitation; returns the client.
fn join(server: &TestServer, nickname: &str, invite: &str) -> (Client, i64) {
    let mut client = server.client();
    let reply = client.post("/api/register", &register_body(nickname, Some(invite)));
    assert_eq!(reply.status, 201, "{}", reply.body);
    client.login(nickname, "password123");
    (client, reply.body["user"]["id"].as_i64().expect("id"))
}

fn invite(admin: &Client, body: &Value) -> String {
    let reply = admin.post("/api/invites", body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["invite"]["code"]
        .as_str()
        .expect("code")
        .to_owned()
}

/// The server as an operator starts it: no `--registration`.
fn default_server() -> TestServer {
    TestServer::start_with(|config| config.registration = None)
}

#[test]
fn the_first_account_is_the_admin_and_registration_then_needs_an_invitation() {
    let server = default_server();
    let anyone = server.client();
    assert_eq!(anyone.get("/api/config").body["registration"], "open");
    let (admin, _) = server.user("alice");
    assert_eq!(admin.get("/api/me").body["user"]["role"], "admin");
    assert_eq!(anyone.get("/api/config").body["registration"], "invite");

    let refused = anyone.post("/api/register", &register_body("bob", None));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["code"], "invite_required");
    let unknown = anyone.post("/api/register", &register_body("bob", Some("NOSUCHCODE")));
    assert_eq!(unknown.status, 403);
    assert_eq!(unknown.body["code"], "invite_unknown");

    let code = invite(&admin, &json!({"uses": 2}));
    let (bob, _) = join(&server, "bob", &code);
    assert_eq!(bob.get("/api/me").body["user"]["role"], "member");
    // A refused registration (a taken nickname) does not use the invitation.
    let taken = anyone.post("/api/register", &register_body("bob", Some(&code)));
    assert_eq!(taken.status, 409);
    join(&server, "carol", &code);
    let used_up = anyone.post("/api/register", &register_body("dave", Some(&code)));
    assert_eq!(used_up.status, 403);
    assert_eq!(used_up.body["code"], "invite_used_up");

    let listed = admin.get("/api/invites");
    assert_eq!(listed.status, 200);
    let row = &listed.body["invites"][0];
    assert_eq!(
        (row["code"].as_str(), row["uses"].as_i64()),
        (Some(&*code), Some(2))
    );
    assert_eq!(row["url"], format!("/?invite={code}"));
    assert_eq!(row["created_by_nickname"], "alice");
}

#[test]
fn an_expired_or_deleted_invitation_is_refused() {
    let server = default_server();
    let (admin, _) = server.user("alice");
    let anyone = server.client();
    let short = invite(&admin, &json!({"expires_in_seconds": 1}));
    let deleted = invite(&admin, &json!({}));
    assert_eq!(admin.delete(&format!("/api/invites/{deleted}")).status, 200);
    assert_eq!(admin.delete(&format!("/api/invites/{deleted}")).status, 404);
    let refused = anyone.post("/api/register", &register_body("bob", Some(&deleted)));
    assert_eq!(refused.body["code"], "invite_unknown");
    // The expiry is a time, so only time passing can show it.
    std::thread::sleep(Duration::from_millis(1100));
    let expired = anyone.post("/api/register", &register_body("bob", Some(&short)));
    assert_eq!(expired.status, 403, "{}", expired.body);
    assert_eq!(expired.body["code"], "invite_expired");
    for bad in [
        json!({"uses": 0}),
        json!({"uses": 1001}),
        json!({"expires_in_seconds": 0}),
    ] {
        let reply = admin.post("/api/invites", &bad);
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert!(reply.body["error"].is_string());
    }
}

#[test]
fn a_one_use_invitation_used_at_once_by_many_creates_exactly_one_account() {
    let server = default_server();
    let (admin, _) = server.user("alice");
    let code = invite(&admin, &json!({"uses": 1}));
    let start = std::sync::Barrier::new(8);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let (server, code, start) = (&server, &code, &start);
                scope.spawn(move || {
                    let client = server.client();
                    start.wait();
                    client
                        .post(
                            "/api/register",
                            &register_body(&format!("racer{i}"), Some(code)),
                        )
                        .status
                })
            })
            .collect();
        racers
            .into_iter()
            .map(|r| r.join().expect("racer"))
            .collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 403),
        "{statuses:?}"
    );
    let users = admin.get("/api/admin/users").body["users"]
        .as_array()
        .expect("users")
        .len();
    assert_eq!(users, 2, "alice and one racer");
}

#[test]
fn explicit_modes_open_and_closed() {
    let open = TestServer::start_with(|c| c.registration = Some(RegistrationMode::Open));
    open.user("alice");
    open.user("bob");
    let closed = TestServer::start_with(|c| c.registration = Some(RegistrationMode::Closed));
    let reply = closed
        .client()
        .post("/api/register", &register_body("alice", None));
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body["code"], "registration_closed");
    assert_eq!(
        closed.client().get("/api/config").body["registration"],
        "closed"
    );
}

#[test]
fn members_are_refused_admin_endpoints_and_invite_only_when_allowed() {
    let server = TestServer::start();
    let (_admin, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    for (method, path) in [
        ("GET", "/api/admin/users".to_owned()),
        ("GET", "/api/admin/stats".to_owned()),
        ("POST", format!("/api/admin/users/{bob_id}/disable")),
        ("POST", format!("/api/admin/users/{bob_id}/enable")),
        ("POST", format!("/api/admin/users/{bob_id}/reset-link")),
        ("POST", "/api/invites".to_owned()),
        ("GET", "/api/invites".to_owned()),
    ] {
        let reply = bob.request(method, &path, (method == "POST").then_some("{}"));
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        assert!(reply.body["error"].is_string());
    }
    let nobody = server.client();
    assert_eq!(nobody.get("/api/admin/users").status, 401);
}

#[test]
fn members_may_invite_with_the_flag_and_see_only_their_own() {
    let server = TestServer::start_with(|c| {
        c.registration = None;
        c.members_can_invite = true;
    });
    let (admin, _) = server.user("alice");
    let code = invite(&admin, &json!({}));
    let (bob, _) = join(&server, "bob", &code);
    let bobs = invite(&bob, &json!({}));
    join(&server, "carol", &bobs);
    let mine = bob.get("/api/invites").body["invites"]
        .as_array()
        .expect("list")
        .clone();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["code"], bobs.as_str());
    assert_eq!(
        admin.get("/api/invites").body["invites"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    // Not someone else's.
    assert_eq!(bob.delete(&format!("/api/invites/{code}")).status, 404);
}

#[test]
fn a_disabled_user_is_closed_within_a_second_refused_at_login_and_kept() {
    let server = TestServer::start();
    let (admin, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    bob.send(alice_id, "before");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);

    let asked = Instant::now();
    let reply = admin.post(&format!("/api/admin/users/{bob_id}/disable"), &json!({}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let frame = bob_ws.expect_close().expect("a close frame");
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(u16::from(frame.code), 4003);

    assert_eq!(bob.get("/api/me").status, 401, "the session ended");
    let mut again = server.client();
    let login = again.login("bob", "password123");
    assert_eq!(login.status, 403, "{}", login.body);
    assert_eq!(login.body["code"], "account_disabled");
    let wrong = again.login("bob", "wrong password");
    assert_eq!(wrong.status, 401, "a wrong password learns nothing");

    let users = admin.get("/api/admin/users").body["users"].clone();
    let row = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == bob_id)
        .cloned();
    assert_eq!(row.expect("bob listed")["disabled"], true);
    // Not in the directory, but the messages stay.
    let directory = admin.get("/api/users").body["users"].clone();
    assert!(
        !directory
            .as_array()
            .expect("users")
            .iter()
            .any(|u| u["id"] == bob_id)
    );
    let history = admin.get(&format!("/api/messages?user_id={bob_id}"));
    assert_eq!(history.body["messages"][0]["content"], "before");

    assert_eq!(
        admin
            .post(&format!("/api/admin/users/{bob_id}/enable"), &json!({}))
            .status,
        200
    );
    assert_eq!(again.login("bob", "password123").status, 200);
    assert_eq!(
        admin
            .post("/api/admin/users/999/disable", &json!({}))
            .status,
        404
    );
    assert_eq!(
        admin
            .post(&format!("/api/admin/users/{alice_id}/disable"), &json!({}))
            .status,
        400
    );
}

#[test]
fn a_reset_link_sets_a_password_once_and_ends_every_session() {
    let server = TestServer::start();
    let (admin, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    let link = admin.post(&format!("/api/admin/users/{bob_id}/reset-link"), &json!({}));
    assert_eq!(link.status, 201, "{}", link.body);
    let token = link.body["token"].as_str().expect("token").to_owned();
    assert_eq!(link.body["url"], format!("/?reset={token}"));

    let anyone = server.client();
    let short = anyone.post(
        "/api/password-reset",
        &json!({"token": token, "new_password": "short"}),
    );
    assert_eq!(short.status, 400, "a bad password does not use the link up");
    let used = anyone.post(
        "/api/password-reset",
        &json!({"token": token, "new_password": "a new password"}),
    );
    assert_eq!(used.status, 200, "{}", used.body);
    assert_eq!(used.body["nickname"], "bob");
    assert_eq!(u16::from(bob_ws.expect_close().expect("close").code), 4001);
    assert_eq!(bob.get("/api/me").status, 401);
    let twice = anyone.post(
        "/api/password-reset",
        &json!({"token": token, "new_password": "another one!"}),
    );
    assert_eq!(twice.status, 400);
    let mut fresh = server.client();
    assert_eq!(fresh.login("bob", "password123").status, 401);
    assert_eq!(fresh.login("bob", "a new password").status, 200);
    let garbage = anyone.post(
        "/api/password-reset",
        &json!({"token": "x", "new_password": "whatever1"}),
    );
    assert_eq!(garbage.status, 400);
}

#[test]
fn changing_the_password_ends_the_other_sessions_only() {
    let server = TestServer::start();
    let (here, _) = server.user("alice");
    let mut elsewhere = server.client();
    elsewhere.login("alice", "password123");
    let (mut elsewhere_ws, _) = Ws::connect(&server, &elsewhere);
    let (mut here_ws, _) = Ws::connect(&server, &here);

    let wrong = here.post(
        "/api/me/password",
        &json!({"current_password": "not it at all", "new_password": "brand new pw"}),
    );
    assert_eq!(wrong.status, 401);
    let changed = here.post(
        "/api/me/password",
        &json!({"current_password": "password123", "new_password": "brand new pw"}),
    );
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        u16::from(elsewhere_ws.expect_close().expect("close").code),
        4001
    );
    assert_eq!(elsewhere.get("/api/me").status, 401);
    assert_eq!(here.get("/api/me").status, 200);
    // This connection is still served.
    here_ws.send_json(&json!({"type": "sync", "since": 0}));
    here_ws.recv_type("sync");
    let mut fresh = server.client();
    assert_eq!(fresh.login("alice", "brand new pw").status, 200);
}

#[test]
fn sessions_are_listed_with_their_place_and_can_be_ended() {
    let server = TestServer::start();
    let (here, _) = server.user("alice");
    let mut phone = server.client();
    phone.login("alice", "password123");
    let (mut phone_ws, _) = Ws::connect(&server, &phone);

    let listed = here.get("/api/sessions");
    assert_eq!(listed.status, 200);
    let sessions = listed.body["sessions"]
        .as_array()
        .expect("sessions")
        .clone();
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["address"], "127.0.0.1");
    assert!(
        current[0]["device"]
            .as_str()
            .is_some_and(|d| d.contains("ureq"))
    );
    let other = sessions
        .iter()
        .find(|s| s["current"] == false)
        .expect("the phone");
    let other_id = other["id"].as_i64().expect("id");

    let bob = server.user("bob").0;
    assert_eq!(
        bob.delete(&format!("/api/sessions/{other_id}")).status,
        404,
        "not bob's"
    );
    assert_eq!(
        here.delete(&format!("/api/sessions/{other_id}")).status,
        200
    );
    assert_eq!(
        u16::from(phone_ws.expect_close().expect("close").code),
        4001
    );
    assert_eq!(phone.get("/api/me").status, 401);

    let mut tablet = server.client();
    tablet.login("alice", "password123");
    let ended = here.delete("/api/sessions");
    assert_eq!(ended.body["ended"], 1);
    assert_eq!(tablet.get("/api/me").status, 401);
    assert_eq!(
        here.get("/api/sessions").body["sessions"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[test]
fn the_admin_sees_users_with_their_last_activity_and_the_numbers() {
    let server = TestServer::start();
    let (admin, _) = server.user("alice");
    let (bob, _) = server.user("bob");
    let never = server.client();
    never.register("carol");
    bob.send(1, "hi");
    let users = admin.get("/api/admin/users").body["users"].clone();
    let by_name = |name: &str| {
        users
            .as_array()
            .expect("users")
            .iter()
            .find(|u| u["nickname"] == name)
            .cloned()
            .expect("listed")
    };
    assert_eq!(by_name("alice")["role"], "admin");
    assert!(by_name("bob")["last_seen_at"].is_string());
    assert_eq!(by_name("bob")["sessions"], 1);
    assert!(by_name("carol")["last_seen_at"].is_null());
    let stats = admin.get("/api/admin/stats");
    assert_eq!(stats.status, 200);
    assert_eq!(stats.body["stats"]["users"], 3);
    assert_eq!(stats.body["stats"]["admins"], 1);
    assert_eq!(stats.body["stats"]["messages"], 1);
    assert!(
        stats.body["stats"]["database_bytes"]
            .as_i64()
            .is_some_and(|b| b > 0)
    );
    let promoted = admin.request(
        "PUT",
        "/api/admin/users/2/role",
        Some(r#"{"role":"admin"}"#),
    );
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(bob.get("/api/admin/users").status, 200);
}

/// Runs `chat-server --db DB admin ARGS...`; its stdout, or a panic with
/// its stderr.
fn admin_command(db: &std::path::Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(db)
        .arg("admin")
        .args(args)
        .output()
        .expect("run chat-server admin");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "admin {args:?} failed: {}{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_admin_subcommands_work_against_a_running_server() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    // As an operator runs it: invitations only, from the first account on.
    let server = ServerProcess::start(&db, &["--addr", "127.0.0.1:0", "--registration", "invite"]);
    let anyone = server.client();
    let refused = anyone.post("/api/register", &register_body("alice", None));
    assert_eq!(refused.status, 403);

    let printed = admin_command(
        &db,
        &[
            "invite",
            "--uses",
            "2",
            "--base-url",
            "https://chat.example.org",
        ],
    );
    let link = printed
        .split_whitespace()
        .find(|word| word.starts_with("https://chat.example.org/?invite="))
        .expect("a link");
    let code = link.rsplit('=').next().expect("code");
    for name in ["alice", "bob"] {
        let reply = anyone.post("/api/register", &register_body(name, Some(code)));
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let mut alice = server.client();
    alice.login("alice", "password123");
    assert_eq!(
        alice.get("/api/me").body["user"]["role"],
        "admin",
        "the first account"
    );
    let mut bob = server.client();
    bob.login("bob", "password123");

    let users = admin_command(&db, &["users"]);
    assert!(
        users.contains("alice") && users.contains("admin"),
        "{users}"
    );
    assert!(
        users
            .lines()
            .any(|l| l.contains("bob") && l.contains("member") && l.contains("active"))
    );

    // Disabled from the shell: the server closes bob's socket by itself.
    let ws_url = format!("ws://{}/ws", ws_addr(&server, &anyone));
    let mut bob_ws = Ws::try_connect(&ws_url, bob.cookie.as_deref(), None).expect("bob connects");
    bob_ws.recv_type("online_users");
    let asked = Instant::now();
    admin_command(&db, &["disable", "bob"]);
    let frame = bob_ws.expect_close().expect("a close frame");
    assert_eq!(u16::from(frame.code), 4003);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(bob.login("bob", "password123").status, 403);
    admin_command(&db, &["enable", "bob"]);
    assert_eq!(bob.login("bob", "password123").status, 200);

    admin_command(&db, &["promote", "bob"]);
    assert_eq!(bob.get("/api/admin/users").status, 200);

    let printed = admin_command(&db, &["reset-password", "bob"]);
    let token = printed
        .split_whitespace()
        .find_map(|word| word.split("/?reset=").nth(1))
        .expect("a reset link");
    let reset = anyone.post(
        "/api/password-reset",
        &json!({"token": token, "new_password": "from the shell"}),
    );
    assert_eq!(reset.status, 200, "{}", reset.body);
    assert_eq!(bob.login("bob", "from the shell").status, 200);

    let unknown = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(&db)
        .args(["admin", "disable", "nobody"])
        .output()
        .expect("run");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no such user"));
}

/// The WebSocket address the server tells clients about.
fn ws_addr(_server: &ServerProcess, client: &Client) -> String {
    let url = client.get("/api/config").body["ws_url"]
        .as_str()
        .expect("ws_url")
        .to_owned();
    url.trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .to_owned()
}
