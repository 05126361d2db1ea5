//! Fills a database with many users and messages, fast, then times the
//! queries a chat client makes against it (history pages at any depth, the
//! conversation list, the unread count) through the server's own store.
//!
//! ```text
//! cargo run --release --example seed_db -- --db big.db --users 10000 --messages 10000000
//! # the same queries over HTTP, against a server running on that file:
//! target/release/chat-server --db big.db --addr 127.0.0.1:18640 &
//! cargo run --release --example seed_db -- --db big.db --http http://127.0.0.1:18640
//! ```
//!
//! Each seeded user has a session (token `seed-<id>`, stored hashed like
//! any other), so that requests over HTTP, here with `--http` or from
//! `loadgen history`, are authenticated like a browser's; their times then
//! include HTTP on loopback and JSON.
//!
//! Loading drops the message indexes, inserts in large transactions,
//! rebuilds the indexes and derives the `conversations` rows with one
//! query: the same end state as sending every message, in a fraction of the
//! time. User 1 writes with exactly 1,000 partners (a tenth of all
//! messages), so that its conversation list is the one the benchmark asks
//! for; the other users write in random pairs among themselves.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_server::auth::{SESSION_COOKIE, hash_token};
use chat_server::config::Durability;
use chat_server::models::{Cursor, Page};
use chat_server::repo::{SearchIndex, SqliteStore, Store};
use chat_server::search::Query;
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    db: PathBuf,
    /// Users: user 1, its 1,000 partners, and at least one more.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(i64).range(BUSY_PARTNERS + 2..))]
    users: i64,
    #[arg(long, default_value_t = 10_000_000)]
    messages: i64,
    /// Timed queries of each kind.
    #[arg(long, default_value_t = 2000)]
    queries: usize,
    /// Time the queries through this running server's REST API instead of
    /// calling the store in this process.
    #[arg(long)]
    http: Option<String>,
}

/// Where the timed queries go.
enum Target {
    Store(Box<SqliteStore>),
    Http { base: String, agent: ureq::Agent },
}

impl Target {
    fn get(&self, me: i64, path_and_query: &str) {
        let Target::Http { base, agent } = self else {
            return;
        };
        agent
            .get(&format!("{base}{path_and_query}"))
            .set("Cookie", &format!("{SESSION_COOKIE}=seed-{me}"))
            .call()
            .expect("request")
            .into_string()
            .expect("body");
    }

    fn history(&self, me: i64, partner: i64, page: Page) {
        match self {
            Target::Store(store) => drop(store.history(me, partner, page).expect("history")),
            Target::Http { .. } => {
                let cursor = match page.cursor {
                    Cursor::BeforeId(id) => format!("before_id={id}"),
                    Cursor::Offset(offset) => format!("offset={offset}"),
                    Cursor::Around(id) => format!("around_id={id}"),
                };
                let limit = page.limit;
                self.get(
                    me,
                    &format!("/api/messages?user_id={partner}&limit={limit}&{cursor}"),
                );
            }
        }
    }

    fn search(&self, me: i64, text: &str) {
        match self {
            Target::Store(store) => {
                let query = Query::parse(text).expect("a valid query");
                drop(
                    store
                        .search(me, None, &query.to_index_query(), i64::MAX, 21)
                        .expect("search"),
                );
            }
            Target::Http { .. } => self.get(me, &format!("/api/search?q={text}&limit=20")),
        }
    }

    fn conversations(&self, me: i64) {
        match self {
            Target::Store(store) => drop(store.conversations(me).expect("conversations")),
            Target::Http { .. } => self.get(me, "/api/conversations"),
        }
    }

    fn unread(&self, me: i64) {
        match self {
            Target::Store(store) => drop(store.unread_count(me).expect("unread")),
            Target::Http { .. } => self.get(me, "/api/messages/unread"),
        }
    }
}

/// Gives every user a session with the token `seed-<id>`.
fn create_sessions(db: &std::path::Path, users: i64) {
    let mut conn = rusqlite::Connection::open(db).expect("open");
    conn.busy_timeout(Duration::from_secs(10))
        .expect("busy timeout");
    let tx = conn.transaction().expect("begin");
    {
        let mut insert = tx
            .prepare(
                "INSERT OR IGNORE INTO sessions (token_hash, user_id, created_at, expires_at)
                 VALUES (?1, ?2, 0, 4102444800000)",
            )
            .expect("prepare");
        for id in 1..=users {
            let hash = hash_token(&format!("seed-{id}"));
            insert.execute((&hash[..], id)).expect("session");
        }
    }
    tx.commit().expect("commit");
}

