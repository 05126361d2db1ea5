//! Load generator: many simulated users on a few threads with non-blocking
//! sockets (mio), so that it does not need a thread per client on a box
//! whose thread count is what we are measuring.
//!
//! ```text
//! cargo run --release --example loadgen -- pairs --users 1000 --rate 10000 --seconds 30
//! cargo run --release --example loadgen -- pairs --users 1000 --seconds 30     # as fast as possible
//! cargo run --release --example loadgen -- pairs --users 1000 --rate 5000 --typing-users 1000
//! cargo run --release --example loadgen -- pairs --users 1000 --seconds 30 --kind react
//! cargo run --release --example loadgen -- idle --users 2000 --seconds 60
//! cargo run --release --example loadgen -- storm --users 2000
//! cargo run --release --example loadgen -- history --clients 4 --seconds 30  # on a seed_db database
//! ```
//!
//! Start the server with `--message-rate 0 --login-rate 0 --register-rate 0 --registration open`
//! (the limits are for people, not for load tests). Users `lg0`, `lg1`, …
//! are registered on first use and reused after. The sender puts the send
//! time in each message; the receiver records send → receive latency in an
//! HDR histogram. At the end it prints throughput, latency percentiles,
//! errors, and the server's RSS and thread count from /proc.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

mod history;

/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// A storm that has not settled after this long is reported as failed
/// rather than waited for (load runs are bounded in time).
const STORM_LIMIT: Duration = Duration::from_secs(180);
/// Longest a worker sleeps in `poll` when nothing is due.
const POLL_TICK: Duration = Duration::from_millis(5);

#[derive(Parser)]
#[command(about = "Load generator for chat-server")]
struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// The server's process id, for RSS and threads (default: the first
    /// process named chat-server).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Worker threads driving the sockets.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Nickname prefix of the simulated users.
    #[arg(long, default_value = "lg")]
    prefix: String,
    /// File that keeps the users' sessions between runs (logins cost an
    /// Argon2 hash each, 20 ms of server CPU: a run with thousands of users
    /// would spend its first minute logging in).
    #[arg(long)]
    sessions: Option<std::path::PathBuf>,
    /// Drive `examples/relay_baseline` at this address instead of a chat
    /// server: no accounts, users 1..=N connect as `ws://ADDR/?user=N`.
    #[arg(long)]
    relay: Option<String>,
    /// Seconds at the start of a sending run whose latencies are not
    /// recorded (connections settle, presence floods pass).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Ask for presence as one frame per user (the published default form)
    /// instead of lists (`?presence=batch`, what our own clients ask for).
    #[arg(long)]
    per_user_presence: bool,
    #[command(subcommand)]
    scenario: Command,
}

#[derive(Subcommand, Clone)]
enum Command {
    #[command(flatten)]
    Sockets(Scenario),
    History(history::Options),
}

/// The scenarios that drive WebSockets.
#[derive(Subcommand, Clone)]
enum Scenario {
    /// Users in pairs send each other messages: at a fixed total rate
    /// (open loop), or as fast as the server answers.
    Pairs {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        /// Total messages per second; without it, as fast as possible.
        #[arg(long)]
        rate: Option<f64>,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Unanswered sends per user in the as-fast-as-possible mode.
        #[arg(long, default_value_t = 4)]
        window: usize,
        /// What each send is (reactions and edits act on one message per
        /// user, sent first).
        #[arg(long, value_enum, default_value_t = Kind::Message)]
        kind: Kind,
        /// This many users also type to their partner: a `start` or a
        /// `stop`, in turn, once a second each.
        #[arg(long, default_value_t = 0)]
        typing_users: usize,
        /// Words of ordinary text after the timestamp in every message
        /// (what the search index has to index); 0: the timestamp alone.
        #[arg(long, default_value_t = 0)]
        words: usize,
    },
    /// Hold connections open and report what they cost the server.
    Idle {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// All users connect at once; time until every client's online list is
    /// complete.
    Storm {
        #[arg(long, default_value_t = 1000)]
        users: usize,
    },
}

/// What a sending client sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// `private_message`: a stored message each.
    Message,
    /// `react` on its own message, on and off in turn: a change each.
    React,
    /// `edit_message` of its own message: a change each.
    Edit,
}

/// How often a typing user sends a typing frame.
const TYPING_EVERY: Duration = Duration::from_secs(1);

/// A simulated user: id, session cookie, and whom it writes to.
#[derive(Clone)]
struct User {
    id: i64,
    cookie: String,
    partner: i64,
}

