//! Images and the life of stored files (issue 15) through a real server:
//! thumbnails; photos that lose their position and serial number (read
//! back with kamadak-exif, an EXIF reader we did not write) but keep their
//! pixels and orientation; a decompression bomb refused before decoding;
//! uploads from HTML forms; and files that leave the disk when nothing
//! refers to them, also after a crash.

mod common;

use std::io::{Cursor, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Client, RECV_TIMEOUT, ServerProcess, TestServer, sha256_hex, stored_file, upload};
use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value as ExifValue};
use image::{ImageFormat, RgbImage, RgbaImage};
use img_parts::{Bytes, ImageEXIF, jpeg::Jpeg};
use serde_json::{Value, json};

/// A photo-like JPEG: a gradient, so that every pixel differs.
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut bytes = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90);
    image.write_with_encoder(encoder).expect("encode JPEG");
    bytes
}

fn png_with_alpha(width: u32, height: u32) -> Vec<u8> {
    let image = RgbaImage::from_fn(width, height, |x, y| {
        image::Rgba([(x % 256) as u8, (y % 256) as u8, 90, (x % 200) as u8])
    });
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("encode PNG");
    bytes
}

const SERIAL: &str = "SERIAL-4711-XYZ";

/// `photo` with EXIF as a phone writes it: where it was taken, the
/// camera's serial number, and that it must be turned (orientation 6:
/// 90 degrees clockwise).
fn with_gps_exif(photo: Vec<u8>) -> Vec<u8> {
    let degrees = |d: u32, m: u32, s: u32| {
        ExifValue::Rational(vec![
            Rational::from((d, 1)),
            Rational::from((m, 1)),
            Rational::from((s, 1)),
        ])
    };
    let field = |tag, value| Field {
        tag,
        ifd_num: In::PRIMARY,
        value,
    };
    let fields = [
        field(Tag::Orientation, ExifValue::Short(vec![6])),
        field(Tag::BodySerialNumber, ExifValue::Ascii(vec![SERIAL.into()])),
        field(Tag::GPSLatitudeRef, ExifValue::Ascii(vec![b"N".to_vec()])),
        field(Tag::GPSLatitude, degrees(48, 51, 30)),
        field(Tag::GPSLongitudeRef, ExifValue::Ascii(vec![b"E".to_vec()])),
        field(Tag::GPSLongitude, degrees(2, 17, 40)),
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut exif = Cursor::new(Vec::new());
    writer.write(&mut exif, false).expect("write EXIF");
    let mut jpeg = Jpeg::from_bytes(Bytes::from(photo)).expect("parse JPEG");
    jpeg.set_exif(Some(Bytes::from(exif.into_inner())));
    jpeg.encoder().bytes().to_vec()
}

/// The EXIF fields of a JPEG, as kamadak-exif reads them.
fn exif_of(jpeg: &[u8]) -> Option<exif::Exif> {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(jpeg))
        .ok()
}

/// GET `path` as `client`: status, Content-Type and body bytes.
fn get_bytes(client: &Client, path: &str) -> (u16, String, Vec<u8>) {
    let result = ureq::get(&format!("{}{path}", client.base))
        .set("Cookie", client.cookie.as_deref().unwrap_or(""))
        .timeout(RECV_TIMEOUT)
        .call();
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let mime = response.content_type().to_owned();
    let mut body = Vec::new();
    response.into_reader().read_to_end(&mut body).expect("body");
    (status, mime, body)
}