/// Partners of user 1 (the "1,000 partners" of the benchmark).
const BUSY_PARTNERS: i64 = 1000;
const BATCH: i64 = 100_000;

fn main() {
    let args = Args::parse();
    if !args.db.exists() {
        seed(&args);
    }
    bench(&args);
}

fn seed(args: &Args) {
    let started = Instant::now();
    // The store creates the schema, without the search index (built once,
    // before measuring, from every message); then we load with plain SQL.
    drop(
        SqliteStore::open_with(
            &args.db,
            Durability::Normal,
            chat_server::changes::nowhere(),
            SearchIndex::Off,
        )
        .expect("create"),
    );
    let mut conn = rusqlite::Connection::open(&args.db).expect("open");
    conn.execute_batch(
        "PRAGMA synchronous = OFF;
         DROP INDEX private_messages_by_conversation;",
    )
    .expect("prepare load");
    {
        let tx = conn.transaction().expect("begin");
        let mut insert = tx
            .prepare("INSERT INTO users (nickname, email, password_hash, created_at) VALUES (?1, ?2, 'x', 0)")
            .expect("prepare");
        for i in 0..args.users {
            insert
                .execute((format!("seed{i}"), format!("seed{i}@x")))
                .expect("user");
        }
        drop(insert);
        tx.commit().expect("commit");
    }
    // A cheap, repeatable spread: user 1 talks to its 1,000 partners, the
    // others (2..=users) in random-looking pairs among themselves.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let t0 = 1_600_000_000_000i64;
    let mut done = 0;
    while done < args.messages {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO private_messages (sender_id, receiver_id, content, created_at)
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .expect("prepare");
            for i in done..(done + BATCH).min(args.messages) {
                let r = next();
                let (a, b) = if i % 10 == 0 {
                    (1, 2 + (r % BUSY_PARTNERS as u64) as i64)
                } else {
                    let others = (args.users - 1) as u64;
                    let a = 2 + (r % others) as i64;
                    let b = 2 + ((r >> 20) % others) as i64;
                    let next = if a == args.users { 2 } else { a + 1 };
                    (a, if b == a { next } else { b })
                };
                let (from, to) = if r & 1 == 0 { (a, b) } else { (b, a) };
                insert
                    .execute((from, to, sentence(&mut next), t0 + i))
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        done = (done + BATCH).min(args.messages);
        eprint!("\r{done} messages, {:.0}s", started.elapsed().as_secs_f64());
    }
    eprintln!("\nbuilding indexes and conversations...");
    // Everyone has read everything but the newest 10% of all messages.
    let read_up_to = args.messages * 9 / 10;
    conn.execute_batch(&format!(
        "CREATE INDEX private_messages_by_conversation ON private_messages (
             min(sender_id, receiver_id), max(sender_id, receiver_id), id);
         INSERT INTO conversations
                 (user_id, partner_id, last_message_id, last_read_id, partner_read_id, unread_count)
             SELECT me, partner, max(id), min(max(id), {read_up_to}), min(max(id), {read_up_to}),
                    sum(unread) FROM (
                 SELECT sender_id AS me, receiver_id AS partner, id, 0 AS unread FROM private_messages
                 UNION ALL
                 SELECT receiver_id, sender_id, id, id > {read_up_to} FROM private_messages)
             GROUP BY me, partner;
         PRAGMA synchronous = NORMAL;
         ANALYZE;"
    ))
    .expect("indexes");
    drop(conn);
    create_sessions(&args.db, args.users);
    eprintln!(
        "seeded {} users, {} messages in {:.1}s",
        args.users,
        args.messages,
        started.elapsed().as_secs_f64()
    );
}

/// Syllables of the seeded vocabulary's words.
const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "ne", "ru", "sa", "to", "vi", "da", "pe", "go", "li", "fa", "zu", "be", "ho",
    "mu", "ri", "te", "no",
];
/// Distinct words the seeded messages use.
const VOCABULARY: u64 = 10_000;
/// Words per seeded message.
const WORDS_PER_MESSAGE: usize = 8;