/// Counters shared by the workers, for the progress line and the report.
#[derive(Default)]
struct Totals {
    connected: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    stored: AtomicU64,
    errors: AtomicU64,
    complete_presence: AtomicU64,
    /// The slowest send→receive latency (µs) since the last progress line:
    /// shows when in a run the tail happens.
    slowest_us: AtomicU64,
    /// Workers whose clients are all connected.
    workers_ready: AtomicU64,
    typing_sent: AtomicU64,
    typing_received: AtomicU64,
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

type Error = Box<dyn std::error::Error + Send + Sync>;

fn run(args: &Args) -> Result<(), Error> {
    let base = args.server.trim_end_matches('/').to_owned();
    let server_pid = args.server_pid.or_else(find_server_pid);
    match &args.scenario {
        Command::Sockets(scenario) => run_sockets(args, scenario, &base, server_pid),
        Command::History(options) => {
            let warmup = Duration::from_secs(args.warmup);
            history::run(&base, server_pid, warmup, options)
        }
    }
}

fn run_sockets(
    args: &Args,
    scenario: &Scenario,
    base: &str,
    server_pid: Option<u32>,
) -> Result<(), Error> {
    let users_wanted = match scenario {
        Scenario::Pairs { users, .. }
        | Scenario::Idle { users, .. }
        | Scenario::Storm { users } => *users,
    };
    let ws_url = match &args.relay {
        Some(addr) => format!("ws://{addr}/"),
        None => ureq::get(&format!("{base}/api/config"))
            .call()?
            .into_json::<Value>()?["ws_url"]
            .as_str()
            .ok_or("no ws_url")?
            .to_owned(),
    };
    check_limits(users_wanted, server_pid);

    let started = Instant::now();
    let mut users = match &args.relay {
        Some(_) => (1..=users_wanted as i64)
            .map(|id| User {
                id,
                cookie: String::new(),
                partner: 0,
            })
            .collect(),
        None => ensure_users(
            base,
            &args.prefix,
            users_wanted,
            args.threads * 4,
            args.sessions.as_deref(),
        )?,
    };
    pair_up(&mut users);
    eprintln!(
        "{} users ready in {:.1}s",
        users.len(),
        started.elapsed().as_secs_f64()
    );
    let before = server_pid.and_then(proc_status);
    let cpu_before = server_pid.and_then(proc_cpu_seconds);

    let totals = Arc::new(Totals::default());
    let latencies = Arc::new(Mutex::new(new_histogram()));
    let epoch = Instant::now();
    let plan = Plan::from(scenario, args, users.len());
    let chunks: Vec<Vec<User>> = split(&users, args.threads);
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (ws_url, totals, latencies, plan) = (
                ws_url.clone(),
                totals.clone(),
                latencies.clone(),
                plan.clone(),
            );
            std::thread::spawn(move || worker(&ws_url, chunk, &plan, &totals, &latencies, epoch))
        })
        .collect();

    // Progress, until the workers finish; the server's footprint is
    // sampled meanwhile (the workers close their sockets when they end).
    let mut last = (Instant::now(), 0u64);
    let mut peak = before;
    // (seconds, RSS KiB) once per progress line, for the soak's trend.
    let mut rss_samples: Vec<(f64, u64)> = Vec::new();
    // The hub's event times, from /metrics, over the measured part.
    let mut hub_before: Option<HubEvents> = None;
    let mut measuring_from: Option<Instant> = None;
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(PROGRESS_EVERY.min(Duration::from_millis(200)));
        if totals.workers_ready.load(Ordering::Relaxed) as usize == plan.workers {
            let from = *measuring_from.get_or_insert_with(|| Instant::now() + plan.warmup);
            if hub_before.is_none() && Instant::now() >= from {
                hub_before = hub_events(base, &args.relay);
            }
        }
        if let Some((rss, threads)) = server_pid.and_then(proc_status) {
            let (peak_rss, peak_threads) = peak.unwrap_or((0, 0));
            peak = Some((peak_rss.max(rss), peak_threads.max(threads)));
        }
        if last.0.elapsed() >= PROGRESS_EVERY {
            if let Some((rss, _)) = server_pid.and_then(proc_status) {
                rss_samples.push((epoch.elapsed().as_secs_f64(), rss));
            }
            let received = totals.received.load(Ordering::Relaxed);
            let rate = (received - last.1) as f64 / last.0.elapsed().as_secs_f64();
            let presence = match plan.expect_online {
                Some(_) => format!(
                    " presence complete {}",
                    totals.complete_presence.load(Ordering::Relaxed)
                ),
                None => String::new(),
            };
            let slowest = match totals.slowest_us.swap(0, Ordering::Relaxed) {
                0 => String::new(),
                us => format!(" slowest {:.1} ms", us as f64 / 1000.0),
            };
            eprintln!(
                "[{:5.1}s] connected {}/{} sent {} received {} ({rate:.0}/s){slowest} errors {}{presence}",
                epoch.elapsed().as_secs_f64(),
                totals.connected.load(Ordering::Relaxed),
                users.len(),
                totals.sent.load(Ordering::Relaxed),
                received,
                totals.errors.load(Ordering::Relaxed),
            );
            last = (Instant::now(), received);
        }
    }
    let mut outcomes = Vec::new();
    for w in workers {
        outcomes.push(w.join().map_err(|_| "a worker panicked")??);
    }
    let hub_after = hub_events(base, &args.relay);
    report(
        scenario, &plan, &totals, &latencies, &outcomes, before, peak,
    );
    if let (Some(before), Some(after)) = (hub_before, hub_after) {
        println!("hub events:      {}", before.until(&after));
    }
    // The figure that compares fairly across servers and machines: work
    // done per second of the server's own CPU (connecting included).
    if let (Some(cpu0), Some(cpu1)) = (cpu_before, server_pid.and_then(proc_cpu_seconds)) {
        let cpu = cpu1 - cpu0;
        let stored = totals.stored.load(Ordering::Relaxed) as f64;
        println!(
            "server CPU:      {cpu:.2} s ({:.0} stored messages per CPU-second)",
            stored / cpu.max(f64::MIN_POSITIVE)
        );
    }
    report_rss_trend(&rss_samples);
    Ok(())
}

/// What each worker does, derived from the scenario.
#[derive(Clone)]
struct Plan {
    /// Sends per second for this worker (open loop); `None`: closed loop.
    rate: Option<f64>,
    window: usize,
    send: bool,
    run_for: Option<Duration>,
    /// Storm: stop once every client sees all the others online.
    expect_online: Option<usize>,
    /// Sending starts when every worker's clients are connected; latencies
    /// count after this much more.
    warmup: Duration,
    workers: usize,
    /// The WebSocket URL's query for the server (see `Args`).
    presence_query: &'static str,
    kind: Kind,
    /// Users per worker that type (the first ones of its chunk).
    typing_users: usize,
    /// Words of text after each message's timestamp.
    words: usize,
}

