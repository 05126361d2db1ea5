//! Baseline (b) of docs/BENCHMARKS.md: how fast this machine's SQLite can
//! store chat messages at all, so that the server's figure is also a ratio.
//!
//! ```text
//! cargo run --release --example sqlite_baseline -- --messages 200000
//! ```
//!
//! Two floors, each for `synchronous=NORMAL` and `FULL`, median of 3 runs:
//! - raw: the same three statements per message as the server (insert,
//!   two conversation upserts) in batches of 512 per transaction, one thread;
//! - store: `SqliteStore::insert_message` queued from one thread without
//!   waiting, as the server's WebSocket readers do: the server's own storage
//!   layer with its group-commit writer, no network.

use std::time::Instant;

use chat_server::changes::{Origin, Written};
use chat_server::config::Durability;
use chat_server::models::NewMessage;
use chat_server::repo::{SqliteStore, Store, tune_writer};
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Messages per run.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    /// Users the messages go between (in pairs).
    #[arg(long, default_value_t = 1000)]
    users: i64,
}

const SCHEMA: &str = include_str!("../schema.sql");
const BATCH: usize = 512;

fn main() {
    let args = Args::parse();
    for durability in [Durability::Normal, Durability::Full] {
        let raw = median(|| raw_inserts(&args, durability));
        let store = median(|| store_inserts(&args, durability));
        println!(
            "{durability:?}: raw batched inserts {raw:.0} msg/s; SqliteStore {store:.0} msg/s"
        );
    }
}

fn median(mut run: impl FnMut() -> f64) -> f64 {
    let mut rates: Vec<f64> = (0..3).map(|_| run()).collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

fn users(conn: &rusqlite::Connection, count: i64) {
    let mut insert = conn
        .prepare("INSERT INTO users (nickname, email, password_hash, created_at) VALUES (?1, ?2, 'x', 0)")
        .expect("prepare");
    for i in 0..count {
        insert
            .execute((format!("u{i}"), format!("u{i}@x")))
            .expect("user");
    }
}

/// The message from user `i`'s pair, alternating direction.
fn pair(i: usize, users: i64) -> (i64, i64) {
    let a = (i as i64 % (users / 2)) * 2 + 1;
    if i.is_multiple_of(2) {
        (a, a + 1)
    } else {
        (a + 1, a)
    }
}

fn raw_inserts(args: &Args, durability: Durability) -> f64 {
    let dir = tempfile::tempdir().expect("dir");
    let mut conn = rusqlite::Connection::open(dir.path().join("raw.db")).expect("open");
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .expect("wal");
    let sync = if durability == Durability::Full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.pragma_update(None, "synchronous", sync).expect("sync");
    tune_writer(&conn).expect("the server's settings");
    conn.execute_batch(SCHEMA).expect("schema");
    users(&conn, args.users);
    let start = Instant::now();
    for batch in 0..args.messages.div_ceil(BATCH) {
        let tx = conn.transaction().expect("begin");
        {
            let mut message = tx
                .prepare_cached(
                    "INSERT INTO private_messages (sender_id, receiver_id, content, created_at) VALUES (?1, ?2, ?3, ?4)",
                )
                .expect("prepare");
            let mut sender_side = tx
                .prepare_cached(
                    "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count) VALUES (?1, ?2, ?3, 0)
                     ON CONFLICT (user_id, partner_id) DO UPDATE SET last_message_id = excluded.last_message_id",
                )
                .expect("prepare");
            let mut receiver_side = tx
                .prepare_cached(
                    "INSERT INTO conversations (user_id, partner_id, last_message_id, unread_count) VALUES (?1, ?2, ?3, 1)
                     ON CONFLICT (user_id, partner_id) DO UPDATE SET last_message_id = excluded.last_message_id,
                     unread_count = unread_count + 1",
                )
                .expect("prepare");
            for i in batch * BATCH..((batch + 1) * BATCH).min(args.messages) {
                let (from, to) = pair(i, args.users);
                message
                    .execute((from, to, "123456789", 1_700_000_000_000i64))
                    .expect("insert");
                let id = tx.last_insert_rowid();
                sender_side.execute((from, to, id)).expect("upsert");
                receiver_side.execute((to, from, id)).expect("upsert");
            }
        }
        tx.commit().expect("commit");
    }
    args.messages as f64 / start.elapsed().as_secs_f64()
}

fn store_inserts(args: &Args, durability: Durability) -> f64 {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("store.db");
    // The hub's side of the store: every committed change arrives here.
    let (sink, committed) = crossbeam_channel::unbounded();
    let store = SqliteStore::open(&path, durability, sink).expect("open");
    users(
        &rusqlite::Connection::open(&path).expect("open"),
        args.users,
    );
    // Like the server's WebSocket readers: queue without waiting; each
    // outcome reaches the change sink, as it reaches the hub.
    let start = Instant::now();
    for i in 0..args.messages {
        let (from, to) = pair(i, args.users);
        let new = NewMessage {
            sender_id: from,
            receiver_id: to,
            content: "123456789".into(),
            created_at: chrono::Utc::now(),
            client_id: None,
            sender_nickname: String::new(),
            reply_to_id: None,
            attachment_id: None,
        };
        let origin = Origin::Connection {
            conn: 1,
            client_id: None,
        };
        store.insert_message(new, origin, None);
    }
    let stored = committed
        .iter()
        .take(args.messages)
        .filter(|written| matches!(written, Written::Committed(_)))
        .count();
    assert_eq!(stored, args.messages, "every message stored");
    args.messages as f64 / start.elapsed().as_secs_f64()
}
