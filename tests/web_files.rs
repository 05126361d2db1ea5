//! Files in the web client, in two real headless Chromium sessions: an
//! image pasted into the composer reaches the other side as a thumbnail
//! whose box has its final size before it loads, and opens full size in
//! the lightbox; a dropped file arrives as a card with its name, size and
//! a download link; an upload can be cancelled and is then never sent.

mod common;

use common::TestServer;
use common::TwoInConversation;
use common::browser::{Browser, q, save_screenshot};

/// Alice and Bob in two browsers, each in their conversation, which Bob
/// started with `first`.
fn in_conversation(server: &TestServer, first: &str) -> (Browser, Browser) {
    let two = TwoInConversation::open(server, first);
    (two.alice, two.bob)
}

/// JavaScript that makes a `width` x `height` PNG on a canvas and resolves
/// to it as a File named `name`.
fn canvas_png(width: u32, height: u32, name: &str) -> String {
    format!(
        r##"new Promise((resolve) => {{
            const canvas = document.createElement("canvas");
            canvas.width = {width}; canvas.height = {height};
            const g = canvas.getContext("2d");
            const gradient = g.createLinearGradient(0, 0, {width}, {height});
            gradient.addColorStop(0, "#e33"); gradient.addColorStop(1, "#33e");
            g.fillStyle = gradient; g.fillRect(0, 0, {width}, {height});
            canvas.toBlob((blob) => resolve(new File([blob], {name:?}, {{type: "image/png"}})), "image/png");
        }})"##
    )
}

/// Dispatches `event` ("paste" on the composer, or "drop" on the pane)
/// carrying the file that `file_js` resolves to.
fn hand_over(page: &mut Browser, event: &str, file_js: &str) {
    let dispatch = match event {
        "paste" => {
            r##"document.querySelector("#input").dispatchEvent(new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}))"##
        }
        _ => {
            r##"document.querySelector("#pane").dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}))"##
        }
    };
    page.eval(&format!(
        r##"({file_js}).then((file) => {{
            const data = new DataTransfer();
            data.items.add(file);
            {dispatch};
            return true;
        }})"##
    ));
}

/// Waits for the image at `selector` to load (a load changes no node, so
/// `wait_for` would not see it); returns its natural size and source.
fn loaded_image(page: &mut Browser, selector: &str) -> serde_json::Value {
    page.eval(&format!(
        r##"(async () => {{
            const img = {};
            if (!img.complete) await new Promise((resolve, reject) => {{
                img.addEventListener("load", resolve, {{once: true}});
                img.addEventListener("error", () => reject(new Error("the image failed to load")), {{once: true}});
            }});
            return [img.naturalWidth, img.naturalHeight, img.src];
        }})()"##,
        q(selector)
    ))
}

/// Waits until every file in the tray is uploaded.
fn await_uploaded(page: &mut Browser) {
    page.wait_for(
        &format!(
            "!{tray}.hidden && !{tray}.querySelector('progress') && !{send}.disabled",
            tray = q("#tray"),
            send = q("#send")
        ),
        "the upload finished",
    );
}

