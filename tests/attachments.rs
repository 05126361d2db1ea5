//! Uploads and downloads (issue 15, in progress) through a real server: the
//! body reaches the file store byte for byte under its SHA-256, once
//! however often it is sent, and comes back whole or by range; sizes and
//! quotas are enforced, with and without a length; the type comes from the
//! bytes; names are cleaned; a file is served only to whoever may see it,
//! never as a page of ours; and a slow uploader holds no REST worker.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Client, RECV_TIMEOUT, TestServer, sha256_hex, stored_file, upload};
use serde_json::Value;

#[test]
fn uploads_are_stored_byte_for_byte_once_under_their_hash() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    for size in [1usize, 1 << 20, 25 << 20] {
        let bytes: Vec<u8> = (0..size)
            .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
            .collect();
        let (status, body) = upload(&alice, "data.bin", &bytes, false);
        assert_eq!(status, 201, "{size} bytes: {body}");
        let attachment = &body["attachment"];
        assert_eq!(attachment["size"], size);
        assert_eq!(attachment["name"], "data.bin");
        let on_disk = std::fs::read(stored_file(&server, &sha256_hex(&bytes))).expect("file");
        assert!(on_disk == bytes, "{size} bytes come back exactly");
    }
    // The same bytes again: a new attachment, the same file.
    let bytes = b"the same bytes twice".to_vec();
    let (_, first) = upload(&alice, "one.txt", &bytes, false);
    let (_, second) = upload(&alice, "two.txt", &bytes, true);
    assert_ne!(first["attachment"]["id"], second["attachment"]["id"]);
    let shard = stored_file(&server, &sha256_hex(&bytes));
    let copies = std::fs::read_dir(shard.parent().expect("shard"))
        .expect("shard dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path() == shard))
        .count();
    assert_eq!(copies, 1);
    // Nothing is left in the spool.
    let spool = server.config.files_dir().join("tmp");
    assert_eq!(std::fs::read_dir(spool).expect("spool").count(), 0);
}

#[test]
fn one_byte_over_the_limit_is_refused_with_and_without_a_length() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let over = vec![7u8; (25 << 20) + 1];
    // By its Content-Length: refused before a byte of the body is read (a
    // client that waits for the answer before sending, as here, sends none).
    let mut raw = TcpStream::connect(format!("127.0.0.1:{}", server.http_port())).expect("tcp");
    raw.set_read_timeout(Some(RECV_TIMEOUT)).expect("timeout");
    write!(
        raw,
        "POST /api/attachments?name=big.bin HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\
         Content-Length: {}\r\n\r\n",
        alice.cookie.as_deref().expect("cookie"),
        over.len()
    )
    .expect("head");
    let mut answer = String::new();
    raw.read_to_string(&mut answer).expect("answer, then close");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""code":"too_large""#), "{answer}");
    // Without a length: refused once the limit is passed while reading.
    let (status, body) = upload(&alice, "big.bin", &over, true);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "too_large");
    assert!(!stored_file(&server, &sha256_hex(&over)).exists());
    // The connection that was refused is gone; the server is not.
    assert_eq!(alice.get("/api/me").status, 200);
}

#[test]
fn the_quota_counts_every_upload_of_a_user() {
    let server = TestServer::start_with(|c| c.upload_quota = 1000);
    let (alice, _) = server.user("alice");
    let (bob, _) = server.user("bob");
    let (status, _) = upload(&alice, "a", &[1u8; 600], false);
    assert_eq!(status, 201);
    let (status, body) = upload(&alice, "b", &[2u8; 600], false);
    assert_eq!(
        (status, &body["code"]),
        (413, &Value::from("quota_exceeded"))
    );
    assert!(!stored_file(&server, &sha256_hex(&[2u8; 600])).exists());
    // Another user has a quota of their own.
    assert_eq!(upload(&bob, "b", &[2u8; 600], false).0, 201);
}

#[test]
fn the_type_comes_from_the_bytes_and_names_are_cleaned() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let mut png = Vec::new();
    image::RgbImage::new(640, 480)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encode PNG");
    let (status, body) = upload(&alice, "notes.txt", &png, false);
    assert_eq!(status, 201, "{body}");
    let attachment = &body["attachment"];
    assert_eq!(
        (
            &attachment["mime"],
            &attachment["width"],
            &attachment["height"]
        ),
        (
            &Value::from("image/png"),
            &Value::from(640),
            &Value::from(480)
        )
    );
    let (_, body) = upload(
        &alice,
        "cat.png",
        b"<!DOCTYPE html><script>x</script>",
        false,
    );
    assert_eq!(body["attachment"]["mime"], "text/html");
    assert!(body["attachment"]["width"].is_null());
    let (_, body) = upload(&alice, "../../etc/pass\nwd", b"x", false);
    assert_eq!(body["attachment"]["name"], "pass_wd");
    let (status, body) = upload(&alice, "../", b"x", false);
    assert_eq!(status, 400, "{body}");
}

