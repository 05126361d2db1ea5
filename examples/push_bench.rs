//! What pushes cost live traffic (`examples/bench.sh push`).
//!
//! ```text
//! # against a server started with --push-allow-private-endpoints
//! push_bench --server http://127.0.0.1:18600 --pairs 100 --rate 1000 --seconds 30 [--subscribe]
//! ```
//!
//! Registers `pairs` senders and as many recipients who never connect.
//! With `--subscribe`, each recipient has a push subscription whose
//! endpoint is a push service in this process, on loopback, that answers
//! 201 to everything and counts. The senders then send `rate` messages a
//! second in all, open loop, each to its offline partner, and time each
//! send from the frame leaving to the server's answer (`message_failed`
//! `recipient_offline`: stored, nobody connected). Prints the latency
//! percentiles and the pushes the service received per second.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tungstenite::Message;

#[path = "shared/accounts.rs"]
mod accounts;
use accounts::{Error, connect, user};

/// A user's session cookie and id.
type Session = (String, i64);

/// Sends made in the first seconds are not timed (connections settle).
const WARMUP: Duration = Duration::from_secs(2);
/// Threads that register users (Argon2 makes that the slow part).
const REGISTERING_THREADS: usize = 4;
/// Threads of the push service.
const PUSH_SERVICE_THREADS: usize = 4;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    server: String,
    #[arg(long, default_value_t = 100)]
    pairs: usize,
    /// Messages per second, all senders together.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Give every recipient a push subscription.
    #[arg(long)]
    subscribe: bool,
    /// Start the senders one after the other over this many seconds (as
    /// people do), rather than within one interval; timing starts once
    /// all have started.
    #[arg(long, default_value_t = 0.0)]
    stagger: f64,
}

fn main() -> Result<(), Error> {
    let args = Args::parse();
    let pushes = Arc::new(AtomicU64::new(0));
    let push_port = push_service(pushes.clone())?;
    let config: Value = ureq::get(&format!("{}/api/config", args.server))
        .call()?
        .into_json()?;
    let ws_url = config["ws_url"].as_str().ok_or("no ws_url")?.to_owned();

    let run = std::process::id();
    let started = Instant::now();
    let users = register_all(&args.server, run, args.pairs * 2)?;
    eprintln!("{} users ready in {:.1?}", users.len(), started.elapsed());
    if args.subscribe {
        let p256dh = chat_server::push::ece::random_secret_key()
            .map_err(|e| e.to_string())?
            .public_key()
            .to_sec1_bytes();
        for (n, (cookie, _)) in users.iter().skip(args.pairs).enumerate() {
            let subscription = json!({
                "endpoint": format!("http://127.0.0.1:{push_port}/r{n}"),
                "keys": { "p256dh": URL_SAFE_NO_PAD.encode(&p256dh), "auth": URL_SAFE_NO_PAD.encode([7u8; 16]) },
            });
            ureq::post(&format!("{}/api/push/subscriptions", args.server))
                .set("Cookie", cookie)
                .set("Origin", &args.server)
                .send_json(subscription)?;
        }
    }

    // Each sender: its share of the rate, to its partner (who is offline).
    let interval = Duration::from_secs_f64(args.pairs as f64 / args.rate);
    let run_for = Duration::from_secs(args.seconds);
    let epoch = Instant::now();
    // The senders' first sends, spread over one interval (or `stagger`).
    let spread = if args.stagger > 0.0 {
        Duration::from_secs_f64(args.stagger)
    } else {
        interval
    };
    let clock = Clock {
        epoch,
        timed_from: epoch + spread + WARMUP,
    };
    let senders: Vec<_> = (0..args.pairs)
        .map(|n| {
            let (cookie, _) = users[n].clone();
            let partner = users[args.pairs + n].1;
            let ws_url = ws_url.clone();
            // Whole intervals apart, plus each its own phase within one,
            // so that no two senders send at the same moment.
            let share = n as f64 / args.pairs as f64;
            let slot = (spread.as_secs_f64() * share / interval.as_secs_f64()).floor();
            let first = epoch + interval.mul_f64(slot + share);
            thread::spawn(move || {
                send_for(&ws_url, &cookie, partner, clock, first, interval, run_for)
            })
        })
        .collect();
    let pushes_at_start = pushes.load(Ordering::Relaxed);
    let mut latencies = Histogram::<u64>::new(3)?;
    let (mut sent, mut answered) = (0u64, 0u64);
    for sender in senders {
        let outcome = sender.join().map_err(|_| "a sender panicked")??;
        sent += outcome.sent;
        answered += outcome.latencies.len();
        latencies.add(&outcome.latencies)?;
    }
    let elapsed = epoch.elapsed().as_secs_f64();
    let pushed = pushes.load(Ordering::Relaxed) - pushes_at_start;

    let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "scenario:        {} senders to offline recipients{}, {}/s open loop, {}s",
        args.pairs,
        if args.subscribe {
            " with push subscriptions"
        } else {
            ", no subscriptions"
        },
        args.rate,
        args.seconds
    );
    println!(
        "sent:            {sent}; timed {answered} (those sent {WARMUP:?} after the last sender started)"
    );
    println!(
        "latency ms:      p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        latencies.max() as f64 / 1000.0
    );
    println!(
        "pushes:          {pushed} received in {elapsed:.1}s ({:.0}/s)",
        pushed as f64 / elapsed
    );
    Ok(())
}