/// Sends a message to `to` with attachment `id`; returns the message.
fn send_file(client: &Client, to: i64, id: &Value, caption: &str) -> Value {
    let reply = client.post(
        "/api/messages",
        &json!({ "to_user_id": to, "content": caption, "attachment_id": id }),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["message"].clone()
}

/// Waits (polling the disk, up to a deadline) until `path` is gone.
fn await_removed(path: &Path) {
    let deadline = Instant::now() + RECV_TIMEOUT;
    while path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} is still on disk",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn photos_lose_their_position_and_serial_but_keep_their_pixels_and_orientation() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, _) = server.user("carol");
    let photo = with_gps_exif(jpeg(1200, 800));
    // The reader we check with sees what a phone wrote.
    let original = exif_of(&photo).expect("EXIF in the original");
    assert!(original.get_field(Tag::GPSLatitude, In::PRIMARY).is_some());

    let (status, body) = upload(&alice, "IMG_0001.jpg", &photo, false);
    assert_eq!(status, 201, "{body}");
    let attachment = &body["attachment"];
    // As shown: turned upright, so taller than wide.
    assert_eq!(
        (&attachment["width"], &attachment["height"]),
        (&json!(800), &json!(1200))
    );
    let id = attachment["id"].as_i64().expect("id");
    assert_eq!(attachment["url"], format!("/api/attachments/{id}"));
    assert_eq!(
        attachment["thumbnail_url"],
        format!("/api/attachments/{id}/thumbnail")
    );
    // The message shows the same object as the upload's answer.
    let message = send_file(&alice, bob_id, &attachment["id"], "");
    assert_eq!(&message["attachment"], attachment);

    let (status, mime, stored) = get_bytes(&bob, &format!("/api/attachments/{id}"));
    assert_eq!((status, mime.as_str()), (200, "image/jpeg"));
    assert!(!stored.windows(SERIAL.len()).any(|w| w == SERIAL.as_bytes()));
    let exif = exif_of(&stored).expect("the orientation is kept as EXIF");
    for gone in [
        Tag::GPSLatitude,
        Tag::GPSLongitude,
        Tag::GPSLatitudeRef,
        Tag::BodySerialNumber,
    ] {
        assert!(exif.get_field(gone, In::PRIMARY).is_none(), "{gone} kept");
    }
    let orientation = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0));
    assert_eq!(orientation, Some(6));
    assert_eq!(exif.fields().count(), 1, "nothing but the orientation");
    // Lossless: the same pixels as sent.
    let sent_pixels = image::load_from_memory(&photo)
        .expect("decode sent")
        .to_rgb8();
    let stored_pixels = image::load_from_memory(&stored)
        .expect("decode stored")
        .to_rgb8();
    assert!(sent_pixels == stored_pixels, "the picture data changed");

    // The thumbnail: upright, its longest side 320.
    let thumbnail_path = format!("/api/attachments/{id}/thumbnail");
    let (status, mime, thumbnail) = get_bytes(&bob, &thumbnail_path);
    assert_eq!((status, mime.as_str()), (200, "image/jpeg"));
    let thumbnail = image::load_from_memory(&thumbnail).expect("decode thumbnail");
    assert_eq!(thumbnail.height(), 320);
    assert!(
        (213..=214).contains(&thumbnail.width()),
        "{}",
        thumbnail.width()
    );
    assert_eq!(get_bytes(&alice, &thumbnail_path).0, 200);
    // Someone else: nothing, not even a hint that it exists.
    assert_eq!(get_bytes(&carol, &thumbnail_path).0, 404);
    assert_eq!(get_bytes(&carol, &format!("/api/attachments/{id}")).0, 404);
    assert_eq!(
        get_bytes(&carol, "/api/attachments/999999/thumbnail").0,
        404
    );
}

#[test]
fn an_operator_may_keep_image_metadata() {
    let server = TestServer::start_with(|c| c.keep_image_metadata = true);
    let (alice, _) = server.user("alice");
    let photo = with_gps_exif(jpeg(64, 48));
    let (status, body) = upload(&alice, "keep.jpg", &photo, false);
    assert_eq!(status, 201, "{body}");
    let id = &body["attachment"]["id"];
    let (_, _, stored) = get_bytes(&alice, &format!("/api/attachments/{id}"));
    assert_eq!(stored, photo);
    assert!(body["attachment"]["thumbnail_url"].is_string());
}

#[test]
fn thumbnails_keep_transparency_and_broken_images_are_plain_files() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (status, body) = upload(&alice, "sticker.png", &png_with_alpha(640, 480), false);
    assert_eq!(status, 201, "{body}");
    let id = &body["attachment"]["id"];
    let (status, mime, thumbnail) = get_bytes(&alice, &format!("/api/attachments/{id}/thumbnail"));
    assert_eq!((status, mime.as_str()), (200, "image/png"));
    let thumbnail = image::load_from_memory(&thumbnail).expect("decode");
    assert_eq!((thumbnail.width(), thumbnail.height()), (320, 240));
    assert!(thumbnail.color().has_alpha());

    // A PNG header with nothing behind it: a file, not an image.
    let mut broken = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    broken.extend(640u32.to_be_bytes());
    broken.extend(480u32.to_be_bytes());
    broken.extend([8, 6, 0, 0, 0, 0, 0, 0, 0]);
    let (status, body) = upload(&alice, "broken.png", &broken, false);
    assert_eq!(status, 201, "{body}");
    assert!(body["attachment"].get("thumbnail_url").is_none(), "{body}");
    let id = &body["attachment"]["id"];
    assert_eq!(
        get_bytes(&alice, &format!("/api/attachments/{id}/thumbnail")).0,
        404
    );
    assert_eq!(
        get_bytes(&alice, &format!("/api/attachments/{id}")).2,
        broken
    );
}

