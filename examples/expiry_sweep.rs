//! The expiry sweep benchmark's two helpers (`examples/bench.sh
//! expiry-sweep`):
//!
//! ```text
//! # before a server starts on it: every message falls due in 5 s
//! expiry_sweep due --db copy.db --in-seconds 5
//! # beside the running server and the load generator: when the sweep
//! # started and ended, and when the search index had caught up
//! expiry_sweep watch --server http://127.0.0.1:18600 --seconds 30 --expect 1000000
//! ```
//!
//! `watch` reads the server's `/metrics` every [`POLL`]: the counter of
//! messages expired, and how many changes the search index has yet to
//! follow. Its figures are as fine as that period.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

/// How often `watch` reads `/metrics`.
const POLL: Duration = Duration::from_millis(50);

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Makes every message of the database (not yet deleted) due.
    Due {
        #[arg(long)]
        db: PathBuf,
        /// From now.
        #[arg(long)]
        in_seconds: u64,
    },
    /// Follows a running server's sweep.
    Watch {
        #[arg(long)]
        server: String,
        /// How long to watch at most.
        #[arg(long)]
        seconds: u64,
        /// Messages the sweep should delete.
        #[arg(long)]
        expect: u64,
    },
}

fn main() {
    match Args::parse().command {
        Command::Due { db, in_seconds } => due(&db, in_seconds),
        Command::Watch {
            server,
            seconds,
            expect,
        } => watch(&server, Duration::from_secs(seconds), expect),
    }
}

fn due(db: &std::path::Path, in_seconds: u64) {
    let at = chrono::Utc::now().timestamp_millis() + (in_seconds * 1000) as i64;
    let conn = rusqlite::Connection::open(db).expect("open");
    let changed = conn
        .execute(
            "UPDATE private_messages SET expires_at = ?1 WHERE deleted_at IS NULL",
            [at],
        )
        .expect("update");
    println!("{changed} messages due in {in_seconds} s");
}

/// A figure of the metrics text, by name (no labels).
fn figure(metrics: &str, name: &str) -> Option<u64> {
    metrics.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse().ok()
    })
}

fn watch(server: &str, limit: Duration, expect: u64) {
    let url = format!("{}/metrics", server.trim_end_matches('/'));
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(5))
        .build();
    let start = Instant::now();
    let (mut started, mut ended, mut caught_up) = (None, None, None);
    let (mut expired, mut most_behind) = (0, 0);
    while start.elapsed() < limit && caught_up.is_none() {
        std::thread::sleep(POLL);
        let Some(text) = agent
            .get(&url)
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
        else {
            continue; // the server stopping, or not yet up
        };
        let now = start.elapsed();
        expired = figure(&text, "chat_messages_expired_total").unwrap_or(0);
        let behind = figure(&text, "chat_search_index_behind_changes").unwrap_or(0);
        most_behind = most_behind.max(behind);
        if expired > 0 && started.is_none() {
            started = Some(now);
        }
        if expired >= expect && ended.is_none() {
            ended = Some(now);
        }
        if ended.is_some() && behind == 0 {
            caught_up = Some(now);
        }
    }
    println!("expired:         {expired} of {expect}");
    match (started, ended) {
        (Some(from), Some(to)) => {
            let took = (to - from).as_secs_f64();
            println!(
                "sweep:           from +{:.2} s to +{:.2} s: {took:.2} s, {:.0} messages/s",
                from.as_secs_f64(),
                to.as_secs_f64(),
                expect as f64 / took
            );
        }
        _ => println!("sweep:           did not finish within {limit:?}"),
    }
    match (ended, caught_up) {
        (Some(to), Some(at)) => println!(
            "search index:    at most {most_behind} changes behind; caught up {:.2} s after the sweep",
            (at - to).as_secs_f64()
        ),
        _ => println!(
            "search index:    at most {most_behind} changes behind; not caught up within {limit:?}"
        ),
    }
}
