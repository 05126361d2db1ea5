//! Test harness: a real server on ephemeral ports with a real SQLite file,
//! a real HTTP client (ureq) and a real WebSocket client (tungstenite).
#![allow(dead_code)] // each test binary uses a different part of it

pub mod browser;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chat_server::{Config, Server, ServerHandle};
use serde_json::{Value, json};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

/// How long a test waits for an expected frame before failing (a guard
/// against hangs, not a synchronisation device).
pub const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A WebSocket `private_message` frame.
pub fn pm(to: i64, content: &str, client_id: &str) -> Value {
    json!({"type": "private_message", "to_user_id": to, "content": content, "client_id": client_id})
}

/// The ids of a JSON array of messages.
pub fn ids(messages: &Value) -> Vec<i64> {
    messages
        .as_array()
        .expect("messages array")
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect()
}

/// A loopback port that was free a moment ago (for servers that must keep
/// their port across a restart).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

pub struct TestServer {
    handle: Option<ServerHandle>,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(|_| {})
    }

    pub fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests();
        config.db = dir.path().join("chat.db");
        config.log_level = log::LevelFilter::Warn;
        // Tests send and log in faster than any person; the tests of the
        // limits themselves set them back.
        config.message_rate = 0.0;
        config.login_rate = 0.0;
        config.register_rate = 0.0;
        config.login_free_failures = u32::MAX;
        adjust(&mut config);
        let handle = Server::start(config.clone()).expect("server starts");
        TestServer {
            handle: Some(handle),
            config,
            dir,
        }
    }

    fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("server running")
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.handle().http_addr())
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.handle().ws_addr())
    }

    /// `host:port` of the WebSocket listener, for raw sockets.
    pub fn ws_host(&self) -> String {
        self.handle().ws_addr().to_string()
    }

    pub fn http_port(&self) -> u16 {
        self.handle().http_addr().port()
    }

    /// Stops the server and starts it again on the same database file.
    pub fn restart(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
        self.handle = Some(Server::start(self.config.clone()).expect("server restarts"));
    }

    pub fn shutdown(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.shutdown();
        }
    }

    pub fn client(&self) -> Client {
        Client {
            base: self.base(),
            cookie: None,
        }
    }

    /// Registers `nickname` and logs in; returns the client and the user id.
    pub fn user(&self, nickname: &str) -> (Client, i64) {
        let mut client = self.client();
        let id = client.register(nickname);
        client.login(nickname, "password123");
        (client, id)
    }
}

/// Two users, logged in, each with one WebSocket open, each already told
/// the other is online: the start of most conversation tests.
pub struct TwoOnline {
    pub alice: Client,
    pub alice_id: i64,
    pub alice_ws: Ws,
    pub bob: Client,
    pub bob_id: i64,
    pub bob_ws: Ws,
}

impl TwoOnline {
    pub fn new(server: &TestServer) -> TwoOnline {
        let (alice, alice_id) = server.user("alice");
        let (bob, bob_id) = server.user("bob");
        let (mut alice_ws, _) = Ws::connect(server, &alice);
        let (bob_ws, _) = Ws::connect(server, &bob);
        alice_ws.await_presence(&[bob_id], true);
        TwoOnline {
            alice,
            alice_id,
            alice_ws,
            bob,
            bob_id,
            bob_ws,
        }
    }
}

/// An HTTP client that keeps the session cookie, like a browser.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub cookie: Option<String>,
}

/// Status, JSON body, `Set-Cookie` header.
pub struct HttpReply {
    pub status: u16,
    pub body: Value,
    pub set_cookie: Option<String>,
    pub content_type: Option<String>,
}

