//! Fuzzes the HTTP server itself, from the socket up: the input is written
//! as raw bytes to a real server's REST port (request lines, lengths,
//! chunk sizes, header floods, pipelined requests). No input may go
//! unanswered past the deadline, be answered 500, or leave the server
//! unable to serve the next client.
#![no_main]

mod http_socket_input;

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use chat_server::{Config, Server, ServerHandle};
use http_socket_input::{assert_alive, check, exchange};
use libfuzzer_sys::fuzz_target;

/// How often the server's health is checked between inputs.
const HEALTH_CHECK_EVERY: u64 = 64;

fn server() -> SocketAddr {
    static SERVER: OnceLock<(ServerHandle, SocketAddr)> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            // Lives as long as the fuzzing process.
            let dir = Box::leak(Box::new(tempfile::tempdir().expect("temp dir")));
            let mut config = Config::for_tests();
            config.db = dir.path().join("fuzz.db");
            config.login_rate = 0.0;
            config.register_rate = 0.0;
            let handle = Server::start(config).expect("server starts");
            let addr = handle.http_addr();
            (handle, addr)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let addr = server();
    check(&exchange(addr, data));
    static RUNS: AtomicU64 = AtomicU64::new(0);
    if RUNS.fetch_add(1, Ordering::Relaxed) % HEALTH_CHECK_EVERY == 0 {
        assert_alive(addr);
    }
});
