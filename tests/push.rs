//! Web Push, end to end: a real server pushes to a push service on
//! loopback (`tests/push_receiver.py`) that decrypts each push with
//! `http_ece` and checks its VAPID signature with `cryptography`, neither
//! of which the server uses.

mod common;

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TestServer, Ws, fetch_metrics, metric};
use serde_json::{Value, json};

/// The push service: a Python process, and the lines it prints.
struct Receiver {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// `http`, or `https` with a certificate of its own.
    scheme: &'static str,
    port: u16,
    p256dh: String,
    auth: String,
}

impl Receiver {
    fn start() -> Receiver {
        Receiver::start_with(&[], "http")
    }

    /// Over TLS, with a certificate it writes to `dir/ca.pem`.
    fn start_tls(dir: &std::path::Path) -> Receiver {
        let dir = dir.to_str().expect("a UTF-8 path");
        Receiver::start_with(&["--tls", dir], "https")
    }

    fn start_with(args: &[&str], scheme: &'static str) -> Receiver {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/push_receiver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 tests/push_receiver.py (tests/run.sh installs http_ece)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let hello: Value = serde_json::from_str(&lines.next().expect("a line").expect("text"))
            .expect("the receiver's first line");
        Receiver {
            child,
            lines,
            scheme,
            port: hello["port"].as_u64().expect("port") as u16,
            p256dh: hello["p256dh"].as_str().expect("p256dh").into(),
            auth: hello["auth"].as_str().expect("auth").into(),
        }
    }

    /// A subscription as a browser gives it, for an endpoint at `path`.
    fn subscription(&self, path: &str) -> Value {
        json!({
            "endpoint": format!("{}://127.0.0.1:{}{path}", self.scheme, self.port),
            "keys": { "p256dh": self.p256dh, "auth": self.auth },
            "expirationTime": null,
        })
    }