/// The resident memory of this process (the server runs in it), in bytes.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// A PNG of `width` x `height` grey pixels whose data is the zlib stream
/// of its first rows only: a few KiB that claim any size.
fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    fn chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend(crc.finalize().to_be_bytes());
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = width.to_be_bytes().to_vec();
    header.extend(height.to_be_bytes());
    header.extend([8, 0, 0, 0, 0]); // 8-bit grey
    chunk(&mut png, b"IHDR", &header);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    zlib.write_all(&vec![0u8; 4 << 20]).expect("deflate");
    chunk(&mut png, b"IDAT", &zlib.finish().expect("deflate"));
    chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn a_gigapixel_png_of_a_few_kib_is_refused_at_once_with_memory_bounded() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let bomb = png_bomb(40_000, 25_000);
    assert!(bomb.len() < 8 * 1024, "{} bytes", bomb.len());
    let before = resident_bytes();
    let started = Instant::now();
    let (status, body) = upload(&alice, "bomb.png", &bomb, false);
    let took = started.elapsed();
    let grew = resident_bytes().saturating_sub(before);
    assert_eq!(
        (status, &body["code"]),
        (400, &json!("image_too_large")),
        "{body}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Decoded, it would be 1 GB; refused, it costs next to nothing.
    assert!(grew < 64 << 20, "the server grew by {grew} bytes");
    assert!(!stored_file(&server, &sha256_hex(&bomb)).exists());
}

/// A `multipart/form-data` body as a browser sends a form with a caption
/// field and a file.
fn form_body(boundary: &str, file_name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhello\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend(content);
    body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn post_form(client: &Client, content_type: &str, body: &[u8]) -> (u16, Value) {
    let result = ureq::post(&format!("{}/api/attachments", client.base))
        .set("Cookie", client.cookie.as_deref().unwrap_or(""))
        .set("Content-Type", content_type)
        .timeout(RECV_TIMEOUT)
        .send_bytes(body);
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("form upload: {e}"),
    };
    (response.status(), response.into_json().expect("JSON"))
}

#[test]
fn a_plain_html_form_uploads_its_file_under_the_forms_name() {
    let server = TestServer::start_with(|c| c.max_upload = 1 << 20);
    let (alice, _) = server.user("alice");
    let boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let content_type = format!("multipart/form-data; boundary={boundary}");
    // Contents with line breaks and boundary-like bytes, at the size limit.
    let mut content: Vec<u8> = (0..(1u32 << 20) - 20).map(|i| (i % 253) as u8).collect();
    content.extend(b"\r\n------WebKitForm\r\n");
    assert_eq!(content.len(), 1 << 20);
    let (status, body) = post_form(
        &alice,
        &content_type,
        &form_body(boundary, "report.pdf", &content),
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["attachment"]["name"], "report.pdf");
    assert_eq!(body["attachment"]["size"], content.len());
    let id = &body["attachment"]["id"];
    assert_eq!(
        get_bytes(&alice, &format!("/api/attachments/{id}")).2,
        content
    );

    let mut over = content.clone();
    over.push(0);
    let (status, body) = post_form(
        &alice,
        &content_type,
        &form_body(boundary, "big.bin", &over),
    );
    assert_eq!(
        (status, &body["code"]),
        (413, &json!("too_large")),
        "{body}"
    );
    let no_file = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--{boundary}--\r\n"
    );
    let (status, body) = post_form(&alice, &content_type, no_file.as_bytes());
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("no file")),
        "{body}"
    );
    let (status, _) = post_form(&alice, "multipart/form-data", b"x");
    assert_eq!(status, 400);
    let (status, _) = post_form(&alice, &content_type, b"--elsewhere\r\n\r\n");
    assert_eq!(status, 400);
}

