//! A terminal chat client: log in, list users, open a conversation, send,
//! and see messages arrive live. Handy over SSH, and a small, complete
//! example of the protocol in `docs/API.md`.
//!
//! ```text
//! cargo run --example chat_cli -- --server http://127.0.0.1:8080 alice
//! cargo run --example chat_cli -- --register alice        # new account
//! ```
//!
//! The password comes from `CHAT_PASSWORD`, or is asked for without echo
//! on a terminal (the first line of input otherwise). Messages are shown
//! with their number (`#42`), which the commands take:
//!
//! `/users`, `/open NICK`, `/older`, `/reply N text`, `/edit N text`,
//! `/delete N [me]`, `/react N 👍` (again to take it back), `/file PATH
//! [caption]` (sends a file; quote a path with spaces), `/download ID [PATH]` (saves a received
//! file, shown as `📎 name (size) file:ID`), `/search TEXT` (the newest
//! matches, the matched words in [brackets]), `/block NICK`, `/unblock
//! NICK`, `/help`, `/quit`. Any other line that does not start with `/` is
//! sent to the open conversation; an unknown `/command` is refused, never
//! sent.

use std::collections::HashMap;
use std::io::{self, BufRead, IsTerminal};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use crossbeam_channel::{Receiver, Sender};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// How often the socket thread looks for lines to send while no frame
/// arrives. Short enough to feel instant when typing.
const SOCKET_POLL: Duration = Duration::from_millis(50);
/// Messages shown when a conversation opens, and per `/older`.
const PAGE: u32 = 20;

#[derive(Parser)]
#[command(about = "Terminal client for chat-server")]
struct Args {
    /// The server's HTTP address.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Create the account first (email: NICKNAME@localhost unless --email).
    #[arg(long)]
    register: bool,
    #[arg(long)]
    email: Option<String>,
    /// Your nickname (or email).
    nickname: String,
}

type Error = Box<dyn std::error::Error>;

/// REST calls with the session cookie.
struct Api {
    base: String,
    cookie: String,
}