impl Client {
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> HttpReply {
        let mut request =
            ureq::request(method, &format!("{}{}", self.base, path)).timeout(RECV_TIMEOUT);
        if let Some(cookie) = &self.cookie {
            request = request.set("Cookie", cookie);
        }
        let result = match body {
            Some(body) => request
                .set("Content-Type", "application/json")
                .send_string(body),
            None => request.call(),
        };
        let response = match result {
            Ok(response) => response,
            Err(ureq::Error::Status(_, response)) => response,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = response.status();
        let set_cookie = response.header("set-cookie").map(str::to_owned);
        let content_type = response.header("content-type").map(str::to_owned);
        let text = response.into_string().expect("body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: body is not JSON ({e}): {text}"));
        HttpReply {
            status,
            body,
            set_cookie,
            content_type,
        }
    }

    pub fn get(&self, path: &str) -> HttpReply {
        self.request("GET", path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> HttpReply {
        self.request("POST", path, Some(&body.to_string()))
    }

    pub fn patch(&self, path: &str, body: &Value) -> HttpReply {
        self.request("PATCH", path, Some(&body.to_string()))
    }

    pub fn put(&self, path: &str) -> HttpReply {
        self.request("PUT", path, None)
    }

    pub fn delete(&self, path: &str) -> HttpReply {
        self.request("DELETE", path, None)
    }

    pub fn register(&self, nickname: &str) -> i64 {
        let reply = self.post(
            "/api/register",
            &json!({"nickname": nickname, "email": format!("{nickname}@example.org"), "password": "password123"}),
        );
        assert_eq!(reply.status, 201, "register {nickname}: {}", reply.body);
        reply.body["user"]["id"].as_i64().expect("user id")
    }

    pub fn login(&mut self, identifier: &str, password: &str) -> HttpReply {
        let reply = self.post(
            "/api/login",
            &json!({"identifier": identifier, "password": password}),
        );
        if let Some(set_cookie) = &reply.set_cookie {
            let pair = set_cookie.split(';').next().expect("cookie pair");
            self.cookie = Some(pair.to_owned());
        }
        reply
    }

    /// Sends a message over REST; returns the stored message.
    pub fn send(&self, to: i64, content: &str) -> Value {
        let reply = self.post(
            "/api/messages",
            &json!({"to_user_id": to, "content": content}),
        );
        assert_eq!(reply.status, 201, "send: {}", reply.body);
        reply.body["message"].clone()
    }
}

/// A WebSocket client with a session cookie.
pub struct Ws {
    pub socket: WebSocket<TcpStream>,
}

impl Ws {
    /// Connects with the client's cookie and no Origin header (like a
    /// non-browser client), and reads the initial `online_users` frame.
    pub fn connect(server: &TestServer, client: &Client) -> (Ws, Value) {
        let mut ws = Ws::try_connect(&server.ws_url(), client.cookie.as_deref(), None)
            .unwrap_or_else(|e| panic!("websocket connect: {e}"));
        let online = ws.recv_type("online_users");
        (ws, online)
    }

    /// Connects as our own clients do: asking for presence as lists
    /// (`?presence=batch`).
    pub fn try_connect(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        Ws::open(&format!("{url}?presence=batch"), cookie, origin)
    }

    /// Connects to exactly `url`: without `?presence=batch`, a client of
    /// the protocol as first published.
    pub fn open(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(cookie) = cookie {
            request
                .headers_mut()
                .insert("Cookie", cookie.parse().expect("cookie header"));
        }
        if let Some(origin) = origin {
            request
                .headers_mut()
                .insert("Origin", origin.parse().expect("origin header"));
        }
        let host = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .expect("host");
        let stream = TcpStream::connect(host)?;
        stream.set_read_timeout(Some(RECV_TIMEOUT))?;
        match tungstenite::client(request, stream) {
            Ok((socket, _)) => Ok(Ws { socket }),
            Err(tungstenite::HandshakeError::Failure(e)) => Err(e),
            Err(tungstenite::HandshakeError::Interrupted(_)) => {
                panic!("blocking handshake interrupted")
            }
        }
    }

    pub fn send_json(&mut self, value: &Value) {
        self.socket
            .send(Message::text(value.to_string()))
            .expect("send frame");
    }

    /// The next JSON frame (pings are answered by tungstenite and skipped).
    pub fn recv(&mut self) -> Value {
        loop {
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    return serde_json::from_str(text.as_str()).expect("server frames are JSON");
                }
                Ok(Message::Close(frame)) => panic!("unexpected close: {frame:?}"),
                Ok(_) => continue,
                Err(e) => panic!("websocket read failed: {e}"),
            }
        }
    }