impl Plan {
    fn from(scenario: &Scenario, args: &Args, users: usize) -> Plan {
        let (threads, warmup) = (args.threads, args.warmup);
        let plan = match scenario {
            Scenario::Pairs {
                rate,
                seconds,
                window,
                kind,
                typing_users,
                words,
                ..
            } => Plan {
                rate: rate.map(|r| r / threads as f64),
                window: *window,
                send: true,
                run_for: Some(Duration::from_secs(*seconds)),
                expect_online: None,
                warmup: Duration::ZERO,
                workers: 1,
                presence_query: "",
                kind: *kind,
                typing_users: typing_users.div_ceil(threads.max(1)),
                words: *words,
            },
            Scenario::Idle { seconds, .. } => Plan {
                rate: None,
                window: 0,
                send: false,
                run_for: Some(Duration::from_secs(*seconds)),
                expect_online: None,
                warmup: Duration::ZERO,
                workers: 1,
                presence_query: "",
                kind: Kind::Message,
                typing_users: 0,
                words: 0,
            },
            Scenario::Storm { .. } => Plan {
                rate: None,
                window: 0,
                send: false,
                run_for: None,
                expect_online: Some(users - 1),
                warmup: Duration::ZERO,
                workers: 1,
                presence_query: "",
                kind: Kind::Message,
                typing_users: 0,
                words: 0,
            },
        };
        Plan {
            warmup: Duration::from_secs(warmup),
            workers: threads.max(1),
            presence_query: if args.per_user_presence {
                ""
            } else {
                "?presence=batch"
            },
            ..plan
        }
    }
}

/// What a worker measured besides the shared counters.
struct Outcome {
    all_connected_at: Option<Duration>,
    presence_complete_at: Option<Duration>,
    elapsed: Duration,
}

fn split(users: &[User], parts: usize) -> Vec<Vec<User>> {
    let parts = parts.max(1);
    let mut chunks = vec![Vec::new(); parts];
    for (i, user) in users.iter().enumerate() {
        chunks[i % parts].push(user.clone());
    }
    chunks
}

/// "p50 …  p90 …  p99 …  p99.9 …  max …" in milliseconds, from a histogram
/// of microseconds.
fn percentiles_ms(histogram: &Histogram<u64>) -> String {
    let ms = |micros: u64| micros as f64 / 1000.0;
    let at = |q: f64| ms(histogram.value_at_quantile(q));
    format!(
        "p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        ms(histogram.max())
    )
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 60 s, 3 significant digits.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")
}

// ------------------------------------------------------------- users ---

/// Registers (or reuses) `count` users and logs each in, on a few threads;
/// sessions found in the `sessions` file are reused, new ones saved there.
fn ensure_users(
    base: &str,
    prefix: &str,
    count: usize,
    threads: usize,
    sessions: Option<&std::path::Path>,
) -> Result<Vec<User>, Error> {
    let saved = saved_sessions(sessions);
    let cached: Vec<Option<User>> = (0..count)
        .map(|i| saved.get(&format!("{prefix}{i}")).cloned())
        .collect();
    let next = Arc::new(AtomicU64::new(0));
    let found = Arc::new(Mutex::new(cached));
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (next, found, base, prefix) = (
                next.clone(),
                found.clone(),
                base.to_owned(),
                prefix.to_owned(),
            );
            std::thread::spawn(move || -> Result<(), Error> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if i >= count {
                        return Ok(());
                    }
                    if found.lock().map_err(|_| "poisoned")?[i].is_some() {
                        continue;
                    }
                    let user = login_or_register(&base, &format!("{prefix}{i}"))?;
                    found.lock().map_err(|_| "poisoned")?[i] = Some(user);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().map_err(|_| "a setup thread panicked")??;
    }
    let found = found.lock().map_err(|_| "poisoned")?;
    let users: Vec<User> = found.iter().flatten().cloned().collect();
    if let Some(path) = sessions {
        // Kept: the sessions of users beyond `count` from earlier, larger
        // runs (a smaller run must not cost the next large one its logins).
        let ours: HashSet<String> = (0..users.len()).map(|i| format!("{prefix}{i}")).collect();
        let mut lines: String = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|n| !ours.contains(n))
            })
            .map(|line| format!("{line}\n"))
            .collect();
        for (i, u) in users.iter().enumerate() {
            lines.push_str(&format!("{prefix}{i} {} {}\n", u.id, u.cookie));
        }
        std::fs::write(path, lines)?;
    }
    Ok(users)
}

/// Pairs users 0↔1, 2↔3, … (an odd last user writes to user 0).
fn pair_up(users: &mut [User]) {
    let ids: Vec<i64> = users.iter().map(|u| u.id).collect();
    for (i, user) in users.iter_mut().enumerate() {
        let partner = if i % 2 == 0 { i + 1 } else { i - 1 };
        user.partner = ids.get(partner).copied().unwrap_or(ids[0]);
    }
}

/// The sessions file: one `nickname id cookie` line per user.
fn saved_sessions(file: Option<&std::path::Path>) -> std::collections::HashMap<String, User> {
    let text = file
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let nickname = fields.next()?.to_owned();
            let user = User {
                id: fields.next()?.parse().ok()?,
                cookie: fields.next()?.to_owned(),
                partner: 0,
            };
            Some((nickname, user))
        })
        .collect()
}