#[test]
fn strangers_cannot_upload_and_their_bodies_are_not_read() {
    let server = TestServer::start();
    let stranger = server.client();
    let (status, _) = upload(&stranger, "x.bin", &vec![0u8; 1 << 20], false);
    assert_eq!(status, 401);
}

#[test]
fn a_slow_uploader_holds_no_rest_worker() {
    let server = TestServer::start_with(|c| c.http_threads = 1);
    let (alice, _) = server.user("alice");
    // 200 KiB, 10 KiB every 50 ms: a second of upload on a slow line.
    let (chunk, chunks) = (10 * 1024, 20);
    let cookie = alice.cookie.clone().expect("cookie");
    let port = server.http_port();
    let uploader = std::thread::spawn(move || {
        let mut slow = TcpStream::connect(format!("127.0.0.1:{port}")).expect("tcp");
        slow.set_read_timeout(Some(RECV_TIMEOUT)).expect("timeout");
        write!(
            slow,
            "POST /api/attachments?name=slow HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
             Connection: close\r\nContent-Length: {}\r\n\r\n",
            chunk * chunks
        )
        .expect("head");
        for _ in 0..chunks {
            slow.write_all(&vec![b'z'; chunk]).expect("body");
            std::thread::sleep(Duration::from_millis(50)); // the slow line itself
        }
        let mut answer = String::new();
        slow.read_to_string(&mut answer).expect("answer");
        answer
    });
    // Meanwhile the only worker answers others at once: the body is the
    // connection thread's business until it is whole.
    for _ in 0..5 {
        let started = std::time::Instant::now();
        assert_eq!(alice.get("/api/me").status, 200);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
    let answer = uploader.join().expect("uploader");
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

/// GET of a file: status, the headers asked for, the body.
fn download(
    client: &Client,
    id: &Value,
    headers: &[(&str, &str)],
) -> (u16, std::collections::HashMap<String, String>, Vec<u8>) {
    let mut request = ureq::get(&format!("{}/api/attachments/{id}", client.base))
        .set("Cookie", client.cookie.as_deref().unwrap_or(""))
        .timeout(RECV_TIMEOUT * 6);
    for (name, value) in headers {
        request = request.set(name, value);
    }
    let response = match request.call() {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("download transport error: {e}"),
    };
    let status = response.status();
    let mut seen = std::collections::HashMap::new();
    for name in response.headers_names() {
        if let Some(value) = response.header(&name) {
            seen.insert(name.to_ascii_lowercase(), value.to_owned());
        }
    }
    let mut body = Vec::new();
    response
        .into_reader()
        .take(64 << 20)
        .read_to_end(&mut body)
        .expect("body");
    (status, seen, body)
}

#[test]
fn files_come_back_whole_or_by_range_only_to_who_may_see_them() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (carol, _) = server.user("carol");
    for size in [1usize, 1 << 20, 25 << 20] {
        let bytes: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
        let (_, body) = upload(&alice, "blob.bin", &bytes, false);
        let id = body["attachment"]["id"].clone();
        let (status, headers, back) = download(&alice, &id, &[]);
        assert_eq!(status, 200);
        assert!(back == bytes, "{size} bytes come back exactly");
        assert_eq!(headers["content-length"], size.to_string());
        // Another user, and an id that does not exist: the same 404.
        let (status, _, body) = download(&carol, &id, &[]);
        assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
        assert_eq!(download(&carol, &Value::from(999_999), &[]).0, 404);
    }
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let (_, body) = upload(&alice, "thousand.bin", &bytes, false);
    let id = body["attachment"]["id"].clone();
    let (status, headers, part) = download(&alice, &id, &[("Range", "bytes=10-19")]);
    assert_eq!((status, &part[..]), (206, &bytes[10..20]));
    assert_eq!(headers["content-range"], "bytes 10-19/1000");
    let etag = headers["etag"].clone();
    let (status, _, part) = download(&alice, &id, &[("Range", "bytes=-5")]);
    assert_eq!((status, &part[..]), (206, &bytes[995..]));
    let (status, headers, _) = download(&alice, &id, &[("Range", "bytes=1000-")]);
    assert_eq!(
        (status, headers["content-range"].as_str()),
        (416, "bytes */1000")
    );
    // The content never changes: a client that has it is told so.
    assert_eq!(etag, format!("\"{}\"", sha256_hex(&bytes)));
    let (status, _, body) = download(&alice, &id, &[("If-None-Match", &etag)]);
    assert_eq!((status, body.len()), (304, 0));
}

#[test]
fn a_file_is_never_served_as_a_page_of_ours() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let html = b"<!DOCTYPE html><script>fetch('/api/me')</script>";
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    for (name, bytes, mime) in [
        ("page.png", &html[..], "text/html"),
        ("pic.svg", &svg[..], "image/svg+xml"),
    ] {
        let (_, body) = upload(&alice, name, bytes, false);
        let (status, headers, back) = download(&alice, &body["attachment"]["id"], &[]);
        assert_eq!(status, 200);
        assert_eq!(back, bytes);
        assert_eq!(headers["content-type"], mime);
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["content-security-policy"], "sandbox");
        assert!(
            headers["content-disposition"].starts_with("attachment; filename="),
            "{}",
            headers["content-disposition"]
        );
    }
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    png.extend(1u32.to_be_bytes());
    png.extend(1u32.to_be_bytes());
    png.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    let (_, body) = upload(&alice, "dot.png", &png, false);
    let (_, headers, _) = download(&alice, &body["attachment"]["id"], &[]);
    assert!(headers["content-disposition"].starts_with("inline;"));
}

