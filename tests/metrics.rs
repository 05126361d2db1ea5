//! `GET /metrics` reports what happened, in the Prometheus text format.

mod common;

use common::{ServerProcess, TestServer, Ws, fetch_metrics, metric, pm};

#[test]
fn metrics_count_connections_messages_failures_and_commits() {
    let server = TestServer::start();
    let (alice, _) = server.user("alice");
    let (bob, bob_id) = server.user("bob");
    let (_, carol_id) = server.user("carol");
    let (mut alice_ws, _) = Ws::connect(&server, &alice);
    let (mut bob_ws, _) = Ws::connect(&server, &bob);

    alice_ws.send_json(&pm(bob_id, "delivered", "1"));
    alice_ws.recv_type("message_delivered");
    bob_ws.recv_type("private_message");
    alice_ws.send_json(&pm(carol_id, "carol is offline", "2"));
    alice_ws.recv_type("message_failed");
    alice_ws.send_json(&pm(bob_id, "", "3"));
    alice_ws.recv_type("message_failed");

    let response = ureq::get(&format!("{}/metrics", server.base()))
        .call()
        .expect("metrics");
    assert!(
        response
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.into_string().expect("text");
    assert_eq!(metric(&text, "chat_websocket_connections"), 2.0);
    assert_eq!(metric(&text, "chat_users_online"), 2.0);
    assert_eq!(metric(&text, "chat_messages_stored_total"), 2.0);
    assert_eq!(metric(&text, "chat_messages_delivered_total"), 1.0);
    assert_eq!(
        metric(
            &text,
            "chat_send_failures_total{reason=\"recipient_offline\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&text, "chat_send_failures_total{reason=\"invalid\"}"),
        1.0
    );
    assert_eq!(metric(&text, "chat_outbox_drops_total"), 0.0);
    // Two registrations and two deliveries (the empty send never reaches the hub).
    assert!(metric(&text, "chat_hub_event_seconds_count") >= 4.0);
    // 3 registrations, 3 logins, 2 messages: 8 writes at least.
    assert!(metric(&text, "chat_db_writes_total") >= 8.0);
    assert!(metric(&text, "chat_db_commits_total") >= 1.0);
    assert!(metric(&text, "chat_db_commit_batch_size_count") >= 1.0);
    assert!(metric(&text, "chat_db_commit_seconds_bucket{le=\"+Inf\"}") >= 1.0);
    assert!(text.contains("# TYPE chat_hub_queue_depth gauge"));
}

#[test]
fn metrics_carry_the_process_figures_operators_expect() {
    let dir = tempfile::tempdir().expect("temp dir");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let server = ServerProcess::start(&dir.path().join("chat.db"), &["--addr", "127.0.0.1:0"]);
    // Some work first (a registration hashes a password: CPU time).
    server.client().register("alice");
    let text = fetch_metrics(&server.base());
    // What procps's `ps` (not our code) says of the same process.
    let ps = std::process::Command::new("ps")
        .args(["-o", "rss=,nlwp=", "-p", &server.pid().to_string()])
        .output()
        .expect("run ps");
    let ps = String::from_utf8_lossy(&ps.stdout);
    let mut columns = ps
        .split_whitespace()
        .map(|v| v.parse::<f64>().expect("number"));
    let (rss_kib, threads) = (columns.next().expect("rss"), columns.next().expect("nlwp"));

    let rss = metric(&text, "process_resident_memory_bytes");
    assert!(
        (rss / 1024.0 - rss_kib).abs() < rss_kib * 0.5,
        "RSS {rss} bytes, ps says {rss_kib} KiB"
    );
    // A connection's thread may come or go between the two looks.
    let ours = metric(&text, "process_threads");
    assert!(
        (ours - threads).abs() <= 2.0,
        "{ours} threads, ps says {threads}"
    );
    // While /metrics is answered, its own connection holds two more
    // descriptors than a listing before it sees (the socket, and the
    // clone its connection's thread writes with); other descriptors come
    // and go too: compare within a few, at a moment when the listing
    // holds still.
    let listed = || {
        std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
            .expect("fd list")
            .count() as f64
    };
    let mut looks = Vec::new();
    let agreed = (0..20).any(|_| {
        let before = listed();
        let open = metric(&fetch_metrics(&server.base()), "process_open_fds");
        let after = listed();
        looks.push((before, open, after));
        // (A connection of an earlier request may still be closing: up to
        // two more.)
        let steady = before == after && open >= before && open <= before + 4.0;
        if !steady {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        steady
    });
    assert!(agreed, "(listed, reported, listed): {looks:?}");
    let open = metric(&text, "process_open_fds");
    assert!(metric(&text, "process_max_fds") >= open);
    assert!(metric(&text, "process_cpu_seconds_total") > 0.0);
    let started = metric(&text, "process_start_time_seconds");
    assert!(
        started >= before - 1.0 && started <= before + 60.0,
        "{started}"
    );
    let version = format!(
        "chat_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(metric(&text, &version), 1.0);
}