fn login_or_register(base: &str, nickname: &str) -> Result<User, Error> {
    let password = "loadgen-password";
    let body = json!({"nickname": nickname, "email": format!("{nickname}@loadgen.invalid"), "password": password});
    match ureq::post(&format!("{base}/api/register")).send_json(body) {
        Ok(_) | Err(ureq::Error::Status(409, _)) => {}
        Err(e) => return Err(format!("register {nickname}: {e}").into()),
    }
    let response = ureq::post(&format!("{base}/api/login"))
        .send_json(json!({"identifier": nickname, "password": password}))
        .map_err(|e| format!("login {nickname}: {e}"))?;
    let cookie = response
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .ok_or("no cookie")?
        .to_owned();
    let body: Value = response.into_json()?;
    Ok(User {
        id: body["user"]["id"].as_i64().ok_or("no id")?,
        cookie,
        partner: 0,
    })
}

// ------------------------------------------------------------ worker ---

enum Socket {
    Connecting(TcpStream),
    Handshaking(MidHandshake<ClientHandshake<TcpStream>>),
    Open(WebSocket<TcpStream>),
    Closed,
}

struct Client {
    user: User,
    socket: Socket,
    inflight: usize,
    online: OnlineSet,
    presence_done: bool,
    /// Reactions and edits: the message they act on, once it is stored
    /// (`Some(None)`: sent, not yet answered).
    seed: Option<Option<i64>>,
    /// Reactions: whether the next one turns it on.
    react_on: bool,
    /// Reactions: send times (µs) of those not yet answered, in order.
    unanswered: std::collections::VecDeque<u64>,
    /// Typing users: when the next typing frame is due, and which.
    next_typing: Option<Instant>,
    typing_on: bool,
}

/// The users one client sees online, as a bitset indexed by user id. A
/// storm of 10,000 clients holds 100 million entries: as `HashSet`s they
/// took 2.7 GB and much of the generator's time, as bits 12.5 MB.
#[derive(Default)]
struct OnlineSet {
    words: Vec<u64>,
    count: usize,
}

impl OnlineSet {
    /// Ids beyond this are not tracked (ours are counted from 1).
    const MAX_ID: usize = 1 << 26;

    fn slot(id: i64) -> Option<(usize, u64)> {
        let id = usize::try_from(id).ok().filter(|id| *id < Self::MAX_ID)?;
        Some((id / 64, 1 << (id % 64)))
    }

    fn insert(&mut self, id: i64) {
        let Some((word, bit)) = Self::slot(id) else {
            return;
        };
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        if self.words[word] & bit == 0 {
            self.words[word] |= bit;
            self.count += 1;
        }
    }

    fn remove(&mut self, id: i64) {
        let Some((word, bit)) = Self::slot(id) else {
            return;
        };
        if let Some(w) = self.words.get_mut(word).filter(|w| **w & bit != 0) {
            *w &= !bit;
            self.count -= 1;
        }
    }

    fn len(&self) -> usize {
        self.count
    }
}