#[test]
fn a_file_sent_with_a_message_reaches_the_partner_and_no_one_else() {
    let server = TestServer::start();
    let common::TwoOnline {
        alice,
        alice_id,
        mut alice_ws,
        bob,
        bob_id,
        mut bob_ws,
    } = common::TwoOnline::new(&server);
    let (carol, _) = server.user("carol");
    let bytes = b"%PDF-1.7\n the minutes of the meeting".to_vec();
    let (_, body) = upload(&alice, "minutes.pdf", &bytes, false);
    let id = body["attachment"]["id"].clone();
    // Before it is sent, only its uploader may have it.
    assert_eq!(download(&bob, &id, &[]).0, 404);

    // Over REST, with an empty caption.
    let sent = alice.post(
        "/api/messages",
        &serde_json::json!({"to_user_id": bob_id, "content": "", "attachment_id": id,
                            "client_id": "f1"}),
    );
    assert_eq!(sent.status, 201, "{}", sent.body);
    let attachment = &sent.body["message"]["attachment"];
    assert_eq!(attachment["name"], "minutes.pdf");
    assert_eq!(attachment["mime"], "application/pdf");
    assert_eq!(attachment["url"], format!("/api/attachments/{id}"));
    let live = bob_ws.recv_type("private_message");
    assert_eq!(live["attachment"], *attachment);
    let (status, _, back) = download(&bob, &id, &[]);
    assert_eq!((status, back), (200, bytes.clone()));
    assert_eq!(
        download(&carol, &id, &[]).0,
        404,
        "not carol's conversation"
    );
    // A retry of the same send finds the original, file and all.
    let again = alice.post(
        "/api/messages",
        &serde_json::json!({"to_user_id": bob_id, "content": "", "attachment_id": id,
                            "client_id": "f1"}),
    );
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["message"]["id"], sent.body["message"]["id"]);

    // A file goes with one message: sent again, or someone else's, it is
    // refused, over REST and over the WebSocket.
    for (who, ws, to) in [
        (&alice, &mut alice_ws, bob_id),
        (&bob, &mut bob_ws, alice_id),
    ] {
        let refused = who.post(
            "/api/messages",
            &serde_json::json!({"to_user_id": to, "content": "again", "attachment_id": id}),
        );
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.body["code"], "invalid_attachment");
        ws.send_json(
            &serde_json::json!({"type": "private_message", "to_user_id": to,
                                         "content": "x", "attachment_id": id}),
        );
        assert_eq!(
            ws.recv_type("message_failed")["error"],
            "invalid_attachment"
        );
    }
    // Without a file, an empty message is still refused.
    let empty = alice.post(
        "/api/messages",
        &serde_json::json!({"to_user_id": bob_id, "content": ""}),
    );
    assert_eq!(empty.status, 400);
    // History shows the file on the message.
    let history = bob.get(&format!("/api/messages?user_id={alice_id}"));
    assert_eq!(history.body["messages"][0]["attachment"], *attachment);
}
