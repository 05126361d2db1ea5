//! How long a client that was away takes to catch up: one user sends
//! `--changes` messages to another who is offline; the second then connects
//! and pages through `sync` with `since` over the WebSocket until
//! `has_more` is false. Each run uses a fresh pair of users.
//!
//!   cargo run --release --example sync_catchup -- --server http://127.0.0.1:8080
//!
//! The server needs `--message-rate 0` (10,000 sends in a few seconds) and
//! `--register-rate 0 --registration open`. docs/BENCHMARKS.md has the figures.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

#[path = "shared/accounts.rs"]
mod accounts;
use accounts::{Error, connect, user};

#[derive(Parser)]
struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Changes the absent user misses.
    #[arg(long, default_value_t = 10_000)]
    changes: usize,
    /// Changes per sync page (1–500).
    #[arg(long, default_value_t = 500)]
    page: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let base = args.server.trim_end_matches('/').to_owned();
    let ws_url = ureq::get(&format!("{base}/api/config"))
        .call()?
        .into_json::<Value>()?["ws_url"]
        .as_str()
        .ok_or("no ws_url")?
        .to_owned();
    let tag = std::process::id();
    let mut times = Vec::new();
    for run in 0..args.runs {
        let (sender, _) = user(&base, &format!("cu{tag}s{run}"))?;
        let (absent, absent_id) = user(&base, &format!("cu{tag}a{run}"))?;
        send_all(&ws_url, &sender, absent_id, args.changes)?;

        let started = Instant::now();
        let mut ws = connect(&ws_url, &absent)?;
        let (received, pages) = catch_up(&mut ws, args.page)?;
        let took = started.elapsed();
        if received != args.changes {
            return Err(format!("caught up {received} changes, expected {}", args.changes).into());
        }
        println!(
            "run {}: {received} changes in {pages} pages: {:.1} ms (connect included)",
            run + 1,
            took.as_secs_f64() * 1e3
        );
        times.push(took);
    }
    times.sort();
    let ms = |d: &Duration| d.as_secs_f64() * 1e3;
    println!(
        "catch-up of {} changes over WebSocket, {} runs: median {:.1} ms, min {:.1} ms, max {:.1} ms",
        args.changes,
        times.len(),
        ms(&times[times.len() / 2]),
        ms(&times[0]),
        ms(&times[times.len() - 1])
    );
    Ok(())
}

/// Sends `count` messages and waits until every one is stored.
fn send_all(ws_url: &str, cookie: &str, to: i64, count: usize) -> Result<(), Error> {
    let mut ws = connect(ws_url, cookie)?;
    let mut answered = 0;
    // A few hundred ahead: the server reads a client that does not read its
    // answers more slowly.
    const AHEAD: usize = 200;
    let mut sent = 0;
    while answered < count {
        while sent < count && sent - answered < AHEAD {
            let frame =
                json!({"type": "private_message", "to_user_id": to, "content": format!("m{sent}")});
            ws.send(Message::text(frame.to_string()))?;
            sent += 1;
        }
        if let Message::Text(text) = ws.read()? {
            let frame: Value = serde_json::from_str(text.as_str())?;
            if frame["type"] == "message_delivered" || frame["type"] == "message_failed" {
                answered += 1;
            }
        }
    }
    ws.close(None)?;
    Ok(())
}

/// Pages through `sync` from seq 0; returns the changes and pages received.
fn catch_up(ws: &mut WebSocket<TcpStream>, page: usize) -> Result<(usize, usize), Error> {
    ws.send(Message::text(
        json!({"type": "sync", "since": 0, "limit": page}).to_string(),
    ))?;
    let (mut received, mut pages) = (0, 0);
    loop {
        let Message::Text(text) = ws.read()? else {
            continue;
        };
        let frame: Value = serde_json::from_str(text.as_str())?;
        if frame["type"] != "sync" {
            continue;
        }
        pages += 1;
        received += frame["changes"].as_array().map_or(0, Vec::len);
        if frame["has_more"] != true {
            return Ok((received, pages));
        }
        let since = frame["next_since"].as_i64().ok_or("no next_since")?;
        ws.send(Message::text(
            json!({"type": "sync", "since": since, "limit": page}).to_string(),
        ))?;
    }
}