fn worker(
    ws_url: &str,
    users: Vec<User>,
    plan: &Plan,
    totals: &Totals,
    latencies: &Mutex<Histogram<u64>>,
    epoch: Instant,
) -> Result<Outcome, Error> {
    let addr = ws_addr(ws_url)?;
    let mut poll = Poll::new()?;
    let mut clients = Vec::with_capacity(users.len());
    for (i, user) in users.into_iter().enumerate() {
        let mut stream = TcpStream::connect(addr)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        clients.push(Client {
            user,
            socket: Socket::Connecting(stream),
            inflight: 0,
            online: OnlineSet::default(),
            presence_done: false,
            seed: None,
            react_on: true,
            unanswered: std::collections::VecDeque::new(),
            next_typing: None,
            typing_on: false,
        });
    }
    let mut histogram = new_histogram();
    let mut events = Events::with_capacity(1024);
    // Clients done connecting: open, or failed before they were.
    let mut settled = 0;
    let mut all_connected_at = None;
    let mut presence_complete = 0;
    let mut presence_complete_at = None;
    let mut next_send = Instant::now();
    let mut round_robin = 0;
    let mut run_until: Option<Instant> = None;
    // Latencies of messages sent before this (µs since epoch) are not kept.
    let mut record_from = Duration::MAX;

    loop {
        poll.poll(&mut events, Some(POLL_TICK))?;
        for event in events.iter() {
            let Some(client) = clients.get_mut(event.token().0) else {
                continue;
            };
            let was_connecting = matches!(
                client.socket,
                Socket::Connecting(_) | Socket::Handshaking(_)
            );
            drive(
                client,
                ws_url,
                totals,
                &mut histogram,
                epoch,
                plan,
                record_from,
            );
            if was_connecting {
                match client.socket {
                    Socket::Open(_) => {
                        settled += 1;
                        totals.connected.fetch_add(1, Ordering::Relaxed);
                    }
                    // Counted in `errors`; the run goes on without it
                    // rather than wait for it forever.
                    Socket::Closed => settled += 1,
                    _ => {}
                }
            }
            if !client.presence_done && plan.expect_online.is_some_and(|n| client.online.len() >= n)
            {
                client.presence_done = true;
                presence_complete += 1;
                totals.complete_presence.fetch_add(1, Ordering::Relaxed);
            }
        }
        if settled == clients.len() && all_connected_at.is_none() {
            all_connected_at = Some(epoch.elapsed());
            totals.workers_ready.fetch_add(1, Ordering::Relaxed);
        }
        // The run starts when every worker is connected, so no worker sends
        // while others are still flooding the server with handshakes.
        if run_until.is_none()
            && totals.workers_ready.load(Ordering::Relaxed) as usize == plan.workers
        {
            let start = Instant::now();
            record_from = epoch.elapsed() + plan.warmup;
            run_until = plan.run_for.map(|d| start + plan.warmup + d);
            next_send = start;
            // Typing users start spread over the first second.
            let typists = plan.typing_users.min(clients.len());
            for (i, client) in clients.iter_mut().take(typists).enumerate() {
                client.next_typing = Some(start + TYPING_EVERY.mul_f64(i as f64 / typists as f64));
            }
        }
        // Storm: done when every client of every worker sees everyone. A
        // worker must not hang up earlier: its clients leaving would take
        // users out of the other workers' lists.
        if let Some(others) = plan.expect_online {
            if presence_complete == clients.len() && presence_complete_at.is_none() {
                presence_complete_at = Some(epoch.elapsed());
            }
            if totals.complete_presence.load(Ordering::Relaxed) as usize == others + 1 {
                break;
            }
            if epoch.elapsed() > STORM_LIMIT {
                eprintln!("storm: not settled after {STORM_LIMIT:?}; giving up");
                break;
            }
        }
        if run_until.is_some_and(|t| Instant::now() >= t) {
            break;
        }
        if run_until.is_none() || !plan.send {
            continue;
        }
        let now = Instant::now();
        for client in clients.iter_mut().take(plan.typing_users) {
            if client.next_typing.is_some_and(|due| now >= due) {
                send_typing(client, totals);
                client.next_typing = client.next_typing.map(|due| due + TYPING_EVERY);
            }
        }
        // Send what is due.
        match plan.rate {
            Some(rate) => {
                let interval = Duration::from_secs_f64(1.0 / rate);
                while Instant::now() >= next_send {
                    round_robin = (round_robin + 1) % clients.len();
                    send(&mut clients[round_robin], totals, epoch, plan);
                    next_send += interval;
                }
            }
            None => {
                for client in &mut clients {
                    while client.inflight < plan.window {
                        if !send(client, totals, epoch, plan) {
                            break;
                        }
                    }
                }
            }
        }
    }
    for client in &mut clients {
        if let Socket::Open(ws) = &mut client.socket {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
    }
    latencies
        .lock()
        .map_err(|_| "poisoned")?
        .add(&histogram)
        .map_err(|e| format!("histogram: {e:?}"))?;
    Ok(Outcome {
        all_connected_at,
        presence_complete_at,
        elapsed: epoch.elapsed(),
    })
}

fn ws_addr(ws_url: &str) -> Result<SocketAddr, Error> {
    let host = ws_url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or("ws_url must be ws://host:port/ws")?;
    host.to_socket_addrs()?
        .next()
        .ok_or_else(|| "ws_url resolves to nothing".into())
}

fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == ErrorKind::WouldBlock)
}