    /// Skips frames until a `user_online` or `user_offline` arrives;
    /// returns whether it was `user_online`, and the users it names.
    pub fn recv_presence(&mut self) -> (bool, Vec<Value>) {
        loop {
            let mut frame = self.recv();
            let online = match frame["type"].as_str() {
                Some("user_online") => true,
                Some("user_offline") => false,
                _ => continue,
            };
            let users = match frame["users"].take() {
                Value::Array(users) => users,
                other => panic!("presence frame without a users list: {other}"),
            };
            return (online, users);
        }
    }

    /// Reads presence frames (skipping others) until each of `users` has
    /// been named online (`online`) or offline, in one frame or several.
    pub fn await_presence(&mut self, users: &[i64], online: bool) {
        let mut waiting: Vec<i64> = users.to_vec();
        while !waiting.is_empty() {
            let (named_online, named) = self.recv_presence();
            if named_online == online {
                for user in named {
                    waiting.retain(|id| user["id"] != *id);
                }
            }
        }
    }

    /// Skips frames until one of type `kind` arrives.
    pub fn recv_type(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.recv();
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the server closes; returns its close frame (`None` if
    /// the connection ended without one). Data frames before it are skipped.
    pub fn expect_close(&mut self) -> Option<CloseFrame> {
        loop {
            match self.socket.read() {
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    panic!("server did not close the connection in time")
                }
                Err(_) => return None,
            }
        }
    }
}

/// The status code of a refused WebSocket handshake.
pub fn handshake_status(result: Result<Ws, tungstenite::Error>) -> u16 {
    match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("expected an HTTP refusal, got {e}"),
        Ok(_) => panic!("expected the handshake to be refused"),
    }
}

/// The real `chat-server` binary in a child process: for what only a whole
/// process shows (signals, exit codes, every socket closing at exit).
pub struct ServerProcess {
    child: Child,
    pub http_addr: String,
    /// Log lines after the "listening" line, collected by a thread.
    log: std::sync::mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Starts the binary on `db` with extra `args`, and waits until it has
    /// logged the addresses it bound.
    pub fn start(db: &Path, args: &[&str]) -> ServerProcess {
        ServerProcess::spawn(db, args, None)
    }

    /// The same, with registration as an operator gets it (no
    /// `--registration`: open until the first account, invitations after).
    pub fn start_as_deployed(db: &Path, args: &[&str]) -> ServerProcess {
        let mut args = args.to_vec();
        args.push("--as-deployed");
        ServerProcess::spawn(db, &args, None)
    }

    /// The same, with the soft and hard limit on open files set to
    /// `open_files` (as `ulimit -n` would).
    pub fn start_with_open_files(db: &Path, args: &[&str], open_files: u64) -> ServerProcess {
        ServerProcess::spawn(db, args, Some(open_files))
    }

