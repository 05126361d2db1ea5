//! Start, stop, restart: data survives, and SIGTERM shuts down cleanly.

mod common;

use common::{ServerProcess, TestServer, Ws};
use serde_json::json;

#[test]
fn restart_keeps_accounts_sessions_and_messages() {
    let mut server = TestServer::start();
    let (mut alice, alice_id) = server.user("alice");
    let (mut bob, bob_id) = server.user("bob");
    let sent: Vec<_> = (0..5)
        .map(|i| alice.send(bob_id, &format!("before restart {i}")))
        .collect();
    let conversations_before = bob.get("/api/conversations").body;

    server.restart();
    alice.base = server.base();
    bob.base = server.base();

    // Sessions survive: no new login needed.
    assert_eq!(alice.get("/api/me").body["user"]["id"], alice_id);
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    assert_eq!(history.body["messages"], json!(sent));
    assert_eq!(bob.get("/api/messages/unread").body["unread_count"], 5);
    assert_eq!(bob.get("/api/conversations").body, conversations_before);
    // Passwords survive too.
    let mut again = server.client();
    assert_eq!(again.login("bob", "password123").status, 200);
    // New messages continue after the old ones.
    let next = alice.send(bob_id, "after restart");
    assert!(next["id"].as_i64() > sent[4]["id"].as_i64());
    // And live delivery works on the new ports.
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    alice.send(bob_id, "live after restart");
    assert_eq!(
        bob_ws.recv_type("private_message")["content"],
        "live after restart"
    );
}

#[test]
fn shutdown_closes_websockets_with_1001() {
    let mut server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (mut ws, _) = Ws::connect(&server, &alice);
    server.shutdown();
    let frame = ws.expect_close().expect("close frame");
    assert_eq!(u16::from(frame.code), 1001);
}

#[test]
fn sigterm_stops_the_binary_cleanly_with_exit_code_0() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    // Port 0: the server logs the real ports it bound.
    let server = ServerProcess::start(&db, &["--addr", "127.0.0.1:0"]);
    let mut client = server.client();
    client.register("alice");
    client.login("alice", "password123");
    let ws_url = client.get("/api/config").body["ws_url"]
        .as_str()
        .expect("ws_url")
        .to_owned();
    let mut ws = Ws::try_connect(&ws_url, client.cookie.as_deref(), None).expect("connect");
    assert_eq!(ws.recv()["type"], "online_users");

    let (exit_code, log) = server.terminate();
    assert_eq!(exit_code, Some(0));
    assert!(
        log.iter().any(|line| line.contains("server stopped")),
        "{log:?}"
    );
    let frame = ws.expect_close().expect("close frame");
    assert_eq!(u16::from(frame.code), 1001);

    // The database was closed cleanly: it opens and checks out fine.
    let db = rusqlite::Connection::open(&db).expect("open");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_database_files_are_readable_by_the_server_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let db = data.join("chat.db");
    let mut server = TestServer::start_with(|c| c.db = db.clone());
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    alice.send(bob_id, "private");
    assert_eq!(mode(&data), 0o700, "the folder it created");
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    // A file an older version left world-readable is tightened at start.
    server.shutdown();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    server.restart();
    assert_eq!(mode(&db), 0o600);
}