#[test]
fn a_deleted_messages_only_file_leaves_the_disk() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let photo = jpeg(400, 300);
    let (_, first) = upload(&alice, "a.jpg", &photo, false);
    let (_, second) = upload(&alice, "b.jpg", &photo, false);
    let first_message = send_file(&alice, bob_id, &first["attachment"]["id"], "one");
    let second_message = send_file(&alice, bob_id, &second["attachment"]["id"], "two");
    let id = first["attachment"]["id"].as_i64().expect("id");
    let (_, _, stored) = get_bytes(&bob, &format!("/api/attachments/{id}"));
    let (_, _, thumbnail) = get_bytes(&bob, &format!("/api/attachments/{id}/thumbnail"));
    let file = stored_file(&server, &sha256_hex(&stored));
    let thumbnail_file = stored_file(&server, &sha256_hex(&thumbnail));
    assert!(file.exists() && thumbnail_file.exists());

    let delete = |message: &Value| {
        let path = format!("/api/messages/{}?for=everyone", message["id"]);
        assert_eq!(alice.delete(&path).status, 200);
    };
    delete(&first_message);
    // Gone for both sides at once; the bytes stay while the other message
    // holds them.
    for client in [&alice, &bob] {
        assert_eq!(get_bytes(client, &format!("/api/attachments/{id}")).0, 404);
    }
    let other = second["attachment"]["id"].as_i64().expect("id");
    assert_eq!(
        get_bytes(&bob, &format!("/api/attachments/{other}")).2,
        stored
    );
    delete(&second_message);
    await_removed(&file);
    await_removed(&thumbnail_file);
    assert_eq!(get_bytes(&bob, &format!("/api/attachments/{other}")).0, 404);
}

