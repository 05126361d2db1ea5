//! How the web client copes with a long conversation, in a real headless
//! Chromium: 5,000 messages loaded page by page (50 each, as a user
//! scrolling up does), then scrolled through, then a new message arriving.
//!
//! ```text
//! cargo run --release --example web_render -- --messages 5000
//! ```
//!
//! Prints, for loading each older page (a scroll to the top until its 50
//! messages are on screen: the REST request and the render), the median,
//! p90 and max, for the first ten pages (the baseline, few messages on
//! screen) and the last ten (thousands on screen); the frame intervals
//! while scrolling through everything; and how long a new message takes to
//! show with everything loaded. Needs Debian's `chromium`.

#[path = "../tests/common/browser.rs"]
#[allow(dead_code)]
mod browser;

use std::time::{Duration, Instant};

use browser::Browser;
use chat_server::{Config, Server};
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// Messages in the conversation.
    #[arg(long, default_value_t = 5000)]
    messages: usize,
}

type Error = Box<dyn std::error::Error>;

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut config = Config::for_tests();
    config.db = dir.path().join("chat.db");
    config.message_rate = 0.0;
    config.login_rate = 0.0;
    config.register_rate = 0.0;
    config.log_level = log::LevelFilter::Warn;
    let server = Server::start(config)?;
    let base = format!("http://{}", server.http_addr());

    // (Cookies by hand: this ureq is built without its cookie store.)
    let login = |nickname: &str| -> Result<(String, i64), Error> {
        let body = json!({"nickname": nickname, "email": format!("{nickname}@example.org"), "password": "password123"});
        let user: Value = ureq::post(&format!("{base}/api/register"))
            .send_json(body)?
            .into_json()?;
        let response = ureq::post(&format!("{base}/api/login"))
            .send_json(json!({"identifier": nickname, "password": "password123"}))?;
        let cookie = response
            .header("set-cookie")
            .and_then(|c| c.split(';').next())
            .ok_or("no session cookie")?
            .to_owned();
        Ok((cookie, user["user"]["id"].as_i64().ok_or("no id")?))
    };
    let (alice, alice_id) = login("alice")?;
    let (bob, bob_id) = login("bob")?;
    let agent = ureq::agent();
    let send = |cookie: &str, to: i64, content: String| -> Result<(), Error> {
        agent
            .post(&format!("{base}/api/messages"))
            .set("Cookie", cookie)
            .send_json(json!({"to_user_id": to, "content": content}))?;
        Ok(())
    };
    eprintln!("storing {} messages", args.messages);
    for i in 0..args.messages {
        let text = format!("message {i}: {}", "lorem ipsum ".repeat(1 + i % 5));
        if i % 2 == 0 {
            send(&alice, bob_id, text)?;
        } else {
            send(&bob, alice_id, text)?;
        }
    }

    let mut page = Browser::launch(1280, 800);
    page.goto(&base);
    page.wait_for("document.body.dataset.ready === 'true'", "page ready");
    page.type_into("#login-form [name=identifier]", "bob");
    page.type_into("#login-form [name=password]", "password123");
    page.click("#login-form button[type=submit]");
    page.wait_for("document.body.dataset.sync === 'done'", "logged in");
    page.click(&format!("#conversations li[data-user-id=\"{alice_id}\"]"));
    page.wait_for(
        "document.querySelectorAll('#messages .msg').length > 0",
        "conversation open",
    );

    // The baseline: a new message with one page on screen.
    let mut arrivals_few_ms = Vec::new();
    for i in 0..20 {
        arrivals_few_ms.push(new_message_shown(
            &mut page,
            &|text| send(&alice, bob_id, text),
            i,
        )?);
    }

    // Older pages, one at a time, as a user scrolling up loads them.
    let mut pages_ms: Vec<f64> = Vec::new();
    loop {
        let count = page
            .eval("document.querySelectorAll('#messages .msg').length")
            .as_u64()
            .unwrap_or(0);
        if count as usize >= args.messages {
            break;
        }
        let started = Instant::now();
        page.eval("document.getElementById('messages').scrollTop = 0");
        page.wait_for(
            &format!("document.querySelectorAll('#messages .msg').length > {count}"),
            "an older page",
        );
        pages_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    // Scrolling through everything: frame intervals.
    let frames = page.eval(
        "new Promise((resolve) => {
            const box = document.getElementById('messages');
            box.scrollTop = 0;
            const deltas = [];
            let last = null;
            const step = (now) => {
                if (last !== null) deltas.push(now - last);
                last = now;
                box.scrollTop += 400;
                if (box.scrollTop + box.clientHeight >= box.scrollHeight - 1) resolve(deltas);
                else requestAnimationFrame(step);
            };
            requestAnimationFrame(step);
        })",
    );
    let mut frame_ms: Vec<f64> = frames
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();

    // A new message with everything loaded: from the send to the screen.
    let mut arrivals_ms = Vec::new();
    for i in 20..40 {
        arrivals_ms.push(new_message_shown(
            &mut page,
            &|text| send(&alice, bob_id, text),
            i,
        )?);
    }

    let first: Vec<f64> = pages_ms.iter().take(10).copied().collect();
    let last: Vec<f64> = pages_ms.iter().rev().take(10).copied().collect();
    println!(
        "messages:             {} ({} pages of 50 loaded by scrolling up)",
        args.messages,
        pages_ms.len()
    );
    println!("older page, first 10: {}", summary(&first));
    println!("older page, last 10:  {}", summary(&last));
    println!(
        "ratio last/first:     {:.2} (medians)",
        median(&last) / median(&first).max(f64::MIN_POSITIVE)
    );
    println!("all pages:            {}", summary(&pages_ms));
    println!(
        "scrolling frames:     {} ({} frames)",
        summary(&frame_ms),
        frame_ms.len()
    );
    frame_ms.retain(|ms| *ms > 20.0);
    println!("frames over 20 ms:    {}", frame_ms.len());
    println!("new message, 1 page:  {}", summary(&arrivals_few_ms));
    println!("new message, all:     {}", summary(&arrivals_ms));
    println!(
        "ratio all/1 page:     {:.2} (medians)",
        median(&arrivals_ms) / median(&arrivals_few_ms).max(f64::MIN_POSITIVE)
    );
    Ok(())
}

/// Milliseconds from sending message `i` (REST, by the partner) until the
/// page shows it as its last message.
fn new_message_shown(
    page: &mut Browser,
    send: &dyn Fn(String) -> Result<(), Error>,
    i: usize,
) -> Result<f64, Error> {
    let text = format!("new message {i}");
    let started = Instant::now();
    send(text.clone())?;
    page.wait_for(
        &format!(
            "document.querySelector('#messages .msg:last-child .bubble')?.textContent === {text:?}"
        ),
        "the new message",
    );
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    // Apart, so that each is measured alone.
    std::thread::sleep(Duration::from_millis(50));
    Ok(ms)
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

fn quantile(values: &[f64], q: f64) -> f64 {
    let v = sorted(values);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn median(values: &[f64]) -> f64 {
    quantile(values, 0.5)
}

fn summary(values: &[f64]) -> String {
    format!(
        "median {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        median(values),
        quantile(values, 0.9),
        quantile(values, 0.99),
        quantile(values, 1.0)
    )
}
