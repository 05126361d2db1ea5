//! Debian's `slowhttptest`, a tool we did not write, against the REST port
//! in its three slow modes (slowloris, slow body, slow read), each for a
//! bounded time. Throughout, a well-behaved client must get `/healthz` in
//! under a second, and the server's memory must stay bounded.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::TestServer;

/// How long each attack runs.
const ATTACK_SECONDS: u64 = 12;
/// Attacking connections (below `--max-http-connections`, so every one
/// gets a thread: the point is that they still starve nobody).
const ATTACK_CONNECTIONS: u32 = 300;
/// The slowest `/healthz` we accept during an attack.
const PROBE_LIMIT: Duration = Duration::from_secs(1);
/// How much the test process (server included) may grow during one.
const RSS_GROWTH_LIMIT_KIB: u64 = 200 * 1024;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs one attack while probing; returns the slowest probe and the peak
/// memory growth.
fn attack(server: &TestServer, mode_args: &[&str], path: &str) -> (Duration, u64) {
    let url = format!("{}{path}", server.base());
    let rss_before = rss_kib();
    let mut slowhttptest = Command::new("slowhttptest")
        .args(mode_args)
        .args(["-c", &ATTACK_CONNECTIONS.to_string(), "-r", "200", "-i", "1"])
        .args(["-l", &ATTACK_SECONDS.to_string(), "-u", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start slowhttptest ({e}); install it (apt-get install slowhttptest) or run tests/run.sh")
        });
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let (done, base) = (done.clone(), server.base());
        std::thread::spawn(move || {
            let (mut slowest, mut peak) = (Duration::ZERO, 0);
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build();
            while !done.load(Ordering::SeqCst) {
                let started = Instant::now();
                let reply = agent.get(&format!("{base}/healthz")).call();
                let took = started.elapsed();
                assert!(
                    matches!(&reply, Ok(r) if r.status() == 200),
                    "/healthz failed during the attack: {reply:?}"
                );
                slowest = slowest.max(took);
                peak = peak.max(rss_kib());
                std::thread::sleep(Duration::from_millis(100));
            }
            (slowest, peak)
        })
    };
    let status = slowhttptest.wait().expect("slowhttptest ran");
    done.store(true, Ordering::SeqCst);
    let (slowest, peak) = prober.join().expect("prober");
    assert!(status.success(), "slowhttptest failed: {status}");
    (slowest, peak.saturating_sub(rss_before))
}

#[test]
fn slowhttptest_in_every_slow_mode_starves_no_one() {
    let server = TestServer::start();
    let modes: [(&str, &[&str], &str); 3] = [
        ("slowloris", &["-H"], "/healthz"),
        ("slow body", &["-B", "-s", "8192"], "/api/login"),
        // Pipelined requests for the largest file, read a few bytes at a
        // time through a tiny window.
        (
            "slow read",
            &[
                "-X", "-k", "10", "-n", "1", "-w", "1", "-y", "64", "-z", "8",
            ],
            "/app.js",
        ),
    ];
    for (name, args, path) in modes {
        let (slowest, growth) = attack(&server, args, path);
        eprintln!("{name}: slowest /healthz {slowest:?}, memory growth {growth} KiB");
        assert!(slowest < PROBE_LIMIT, "{name}: /healthz took {slowest:?}");
        assert!(
            growth < RSS_GROWTH_LIMIT_KIB,
            "{name}: memory grew by {growth} KiB"
        );
    }
}