/// What one sender measured.
struct Outcome {
    sent: u64,
    latencies: Histogram<u64>,
}

/// The run's time: when it began, and when timing starts.
#[derive(Clone, Copy)]
struct Clock {
    epoch: Instant,
    timed_from: Instant,
}

/// Sends one message every `interval` from `first` for `run_for`, each
/// with its send time (µs since the run's epoch) as its `client_id`, and
/// times the answers to those sent after `clock.timed_from`.
fn send_for(
    ws_url: &str,
    cookie: &str,
    partner: i64,
    clock: Clock,
    first: Instant,
    interval: Duration,
    run_for: Duration,
) -> Result<Outcome, Error> {
    let mut ws = connect(ws_url, cookie)?;
    let mut latencies = Histogram::<u64>::new(3)?;
    let (epoch, end) = (clock.epoch, first + run_for);
    let timed_from = clock.timed_from.duration_since(epoch);
    let mut next = first;
    let mut sent = 0;
    let mut unanswered = 0u64;
    while Instant::now() < end || unanswered > 0 && Instant::now() < end + Duration::from_secs(5) {
        let now = Instant::now();
        if now >= next && now < end {
            let stamp = now.duration_since(epoch).as_micros();
            let frame = json!({"type": "private_message", "to_user_id": partner,
                               "content": "x", "client_id": stamp.to_string()});
            ws.send(Message::text(frame.to_string()))?;
            sent += 1;
            unanswered += 1;
            next += interval;
            continue;
        }
        let wait = next
            .saturating_duration_since(now)
            .max(Duration::from_micros(200));
        ws.get_ref().set_read_timeout(Some(wait))?;
        match ws.read() {
            Ok(Message::Text(text)) => {
                let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                let answer = matches!(
                    frame["type"].as_str(),
                    Some("message_failed" | "message_delivered")
                );
                if let (true, Some(stamp)) = (
                    answer,
                    frame["client_id"]
                        .as_str()
                        .and_then(|c| c.parse::<u64>().ok()),
                ) {
                    unanswered = unanswered.saturating_sub(1);
                    if Duration::from_micros(stamp) >= timed_from {
                        let latency = epoch.elapsed().as_micros() as u64 - stamp;
                        latencies.record(latency.max(1))?;
                    }
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let _ = ws.close(None);
    Ok(Outcome { sent, latencies })
}

/// Registers and logs in `count` users, several at a time; returns each
/// one's session cookie and id, in order.
fn register_all(base: &str, run: u32, count: usize) -> Result<Vec<Session>, Error> {
    let chunks: Vec<Vec<usize>> = (0..REGISTERING_THREADS)
        .map(|t| (t..count).step_by(REGISTERING_THREADS).collect())
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|indexes| {
            let base = base.to_owned();
            thread::spawn(move || -> Result<Vec<(usize, Session)>, Error> {
                indexes
                    .into_iter()
                    .map(|n| Ok((n, user(&base, &format!("pb{run}x{n}"))?)))
                    .collect()
            })
        })
        .collect();
    let mut users = vec![(String::new(), 0); count];
    for handle in handles {
        for (n, user) in handle
            .join()
            .map_err(|_| "a registering thread panicked")??
        {
            users[n] = user;
        }
    }
    Ok(users)
}

/// A push service on loopback that accepts every push (201) and counts
/// them; returns its port.
fn push_service(pushes: Arc<AtomicU64>) -> Result<u16, Error> {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0")?);
    let port = server
        .server_addr()
        .to_ip()
        .map(|address| address.port())
        .ok_or("no port")?;
    for _ in 0..PUSH_SERVICE_THREADS {
        let (server, pushes) = (server.clone(), pushes.clone());
        thread::spawn(move || {
            for mut request in server.incoming_requests() {
                let _ = std::io::copy(request.as_reader(), &mut std::io::sink());
                pushes.fetch_add(1, Ordering::Relaxed);
                let _ = request.respond(tiny_http::Response::empty(201));
            }
        });
    }
    Ok(port)
}