impl Api {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, Error> {
        let request =
            ureq::request(method, &format!("{}{path}", self.base)).set("Cookie", &self.cookie);
        let result = match body {
            Some(body) => request.send_json(body),
            None => request.call(),
        };
        match result {
            Ok(response) => Ok(response.into_json()?),
            Err(ureq::Error::Status(code, response)) => {
                let body: Value = response.into_json().unwrap_or_default();
                Err(format!("{code}: {}", body["error"].as_str().unwrap_or("error")).into())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Shared by the input loop and the socket thread.
struct Session {
    me: i64,
    /// user id -> nickname
    names: Mutex<HashMap<i64, String>>,
    /// The open conversation's partner.
    open: Mutex<Option<i64>>,
    /// The oldest message of the open conversation on screen.
    oldest_shown: Mutex<Option<i64>>,
}

impl Session {
    fn name(&self, id: i64) -> String {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}"))
    }
}

fn main() {
    if let Err(e) = run(Args::parse()) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> Result<(), Error> {
    let stdin = io::stdin();
    let mut lines = stdin.lock().lines();
    let password = match std::env::var("CHAT_PASSWORD") {
        Ok(p) => p,
        // Not echoed on a terminal; piped input is a script's, read as is.
        Err(_) if io::stdin().is_terminal() => rpassword::prompt_password("password: ")?,
        Err(_) => lines.next().ok_or("no password given")??,
    };
    let base = args.server.trim_end_matches('/').to_owned();

    if args.register {
        let email = args
            .email
            .clone()
            .unwrap_or_else(|| format!("{}@localhost", args.nickname));
        let body = json!({"nickname": args.nickname, "email": email, "password": password});
        match ureq::post(&format!("{base}/api/register")).send_json(body) {
            Ok(_) => println!("* registered {}", args.nickname),
            Err(ureq::Error::Status(_, r)) => {
                let body: Value = r.into_json().unwrap_or_default();
                return Err(format!("cannot register: {}", body["error"]).into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let login = ureq::post(&format!("{base}/api/login"))
        .send_json(json!({"identifier": args.nickname, "password": password}))
        .map_err(|e| format!("cannot log in: {e}"))?;
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .ok_or("no session cookie")?
        .to_owned();
    let user: Value = login.into_json()?;
    let api = Api { base, cookie };
    let session = Arc::new(Session {
        me: user["user"]["id"].as_i64().ok_or("no user id")?,
        names: Mutex::new(HashMap::new()),
        open: Mutex::new(None),
        oldest_shown: Mutex::new(None),
    });
    println!(
        "* logged in as {}; /help for commands",
        user["user"]["nickname"]
    );
    list_users(&api, &session)?;

    let ws_url = api.call("GET", "/api/config", None)?["ws_url"]
        .as_str()
        .ok_or("no ws_url")?
        .to_owned();
    // Presence as lists, one frame per batch (see docs/API.md).
    let socket = connect(&format!("{ws_url}?presence=batch"), &api.cookie)?;
    let (outgoing, to_send) = crossbeam_channel::unbounded();
    {
        let session = session.clone();
        std::thread::spawn(move || socket_loop(socket, &to_send, &session));
    }

    let mut next_client_id = 1u64;
    for line in lines {
        let line = line?;
        let line = line.trim_end();
        let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let result = match command {
            "/quit" => break,
            "/help" => {
                println!("* {HELP}");
                Ok(())
            }
            "/users" => list_users(&api, &session),
            "/open" => open(&api, &session, rest),
            "/older" => older(&api, &session),
            "/reply" => reply(&session, &outgoing, rest, &mut next_client_id),
            "/edit" => edit(&api, rest),
            "/delete" => delete(&api, rest),
            "/react" => react(&api, rest),
            "/file" => send_file(&api, &session, &outgoing, rest, &mut next_client_id),
            "/download" => download(&api, rest),
            "/search" => search(&api, &session, rest),
            "/block" => block(&api, &session, rest, true),
            "/unblock" => block(&api, &session, rest, false),
            "" => Ok(()),
            unknown if unknown.starts_with('/') => {
                Err(format!("unknown command {unknown}; /help lists them").into())
            }
            _ => send(&session, &outgoing, line, None, None, &mut next_client_id),
        };
        if let Err(e) = result {
            println!("! {e}");
        }
    }
    Ok(())
}

const HELP: &str = "/users  /open NICK  /older  /reply N text  /edit N text  /delete N [me]  \
                    /react N EMOJI  /file PATH [caption]  /download ID [PATH]  /search TEXT  \
                    /block NICK  /unblock NICK  /quit  (other lines are sent)";

/// `N rest`: a message number and what follows it.
fn numbered(args: &str) -> Result<(i64, &str), Error> {
    let (n, rest) = args.split_once(' ').unwrap_or((args, ""));
    let id = n
        .trim_start_matches('#')
        .parse()
        .map_err(|_| format!("{n:?} is not a message number (shown as #N)"))?;
    Ok((id, rest.trim()))
}

fn reply(
    session: &Session,
    outgoing: &Sender<String>,
    args: &str,
    next_id: &mut u64,
) -> Result<(), Error> {
    let (id, text) = numbered(args)?;
    if text.is_empty() {
        return Err("usage: /reply N text".into());
    }
    send(session, outgoing, text, Some(id), None, next_id)
}

fn edit(api: &Api, args: &str) -> Result<(), Error> {
    let (id, text) = numbered(args)?;
    if text.is_empty() {
        return Err("usage: /edit N text".into());
    }
    api.call(
        "PATCH",
        &format!("/api/messages/{id}"),
        Some(json!({"content": text})),
    )?;
    Ok(())
}

fn delete(api: &Api, args: &str) -> Result<(), Error> {
    let (id, whom) = numbered(args)?;
    let query = match whom {
        "" => "",
        "me" => "?for=me",
        _ => return Err("usage: /delete N [me]".into()),
    };
    api.call("DELETE", &format!("/api/messages/{id}{query}"), None)?;
    Ok(())
}

/// Adds a reaction, or takes it back when it is already mine.
fn react(api: &Api, args: &str) -> Result<(), Error> {
    let (id, emoji) = numbered(args)?;
    if emoji.is_empty() {
        return Err("usage: /react N EMOJI".into());
    }
    let encoded: String = emoji.bytes().map(|b| format!("%{b:02X}")).collect();
    let path = format!("/api/messages/{id}/reactions/{encoded}");
    let answer = api.call("PUT", &path, None)?;
    if answer["seq"].is_null() {
        // Already mine: a second /react takes it back.
        api.call("DELETE", &path, None)?;
    }
    Ok(())
}

fn block(api: &Api, session: &Session, nick: &str, on: bool) -> Result<(), Error> {
    let id = user_named(session, nick)?;
    api.call(
        if on { "PUT" } else { "DELETE" },
        &format!("/api/blocks/{id}"),
        None,
    )?;
    println!("* {nick} {}", if on { "blocked" } else { "unblocked" });
    Ok(())
}

fn connect(ws_url: &str, cookie: &str) -> Result<WebSocket<TcpStream>, Error> {
    let mut request = ws_url.into_client_request()?;
    request.headers_mut().insert("Cookie", cookie.parse()?);
    let host = ws_url
        .strip_prefix("ws://")
        .ok_or("only ws:// URLs are supported")?
        .split('/')
        .next()
        .ok_or("bad ws_url")?;
    let stream = TcpStream::connect(host)?;
    let (socket, _) =
        tungstenite::client(request, stream).map_err(|e| format!("websocket: {e}"))?;
    socket.get_ref().set_read_timeout(Some(SOCKET_POLL))?;
    Ok(socket)
}

/// Owns the WebSocket: sends what the input loop queued, prints what
/// arrives. (One thread does both: a tungstenite socket cannot be shared.)
fn socket_loop(mut socket: WebSocket<TcpStream>, to_send: &Receiver<String>, session: &Session) {
    loop {
        for frame in to_send.try_iter() {
            if let Err(e) = socket.send(Message::text(frame)) {
                println!("! send failed: {e}");
            }
        }
        match socket.read() {
            Ok(Message::Text(text)) => {
                if let Ok(frame) = serde_json::from_str::<Value>(text.as_str()) {
                    show_event(&frame, session);
                }
            }
            Ok(Message::Close(frame)) => {
                println!("* server closed the connection: {frame:?}");
                std::process::exit(0);
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                println!("* disconnected: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn show_event(frame: &Value, session: &Session) {
    let id = |field: &str| frame[field].as_i64().unwrap_or_default();
    match frame["type"].as_str().unwrap_or("") {
        "online_users" => {
            let names: Vec<&str> = frame["users"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u["nickname"].as_str())
                .collect();
            println!(
                "* online: {}",
                if names.is_empty() {
                    "nobody else".into()
                } else {
                    names.join(", ")
                }
            );
        }
        kind @ ("user_online" | "user_offline") => {
            let state = kind.trim_start_matches("user_");
            for user in frame["users"].as_array().into_iter().flatten() {
                let nick = user["nickname"].as_str().unwrap_or("?");
                session
                    .names
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(user["id"].as_i64().unwrap_or_default(), nick.to_owned());
                println!("* {nick} is {state}");
            }
        }
        "private_message" => {
            let (from, to) = (id("from_user_id"), id("to_user_id"));
            let who = if from == session.me {
                format!("you → {}", session.name(to))
            } else {
                session.name(from)
            };
            println!(
                "[{}] #{} {who}: {}{}{}",
                time(&frame["timestamp"]),
                id("message_id"),
                quoted(&frame["reply_to"], session),
                frame["content"].as_str().unwrap_or(""),
                file_label(&frame["attachment"])
            );
        }
        "typing" => {
            let who = session.name(id("from_user_id"));
            match frame["state"].as_str() {
                Some("start") => println!("* {who} is typing…"),
                _ => println!("* {who} stopped typing"),
            }
        }
        "message_edited" => println!(
            "* #{} edited: {}",
            id("message_id"),
            frame["content"].as_str().unwrap_or("")
        ),
        "message_deleted" if frame["for"] == "me" => {
            println!("* #{} deleted for you", id("message_id"));
        }
        "message_deleted" => println!("* #{} was deleted", id("message_id")),
        "reaction" => {
            let who = if id("user_id") == session.me {
                "you".to_owned()
            } else {
                session.name(id("user_id"))
            };
            let what = if frame["on"] == true {
                "reacted"
            } else {
                "took back"
            };
            println!(
                "* {who} {what} {} on #{}",
                frame["emoji"].as_str().unwrap_or("?"),
                id("message_id")
            );
        }
        "message_delivered" => println!("  ✓ delivered"),
        // The partner read my messages (my own reads, from other tabs, are
        // not news here).
        "messages_read" if id("partner_id") == session.me => {
            println!("  ✓✓ seen by {}", session.name(id("reader_id")));
        }
        "message_failed" if frame["error"] == "recipient_offline" => {
            println!("  ✓ stored; {} is offline", session.name(id("to_user_id")));
        }
        "message_failed" if frame["action"].is_string() => println!(
            "  ✗ {} #{}: {}",
            frame["action"].as_str().unwrap_or("?"),
            id("message_id"),
            frame["error"].as_str().unwrap_or("?")
        ),
        "message_failed" => println!("  ✗ not sent: {}", frame["error"].as_str().unwrap_or("?")),
        "error" => println!("! server: {}", frame["error"].as_str().unwrap_or("?")),
        _ => {}
    }
}

/// A reply's quote of its original: `(↩ #40 bob: "are you…") `.
fn quoted(reply_to: &Value, session: &Session) -> String {
    if reply_to.is_null() {
        return String::new();
    }
    let excerpt = reply_to["excerpt"].as_str().unwrap_or("deleted message");
    let short: String = excerpt.chars().take(30).collect();
    let more = if excerpt.chars().count() > 30 {
        "…"
    } else {
        ""
    };
    format!(
        "(↩ #{} {}: \"{short}{more}\") ",
        reply_to["id"].as_i64().unwrap_or_default(),
        session.name(reply_to["sender_id"].as_i64().unwrap_or_default())
    )
}

/// `2026-11-25T23:18:52.123Z` → `23:18`.
fn time(timestamp: &Value) -> String {
    timestamp
        .as_str()
        .and_then(|t| t.get(11..16))
        .unwrap_or("--:--")
        .to_owned()
}

/// `/search TEXT`: the newest matches in all conversations, the matched
/// words in [brackets].
fn search(api: &Api, session: &Session, text: &str) -> Result<(), Error> {
    if text.trim().is_empty() {
        return Err("usage: /search TEXT".into());
    }
    let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
    let found = api.call("GET", &format!("/api/search?q={encoded}&limit=20"), None)?;
    let results = found["results"].as_array().cloned().unwrap_or_default();
    if results.is_empty() {
        println!("* nothing found for {text:?}");
    }
    for hit in &results {
        let message = &hit["message"];
        let chars: Vec<char> = message["content"].as_str().unwrap_or("").chars().collect();
        let mut marked = String::new();
        let mut at = 0;
        for range in hit["highlights"].as_array().into_iter().flatten() {
            let bound = |i: usize| range[i].as_u64().map_or(0, |n| n as usize).min(chars.len());
            let (start, end) = (bound(0).max(at), bound(1));
            if start >= end {
                continue;
            }
            marked.extend(&chars[at..start]);
            marked.push('[');
            marked.extend(&chars[start..end]);
            marked.push(']');
            at = end;
        }
        marked.extend(&chars[at..]);
        let id = |field: &str| message[field].as_i64().unwrap_or_default();
        println!(
            "  #{} {} {} → {}: {marked}",
            id("id"),
            message["created_at"]
                .as_str()
                .and_then(|t| t.get(..10))
                .unwrap_or(""),
            session.name(id("sender_id")),
            session.name(id("receiver_id")),
        );
    }
    if found["next"].is_string() {
        println!("  (more: narrow the search)");
    }
    Ok(())
}

fn list_users(api: &Api, session: &Session) -> Result<(), Error> {
    let users = api.call("GET", "/api/users", None)?;
    let mut names = session.names.lock().unwrap_or_else(|p| p.into_inner());
    for user in users["users"].as_array().into_iter().flatten() {
        let (id, nick) = (
            user["id"].as_i64().unwrap_or_default(),
            user["nickname"].as_str().unwrap_or("?"),
        );
        names.insert(id, nick.to_owned());
        if id != session.me {
            let dot = if user["online"] == true { "●" } else { "○" };
            println!("  {dot} {nick}");
        }
    }
    Ok(())
}

/// The id of the user called `nick` (any case).
fn user_named(session: &Session, nick: &str) -> Result<i64, Error> {
    let names = session.names.lock().unwrap_or_else(|p| p.into_inner());
    names
        .iter()
        .find(|(_, n)| n.eq_ignore_ascii_case(nick))
        .map(|(id, _)| *id)
        .ok_or_else(|| format!("no user {nick:?}; try /users").into())
}

fn open(api: &Api, session: &Session, nick: &str) -> Result<(), Error> {
    let partner = user_named(session, nick)?;
    *session.open.lock().unwrap_or_else(|p| p.into_inner()) = Some(partner);
    println!("* conversation with {nick}");
    print_page(api, session, partner, &format!("limit={PAGE}"))?;
    api.call(
        "POST",
        "/api/messages/read",
        Some(json!({"user_id": partner})),
    )?;
    Ok(())
}

fn older(api: &Api, session: &Session) -> Result<(), Error> {
    let partner = open_partner(session)?;
    let oldest = *session
        .oldest_shown
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    match oldest {
        Some(id) => print_page(
            api,
            session,
            partner,
            &format!("limit={PAGE}&before_id={id}"),
        ),
        None => {
            println!("  (no more messages)");
            Ok(())
        }
    }
}

/// Prints one page of history and remembers its oldest message, where
/// `/older` continues.
fn print_page(api: &Api, session: &Session, partner: i64, query: &str) -> Result<(), Error> {
    let page = api.call(
        "GET",
        &format!("/api/messages?user_id={partner}&{query}"),
        None,
    )?;
    let messages = page["messages"].as_array().cloned().unwrap_or_default();
    *session
        .oldest_shown
        .lock()
        .unwrap_or_else(|p| p.into_inner()) = messages.first().and_then(|m| m["id"].as_i64());
    if messages.is_empty() {
        println!("  (no more messages)");
    }
    for m in messages {
        let from = m["sender_id"].as_i64().unwrap_or_default();
        let who = if from == session.me {
            "you".to_owned()
        } else {
            session.name(from)
        };
        let content = match m["deleted_at"].is_string() {
            true => "(deleted)",
            false => m["content"].as_str().unwrap_or(""),
        };
        let edited = if m["edited_at"].is_string() {
            " (edited)"
        } else {
            ""
        };
        let reactions: String = m["reactions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let count = r["user_ids"].as_array().map_or(0, Vec::len);
                format!(" {}{count}", r["emoji"].as_str().unwrap_or("?"))
            })
            .collect();
        let seen = if from == session.me && m["is_read"] == true {
            " ✓✓"
        } else {
            ""
        };
        println!(
            "[{}] #{} {who}: {}{content}{}{edited}{reactions}{seen}",
            time(&m["created_at"]),
            m["id"].as_i64().unwrap_or_default(),
            quoted(&m["reply_to"], session),
            file_label(&m["attachment"]),
        );
    }
    Ok(())
}

fn open_partner(session: &Session) -> Result<i64, Error> {
    session
        .open
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .ok_or_else(|| "no open conversation; use /open NICK".into())
}

fn send(
    session: &Session,
    outgoing: &Sender<String>,
    text: &str,
    reply_to: Option<i64>,
    attachment: Option<i64>,
    next_id: &mut u64,
) -> Result<(), Error> {
    let partner = open_partner(session)?;
    let mut frame = json!({"type": "private_message", "to_user_id": partner, "content": text,
                           "client_id": format!("cli-{next_id}")});
    if let Some(id) = reply_to {
        frame["reply_to_id"] = json!(id);
    }
    if let Some(id) = attachment {
        frame["attachment_id"] = json!(id);
    }
    *next_id += 1;
    outgoing
        .send(frame.to_string())
        .map_err(|_| "connection closed")?;
    Ok(())
}

/// ` 📎 name (size) file:ID` for a message's file; empty without one.
fn file_label(attachment: &Value) -> String {
    if attachment.is_null() {
        return String::new();
    }
    let size = attachment["size"].as_u64().unwrap_or_default();
    let size = match size {
        0..1_000 => format!("{size} B"),
        1_000..1_000_000 => format!("{:.1} KB", size as f64 / 1e3),
        _ => format!("{:.1} MB", size as f64 / 1e6),
    };
    format!(
        " 📎 {} ({size}) file:{}",
        attachment["name"].as_str().unwrap_or("?"),
        attachment["id"].as_i64().unwrap_or_default()
    )
}

/// `/file PATH [caption]`: uploads the file (streamed from disk), then
/// sends it to the open conversation.
fn send_file(
    api: &Api,
    session: &Session,
    outgoing: &Sender<String>,
    args: &str,
    next_id: &mut u64,
) -> Result<(), Error> {
    // A path with spaces is quoted: /file "my notes.txt" caption
    let (path, caption) = match args.strip_prefix('"') {
        Some(quoted) => quoted
            .split_once('"')
            .ok_or("a quoted path needs its closing quote")?,
        None => args.split_once(' ').unwrap_or((args, "")),
    };
    if path.is_empty() {
        return Err("usage: /file PATH [caption]".into());
    }
    open_partner(session)?;
    let file = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let name = std::path::Path::new(path)
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let result = ureq::post(&format!("{}/api/attachments", api.base))
        .query("name", &name)
        .set("Cookie", &api.cookie)
        .set("Content-Type", "application/octet-stream")
        .send(file);
    let uploaded: Value = match result {
        Ok(response) => response.into_json()?,
        Err(ureq::Error::Status(code, response)) => {
            let body: Value = response.into_json().unwrap_or_default();
            return Err(format!("{code}: {}", body["error"].as_str().unwrap_or("error")).into());
        }
        Err(e) => return Err(e.into()),
    };
    let id = uploaded["attachment"]["id"]
        .as_i64()
        .ok_or("the server did not say which file it stored")?;
    send(session, outgoing, caption.trim(), None, Some(id), next_id)
}

/// `/download ID [PATH]`: saves a file (by default under its own name in
/// the current folder), never over an existing file.
fn download(api: &Api, args: &str) -> Result<(), Error> {
    let (id, path) = args.split_once(' ').unwrap_or((args, ""));
    let id: i64 = id
        .trim_start_matches("file:")
        .parse()
        .map_err(|_| format!("{id:?} is not a file id (shown as file:ID)"))?;
    let response = match ureq::get(&format!("{}/api/attachments/{id}", api.base))
        .set("Cookie", &api.cookie)
        .call()
    {
        Ok(response) => response,
        Err(ureq::Error::Status(code, response)) => {
            let body: Value = response.into_json().unwrap_or_default();
            return Err(format!("{code}: {}", body["error"].as_str().unwrap_or("error")).into());
        }
        Err(e) => return Err(e.into()),
    };
    let path = match path.trim() {
        "" => suggested_name(response.header("Content-Disposition"))
            .unwrap_or_else(|| format!("file-{id}")),
        given => given.to_owned(),
    };
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("{path}: {e}"))?;
    let bytes = io::copy(&mut response.into_reader(), &mut out)?;
    println!("* saved {path} ({bytes} bytes)");
    Ok(())
}

/// The plain file name of a `Content-Disposition` header, as a name in the
/// current folder (no path, no hidden file).
fn suggested_name(header: Option<&str>) -> Option<String> {
    let name = header?
        .split(';')
        .find_map(|part| part.trim().strip_prefix("filename="))?
        .trim_matches('"');
    let name = std::path::Path::new(name).file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_owned())
}