/// Word `index` of the vocabulary: its base-20 digits as syllables, at
/// least two ("la" is in no other word, so no word is another's prefix).
fn word(index: u64) -> String {
    let mut word = String::new();
    let mut n = index;
    loop {
        word.push_str(SYLLABLES[(n % 20) as usize]);
        n /= 20;
        if n == 0 {
            break;
        }
    }
    if word.len() < 4 {
        word.push_str("la");
    }
    word
}

/// A message of words drawn log-uniformly (close to the Zipf law of real
/// text): word 0 is in about half of the messages, word 9,000 in one of
/// ten thousand.
fn sentence(next: &mut impl FnMut() -> u64) -> String {
    let words: Vec<String> = (0..WORDS_PER_MESSAGE)
        .map(|_| {
            let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
            let index = ((VOCABULARY as f64).powf(u) as u64).saturating_sub(1);
            word(index.min(VOCABULARY - 1))
        })
        .collect();
    words.join(" ")
}

fn percentiles(mut samples: Vec<Duration>) -> String {
    if samples.is_empty() {
        return "no queries".into();
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e3;
    format!(
        "p50 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    )
}

fn time(queries: usize, mut query: impl FnMut(usize)) -> String {
    let samples = (0..queries)
        .map(|i| {
            let start = Instant::now();
            query(i);
            start.elapsed()
        })
        .collect();
    percentiles(samples)
}

fn bench(args: &Args) {
    // The whole index first (a server builds it in the background).
    let indexing = Instant::now();
    chat_server::repo::build_search_index(&args.db).expect("search index");
    eprintln!(
        "search index ready in {:.1}s",
        indexing.elapsed().as_secs_f64()
    );
    let store = SqliteStore::open(
        &args.db,
        Durability::Normal,
        chat_server::changes::nowhere(),
    )
    .expect("open");
    let conversations = store.conversations(1).expect("conversations");
    let target = match &args.http {
        Some(base) => {
            drop(store);
            // Files seeded before sessions came with the seed get them now.
            create_sessions(&args.db, args.users);
            println!("timing over HTTP: {base}");
            Target::Http {
                base: base.trim_end_matches('/').to_owned(),
                agent: ureq::AgentBuilder::new().build(),
            }
        }
        None => Target::Store(Box::new(store)),
    };
    println!(
        "database: {} (user 1 has {} conversations)",
        args.db.display(),
        conversations.len()
    );
    // History: a random partner of user 1, a page at a random depth.
    let partner = |i: usize| conversations[i * 7919 % conversations.len()].partner_id;
    let newest = conversations.first().map_or(1, |c| c.last_message.id);
    println!(
        "history page (before_id, any depth): {}",
        time(args.queries, |i| {
            let before = 1 + (i as i64 * 104_729) % newest;
            let page = Page {
                limit: 20,
                cursor: Cursor::BeforeId(before),
            };
            target.history(1, partner(i), page);
        })
    );
    println!(
        "history page (offset 0..1000):       {}",
        time(args.queries, |i| {
            let page = Page {
                limit: 20,
                cursor: Cursor::Offset((i % 50) as u32 * 20),
            };
            target.history(1, partner(i), page);
        })
    );
    println!(
        "conversation list of user 1:         {}",
        time(args.queries / 10, |_| target.conversations(1))
    );
    println!(
        "unread count (random users):         {}",
        time(args.queries, |i| target
            .unread(1 + (i as i64 * 7919) % args.users))
    );
    // Search, as user 1 (a tenth of all messages): a common word (in about
    // half of the messages), a rare one (one in ten thousand), and a
    // two-letter prefix (a twentieth of the vocabulary).
    for (kind, pick) in [
        (
            "common word",
            (|i: usize| word((i % 3) as u64)) as fn(usize) -> String,
        ),
        ("rare word", |i: usize| word(5_000 + (i as u64 * 7) % 5_000)),
        ("two-letter prefix", |i: usize| SYLLABLES[i % 20].to_owned()),
    ] {
        println!(
            "search, {kind:<18}         {}",
            time(args.queries / 4, |i| target.search(1, &pick(i)))
        );
    }
}