#[test]
fn uploads_never_sent_are_removed_after_their_lifetime() {
    let server = TestServer::start_with(|c| c.unsent_upload_lifetime = Duration::from_millis(300));
    let (alice, _) = server.user("alice");
    let (_, bob_id) = server.user("bob");
    let (_, unsent) = upload(&alice, "draft.bin", b"never sent", false);
    let (_, sent) = upload(&alice, "sent.bin", b"sent at once", false);
    send_file(&alice, bob_id, &sent["attachment"]["id"], "");
    let unsent_file = stored_file(&server, &sha256_hex(b"never sent"));
    assert!(unsent_file.exists());
    await_removed(&unsent_file);
    let id = &unsent["attachment"]["id"];
    assert_eq!(get_bytes(&alice, &format!("/api/attachments/{id}")).0, 404);
    // Sending it now is refused like any unknown upload.
    let reply = alice.post(
        "/api/messages",
        &json!({ "to_user_id": bob_id, "content": "", "attachment_id": id }),
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(stored_file(&server, &sha256_hex(b"sent at once")).exists());
}

#[test]
fn a_crash_mid_upload_leaves_no_half_file_and_a_restart_leaks_nothing() {
    crash_mid_upload("normal");
}

#[test]
fn a_crash_mid_upload_with_full_durability_leaves_no_half_file_either() {
    crash_mid_upload("full");
}

/// SIGKILL while an upload is half received, with `--durability MODE`.
fn crash_mid_upload(durability: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("chat.db");
    let files = dir.path().join("chat-files");
    let args = ["--durability", durability, "--addr", "127.0.0.1:0"];
    let server = ServerProcess::start(&db, &args);
    let mut alice = server.client();
    let alice_id = alice.register("alice");
    alice.login("alice", "password123");
    let bob_id = server.client().register("bob");
    assert_ne!(alice_id, bob_id);
    // A file that a message refers to must survive everything below.
    let (status, kept) = upload(&alice, "kept.bin", b"kept across the crash", false);
    assert_eq!(status, 201, "{kept}");
    send_file(&alice, bob_id, &kept["attachment"]["id"], "");

    // Half of a 4 MiB upload, then the process is killed.
    let mut raw = TcpStream::connect(&server.http_addr).expect("connect");
    let head = format!(
        "POST /api/attachments?name=half.bin HTTP/1.1\r\nHost: x\r\nCookie: {}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        alice.cookie.as_deref().unwrap_or(""),
        4 << 20
    );
    raw.write_all(head.as_bytes()).expect("head");
    raw.write_all(&vec![7u8; 2 << 20]).expect("half the body");
    let spool = files.join("tmp");
    let deadline = Instant::now() + RECV_TIMEOUT;
    while std::fs::read_dir(&spool).map_or(0, |d| d.count()) == 0 {
        assert!(
            Instant::now() < deadline,
            "the upload never reached the disk"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // What a crash between storing a file and recording its row leaves.
    let orphan = files.join("ab").join("ab".repeat(32));
    std::fs::create_dir_all(orphan.parent().expect("shard")).expect("shard");
    std::fs::write(&orphan, b"stored, never recorded").expect("orphan");
    drop(server); // SIGKILL
    drop(raw);

    let server = ServerProcess::start(&db, &args);
    await_removed(&orphan);
    assert_eq!(
        std::fs::read_dir(&spool).expect("tmp").count(),
        0,
        "a half upload is left"
    );
    let mut bob = server.client();
    bob.login("bob", "password123");
    let id = &kept["attachment"]["id"];
    let (status, _, bytes) = get_bytes(&bob, &format!("/api/attachments/{id}"));
    assert_eq!(
        (status, bytes.as_slice()),
        (200, &b"kept across the crash"[..])
    );
    let mut stored: Vec<_> = walk(&files);
    stored.sort();
    assert_eq!(stored, vec![sha256_hex(b"kept across the crash")]);
}

/// The names of the files in the store's shard folders.
fn walk(files: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for shard in std::fs::read_dir(files).expect("files") {
        let shard = shard.expect("entry").path();
        if shard.file_name().is_some_and(|n| n != "tmp") && shard.is_dir() {
            for file in std::fs::read_dir(&shard).expect("shard") {
                names.push(
                    file.expect("entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    names
}

#[test]
fn a_picture_is_an_image_upload_shown_as_its_thumbnail_kept_and_never_sent() {
    let server = TestServer::start_with(|c| c.unsent_upload_lifetime = Duration::from_millis(300));
    let (alice, alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let set = |id: &Value| {
        alice.request(
            "PUT",
            "/api/me/avatar",
            Some(&json!({ "attachment_id": id }).to_string()),
        )
    };
    let (_, text) = upload(&alice, "notes.txt", b"not a picture", false);
    let refused = set(&text["attachment"]["id"]);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.body["code"], "invalid_attachment");
    assert_eq!(set(&json!(999)).status, 400, "not an upload at all");
    let (_, others) = upload(&bob, "bob.jpg", &jpeg(100, 100), false);
    assert_eq!(
        set(&others["attachment"]["id"]).status,
        400,
        "someone else's image"
    );

    let (_, picture) = upload(&alice, "me.jpg", &jpeg(800, 600), false);
    let chosen = set(&picture["attachment"]["id"]);
    assert_eq!(chosen.status, 200, "{}", chosen.body);
    let url = chosen.body["user"]["avatar_url"]
        .as_str()
        .expect("avatar_url")
        .to_owned();
    assert!(
        url.starts_with(&format!("/api/users/{alice_id}/avatar?v=")),
        "{url}"
    );
    let listed = bob.get("/api/users").body["users"].clone();
    let row = listed
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["id"] == alice_id)
        .cloned();
    assert_eq!(row.expect("alice")["avatar_url"], url.as_str());
    let (status, mime, bytes) = get_bytes(&bob, &url);
    assert_eq!((status, mime.as_str()), (200, "image/jpeg"));
    let shown = image::load_from_memory(&bytes).expect("an image");
    assert_eq!((shown.width(), shown.height()), (320, 240), "the thumbnail");
    assert_eq!(
        get_bytes(&server.client(), &url).0,
        401,
        "for people logged in"
    );

    // A picture is never sent, and outlives the unsent uploads' sweep.
    let send = alice.post(
        "/api/messages",
        &json!({ "to_user_id": bob_id, "content": "", "attachment_id": picture["attachment"]["id"] }),
    );
    assert_eq!(send.status, 400, "{}", send.body);
    await_removed(&stored_file(&server, &sha256_hex(b"not a picture")));
    assert_eq!(get_bytes(&bob, &url).0, 200);

    // Removed: the initial again, and the picture's files go.
    let thumbnail = stored_file(&server, &sha256_hex(&bytes));
    assert!(thumbnail.exists());
    let removed = alice.delete("/api/me/avatar");
    assert_eq!(removed.status, 200);
    assert!(removed.body["user"]["avatar_url"].is_null());
    assert_eq!(get_bytes(&bob, &url).0, 404);
    await_removed(&thumbnail);
}
