//! `chat-server backup PATH` against a running server that takes writes:
//! the copy is consistent (`integrity_check`), holds every message
//! acknowledged before the backup started and the files they carry, and a
//! server started on it (the documented restore) serves them.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use common::{ServerProcess, upload};
use serde_json::json;

fn backup_command(db: &std::path::Path, target: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .arg("--db")
        .arg(db)
        .arg("backup")
        .arg(target)
        .output()
        .expect("run chat-server backup")
}

#[test]
fn a_backup_taken_under_load_restores_every_acknowledged_message_and_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let server = ServerProcess::start(&db, &["--addr", "127.0.0.1:0"]);
    let mut alice = server.client();
    alice.register("alice");
    alice.login("alice", "password123");
    let bob_id = server.client().register("bob");
    let photo = b"not really a photo, but bytes to keep".repeat(100);
    let (status, uploaded) = upload(&alice, "notes.txt", &photo, false);
    assert_eq!(status, 201, "{uploaded}");
    let with_file = alice.post(
        "/api/messages",
        &json!({"to_user_id": bob_id, "content": "the notes", "attachment_id": uploaded["attachment"]["id"]}),
    );
    assert_eq!(with_file.status, 201, "{}", with_file.body);

    // A writer that never pauses: every acknowledged id is reported.
    let stop = Arc::new(AtomicBool::new(false));
    let (acked, acks) = mpsc::channel();
    let writer = {
        let (stop, client) = (stop.clone(), alice.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let reply = client.post(
                    "/api/messages",
                    &json!({"to_user_id": bob_id, "content": format!("load {n}")}),
                );
                assert_eq!(reply.status, 201, "{}", reply.body);
                if acked
                    .send(reply.body["message"]["id"].as_i64().expect("id"))
                    .is_err()
                {
                    return;
                }
            }
        })
    };
    // Some load first, then what was acknowledged before the backup starts.
    let mut before: Vec<i64> = (0..50).map(|_| acks.recv().expect("an ack")).collect();
    before.extend(acks.try_iter());
    let target = dir.path().join("backup.db");
    let output = backup_command(&db, &target);
    let during = acks.try_iter().count();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("and 1 files"), "{printed}");
    assert!(during > 0, "the server took writes while the backup ran");

    let copy = rusqlite::Connection::open(&target).expect("open the copy");
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let mut present = copy
        .prepare("SELECT 1 FROM private_messages WHERE id = ?1")
        .expect("query");
    for id in &before {
        assert!(
            present.exists([id]).expect("lookup"),
            "message {id} missing"
        );
    }
    drop(present);
    drop(copy);

    // Never over an existing backup.
    let again = backup_command(&db, &target);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // Restore: a server on the copy serves the messages and the file.
    drop(server);
    let restored = ServerProcess::start(&target, &["--addr", "127.0.0.1:0"]);
    let mut alice = restored.client();
    assert_eq!(alice.login("alice", "password123").status, 200);
    let last = before.last().expect("some load");
    let history = alice.get(&format!(
        "/api/messages?user_id={bob_id}&limit=100&before_id={}",
        last + 1
    ));
    assert_eq!(
        history.body["messages"]
            .as_array()
            .map(|m| m.last().map(|m| m["id"].clone())),
        Some(Some(json!(last)))
    );
    let url = uploaded["attachment"]["url"].as_str().expect("url");
    let download = ureq::get(&format!("{}{url}", restored.base()))
        .set("Cookie", alice.cookie.as_deref().expect("cookie"))
        .call()
        .expect("download");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut download.into_reader(), &mut bytes).expect("body");
    assert_eq!(bytes, photo);
}