/// Advances one client as far as its socket allows.
fn drive(
    client: &mut Client,
    ws_url: &str,
    totals: &Totals,
    histogram: &mut Histogram<u64>,
    epoch: Instant,
    plan: &Plan,
    record_from: Duration,
) {
    loop {
        client.socket = match std::mem::replace(&mut client.socket, Socket::Closed) {
            Socket::Connecting(stream) => match stream.peer_addr() {
                Ok(_) => {
                    let _ = stream.set_nodelay(true);
                    // The relay knows users by the query, the server by
                    // cookie; from the server, presence comes as lists.
                    let url = if client.user.cookie.is_empty() {
                        format!("{ws_url}?user={}", client.user.id)
                    } else {
                        format!("{ws_url}{}", plan.presence_query)
                    };
                    let mut request = match url.into_client_request() {
                        Ok(r) => r,
                        Err(_) => return fail(client, totals),
                    };
                    if let Ok(cookie) = client.user.cookie.parse() {
                        request.headers_mut().insert("Cookie", cookie);
                    }
                    let config = WebSocketConfig::default()
                        .read_buffer_size(16 * 1024)
                        .write_buffer_size(0);
                    match tungstenite::client::client_with_config(request, stream, Some(config)) {
                        Ok((ws, _)) => Socket::Open(ws),
                        Err(HandshakeError::Interrupted(mid)) => {
                            client.socket = Socket::Handshaking(mid);
                            return;
                        }
                        Err(HandshakeError::Failure(_)) => return fail(client, totals),
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotConnected => {
                    client.socket = Socket::Connecting(stream);
                    return;
                }
                Err(_) => return fail(client, totals),
            },
            Socket::Handshaking(mid) => match mid.handshake() {
                Ok((ws, _)) => Socket::Open(ws),
                Err(HandshakeError::Interrupted(mid)) => {
                    client.socket = Socket::Handshaking(mid);
                    return;
                }
                Err(HandshakeError::Failure(_)) => return fail(client, totals),
            },
            Socket::Open(mut ws) => {
                let _ = ws.flush();
                loop {
                    match ws.read() {
                        Ok(Message::Text(text)) => on_frame(
                            client,
                            text.as_str(),
                            totals,
                            histogram,
                            epoch,
                            plan,
                            record_from,
                        ),
                        Ok(_) => {}
                        Err(e) if would_block(&e) => break,
                        Err(_) => return fail(client, totals),
                    }
                }
                // Answers to pings read just now go out at once, not with
                // the next event (a storm's clients send nothing else).
                let _ = ws.flush();
                client.socket = Socket::Open(ws);
                return;
            }
            Socket::Closed => return,
        };
    }
}

fn fail(client: &mut Client, totals: &Totals) {
    client.socket = Socket::Closed;
    totals.errors.fetch_add(1, Ordering::Relaxed);
}

fn on_frame(
    client: &mut Client,
    text: &str,
    totals: &Totals,
    histogram: &mut Histogram<u64>,
    epoch: Instant,
    plan: &Plan,
    record_from: Duration,
) {
    // 10,000 clients get N² presence entries; parsing them into `Value`s
    // made the generator, not the server, the bottleneck. A scenario that
    // checks presence reads only their ids, without a map per user; the
    // others skip them unparsed.
    let presence = [
        (r#"{"type":"online_users","#, true),
        (r#"{"type":"user_online","#, true),
        (r#"{"type":"user_offline","#, false),
    ]
    .into_iter()
    .find(|(start, _)| text.starts_with(start));
    if let Some((_, online)) = presence {
        if plan.expect_online.is_some() {
            track_presence(client, text, online, totals);
        }
        return;
    }
    let Ok(frame) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let mut record = |sent_at: u64| {
        if u128::from(sent_at) >= record_from.as_micros() {
            let now = epoch.elapsed().as_micros() as u64;
            let latency = now.saturating_sub(sent_at).max(1);
            let _ = histogram.record(latency);
            totals.slowest_us.fetch_max(latency, Ordering::Relaxed);
        }
    };
    let own_change = |client: &mut Client, totals: &Totals| {
        client.inflight = client.inflight.saturating_sub(1);
        totals.stored.fetch_add(1, Ordering::Relaxed);
    };
    match frame["type"].as_str() {
        // Reactions and edits: the sender's own change is its answer (and
        // its latency); the partner's copy counts as received.
        Some("reaction") if frame["user_id"] == client.user.id => {
            own_change(client, totals);
            if let Some(sent_at) = client.unanswered.pop_front() {
                record(sent_at);
            }
        }
        Some("message_edited") if client.seed == Some(frame["message_id"].as_i64()) => {
            own_change(client, totals);
            if let Some(sent_at) = frame["content"].as_str().and_then(|c| c.parse().ok()) {
                record(sent_at);
            }
        }
        Some("reaction" | "message_edited") => {
            totals.received.fetch_add(1, Ordering::Relaxed);
        }
        Some("typing") => {
            totals.typing_received.fetch_add(1, Ordering::Relaxed);
        }
        // The answer to the message that reactions and edits act on.
        Some("message_delivered" | "message_failed") if client.seed == Some(None) => {
            client.seed = Some(frame["message_id"].as_i64());
            if client.seed == Some(None) {
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some("message_failed") if frame["action"].is_string() => {
            client.inflight = client.inflight.saturating_sub(1);
            client.unanswered.pop_front();
            totals.errors.fetch_add(1, Ordering::Relaxed);
        }
        Some("private_message") => {
            totals.received.fetch_add(1, Ordering::Relaxed);
            if let Some(sent_at) = frame["content"].as_str().and_then(stamp_of) {
                record(sent_at);
            }
        }
        Some("message_delivered") => {
            client.inflight = client.inflight.saturating_sub(1);
            totals.stored.fetch_add(1, Ordering::Relaxed);
        }
        Some("message_failed") => {
            client.inflight = client.inflight.saturating_sub(1);
            if frame["message_id"].is_i64() {
                totals.stored.fetch_add(1, Ordering::Relaxed);
            } else {
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some("error") => {
            totals.errors.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

/// Applies an `online_users`, `user_online` or `user_offline` frame (all
/// three list `users`) to the client's online set, reading only the ids.
///
/// In a 10,000-user storm these frames are ~3 GB, and parsing them with
/// serde took the generator 6.1 s of CPU per run, on the two cores the
/// server needs. Scanning is enough: the server writes every entry as
/// `{"id":N,"nickname":…}`, and `{"id":` cannot occur inside a JSON string,
/// where every `"` is escaped. A frame whose entries do not match counts as
/// an error rather than being half applied.
fn track_presence(client: &mut Client, text: &str, online: bool, totals: &Totals) {
    // The per-user form names one user as `"from_user_id":N,`.
    const SINGLE: &str = r#""from_user_id":"#;
    const ENTRY: &str = r#"{"id":"#;
    let entry = if text.contains(SINGLE) { SINGLE } else { ENTRY };
    let mut ids = Vec::new();
    for (at, _) in text.match_indices(entry) {
        let digits = &text[at + entry.len()..];
        let end = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        match digits[..end].parse::<i64>() {
            Ok(id) if digits[end..].starts_with(',') => ids.push(id),
            _ => {
                totals.errors.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
    for id in ids {
        if online {
            client.online.insert(id);
        } else {
            client.online.remove(id);
        }
    }
}

/// Sends one message (or reaction, or edit) stamped with the send time (µs
/// since the run began). A reaction or edit first needs its message: until
/// that is stored, nothing else is sent.
/// Ordinary words, for messages that look like text to the search index.
const WORDS: [&str; 64] = [
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are",
    "as", "with", "his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by",
    "word", "but", "not", "what", "all", "were", "we", "when", "your", "can", "said", "there",
    "use", "an", "each", "which", "she", "do", "how", "their", "if", "will", "up", "other",
    "about", "out", "many", "then", "them", "these", "so", "some", "her", "would", "make", "like",
    "coffee",
];

/// The content of a message sent at `stamp`: the timestamp (what the
/// receiver reads its latency from), then `words` words.
fn content(stamp: u64, words: usize) -> String {
    let mut text = stamp.to_string();
    let mut state = stamp | 1;
    for _ in 0..words {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push(' ');
        text.push_str(WORDS[(state % WORDS.len() as u64) as usize]);
    }
    text
}

/// The timestamp a message's content starts with.
fn stamp_of(content: &str) -> Option<u64> {
    content.split(' ').next()?.parse().ok()
}

fn send(client: &mut Client, totals: &Totals, epoch: Instant, plan: &Plan) -> bool {
    let kind = plan.kind;
    let Socket::Open(ws) = &mut client.socket else {
        return false;
    };
    let stamp = epoch.elapsed().as_micros() as u64;
    let seed = match (kind, client.seed) {
        (Kind::Message, _) => None,
        (_, Some(Some(id))) => Some(id),
        (_, Some(None)) => return false, // waiting for it
        (_, None) => {
            let frame = json!({"type": "private_message", "to_user_id": client.user.partner, "content": "seed"});
            client.seed = Some(None);
            if ws.send(Message::text(frame.to_string())).is_err() {
                totals.errors.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
    };
    let frame = match (kind, seed) {
        (Kind::React, Some(id)) => {
            let on = client.react_on;
            client.react_on = !on;
            client.unanswered.push_back(stamp);
            json!({"type": "react", "message_id": id, "emoji": "👍", "on": on})
        }
        (Kind::Edit, Some(id)) => {
            json!({"type": "edit_message", "message_id": id, "content": stamp.to_string()})
        }
        _ => {
            json!({"type": "private_message", "to_user_id": client.user.partner, "content": content(stamp, plan.words)})
        }
    };
    match ws.send(Message::text(frame.to_string())) {
        Ok(()) => {}
        Err(e) if would_block(&e) => {} // queued; flushed when writable
        Err(_) => {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            return false;
        }
    }
    client.inflight += 1;
    totals.sent.fetch_add(1, Ordering::Relaxed);
    true
}

/// A typing frame to the partner: `start` and `stop` in turn.
fn send_typing(client: &mut Client, totals: &Totals) {
    let Socket::Open(ws) = &mut client.socket else {
        return;
    };
    client.typing_on = !client.typing_on;
    let state = if client.typing_on { "start" } else { "stop" };
    let frame = json!({"type": "typing", "to_user_id": client.user.partner, "state": state});
    match ws.send(Message::text(frame.to_string())) {
        Ok(()) => {}
        Err(e) if would_block(&e) => {}
        Err(_) => {
            totals.errors.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    totals.typing_sent.fetch_add(1, Ordering::Relaxed);
}

/// The hub's event-time histogram from `/metrics` (cumulative).
struct HubEvents {
    /// (upper bound in seconds, events at or below it)
    buckets: Vec<(f64, u64)>,
    sum_seconds: f64,
    count: u64,
}

impl HubEvents {
    /// Mean and 99th percentile (the bucket bound it falls in) of the
    /// events between `self` and `later`.
    fn until(&self, later: &HubEvents) -> String {
        let count = later.count.saturating_sub(self.count);
        if count == 0 {
            return "none".into();
        }
        let mean_us = (later.sum_seconds - self.sum_seconds) / count as f64 * 1e6;
        let p99 = later
            .buckets
            .iter()
            .zip(&self.buckets)
            .find(|((_, after), (_, before))| (after - before) as f64 >= 0.99 * count as f64)
            .map_or("> 1 s".to_owned(), |((bound, _), _)| {
                format!("≤ {:.0} µs", bound * 1e6)
            });
        format!("{count} events, mean {mean_us:.1} µs, p99 {p99}")
    }
}

fn hub_events(base: &str, relay: &Option<String>) -> Option<HubEvents> {
    if relay.is_some() {
        return None;
    }
    let text = ureq::get(&format!("{base}/metrics"))
        .call()
        .ok()?
        .into_string()
        .ok()?;
    let name = "chat_hub_event_seconds";
    let mut events = HubEvents {
        buckets: Vec::new(),
        sum_seconds: 0.0,
        count: 0,
    };
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (key, value) = rest.rsplit_once(' ')?;
        if let Some(bound) = key
            .strip_prefix("_bucket{le=\"")
            .and_then(|b| b.strip_suffix("\"}"))
        {
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            events.buckets.push((bound, value.parse().ok()?));
        } else if key == "_sum" {
            events.sum_seconds = value.parse().ok()?;
        } else if key == "_count" {
            events.count = value.parse().ok()?;
        }
    }
    Some(events)
}

// ------------------------------------------------------------ report ---

/// VmRSS (KiB) and thread count of a process.
fn proc_status(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("Threads:")?))
}

/// User + system CPU time of a process, in seconds (`/proc/PID/stat`).
fn proc_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

fn find_server_pid() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(entry.path().join("comm")).ok()?;
            (comm.trim() == "chat-server").then_some(pid)
        })
}

/// Says which kernel and process limits are too low for `connections`
/// WebSockets (two threads and one socket each on the server), and the
/// command that raises each. The README's "Many connections" lists them.
fn check_limits(connections: usize, server_pid: Option<u32>) {
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let threads = 2 * connections as u64 + 64;
    // pid_max counts every thread on the machine, the generator's included.
    if let Some(max) = read("/proc/sys/kernel/pid_max").filter(|m| *m < threads + 4096) {
        eprintln!(
            "warning: kernel.pid_max is {max}; {threads} server threads plus the rest may not fit (sysctl -w kernel.pid_max=4194304)"
        );
    }
    if let Some(max) = read("/proc/sys/vm/max_map_count").filter(|m| *m < threads * 4) {
        eprintln!(
            "warning: vm.max_map_count is {max}; ~4 per thread needs {} (sysctl -w vm.max_map_count=262144)",
            threads * 4
        );
    }
    if let Some(max) = read("/proc/sys/net/core/somaxconn").filter(|m| *m < 4096) {
        eprintln!(
            "warning: net.core.somaxconn is {max}; a connect storm overflows the accept queue (sysctl -w net.core.somaxconn=4096)"
        );
    }
    let fds = connections as u64 + 64;
    let limits_of = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/limits")).ok();
    let checks = [
        ("the server", server_pid.map(|p| p.to_string())),
        ("this generator", Some("self".to_owned())),
    ];
    for (who, pid) in checks {
        if let Some(limits) = pid.as_deref().and_then(limits_of)
            && let Some(soft) = limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<u64>().ok())
            && soft < fds
        {
            eprintln!("warning: {who} may open {soft} files; {fds} are needed (ulimit -n 65536)");
        }
    }
}

fn report(
    scenario: &Scenario,
    plan: &Plan,
    totals: &Totals,
    latencies: &Mutex<Histogram<u64>>,
    outcomes: &[Outcome],
    before: Option<(u64, u64)>,
    peak: Option<(u64, u64)>,
) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let connected = outcomes.iter().filter_map(|o| o.all_connected_at).max();
    println!("scenario:        {}", scenario_name(scenario));
    println!(
        "connected:       {} in {}",
        load(&totals.connected),
        connected.map_or("-".into(), |d| format!("{:.2}s", d.as_secs_f64()))
    );
    if plan.expect_online.is_some() {
        let done = outcomes.iter().filter_map(|o| o.presence_complete_at).max();
        println!(
            "presence:        every online list complete at {}",
            done.map_or("-".into(), |d| format!("{:.2}s", d.as_secs_f64()))
        );
    }
    if plan.send {
        // Sends go on through the warm-up too.
        let seconds = plan
            .run_for
            .map_or(1.0, |d| (d + plan.warmup).as_secs_f64());
        let latencies = latencies.lock().unwrap_or_else(|p| p.into_inner());
        for (label, count) in [
            ("sent:           ", &totals.sent),
            ("stored (acked): ", &totals.stored),
            ("received:       ", &totals.received),
        ] {
            let count = load(count);
            println!("{label} {count} ({:.0}/s)", count as f64 / seconds);
        }
        println!("latency ms:      {}", percentiles_ms(&latencies));
        if plan.typing_users > 0 {
            println!(
                "typing:          {} frames sent, {} passed on",
                load(&totals.typing_sent),
                load(&totals.typing_received)
            );
        }
    }
    println!("errors:          {}", load(&totals.errors));
    let elapsed = outcomes.iter().map(|o| o.elapsed).max().unwrap_or_default();
    println!("elapsed:         {:.2}s", elapsed.as_secs_f64());
    match (before, peak) {
        (Some((rss0, t0)), Some((rss1, t1))) => {
            let per = (rss1 as f64 - rss0 as f64) / load(&totals.connected).max(1) as f64;
            println!(
                "server:          RSS {rss0} KiB before, peak {rss1} KiB ({per:.1} KiB per connection); threads {t0} before, peak {t1}"
            );
        }
        _ => println!("server:          (no /proc data; pass --server-pid)"),
    }
}

/// Whether the server's memory grows over a long run: the least-squares
/// slope of RSS over the second half of the samples (the first half
/// includes connecting and the allocator warming up), and the RSS at a few
/// points. Printed for runs of a minute or more.
fn report_rss_trend(samples: &[(f64, u64)]) {
    if samples.len() < 60 {
        return;
    }
    let half = &samples[samples.len() / 2..];
    let n = half.len() as f64;
    let mean_t = half.iter().map(|(t, _)| t).sum::<f64>() / n;
    let mean_r = half.iter().map(|(_, r)| *r as f64).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for (t, r) in half {
        cov += (t - mean_t) * (*r as f64 - mean_r);
        var += (t - mean_t) * (t - mean_t);
    }
    let slope_per_min = if var > 0.0 { cov / var * 60.0 } else { 0.0 };
    let at = |fraction: f64| samples[((samples.len() - 1) as f64 * fraction) as usize];
    let points: Vec<String> = [0.0, 0.25, 0.5, 0.75, 1.0]
        .iter()
        .map(|f| {
            let (t, r) = at(*f);
            format!("{t:.0}s {r}")
        })
        .collect();
    println!(
        "rss trend:       {slope_per_min:+.1} KiB/min over the second half; KiB at {}",
        points.join(", ")
    );
}

fn scenario_name(scenario: &Scenario) -> String {
    match scenario {
        Scenario::Pairs {
            users,
            rate,
            seconds,
            window,
            kind,
            typing_users,
            words,
        } => {
            let what = format!("{kind:?}").to_lowercase();
            let typing = match (typing_users, words) {
                (0, 0) => String::new(),
                (0, w) => format!(", {w} words"),
                (n, 0) => format!(", {n} typing"),
                (n, w) => format!(", {n} typing, {w} words"),
            };
            match rate {
                Some(r) => {
                    format!("pairs ({what}), {users} users, {r}/s open loop, {seconds}s{typing}")
                }
                None => format!(
                    "pairs ({what}), {users} users, as fast as possible (window {window}), {seconds}s{typing}"
                ),
            }
        }
        Scenario::Idle { users, seconds } => format!("idle, {users} users, {seconds}s"),
        Scenario::Storm { users } => format!("storm, {users} users"),
    }
}
