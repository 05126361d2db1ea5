//! Baseline (a) of docs/BENCHMARKS.md: the floor of this design on this
//! machine. A bare relay through the same threads and queues as the chat
//! server: a reader and a writer thread per WebSocket, one hub thread behind
//! one crossbeam channel, the server's own `ws::outbox` in front of every
//! writer. Left out: JSON, the database, sessions, presence.
//!
//! ```text
//! cargo run --release --example relay_baseline -- --addr 127.0.0.1:18650
//! cargo run --release --example loadgen -- --relay 127.0.0.1:18650 pairs --users 1000 --seconds 30
//! ```
//!
//! A client connects to `ws://ADDR/?user=N`. Each text frame it sends must
//! contain `"to_user_id":M`; the relay finds M by scanning the bytes (no
//! parsing), forwards the frame unchanged to user M, and answers the sender
//! with `{"type":"message_delivered"}`, as the server answers a stored send.

use std::collections::{HashMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use chat_server::ws::client::{READER_STACK_BYTES, WRITER_STACK_BYTES, reader_config};
use chat_server::ws::hub::HUB_QUEUE_CAPACITY;
use chat_server::ws::outbound::Outbound;
use chat_server::ws::outbox::{Outbox, OutboxReceiver, Waited, outbox};
use clap::Parser;
use crossbeam_channel::{Receiver, Sender};
use tungstenite::handshake::server::{Request, Response};
use tungstenite::{Message, Utf8Bytes, WebSocket};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:18650")]
    addr: String,
}

enum HubEvent {
    Register(i64, Outbox),
    Unregister(i64),
    Relay {
        from: i64,
        to: i64,
        frame: Utf8Bytes,
    },
}

fn main() -> std::io::Result<()> {
    let args = Args::parse();
    // The server's own queue and stack sizes, so the floor stays comparable.
    let outbox_capacity = chat_server::Config::parse_from(["chat-server"]).outbox_capacity;
    let listener = TcpListener::bind(&args.addr)?;
    let (hub, inbox) = crossbeam_channel::bounded(HUB_QUEUE_CAPACITY);
    std::thread::Builder::new()
        .name("hub".into())
        .spawn(move || run_hub(&inbox))?;
    eprintln!("relay listening on {}", args.addr);
    for stream in listener.incoming().flatten() {
        let hub = hub.clone();
        let spawned = std::thread::Builder::new()
            .name("ws-reader".into())
            .stack_size(READER_STACK_BYTES)
            .spawn(move || serve(stream, &hub, outbox_capacity));
        if let Err(e) = spawned {
            eprintln!("relay: cannot start a reader: {e}");
        }
    }
    Ok(())
}

fn run_hub(inbox: &Receiver<HubEvent>) {
    let delivered: Utf8Bytes = r#"{"type":"message_delivered"}"#.into();
    let mut outboxes: HashMap<i64, Outbox> = HashMap::new();
    for event in inbox.iter() {
        match event {
            HubEvent::Register(user, outbox) => {
                outboxes.insert(user, outbox);
            }
            HubEvent::Unregister(user) => {
                outboxes.remove(&user);
            }
            HubEvent::Relay { from, to, frame } => {
                if let Some(outbox) = outboxes.get(&to) {
                    let _ = outbox.push(Outbound::Frame(frame));
                }
                if let Some(outbox) = outboxes.get(&from) {
                    let _ = outbox.push(Outbound::Frame(delivered.clone()));
                }
            }
        }
    }
}

fn serve(stream: TcpStream, hub: &Sender<HubEvent>, outbox_capacity: usize) {
    let mut user = None;
    // tungstenite's callback signature has a large error type; not ours.
    #[allow(clippy::result_large_err)]
    let read_user = |request: &Request, response: Response| {
        user = request
            .uri()
            .query()
            .and_then(|q| q.strip_prefix("user="))
            .and_then(|id| id.parse::<i64>().ok());
        Ok(response)
    };
    let Ok(write_half) = stream.try_clone() else {
        return;
    };
    let Ok(mut ws) = tungstenite::accept_hdr_with_config(stream, read_user, Some(reader_config()))
    else {
        return;
    };
    let Some(user) = user else {
        return;
    };
    let (outbox, receiver) = outbox(outbox_capacity);
    let writer = std::thread::Builder::new()
        .name("ws-writer".into())
        .stack_size(WRITER_STACK_BYTES)
        .spawn(move || write_loop(write_half, &receiver));
    if writer.is_err() || hub.send(HubEvent::Register(user, outbox)).is_err() {
        return;
    }
    // Only the writer writes. (tungstenite would answer a ping from inside
    // `read`; the load generator sends none.)
    while let Ok(message) = ws.read() {
        if let Message::Text(frame) = message
            && let Some(to) = to_user_id(frame.as_bytes())
        {
            let relay = HubEvent::Relay {
                from: user,
                to,
                frame,
            };
            if hub.send(relay).is_err() {
                break;
            }
        }
    }
    let _ = hub.send(HubEvent::Unregister(user));
}

/// The number after `"to_user_id":`, found without parsing the JSON.
fn to_user_id(frame: &[u8]) -> Option<i64> {
    const KEY: &[u8] = br#""to_user_id":"#;
    let at = frame.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = frame[at..]
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn write_loop(stream: TcpStream, receiver: &OutboxReceiver) {
    let config = reader_config().read_buffer_size(64);
    let mut ws =
        WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Server, Some(config));
    let mut batch = VecDeque::new();
    loop {
        let deadline = Instant::now() + Duration::from_secs(60);
        if receiver.wait(deadline, &mut batch) == Waited::Finished {
            return;
        }
        for item in batch.drain(..) {
            if let Outbound::Frame(text) = item
                && ws.write(Message::Text(text)).is_err()
            {
                return;
            }
        }
        if ws.flush().is_err() {
            return;
        }
    }
}
