//! The `history` scenario: the queries a chat client makes when it opens,
//! under concurrent load, against a database filled by `examples/seed_db`.
//!
//! Each client is a thread making one request at a time over keep-alive
//! HTTP, the way a browser does when it scrolls back. A few threads are
//! enough: this measures how fast the server answers queries, not how many
//! sockets it holds (the other scenarios do that). The mix follows
//! `seed_db`'s timings: history pages of user 1 (who has 1,000 partners) at
//! a random depth by `before_id` and by `offset`, user 1's conversation
//! list, and the unread count of random users.

use std::time::{Duration, Instant};

use chat_server::auth::SESSION_COOKIE;
use hdrhistogram::Histogram;
use serde_json::Value;

use super::{Error, new_histogram, percentiles_ms, proc_status};

/// Query load on a database seeded by `examples/seed_db` (whose users have
/// the sessions `seed-<id>`): history pages at any depth, the conversation
/// list, unread counts.
#[derive(clap::Args, Clone)]
pub struct Options {
    /// Clients asking at once, each one request at a time.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Users in the seeded database (`seed_db --users`): unread counts are
    /// asked for random ones.
    #[arg(long, default_value_t = 10_000)]
    users: i64,
}

/// The queries, in the order they are reported; `query as usize` indexes
/// the histograms.
#[derive(Clone, Copy)]
enum Query {
    HistoryBeforeId,
    HistoryOffset,
    Conversations,
    Unread,
}

const QUERIES: [Query; 4] = [
    Query::HistoryBeforeId,
    Query::HistoryOffset,
    Query::Conversations,
    Query::Unread,
];

impl Query {
    /// Which query the `n`th request of a client makes: for every
    /// conversation list, three of each other kind (a client loads its list
    /// once, then pages).
    fn nth(n: u64) -> Query {
        match n % 10 {
            0 => Query::Conversations,
            1..=3 => Query::HistoryBeforeId,
            4..=6 => Query::HistoryOffset,
            _ => Query::Unread,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Query::HistoryBeforeId => "history page (before_id, any depth)",
            Query::HistoryOffset => "history page (offset 0..1000)      ",
            Query::Conversations => "conversation list of user 1        ",
            Query::Unread => "unread count (random users)        ",
        }
    }
}

/// What the queries need to know about the seeded database.
struct Seeded {
    /// User 1's partners.
    partners: Vec<i64>,
    /// The newest message id in user 1's conversations.
    newest: i64,
    users: i64,
}

/// A client's measurements: one histogram per query kind.
struct Measured {
    latencies: Vec<Histogram<u64>>,
    errors: u64,
}

pub fn run(
    base: &str,
    server_pid: Option<u32>,
    warmup: Duration,
    options: &Options,
) -> Result<(), Error> {
    let agent = ureq::AgentBuilder::new().build();
    let list: Value = agent
        .get(&format!("{base}/api/conversations"))
        .set("Cookie", &cookie(1))
        .call()
        .map_err(|e| format!("user 1's conversations (is this a seed_db database?): {e}"))?
        .into_json()?;
    let conversations = list["conversations"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let partners: Vec<i64> = conversations
        .iter()
        .filter_map(|c| c["user_id"].as_i64())
        .collect();
    let newest = conversations
        .iter()
        .filter_map(|c| c["last_message"]["id"].as_i64())
        .max()
        .ok_or("user 1 has no conversations: seed the database with examples/seed_db")?;
    let seeded = Seeded {
        partners,
        newest,
        users: options.users,
    };
    let before = server_pid.and_then(proc_status);

    let started = Instant::now();
    let record_from = started + warmup;
    let end = record_from + Duration::from_secs(options.seconds);
    let measured: Vec<Measured> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..options.clients.max(1))
            .map(|client| {
                let seeded = &seeded;
                scope.spawn(move || query_until(base, seeded, client as u64, record_from, end))
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().map_err(|_| "a client panicked"))
            .collect::<Result<_, _>>()
    })?;
    let after = server_pid.and_then(proc_status);

    let mut latencies: Vec<Histogram<u64>> = QUERIES.iter().map(|_| new_histogram()).collect();
    for client in &measured {
        for (total, mine) in latencies.iter_mut().zip(&client.latencies) {
            total.add(mine)?;
        }
    }
    let requests: u64 = latencies.iter().map(Histogram::len).sum();
    let seconds = options.seconds as f64;
    println!(
        "scenario:        history, {} clients, {}s (user 1 has {} conversations)",
        options.clients,
        options.seconds,
        seeded.partners.len()
    );
    println!(
        "requests:        {requests} ({:.0}/s)",
        requests as f64 / seconds
    );
    for (query, histogram) in QUERIES.iter().zip(&latencies) {
        println!(
            "{}: {} ({:.0}/s)  {} ms",
            query.label(),
            histogram.len(),
            histogram.len() as f64 / seconds,
            percentiles_ms(histogram)
        );
    }
    let errors: u64 = measured.iter().map(|m| m.errors).sum();
    println!("errors:          {errors}");
    if let (Some((rss0, _)), Some((rss1, _))) = (before, after) {
        println!("server:          RSS {rss0} KiB before, {rss1} KiB after");
    }
    Ok(())
}

/// One client: requests back to back until `end`, timed from `record_from`.
fn query_until(
    base: &str,
    seeded: &Seeded,
    client: u64,
    record_from: Instant,
    end: Instant,
) -> Measured {
    let agent = ureq::AgentBuilder::new().build();
    let mut measured = Measured {
        latencies: QUERIES.iter().map(|_| new_histogram()).collect(),
        errors: 0,
    };
    // Spread the clients over the partners and depths (multiplicative
    // hashing with primes, as in seed_db).
    let mut n = client * 1_000_003;
    while Instant::now() < end {
        n += 1;
        let query = Query::nth(n);
        let partner = seeded.partners[(n as usize * 7919) % seeded.partners.len()];
        let (me, path) = match query {
            Query::HistoryBeforeId => {
                let before = 1 + (n as i64 * 104_729) % seeded.newest;
                (
                    1,
                    format!("/api/messages?user_id={partner}&limit=20&before_id={before}"),
                )
            }
            Query::HistoryOffset => {
                let offset = (n % 50) * 20;
                (
                    1,
                    format!("/api/messages?user_id={partner}&limit=20&offset={offset}"),
                )
            }
            Query::Conversations => (1, "/api/conversations".to_owned()),
            Query::Unread => (
                1 + (n as i64 * 7919) % seeded.users,
                "/api/messages/unread".to_owned(),
            ),
        };
        let start = Instant::now();
        let answered = agent
            .get(&format!("{base}{path}"))
            .set("Cookie", &cookie(me))
            .call()
            .map_err(|e| e.to_string())
            .and_then(|response| response.into_string().map_err(|e| e.to_string()));
        let took = start.elapsed();
        match answered {
            Ok(_) if start >= record_from => {
                let micros = took.as_micros().clamp(1, u128::from(u64::MAX)) as u64;
                let _ = measured.latencies[query as usize].record(micros);
            }
            Ok(_) => {} // warming up
            Err(e) => {
                if measured.errors == 0 {
                    eprintln!("client {client}: {path}: {e}");
                }
                measured.errors += 1;
            }
        }
    }
    measured
}

fn cookie(user: i64) -> String {
    format!("{SESSION_COOKIE}=seed-{user}")
}