    fn spawn(db: &Path, args: &[&str], open_files: Option<u64>) -> ServerProcess {
        let log_level = if args.contains(&"--log-level") {
            &[][..]
        } else {
            &["--log-level", "info"][..]
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_chat-server"));
        if let Some(open_files) = open_files {
            use std::os::unix::process::CommandExt;
            // SAFETY: setrlimit is async-signal-safe and touches only the
            // child, between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: open_files,
                        rlim_max: open_files,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command
            .args(log_level)
            // As in TestServer: tests outpace people; limits have own tests.
            .args([
                "--message-rate",
                "0",
                "--login-rate",
                "0",
                "--register-rate",
                "0",
            ])
            // Tests register many users without invitations, unless they
            // test the registration modes.
            .args(
                if args.contains(&"--registration") || args.contains(&"--as-deployed") {
                    &[][..]
                } else {
                    &["--registration", "open"][..]
                },
            )
            .arg("--db")
            .arg(db)
            .args(args.iter().filter(|arg| **arg != "--as-deployed"))
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chat-server");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let listening = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|line| line.contains("listening:"))
            .expect("the server logs where it listens");
        let http_addr = listening
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .expect("http address")
            .to_owned();
        let (sender, log) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        ServerProcess {
            child,
            http_addr,
            log,
        }
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn client(&self) -> Client {
        Client {
            base: self.base(),
            cookie: None,
        }
    }

    /// Sends SIGTERM, waits for the exit, and returns the exit code and the
    /// log lines written since start.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        (exit.code(), self.log.iter().collect())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Uploads `bytes` as `name`: with a `Content-Length`, or (`chunked`)
/// without one.
pub fn upload(client: &Client, name: &str, bytes: &[u8], chunked: bool) -> (u16, Value) {
    let request = ureq::post(&format!("{}/api/attachments", client.base))
        .query("name", name)
        .set("Cookie", client.cookie.as_deref().unwrap_or(""))
        .set("Content-Type", "application/octet-stream")
        .timeout(RECV_TIMEOUT * 6);
    let result = if chunked {
        request.send(bytes)
    } else {
        request.send_bytes(bytes)
    };
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(e) => panic!("upload transport error: {e}"),
    };
    let status = response.status();
    let body = response.into_json().expect("JSON answer");
    (status, body)
}

pub fn stored_file(server: &TestServer, sha256: &str) -> std::path::PathBuf {
    server.config.files_dir().join(&sha256[..2]).join(sha256)
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    <sha2::Sha256 as sha2::Digest>::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every byte the server keeps of the database at `db`: the file and the
/// search index's file (`-search`), with their write-ahead logs copied into
/// them first, and whatever is left in the logs.
pub fn database_bytes(db: &Path) -> Vec<u8> {
    let mut search = db.as_os_str().to_owned();
    search.push("-search");
    let mut bytes = Vec::new();
    for file in [db.to_path_buf(), std::path::PathBuf::from(search)] {
        if !file.exists() {
            continue;
        }
        let conn = rusqlite::Connection::open(&file).expect("open");
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .expect("checkpoint");
        drop(conn);
        let mut wal = file.clone().into_os_string();
        wal.push("-wal");
        bytes.extend(std::fs::read(&file).expect("database file"));
        bytes.extend(std::fs::read(wal).unwrap_or_default());
    }
    bytes
}

/// Whether `hay` holds the bytes of `needle`.
pub fn holds(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// `GET /metrics` of the server at `base`, as text.
pub fn fetch_metrics(base: &str) -> String {
    ureq::get(&format!("{base}/metrics"))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text")
}

/// The value of metric `name` (with its labels, if any) in `text`.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in:\n{text}"))
}

/// Alice and Bob, registered, each in a browser of their own with their
/// conversation open (Bob started it with `first`), and each also as a
/// REST client.
pub struct TwoInConversation {
    pub alice: browser::Browser,
    pub bob: browser::Browser,
    pub alice_rest: Client,
    pub bob_rest: Client,
    pub alice_id: i64,
    pub bob_id: i64,
}

impl TwoInConversation {
    pub fn open(server: &TestServer, first: &str) -> TwoInConversation {
        let base = server.base();
        let (alice_rest, alice_id) = server.user("alice");
        let (bob_rest, bob_id) = server.user("bob");
        bob_rest.send(alice_id, first);
        let mut alice = browser::Browser::launch(1280, 800);
        let mut bob = browser::Browser::launch(1280, 800);
        browser::log_in(&mut alice, &base, "alice");
        browser::log_in(&mut bob, &base, "bob");
        browser::open_with(&mut alice, bob_id);
        browser::open_with(&mut bob, alice_id);
        TwoInConversation {
            alice,
            bob,
            alice_rest,
            bob_rest,
            alice_id,
            bob_id,
        }
    }
}

/// The message with `id` in a page of messages (`{"messages": [...]}`).
pub fn message_in<Id>(page: &Value, id: &Id) -> Option<Value>
where
    Value: PartialEq<Id>,
{
    page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == *id)
        .cloned()
}