    /// The next push it received (blocks until one arrives).
    fn next_push(&mut self) -> Value {
        let line = self.lines.next().expect("a push").expect("text");
        serde_json::from_str(&line).expect("a JSON line")
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that may push to loopback, coalescing for `coalesce`.
fn server(coalesce: Duration) -> TestServer {
    TestServer::start_with(move |config| {
        config.push_allow_private_endpoints = true;
        config.push_coalesce = coalesce;
    })
}

/// Subscribes `client`'s session to pushes at `subscription`.
fn subscribe(client: &common::Client, subscription: &Value) {
    let subscribed = client.post("/api/push/subscriptions", subscription);
    assert_eq!(subscribed.status, 201, "{:?}", subscribed.body);
}

/// Waits until `/metrics` shows `name` at `value` (an event the server
/// reports; not a fixed sleep).
fn await_metric(base: &str, name: &str, value: f64) {
    await_metric_where(base, name, value, |now| now == value);
}

/// Waits until `/metrics` shows `name` where `reached` holds.
fn await_metric_where(base: &str, name: &str, value: f64, reached: impl Fn(f64) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = metric(&fetch_metrics(base), name);
        if reached(now) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed {now}, not {value}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_push_reaches_an_offline_user_encrypted_and_signed_and_coalesces_a_burst() {
    let mut receiver = Receiver::start();
    let server = server(Duration::from_secs(2));
    let (alice, _alice_id) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let public_key = server.client().get("/api/push/vapid-public-key");
    assert_eq!(public_key.status, 200);
    let public_key = public_key.body["public_key"]
        .as_str()
        .expect("key")
        .to_owned();

    subscribe(&bob, &receiver.subscription("/ok/bob"));

    // Bob is connected: his connection gets the message, no push.
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    alice.send(bob_id, "while you are here");
    assert_eq!(
        bob_ws.recv_type("private_message")["content"],
        "while you are here"
    );
    drop(bob_ws);
    await_metric(&server.base(), "chat_users_online", 0.0);

    let first = alice.send(bob_id, "Dinner at eight? Bring the ☕ beans");
    let push = receiver.next_push();
    assert_eq!(push["path"], "/ok/bob");
    assert_eq!(push["payload"]["type"], "message");
    assert_eq!(push["payload"]["nickname"], "alice");
    assert_eq!(push["payload"]["message_id"], first["id"]);
    assert_eq!(
        push["payload"]["preview"],
        "Dinner at eight? Bring the ☕ beans"
    );
    assert_eq!(push["encoding"], "aes128gcm");
    assert_eq!(push["urgency"], "high");
    assert_eq!(push["ttl"], "86400");
    assert_eq!(
        push["topic"],
        format!("conversation-{}", push["payload"]["from_user_id"])
    );
    assert_eq!(push["vapid_verified"], true);
    assert_eq!(push["vapid_key"], public_key.as_str());
    assert_eq!(
        push["vapid_claims"]["aud"],
        format!("http://127.0.0.1:{}", receiver.port)
    );

    // A burst within the window: one more push, for the newest, when the
    // window ends.
    let mut last = Value::Null;
    for n in 0..50 {
        last = alice.send(bob_id, &format!("burst {n}"));
    }
    let push = receiver.next_push();
    assert_eq!(push["payload"]["message_id"], last["id"]);
    assert_eq!(push["payload"]["preview"], "burst 49");
    await_metric(&server.base(), "chat_pushes_sent_total", 2.0);
}

#[test]
fn gone_subscriptions_are_forgotten_and_failures_are_retried() {
    let mut receiver = Receiver::start();
    let server = server(Duration::from_secs(60));
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (carol, carol_id) = server.user("carol");
    let gone = receiver.subscription("/gone/bob");
    subscribe(&bob, &gone);
    let flaky = receiver.subscription("/flaky/carol");
    subscribe(&carol, &flaky);

    alice.send(bob_id, "are you there?");
    assert_eq!(receiver.next_push()["status"], 410);
    await_metric(&server.base(), "chat_push_subscriptions_gone_total", 1.0);
    let again = bob.request(
        "DELETE",
        "/api/push/subscriptions",
        Some(&json!({ "endpoint": gone["endpoint"] }).to_string()),
    );
    assert_eq!(again.status, 404, "the push service's 410 removed it");

    alice.send(carol_id, "hello carol");
    let failed = receiver.next_push();
    assert_eq!(failed["status"], 500);
    let retried = receiver.next_push();
    assert_eq!(retried["status"], 201);
    assert_eq!(retried["payload"]["preview"], "hello carol");
    await_metric(&server.base(), "chat_pushes_sent_total", 1.0);
}

#[test]
fn subscriptions_are_checked_and_end_with_their_session() {
    let receiver = Receiver::start();
    // Without the operator's flag: public https endpoints only.
    let strict = TestServer::start();
    let (alice, _) = strict.user("alice");
    let (bob, bob_id) = strict.user("bob");
    for (endpoint, why) in [
        ("http://push.example.net/x", "endpoint must be an https URL"),
        ("https://127.0.0.1/x", "endpoint must be a public address"),
        ("https://[::1]/x", "endpoint must be a public address"),
        ("https://10.0.0.8/x", "endpoint must be a public address"),
    ] {
        let mut subscription = receiver.subscription("/x");
        subscription["endpoint"] = json!(endpoint);
        let refused = bob.post("/api/push/subscriptions", &subscription);
        assert_eq!(refused.status, 400, "{endpoint}");
        assert_eq!(refused.body["error"], why);
    }
    let mut bad_key = receiver.subscription("/x");
    bad_key["endpoint"] = json!("https://push.example.net/x");
    bad_key["keys"]["p256dh"] = json!("AAAA");
    assert_eq!(bob.post("/api/push/subscriptions", &bad_key).status, 400);

    // A name that resolves to loopback passes the check of the URL, and
    // is refused where it counts: on the addresses connected to.
    let mut by_name = receiver.subscription("/x");
    by_name["endpoint"] = json!(format!("https://localhost:{}/x", receiver.port));
    subscribe(&bob, &by_name);
    alice.send(bob_id, "to a name on loopback");
    await_metric(&strict.base(), "chat_pushes_failed_total", 1.0);
    assert_eq!(
        metric(&fetch_metrics(&strict.base()), "chat_pushes_sent_total"),
        0.0
    );

    // Logging out ends the session, and its subscription with it.
    assert_eq!(bob.post("/api/logout", &json!({})).status, 200);
    let mut bob_again = strict.client();
    bob_again.login("bob", "password123");
    let removed = bob_again.request(
        "DELETE",
        "/api/push/subscriptions",
        Some(&json!({ "endpoint": by_name["endpoint"] }).to_string()),
    );
    assert_eq!(removed.status, 404, "logout removed it");
}

/// A push service that accepts connections and never answers: every
/// push thread ends up waiting on it.
struct BlackHole {
    port: u16,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl BlackHole {
    fn start() -> BlackHole {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming().map_while(Result::ok) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(stream);
            }
        });
        BlackHole { port, accepted }
    }
}

#[test]
fn a_full_push_queue_drops_pushes_and_never_delays_messages() {
    let receiver = Receiver::start();
    let hole = BlackHole::start();
    let server = TestServer::start_with(|config| {
        config.push_allow_private_endpoints = true;
        config.push_queue = 2;
    });
    let (alice, _) = server.user("alice");
    let mut subscription = receiver.subscription("/x");
    let mut recipients = Vec::new();
    for n in 0..12 {
        let (client, id) = server.user(&format!("offline{n}"));
        subscription["endpoint"] = json!(format!("http://127.0.0.1:{}/u{n}", hole.port));
        subscribe(&client, &subscription);
        recipients.push(id);
    }
    // Each message to someone offline is a push to the black hole: four
    // take the push threads, two wait, the rest are dropped.
    for (n, id) in recipients.iter().enumerate() {
        let started = Instant::now();
        let sent = alice.send(*id, &format!("message {n}"));
        assert!(sent["id"].as_i64().is_some());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a send waited {:?} for pushes",
            started.elapsed()
        );
    }
    // (At least: were the threads slow to take their first job, more go.)
    await_metric_where(&server.base(), "chat_pushes_dropped_total", 6.0, |n| {
        n >= 6.0
    });
    // Every push thread is waiting on the push service.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hole.accepted.load(std::sync::atomic::Ordering::SeqCst) < 4 {
        assert!(
            Instant::now() < deadline,
            "the push threads never all connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // And live messages still go through at once.
    let (bob, bob_id) = server.user("bob");
    let (mut bob_ws, _) = Ws::connect(&server, &bob);
    alice.send(bob_id, "still here");
    assert_eq!(bob_ws.recv_type("private_message")["content"], "still here");
}

#[test]
fn a_push_service_with_a_certificate_of_its_own_is_trusted_with_push_ca_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut receiver = Receiver::start_tls(dir.path());
    let ca_file = dir.path().join("ca.pem");
    let trusting = TestServer::start_with(|config| {
        config.push_allow_private_endpoints = true;
        config.push_ca_file = Some(ca_file);
    });
    let (alice, _) = trusting.user("alice");
    let (bob, bob_id) = trusting.user("bob");
    let subscription = receiver.subscription("/ok/bob");
    subscribe(&bob, &subscription);
    alice.send(bob_id, "over TLS");
    let push = receiver.next_push();
    assert_eq!(push["payload"]["preview"], "over TLS");
    assert_eq!(
        push["vapid_claims"]["aud"],
        format!("https://127.0.0.1:{}", receiver.port)
    );

