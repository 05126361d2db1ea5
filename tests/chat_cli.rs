//! The terminal client (`examples/chat_cli.rs`) against a real server, typed
//! into like a person would: sending, typing and seen, replies, edits,
//! reactions, deletions and blocks by message number, files sent and saved.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use common::{RECV_TIMEOUT, TestServer, Ws, upload};
use serde_json::json;

/// The example's binary. A plain `cargo test` has built it next to the
/// test binaries; `cargo test --test chat_cli` has not, so build it then.
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join("examples").join(name);
    if !path.exists() {
        let built = Command::new(env!("CARGO"))
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo");
        assert!(built.success(), "cargo build --example {name} failed");
    }
    path
}

#[test]
fn terminal_client_logs_in_lists_sends_and_receives() {
    let server = TestServer::start();
    let (bob, _) = server.user("bob");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);

    // Downloads land in the client's folder.
    let folder = tempfile::tempdir().expect("temp dir");
    let mut cli = Command::new(example_path("chat_cli"))
        .current_dir(folder.path())
        .args(["--server", &server.base(), "--register", "alice"])
        .env("CHAT_PASSWORD", "password123")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run examples/chat_cli (built by cargo test)");
    let mut stdin = cli.stdin.take().expect("stdin");
    let stdout = cli.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let expect_line = |pattern: &str| -> String {
        loop {
            let line = lines
                .recv_timeout(RECV_TIMEOUT)
                .unwrap_or_else(|_| panic!("the client never printed {pattern:?}"));
            if line.contains(pattern) {
                return line;
            }
        }
    };

    expect_line("logged in as \"alice\"");
    let online = bob_ws.recv_type("user_online");
    assert_eq!(online["users"][0]["nickname"], "alice");
    let alice_id = online["users"][0]["id"].clone();

    writeln!(stdin, "/users").expect("type");
    expect_line("● bob");
    writeln!(stdin, "/open bob").expect("type");
    expect_line("* conversation with bob");
    writeln!(stdin, "hello from the terminal").expect("type");
    let message = bob_ws.recv_type("private_message");
    assert_eq!(message["content"], "hello from the terminal");
    assert_eq!(message["from_user_id"], alice_id);
    expect_line("✓ delivered");

    bob_ws.send_json(
        &json!({"type": "private_message", "to_user_id": alice_id, "content": "hi terminal"}),
    );
    expect_line("bob: hi terminal");

    // Typing and reading show up; an unknown command is refused, not sent.
    bob_ws.send_json(&json!({"type": "typing", "to_user_id": alice_id, "state": "start"}));
    expect_line("* bob is typing…");
    writeln!(stdin, "/shrug").expect("type");
    expect_line("! unknown command /shrug");
    let mine = message["message_id"].as_i64().expect("id");
    bob_ws.send_json(&json!({"type": "mark_read", "user_id": alice_id}));
    expect_line("seen by bob");

    // Reply, edit, react, delete: by message number.
    writeln!(stdin, "/reply {mine} answering myself").expect("type");
    let reply = bob_ws.recv_type("private_message");
    assert_eq!(reply["reply_to"]["id"], mine);
    writeln!(stdin, "/edit {mine} hello, edited").expect("type");
    assert_eq!(
        bob_ws.recv_type("message_edited")["content"],
        "hello, edited"
    );
    expect_line(&format!("* #{mine} edited: hello, edited"));
    writeln!(stdin, "/react {mine} 👍").expect("type");
    let reaction = bob_ws.recv_type("reaction");
    assert_eq!(
        (&reaction["emoji"], &reaction["on"]),
        (&json!("👍"), &json!(true))
    );
    writeln!(stdin, "/react {mine} 👍").expect("type");
    assert_eq!(bob_ws.recv_type("reaction")["on"], false);
    writeln!(stdin, "/delete {mine}").expect("type");
    assert_eq!(bob_ws.recv_type("message_deleted")["for"], "everyone");
    expect_line(&format!("* #{mine} was deleted"));
    // Search: the matched words in brackets.
    writeln!(stdin, "/search TERMINAL").expect("type");
    expect_line("bob → alice: hi [terminal]");
    writeln!(stdin, "/search zebra").expect("type");
    expect_line("nothing found for \"zebra\"");
    // Files: one sent with a caption, one received and saved.
    let sent = folder.path().join("notes from alice.txt");
    std::fs::write(&sent, b"the minutes of the meeting").expect("file to send");
    writeln!(stdin, "/file \"{}\" the minutes", sent.display()).expect("type");
    let with_file = bob_ws.recv_type("private_message");
    assert_eq!(with_file["content"], "the minutes");
    assert_eq!(with_file["attachment"]["size"], 26);
    let (status, uploaded) = upload(&bob, "photo.bin", b"bytes from bob", false);
    assert_eq!(status, 201, "{uploaded}");
    let file_id = uploaded["attachment"]["id"].as_i64().expect("id");
    bob_ws.send_json(&json!({"type": "private_message", "to_user_id": alice_id,
                             "content": "", "attachment_id": file_id}));
    expect_line(&format!("📎 photo.bin (14 B) file:{file_id}"));
    writeln!(stdin, "/download {file_id}").expect("type");
    expect_line("* saved photo.bin (14 bytes)");
    assert_eq!(
        std::fs::read(folder.path().join("photo.bin")).expect("saved"),
        b"bytes from bob"
    );
    writeln!(stdin, "/download {file_id}").expect("type");
    expect_line("photo.bin: "); // never over an existing file
    writeln!(stdin, "/download 999999").expect("type");
    expect_line("! 404");

    writeln!(stdin, "/block bob").expect("type");
    expect_line("* bob blocked");
    writeln!(stdin, "are you there?").expect("type");
    expect_line("✗ not sent: recipient_unavailable");

    writeln!(stdin, "/quit").expect("type");
    let status = cli.wait().expect("exit");
    assert!(status.success());
}
