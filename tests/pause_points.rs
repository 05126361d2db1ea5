//! Races made deterministic: a named pause point in the server (the `fail`
//! crate, compiled in for tests only) stops one of its threads between two
//! steps, the test does what would race with it, then lets it go.
//!
//! Pause points are process-wide, so the tests of this file take turns.

mod common;

use std::sync::Mutex;
use std::thread;

use common::{RECV_TIMEOUT, TestServer, Ws};
use crossbeam_channel::{Receiver, Sender};
use serde_json::{Value, json};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The first thread to reach a pause point waits there until released.
struct Paused {
    point: &'static str,
    reached: Receiver<()>,
    release: Option<Sender<()>>,
}

impl Paused {
    fn at(point: &'static str) -> Paused {
        let (reached_tx, reached) = crossbeam_channel::bounded(1);
        let (release, released) = crossbeam_channel::bounded::<()>(0);
        fail::cfg_callback(point, move || {
            let _ = reached_tx.try_send(());
            // Returns once the sender is dropped (`release`).
            let _ = released.recv();
        })
        .expect("pause point");
        Paused {
            point,
            reached,
            release: Some(release),
        }
    }

    /// Waits until a server thread has stopped at the point.
    fn wait_until_reached(&self) {
        self.reached
            .recv_timeout(RECV_TIMEOUT)
            .unwrap_or_else(|_| panic!("no thread reached {}", self.point));
    }

    /// Lets the paused thread go on; later threads pass without stopping.
    fn release(&mut self) {
        fail::remove(self.point);
        self.release.take();
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        self.release();
    }
}

/// A logout that lands after the handshake checked the session, but before
/// the connection registered with the hub, must still close it: the hub
/// has nothing to close when the logout arrives, so the connection checks
/// its session again once registered.
#[test]
fn a_logout_racing_the_handshake_never_leaves_the_socket_open() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let mut paused = Paused::at("ws::before_register");

    let url = server.ws_url();
    let cookie = alice.cookie.clone();
    let connecting = thread::spawn(move || {
        Ws::try_connect(&url, cookie.as_deref(), None).expect("handshake accepted")
    });
    paused.wait_until_reached();
    let mut ws = connecting.join().expect("client thread");

    let logout = alice.post("/api/logout", &json!({}));
    assert_eq!(logout.status, 200, "{}", logout.body);
    paused.release();

    let close = ws.expect_close().expect("a close frame");
    assert_eq!(u16::from(close.code), 4001, "{close:?}");
}

/// Reads frames until a page answer (`sync`) or an `error` arrives.
fn recv_answer(ws: &mut Ws) -> Value {
    loop {
        let frame = ws.recv();
        if frame["type"] == "sync" || frame["type"] == "error" {
            return frame;
        }
    }
}

/// With the query threads busy and their queue full, a history or sync
/// request is answered at once with an `error` and `retry_after_ms`; the
/// hub does not wait, and the queued requests are answered once the
/// threads are free.
#[test]
fn a_full_query_pool_answers_with_retry_after() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let server = TestServer::start_with(|config| {
        config.query_threads = 1;
        config.query_queue = 1;
    });
    let sync = json!({"type": "sync", "since": 0});
    let (alice, _) = server.user("alice");
    let (mut first, _) = Ws::connect(&server, &alice);
    let mut paused = Paused::at("ws::query");
    first.send_json(&sync);
    paused.wait_until_reached(); // the only thread is busy with it

    // Two more requests: one waits in the queue, the other finds it full.
    let (answers, answered) = crossbeam_channel::unbounded();
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let (mut ws, _) = Ws::connect(&server, &alice);
            ws.send_json(&sync);
            let answers = answers.clone();
            thread::spawn(move || {
                let _ = answers.send(recv_answer(&mut ws));
            })
        })
        .collect();
    let refused = answered.recv_timeout(RECV_TIMEOUT).expect("an answer");
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(refused["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
    assert!(answered.try_recv().is_err(), "the queued one waits");

    paused.release();
    let queued = answered.recv_timeout(RECV_TIMEOUT).expect("an answer");
    assert_eq!(queued["type"], "sync", "{queued}");
    assert_eq!(recv_answer(&mut first)["type"], "sync");
    for reader in waiting {
        reader.join().expect("reader");
    }
    let metrics = ureq::get(&format!("{}/metrics", server.base()))
        .call()
        .expect("metrics")
        .into_string()
        .expect("text");
    assert!(
        metrics.contains("chat_queries_refused_total 1\n"),
        "{metrics}"
    );
}