    // Without the file, the certificate is not trusted: the push fails
    // (after its retries) and the service receives nothing.
    let strict = TestServer::start_with(|config| config.push_allow_private_endpoints = true);
    let (alice, _) = strict.user("alice");
    let (bob, bob_id) = strict.user("bob");
    subscribe(&bob, &subscription);
    alice.send(bob_id, "not trusted");
    await_metric(&strict.base(), "chat_pushes_failed_total", 1.0);
    assert_eq!(
        metric(&fetch_metrics(&strict.base()), "chat_pushes_sent_total"),
        0.0
    );
}

#[test]
fn a_push_shows_the_message_as_it_is_when_it_goes_and_never_a_deleted_one() {
    let mut receiver = Receiver::start();
    let server = server(Duration::from_secs(2));
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    subscribe(&bob, &receiver.subscription("/ok/bob"));
    alice.send(bob_id, "one");
    assert_eq!(receiver.next_push()["payload"]["preview"], "one");

    // Coalesced, so it waits; edited meanwhile: the push has the new text.
    let typo = alice.send(bob_id, "tpyo");
    let edited = alice.patch(
        &format!("/api/messages/{}", typo["id"]),
        &json!({ "content": "fixed" }),
    );
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    let push = receiver.next_push();
    assert_eq!(push["payload"]["message_id"], typo["id"]);
    assert_eq!(push["payload"]["preview"], "fixed");

    // Deleted for everyone while it waits: no push at all; the next
    // message is the next push.
    let secret = alice.send(bob_id, "my secret");
    assert_eq!(
        alice
            .delete(&format!("/api/messages/{}", secret["id"]))
            .status,
        200
    );
    let three = alice.send(bob_id, "three");
    let push = receiver.next_push();
    assert_eq!(push["payload"]["message_id"], three["id"]);
    assert_eq!(push["payload"]["preview"], "three");

    // A disappearing message: the push service keeps it no longer.
    let timer = alice.request(
        "PUT",
        &format!("/api/conversations/{bob_id}/expiry"),
        Some(&json!({ "seconds": 3600 }).to_string()),
    );
    assert_eq!(timer.status, 200, "{:?}", timer.body);
    let fleeting = alice.send(bob_id, "gone in an hour");
    let push = receiver.next_push();
    assert_eq!(push["payload"]["message_id"], fleeting["id"]);
    let ttl: u32 = push["ttl"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("TTL");
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
}