#[test]
fn a_pasted_image_arrives_as_a_thumbnail_that_opens_full_size() {
    let server = TestServer::start();
    let (mut alice, mut bob) = in_conversation(&server, "send me the photo");

    // ---- paste an image: it shows in the tray, uploads, and is sent ----
    hand_over(&mut alice, "paste", &canvas_png(1200, 900, "image.png"));
    let name = alice.wait_for(
        &format!("{}?.textContent", q("#tray .tray-name")),
        "the pasted image in the tray",
    );
    assert_eq!(name, "image.png");
    await_uploaded(&mut alice);
    alice.type_into("#input", "the view from the top");
    alice.press_enter(false);
    alice.wait_for(
        &format!("{}.hidden", q("#tray")),
        "the tray empties on send",
    );

    // ---- bob sees the thumbnail, its box sized before it loads ----
    let reserved = bob.wait_for(
        &format!(
            "(() => {{ const img = {}; return img && [img.getAttribute('width'), img.getAttribute('height')]; }})()",
            q("#messages .thumb img")
        ),
        "the thumbnail",
    );
    assert_eq!(reserved, serde_json::json!(["320", "240"]));
    let caption = bob.eval(&format!(
        "{}.closest('.msg').querySelector('.bubble').textContent",
        q("#messages .thumb img")
    ));
    assert_eq!(caption, "the view from the top");
    let loaded = loaded_image(&mut bob, "#messages .thumb img");
    assert_eq!(
        (&loaded[0], &loaded[1]),
        (&serde_json::json!(320), &serde_json::json!(240))
    );
    assert!(
        loaded[2]
            .as_str()
            .is_some_and(|src| src.ends_with("/thumbnail")),
        "{loaded}"
    );

    save_screenshot(&mut bob, "10-files");

    // ---- a click opens it full size ----
    bob.click("#messages .thumb");
    bob.wait_for(&format!("{}.open", q("#lightbox")), "the lightbox opens");
    let full = loaded_image(&mut bob, "#lightbox-image");
    assert_eq!(
        (&full[0], &full[1]),
        (&serde_json::json!(1200), &serde_json::json!(900))
    );
    bob.press_key("Escape", 27);
    bob.wait_for(&format!("!{}.open", q("#lightbox")), "the lightbox closes");
}

#[test]
fn a_dropped_file_arrives_as_a_card_and_a_cancelled_one_never_leaves() {
    let server = TestServer::start();
    let (mut alice, mut bob) = in_conversation(&server, "hi");

    // ---- cancelled: out of the tray, and nothing is sent ----
    let big = r##"Promise.resolve(new File([new Uint8Array(20 * 1024 * 1024)], "huge.bin", {type: "application/octet-stream"}))"##;
    hand_over(&mut alice, "drop", big);
    alice.wait_for(&q("#tray .tray-remove"), "the file in the tray");
    alice.click("#tray .tray-remove");
    alice.wait_for(&format!("{}.hidden", q("#tray")), "the tray empties");

    // ---- dropped: a card with name, size and a download link ----
    let report = r##"Promise.resolve(new File(["%PDF-1.7\n" + "x".repeat(2000)], "report.pdf", {type: "application/pdf"}))"##;
    hand_over(&mut alice, "drop", report);
    await_uploaded(&mut alice);
    alice.press_enter(false);
    let card = bob.wait_for(
        &format!(
            "(() => {{ const c = {}; return c && [c.querySelector('.file-name').textContent, c.querySelector('.file-size').textContent, c.getAttribute('href'), c.getAttribute('download')]; }})()",
            q("#messages .file-card")
        ),
        "the file card",
    );
    assert_eq!(card[0], "report.pdf");
    assert_eq!(card[1], "2.0 KB · Download");
    assert!(
        card[2]
            .as_str()
            .is_some_and(|href| href.starts_with("/api/attachments/")),
        "{card}"
    );
    assert_eq!(card[3], "report.pdf");
    // The conversation list names the file.
    let listed = bob.wait_for(
        &format!(
            "{}?.textContent.includes('report.pdf') && {}.textContent",
            q("#conversations li"),
            q("#conversations li")
        ),
        "the file in the conversation list",
    );
    assert!(
        listed.as_str().is_some_and(|t| t.contains("📎 report.pdf")),
        "{listed}"
    );
    // Only that one file was sent: the cancelled one never was.
    let files =
        bob.eval("document.querySelectorAll('#messages .file-card, #messages .thumb').length");
    assert_eq!(files, 1);
    let fetched = bob.eval(&format!(
        "fetch({}.href).then((r) => r.status)",
        q("#messages .file-card")
    ));
    assert_eq!(fetched, 200);
}
